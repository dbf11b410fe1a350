"""Checks before a training run starts: the maximum length from the data, one row through the chat template.

- ``max_length`` defaults to the p99 of the rows' token counts (rendered by the model's own chat template),
  with the share of rows it would truncate; R1 traces run to 32k tokens and a fixed 4,096 silently cut
  most of them.
- The chat template must keep the sample as curated: R1-distill templates strip ``<think>…</think>`` from
  assistant turns, or pre-fill ``<think>`` in the generation prompt so the completion's own tag doubles.
  One row is rendered the way TRL and OpenRLHF render it (the whole conversation, and the prompt with the
  generation prompt as its prefix); a dropped or doubled tag or answer is a :class:`TemplateError`.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Any

from curate.checks.text import split_response
from curate.errors import CurateError
from curate.store import DatasetVersion

SAMPLE_ROWS = 20_000  # rows tokenised to estimate the p99 (seeded sample beyond that)
CHARS_PER_TOKEN = 4.0  # only when no tokenizer is at hand (cluster commands for a model not on this machine)


class TemplateError(CurateError):
    """The model's chat template would drop or double the reasoning or the answer of a curated sample."""


@dataclass(frozen=True, slots=True)
class LengthPlan:
    max_length: int
    source: str  # "p99" | "given"
    p99: int
    longest: int
    truncated_rows: int
    rows_measured: int
    counted: str  # "tokens" | "chars/4 (no tokenizer)"

    @property
    def truncated_share(self) -> float:
        return self.truncated_rows / self.rows_measured if self.rows_measured else 0.0

    def line(self) -> str:
        how = "the data's p99" if self.source == "p99" else "given"
        return (
            f"max length {self.max_length:,} ({how}; p99 {self.p99:,}, longest {self.longest:,} {self.counted}):"
            f" {self.truncated_rows:,} of {self.rows_measured:,} rows ({self.truncated_share:.1%}) truncated"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "truncated_share": self.truncated_share}


def conversations(dv: DatasetVersion, limit: int = SAMPLE_ROWS, seed: int = 0) -> list[list[dict[str, str]]]:
    """The version's rows as chat conversations (``messages``, or ``prompt`` + ``completion``)."""
    df = dv.scan().collect()
    if df.height > limit:
        df = df.sample(limit, seed=seed)
    if "messages" in df.columns:
        return [list(m) for m in df["messages"].to_list()]
    if "prompt" in df.columns and "completion" in df.columns:
        out = []
        for p, c in zip(df["prompt"].to_list(), df["completion"].to_list(), strict=True):
            p = [{"role": "user", "content": p}] if isinstance(p, str) else list(p)
            c = [{"role": "assistant", "content": c}] if isinstance(c, str) else list(c)
            out.append(p + c)
        return out
    raise CurateError(f"{dv.manifest.ref}: neither 'messages' nor 'prompt'/'completion' columns: not an SFT dataset")


def _render(tokenizer: Any, conv: list[dict[str, str]], **kw: Any) -> str:
    return str(tokenizer.apply_chat_template(conv, tokenize=False, **kw))


def token_counts(convs: list[list[dict[str, str]]], tokenizer: Any | None) -> tuple[list[int], str]:
    if tokenizer is None:
        return [
            math.ceil(sum(len(m["content"] or "") for m in c) / CHARS_PER_TOKEN) for c in convs
        ], "chars/4 (no tokenizer)"
    texts = [_render(tokenizer, c) for c in convs]
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in enc], "tokens"


def plan_max_length(lengths: list[int], given: int | None = None, counted: str = "tokens") -> LengthPlan:
    if not lengths:
        return LengthPlan(given or 0, "given" if given else "p99", 0, 0, 0, 0, counted)
    s = sorted(lengths)
    p99 = s[min(len(s) - 1, math.ceil(0.99 * len(s)) - 1)]
    limit = given if given else p99
    return LengthPlan(limit, "given" if given else "p99", p99, s[-1], sum(1 for x in s if x > limit), len(s), counted)


def length_plan(dv: DatasetVersion, tokenizer: Any | None, given: int | None = None) -> LengthPlan:
    lengths, counted = token_counts(conversations(dv), tokenizer)
    return plan_max_length(lengths, given, counted)


def _count(text: str, needle: str) -> int:
    return text.count(needle) if needle else 0


def check_chat_template(tokenizer: Any, conv: list[dict[str, str]], model: str = "the model") -> None:
    """Render one conversation as the trainers do; raise :class:`TemplateError` if the template drops or
    doubles ``<think>``, ``</think>`` or the answer of the last assistant turn."""
    if not conv or conv[-1].get("role") != "assistant":
        raise TemplateError("the sample row does not end with an assistant turn")
    response = conv[-1]["content"] or ""
    _, answer = split_response(response)
    answer = (answer if answer is not None else response).strip()
    full = _render(tokenizer, conv)
    prompt = _render(tokenizer, conv[:-1], add_generation_prompt=True)
    data = "".join(m["content"] or "" for m in conv)
    for what, needle in (("<think>", "<think>"), ("</think>", "</think>"), ("the answer", answer[-200:])):
        want, got = _count(data, needle), _count(full, needle)
        if got != want:
            verb = "drops" if got < want else "doubles"
            raise TemplateError(
                f"the chat template of {model} {verb} {what} in a curated sample ({want} in the data, "
                f"{got} rendered): training would not see R1's <think>…</think> form; use a template "
                f"that keeps the reasoning of the assistant turn"
            )
    if prompt.rstrip().endswith("<think>") and response.lstrip().startswith("<think>"):
        raise TemplateError(
            f"the chat template of {model} pre-fills <think> in the generation prompt and the curated "
            f"completion opens its own: prompt + completion training text doubles <think>"
        )
    if not full.startswith(prompt):
        raise TemplateError(
            f"the chat template of {model} renders the prompt with its generation prompt "
            f"differently from the same turns in the full conversation: prompt/completion "
            f"splits (TRL, OpenRLHF) would cut the sample in the wrong place"
        )
    tail = full[len(prompt) :]
    if _count(tail, "<think>") != _count(response, "<think>"):
        raise TemplateError(f"the chat template of {model} doubles or drops <think> at the start of the completion")


def check_template_on(dv: DatasetVersion, tokenizer: Any, model: str = "the model", seed: int = 0) -> None:
    """The check on one row that has a reasoning block (the first such row of a seeded shuffle)."""
    convs = conversations(dv, limit=200, seed=seed)
    random.Random(seed).shuffle(convs)
    with_think = [c for c in convs if c and "</think>" in (c[-1].get("content") or "")]
    if with_think or convs:
        check_chat_template(tokenizer, (with_think or convs)[0], model)


__all__ = [
    "LengthPlan",
    "TemplateError",
    "check_chat_template",
    "check_template_on",
    "conversations",
    "length_plan",
    "plan_max_length",
    "token_counts",
]
