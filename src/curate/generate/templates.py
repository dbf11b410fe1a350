"""Prompt templates: R1-Zero (tags in the instruction), R1 chat with the ``<think>\\n`` prefill, few-shot.

A template turns a prompt's text into a :class:`Rendered` prompt; the engine applies the checkpoint's
chat template. The template's fingerprint is part of the run's params hash, so changing the template
(or its examples) is a different run, never a silent mix in one ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from curate.generate.engines.base import Rendered, stable_hash

# DeepSeek-R1 paper, Table 1 (the R1-Zero training template, for base models without a chat template).
R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: {prompt}. Assistant:"
)
THINK_PREFILL = "<think>\n"

# Default cold-start exemplars: long chain of thought, then a readable summary (R1 cold-start form).
DEFAULT_FEW_SHOT: tuple[tuple[str, str], ...] = (
    (
        "What is 17 * 24?",
        "<think>\nI need 17 * 24. Split 24 into 20 + 4: 17 * 20 = 340 and 17 * 4 = 68. "
        "340 + 68 = 408. Check another way: 17 * 24 = 24 * 17 = 24 * 10 + 24 * 7 = 240 + 168 = 408. "
        "Both agree.\n</think>\n17 * 24 = 17 * 20 + 17 * 4 = 340 + 68. The answer is \\boxed{408}.",
    ),
    (
        "A shop sells pens at 3 for $2. How much do 12 pens cost?",
        "<think>\n12 pens is 12 / 3 = 4 groups of 3 pens. Each group costs $2, so 4 * 2 = 8 dollars. "
        "Sanity check: one pen costs 2/3 dollar, and 12 * 2/3 = 8.\n</think>\n"
        "12 pens are 4 groups of 3, at $2 each: 4 * 2 = 8. The answer is \\boxed{8}.",
    ),
)

TEMPLATES = ("r1", "r1-zero", "few-shot", "chat")


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """``name`` is one of TEMPLATES; ``system`` an optional system turn; ``examples`` few-shot pairs."""

    name: str = "r1"
    system: str | None = None
    examples: tuple[tuple[str, str], ...] = DEFAULT_FEW_SHOT
    prefill: str = THINK_PREFILL  # used by r1 and few-shot

    def __post_init__(self) -> None:
        if self.name not in TEMPLATES:
            raise ValueError(f"unknown template {self.name!r}; choose one of {', '.join(TEMPLATES)}")

    def render(self, prompt: str) -> Rendered:
        if self.name == "r1-zero":
            return Rendered(text=R1_ZERO_TEMPLATE.format(prompt=prompt))
        turns: list[tuple[str, str]] = [("system", self.system)] if self.system else []
        if self.name == "few-shot":
            for q, a in self.examples:
                turns += [("user", q), ("assistant", a)]
        turns.append(("user", prompt))
        prefill = "" if self.name == "chat" else self.prefill
        return Rendered(messages=tuple(turns), prefill=prefill)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "system": self.system}
        if self.name != "chat":
            d["prefill"] = self.prefill if self.name != "r1-zero" else ""
        if self.name == "few-shot":
            d["examples"] = [list(e) for e in self.examples]
        return d

    def fingerprint(self) -> str:
        return stable_hash(self.describe())


def load_examples(path: str | Path) -> tuple[tuple[str, str], ...]:
    """Few-shot exemplars from a JSONL file of ``{"prompt": …, "response": …}`` objects."""
    out = []
    with Path(path).open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = orjson.loads(line)
            if not isinstance(obj, dict) or not {"prompt", "response"} <= obj.keys():
                raise ValueError(f"{path}:{n}: few-shot lines need 'prompt' and 'response'")
            out.append((str(obj["prompt"]), str(obj["response"])))
    if not out:
        raise ValueError(f"{path}: no few-shot examples")
    return tuple(out)
