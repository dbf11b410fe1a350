"""Certain verdicts on structured answers without sympy: tuples, intervals and unions, sets, matrices,
equations, numbers in a base.

An answer is split at its top level into a small structure whose leaves are ``fast_eval`` values; two
structures are compared by the rules math-verify applies (measured against it, see the tests), and only
where the verdict is certain. Everything else returns None and goes to math-verify:

- tuples ``(a,b,c)``: ordered, same brackets; a length-2 tuple is also an interval, compared as one;
- unions of intervals: as sets of reals (merged, sorted), so ``(1,2]\\cup(2,3)`` equals ``(1,3)``; the
  bracket at an infinite end does not matter (math-verify reads ``(3,\\infty]`` as ``(3,\\infty)``);
- sets ``\\{...\\}`` and bare lists ``1, 2``: unordered, ``a\\pm b`` inside one stands for two elements;
- matrices: same shape, entry by entry; a matrix never equals a scalar;
- equations: equal when ``lhs - rhs`` of one is a nonzero multiple of the other's (math-verify's rule:
  ``2y = 4x + 6`` is ``y = 2x + 3``);
- numbers with a base subscript (``4210_{5}``): the same digits in the same base; math-verify ignores
  the base and would pass ``4210_{7}``;
- a scalar against a tuple, interval, matrix or a set with another element: different;
- a bare word of three or more letters (``odd``, ``Even``) is a word, compared like ``\\text{odd}``
  (math-verify reads the product o*d*d); list connectors (``1, 2, and 3``, ``6 \\text{ and } 8``) are commas,
  a plain-text unit after a number (``10 weeks``) is dropped (``answer_extract.canonical``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import mpmath

from curate.verify.answer_extract import canonical, normalize, split_top, wrapped
from curate.verify.fast_eval import THOUSANDS_RE, Value, aligned, compare, value

_WORD_RE = re.compile(r"^[A-Za-z]{2,}$")
_MATRIX_RE = re.compile(r"^\\begin\{([pbvBV]?matrix)\}(.*)\\end\{\1\}$", re.S)
_BASE_RE = re.compile(r"^([0-9][0-9A-Za-z]*)_\{?(\d+)\}?$")
_THOUSANDS_PART_RE = re.compile(r"^\d{3}(?:\.\d*)?$")
_IN_RE = re.compile(r"^[A-Za-z]\s*\\in\s*")
_INF_RE = re.compile(r"^([+-]?)\\infty$")
_PM = "\\pm"
_TEXT_RE = re.compile(r"^\\(?:text|textbf|mbox|mathrm|mathbf|mathcal|textnormal)\{\s*\(?([A-Za-z][A-Za-z ]*?)\)?\s*\}$")
# A unit after a value: "5 \\text{cm}", "864 \\mbox{ inches}^2" (math-verify drops these as well).
_UNIT_RE = re.compile(r"(?<=\S)\s*\\(?:text|mbox|mathrm|textnormal)\{[A-Za-z ]*\}(?:\^\{?\d\}?)?$")


def is_collection(answer: str) -> bool:
    """A set or list of several values (``2, 3``, ``\\{1,2\\}``, ``\\pm 2``, ``6 and 8``): boxing each is fine."""
    node = parse(answer)
    if isinstance(node, FSet):
        return len(node.items) > 1
    s = canonical(normalize(answer, spaces=True))
    if THOUSANDS_RE.match(s):
        return False
    if s.startswith("\\{") and s.endswith("\\}"):
        s = s[2:-2]
    elif s.startswith("{") and s.endswith("}"):
        s = s[1:-1]  # {1,2,3}: a set written without backslashes
    parts = split_top(s, ",")
    return (parts is not None and len(parts) > 1) or _PM in s or ";" in s


@dataclass(frozen=True, slots=True)
class Scalar:
    v: Value


@dataclass(frozen=True, slots=True)
class Inf:
    sign: int


Leaf = Scalar | Inf


@dataclass(frozen=True, slots=True)
class Seq:
    """A bracketed list: a tuple, or an interval when it has two entries."""

    open: str
    close: str
    items: tuple[Leaf, ...]


@dataclass(frozen=True, slots=True)
class Union:
    pieces: tuple[Seq, ...]


@dataclass(frozen=True, slots=True)
class FSet:
    items: tuple[Scalar, ...]  # from \{...\} or a bare list "1, 2"


@dataclass(frozen=True, slots=True)
class Matrix:
    rows: tuple[tuple[Scalar, ...], ...]


@dataclass(frozen=True, slots=True)
class Equation:
    lhs: Value
    rhs: Value


@dataclass(frozen=True, slots=True)
class Text:
    """A word answer, ``\\text{Evelyn}`` or ``\\text{(B)}``: compared without case, spaces or parentheses."""

    word: str


@dataclass(frozen=True, slots=True)
class Based:
    digits: str
    base: int
    valid: bool  # every digit below the base (4210_4 is no number)


Node = Scalar | Seq | Union | FSet | Matrix | Equation | Based | Text


# ---- parsing -----------------------------------------------------------------------------------------


def _scalar(s: str) -> Scalar | None:
    s = s.strip()
    v = value(s) if s else None
    return Scalar(v) if v is not None else None


def _leaf(s: str) -> Leaf | None:
    m = _INF_RE.match(s.strip())
    return Inf(-1 if m.group(1) == "-" else 1) if m else _scalar(s)


def _pm_items(s: str) -> list[Scalar] | None:
    """``a\\pm b`` as its two values (one ``\\pm`` at most), else the item itself."""
    s = s.strip()
    if _PM not in s:
        sc = _scalar(s)
        return [sc] if sc else None
    head, _, tail = s.partition(_PM)
    if _PM in tail or "\\mp" in s:
        return None
    out = [_scalar(f"{head}+{tail}" if head else tail), _scalar(f"{head}-{tail}" if head else f"-{tail}")]
    if out[0] is None or out[1] is None:
        return None
    return out  # type: ignore[return-value]


def _seq(s: str) -> Seq | None:
    s = s.strip()
    if not wrapped(s, "([", ")]"):
        return None
    parts = split_top(s[1:-1], ",")
    if parts is None or len(parts) < 2:
        return None
    items = [_leaf(p) for p in parts]
    if any(x is None for x in items):
        return None
    return Seq(s[0], s[-1], tuple(items))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=65536)
def parse(answer: str) -> Node | None:
    """The structure of an answer, or None when it is outside what we decide."""
    s = canonical(normalize(answer, spaces=True))
    if not s:
        return None
    m = _TEXT_RE.match(s)
    if m:
        return Text(m.group(1).replace(" ", "").lower())
    if _WORD_RE.match(s) and len(s) >= 3:
        return Text(s.lower())  # "odd", "Even": a word, not the product o*d*d
    s = _UNIT_RE.sub("", s)
    s = _IN_RE.sub("", s)  # "x \\in [-2,7]" is the interval
    if THOUSANDS_RE.match(s):
        return _scalar(s.replace(",", ""))  # "10,080" is a number, not a list
    m = _BASE_RE.match(s)
    if m:
        digits, base = m.group(1).lower(), int(m.group(2))
        return Based(digits, base, 2 <= base <= 36 and all(int(c, 36) < base for c in digits))
    negated = s.startswith("-\\begin")
    if negated:
        s = s[1:]  # -M: a matrix times -1
    m = _MATRIX_RE.match(s)
    if m:
        rows = []
        for row in m.group(2).split("\\\\"):
            if not row.strip():
                continue
            cells = [_scalar(f"-({c})" if negated else c) for c in row.split("&")]
            if any(c is None for c in cells):
                return None
            rows.append(tuple(cells))
        if not rows or len({len(r) for r in rows}) != 1:
            return None
        return Matrix(tuple(rows))  # type: ignore[arg-type]
    pieces = split_top(s, "\\cup")
    if pieces is not None and len(pieces) > 1:
        seqs = [_seq(p) for p in pieces]
        if any(q is None or len(q.items) != 2 for q in seqs):
            return None
        return Union(tuple(seqs))  # type: ignore[arg-type]
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        parts = split_top(inner, ",")
        if parts is None or "\\{" in inner:
            return None
        items: list[Scalar] = []
        for p in parts:
            got = _pm_items(p)
            if got is None:
                return None
            items += got
        return FSet(tuple(items))
    if s[0] in "([" and (seq := _seq(s)) is not None:
        return seq
    eq = split_top(s, "=")
    if eq is not None and len(eq) == 2:
        lhs, rhs = (value(x) if x.strip() else None for x in eq)
        return Equation(lhs, rhs) if lhs is not None and rhs is not None else None
    parts = split_top(s, ",")
    if parts is not None and len(parts) > 1:
        if "=" in s or any(_THOUSANDS_PART_RE.match(p) for p in parts[1:]):
            return None  # "10,080" is a number ("32, 349" with its space is a list); "n=2, 3" is not ours
        bare: list[Scalar] = []
        for p in parts:
            got = _pm_items(p)
            if got is None:
                return None
            bare += got
        return FSet(tuple(bare))
    if _PM in s:
        pm = _pm_items(s)  # "\\pm 2" is the set {2, -2}, as in math-verify
        return FSet(tuple(pm)) if pm else None
    return _scalar(s)


# ---- comparing -----------------------------------------------------------------------------------------


def _all(verdicts: list[bool | None]) -> bool | None:
    """Entry-by-entry: any different is different; all equal is equal; else undecided."""
    if any(v is False for v in verdicts):
        return False
    return True if all(verdicts) else None


def _leaf_cmp(a: Leaf, b: Leaf) -> bool | None:
    if isinstance(a, Inf) or isinstance(b, Inf):
        return isinstance(a, Inf) and isinstance(b, Inf) and a.sign == b.sign
    return compare(a.v, b.v)


def _set_cmp(a: tuple[Scalar, ...], b: tuple[Scalar, ...]) -> bool | None:
    """Unordered: every element of each side equal to some element of the other."""
    table = [[compare(x.v, y.v) for y in b] for x in a]
    cols = [[row[j] for row in table] for j in range(len(b))]
    if any(all(v is False for v in row) for row in table) or any(all(v is False for v in c) for c in cols):
        return False
    if all(any(v is True for v in row) for row in table) and all(any(v is True for v in c) for c in cols):
        return True
    return None


# An interval as numbers: (lo, lo_closed, hi, hi_closed); an infinite end is never closed.
_Interval = tuple[Any, bool, Any, bool]


def _const(leaf: Leaf) -> Any:
    if isinstance(leaf, Inf):
        return mpmath.inf if leaf.sign > 0 else -mpmath.inf
    v = leaf.v
    if v.letters or v.decimal or v.values[0] is None:
        raise ValueError  # only exact constants: merging needs certain order and equality
    return v.values[0]


def _intervals(pieces: tuple[Seq, ...]) -> list[_Interval] | None:
    """Pieces merged into sorted, disjoint, non-touching intervals (a canonical form); None if unsure."""
    ivs: list[_Interval] = []
    try:
        for q in pieces:
            lo, hi = _const(q.items[0]), _const(q.items[1])
            ivs.append((lo, q.open == "[" and mpmath.isfinite(lo), hi, q.close == "]" and mpmath.isfinite(hi)))
    except ValueError:
        return None
    with mpmath.workdps(60):
        ends = [x for iv in ivs for x in (iv[0], iv[2]) if mpmath.isfinite(x)]
        for i, a in enumerate(ends):  # every pair of ends equal or clearly apart, never "nearly equal"
            for b in ends[i + 1 :]:
                if a != b and abs(a - b) <= 1e-9 * max(abs(a), abs(b)):
                    return None
        if any(lo >= hi for lo, _, hi, _ in ivs):
            return None  # empty or reversed: a tuple, not an interval
        ivs.sort(key=lambda iv: (iv[0], not iv[1]))
        out = [ivs[0]]
        for lo, lc, hi, hc in ivs[1:]:
            plo, plc, phi, phc = out[-1]
            if lo < phi or (lo == phi and (lc or phc)):
                if hi > phi or (hi == phi and hc):
                    out[-1] = (plo, plc, hi, hc)
            else:
                out.append((lo, lc, hi, hc))
    return out


def _union_cmp(a: tuple[Seq, ...], b: tuple[Seq, ...]) -> bool | None:
    if any(len(q.items) != 2 for q in a + b):
        return None
    ia, ib = _intervals(a), _intervals(b)
    if ia is None or ib is None:
        return None
    return ia == ib


def _equation_cmp(a: Equation, b: Equation) -> bool | None:
    """Same equation when ``f_b = c * f_a`` for one nonzero constant c (f = lhs - rhs)."""
    fa = [None if (x is None or y is None) else x - y for x, y in zip(*aligned(a.lhs, a.rhs), strict=True)]
    fb = [None if (x is None or y is None) else x - y for x, y in zip(*aligned(b.lhs, b.rhs), strict=True)]
    if len(fa) != len(fb) or a.lhs.decimal or a.rhs.decimal or b.lhs.decimal or b.rhs.decimal:
        return None
    ratios = []
    with mpmath.workdps(60):
        for x, y in zip(fa, fb, strict=True):
            if x is None or y is None:
                continue
            if abs(x) < 1e-30 or abs(y) < 1e-30:
                if max(abs(x), abs(y)) > 1e-9:
                    return False  # zero on one side only
                continue
            ratios.append(y / x)
        if len(ratios) < 2:
            return None  # constants or undefined points: an equation between numbers is not ours
        r0 = ratios[0]
        rels = [abs(r - r0) / abs(r0) for r in ratios[1:]]
        if all(r < mpmath.mpf(10) ** -40 for r in rels):
            return True
        return False if any(r > 1e-9 for r in rels) else None


def _scalar_vs(s: Scalar, other: Node) -> bool | None:
    """A single value against a collection: math-verify never equates them, except a set of one value."""
    if isinstance(other, FSet):
        verdicts = [compare(s.v, x.v) for x in other.items]
        return False if any(v is False for v in verdicts) else None
    if isinstance(other, (Seq, Union, Matrix)):
        return False
    if isinstance(other, Equation):
        # math-verify compares a value with the equation's right side ("0" matches "2x+y=0"): a different
        # right side is certain; a match is math-verify's call.
        return False if compare(s.v, other.rhs) is False else None
    if isinstance(other, Based):
        # math-verify reads 204_5 as 204: a value other than the digits read in base 10 is different.
        if other.digits.isdigit() and not s.v.letters:
            return False if compare(s.v, value(other.digits)) is False else None  # type: ignore[arg-type]
        return None
    return None


def _seq_cmp(a: Seq, b: Seq) -> bool | None:
    if len(a.items) == 2 and len(b.items) == 2:
        iv = _union_cmp((a,), (b,))
        if iv is not None:
            return iv
    if (a.open, a.close) != (b.open, b.close):
        return None
    if len(a.items) != len(b.items):
        return False  # tuples of different lengths
    return _all([_leaf_cmp(x, y) for x, y in zip(a.items, b.items, strict=True)])


def _text_vs(t: Text, other: Node) -> bool | None:
    if isinstance(other, Text):
        return t.word == other.word
    if isinstance(other, Scalar):
        # "\\text{(B)}" against "B": the letter; against a number or a formula in other letters: different.
        if t.word in ("e", "i"):
            return None  # choice (E) or Euler's e, choice (I) or the symbol i: math-verify's call
        if len(t.word) == 1 and other.v.letters == {t.word}:
            return compare(other.v, value(t.word)) if value(t.word) else None  # type: ignore[arg-type]
        return False if len(t.word) > 1 or t.word not in other.v.letters else None
    return False if isinstance(other, (Seq, Union, Matrix, FSet)) else None


def compare_nodes(g: Node, p: Node) -> bool | None:
    if isinstance(g, Text):
        return _text_vs(g, p)
    if isinstance(p, Text):
        return _text_vs(p, g)
    if isinstance(g, Scalar) and isinstance(p, Scalar):
        return compare(g.v, p.v)
    if isinstance(g, Scalar):
        return _scalar_vs(g, p)
    if isinstance(p, Scalar):
        return _scalar_vs(p, g)
    if isinstance(g, Seq) and isinstance(p, Seq):
        return _seq_cmp(g, p)
    if isinstance(g, (Seq, Union)) and isinstance(p, (Seq, Union)):
        return _union_cmp(g.pieces if isinstance(g, Union) else (g,), p.pieces if isinstance(p, Union) else (p,))
    if isinstance(g, FSet) and isinstance(p, FSet):
        return _set_cmp(g.items, p.items)
    if isinstance(g, FSet) and isinstance(p, Seq) or isinstance(g, Seq) and isinstance(p, FSet):
        # math-verify lets a tuple match a set with the same elements; different elements never match.
        seq, fset = (g, p) if isinstance(g, Seq) else (p, g)
        if any(isinstance(x, Inf) for x in seq.items):
            return None
        return False if _set_cmp(seq.items, fset.items) is False else None  # type: ignore[arg-type]
    if isinstance(g, Matrix) and isinstance(p, Matrix):
        if len(g.rows) != len(p.rows) or len(g.rows[0]) != len(p.rows[0]):
            return None
        return _all(
            [compare(x.v, y.v) for rg, rp in zip(g.rows, p.rows, strict=True) for x, y in zip(rg, rp, strict=True)]
        )
    if isinstance(g, Equation) and isinstance(p, Equation):
        return _equation_cmp(g, p)
    if isinstance(g, Based) and isinstance(p, Based):
        if g.base == p.base:
            return g.digits.lstrip("0") == p.digits.lstrip("0")
        if not (g.valid and p.valid):
            return False  # digits that the base does not have: not a number in it
        return None if int(g.digits, g.base) == int(p.digits, p.base) else False
    if isinstance(g, Based) or isinstance(p, Based):
        return False if isinstance(p if isinstance(g, Based) else g, (Seq, Union, Matrix, FSet)) else None
    if isinstance(g, Equation) or isinstance(p, Equation):
        # An equation against a tuple, an interval, a set or a matrix: math-verify never matches them.
        return False if isinstance(p if isinstance(g, Equation) else g, (Seq, Union, Matrix, FSet)) else None
    return None


def compare_structured(gold: str, pred: str) -> bool | None:
    """True/False when both answers parse into structures and the verdict is certain, else None."""
    g, p = parse(gold), parse(pred)
    if g is None or p is None:
        return None
    return compare_nodes(g, p)
