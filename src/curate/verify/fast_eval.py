"""Exact-enough evaluation of simple LaTeX expressions, to skip sympy when the verdict is certain.

Most math answers are expressions built from integers, decimals, ``\\frac``, ``\\sqrt``, ``\\pi``, single-letter
variables, ``e``, ``+ - * / ^`` and parentheses. Parsing them through math-verify's ANTLR grammar costs ~5-10 ms
each (and sympy's simplification more); evaluating them here at 60 digits costs microseconds.

An expression is evaluated at a few fixed points (one value per variable; constants need one point).
Equal at every point to 1e-40 is equal (for constants: exactly; for polynomials and other analytic forms:
identical functions, the classic randomized identity test), apart by more than 1e-9 at one point is
different. One point gives variables mixed signs, so ``\\sqrt{x^2}`` and ``x`` differ as they do for sympy.

Anything outside the small, unambiguous subset returns None and goes to math-verify, which stays the
authority: ``E`` and ``I`` (sympy's constants), adjacent letters (``xy``, or units such as ``cm``), a
letter before ``(`` (``f(x)``: function or product?), a number after a letter (``x2``), sets, commas,
units, ``!``, ``\\pm``, subscripts, and a number followed by ``\\frac`` (``1\\frac{4}{5}``: a mixed number).
Variables are case-insensitive, as in math-verify.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from typing import Any

import mpmath

from curate.verify.answer_extract import normalize

_DPS = 60
_TOKEN_RE = re.compile(r"\d+(?:\.\d*)?|\.\d+|\\[A-Za-z]+|[A-Za-z]|[-+*/^{}()\[\]]")
# Degrees and dollar signs decorate a value without changing it.
DECOR_RE = re.compile(r"\^\{?\\circ\}?|\\\$")
# "10,080" and "1,000.5": a number with thousands separators, not a list.
THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_MUL_CMDS = {"\\cdot", "\\times"}
_ATOM_CMDS = {"\\pi", "\\frac", "\\sqrt"}
# math-verify reads e as Euler's number and i as a plain symbol (i^2 is not -1 there); E and I are
# sympy's constants, and not ours to guess.
_RESERVED = set("EI")


def _ln(x: Any) -> Any:
    if x <= 0:
        raise _Bail  # undefined here
    return mpmath.ln(x)


def _nonzero(f: Any) -> Any:
    def g(x: Any) -> Any:
        d = f(x)
        if abs(d) < mpmath.mpf(10) ** -40:
            raise _Bail  # a pole
        return 1 / d

    return g


# \log is left out: math-verify reads it as base 10, sympy as base e.
_FUNCS = {
    "\\sin": mpmath.sin,
    "\\cos": mpmath.cos,
    "\\tan": mpmath.tan,
    "\\ln": _ln,
    "\\cot": _nonzero(mpmath.tan),
    "\\sec": _nonzero(mpmath.cos),
    "\\csc": _nonzero(mpmath.sin),
}
# "1\\frac{4}{5}" is the mixed number 9/5 (math-verify reads it so; elsewhere a number before \\frac bails).
_MIXED_RE = re.compile(r"^([+-]?)\s*(\d+)\s*\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}$")
# "3128 1/2": a mixed number in plain text (a space between the whole part and the fraction).
_MIXED_SLASH_RE = re.compile(r"^([+-]?)(\d+) (\d+)/(\d+)$")
_POINTS = 3
_TINY = mpmath.mpf(10) ** -30  # both sides this close to 0 at a point: the point says nothing


class _Bail(Exception):
    """Outside the subset: let math-verify decide."""


def _is_letter(tok: str) -> bool:
    return len(tok) == 1 and tok.isalpha()


class _Parser:
    """Recursive descent over the tokens, evaluating as it goes with ``env`` (letter -> value)."""

    def __init__(self, tokens: list[str], env: dict[str, Any]) -> None:
        self.toks, self.i, self.env = list(tokens), 0, env

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Bail
        self.i += 1
        return tok

    def expr(self) -> Any:
        val = self.term()
        while self.peek() in ("+", "-"):
            val = val + self.term() if self.take() == "+" else val - self.term()
        return val

    def term(self) -> Any:
        val = self.unary()
        while True:
            tok = self.peek()
            if tok in _MUL_CMDS or tok in ("*", "/"):
                self.take()
                rhs = self.unary()
                if tok == "/":
                    if rhs == 0:
                        raise _Bail
                    val = val / rhs
                else:
                    val = val * rhs
            elif tok is not None and (tok in _ATOM_CMDS or tok in _FUNCS or tok in ("(", "{") or _is_letter(tok)):
                if tok == "\\frac":
                    raise _Bail  # "1\frac{4}{5}": a mixed number or a product? Let math-verify read it.
                val = val * self.power()  # implicit product: 3\sqrt{2}, 2\pi, (1)(2), 2x, (a+5)(b+2)
            else:
                return val

    def unary(self) -> Any:
        if self.peek() in ("+", "-"):
            return self.unary() if self.take() == "+" else -self.unary()
        return self.power()

    def power(self) -> Any:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        exp = self.exponent()
        if self.peek() == "^" or abs(exp) > 10_000 or (base == 0 and exp <= 0):
            raise _Bail
        if base < 0 and exp != int(exp):
            raise _Bail
        return mpmath.power(base, exp)

    def arg(self) -> Any:
        """A command's argument: ``{...}`` or one character (``\\frac43`` is 4/3)."""
        tok = self.peek()
        if tok is not None and tok[0].isdigit() and len(tok) > 1:
            if "." in tok[:2]:
                raise _Bail
            self.toks[self.i : self.i + 1] = [tok[0], tok[1:]]
        if tok == "{" or tok is None or tok[0].isdigit() or _is_letter(tok):
            return self.atom()
        raise _Bail  # \frac\pi2 and friends: rare, left to math-verify

    def exponent(self) -> Any:
        """``^{...}`` or ``^`` and one atom; a bare number is whole, as math-verify reads it (``2^13`` = 2^{13})."""
        tok = self.peek()
        if tok is not None and (tok == "{" or tok[0].isdigit() or _is_letter(tok)):
            return self.atom()
        raise _Bail

    def function(self, name: str) -> Any:
        """``\\sin x``, ``\\sin 2x``, ``\\ln(1+x)``: the argument is a group or a run of numbers and letters."""
        tok = self.peek()
        if tok == "^" or tok is None:
            raise _Bail  # \sin^2 x, \sin^{-1} x: left to math-verify
        if tok in ("(", "{"):
            arg = self.atom()
            if self.peek() == "^":
                raise _Bail  # \sin(x)^2: the power of the sine or of its argument?
        else:
            arg = self.atom()
            while (nxt := self.peek()) is not None and (_is_letter(nxt) or nxt == "\\pi"):
                arg = arg * self.atom()
        return _FUNCS[name](arg)

    def atom(self) -> Any:
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            return mpmath.mpf(tok)
        if tok == "e":
            return +mpmath.e
        if _is_letter(tok):
            return self.env[tok.lower()]
        if tok in ("(", "{"):
            val = self.expr()
            self.take(")" if tok == "(" else "}")
            return val
        if tok == "\\pi":
            return +mpmath.pi
        if tok in _FUNCS:
            return self.function(tok)
        if tok == "\\sqrt":
            index = None
            if self.peek() == "[":
                self.take()
                index = self.expr()
                self.take("]")
                if index != int(index) or index < 2:
                    raise _Bail
            radicand = self.arg()
            if radicand < 0:
                raise _Bail
            return mpmath.sqrt(radicand) if index is None else mpmath.root(radicand, int(index))
        if tok == "\\frac":
            num = self.arg()
            den = self.arg()
            if den == 0:
                raise _Bail
            return num / den
        raise _Bail


