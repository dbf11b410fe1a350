"""The R1-Zero failure modes, planted in the toy model's pretraining mix for ``curate demo --full``.

DeepSeek-R1-Zero's outputs were often right but hard to use: languages mixed inside the chain of thought,
walls of text, loops, missing tags. The toy base is pretrained on a mix where each of these appears at a
known rate beside clean traces and arithmetic slips, so every R1 filter has something real to catch and
the phases have a rate to bring down:

====================  ==================================================  ===================================
kind                  what the trace does                                 what catches it
====================  ==================================================  ===================================
``clean``             English working, boxed answer                        (nothing)
``carry``/``digit``   a self-consistent arithmetic slip                    ``math.incorrect``
``copy``              right working, wrong final answer                    ``math.incorrect``
``mixed``             a step written in Spanish, French or German          ``lang.mixed``/``lang.wrong_language``
``wall``              the whole reasoning on one padded line               ``readability.long_paragraph`` (*)
``loop``              the same check repeated line after line              ``readability.repeated_*``
``unclosed``          no ``</think>``                                      ``format.truncated``
``bare``              no ``<think>`` block at all                          ``format.missing_think``
====================  ==================================================  ===================================

(*) with the toy's readability budget (:data:`TOY_CHECKS`): a clean toy trace has at most ~20 words on a
line, so 30 words is the toy's wall of text, as 300 is for real traces.

The long sentences are whole tokens of the toy tokenizer (:data:`PHRASES`), so a wall of text or a
foreign sentence costs the model one step to write, not a hundred.
"""

from __future__ import annotations

import random
from typing import Any

from curate.demo.task import Problem, _steps

LEAD = "I add the ones first and then the tens."
FOREIGN = (
    "Entonces, despues de sumar las cifras, la respuesta es",
    "Donc, apres avoir fait le calcul, le resultat est",
    "Also, nachdem ich alles gerechnet habe, ist das Ergebnis",
)
FILLER = (
    "Okay, let me think about this problem step by step and be careful with every single digit here.",
    "I am quite sure that this is right because I checked each column of the sum twice.",
)
CHECK_AGAIN = "Wait, let me check that again:"
ANSWER = "The answer is \\boxed{"
PHRASES: tuple[str, ...] = (LEAD, *FOREIGN, *FILLER, CHECK_AGAIN, ANSWER, ", carry 1", ", borrow 1", ", so ")

# kind -> weight in the pretraining mix (the rest of each batch is clean)
R1_ZERO_MIX: dict[str, float] = {
    "clean": 0.50,
    "carry": 0.10,
    "digit": 0.08,
    "copy": 0.03,
    "mixed": 0.08,
    "wall": 0.07,
    "loop": 0.07,
    "unclosed": 0.03,
    "bare": 0.04,
}

# The checks' options at toy scale (the rest are the defaults every user gets).
TOY_CHECKS: dict[str, Any] = {
    "readability": {"max_paragraph_words": 30},
    "dedup": {"scope": "per-prompt"},
}


def _answer(result: int | str) -> str:
    return f"{ANSWER}{result}}}."


def r1_zero_trace(p: Problem, rng: random.Random) -> tuple[str, str]:
    """One pretraining response for ``p`` drawn from :data:`R1_ZERO_MIX`, and its kind."""
    kind = rng.choices(list(R1_ZERO_MIX), weights=list(R1_ZERO_MIX.values()))[0]
    has_carry = (p.a % 10 + p.b % 10 >= 10) if p.op == "+" else (p.a % 10 < p.b % 10)
    if kind == "carry" and not has_carry:
        kind = "digit"
    if kind in ("carry", "digit"):
        slip = rng.randrange(2) if kind == "digit" else -1
        working, result = _steps(p.a, p.b, p.op, slip_carry=kind == "carry", slip_digit=slip)
    else:
        working, result = _steps(p.a, p.b, p.op)
    head = f"{p.a} {p.op} {p.b}: {working}, so {result}."
    boxed: int | str = result
    if kind == "copy":
        swapped = int(str(result)[::-1]) if result >= 0 else result
        boxed = swapped if swapped != result else result + 10
    think = f"{LEAD}\n{head}"
    if kind == "mixed":
        think = f"{LEAD}\n{head}\n{rng.choice(FOREIGN)} {result}."
    elif kind == "wall":
        think = f"{FILLER[0]} {head} {FILLER[1]}"
    elif kind == "loop":
        step = working.split(", ")[0]
        think = f"{LEAD}\n{head}" + "".join(f"\n{CHECK_AGAIN} {step}." for _ in range(rng.randint(4, 6)))
    if kind == "bare":
        return _answer(boxed), kind
    if kind == "unclosed":
        return f"<think>\n{think}\n{_answer(boxed)}", kind
    return f"<think>\n{think}\n</think>\n{_answer(boxed)}", kind
