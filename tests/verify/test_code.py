"""Code verification on real data: extraction, the three test shapes, HumanEval, and the check."""

from __future__ import annotations

import gzip
import json
from importlib.resources import files
from typing import Any

import polars as pl
import pytest

from curate.checks.base import declared_columns
from curate.schema import check_decls
from curate.verify.code import _OUTCOME, CodeCheck, CodeConfig, CodeTask, extract_code, run_code, run_code_batch
from curate.verify.sandbox import sandbox_error

needs_sandbox = pytest.mark.skipif(sandbox_error() is not None, reason=f"no working bubblewrap: {sandbox_error()}")
FAST = CodeConfig(cpu_s=2, wall_s=10.0)
IO_TYPE = pl.List(pl.Struct({"input": pl.String, "output": pl.String}))


def answer(code: str, reasoning: str = "Let me think.") -> str:
    return f"<think>{reasoning}</think>\nHere is the solution.\n```python\n{code}\n```\nDone."


EXTRACT_CASES = [
    (answer("print(1)"), "print(1)\n"),
    ("<think>```python\nwrong()\n```</think>\n```python\nright()\n```", "right()\n"),
    ("<think>x</think>\n```python\nfirst()\n```\ntext\n```py\nlast()\n```", "last()\n"),
    ("<think>x</think>\n```Python3\nupper()\n```", "upper()\n"),
    ("<think>x</think>\n```\nbare()\n```", "bare()\n"),
    ("<think>x</think>\n```python\ntagged()\n```\n```\nbare()\n```", "tagged()\n"),
    ("<think>x</think>\n```bash\nls\n```", None),
    ("<think>```python\nonly_in_reasoning()\n```</think>\nNo code here.", None),
    ("<think>still thinking ```python\nx()\n```", None),  # truncated: no answer part at all
    ("```python\nno_think()\n```", None),
    ("<think>x</think>\n```python\nunclosed()\n", None),
    ("<think>x</think>\n```python\n   \n```", None),
    ("<think>x</think>\n  ```python\nindented()\n  ```", "indented()\n"),
]


@pytest.mark.parametrize(("response", "expected"), EXTRACT_CASES)
def test_extract_code(response: str, expected: str | None) -> None:
    assert extract_code(response) == expected


def test_extract_without_think_when_allowed() -> None:
    assert extract_code("```python\nx()\n```", require_think=False) == "x()\n"
    assert extract_code("<think>x</think>\n```\nbare()\n```", untagged_fallback=False) is None


def test_undecidable_rows_need_no_sandbox() -> None:
    r = run_code(answer("x = 1"), tests=None, entry_point=None, io_tests=[])
    assert (r.passed, r.reason, r.score) == (None, "code.no_tests", None)
    r = run_code(answer("x = 1"), tests="   ", entry_point=None, io_tests=None)
    assert r.reason == "code.no_tests"
    r = run_code("<think>```python\nx = 1\n```</think> no code", tests="assert x == 1", entry_point=None,
                 io_tests=None)  # fmt: skip
    assert (r.passed, r.reason, r.score) == (False, "code.no_code", 0.0)


