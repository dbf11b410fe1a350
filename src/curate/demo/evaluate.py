"""Held-out evaluation of a demo checkpoint, scored by curate's own checks (not by a second grader)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from curate.checks.registry import build_checks
from curate.demo.experiment import ToySamplingConfig, load, sample
from curate.demo.task import Problem

_EVAL_CHECKS = ("format", "readability", "lang", "math")


@dataclass(frozen=True, slots=True)
class PhaseEval:
    pass_at_1: float  # mean verified correctness over the samples of each problem, averaged over problems
    mean_length: float  # characters per response
    lang_mix_rate: float  # share of responses with a ``lang.`` reason
    unreadable_rate: float  # share with a ``readability.`` reason
    format_error_rate: float  # share with a ``format.`` reason
    samples: int


def score_frame(
    problems: Sequence[Problem], responses: Sequence[Sequence[tuple[str, str]]], checks: dict[str, Any]
) -> pl.DataFrame:
    """(response, finish_reason) per sample per problem -> the checked frame of the evaluation checks."""
    rows = [(p, text, finish) for p, rs in zip(problems, responses, strict=True) for text, finish in rs]
    df = pl.DataFrame(
        {
            "sample_id": [str(i) for i in range(len(rows))],
            "prompt_id": [p.prompt_id for p, _, _ in rows],
            "prompt": [p.prompt for p, _, _ in rows],
            "task": ["math"] * len(rows),
            "reference": [str(p.answer) for p, _, _ in rows],
            "language": ["en"] * len(rows),
            "response": [t for _, t, _ in rows],
            "finish_reason": [f for _, _, f in rows],
        },
        schema_overrides={"response": pl.String, "finish_reason": pl.String},
    )
    for check in build_checks({k: v for k, v in checks.items() if k in _EVAL_CHECKS}, only=_EVAL_CHECKS):
        df = check.run(df)
    return df


def summarize(df: pl.DataFrame) -> PhaseEval:
    if df.height == 0:
        return PhaseEval(0.0, 0.0, 0.0, 0.0, 0.0, 0)

    def share(prefix: str) -> float:
        hit = df["reject_reasons"].list.eval(pl.element().str.starts_with(prefix)).list.any()
        return float(hit.cast(pl.Float64).mean() or 0.0)  # type: ignore[arg-type]

    per_problem = df.group_by("prompt_id").agg(pl.col("math_score").fill_null(0.0).mean())
    return PhaseEval(
        pass_at_1=float(per_problem["math_score"].mean() or 0.0),  # type: ignore[arg-type]
        mean_length=float(df["response"].str.len_chars().mean() or 0.0),  # type: ignore[arg-type]
        lang_mix_rate=share("lang."),
        unreadable_rate=share("readability."),
        format_error_rate=share("format."),
        samples=df.height,
    )


def evaluate_phase(
    model: str | Path, problems: Sequence[Problem], sampling: ToySamplingConfig, checks: dict[str, Any]
) -> PhaseEval:
    """Sample ``sampling.n`` responses per held-out problem from ``model`` and score them."""
    net, tokenizer = load(model)
    completions = sample(net, tokenizer, [p.prompt for p in problems], sampling)
    responses = [[(c.text, c.finish_reason) for c in cs] for cs in completions]
    return summarize(score_frame(problems, responses, checks))
