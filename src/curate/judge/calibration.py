"""How far to trust the judge: agreement with the rule verifiers where both gave a verdict.

A pure function over a checked frame holding both ``judge_verdict`` and ``math_score`` / ``code_score``:
the confusion matrix of judge pass/fail against rule correct/incorrect, accuracy, Cohen's kappa, and the
judge's precision/recall for "correct". By default only correctness verdicts (the ``reference`` rubric)
are compared; readability or quality verdicts answer another question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl


@dataclass(frozen=True, slots=True)
class Agreement:
    n: int
    tp: int  # judge pass, rule correct
    fp: int  # judge pass, rule incorrect: the judge's costly mistake (wrong data kept)
    fn: int  # judge fail, rule correct
    tn: int  # judge fail, rule incorrect

    @property
    def accuracy(self) -> float | None:
        return (self.tp + self.tn) / self.n if self.n else None

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa: agreement beyond chance (1 perfect, 0 chance level)."""
        if not self.n:
            return None
        po = (self.tp + self.tn) / self.n
        pe = ((self.tp + self.fp) * (self.tp + self.fn) + (self.fn + self.tn) * (self.fp + self.tn)) / self.n**2
        return (po - pe) / (1 - pe) if pe < 1 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "kappa": self.kappa,
        }


def rule_verdict(df: pl.DataFrame) -> pl.Expr:
    """1.0 / 0.0 from the task's rule verifier (math_score or code_score), null when none decided."""
    task = pl.col("task") if "task" in df.columns else pl.lit(None, pl.String)
    math = pl.col("math_score") if "math_score" in df.columns else pl.lit(None, pl.Float64)
    code = pl.col("code_score") if "code_score" in df.columns else pl.lit(None, pl.Float64)
    return pl.when(task == "math").then(math).when(task == "code").then(code).otherwise(None)


def agreement(
    df: pl.DataFrame, rubrics: Sequence[str] | None = ("reference",), by: str | None = None
) -> dict[str, Agreement]:
    """Agreement per group (``by`` a column such as ``task``; ``"all"`` when None) over rows with both
    verdicts. ``rubrics`` restricts to judge verdicts of those rubric names (None: any rubric)."""
    if "judge_verdict" not in df.columns:
        return {}
    judged = pl.col("judge_verdict").is_not_null()
    if rubrics is not None and "judge_rubric" in df.columns:
        judged &= pl.col("judge_rubric").str.split("@").list.first().is_in(list(rubrics))
    frame = df.select(
        (pl.col(by).cast(pl.String) if by else pl.lit("all")).alias("_g"),
        (pl.col("judge_verdict") == "pass").alias("_j"),
        (rule_verdict(df) >= 0.5).alias("_r"),
        judged.alias("_ok"),
    ).filter(pl.col("_ok") & pl.col("_r").is_not_null())
    out: dict[str, Agreement] = {}
    for (g,), part in sorted(frame.group_by("_g"), key=lambda kv: str(kv[0][0])):
        j, r = part["_j"], part["_r"]
        out[str(g)] = Agreement(
            part.height, int((j & r).sum()), int((j & ~r).sum()), int((~j & r).sum()), int((~j & ~r).sum())
        )
    return out


def rescued_by_judge(undecided_codes: Sequence[str] | None = None) -> pl.Expr:
    """True for rows whose only reject reasons are "cannot decide" codes and that the judge passed.

    Checks never remove each other's codes, so such rows stay rejected; a selection policy that trusts
    the judge (see :func:`agreement`) may accept them with this mask.
    """
    from curate.judge.check import UNDECIDED_CODES

    codes = list(undecided_codes or UNDECIDED_CODES)
    reasons = pl.col("reject_reasons")
    only_undecided = reasons.list.eval(pl.element().is_in(codes)).list.all()
    return (reasons.list.len() > 0) & only_undecided & (pl.col("judge_verdict") == "pass")