SQUARE_CHECK = "def check(candidate):\n    assert candidate(3) == 9\n    assert candidate(-2) == 4\n"
SHAPES: list[tuple[str, dict[str, Any], bool | None, str | None]] = [
    ("def sq(x):\n    return x * x", {"tests": SQUARE_CHECK, "entry_point": "sq"}, True, None),
    (
        "def sq(x):\n    return x + x",
        {"tests": SQUARE_CHECK, "entry_point": "sq"},
        False,
        "code.tests_failed",
    ),
    ("def sq(x):\n    return x ** 2", {"tests": "assert sq(3) == 9\nassert sq(0) == 0\n"}, True, None),
    (
        "def sq(x):\n    return 9",
        {"tests": "assert sq(3) == 9\nassert sq(0) == 0\n"},
        False,
        "code.tests_failed",
    ),
    ("def sq(x:\n    return x", {"tests": SQUARE_CHECK, "entry_point": "sq"}, False, "code.error"),
    ("def sq(x):\n    return [][1]", {"tests": SQUARE_CHECK, "entry_point": "sq"}, False, "code.error"),
    ("def square(x):\n    return x * x", {"tests": SQUARE_CHECK, "entry_point": "sq"}, False, "code.error"),
    (
        "a, b = map(int, input().split())\nprint(a + b)",
        {"io_tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "10 -4", "output": "6"}]},
        True,
        None,
    ),
    (
        "import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))  ",
        {"io_tests": [{"input": "1 2 3\n", "output": "6  \n\n"}]},
        True,
        None,
    ),
    (
        "n = int(open(0).read())\nfor i in range(n):\n    print(i)",
        {"io_tests": [{"input": "3", "output": "0\n1\n2"}]},
        True,
        None,
    ),
    (
        "a, b = map(int, input().split())\nprint(a - b)",
        {"io_tests": [{"input": "1 2\n", "output": "3\n"}]},
        False,
        "code.tests_failed",
    ),
    ("import sys\nprint(3)\nsys.exit(0)", {"io_tests": [{"input": "", "output": "3"}]}, True, None),
    ("import sys\nprint(3)\nsys.exit(2)", {"io_tests": [{"input": "", "output": "3"}]}, False, "code.error"),
    (
        "if __name__ == '__main__':\n    input()\ndef sq(x):\n    return x * x",
        {"tests": SQUARE_CHECK, "entry_point": "sq"},
        True,
        None,
    ),  # a main guard does not run for function tests
    (
        "import sys\ndef sq(x):\n    return x * x\nfor line in sys.stdin:\n    print(sq(int(line)))",
        {"tests": SQUARE_CHECK, "entry_point": "sq", "io_tests": [{"input": "5", "output": "25"}]},
        True,
        None,
    ),
]


@needs_sandbox
@pytest.mark.parametrize(("code", "row", "passed", "reason"), SHAPES)
def test_test_shapes(code: str, row: dict[str, Any], passed: bool | None, reason: str | None) -> None:
    r = run_code(answer(code), tests=row.get("tests"), entry_point=row.get("entry_point"),
                 io_tests=row.get("io_tests"), config=FAST)  # fmt: skip
    assert (r.passed, r.reason) == (passed, reason), r
    assert r.duration_s > 0


@needs_sandbox
@pytest.mark.parametrize("mode", ["fresh", "pooled"])
def test_test_shapes_in_a_batch(mode: str) -> None:
    tasks = [CodeTask(answer(code), row.get("tests"), row.get("entry_point"), row.get("io_tests"))
             for code, row, _, _ in SHAPES]  # fmt: skip
    results = run_code_batch(tasks, CodeConfig(cpu_s=2, wall_s=10.0, mode=mode, workers=2))
    assert [(r.passed, r.reason) for r in results] == [(p, reason) for _, _, p, reason in SHAPES]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        run_code_batch([CodeTask(answer("x = 1"), "assert x == 1")], CodeConfig(mode="warm"))


def _humaneval() -> list[dict[str, Any]]:
    raw = files("curate") / "data" / "benchmarks" / "humaneval.jsonl.gz"
    with gzip.open(str(raw), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@needs_sandbox
def test_humaneval_canonical_solutions_pass_and_stubs_fail() -> None:
    rows = _humaneval()
    assert len(rows) == 164
    good = [CodeTask(answer(r["prompt"] + r["canonical_solution"]), r["test"], r["entry_point"]) for r in rows]
    stub = [CodeTask(answer(r["prompt"] + "    return None\n"), r["test"], r["entry_point"]) for r in rows]
    results = run_code_batch(good + stub, FAST)
    failed = [(r["task_id"], res.status, res.detail) for r, res in zip(rows, results[:164], strict=True)
              if not res.passed]  # fmt: skip
    assert failed == []
    assert [res.passed for res in results[164:]] == [False] * 164
    assert {res.reason for res in results[164:]} <= {"code.tests_failed", "code.error"}


@needs_sandbox
def test_code_check_on_a_frame() -> None:
    he = _humaneval()[:2]
    responses = [
        answer(he[0]["prompt"] + he[0]["canonical_solution"]),
        answer(he[1]["prompt"] + "    pass\n"),
        "<think>x</think> 4",
        "<think>x</think> no code",
        answer("print(input())"),
    ]
    df = pl.DataFrame(
        {
            "task": ["code", "code", "math", "code", "code"],
            "response": responses,
            "tests": [he[0]["test"], he[1]["test"], None, "assert True", None],
            "entry_point": [he[0]["entry_point"], he[1]["entry_point"], None, None, None],
            "io_tests": [None, None, None, None, [{"input": "hi", "output": "hi"}]],
        },
        schema_overrides={"io_tests": IO_TYPE},
    )
    out = CodeCheck(FAST).run(df)
    assert out.height == df.height
    assert out["code_score"].to_list() == [1.0, 0.0, None, 0.0, 1.0]
    assert out["code_status"].to_list() == ["pass", "tests_failed", None, "no_code", "pass"]
    assert out["reject_reasons"].to_list() == [[], ["code.tests_failed"], [], ["code.no_code"], []]
    assert out["code_duration_s"][0] > 0
    assert set(declared_columns("code")) <= set(out.columns)


def test_code_check_without_bwrap_cannot_decide() -> None:
    df = pl.DataFrame({"task": ["code", "code", "code"],
                       "response": [answer("x = 1"), answer("x = 1"), "<think>x</think> none"],
                       "tests": ["assert x == 1", None, "assert x == 1"]})  # fmt: skip
    out = CodeCheck(CodeConfig(bwrap="/nonexistent/bwrap")).run(df)
    assert out["code_score"].to_list() == [None, None, 0.0]
    assert out["reject_reasons"].to_list() == [["code.sandbox_error"], ["code.no_tests"], ["code.no_code"]]


def test_declared_schema_matches_the_check() -> None:
    decl = check_decls()["code"]
    assert {c.name for c in decl.columns} == {"code_score", "code_status", "code_duration_s", "code_detail",
                                              "code_limits"}  # fmt: skip
    assert set(decl.reasons) == {reason for _, reason in _OUTCOME.values() if reason}
    assert (CodeCheck.name, CodeCheck.scope, CodeCheck.cost, CodeCheck.tasks) == (
        "code",
        "row",
        40,
        frozenset({"code"}),
    )
