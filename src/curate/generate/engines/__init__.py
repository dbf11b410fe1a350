"""Generation engines behind one protocol; heavy dependencies (torch, vllm) are imported lazily."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from curate.generate.engines.base import (
    Completion,
    Engine,
    EngineError,
    Rendered,
    Request,
    SamplingParams,
    prompt_seed,
    sample_id,
    sample_seed,
)

if TYPE_CHECKING:
    from curate.generate.engines.hf import HFConfig, HFEngine
    from curate.generate.engines.openai import OpenAIConfig, OpenAIEngine
    from curate.generate.engines.vllm import VLLMConfig, VLLMEngine

ENGINES = ("vllm", "openai", "hf")


def engine_config(kind: str, options: Mapping[str, Any], *, strict: bool = True) -> Any:
    """The ``kind`` engine's config dataclass from ``options`` (field names of that dataclass).

    ``strict`` rejects unknown keys (a recipe's ``engine_options``: a typo must not be ignored); the CLI
    passes every engine's options at once and uses ``strict=False``.
    """
    import dataclasses
    import importlib

    if kind not in ENGINES:
        raise ValueError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")
    cls = getattr(
        importlib.import_module(f"curate.generate.engines.{kind}"),
        {"hf": "HFConfig", "openai": "OpenAIConfig", "vllm": "VLLMConfig"}[kind],
    )
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if strict and unknown:
        raise ValueError(f"{kind} engine: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return cls(**{k: v for k, v in options.items() if k in names})


def make_engine(kind: str, checkpoint: str, config: Any = None) -> Engine:
    """Build the ``kind`` engine for ``checkpoint`` with its config dataclass (or the defaults)."""
    if kind == "hf":
        from curate.generate.engines.hf import HFConfig, HFEngine

        return HFEngine(checkpoint, config or HFConfig())
    if kind == "openai":
        from curate.generate.engines.openai import OpenAIConfig, OpenAIEngine

        return OpenAIEngine(checkpoint, config or OpenAIConfig())
    if kind == "vllm":
        from curate.generate.engines.vllm import VLLMConfig, VLLMEngine

        return VLLMEngine(checkpoint, config or VLLMConfig())
    raise ValueError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")


def __getattr__(name: str) -> Any:
    # Lazy access to engine classes without importing torch/vllm/httpx at package import.
    mods = {
        "HFConfig": "hf",
        "HFEngine": "hf",
        "OpenAIConfig": "openai",
        "OpenAIEngine": "openai",
        "VLLMConfig": "vllm",
        "VLLMEngine": "vllm",
    }
    if name in mods:
        import importlib

        return getattr(importlib.import_module(f"curate.generate.engines.{mods[name]}"), name)
    raise AttributeError(name)


__all__ = [
    "ENGINES",
    "Completion",
    "Engine",
    "EngineError",
    "HFConfig",
    "HFEngine",
    "OpenAIConfig",
    "OpenAIEngine",
    "Rendered",
    "Request",
    "SamplingParams",
    "VLLMConfig",
    "VLLMEngine",
    "make_engine",
    "prompt_seed",
    "sample_id",
    "sample_seed",
]
