"""Full traces with flagged spans, the staged funnel, pass-rate bins at k/n."""

from __future__ import annotations

import polars as pl

from curate.report.traces import (
    STAGES,
    flagged_spans,
    k_over_n_edges,
    reason_grid_html,
    stage_funnel,
    trace_html,
    typical_n,
)

LOOP = "Wait, let me recompute the total again to make sure it is right.\n"


def test_long_traces_are_whole_and_loops_are_marked() -> None:
    middle = LOOP * 3
    reasoning = "Start.\n" + "x " * 4000 + "\n" + middle + "y " * 4000
    row = {
        "sample_id": "s1",
        "response": f"<think>{reasoning}</think>The answer is 4.",
        "accepted": False,
        "reject_reasons": ["readability.repeated_lines"],
    }
    out = trace_html(row)
    assert "x " * 4000 in out and "y " * 4000 in out and "characters …" not in out  # nothing clipped
    assert "<details" in out and out.count("data-reason='readability.repeated_lines'") == 2  # 2nd and 3rd copy


def test_language_switch_is_marked_only_with_its_reason() -> None:
    text = "First we add the numbers. 我们再检查一遍。 Then we divide."
    spans = flagged_spans(text, ["lang.mixed"])
    assert [text[s.start : s.end] for s in spans] == ["我们再检查一遍。"]
    assert flagged_spans(text, ["math.incorrect"]) == []


def test_markup_in_traces_is_escaped() -> None:
    row = {
        "sample_id": "s",
        "response": "<think><script>alert(1)</script></think><b>4</b>",
        "accepted": True,
        "reject_reasons": [],
    }
    out = trace_html(row)
    assert "<script>" not in out and "&lt;script&gt;" in out and "&lt;b&gt;4&lt;/b&gt;" in out


def test_stage_funnel_drops_each_sample_at_its_first_stage() -> None:
    df = pl.DataFrame(
        {
            "sample_id": list("abcdefg"),
            "accepted": [True, False, False, False, False, False, True],
            "reject_reasons": [
                [],
                ["format.truncated", "math.no_answer"],
                ["math.incorrect"],
                ["readability.long_paragraph"],
                ["lang.mixed"],
                ["dedup.near_duplicate"],
                [],
            ],
        }
    )
    f = stage_funnel(df)
    assert f["stage"].to_list() == list(STAGES)
    assert f["samples"].to_list() == [7, 6, 5, 4, 3, 2, 2]
    sel = pl.DataFrame({"sample_id": ["a", "g"], "selected": [True, False]})
    assert stage_funnel(df, sel)["samples"][-1] == 1


def test_pass_rate_bins_are_centred_on_k_over_n() -> None:
    edges = k_over_n_edges(8)
    assert len(edges) == 10
    for k in range(9):
        assert edges[k] < k / 8 < edges[k + 1]
    rates = pl.DataFrame({"n": [8, 8, 6], "n_undecided": [0, 0, 0], "pass_rate": [0.5, 1.0, 0.5]})
    assert typical_n(rates) == 8


def test_reason_grid_shows_each_reason() -> None:
    df = pl.DataFrame(
        {
            "sample_id": ["a", "b"],
            "response": ["<think>x</think>1", "<think>y</think>2"],
            "accepted": [False, False],
            "reject_reasons": [["math.incorrect"], ["lang.mixed"]],
        }
    )
    out = reason_grid_html(df, per_reason=1)
    assert "math.incorrect · 1 samples" in out and "lang.mixed · 1 samples" in out
