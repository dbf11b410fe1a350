"""Recipes end to end over a real store: selection, the four dataset kinds, consumers' own loaders,
and the funnel reproduced from the ledger with DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from curate.recipes import recipe_from_dict, run_recipe, to_openrlhf_jsonl
from curate.schema import table
from curate.store import Store


def _checked(n_prompts: int = 6, n: int = 4) -> pl.DataFrame:
    """Checked samples: prompt p has p correct answers out of n (pass rates 0, .25, ... capped at 1)."""
    rows = []
    for p in range(n_prompts):
        for i in range(n):
            correct = i < min(p, n)
            reasons = [] if correct else ["math.incorrect"]
            if i == n - 1 and p == 2:
                reasons.append("format.multiple_think")
            rows.append(
                {
                    "sample_id": f"s{p}-{i}",
                    "prompt_id": f"p{p}",
                    "task": "math",
                    "prompt": f"What is {p}+{p}?",
                    "response": f"<think>{'step ' * (i + 1)}{p}+{p}</think>\nSo the sum is "
                    f"\\boxed{{{2 * p if correct else 0}}}.",
                    "reference": str(2 * p),
                    "sample_index": i,
                    "checkpoint": "ckpt-A",
                    "tokens_out": 10 + i,
                    "math_score": 1.0 if correct else 0.0,
                    "reject_reasons": reasons,
                    "accepted": not reasons,
                }
            )
    rows.append(
        {
            "sample_id": "g0",
            "prompt_id": "g",
            "task": "general",
            "prompt": "Say hi",
            "response": "<think>greet</think>Hi there, nice to meet you!",
            "reject_reasons": [],
            "accepted": True,
            "sample_index": 0,
            "checkpoint": "ckpt-A",
        }
    )
    return pl.DataFrame(rows)


@pytest.fixture()
def store(tmp_path: Path) -> tuple[Store, str]:
    s = Store(tmp_path / "store")
    dv = s.publish_frame("toy_checked", "checked", table("checked_sample"), _checked())
    return s, dv.manifest.ref


def _load_hf(parts: list[Path]) -> object:
    from datasets import load_dataset

    return load_dataset("parquet", data_files=[str(p) for p in parts], split="train")


def test_rs_sft_selects_k_shortest_and_loads_in_trl(store: tuple[Store, str]) -> None:
    from trl.data_utils import is_conversational

    s, ref = store
    pub = run_recipe(
        recipe_from_dict({"recipe": "rs_sft", "name": "rs", "inputs": [ref], "select": {"k": 2, "policy": "shortest"}}),
        s,
    )
    m = pub.dataset.manifest
    assert m.parents == (ref,) and m.kind == "rs_sft" and m.extra["recipe_hash"]
    ds = _load_hf(pub.dataset.parts)
    assert ds.column_names[0] == "messages" and is_conversational(ds[0])  # type: ignore[attr-defined]
    assert [t["role"] for t in ds[0]["messages"]] == ["user", "assistant"]  # type: ignore[index]
    dec = pl.read_parquet(pub.selection.parts)
    # prompt p has min(p, 4) correct; keep <= 2 per prompt; the general row passes (no judge required)
    per_prompt = dec.filter(pl.col("selected")).group_by("prompt_id").len().sort("prompt_id")
    assert dict(per_prompt.iter_rows()) == {"g": 1, "p1": 1, "p2": 2, "p3": 2, "p4": 2, "p5": 2}
    kept = dec.filter(pl.col("selected") & (pl.col("prompt_id") == "p3"))["sample_id"].sort().to_list()
    assert kept == ["s3-0", "s3-1"]  # the two shortest correct ones
    assert set(dec["select_reason"]) == {"selected", "select.rejected", "select.over_k"}
    assert m.rows == 10 and m.funnel["select.over_k"] == 5  # p3: 1, p4: 2, p5: 2


def test_rs_sft_mix_and_judge_requirement(store: tuple[Store, str]) -> None:
    s, ref = store
    pub = run_recipe(
        recipe_from_dict(
            {"recipe": "rs_sft", "name": "rs", "inputs": [ref], "require_judge": True, "mix": {"reasoning": 3}}
        ),
        s,
    )
    dec = pl.read_parquet(pub.selection.parts)
    assert dec.filter(pl.col("prompt_id") == "g")["select_reason"].to_list() == ["select.not_judged"]
    assert pub.dataset.manifest.rows == 3 and pub.dataset.manifest.funnel["select.mix_cap"] > 0


def test_prompt_completion_format_for_distill(store: tuple[Store, str]) -> None:
    from trl.data_utils import is_conversational

    s, ref = store
    pub = run_recipe(
        recipe_from_dict(
            {"recipe": "distill", "name": "dist", "inputs": [ref], "format": "prompt_completion", "select": {"k": 1}}
        ),
        s,
    )
    ds = _load_hf(pub.dataset.parts)
    row = ds[0]  # type: ignore[index]
    assert is_conversational(row) and row["completion"][0]["role"] == "assistant"
    assert pub.dataset.manifest.extra["length"]["unit"] == "chars"  # the general row has no token count


def test_cold_start_is_strict(store: tuple[Store, str]) -> None:
    s, ref = store
    pub = run_recipe(
        recipe_from_dict(
            {
                "recipe": "cold_start_sft",
                "name": "cold",
                "inputs": [ref],
                "select": {"k": 1},
                "cold_start": {"min_summary_chars": 15},
            }
        ),
        s,
    )
    dec = pl.read_parquet(pub.selection.parts)
    assert dec.filter(pl.col("prompt_id") == "g")["select_reason"].to_list() == ["select.strict"]  # not reasoning
    assert pub.dataset.manifest.rows == 5


def test_rl_prompts_verl_format_drops_uniform_groups(store: tuple[Store, str]) -> None:
    s, ref = store
    pub = run_recipe(recipe_from_dict({"recipe": "rl_prompts", "name": "rl", "inputs": [ref]}), s)
    df = pl.read_parquet(pub.dataset.parts)
    assert df.columns == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    # p0 (0/4) and p4, p5 (4/4) are uniform; g has no verdict; p1..p3 remain, hardest first
    ids = [r["prompt_id"] for r in df["extra_info"].to_list()]
    assert ids == ["p1", "p2", "p3"]
    first = df.row(0, named=True)
    assert first["prompt"] == [{"role": "user", "content": "What is 1+1?"}]
    assert first["reward_model"] == {"style": "rule", "ground_truth": "2"} and first["data_source"] == "curate/math"
    assert first["extra_info"]["pass_rate"] == 0.25
    lines = [json.loads(x) for x in to_openrlhf_jsonl(df).decode().splitlines()]
    assert lines[0]["label"] == "2" and lines[0]["prompt"][0]["role"] == "user"
    pr = pl.read_parquet(pub.pass_rates.parts)
    assert pr.filter(pl.col("prompt_id") == "p3")["pass_rate"].item() == 0.75


def test_duckdb_reproduces_each_funnel_from_the_ledger(store: tuple[Store, str]) -> None:
    s, ref = store
    pub = run_recipe(recipe_from_dict({"recipe": "rs_sft", "name": "rs", "inputs": [ref], "select": {"k": 1}}), s)
    con = duckdb.connect(str(s.catalog_path), read_only=True)
    # reject reasons from the checked ledger (the parent), select reasons from the decisions dataset
    reasons = dict(
        con.execute("select r, count(*) from (select unnest(reject_reasons) r from toy_checked) group by r").fetchall()
    )
    selects = dict(con.execute("select select_reason, count(*) from rs_selection group by 1").fetchall())
    totals = con.execute("select count(*), count(*) filter (where accepted) from toy_checked").fetchone()
    funnel = dict(pub.dataset.manifest.funnel)
    assert {"total": totals[0], "accepted": totals[1], **reasons, **selects} == funnel
    assert con.execute("select count(*) from rs").fetchone() == (funnel["selected"],)
    parents = con.execute("select parents from datasets where name = 'rs'").fetchone()
    assert parents == ([ref],)
