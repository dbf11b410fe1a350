"""Rejection-sampling selection and pass rates: the only step that drops rows, and it says why.

Pure functions over a checked-sample frame (``checked_sample`` columns):

- :func:`pass_rates` - per (prompt, checkpoint): samples drawn, verifier-correct, undecided, accepted.
- :func:`select` - per prompt, up to ``k`` accepted samples under a policy (shortest, most readable,
  most diverse, first); every row gets ``selected`` and ``select_reason`` (``selected`` or a ``select.``
  code from ``schemas/selection.yaml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import polars as pl

Policy = Literal["shortest", "most_readable", "most_diverse", "first"]
REASONING_TASKS = ("math", "code")


@dataclass(frozen=True, slots=True)
class SelectConfig:
    k: int = 4  # samples kept per prompt
    policy: Policy = "shortest"
    min_pass_rate: float = 0.0  # inclusive range of prompt pass rates to keep
    max_pass_rate: float = 1.0
    seed: int = 0  # tie-breaking

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if not 0.0 <= self.min_pass_rate <= self.max_pass_rate <= 1.0:
            raise ValueError("need 0 <= min_pass_rate <= max_pass_rate <= 1")
        if self.policy not in ("shortest", "most_readable", "most_diverse", "first"):
            raise ValueError(f"unknown policy {self.policy!r}")


def _col(df: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(name) if name in df.columns else pl.lit(None, dtype)


def verdict_expr(df: pl.DataFrame) -> pl.Expr:
    """The correctness verdict per row: 1.0 correct, 0.0 wrong, null undecided.

    Math and code rows use their verifier; other rows use the judge's verdict when it ran.
    """
    task = pl.col("task")
    verdict = _col(df, "judge_verdict", pl.String())  # pass/fail under the judge's configured threshold
    judged = pl.when(verdict.is_null()).then(None).otherwise((verdict == "pass").cast(pl.Float64))
    return (
        pl.when(task == "math")
        .then(_col(df, "math_score", pl.Float64()))
        .when(task == "code")
        .then(_col(df, "code_score", pl.Float64()))
        .otherwise(judged)
    )


def length_expr(df: pl.DataFrame) -> pl.Expr:
    chars = pl.col("response").str.len_chars().cast(pl.Float64)
    if "tokens_out" in df.columns:
        return pl.col("tokens_out").cast(pl.Float64).fill_null(chars)
    return chars


def pass_rates(df: pl.DataFrame) -> pl.DataFrame:
    """One row per (prompt_id, checkpoint) in the ``pass_rate`` table's columns."""
    df = df.with_columns(
        verdict_expr(df).alias("_v"), length_expr(df).alias("_len"), _col(df, "checkpoint", pl.String()).alias("_ckpt")
    )
    out = df.group_by("prompt_id", "_ckpt", maintain_order=True).agg(
        pl.first("task"),
        pl.len().cast(pl.Int64).alias("n"),
        (pl.col("_v") == 1.0).sum().cast(pl.Int64).alias("n_correct"),
        pl.col("_v").is_null().sum().cast(pl.Int64).alias("n_undecided"),
        pl.col("accepted").sum().cast(pl.Int64).alias("n_accepted"),
        pl.col("_len").mean().alias("mean_length"),
    )
    decided = pl.col("n") - pl.col("n_undecided")
    return out.rename({"_ckpt": "checkpoint"}).with_columns(
        pl.when(decided > 0).then(pl.col("n_correct") / decided).otherwise(None).alias("pass_rate")
    )


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _diverse_order(texts: list[str]) -> list[int]:
    """Greedy farthest-first order by word-set Jaccard: each pick is least like those already picked."""
    if not texts:
        return []
    sets = [_words(t) for t in texts]
    order = [min(range(len(texts)), key=lambda i: len(texts[i]))]  # start from the shortest
    best_sim = [0.0] * len(texts)
    while len(order) < len(texts):
        last = sets[order[-1]]
        for i, s in enumerate(sets):
            union = len(s | last) or 1
            best_sim[i] = max(best_sim[i], len(s & last) / union)
        chosen = set(order)
        order.append(min((i for i in range(len(texts)) if i not in chosen), key=lambda i: (best_sim[i], i)))
    return order


def _rank(df: pl.DataFrame, policy: Policy) -> pl.Series:
    """Rank of each accepted row within its prompt (0 = best); null for rejected rows."""
    tie = pl.col("sample_id")
    acc = df.with_row_index("_row").filter(pl.col("accepted"))
    if policy == "most_diverse":
        ranks: dict[int, int] = {}
        for _, group in acc.group_by("prompt_id", maintain_order=True):
            g = group.sort("sample_id")
            for rank, i in enumerate(_diverse_order(g["response"].to_list())):
                ranks[int(g["_row"][i])] = rank
        return pl.Series("select_rank", [ranks.get(i) for i in range(df.height)], dtype=pl.Int32)
    if policy == "shortest":
        keys = [length_expr(df), tie]
    elif policy == "most_readable":
        # Fewer readability problems first: longest paragraph, repetition, then length.
        cols = [c for c in ("readability_longest_paragraph_words", "readability_ngram_repeat_frac") if c in df.columns]
        keys = [pl.col(c).fill_null(0) for c in cols] + [length_expr(df), tie]
    else:
        keys = ([pl.col("sample_index").fill_null(0)] if "sample_index" in df.columns else []) + [tie]
    ranked = acc.sort(keys).with_columns(pl.int_range(pl.len()).over("prompt_id").cast(pl.Int32).alias("select_rank"))
    full = df.with_row_index("_row").join(ranked.select("_row", "select_rank"), on="_row", how="left")
    return full.sort("_row")["select_rank"]


def select(df: pl.DataFrame, config: SelectConfig) -> pl.DataFrame:
    """Add ``prompt_pass_rate``, ``select_rank``, ``selected`` and ``select_reason`` to every row."""
    rates = pass_rates(df).select("prompt_id", pl.col("pass_rate").alias("prompt_pass_rate"))
    rates = rates.group_by("prompt_id").agg(pl.col("prompt_pass_rate").mean())  # across checkpoints
    out = df.join(rates, on="prompt_id", how="left", maintain_order="left")
    out = out.with_columns(_rank(out, config.policy).alias("select_rank"))
    pr = pl.col("prompt_pass_rate")
    in_range = pr.is_null() | ((pr >= config.min_pass_rate) & (pr <= config.max_pass_rate))
    reason = (
        pl.when(~pl.col("accepted"))
        .then(pl.lit("select.rejected"))
        .when(~in_range)
        .then(pl.lit("select.pass_rate"))
        .when(pl.col("select_rank") >= config.k)
        .then(pl.lit("select.over_k"))
        .otherwise(pl.lit("selected"))
    )
    return out.with_columns(reason.alias("select_reason")).with_columns(
        (pl.col("select_reason") == "selected").alias("selected")
    )


def cap(df: pl.DataFrame, mask: pl.Expr, limit: int | None, reason: str = "select.mix_cap") -> pl.DataFrame:
    """Keep at most ``limit`` selected rows among those matching ``mask``.

    Which ones is deterministic and unbiased: ``sample_id`` is a content hash, so its order is a
    reproducible shuffle.
    """
    if limit is None:
        return df
    idx = df.with_row_index("_r").filter(pl.col("selected") & mask).sort("sample_id")["_r"]
    over = pl.int_range(pl.len()).is_in(idx.slice(limit).implode())
    return df.with_columns(
        pl.when(over).then(pl.lit(reason)).otherwise(pl.col("select_reason")).alias("select_reason"),
        (pl.col("selected") & ~over).alias("selected"),
    )
