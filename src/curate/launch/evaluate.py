"""Evaluate a checkpoint on held-out prompts, scored by curate's own checks.

``n`` samples per prompt from the transformers engine that ``curate generate --engine hf`` uses (the
checkpoint's chat template, curate's prompt template and ``<think>`` prefill, left-padded batches with a
KV cache, one seeded RNG per sample, so a sample does not depend on its batch), then the ``format``,
``lang`` and verifier checks (``math``; ``code`` for code prompts, in the sandbox) on exactly the rows a
training ledger would hold. pass@1 is the mean correctness of a prompt's samples, averaged over prompts.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate.checks.base import REASONS, finalize
from curate.checks.registry import build_checks
from curate.errors import CurateError

CHECKS: tuple[str, ...] = ("format", "lang", "math", "code")
VERIFIERS: dict[str, str] = {"math": "math", "code": "code"}  # task -> the check that decides correctness


class EvalError(CurateError, ValueError):
    """Bad evaluation input: no prompts, missing columns, an unknown check or template, no checkpoint."""


@dataclass(frozen=True, slots=True)
class EvalConfig:
    n: int = 4  # samples per prompt; pass@1 is their mean correctness
    temperature: float = 0.6  # R1's evaluation sampling
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int = 0
    batch_size: int = 64  # samples decoded together
    template: str = "r1"  # curate's prompt template (the one the training ledger was generated with)
    device: str = "auto"  # auto: cuda when available, else cpu
    checks: tuple[str, ...] = CHECKS  # code runs only where a prompt's task is code
    limit: int | None = None  # first N prompts only

    def __post_init__(self) -> None:
        from curate.generate.templates import TEMPLATES

        if self.n < 1 or self.max_tokens < 1 or self.batch_size < 1:
            raise EvalError("evaluation needs n, max_tokens and batch_size >= 1")
        if self.template not in TEMPLATES:
            raise EvalError(f"unknown template {self.template!r}; choose one of {', '.join(TEMPLATES)}")
        unknown = sorted(set(self.checks) - set(CHECKS))
        if unknown:
            raise EvalError(f"unknown evaluation check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")


@dataclass(frozen=True, slots=True)
class EvalReport:
    pass_at_1: float  # mean over prompts of the mean correctness of their samples
    mean_length: float  # response characters (prefill included)
    mean_tokens: float  # generated tokens
    lang_mix_rate: float  # share of samples with any lang. reason
    format_ok_rate: float  # share of samples with no format. reason
    n_prompts: int
    n_samples: int
    undecided: int  # samples the verifier could not decide (left out of their prompt's mean)
    reasons: dict[str, int] = field(default_factory=dict)  # reason code -> samples
    per_task: dict[str, float] = field(default_factory=dict)  # task -> pass@1
    model: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_prompts(prompts: pl.DataFrame) -> pl.DataFrame:
    """The prompts with the columns the checks read (defaults filled in); an :class:`EvalError` otherwise."""
    missing = [c for c in ("prompt_id", "prompt") if c not in prompts.columns]
    if missing:
        raise EvalError(f"evaluation prompts lack column(s) {', '.join(missing)}")
    if prompts.height == 0:
        raise EvalError("no evaluation prompts")
    df = prompts.with_columns(
        (pl.col("task") if "task" in prompts.columns else pl.lit(None, pl.String)).fill_null("general").alias("task"),
        (pl.col("language") if "language" in prompts.columns else pl.lit(None, pl.String))
        .fill_null("en")
        .alias("language"),
    )
    if "reference" not in df.columns and (df["task"] == "math").any():
        raise EvalError("math evaluation prompts need a 'reference' column (the gold answer)")
    return df


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def generate(model_dir: str | Path, prompts: pl.DataFrame, settings: EvalConfig) -> pl.DataFrame:
    """One row per sample: the prompt's columns plus ``response``, ``finish_reason``, ``tokens_out``."""
    from curate.generate.engines.base import Request, SamplingParams, prompt_seed
    from curate.generate.engines.hf import HFConfig, HFEngine
    from curate.generate.templates import PromptTemplate

    engine = HFEngine(str(model_dir), HFConfig(device=_device(settings.device), batch_size=settings.batch_size))
    try:
        template = PromptTemplate(settings.template)
        ids, texts = prompts["prompt_id"].to_list(), prompts["prompt"].to_list()
        requests = [
            Request(str(pid), template.render(str(text)), prompt_seed(settings.seed, str(pid)))
            for pid, text in zip(ids, texts, strict=True)
        ]
        params = SamplingParams(
            n=settings.n, temperature=settings.temperature, top_p=settings.top_p, max_tokens=settings.max_tokens
        )
        completions = engine.generate(requests, params)
    finally:
        engine.close()
    rows = [
        {"_row": r, "sample_index": i, "response": c.text, "finish_reason": c.finish_reason, "tokens_out": c.tokens_out}
        for r, cs in enumerate(completions)
        for i, c in enumerate(cs)
    ]
    samples = pl.DataFrame(
        rows,
        schema={
            "_row": pl.Int64,
            "sample_index": pl.Int32,
            "response": pl.String,
            "finish_reason": pl.String,
            "tokens_out": pl.Int64,
        },
    )
    keep = [c for c in prompts.columns if c not in samples.columns]
    return (
        prompts.select(keep)
        .with_row_index("_row")
        .with_columns(pl.col("_row").cast(pl.Int64))
        .join(samples, on="_row", how="inner", maintain_order="right")
        .drop("_row")
    )


