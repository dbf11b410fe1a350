"""Synthetic arithmetic word problems with R1-form reference traces, for the toy demo model.

Every problem is a function of ``(seed, index)``: two-digit addition or subtraction told as a short story,
a gold answer, and a digit-by-digit ``<think>`` trace ending in ``\\boxed{}``. :func:`noisy_trace` writes
the same trace with one realistic mistake (a forgotten carry, a slipped digit, a wrong final copy) or a
format fault; the toy model is pretrained on a mix, so it is right only sometimes and rejection sampling
has something to fix.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

import xxhash

Op = Literal["+", "-"]

_NAMES = ("Tom", "Ana", "Sam", "Mia", "Leo", "Zoe", "Max", "Eva")
_ITEMS = ("apples", "books", "coins", "cards", "pens", "shells", "stamps", "eggs")
_ADD = (
    "{n} has {a} {i} and buys {b} more. How many {i} does {n} have?",
    "{n} had {a} {i}. A friend gave {n} {b} more. How many {i} does {n} have now?",
    "There are {a} {i} in a box. {n} puts in {b} more. How many {i} are in the box?",
)
_SUB = (
    "{n} has {a} {i} and gives away {b}. How many {i} are left?",
    "{n} had {a} {i} and lost {b} of them. How many {i} does {n} have left?",
    "There are {a} {i} in a box. {n} takes out {b}. How many {i} are in the box now?",
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Problem:
    prompt_id: str
    prompt: str
    a: int
    b: int
    op: Op

    @property
    def answer(self) -> int:
        return self.a + self.b if self.op == "+" else self.a - self.b

    def row(self) -> dict[str, str]:
        """The problem as a row of the ``prompt`` table."""
        return {
            "prompt_id": self.prompt_id,
            "prompt": self.prompt,
            "task": "math",
            "reference": str(self.answer),
            "language": "en",
            "source": "demo",
        }


def make_problem(seed: int, index: int) -> Problem:
    rng = random.Random(f"curate-demo/{seed}/{index}")
    op: Op = rng.choice(("+", "-"))
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    if op == "-" and a < b:
        a, b = b, a
    template = rng.choice(_ADD if op == "+" else _SUB)
    prompt = template.format(n=rng.choice(_NAMES), i=rng.choice(_ITEMS), a=a, b=b)
    pid = xxhash.xxh64_hexdigest(f"demo/{seed}/{index}/{prompt}".encode())
    return Problem(prompt_id=pid, prompt=prompt, a=a, b=b, op=op)


def make_problems(seed: int, count: int, start: int = 0) -> list[Problem]:
    """``count`` problems; disjoint ``start`` ranges give disjoint train and held-out splits."""
    return [make_problem(seed, i) for i in range(start, start + count)]


def _steps(a: int, b: int, op: Op, slip_carry: bool = False, slip_digit: int = -1) -> tuple[str, int]:
    """Digit-by-digit working for ``a op b`` and its (possibly mistaken) result.

    ``slip_carry`` forgets the carry/borrow; ``slip_digit`` (0 = ones, 1 = tens) writes that digit one off.
    """
    a1, a0, b1, b0 = a // 10, a % 10, b // 10, b % 10
    parts: list[str] = []
    if op == "+":
        s0 = a0 + b0
        carry = s0 // 10 if not slip_carry else 0
        d0 = (s0 % 10 + (1 if slip_digit == 0 else 0)) % 10
        if s0 >= 10 and not slip_carry:
            parts.append(f"{a0} + {b0} = {s0 - s0 % 10 + d0}, carry 1")
        else:
            parts.append(f"{a0} + {b0} = {d0}")
        s1 = a1 + b1 + carry + (1 if slip_digit == 1 else 0)
        parts.append(f"{a1} + {b1} + 1 = {s1}" if carry else f"{a1} + {b1} = {s1}")
        return ", ".join(parts), s1 * 10 + d0
    borrow = 1 if a0 < b0 and not slip_carry else 0
    top = a0 + 10 * borrow
    d0 = abs(top - b0) if slip_carry else top - b0
    d0 = (d0 + (1 if slip_digit == 0 else 0)) % 10
    parts.append(f"{top} - {b0} = {d0}, borrow 1" if borrow else f"{a0} - {b0} = {d0}")
    d1 = a1 - b1 - borrow + (1 if slip_digit == 1 else 0)
    parts.append(f"{a1} - 1 - {b1} = {d1}" if borrow else f"{a1} - {b1} = {d1}")
    return ", ".join(parts), d1 * 10 + d0


def _render(p: Problem, working: str, result: int, boxed: str | None = None, close: bool = True) -> str:
    think = f"<think>\n{p.a} {p.op} {p.b}: {working}, so {result}.\n"
    answer = f"The answer is \\boxed{{{result if boxed is None else boxed}}}."
    return think + ("</think>\n" + answer if close else answer)


def reference_trace(p: Problem) -> str:
    """The correct R1-form response: ``<think>`` working, then the boxed answer."""
    working, result = _steps(p.a, p.b, p.op)
    return _render(p, working, result)


NOISE_KINDS = ("carry", "digit", "copy", "unclosed", "unboxed")


def noisy_trace(p: Problem, rng: random.Random) -> tuple[str, str]:
    """A plausible wrong response and the kind of its fault (one of :data:`NOISE_KINDS`).

    Mostly arithmetic slips whose working stays self-consistent (what a weak model writes); a few format
    faults (no ``</think>``, no ``\\boxed{}``) so the format checks of the pipeline have work too.
    """
    kind = rng.choices(NOISE_KINDS, weights=(4, 4, 1, 0.5, 0.5))[0]
    has_carry = (p.a % 10 + p.b % 10 >= 10) if p.op == "+" else (p.a % 10 < p.b % 10)
    if kind == "carry" and not has_carry:
        kind = "digit"
    if kind == "carry":
        working, result = _steps(p.a, p.b, p.op, slip_carry=True)
        return _render(p, working, result), kind
    if kind == "digit":
        working, result = _steps(p.a, p.b, p.op, slip_digit=rng.randrange(2))
        return _render(p, working, result), kind
    working, result = _steps(p.a, p.b, p.op)
    if kind == "copy":  # right working, wrong final answer: swapped or off-by-ten copy
        swapped = int(str(result)[::-1])
        wrong = swapped if swapped != result else result + 10
        return _render(p, working, result, boxed=str(wrong)), kind
    if kind == "unclosed":
        return _render(p, working, result, close=False), kind
    return _render(p, working, result).replace(f"\\boxed{{{result}}}", str(result)), kind


def extract_answer(response: str) -> str | None:
    """Content of the last ``\\boxed{}`` after the last ``</think>``; None when there is none."""
    idx = response.rfind("</think>")
    if idx < 0:
        return None
    found = _BOXED.findall(response[idx:])
    return found[-1].strip() if found else None


def is_correct(response: str, gold: int | str) -> bool:
    """Exact integer match of the extracted answer (the pipeline proper uses the math verifier)."""
    got = extract_answer(response)
    if got is None:
        return False
    try:
        return int(got) == int(gold)
    except ValueError:
        return False
