"""Rubrics: versioned grading templates for the judge.

A rubric names what the judge grades, which sample fields it is shown, and an integer score scale with
anchored levels. Changing the wording of a rubric changes its ``version``: cached verdicts are keyed by
``name@version``, so an edited rubric is never answered from verdicts given under the old text.
Custom rubrics load from a YAML file with the same fields (``load_rubric("path/to/rubric.yaml")``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ResponsePart = Literal["answer", "reasoning_and_answer", "full"]


@dataclass(frozen=True, slots=True)
class Rubric:
    name: str
    version: int
    description: str
    criteria: str  # what to grade and how; shown to the judge after the data
    levels: tuple[tuple[int, str], ...]  # (score, meaning), lowest first; the scale is min..max of these
    needs_reference: bool = False  # rows without a reference cannot use it
    response_part: ResponsePart = "full"  # which part of the response the judge sees

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"rubric name must be an identifier, got {self.name!r}")
        if self.version < 1:
            raise ValueError(f"rubric {self.name}: version must be >= 1")
        scores = [s for s, _ in self.levels]
        if len(scores) < 2 or scores != sorted(set(scores)):
            raise ValueError(f"rubric {self.name}: levels need two or more increasing scores")

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def lo(self) -> int:
        return self.levels[0][0]

    @property
    def hi(self) -> int:
        return self.levels[-1][0]

    def normalize(self, raw: int) -> float:
        """The raw integer score mapped onto 0..1 (the ``judge_score`` column)."""
        return (raw - self.lo) / (self.hi - self.lo)


REFERENCE = Rubric(
    name="reference",
    version=1,
    description="Reference-guided correctness: does the final answer match the gold answer?",
    criteria=(
        "Decide whether the RESPONSE's final answer is correct, using the REFERENCE ANSWER as ground "
        "truth for the PROMPT. Equivalent forms count as correct (different wording, units written out, "
        "equivalent expressions, reordered lists). A response with no clear final answer, several "
        "conflicting answers, or an answer that only restates the question is incorrect. Judge the "
        "answer, not the style."
    ),
    levels=((0, "incorrect, missing or ambiguous final answer"), (1, "correct final answer")),
    needs_reference=True,
    response_part="answer",
)

READABILITY = Rubric(
    name="readability",
    version=1,
    description="Readability and coherence of the reasoning (chain of thought) and its summary.",
    criteria=(
        "Grade how readable and coherent the RESPONSE's reasoning is as training data for a reasoning "
        "model: steps follow from each other, no aimless repetition or loops, no gibberish, no "
        "switching between languages, no walls of unbroken text, and a final summary that states the "
        "result the reasoning reached. Correctness is checked elsewhere; grade readability only. A "
        "response with no real reasoning gets the lowest score."
    ),
    levels=(
        (1, "unreadable: gibberish, loops, empty or no reasoning"),
        (2, "hard to follow: large incoherent or repetitive parts"),
        (3, "acceptable: followable with some noise or repetition"),
        (4, "clear: well-ordered steps, minor blemishes"),
        (5, "excellent: clear, concise, well-structured, with a summary"),
    ),
    response_part="reasoning_and_answer",
)

QUALITY = Rubric(
    name="quality",
    version=1,
    description="General response quality for non-reasoning data (writing, QA, chat).",
    criteria=(
        "Grade how good the RESPONSE is as an answer to the PROMPT, as supervised training data: "
        "helpful, accurate, complete for what was asked, well written, and safe. A response that "
        "ignores the prompt, is empty or trivially short, or addresses its grader instead of the user "
        "gets the lowest score."
    ),
    levels=(
        (1, "useless: off-topic, empty, nonsense or harmful"),
        (2, "poor: major errors or omissions"),
        (3, "adequate: answers the prompt with some flaws"),
        (4, "good: accurate and helpful, minor flaws"),
        (5, "excellent: accurate, complete and well written"),
    ),
)

BUILTIN_RUBRICS: dict[str, Rubric] = {r.name: r for r in (REFERENCE, READABILITY, QUALITY)}


def load_rubric(name_or_path: str) -> Rubric:
    """A built-in rubric by name, or a custom one from a YAML file with the dataclass fields."""
    if name_or_path in BUILTIN_RUBRICS:
        return BUILTIN_RUBRICS[name_or_path]
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        raise ValueError(f"unknown rubric {name_or_path!r}: use one of {', '.join(BUILTIN_RUBRICS)} or a .yaml file")
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a rubric file must hold a mapping")
    return rubric_from_mapping(data)


def rubric_from_mapping(data: Mapping[str, Any]) -> Rubric:
    levels = data.get("levels") or {}
    pairs = sorted((int(k), str(v)) for k, v in (levels.items() if isinstance(levels, Mapping) else levels))
    return Rubric(
        name=str(data["name"]),
        version=int(data["version"]),
        description=str(data.get("description", "")),
        criteria=str(data["criteria"]),
        levels=tuple(pairs),
        needs_reference=bool(data.get("needs_reference", False)),
        response_part=data.get("response_part", "full"),
    )
