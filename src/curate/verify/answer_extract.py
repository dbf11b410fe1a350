"""Finding the final answer of a response: the part after ``</think>``, never the reasoning.

Decided per row, in this order (the first that finds something wins; ``method`` says which):

1. ``<answer>...</answer>`` (R1-Zero): the last non-empty tag; inside it the same rules run again, so a
   box, an anchor or prose (``<answer>The answer is 1/2</answer>``) all work;
2. ``\\boxed{}`` / ``\\fbox{}`` values (``boxed``); several distinct ones are all kept as candidates and the
   comparison decides (each root of a set boxed: fine; competing values for one answer: a conflict);
   a strong anchor written *after* the last box (``Final Answer: The final answer is 7.78``) wins;
3. a strong anchor (``anchor``): "final answer is X", "Final Answer: X" (``I hope it is correct`` dropped,
   a sentence reduced to its value: ``The largest $n$ is 34`` gives ``34``);
4. the whole answer part is one short value (``bare``): ``$x = 5$``, ``42``, ``odd``, ``28 percent``, a matrix;
5. a weak anchor (``anchor``): "the answer is X", "Answer: X";
6. the last sentence with a math span or a number (in its last 2,000 characters): its last span
   (``math_span``: ``$...$``, ``\\(...\\)``, ``\\[...\\]``, ``$$...$$``; one after "about" or ``\\approx`` is
   skipped; a ``$`` pair across a line break is read as two dollar signs, not math), else its last
   number (``last_number``: "... so the probability is 2/3.").

Nothing found: ``none`` (the verifier reports ``no_answer``). Pure string work, cheap enough for the
parent process, so only real comparisons travel to the worker pool.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from curate.checks.text import split_response

Template = Literal["r1", "r1_zero"]
Method = Literal["boxed", "answer_tag", "anchor", "bare", "math_span", "last_number", "none"]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_TAG_RE = re.compile(r"(?s)<answer>(.*?)</answer>")
# Chat-template tokens a response may run into (<|im_start|>user ...): the answer ends there.
_SPECIAL_RE = re.compile(r"<\|[A-Za-z_]+\|>|<｜[^｜]*｜>")
_HOPE_RE = re.compile(r"(?i)\s*I hope (?:it|this) is correct\.?")
_STRONG_RE = re.compile(r"(?i)final\s+answer[*\s]*(?:is|:|=)[*\s]*:?[*\s]*(?:the\s+final\s+answer\s+is\s*:?\s*)?")
_WEAK_RE = re.compile(r"(?i)(?:\bthe\s+answer|\banswer)[*\s]*(?:is|:|=)[*\s]*:?[*\s]*")
# "..., which is about $0.42$": an approximation after the answer, not the answer.
_APPROX_RE = re.compile(r"(?i)(?:about|approximately|roughly|around|nearly|\\approx|≈)\s*$")
_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\(([^\n]+?)\\\)|(?<![\\$])\$((?:[^$\n\\]|\\.)+?)\$", re.S)
_INLINE_MATH_RE = re.compile(r"^\$+(.*?)\$+$|^\\\((.*?)\\\)$|^\\\[(.*?)\\\]$", re.S)
# A value is lone if no word is left once LaTeX commands and \text{} are removed.
_LATEX_WORDS_RE = re.compile(r"\\(?:text|mathrm|mbox|textbf|textnormal)\{[^{}]*\}|\\[A-Za-z]+")
_WORD_RE = re.compile(r"[A-Za-z]{2,}")
_NUMBER_RE = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?|[-+]?\.\d+%?")
# A bare answer may be one word ("odd", "Yes"), a number with a unit ("28 percent", "10 cm") or a matrix.
_BARE_WORD_RE = re.compile(r"^[A-Za-z]{1,20}$|^[-+]?\d[\d,.]*%?\s+[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})?$")
_MATRIX_RE = re.compile(r"^\\begin\{([pbvBV]?matrix|array)\}.*\\end\{\1\}$", re.S)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?\x00])\s+(?=[A-Z\\$\x00])|\n+")
# A "$" or "\(" pair across a line break is not math (two dollar signs, or a broken span): skipped.
_BROKEN_SPAN_RE = re.compile(r"(?<!\\)\$[^$]*\$|\\\(.*?\\\)", re.S)
_IS_RE = re.compile(r"(?i)\b(?:is|are|equals|=)\s+")
# Between two boxes of one answer: connectors only (", ", "and", "or", "\quad", "for part (a) and").
_JOIN_RE = re.compile(
    r"(?i)[\s,;$.&+]|\\\\|\\[(),;!:\s]|\\q?quad|\\text\{[^{}]{0,24}\}|\b(?:and|or|for|part)\b|\([a-z]\)"
)


_TAIL_CHARS = 2000  # anchors and the final-sentence fallback look at no more text than this


@dataclass(frozen=True, slots=True)
class Extraction:
    """What a response offers as its answer. ``candidates`` are distinct (normalized), in order."""

    answer: str | None  # the final answer string (last candidate); None: nothing to score
    candidates: tuple[str, ...]  # every distinct value offered (several boxes)
    source: Method  # how it was found (the ``math_extract_method`` column)
    joined: bool = True  # several boxes separated only by connectors ("\boxed{2} and \boxed{3}")


NONE = Extraction(None, (), "none")


def _box_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every balanced ``\\boxed{...}`` / ``\\fbox{...}``, in order."""
    out: list[tuple[int, int, str]] = []
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
        out.append((m.start(), i, text[m.end() : i - 1].strip()))
        pos = i


def boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces, in order."""
    return [c for _, _, c in _box_spans(text)]


_NORM_SUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\\(?:left|right)(?:\.|\b)"), ""),
    (re.compile(r"(?<=\d),\\!\s*(?=\d)"), ""),  # 11,\! 111 and 56,\!01,\!78: digit grouping, any size
    (re.compile(r",\\!\s*"), ","),
    (re.compile(r"\\[!,;:]|(?<!\\)\\\s|~|\\q?quad\b"), " "),  # but not the "\\\\" ending a matrix row
    (re.compile(r"\\[dtc]frac"), r"\\frac"),
    (re.compile(r"\\displaystyle"), ""),
    (re.compile(r"\{,\}"), ","),  # 14{,}916
    (re.compile(r"(?<=\d)\\$"), ""),  # "185\": a stray backslash after a number
    (re.compile(r"(?<=\d)\s*(?:percent(?:age)?|pct)\b"), r"\\%"),  # 28 percent
)
_SPACE_RE = re.compile(r"\s+")


def normalize(s: str, spaces: bool = False) -> str:
    """Whitespace/spacing-insensitive form used to tell "the same string" apart from "different".

    ``spaces=True`` keeps one space where there was whitespace, for tokenizers: ``\\pi r`` is not ``\\pir``.
    Short strings go through a cache: answers repeat (every sample of a prompt has its reference, and
    most of them the same final answer), and the ten substitutions were 0.5 of the math check's 1.0
    CPU-seconds on 20k traces. A pure function of its arguments, so the cache changes no result.
    """
    return _normalize_cached(s, spaces) if len(s) <= _CACHED_LEN else _normalize(s, spaces)


_CACHED_LEN = 256  # longer strings (a boxed paragraph) are rare and would crowd the cache


@functools.lru_cache(maxsize=1 << 15)
def _normalize_cached(s: str, spaces: bool) -> str:
    return _normalize(s, spaces)


def _normalize(s: str, spaces: bool) -> str:
    s = s.strip().strip("$").strip()
    for pat, rep in _NORM_SUBS:
        s = pat.sub(rep, s)
    return _SPACE_RE.sub(" " if spaces else "", s).strip().rstrip(".").rstrip()


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


def _lone(s: str, max_chars: int) -> bool:
    if _MATRIX_RE.match(s) or _BARE_WORD_RE.match(s):
        return len(s) <= 8 * max_chars
    return bool(s) and len(s) <= max_chars and "\n" not in s and not _WORD_RE.search(_LATEX_WORDS_RE.sub(" ", s))


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 - the last match is the point
        pass
    return found


def _value(text: str, max_chars: int, depth: int = 0) -> str | None:
    """The value a phrase states: ``$\\frac{1}{2}$.``, ``The largest $n$ is 34.``, ``Evelyn``."""
    text = _HOPE_RE.sub("", text[:_TAIL_CHARS]).strip().strip("*").rstrip(".").strip()
    v = _strip_inline_math(text)
    if _lone(v, max_chars):
        return v
    boxes = boxed_contents(text)
    if boxes:
        return boxes[-1]
    m = _last(_IS_RE, text)
    if m is not None and depth < 2:
        got = _value(text[m.end() :], max_chars, depth + 1)
        if got:
            return got
    spans = [next(g for g in s.groups() if g is not None).strip() for s in _SPAN_RE.finditer(text)]
    if spans and _lone(spans[-1], max_chars):
        return spans[-1]
    nums: list[str] = _NUMBER_RE.findall(text)
    if nums:
        return nums[-1].replace("$", "\\$")
    words = text.split()
    return v if 0 < len(words) <= 4 and len(v) <= max_chars else None


def _anchor(pattern: re.Pattern[str], part: str) -> tuple[int, str] | None:
    """(position, text) after the last match of ``pattern``, up to the end of its sentence or line."""
    m = _last(pattern, part)
    if m is None:
        return None
    rest = part[m.end() : m.end() + _TAIL_CHARS]
    end = re.search(r"\n\s*\n|(?<![\d\\])\.(?:\s|$)(?![^$]*\$[^$]*$)", rest)
    return m.start(), (rest[: end.start()] if end else rest).strip()


def _joined(text: str, spans: list[tuple[int, int, str]]) -> bool:
    """Only connectors between the boxes (a unit word at most: ``\\boxed{1} papers and \\boxed{2} bins``)."""
    return all(len(_JOIN_RE.sub(" ", text[a[1] : b[0]]).split()) <= 1 for a, b in zip(spans, spans[1:], strict=False))


def _from_text(part: str, max_chars: int) -> Extraction:
    part = _SPECIAL_RE.split(part, 1)[0]
    spans = _box_spans(part)
    strong = _anchor(_STRONG_RE, part)
    if spans and not (strong and strong[0] > spans[-1][1]):
        cands = _distinct([c for _, _, c in spans])
        if not cands:
            return NONE
        return Extraction(cands[-1], cands, "boxed", _joined(part, spans))
    if strong and (v := _value(strong[1], max_chars)):
        return Extraction(v, (v,), "anchor")
    if _BOX_RE.search(part):
        return NONE  # a box that never closes: the answer was cut off
    bare = _strip_inline_math(part.strip().rstrip("."))
    if _lone(bare, max_chars):
        return Extraction(bare, (bare,), "bare")
    weak = _anchor(_WEAK_RE, part)
    if weak and (v := _value(weak[1], max_chars)):
        return Extraction(v, (v,), "anchor")
    # The last sentence with a math span or a number states the answer ("... the probability is 2/3.").
    part = part[-_TAIL_CHARS:]  # only the end matters, and it keeps the regexes linear on huge parts
    math_spans: list[str] = []

    def keep(m: re.Match[str]) -> str:  # spans masked, so sentence splitting never cuts inside one
        math_spans.append(next(g for g in m.groups() if g is not None))
        return f"\x00{len(math_spans) - 1}\x00"

    masked = _BROKEN_SPAN_RE.sub(" ", _SPAN_RE.sub(keep, _HOPE_RE.sub("", part)))
    for sentence in reversed(_SENTENCE_END_RE.split(masked)):
        found = [
            math_spans[int(m[1])].strip()
            for m in _MASKED_RE.finditer(sentence)
            if not _APPROX_RE.search(sentence[max(0, m.start() - 20) : m.start()])
        ]
        found = [f for f in found if f]
        if found:
            v = found[-1]
            return Extraction(v, (v,), "math_span") if len(v) <= 8 * max_chars else NONE
        nums = _NUMBER_RE.findall(sentence)
        if nums:
            v = nums[-1].replace("$", "\\$")
            return Extraction(v, (v,), "last_number")
    return NONE


_MASKED_RE = re.compile(r"\x00(\d+)\x00")


def extract_answer(response: str | None, template: Template = "r1", bare_max_chars: int = 60) -> Extraction:
    """The answer a response gives, taken only from the part after the last ``</think>``.

    Every form is tried per row. ``template="r1_zero"`` is the strict R1-Zero rule reward: only an
    ``<answer>`` tag counts.
    """
    if not response:
        return NONE
    _, part = split_response(response)
    if part is None:
        return NONE
    tags = [t for t in _ANSWER_TAG_RE.findall(part) if t.strip()]
    if tags:
        ext = _from_text(tags[-1], bare_max_chars)
        if ext.source in ("bare", "anchor", "math_span", "last_number"):
            return Extraction(ext.answer, ext.candidates, "answer_tag", ext.joined)
        if ext.answer is None:
            v = _value(tags[-1], bare_max_chars)
            return Extraction(v, (v,), "answer_tag") if v else NONE
        return ext
    if template == "r1_zero":
        return NONE
    return _from_text(part, bare_max_chars)


def gold_answer(reference: str | None) -> str | None:
    """The gold value of a reference: its boxes, else its anchored or final value, else the reference.

    Several boxes joined only by connectors (``\\boxed{1} and \\boxed{-2}``) are one answer, a list;
    several boxes with other text between them say different things, and there is no gold (None).
    """
    if reference is None:
        return None
    ref = _SPECIAL_RE.split(reference, 1)[0]
    spans = _box_spans(ref)
    if spans:
        vals = _distinct([c for _, _, c in spans])
        if len(vals) <= 1:
            return vals[0] if vals else None
        return ", ".join(vals) if _joined(ref, spans) else None
    # GSM8K solutions end with "#### 72".
    if "####" in ref:
        return ref.rsplit("####", 1)[1].strip() or None
    short = _strip_inline_math(ref)
    if len(short) <= 200 and "\n" not in short.strip():
        return short or None
    ext = _from_text(ref, 200)
    return ext.answer or (short or None)


# ---- canonical forms and bracket-aware splitting (shared with fast_struct) ------------------------------

_OPEN, _CLOSE = "([{", ")]}"
# The same in plain text, after a number: "10 weeks", "10 cm^2", "5 square meters".
_PLAIN_UNIT_RE = re.compile(
    r"^([-+]?[\d.,]*\d[\d.,]*|[^A-Za-z]*\})\s+[A-Za-z]{2,}(?:\s+[A-Za-z]{2,}){0,2}(?:\^\{?\d\}?)?$"
)
# "1, 2, and 3", "6 \text{ and } 8", "21, 16 or 11": list connectors, read as commas.
_CONNECTOR_RE = re.compile(r"(?<=\S)\s*,?\s*(?:\\text\{\s*(?:and|or)\s*\}|\band\b|\bor\b)\s*(?=\S)")
_PRIME_RE = re.compile(r"'|\\prime\b")


_CHOICE_RE = re.compile(r"^\(?([A-E])\)?[.:]\s+\S")


def strip_units(s: str) -> str:
    """``10 weeks`` -> ``10``: a plain-text unit after a number (math-verify reads it as a product);
    ``C. x = 42`` -> ``C``: a choice letter with its working."""
    m = _PLAIN_UNIT_RE.match(s.strip()) or _CHOICE_RE.match(s.strip())
    return m.group(1) if m else s


def canonical(s: str) -> str:
    """The answer with plain units dropped and list connectors written as commas (for both paths)."""
    s = strip_units(s)
    if _CONNECTOR_RE.search(s) and (parts := split_top(s, "=")) is not None and len(parts) == 1:

        def top_level(m: re.Match[str]) -> str:  # "\text{Evelyn and Briana}" is one name, not a list
            before = s[: m.start()]
            return (
                ", "
                if before.count("{") - before.count("\\{") == before.count("}") - before.count("\\}")
                else m.group()
            )

        s = _CONNECTOR_RE.sub(top_level, s)
    return s


def primes(s: str) -> int:
    """How many prime marks an answer has: ``f'(x)`` is not ``f(x)`` (math-verify drops the mark)."""
    return len(_PRIME_RE.findall(s))


def split_top(s: str, sep: str) -> list[str] | None:
    """``s`` split at ``sep`` outside any brackets; None when the brackets do not balance."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c == "\\" and s.startswith(sep, i) and depth == 0 and sep.startswith("\\"):
            parts.append(s[start:i])
            i += len(sep)
            start = i
            continue
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    if depth != 0:
        return None
    parts.append(s[start:])
    return parts


def wrapped(s: str, opens: str, closes: str) -> bool:
    """``s`` is one bracketed group: its first bracket closes at its last character."""
    if len(s) < 2 or s[0] not in opens or s[-1] not in closes:
        return False
    depth = 0
    for i, c in enumerate(s):
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0 and i != len(s) - 1:
                return False
    return True