@functools.cache
def _point(k: int, letter: str) -> Any:
    """The value of ``letter`` at point ``k``: fixed pseudo-random reals; point 0 has mixed signs."""
    rng = random.Random(f"{k}:{letter}")
    v = mpmath.mpf(rng.uniform(0.5, 2.5)) + mpmath.mpf(rng.random()) / 10**20
    return -v if k == 0 and rng.random() < 0.5 else v


@dataclass(frozen=True, slots=True)
class Value:
    """An expression's values at the fixed points (None where it is undefined there: ``\\sqrt{x}``, x<0)."""

    values: tuple[Any, ...]
    letters: frozenset[str]
    decimal: bool  # a decimal literal: near misses follow math-verify's rounding, not ours


def _tokens(text: str) -> list[str] | None:
    tokens = _TOKEN_RE.findall(text)
    if not tokens or "".join(tokens) != text.replace(" ", ""):
        return None  # something the tokenizer does not know (commas, \%, _, \ldots ...)
    for a, b in zip(tokens, tokens[1:] + [""], strict=True):
        if _is_letter(a) and (a in _RESERVED or _is_letter(b) or b == "(" or b[:1].isdigit()):
            return None
    return tokens


@functools.lru_cache(maxsize=65536)
def value(s: str) -> Value | None:
    """The values of a simple expression at the fixed points, else None (left to math-verify)."""
    text = DECOR_RE.sub("", normalize(s, spaces=True))
    m = _MIXED_RE.match(text) or _MIXED_SLASH_RE.match(text)
    if m:
        text = f"{m[1]}({m[2]}+\\frac{{{m[3]}}}{{{m[4]}}})"
    tokens = _tokens(text)
    if tokens is None:
        return None
    letters = frozenset(t.lower() for t in tokens if _is_letter(t) and t != "e")
    decimal = any("." in t for t in tokens)
    out: list[Any] = []
    with mpmath.workdps(_DPS):
        for k in range(_POINTS if letters else 1):
            p = _Parser(tokens, {c: _point(k, c) for c in letters})
            try:
                val = p.expr()
                if p.peek() is not None:
                    return None
            except _Bail:
                if not letters:
                    return None
                val = None  # undefined here (a negative radicand, a zero denominator), or outside the subset
            except (ZeroDivisionError, ValueError, OverflowError, IndexError, RecursionError):
                return None
            if val is not None and not mpmath.isfinite(val):
                return None
            out.append(val)
    if sum(v is not None for v in out) < min(2, len(out)):
        return None  # defined at too few points to say anything
    return Value(tuple(out), letters, decimal)