def score(samples: pl.DataFrame, checks: tuple[str, ...] = CHECKS) -> pl.DataFrame:
    """Run the evaluation checks (pure; code only when there are code rows) and set ``correct``."""
    names = [c for c in checks if c != "code" or (samples["task"] == "code").any()]
    df = samples.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(REASONS))
    for check in build_checks({}, only=names):
        df = check.run(df)
    df = finalize(df)
    verdict = pl.lit(None, pl.Float64)
    for task, verifier in VERIFIERS.items():
        col = f"{verifier}_score"
        if col in df.columns:
            verdict = pl.when(pl.col("task") == task).then(pl.col(col).cast(pl.Float64)).otherwise(verdict)
    return df.with_columns(verdict.alias("correct"))


def summarize(scored: pl.DataFrame, model: str = "", seconds: float = 0.0) -> EvalReport:
    """The report over scored samples (``correct`` null: undecided, or a task no verifier covers)."""
    has = pl.col(REASONS).list.eval(pl.element().str.starts_with("lang.")).list.any()
    fmt = pl.col(REASONS).list.eval(pl.element().str.starts_with("format.")).list.any()
    per_prompt = scored.group_by("prompt_id", "task", maintain_order=True).agg(pl.col("correct").mean().alias("p"))
    decided = per_prompt.drop_nulls("p")
    per_task = decided.group_by("task", maintain_order=True).agg(pl.col("p").mean())
    reasons = Counter(r for rs in scored[REASONS].to_list() for r in rs or ())
    n = scored.height
    has_tokens = "tokens_out" in scored.columns
    stats = scored.select(
        pl.col("response").str.len_chars().mean().alias("chars"),
        has.mean().alias("lang"),
        (~fmt).mean().alias("fmt"),
    ).row(0)
    return EvalReport(
        pass_at_1=float(decided.select(pl.col("p").mean()).item() or 0.0),
        mean_length=float(stats[0] or 0.0),
        mean_tokens=float(scored.select(pl.col("tokens_out").mean()).item() or 0.0) if has_tokens else 0.0,
        lang_mix_rate=float(stats[1] or 0.0),
        format_ok_rate=float(stats[2] or 0.0),
        n_prompts=per_prompt.height,
        n_samples=n,
        undecided=int(scored.filter(pl.col("task").is_in(list(VERIFIERS)) & pl.col("correct").is_null()).height),
        reasons=dict(sorted(reasons.items())),
        per_task={str(t): float(p) for t, p in per_task.iter_rows()},
        model=model,
        seconds=seconds,
    )


def evaluate(
    model_dir: str | Path,
    prompts: pl.DataFrame,
    settings: EvalConfig | None = None,
    report: Callable[[str], None] | None = None,
) -> EvalReport:
    """Sample ``settings.n`` responses per prompt from ``model_dir`` and score them (see the module doc)."""
    s = settings or EvalConfig()
    df = check_prompts(prompts)
    if s.limit is not None:
        df = df.head(s.limit)
    if not Path(model_dir).expanduser().is_dir():
        raise EvalError(f"checkpoint directory not found: {model_dir}")
    t0 = time.perf_counter()
    if report is not None:
        report(f"evaluate {model_dir}: {df.height} prompts x n={s.n}")
    samples = generate(model_dir, df.select([c for c in df.columns if c != "response"]), s)
    scored = score(samples, s.checks)
    return summarize(scored, str(model_dir), time.perf_counter() - t0)
