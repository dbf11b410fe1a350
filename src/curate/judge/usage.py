"""What a judge run spent: a pure summary over the judge's columns, for the caller's manifest.

Computed from the frame, not kept as state on the check: the numbers travel with the data they describe
and can be recomputed from any checked file. Cache hits cost nothing (tokens are those spent *now*).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import polars as pl


@dataclass(frozen=True, slots=True)
class JudgeUsage:
    rows: int  # rows sent to the judge
    calls: int  # engine calls made (retries included)
    cached: int  # rows answered from the cache
    tokens_in: int
    tokens_out: int
    cost_usd: float  # estimated from the configured prices per 1M tokens
    passed: int
    failed: int
    unparseable: int
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def usage_summary(df: pl.DataFrame, price_in_per_m: float = 0.0, price_out_per_m: float = 0.0) -> JudgeUsage:
    if "judge_rubric" not in df.columns:
        return JudgeUsage(0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0)
    sent = df.filter(pl.col("judge_rubric").is_not_null())
    reasons = sent["reject_reasons"] if "reject_reasons" in sent.columns else None

    def has(code: str) -> int:
        if reasons is None:
            return 0
        return int(sent.select(pl.col("reject_reasons").list.contains(code).sum()).item() or 0)

    def total(col: str) -> int:
        return int(sent[col].sum() or 0) if col in sent.columns else 0

    t_in, t_out = total("judge_tokens_in"), total("judge_tokens_out")
    return JudgeUsage(
        rows=sent.height,
        calls=total("judge_calls"),
        cached=int(sent["judge_cached"].sum() or 0) if "judge_cached" in sent.columns else 0,
        tokens_in=t_in,
        tokens_out=t_out,
        cost_usd=round(t_in * price_in_per_m / 1e6 + t_out * price_out_per_m / 1e6, 6),
        passed=int((sent["judge_verdict"] == "pass").sum()),
        failed=int((sent["judge_verdict"] == "fail").sum()),
        unparseable=has("judge.unparseable"),
        errors=has("judge.error"),
    )