def aligned(a: Value, b: Value) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Both sides' values point by point; a constant (one value) stands at every point of the other side."""
    n = max(len(a.values), len(b.values))
    return (a.values * n if len(a.values) == 1 else a.values), (b.values * n if len(b.values) == 1 else b.values)


def compare(g: Value, p: Value) -> bool | None:
    """True/False when certain, else None.

    Exact forms: equal to 1e-40 relative is equal, apart by more than 1e-9 is different. A decimal on
    either side: exactly equal, or apart by more than the veto's 1e-4 (``math_equiv``), is decided;
    near misses follow math-verify's rounding.
    """
    gv, pv = aligned(g, p)
    n = len(gv)
    decimal = g.decimal or p.decimal
    seen, same = 0, True
    with mpmath.workdps(_DPS):
        for a, b in zip(gv, pv, strict=True):
            if a is None or b is None:
                if (a is None) != (b is None):
                    same = False  # defined on one side only: not the same function, but not a verdict
                continue
            scale = max(abs(a), abs(b))
            if scale == 0:
                seen += 1  # both exactly zero
                continue
            if scale < _TINY:
                continue
            rel = abs(a - b) / scale
            if rel > (1e-4 if decimal else 1e-9):
                return False
            seen += 1
            if rel != 0 and (decimal or rel >= mpmath.mpf(10) ** -40):
                same = False
    return True if same and seen >= min(n, 2) else None


def compare_values(gold: str, pred: str) -> bool | None:
    """``compare`` on two strings; None when either is outside the subset."""
    g, p = value(gold), value(pred)
    if g is None or p is None:
        return None
    return compare(g, p)
