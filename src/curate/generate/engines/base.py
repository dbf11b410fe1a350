"""The engine protocol: rendered prompts in, ``n`` completions per prompt out.

Engines know nothing about the ledger. Seeds: request ``r`` carries one base seed and its sample ``i`` is
drawn with ``r.seed + i``; that is exactly how vLLM V1 fans a seeded ``SamplingParams(n=…)`` out into
child requests, so the vLLM, HTTP (``split_n``) and transformers engines give each sample its own seed
derived from (run seed, prompt_id, index), and a regenerated shard is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson
import xxhash

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class EngineError(RuntimeError):
    """The engine could not produce completions (retries exhausted, server down, model failed)."""


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Sampling parameters shared by every engine (defaults: DeepSeek-R1's evaluation settings)."""

    n: int = 16
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    seed: int = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n < 1 or self.n > 1 << 16:
            raise ValueError(f"n must be in [1, 65536], got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True, slots=True)
class Rendered:
    """A prompt after templating: chat ``messages`` or raw ``text`` (base models), plus a ``prefill``.

    The prefill (R1's ``<think>\\n``) is appended after the generation prompt; the engine puts it back
    at the start of the response so the ledger always holds the full ``<think>…</think>answer`` text.
    """

    messages: tuple[tuple[str, str], ...] | None = None
    text: str | None = None
    prefill: str = ""

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.text is None):
            raise ValueError("Rendered needs exactly one of messages or text")

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages or ()]


@dataclass(frozen=True, slots=True)
class Request:
    key: str  # prompt_id, for error messages and stats
    prompt: Rendered
    seed: int  # base seed; sample i uses seed + i


@dataclass(frozen=True, slots=True)
class Completion:
    text: str  # the full response, prefill included
    finish_reason: str  # stop | length | error
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_s: float | None = None
    reasoning: str | None = None  # reasoning returned apart by the server
    meta: dict[str, Any] = field(default_factory=dict)
    prefill: str = ""  # the start of ``text`` the model did not generate (chat template's and curate's)


@runtime_checkable
class Engine(Protocol):
    """Generates ``params.n`` completions for every request, in request order."""

    name: str
    checkpoint: str

    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[list[Completion]]: ...

    def close(self) -> None: ...


# ---- helpers shared by engines and the ledger ---------------------------------------------------------

_SEED_SPACE = (1 << 31) - (1 << 17)  # room for seed + i (i < 2**16) inside a signed 32-bit int


def prompt_seed(seed: int, prompt_id: str) -> int:
    """Base seed of one prompt; its sample i uses ``prompt_seed(...) + i``."""
    return xxhash.xxh3_64_intdigest(f"{seed}\x1f{prompt_id}".encode()) % _SEED_SPACE


def sample_seed(seed: int, prompt_id: str, index: int) -> int:
    return prompt_seed(seed, prompt_id) + index


def stable_hash(obj: Any) -> str:
    """Hex digest of ``obj``'s canonical JSON (sorted keys): the same on every machine and run."""
    return xxhash.xxh3_128_hexdigest(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))


def sample_id(prompt_id: str, checkpoint: str, params_hash: str, index: int) -> str:
    return xxhash.xxh3_128_hexdigest(f"{prompt_id}\x1f{checkpoint}\x1f{params_hash}\x1f{index}".encode())


def assemble(prefill: str, content: str, reasoning: str | None = None) -> str:
    """The ledger's response text: ``<think>reasoning</think>content`` when the reasoning came apart,
    else the prefill followed by the generated text."""
    if reasoning is not None:
        return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{content}"
    return prefill + content


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string (vLLM excludes stop strings by default)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
