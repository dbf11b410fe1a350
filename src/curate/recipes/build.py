"""Turning checked samples into a recipe's rows. Pure: frames in, frames out, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from curate.checks.funnel import Funnel
from curate.checks.text import answer_expr, reasoning_expr
from curate.recipes.config import Recipe
from curate.recipes.export import to_messages, to_prompt_completion, to_verl
from curate.recipes.select import REASONING_TASKS, cap, pass_rates, select


@dataclass(frozen=True, slots=True)
class RecipeOutput:
    table: str  # schema of ``rows``
    rows: pl.DataFrame
    decisions: pl.DataFrame  # ``selection`` table: why each sample was or was not kept
    pass_rates: pl.DataFrame
    funnel: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)


def funnel_of(checked: pl.DataFrame, decisions: pl.DataFrame | None = None) -> dict[str, int]:
    """Counts per reject reason (a row may have several), plus totals and selection outcomes."""
    funnel = Funnel.from_frame(checked)
    if decisions is not None:
        funnel = funnel.with_reasons(dict(decisions.group_by("select_reason").len().iter_rows()))
    return funnel.to_dict()


def length_stats(df: pl.DataFrame) -> dict[str, Any]:
    if df.height == 0:
        return {}
    length = pl.col("tokens_out") if "tokens_out" in df.columns and df["tokens_out"].null_count() == 0 else None
    unit = "tokens" if length is not None else "chars"
    expr = length if length is not None else pl.col("response").str.len_chars()
    x = df.select(expr.cast(pl.Float64).alias("x"))["x"].to_numpy()
    return {
        "unit": unit,
        "mean": float(x.mean()),
        "p50": float(np.quantile(x, 0.5)),
        "p90": float(np.quantile(x, 0.9)),
        "max": float(x.max()),
        "total": float(x.sum()),
    }


def _strict(df: pl.DataFrame, recipe: Recipe) -> pl.DataFrame:
    cs = recipe.cold_start
    summary = answer_expr().str.strip_chars().str.len_chars()
    ok = (
        pl.col("task").is_in(list(REASONING_TASKS))
        & (summary >= cs.min_summary_chars)
        & (reasoning_expr().str.len_chars() <= cs.max_reasoning_chars)
    )
    if cs.require_boxed:
        ok = ok & answer_expr().str.contains(r"\\boxed\{", literal=False)
    bad = pl.col("selected") & ~ok.fill_null(False)
    return df.with_columns(
        pl.when(bad).then(pl.lit("select.strict")).otherwise(pl.col("select_reason")).alias("select_reason"),
        (pl.col("selected") & ~bad).alias("selected"),
    )


def _sft(checked: pl.DataFrame, recipe: Recipe) -> RecipeOutput:
    df = select(checked, recipe.select)
    reasoning = pl.col("task").is_in(list(REASONING_TASKS))
    if recipe.kind == "cold_start_sft":
        df = _strict(df, recipe)
    if recipe.kind == "rs_sft":
        if recipe.require_judge:
            judged = pl.col("judge_score").is_not_null() if "judge_score" in df.columns else pl.lit(False)
            missing = pl.col("selected") & ~reasoning & ~judged
            df = df.with_columns(
                pl.when(missing)
                .then(pl.lit("select.not_judged"))
                .otherwise(pl.col("select_reason"))
                .alias("select_reason"),
                (pl.col("selected") & ~missing).alias("selected"),
            )
        df = cap(df, reasoning, recipe.mix.reasoning)
        df = cap(df, ~reasoning, recipe.mix.non_reasoning)
    df = cap(df, pl.lit(True), recipe.max_rows)
    chosen = df.filter(pl.col("selected"))
    convert = to_messages if recipe.format == "messages" else to_prompt_completion
    rows = convert(chosen, recipe.system_prompt)
    decisions = df.select("sample_id", "prompt_id", "selected", "select_reason", "select_rank", "prompt_pass_rate")
    extra: dict[str, Any] = {
        "length": length_stats(chosen),
        "mix": {
            "reasoning": int(chosen["task"].is_in(list(REASONING_TASKS)).sum()),
            "non_reasoning": int((~chosen["task"].is_in(list(REASONING_TASKS))).sum()),
        },
    }
    table = "sft_messages" if recipe.format == "messages" else "sft_prompt_completion"
    return RecipeOutput(table, rows, decisions, pass_rates(checked), funnel_of(checked, decisions), extra)


def _rl(checked: pl.DataFrame, recipe: Recipe) -> RecipeOutput:
    rates = pass_rates(checked)
    per_prompt = rates.group_by("prompt_id", maintain_order=True).agg(
        pl.col("n").sum(), pl.col("n_correct").sum(), pl.col("n_undecided").sum()
    )
    decided = pl.col("n") - pl.col("n_undecided")
    per_prompt = per_prompt.with_columns(
        pl.when(decided > 0).then(pl.col("n_correct") / decided).otherwise(None).alias("pass_rate")
    )
    sel = recipe.select
    pr = pl.col("pass_rate")
    reason = (
        pl.when(pr.is_null())
        .then(pl.lit("select.rejected"))  # nothing decided: no usable ground truth
        .when(recipe.drop_uniform_groups & ((pr == 0.0) | (pr == 1.0)))
        .then(pl.lit("select.pass_rate"))
        .when((pr < sel.min_pass_rate) | (pr > sel.max_pass_rate))
        .then(pl.lit("select.pass_rate"))
        .otherwise(pl.lit("selected"))
    )
    per_prompt = per_prompt.with_columns(reason.alias("select_reason"))
    first = checked.unique("prompt_id", keep="first", maintain_order=True)
    keep = ("prompt_id", "prompt", "task", "reference", "tests", "entry_point", "test_setup")
    cols = [c for c in keep if c in first.columns]
    prompts = per_prompt.join(first.select(cols), on="prompt_id", how="left")
    prompts = prompts.with_columns(
        (pl.col("select_reason") == "selected").alias("selected"), pl.col("prompt_id").alias("sample_id")
    )
    prompts = cap(prompts, pl.lit(True), recipe.max_rows)
    chosen = prompts.filter(pl.col("selected")).sort("pass_rate", "prompt_id")
    rows = to_verl(chosen, recipe.system_prompt)
    decisions = prompts.select(
        "sample_id",
        "prompt_id",
        "selected",
        "select_reason",
        pl.lit(None, pl.Int32).alias("select_rank"),
        pl.col("pass_rate").alias("prompt_pass_rate"),
    )
    hist = chosen.select(((pl.col("pass_rate") * 10).floor() / 10).alias("bucket")).group_by("bucket").len()
    extra = {"prompts": chosen.height, "pass_rate_histogram": {f"{b:.1f}": n for b, n in sorted(hist.iter_rows())}}
    return RecipeOutput("rl_prompt", rows, decisions, rates, funnel_of(checked, decisions), extra)


def build(recipe: Recipe, checked: pl.DataFrame) -> RecipeOutput:
    """The recipe's rows, decisions and funnel from checked samples."""
    if recipe.kind == "rl_prompts":
        return _rl(checked, recipe)
    return _sft(checked, recipe)
