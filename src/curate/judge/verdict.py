"""Verdicts: the judge's JSON reply, found in free text and validated against the rubric's schema.

The judge may think first (``<think>…</think>``) or wrap the object in a code fence; the last JSON
object after any reasoning that validates is the verdict. Valid means: ``id`` equal to the request's
nonce (so a verdict copied out of the sample is not accepted), an integer ``score`` on the rubric's
scale, and a string ``rationale``. Anything else raises :class:`VerdictError`: the caller retries once
and then records ``judge.unparseable`` (cannot decide), never a score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from curate.judge.rubrics import Rubric

RATIONALE_CHARS = 300  # judge_rationale is a short note, not a transcript
_DECODER = json.JSONDecoder()


class VerdictError(ValueError):
    """The judge's reply holds no valid verdict."""


@dataclass(frozen=True, slots=True)
class Verdict:
    raw_score: int
    score: float  # normalized to 0..1
    rationale: str


def verdict_schema(rubric: Rubric, nonce: str | None = None) -> dict[str, Any]:
    """JSON Schema of a verdict (for servers that support structured output / guided decoding)."""
    id_schema: dict[str, Any] = {"type": "string"} if nonce is None else {"const": nonce}
    return {
        "type": "object",
        "properties": {
            "id": id_schema,
            "rationale": {"type": "string"},
            "score": {"type": "integer", "minimum": rubric.lo, "maximum": rubric.hi},
        },
        "required": ["id", "rationale", "score"],
    }


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object that decodes starting at some ``{`` in ``text``, in order of position."""
    out: list[dict[str, Any]] = []
    i = text.find("{")
    while i >= 0:
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            out.append(obj)
            i = text.find("{", end)
        else:
            i = text.find("{", i + 1)
    return out


def _score(value: Any, rubric: Rubric) -> int:
    if isinstance(value, bool):
        raise VerdictError("score is a boolean")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise VerdictError(f"score {value!r} is not a number") from None
    if not isinstance(value, int | float) or value != int(value):
        raise VerdictError(f"score {value!r} is not an integer")
    score = int(value)
    if not rubric.lo <= score <= rubric.hi:
        raise VerdictError(f"score {score} outside {rubric.lo}..{rubric.hi}")
    return score


def validate(obj: dict[str, Any], rubric: Rubric, nonce: str | None) -> Verdict:
    if nonce is not None and obj.get("id") != nonce:
        raise VerdictError("id does not match the request")
    if "score" not in obj:
        raise VerdictError("no score")
    rationale = obj.get("rationale", "")
    if not isinstance(rationale, str):
        raise VerdictError("rationale is not a string")
    raw = _score(obj["score"], rubric)
    return Verdict(raw, rubric.normalize(raw), " ".join(rationale.split())[:RATIONALE_CHARS])


def parse_verdict(text: str, rubric: Rubric, nonce: str | None) -> Verdict:
    """The verdict in the judge's reply ``text``; ``nonce=None`` skips the id check (not recommended)."""
    cut = text.rfind("</think>")
    body = text[cut + len("</think>"):] if cut >= 0 else text
    objects = _objects(body)
    if not objects:
        raise VerdictError("no JSON object in the reply")
    last: VerdictError | None = None
    for obj in reversed(objects):
        try:
            return validate(obj, rubric, nonce)
        except VerdictError as e:
            last = e
    assert last is not None
    raise last
