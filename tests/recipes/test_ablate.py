"""The pure ablation: verdicts as if one check had not run."""

from __future__ import annotations

import polars as pl
import pytest

from curate.checks.base import ConfigError
from curate.recipes.ablate import readmitted, rejecting_filters, resolve_filters, without_filter


def _checked() -> pl.DataFrame:
    reasons = [
        [],
        ["format.truncated"],
        ["format.truncated", "math.no_answer"],
        ["lang.mixed"],
        ["math.incorrect"],
        ["dedup.exact", "readability.long_paragraph"],
        ["code.failed_tests"],
    ]
    return pl.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(len(reasons))],
            "math_score": [1.0, None, 0.0, 1.0, 0.0, 1.0, None],
            "reject_reasons": reasons,
            "accepted": [not r for r in reasons],
        },
        schema_overrides={"reject_reasons": pl.List(pl.String)},
    )


def test_switching_a_filter_off_readmits_only_rows_it_alone_rejected() -> None:
    df = _checked()
    out = without_filter(df, "format")
    assert out["accepted"].to_list() == [True, True, False, False, False, False, False]
    assert out["reject_reasons"].to_list()[1:3] == [[], ["math.no_answer"]]
    assert out.columns == df.columns and out.height == df.height
    assert out["math_score"].equals(df["math_score"], null_equal=True)  # scores untouched
    assert readmitted(df, "format") == 1 and readmitted(df, "math") == 1 and readmitted(df, "dedup") == 0


def test_correctness_alias_and_several_filters() -> None:
    df = _checked()
    assert without_filter(df, "correctness")["accepted"].to_list() == [True, False, False, False, True, False, True]
    both = without_filter(df, ["format", "math"])
    assert both["accepted"].to_list()[:3] == [True, True, True]
    assert without_filter(df, []).equals(df)


def test_a_row_without_reasons_keeps_its_verdict() -> None:
    df = pl.DataFrame(
        {"reject_reasons": [[], ["lang.mixed"]], "accepted": [False, False]},
        schema_overrides={"reject_reasons": pl.List(pl.String)},
    )
    assert without_filter(df, "lang")["accepted"].to_list() == [False, True]


def test_default_filters_are_the_prefixes_that_rejected_something_in_run_order() -> None:
    df = _checked()
    assert rejecting_filters(df) == ["format", "lang", "readability", "math", "code", "dedup"]
    known = ["format", "lang", "readability", "math", "code", "dedup", "decontam", "judge"]
    assert resolve_filters(None, df, known) == rejecting_filters(df)
    assert resolve_filters(["math", "correctness"], df, known) == ["math", "correctness"]
    with pytest.raises(ConfigError, match="unknown filter"):
        resolve_filters(["maths"], df, known)
    with pytest.raises(ConfigError, match="no check rejected"):
        resolve_filters(None, df.filter(pl.col("accepted")), known)
    with pytest.raises(ConfigError, match="not a checked set"):
        without_filter(df.drop("accepted"), "math")
