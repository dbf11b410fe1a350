"""The ``readability`` check on hand-written traces, one per feature, plus what must not fire."""

from __future__ import annotations

import json
from importlib.resources import files

import polars as pl
import pytest

from curate.checks.base import declared_columns
from curate.quality import ReadabilityCheck, ReadabilityConfig, compression_ratios
from curate.schema import check_decls

GOOD = (
    "<think>\nOkay, so I need to find how many clips Natalia sold in April and May.\n\n"
    "In April she sold 48 clips. In May she sold half as many, so $48 / 2 = 24$.\n\n"
    "Hmm.\n\nWait, let me double-check: half of 48 is 24, yes.\n\n"
    "So altogether $48 + 24 = 72$ clips.\n</think>\n\nNatalia sold $\\boxed{72}$ clips in April and May."
)
TABLE = (
    "<think>\nLet me tabulate the values.\n\n| n | n^2 | n^3 |\n|---|---|---|\n| 1 | 1 | 1 |\n| 2 | 4 | 8 |\n"
    "| 3 | 9 | 27 |\n\nHmm.\nHmm.\nHmm.\nOk.\n\nSo the pattern holds and the sum of cubes is 36.\n</think>\n36"
)
WALL = "<think>\n" + " ".join(["the total cost grows by three dollars each week"] * 40) + "\n</think>\nok"
CODE_IN_MATH = (
    "<think>\nLet me just compute it with a program.\n\n```python\nprint(sum(range(101)))\n```\n\n"
    "That prints 5050.\n</think>\nThe sum is 5050."
)
LOOP = (
    "<think>\nOkay, let me compute the total.\n"
    + "Wait, let me recompute the total cost of the apples again to be sure.\nSo 3 times 4 is 12.\n" * 60
    + "</think>\n12"
)
NGRAM_LOOP = (
    "<think>\n" + " ".join(["so the total is twelve and then we add three more to get fifteen"] * 40) + "\n</think>\n15"
)
CHAR_RUN = "<think>\nLet me think about this problem.\n" + "!" * 80 + "\nSo the answer is 3.\n</think>\n3"
BLOB = (
    "<think>\nThe key is QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkr"
    "LzEyMzQ1Njc4OTBhYmNkZWY= and that is all.\n</think>\nok"
)
BIG_NUMBER = "<think>\nWe get " + "1234567890" * 12 + " which is large.\n</think>\nok"
SEPARATOR = "<think>\nFirst part.\n" + "-" * 20 + "\nSecond part.\n</think>\nok"
LONG = "<think>\n" + "We keep checking the same idea in new words.\n\n" * 1000 + "</think>\nok"
ZH_GOOD = (
    "<think>\n我们需要求出方程的解。\n\n首先，两边同时减去三，得到二x等于四。\n\n所以x等于二。\n</think>\n答案是二。"
)
ZH_WALL = "<think>\n" + "我们需要仔细检查每一步的计算是否正确。" * 40 + "\n</think>\n答案是二。"
UNCLOSED_LOOP = "<think>\n" + "Let me try again from the beginning with the same numbers.\n" * 80

# (name, response, task, expected readability.* codes)
CASES: list[tuple[str, str, str, set[str]]] = [
    ("clean trace", GOOD, "math", set()),
    ("markdown table and hmm lines", TABLE, "math", set()),
    ("wall of text", WALL, "general", {"readability.long_paragraph", "readability.repeated_ngrams"}),
    ("code block in math", CODE_IN_MATH, "math", {"readability.code_block"}),
    ("code block in code", CODE_IN_MATH, "code", set()),
    (
        "recompute loop",
        LOOP,
        "math",
        {"readability.repeated_lines", "readability.repeated_ngrams", "readability.compressible"},
    ),
    (
        "n-gram loop on one line",
        NGRAM_LOOP,
        "general",
        {"readability.repeated_ngrams", "readability.long_paragraph", "readability.compressible"},
    ),
    ("repeated character", CHAR_RUN, "general", {"readability.junk"}),
    ("base64 blob", BLOB, "general", {"readability.junk"}),
    ("120-digit number is math", BIG_NUMBER, "math", set()),
    ("short separator", SEPARATOR, "general", set()),
    (
        "over the general budget",
        LONG,
        "general",
        {
            "readability.too_long",
            "readability.repeated_lines",
            "readability.repeated_ngrams",
            "readability.compressible",
        },
    ),
    ("chinese trace", ZH_GOOD, "math", set()),
    (
        "chinese wall of text",
        ZH_WALL,
        "math",
        {"readability.long_paragraph", "readability.repeated_ngrams", "readability.compressible"},
    ),
    (
        "never closed, looping",
        UNCLOSED_LOOP,
        "math",
        {"readability.repeated_lines", "readability.repeated_ngrams", "readability.compressible"},
    ),
]


