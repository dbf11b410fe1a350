"""Each selection policy, asserted on a small frame whose right answer is known by hand."""

from __future__ import annotations

import polars as pl
import pytest

from curate.recipes.select import SelectConfig, cap, pass_rates, select


def _frame() -> pl.DataFrame:
    """Prompt p: four accepted samples of different lengths and readability, one rejected; prompt q:
    one accepted of three decided (pass rate 1/3)."""
    return pl.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d", "e", "f", "g", "h"],
            "prompt_id": ["p", "p", "p", "p", "p", "q", "q", "q"],
            "task": ["math"] * 8,
            "response": [
                "<think>two plus two is four</think> 4",  # a: short
                "<think>" + "add the numbers carefully " * 8 + "</think> 4",  # b: long
                "<think>two plus two is four</think> four",  # c: short, near-copy of a
                "<think>count on fingers: one two three four</think> 4",  # d: medium, different words
                "<think>five</think> 5",  # e: rejected
                "<think>q ok</think> 1",
                "<think>q wrong</think> 2",
                "<think>q wrong</think> 3",
            ],
            "sample_index": [3, 2, 1, 0, 4, 0, 1, 2],
            "accepted": [True, True, True, True, False, True, False, False],
            "math_score": [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0],
            "readability_longest_paragraph_words": [5, 40, 5, 2, 1, 2, 2, 2],
            "readability_ngram_repeat_frac": [0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        }
    )


def _kept(df: pl.DataFrame, prompt: str = "p") -> list[str]:
    return df.filter(pl.col("selected") & (pl.col("prompt_id") == prompt)).sort("select_rank")["sample_id"].to_list()


def test_shortest_keeps_the_k_shortest() -> None:
    out = select(_frame(), SelectConfig(k=2, policy="shortest"))
    assert _kept(out) == ["a", "c"]
    reasons = dict(zip(out["sample_id"], out["select_reason"], strict=True))
    assert reasons["b"] == "select.over_k" and reasons["d"] == "select.over_k" and reasons["e"] == "select.rejected"


def test_most_readable_prefers_short_paragraphs() -> None:
    assert _kept(select(_frame(), SelectConfig(k=2, policy="most_readable"))) == ["d", "a"]


def test_most_diverse_skips_near_copies() -> None:
    kept = _kept(select(_frame(), SelectConfig(k=2, policy="most_diverse")))
    assert kept[0] == "a" and "c" not in kept  # c repeats a almost word for word


def test_first_follows_sample_index() -> None:
    assert _kept(select(_frame(), SelectConfig(k=2, policy="first"))) == ["d", "c"]


def test_pass_rate_range_drops_whole_prompts() -> None:
    out = select(_frame(), SelectConfig(k=4, min_pass_rate=0.5))
    q = out.filter(pl.col("prompt_id") == "q")
    assert not q["selected"].any() and set(q["select_reason"]) == {"select.pass_rate", "select.rejected"}
    assert _kept(out) == ["a", "c", "d", "b"]


def test_pass_rates_count_correct_over_decided() -> None:
    rates = {r["prompt_id"]: r for r in pass_rates(_frame()).to_dicts()}
    assert rates["p"]["n"] == 5 and rates["p"]["n_correct"] == 4 and rates["p"]["pass_rate"] == pytest.approx(0.8)
    assert rates["q"]["pass_rate"] == pytest.approx(1 / 3)


def test_cap_is_deterministic_and_recorded() -> None:
    out = select(_frame(), SelectConfig(k=4))
    capped = cap(out, pl.lit(True), 2)
    assert capped["selected"].sum() == 2
    assert capped.filter(pl.col("select_reason") == "select.mix_cap").height == int(out["selected"].sum()) - 2
    assert cap(out, pl.lit(True), 2).equals(capped)


def test_config_is_validated() -> None:
    for bad in ({"k": 0}, {"min_pass_rate": 0.9, "max_pass_rate": 0.1}, {"policy": "random"}):
        with pytest.raises(ValueError):
            SelectConfig(**bad)  # type: ignore[arg-type]
