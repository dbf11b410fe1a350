"""Verdicts: the judge's JSON reply, found in free text and validated against the rubric's schema.

The judge may think first (``<think>…</think>``) or wrap the object in a code fence. After any reasoning,
the reply must hold exactly one verdict: a JSON object carrying the request's nonce as ``id`` (objects
with another id, e.g. one quoted from the sample, are not verdicts for this request and are ignored).
Valid means: an integer, finite ``score`` on the rubric's scale (``NaN``, ``Infinity``, ``"nan"`` are
not), a string ``rationale``, and no key written twice. Two or more verdicts (a second one echoed after
the real one, say because the sample asked for it), a duplicated key or anything else raises
:class:`VerdictError`: the caller retries once and then records ``judge.unparseable`` (cannot decide),
never a score. Which of two verdicts is "the real one" cannot be decided, so neither is taken.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from curate.judge.rubrics import Rubric

RATIONALE_CHARS = 300  # judge_rationale is a short note, not a transcript


class _Obj(dict[str, Any]):
    """A decoded JSON object that remembers keys written more than once (the plain dict keeps the last)."""

    duplicates: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


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
        except (ValueError, RecursionError):
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
    if isinstance(value, float) and not math.isfinite(value):
        raise VerdictError(f"score {value!r} is not a finite number")
    if not isinstance(value, int | float) or value != int(value):
        raise VerdictError(f"score {value!r} is not an integer")
    score = int(value)
    if not rubric.lo <= score <= rubric.hi:
        raise VerdictError(f"score {score} outside {rubric.lo}..{rubric.hi}")
    return score


def validate(obj: dict[str, Any], rubric: Rubric, nonce: str | None) -> Verdict:
    if nonce is not None and obj.get("id") != nonce:
        raise VerdictError("id does not match the request")
    dup = getattr(obj, "duplicates", ())
    if dup:
        raise VerdictError(f"key(s) {', '.join(sorted(set(dup)))} written more than once")
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
    body = text[cut + len("</think>") :] if cut >= 0 else text
    objects = _objects(body)
    if not objects:
        raise VerdictError("no JSON object in the reply")
    # This request's verdicts: objects with its nonce (any object with a score when no nonce is used).
    mine = [o for o in objects if (o.get("id") == nonce if nonce is not None else "score" in o)]
    if len(mine) > 1:
        raise VerdictError(f"{len(mine)} verdicts in one reply")
    if not mine:  # the last object is not a verdict for this request: its error says why
        _validate_safe(objects[-1], rubric, nonce)
        raise VerdictError("no verdict in the reply")
    return _validate_safe(mine[0], rubric, nonce)


def _validate_safe(obj: dict[str, Any], rubric: Rubric, nonce: str | None) -> Verdict:
    """:func:`validate`, with any surprise in the judge's reply turned into a :class:`VerdictError`."""
    try:
        return validate(obj, rubric, nonce)
    except VerdictError:
        raise
    except (ValueError, TypeError, OverflowError) as e:  # never crash the check on a judge's reply
        raise VerdictError(f"invalid verdict: {type(e).__name__}: {e}") from None
