"""Is an extracted answer equivalent to the gold answer? math-verify + sympy, with guards.

``decide`` decides one item and is what the worker pool runs. Layers, cheapest first:

1. a fast path: the same string up to spacing; plain numbers and fractions (``72``, ``-3.5``,
   ``\\frac{3}{4}``) compared as ``Fraction``; everything else that parses into a known structure
   (expressions in variables, equations, tuples, intervals, sets, matrices, bases: ``fast_struct``) with
   60-digit values (``fast_eval``). Only certain verdicts: a decimal close to its gold but not exactly
   equal is left to math-verify's rounding rules;
2. math-verify (``parse`` + ``verify``) on ``\\boxed{...}`` forms, the gold parse cached per process;
3. a veto on math-verify's numeric false positives: it compares constants after rounding to 6 decimals,
   so ``1/2004!`` "equals" ``1/2006!`` and ``1/2^99`` equals ``1/2^98``; when both sides are numeric
   constants we re-check them at 50 significant digits (relative tolerance 1e-12 for exact values,
   1e-4 when a decimal is involved);
4. guards on what math-verify drops: a prime (``f'(x)`` is not ``f(x)``, ``E'`` is not ``E``) decides
   "different" before anything else; plain-text units in golds (``10 weeks``) are removed before parsing;
5. several boxes against a gold that is a set or list are compared as that one list (``candidates_for``),
   against a single value they must all agree (else ``conflicting_answers``);
6. answers with an ellipsis (``1, 2, \\ldots, n``) are compared as strings, since sympy drops the dots.

Timeouts: math-verify swallows its own SIGALRM timeouts into ``False`` (a wrong "incorrect"). We run it
without its timer and arm our own (same mechanism, setitimer) around the whole item, raising an exception
math-verify does not catch, so a timeout is reported as ``timeout``. SIGALRM works only on a main thread:
the pool's workers are single-threaded processes, and the in-process path checks the thread first. The
alarm raises only in the item's own code: landing in a finalizer or a gc callback (which would swallow
the exception and print "Exception ignored"), it is retried a few milliseconds later.
"""

from __future__ import annotations

import functools
import gc
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from typing import Any, Literal

from curate.verify.answer_extract import canonical, normalize, primes
from curate.verify.fast_eval import DECOR_RE, THOUSANDS_RE
from curate.verify.fast_struct import compare_structured, is_collection

Status = Literal["correct", "incorrect", "answer_unparseable", "conflicting_answers", "gold_unparseable", "timeout"]

_NUM_RE = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)$")
_FRAC_RE = re.compile(r"^([+-]?)\\frac(?:\{(\d+)\}\{(\d+)\}|(\d)(\d))$")
_SLASH_RE = re.compile(r"^([+-]?)(\d+)/(\d+)$")
_ASSIGN_RE = re.compile(r"^[A-Za-z]\s*=\s*([^=]+)$")
_ELLIPSIS_RE = re.compile(r"\\[lc]?dots|\.\.\.|…")
_MATHRM_CONST_RE = re.compile(r"\\mathrm\{([ei])\}")


class ItemTimeout(BaseException):
    """Raised by our alarm; a BaseException so math-verify's ``except Exception`` lets it through."""


def _quiet_math_verify() -> None:
    # We disable math-verify's own timer on purpose (ours reports timeouts); silence its warning.
    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).setLevel(logging.ERROR)


# Code that Python runs from inside the collector or a finalizer: an exception raised there is printed
# ("Exception ignored in ...") and swallowed, so the timeout would be lost and noise left behind.
_FINALIZER_FILES = ("weakref.py", "_weakrefset.py")
_RETRY_S = 0.005  # the alarm is retried this soon when it lands in such code


