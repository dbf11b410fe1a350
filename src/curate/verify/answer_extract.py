"""Finding the final answer of a response: the part after ``</think>``, never the reasoning.

R1 template: the ``\\boxed{}`` values in the answer part (the last one is the answer; several different
ones are reported as a conflict, since boxing every candidate is a known reward hack). Without a box we
accept a bare short answer or an anchored phrase ("the answer is 12"). R1-Zero template: the content of
the last ``<answer>...</answer>`` (its boxes if it has any). Pure string work: cheap enough for the
parent process, so only real comparisons travel to the worker pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from curate.text import split_response

Template = Literal["r1", "r1_zero"]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_TAG_RE = re.compile(r"(?s)<answer>(.*?)</answer>")
_ANCHOR_RE = re.compile(
    r"(?is)(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)\s*(?:\.\s|\.?$|\n)"
)
_INLINE_MATH_RE = re.compile(r"^\$+(.*?)\$+$|^\\\((.*?)\\\)$|^\\\[(.*?)\\\]$", re.S)
# A bare answer part is a lone value only if no word is left once LaTeX commands and \text{} are removed.
_LATEX_WORDS_RE = re.compile(r"\\(?:text|mathrm|mbox|textbf)\{[^{}]*\}|\\[A-Za-z]+")
_WORD_RE = re.compile(r"[A-Za-z]{2,}")


@dataclass(frozen=True, slots=True)
class Extraction:
    """What a response offers as its answer. ``candidates`` are distinct (normalized), in order."""

    answer: str | None  # the final answer string (last candidate); None: nothing to score
    candidates: tuple[str, ...]  # every distinct value offered (several boxes): conflict if they differ
    source: Literal["boxed", "answer_tag", "anchor", "bare", "none"]


def boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces, in order."""
    out: list[str] = []
    pos = 0
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            return out
        depth, i = 1, m.end()
        while i < len(text) and depth:
            c = text[i]
            if c == "\\":
                i += 2  # skip escaped characters such as \{ and \}
                continue
            depth += (c == "{") - (c == "}")
            i += 1
        if depth:  # unbalanced: an unfinished box is no answer
            return out
        out.append(text[m.end() : i - 1].strip())
        pos = i


_NORM_SUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\\(?:left|right)(?:\.|\b)"), ""),
    (re.compile(r"\\[!,;:]|(?<!\\)\\\s|~"), ""),  # but not the "\\\\" ending a matrix row
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\\displaystyle"), ""),
)
_SPACE_RE = re.compile(r"\s+")


def normalize(s: str, spaces: bool = False) -> str:
    """Whitespace/spacing-insensitive form used to tell "the same string" apart from "different".

    ``spaces=True`` keeps one space where there was whitespace, for tokenizers: ``\\pi r`` is not ``\\pir``.
    """
    s = s.strip().strip("$").strip()
    for pat, rep in _NORM_SUBS:
        s = pat.sub(rep, s)
    return _SPACE_RE.sub(" " if spaces else "", s).strip().rstrip(".")


def _distinct(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for v in values:
        if v:
            seen.setdefault(normalize(v), v)
    # Keep the order of first appearance, but make the final answer (last value) come last.
    last = normalize(values[-1]) if values and values[-1] else None
    order = [k for k in seen if k != last] + ([last] if last in seen else [])
    return tuple(seen[k] for k in order)


def _strip_inline_math(s: str) -> str:
    s = s.strip()
    m = _INLINE_MATH_RE.match(s)
    if m:
        s = next(g for g in m.groups() if g is not None).strip()
    return s


def _from_text(part: str, bare_max_chars: int) -> Extraction:
    boxes = boxed_contents(part)
    if boxes:
        cands = _distinct(boxes)
        return Extraction(cands[-1] if cands else None, cands, "boxed")
    if _BOX_RE.search(part):
        return Extraction(None, (), "none")  # a box that never closes: the answer was cut off
    bare = _strip_inline_math(part.strip().rstrip("."))
    lone = bare and "\n" not in bare and not _WORD_RE.search(_LATEX_WORDS_RE.sub(" ", bare))
    if lone and len(bare) <= bare_max_chars:
        return Extraction(bare, (bare,), "bare")
    anchors = _ANCHOR_RE.findall(part)
    if anchors:
        value = _strip_inline_math(anchors[-1].rstrip("."))
        if value and len(value) <= bare_max_chars:
            return Extraction(value, (value,), "anchor")
    return Extraction(None, (), "none")


def extract_answer(response: str | None, template: Template = "r1", bare_max_chars: int = 60) -> Extraction:
    """The answer a response gives, taken only from the part after the last ``</think>``."""
    if not response:
        return Extraction(None, (), "none")
    _, part = split_response(response)
    if part is None:
        return Extraction(None, (), "none")
    if template == "r1_zero":
        tags = _ANSWER_TAG_RE.findall(part)
        if not tags or not tags[-1].strip():
            return Extraction(None, (), "none")
        inner = tags[-1]
        boxes = boxed_contents(inner)
        if boxes:
            cands = _distinct(boxes)
            return Extraction(cands[-1] if cands else None, cands, "boxed")
        value = _strip_inline_math(inner.strip().rstrip("."))
        return Extraction(value or None, (value,) if value else (), "answer_tag")
    return _from_text(part, bare_max_chars)


def gold_answer(reference: str | None) -> str | None:
    """The gold value: the last box when the reference is a worked solution, else the reference itself."""
    if reference is None:
        return None
    boxes = boxed_contents(reference)
    if boxes:
        return boxes[-1] or None
    ref = _strip_inline_math(reference)
    # GSM8K solutions end with "#### 72".
    if "####" in ref:
        ref = ref.rsplit("####", 1)[1].strip()
    return ref or None