@pytest.fixture(scope="module")
def checked() -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "sample_id": [c[0] for c in CASES],
            "response": [c[1] for c in CASES],
            "task": [c[2] for c in CASES],
        }
    )
    return ReadabilityCheck().run(df)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_table(checked: pl.DataFrame, i: int) -> None:
    row = checked.row(i, named=True)
    got = {r for r in row["reject_reasons"] if r.startswith("readability.")}
    assert got == CASES[i][3], {k: v for k, v in row.items() if k != "response"}
    assert row["readability_score"] == (0.0 if CASES[i][3] else 1.0)


def test_columns_declared_and_typed(checked: pl.DataFrame) -> None:
    decl = check_decls()["readability"]
    cols = declared_columns("readability")
    assert set(cols) <= set(checked.columns)
    assert checked.height == len(CASES)
    assert checked["sample_id"].to_list() == [c[0] for c in CASES]
    for c in decl.columns:
        expected = {"int32": pl.Int32, "float64": pl.Float64}[c.type]
        assert checked.schema[c.name] == expected, c.name
    fired = {r for rs in checked["reject_reasons"].to_list() for r in rs}
    assert fired <= set(decl.reasons)


def test_feature_values(checked: pl.DataFrame) -> None:
    rows = {r["sample_id"]: r for r in checked.iter_rows(named=True)}
    assert rows["wall of text"]["readability_longest_paragraph_words"] == 360
    assert rows["code block in math"]["readability_code_blocks"] == 1
    assert rows["repeated character"]["readability_junk_run"] == 80
    assert rows["clean trace"]["readability_compression_ratio"] is None  # too short to judge
    # 29 Han characters at 1.5 per word, plus the two "x".
    assert rows["chinese trace"]["readability_reasoning_words"] == int(29 / 1.5 + 2)
    assert rows["clean trace"]["readability_answer_words"] == 8


def test_reasons_appended_not_replaced() -> None:
    df = pl.DataFrame({"response": [CODE_IN_MATH], "task": ["math"], "reject_reasons": [["format.x"]]})
    out = ReadabilityCheck().run(df)
    assert out["reject_reasons"].to_list() == [["format.x", "readability.code_block"]]


def test_missing_task_column_means_general() -> None:
    out = ReadabilityCheck().run(pl.DataFrame({"response": [CODE_IN_MATH]}))
    assert out["reject_reasons"].to_list() == [["readability.code_block"]]


def test_config_changes_verdicts() -> None:
    df = pl.DataFrame({"response": [GOOD, CODE_IN_MATH], "task": ["math", "math"]})
    cfg = ReadabilityConfig(max_code_blocks=1, min_answer_words=20)
    out = ReadabilityCheck(cfg).run(df)
    assert out["reject_reasons"].to_list() == [["readability.short_summary"], ["readability.short_summary"]]


def test_compression_ratio_window() -> None:
    text = "abcdefghij" * 1000
    full = compression_ratios(pl.Series([text, "short"]), level=1, min_bytes=100)
    tail = compression_ratios(pl.Series([text]), level=1, window=500)
    assert full[1] is None
    assert full[0] > tail[0] > 1.0


def test_reference_solutions_pass() -> None:
    """Human-written MATH-500 solutions (shipped): at most the one known 304-word paragraph fires."""
    path = files("curate") / "data" / "benchmarks" / "math500.jsonl"
    with path.open(encoding="utf-8") as f:
        sols = [json.loads(line)["solution"] for line in f if line.strip()]
    out = ReadabilityCheck().run(pl.DataFrame({"response": sols, "task": ["math"] * len(sols)}))
    reasons = [r for rs in out["reject_reasons"].to_list() for r in rs]
    assert reasons in ([], ["readability.long_paragraph"]), reasons


def test_empty_frame() -> None:
    out = ReadabilityCheck().run(
        pl.DataFrame({"response": [], "task": []}, schema={"response": pl.String, "task": pl.String})
    )
    assert out.height == 0 and "readability_score" in out.columns