def _in_finalizer(frame: Any, owner: Any) -> bool:
    """Whether ``frame`` runs a finalizer or a gc callback (walking out to ``owner``, the item's frame)."""
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    f = frame
    while f is not None and f is not owner:
        code = f.f_code
        if code in callbacks or code.co_name == "__del__" or code.co_filename.endswith(_FINALIZER_FILES):
            return True
        f = f.f_back
    return False


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise ItemTimeout after ``seconds`` (main thread only); restores the previous handler and timer
    (a caller's pending alarm is re-armed with the time it had left).

    The exception is raised only in the item's own code: when the signal lands inside a finalizer or a
    garbage-collector callback (which would swallow it), the alarm is retried a few milliseconds later.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = sys._getframe(2)  # the frame of the caller's ``with`` (contextmanager adds one level)
    armed = [True]

    def _fire(signum: int, frame: Any) -> None:
        if not armed[0]:
            return
        if _in_finalizer(frame, owner):
            signal.setitimer(signal.ITIMER_REAL, _RETRY_S)
            return
        armed[0] = False
        raise ItemTimeout

    old = signal.signal(signal.SIGALRM, _fire)
    start = time.monotonic()
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)  # a caller's own timer, if any
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer > 0:  # give the caller's timer back, less the time spent here (fires now if overdue)
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-6), interval)


# ---- fast path -------------------------------------------------------------------------------------


def plain_number(s: str) -> tuple[Fraction, bool] | None:
    """``(value, is_decimal)`` for a plain number or fraction, else None (left to math-verify)."""
    t = DECOR_RE.sub("", normalize(s, spaces=True))
    # 10,\!080 is a number (math-verify reads a thousands separator too); "32, 349" is a list of two:
    # tested before the spaces go.
    if re.search(r"\d\s+\d", t):
        return None  # "3128 1/2" (a mixed number), "1 000": not a plain number
    t = t.replace(",", "") if THOUSANDS_RE.match(t) else t.replace(" ", "")
    m = _NUM_RE.match(t)
    if m:
        return Fraction(m.group(1) + m.group(2)), "." in m.group(2)
    m = _FRAC_RE.match(t) or _SLASH_RE.match(t)
    if m:
        sign, *parts = m.groups()
        num, den = [int(p) for p in parts if p is not None]
        if den == 0:
            return None
        return Fraction(-num if sign == "-" else num, den), False
    return None


def _rhs(s: str) -> str:
    m = _ASSIGN_RE.match(s.strip())
    return m.group(1) if m else s


def fast_compare(gold: str, pred: str) -> bool | None:
    """True/False when the answer is certain without sympy; None to ask math-verify.

    Certain: the same string up to spacing; or two plain numbers/fractions (``x = 5`` counts as ``5``
    when the other side is not an equation, as math-verify has it).
    """
    if normalize(gold) == normalize(pred):
        return True
    # f'(x) is not f(x), E' is not E (math-verify drops the prime); "f'(x) = 2x" against "2x" is its value.
    sides = (gold, pred) if ("=" in gold) == ("=" in pred) else (gold.rsplit("=", 1)[-1], pred.rsplit("=", 1)[-1])
    if primes(sides[0]) != primes(sides[1]):
        return False
    if ("=" in gold) != ("=" in pred):
        gold, pred = _rhs(gold), _rhs(pred)
    g, p = plain_number(gold), plain_number(pred)
    if g is None or p is None:
        return compare_structured(gold, pred)  # expressions, tuples, intervals, sets ... (fast_struct)
    (gv, gdec), (pv, pdec) = g, p
    if gv == pv:
        return True
    if not (gdec or pdec):
        return False  # two exact rationals that differ
    # A decimal near its gold follows math-verify's rounding; further apart than our veto's tolerance
    # (relative 1e-4) is wrong whatever math-verify says.
    scale = max(abs(gv), abs(pv))
    return False if abs(gv - pv) / scale > Fraction(1, 10**4) else None


# ---- math-verify -----------------------------------------------------------------------------------


def _prep(s: str) -> str:
    return canonical(_MATHRM_CONST_RE.sub(r"\1", s))


@functools.lru_cache(maxsize=8192)
def parse_gold(gold: str) -> tuple[Any, ...]:
    """math-verify's parse of the boxed gold (cached: a gold is compared with many samples)."""
    return _parse(gold)


@functools.lru_cache(maxsize=8192)
def _parse(s: str) -> tuple[Any, ...]:
    from math_verify import parse

    _quiet_math_verify()
    return tuple(parse("\\boxed{" + _prep(s) + "}", parsing_timeout=None))


def has_sympy(parsed: Sequence[Any]) -> bool:
    from sympy import Basic
    from sympy.matrices import MatrixBase

    return any(isinstance(x, (Basic, MatrixBase)) for x in parsed)


