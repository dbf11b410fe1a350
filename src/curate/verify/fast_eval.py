"""Exact-enough evaluation of simple constant LaTeX answers, to skip sympy when the verdict is certain.

Most math answers are constants built from integers, decimals, ``\\frac``, ``\\sqrt``, ``\\pi``, ``+ - *
/ ^`` and parentheses. Parsing them through math-verify's ANTLR grammar costs ~5-10 ms each; evaluating
them here at 60 digits costs microseconds. Anything outside that small, unambiguous subset (variables,
``i``, sets, tuples, commas, units, ``!``, a number followed by ``\\frac`` as in the mixed number
``1\\frac{4}{5}``, subscripts) returns None and goes to math-verify, which stays the authority.
"""

from __future__ import annotations

import re
from typing import Any

import mpmath

from curate.verify.answer_extract import normalize

_DPS = 60
_TOKEN_RE = re.compile(r"\d+(?:\.\d*)?|\.\d+|\\[A-Za-z]+|[-+*/^{}()\[\]]")
_DECOR_RE = re.compile(r"\^\{?\\circ\}?|\\\$")
_MUL_CMDS = {"\\cdot", "\\times"}
_ATOM_CMDS = {"\\pi", "\\frac", "\\sqrt"}


class _Bail(Exception):
    """Outside the subset: let math-verify decide."""


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.toks, self.i, self.decimal = tokens, 0, False

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
            elif tok in _ATOM_CMDS or tok in ("(", "{"):
                if tok == "\\frac":
                    raise _Bail  # "1\frac{4}{5}": a mixed number or a product? Let math-verify read it.
                val = val * self.power()  # implicit product: 3\sqrt{2}, 2\pi, (1)(2)
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
        exp = self.atom()
        if self.peek() == "^" or abs(exp) > 10_000 or (base == 0 and exp <= 0):
            raise _Bail
        if base < 0 and exp != int(exp):
            raise _Bail
        return mpmath.power(base, exp)

    def group(self) -> Any:
        if self.peek() == "{":
            self.take()
            val = self.expr()
            self.take("}")
            return val
        raise _Bail

    def atom(self) -> Any:
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            if "." in tok:
                self.decimal = True
            return mpmath.mpf(tok)
        if tok in ("(", "{"):
            val = self.expr()
            self.take(")" if tok == "(" else "}")
            return val
        if tok == "\\pi":
            return +mpmath.pi
        if tok == "\\sqrt":
            index = None
            if self.peek() == "[":
                self.take()
                index = self.expr()
                self.take("]")
            radicand = self.group()
            if radicand < 0:
                raise _Bail
            return mpmath.sqrt(radicand) if index is None else mpmath.root(radicand, int(index))
        if tok == "\\frac":
            num = self.group()
            den = self.group()
            if den == 0:
                raise _Bail
            return num / den
        raise _Bail


def const_value(s: str) -> tuple[Any, bool] | None:
    """``(value at 60 digits, has a decimal literal)`` for a simple constant, else None."""
    text = _DECOR_RE.sub("", normalize(s))
    tokens = _TOKEN_RE.findall(text)
    if not tokens or "".join(tokens) != text:
        return None  # something the tokenizer does not know (letters, commas, \%, _ ...)
    with mpmath.workdps(_DPS):
        p = _Parser(tokens)
        try:
            val = p.expr()
        except (_Bail, ZeroDivisionError, ValueError, OverflowError):
            return None
        if p.peek() is not None or not mpmath.isfinite(val):
            return None
        return val, p.decimal


def compare_values(gold: str, pred: str) -> bool | None:
    """True/False when both are simple constants and the verdict is certain, else None.

    Exact forms: equal to 1e-40 relative is equal, apart by more than 1e-9 is different. A decimal on
    either side: exactly equal, or apart by more than the veto's 1e-4 (``math_equiv``), is decided;
    near misses follow math-verify's rounding.
    """
    g, p = const_value(gold), const_value(pred)
    if g is None or p is None:
        return None
    with mpmath.workdps(_DPS):
        (gv, gdec), (pv, pdec) = g, p
        scale = max(abs(gv), abs(pv))
        rel = 0 if scale == 0 else abs(gv - pv) / scale
        if gdec or pdec:
            return False if rel > 1e-4 else (True if rel == 0 else None)
        if rel < mpmath.mpf(10) ** -40:
            return True
        return False if rel > 1e-9 else None
