"""GRPO rewards: TRL signature (strings and chat completions), verl's compute_score, same code as checks."""

from __future__ import annotations

import importlib.util
import inspect

import polars as pl
import pytest

from curate.checks.format import FormatCheck
from curate.launch.rewards import (
    code_reward,
    completion_text,
    compute_score,
    format_reward,
    format_reward_r1_zero,
    language_reward,
    make_math_reward,
    math_reward,
)
from curate.verify import MathCheck, MathConfig

COMPLETIONS = [
    "Half of 48 is 24.\n</think>\nThe answer is $\\boxed{24}$.",  # R1 template pre-fills <think>
    "<think>48/2 = 24</think>\n\\boxed{25}",
    "<think>48/2 = 24, so \\boxed{24}",  # never closes: no answer part
    "<think>a</think>\\boxed{24} or \\boxed{12}",
    "<think>x</think>\\boxed{\\frac{48}{2}}<|im_end|>",
]
REFS = ["24", "24", "24", "24", "24"]


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_trl_signature() -> None:
    for fn in (format_reward, math_reward, code_reward, language_reward):
        params = inspect.signature(fn).parameters
        assert "completions" in params and any(p.kind is p.VAR_KEYWORD for p in params.values())
        assert fn.__name__.endswith("reward")


def test_math_reward_strings_and_chat_messages() -> None:
    expected = [1.0, 0.0, 0.0, 0.0, 1.0]
    kwargs = {"prompts": ["q"] * 5, "completion_ids": [[1]] * 5, "trainer_state": None}
    assert math_reward(COMPLETIONS, reference=REFS, **kwargs) == expected
    assert math_reward([chat(c) for c in COMPLETIONS], reference=REFS) == expected
    assert math_reward(COMPLETIONS, answer=REFS) == expected  # other common column names
    assert math_reward(COMPLETIONS[:1], solution=["So $\\boxed{24}$."]) == [1.0]


def test_math_reward_none_where_undecided_or_not_math() -> None:
    out = math_reward(COMPLETIONS[:3], reference=["24", None, "24"], task=["math", "math", "code"])
    assert out == [1.0, None, None]


def test_math_reward_is_the_check() -> None:
    df = pl.DataFrame({"task": ["math"] * 5, "response": COMPLETIONS, "reference": REFS})
    assert MathCheck().run(df)["math_score"].to_list() == math_reward(COMPLETIONS, reference=REFS)
    r1_zero = make_math_reward(MathConfig(template="r1_zero"))
    assert r1_zero(["<think>a</think><answer>24</answer>", "<think>a</think>\\boxed{24}"], reference=["24", "24"]) == [
        1.0,
        0.0,
    ]


def test_format_reward_is_the_check() -> None:
    scores = format_reward(COMPLETIONS)
    assert scores == [1.0, 1.0, 0.0, 1.0, 0.0]
    df = pl.DataFrame({"response": COMPLETIONS})
    assert FormatCheck().run(df)["format_score"].to_list() == scores
    assert format_reward([chat(c) for c in COMPLETIONS]) == scores
    assert format_reward(COMPLETIONS[:1], finish_reason=["length"]) == [0.0]
    zero = ["<think>a</think><answer>24</answer>", "<think>a</think>24"]
    assert format_reward_r1_zero(zero) == [1.0, 0.0]


def test_completion_text() -> None:
    msgs = [
        {"role": "assistant", "content": "a"},
        {"role": "tool", "content": "x"},
        {"role": "assistant", "content": "b"},
    ]
    assert completion_text(msgs) == "ab"
    assert completion_text("plain") == "plain"


def test_verl_compute_score_math() -> None:
    assert compute_score("openai/gsm8k", COMPLETIONS[0], "24") == {"score": 1.0, "decided": True, "status": "correct"}
    assert compute_score("math500", COMPLETIONS[1], "24")["score"] == 0.0
    undecided = compute_score("math500", COMPLETIONS[0], None)
    assert undecided == {"score": 0.0, "decided": False, "status": "gold_unparseable"}
    zero = compute_score("math", "<think>a</think><answer>24</answer>", 24, {"template": "r1_zero"})
    assert zero["score"] == 1.0


needs_code = pytest.mark.skipif(
    importlib.util.find_spec("curate.verify.code") is None, reason="curate.verify.code not available yet"
)
needs_lang = pytest.mark.skipif(
    importlib.util.find_spec("curate.quality.language") is None, reason="curate.quality.language not available yet"
)


@needs_code
def test_code_reward_runs_the_sandbox() -> None:
    good = "<think>easy</think>\n```python\ndef add(a, b):\n    return a + b\n```"
    bad = "<think>easy</think>\n```python\ndef add(a, b):\n    return a - b\n```"
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    out = code_reward(
        [good, bad, good], tests=[tests, tests, None], entry_point=["add", "add", None], task=["code", "code", "math"]
    )
    assert out == [1.0, 0.0, None]
    assert compute_score("humaneval", good, tests, {"entry_point": "add"})["score"] == 1.0


@needs_lang
def test_language_reward_scores_the_reasoning() -> None:
    en = "<think>First we add the two numbers and then we check the result carefully.</think>42"
    mixed = "<think>首先我们把两个数字相加，然后仔细检查结果。</think>The answer is 42"
    out = language_reward([en, mixed], language=["en", "en"])
    assert out[0] is not None and out[1] is not None and out[0] > 0.8 > out[1]


@needs_code
def test_code_reward_is_the_checks_grading_exploits_score_zero() -> None:
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    hacks = [
        "import sys\ndef add(a, b):\n    sys._getframe(1).f_locals['report']('pass')",
        "class A:\n    def __eq__(self, o):\n        return True\ndef add(a, b):\n    return A()",
        "import sys\nsys.settrace(lambda *a: None)\ndef add(a, b):\n    return 0",
        "import os\nos._exit(0)",
    ]
    good = "def add(a, b):\n    return a + b"
    completions = [f"<think>.</think>\n```python\n{p}\n```" for p in [*hacks, good, good]]
    n = len(completions)
    out = code_reward(completions, tests=[tests] * n, entry_point=["add"] * n, task=["code"] * n,
                      reference=[None] * (n - 1) + ["```python\ndef add(a, b):\n    return a - b\n```"])  # fmt: skip
    # the last row's tests fail its own reference solution: undecided (None), not 0.0
    assert out == [0.0, 0.0, 0.0, 0.0, 1.0, None]
    score = compute_score("humaneval", completions[1], None, {"tests": tests, "entry_point": "add"})
    assert score == {"score": 0.0, "decided": True, "status": "failed"}