def _numeric_values(x: Any) -> tuple[list[Any], bool] | None:
    """Values of a numeric constant as 50-digit mpmath numbers (also its percent-free form), and whether
    a Float is in it. mpmath, not ``complex``: ``1/2004!`` would underflow to 0."""
    import mpmath
    from math_verify.grader import get_pct_val
    from sympy import Expr, Float

    if not isinstance(x, Expr) or x.free_symbols or not x.is_number:
        return None
    vals: list[Any] = []
    for e in (x, get_pct_val(x)):
        if e is None:
            continue
        try:
            re_, im_ = e.doit().evalf(50).as_real_imag()
            v = mpmath.mpc(mpmath.mpf(Float(re_, 50)), mpmath.mpf(Float(im_, 50)))
        except (TypeError, ValueError, ArithmeticError, AttributeError):
            return None
        if not mpmath.isfinite(v):
            return None
        vals.append(v)
    return vals, bool(x.atoms(Float))


def _veto(g: Any, p: Any) -> bool:
    """True when math-verify said "equal" but the two numeric constants clearly differ."""
    import mpmath

    gv, pv = _numeric_values(g), _numeric_values(p)
    if gv is None or pv is None:
        return False
    tol = 1e-4 if (gv[1] or pv[1]) else 1e-12
    with mpmath.workdps(50):
        for a in gv[0]:
            for b in pv[0]:
                scale = max(abs(a), abs(b))
                if scale == 0 or abs(a - b) / scale <= tol:
                    return False
    return True


def equivalent(gold_parsed: Sequence[Any], pred_parsed: Sequence[Any]) -> bool:
    """math-verify's verdict over every (gold, pred) pair, minus its numeric false positives."""
    from math_verify import verify

    for g in gold_parsed:
        for p in pred_parsed:
            if verify(g, p, timeout_seconds=None) and not _veto(g, p):
                return True
    return False


def _compare(gold: str, gold_parsed: tuple[Any, ...] | None, pred: str, fast_tried: bool = False) -> Status:
    """``pred`` against ``gold``; ``gold_parsed`` is parsed here when None, only once the fast path is past."""
    if not fast_tried and (fast := fast_compare(gold, pred)) is not None:
        return "correct" if fast else "incorrect"
    if _ELLIPSIS_RE.search(gold) or _ELLIPSIS_RE.search(pred):
        return "incorrect"  # sympy drops the dots: only the string is trustworthy
    pred_parsed = _parse(pred)
    if not pred_parsed:
        return "answer_unparseable"
    if gold_parsed is None:
        gold_parsed = _parse(gold)
    if not has_sympy(gold_parsed):
        return "gold_unparseable"  # only a string to compare and it differs: cannot decide
    if equivalent(gold_parsed, pred_parsed):
        return "correct"
    return "incorrect" if has_sympy(pred_parsed) else "answer_unparseable"


def candidates_for(gold: str, candidates: Sequence[str]) -> tuple[str, ...]:
    """Several boxes against a gold that is a set or list are one answer, that list (each root boxed);
    against a single value they stay competing candidates (a conflict unless they agree)."""
    if len(candidates) > 1 and is_collection(gold):
        return (", ".join(candidates),)
    return tuple(candidates)


def _decide(gold: str, candidates: Sequence[str]) -> Status:
    candidates = candidates_for(gold, candidates)
    final = candidates[-1]
    # Several different boxes: fine only if they all say the same thing as the final one.
    if any(_compare(final, None, other) != "correct" for other in candidates[:-1]):
        return "conflicting_answers"
    fast = fast_compare(gold, final)
    if fast is not None:
        return "correct" if fast else "incorrect"
    gold_parsed = parse_gold(gold)
    if not gold_parsed:
        return "gold_unparseable"
    return _compare(gold, gold_parsed, final, fast_tried=True)


def decide(gold: str, candidates: Sequence[str], timeout_s: float) -> Status:
    """Verdict for one item; ``timeout`` when it runs past ``timeout_s`` (main thread only)."""
    try:
        with alarm(timeout_s):
            return _decide(gold, candidates)
    except ItemTimeout:
        return "timeout"
    except RecursionError:
        return "timeout"  # pathological nesting: same outcome, undecided
