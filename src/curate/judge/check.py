"""The ``judge`` check (corpus scope, last, off by default): an LLM grades what the rules cannot decide.

Which rows are sent (the judge is the most expensive check, so only rows nothing cheaper rejected):

- rows with an empty ``reject_reasons``;
- rows whose *only* reasons are "cannot decide" codes (``undecided_codes``: the gold answer could not
  be parsed, math verification timed out, a code row has no tests) and that have a reference: they go
  to the reference-guided rubric. The judge never removes another check's code (checks only append),
  so such a row stays rejected by default; its ``judge_verdict`` is recorded, and a selection policy may
  rescue it with :func:`curate.judge.rescued_by_judge`. ``judge_undecided=False`` skips them.

Rubric per row with ``rubric="auto"``: undecided-only rows and general rows with a reference ->
``reference``; other general rows -> ``quality``; math and code rows that passed their verifier ->
``readability`` (the reasoning's readability and coherence). A fixed rubric applies to every sent row
(one needing a reference skips rows without one). Rows not sent keep null judge columns.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from curate.checks.base import REASONS, Check, ConfigError, add_reasons, make_config
from curate.generate.engines.base import Engine
from curate.judge.cache import VerdictCache
from curate.judge.rubrics import BUILTIN_RUBRICS, Rubric, load_rubric
from curate.judge.run import Item, JudgeParams, Outcome, judge_items
from curate.judge.usage import JudgeUsage, usage_summary

UNDECIDED_CODES = ("math.gold_unparseable", "math.timeout", "code.no_tests", "code.bad_tests")
_ENGINE_CONFIGS = {"hf": "HFConfig", "openai": "OpenAIConfig", "vllm": "VLLMConfig"}


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    engine: str = ""  # hf | openai | vllm; required
    model: str = ""  # judge checkpoint path or served model name; required; part of the cache key
    engine_options: Mapping[str, Any] = field(default_factory=dict)  # the engine's config fields
    api_key_env: str = ""  # openai: environment variable holding the API key (keeps it out of configs)
    rubric: str = "auto"  # auto | reference | readability | quality | path to a rubric .yaml
    threshold: float = 0.5  # judge_score below it -> judge.rejected
    tasks: tuple[str, ...] = ("math", "code", "general")  # tasks whose rows are sent
    judge_undecided: bool = True  # send rows whose only reasons are undecided_codes (reference rubric)
    undecided_codes: tuple[str, ...] = UNDECIDED_CODES
    cache_dir: str | None = None  # persistent verdict cache (SQLite); None: no cache
    max_concurrency: int = 16  # requests in flight (openai) / rows per batch (hf)
    temperature: float = 0.0
    max_tokens: int = 2048  # judge reply budget (room for a reasoning judge's thinking)
    retries: int = 1  # extra attempts on an unparseable reply, then judge.unparseable
    max_chars: int = 60000  # per quoted field; longer fields keep head and tail
    chunk_size: int = 256  # rows per engine call; each finished chunk is cached
    price_in_per_m: float = 0.0  # USD per 1M input tokens (usage summary)
    price_out_per_m: float = 0.0  # USD per 1M output tokens

    def __post_init__(self) -> None:
        if self.engine and self.engine not in _ENGINE_CONFIGS:
            raise ValueError(f"engine must be one of {', '.join(_ENGINE_CONFIGS)}, got {self.engine!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.rubric != "auto":
            load_rubric(self.rubric)
        if self.max_concurrency < 1 or self.retries < 0 or self.chunk_size < 1 or self.max_tokens < 1:
            raise ValueError("max_concurrency, chunk_size and max_tokens must be >= 1, retries >= 0")
        if self.temperature < 0 or self.price_in_per_m < 0 or self.price_out_per_m < 0:
            raise ValueError("temperature and prices must be >= 0")


def build_engine(cfg: JudgeConfig) -> Engine:
    """The configured judge engine (loaded on first use, not at check construction)."""
    from curate.generate import engines

    options = dict(cfg.engine_options)
    if cfg.engine == "openai":
        options.setdefault("concurrency", cfg.max_concurrency)
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ConfigError(f"checks.judge.api_key_env: ${cfg.api_key_env} is not set")
            options.setdefault("api_key", key)
    elif cfg.engine == "hf":
        options.setdefault("batch_size", cfg.max_concurrency)
    engine_cfg = make_config(getattr(engines, _ENGINE_CONFIGS[cfg.engine]), options, "checks.judge.engine_options")
    return engines.make_engine(cfg.engine, cfg.model, engine_cfg)


def route(df: pl.DataFrame, cfg: JudgeConfig) -> pl.Series:
    """The rubric name each row is sent to, null for rows not sent (see the module docstring)."""
    reasons = pl.col(REASONS)
    n = reasons.list.len()
    clean = n == 0
    undecided = (n > 0) & reasons.list.eval(pl.element().is_in(list(cfg.undecided_codes))).list.all()
    if not cfg.judge_undecided:
        undecided = pl.lit(False)
    task = pl.col("task") if "task" in df.columns else pl.lit("general")
    ref = pl.col("reference") if "reference" in df.columns else pl.lit(None, pl.String)
    has_ref = ref.is_not_null() & (ref.str.strip_chars().str.len_chars() > 0)
    in_tasks = task.is_in(list(cfg.tasks))
    if cfg.rubric == "auto":
        expr: pl.Expr = (
            pl.when(undecided & has_ref)
            .then(pl.lit("reference"))
            .when(clean & (task == "general") & has_ref)
            .then(pl.lit("reference"))
            .when(clean & (task == "general"))
            .then(pl.lit("quality"))
            .when(clean)
            .then(pl.lit("readability"))
        )
    else:
        needs_ref = load_rubric(cfg.rubric).needs_reference
        sent = (clean | undecided) & has_ref if needs_ref else clean
        expr = pl.when(sent).then(pl.lit(cfg.rubric))
    return df.select(pl.when(in_tasks).then(expr).otherwise(None).cast(pl.String).alias("r")).to_series()


class JudgeCheck(Check[JudgeConfig]):
    name = "judge"
    scope = "corpus"
    cost = 100
    default_enabled = False
    Config = JudgeConfig
    reads = ("task", "prompt", "response", "reference")
    streams = True  # rows are judged independently: batch by batch as they stream to the output

    def __init__(self, config: JudgeConfig | None = None, engine: Engine | None = None) -> None:
        """``engine`` overrides the configured one (tests, or one engine shared by several checks)."""
        super().__init__(config)
        if engine is None and not (self.config.engine and self.config.model):
            raise ConfigError("checks.judge needs `engine` (hf | openai | vllm) and `model`")
        self._engine = engine
        self._owns_engine = engine is None  # an engine the caller passed in is the caller's to close
        self._rubrics: dict[str, Rubric] = dict(BUILTIN_RUBRICS)
        if self.config.rubric != "auto":
            self._rubrics[self.config.rubric] = load_rubric(self.config.rubric)

    def _engine_(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.config)
        return self._engine

    def params(self) -> JudgeParams:
        c = self.config
        return JudgeParams(
            model=c.model or getattr(self._engine, "checkpoint", "engine"),
            temperature=c.temperature,
            max_tokens=c.max_tokens,
            retries=c.retries,
            max_chars=c.max_chars,
            chunk_size=c.chunk_size,
            endpoint=f"{c.engine}:{c.engine_options.get('base_url', '')}",
        )

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        try:
            return self._judge(df, VerdictCache(self.config.cache_dir))
        finally:  # an engine the check built is released after the pass: a corpus check runs once a run
            if self._owns_engine:
                self.close()

    def run_stream(self, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """One engine and one verdict cache for the whole run, so rows identical to a row of an earlier
        batch are not judged again (a temporary cache for the run when none is configured)."""
        with tempfile.TemporaryDirectory(prefix="curate-judge-") as scratch:
            cache = VerdictCache(self.config.cache_dir or scratch)
            try:
                for df in frames:
                    yield self._judge(df, cache)
            finally:
                if self._owns_engine:
                    self.close()

    def _judge(self, df: pl.DataFrame, cache: VerdictCache) -> pl.DataFrame:
        rubric_of = route(df, self.config)
        rows = [i for i, r in enumerate(rubric_of) if r is not None]
        prompts, responses = df["prompt"], df["response"]
        refs = df["reference"] if "reference" in df.columns else pl.Series([None] * df.height, dtype=pl.String)
        items = [Item(self._rubrics[rubric_of[i]], prompts[i] or "", responses[i] or "", refs[i]) for i in rows]
        # The engine is built (model loaded, connections opened) only if something is not cached.
        outcomes = judge_items(items, self._engine_, cache, self.params())
        return self._columns(df, rows, items, outcomes)

    def _columns(self, df: pl.DataFrame, rows: list[int], items: list[Item], outs: list[Outcome]) -> pl.DataFrame:
        h = df.height
        score: list[float | None] = [None] * h
        verdict: list[str | None] = [None] * h
        rubric: list[str | None] = [None] * h
        rationale: list[str | None] = [None] * h
        calls: list[int | None] = [None] * h
        t_in: list[int | None] = [None] * h
        t_out: list[int | None] = [None] * h
        cached: list[bool | None] = [None] * h
        status: list[str | None] = [None] * h
        for i, it, o in zip(rows, items, outs, strict=True):
            rubric[i], rationale[i], status[i] = it.rubric.tag, o.rationale, o.status
            calls[i], t_in[i], t_out[i], cached[i] = o.calls, o.tokens_in, o.tokens_out, o.cached
            if o.status == "ok" and o.score is not None:
                score[i] = o.score
                verdict[i] = "pass" if o.score >= self.config.threshold else "fail"
        st = pl.Series(status, dtype=pl.String)
        df = df.with_columns(
            pl.Series("judge_score", score, dtype=pl.Float64),
            pl.Series("judge_verdict", verdict, dtype=pl.String),
            pl.Series("judge_rubric", rubric, dtype=pl.String),
            pl.Series("judge_rationale", rationale, dtype=pl.String),
            pl.Series("judge_calls", calls, dtype=pl.Int32),
            pl.Series("judge_tokens_in", t_in, dtype=pl.Int64),
            pl.Series("judge_tokens_out", t_out, dtype=pl.Int64),
            pl.Series("judge_cached", cached, dtype=pl.Boolean),
        )
        v = pl.Series(verdict, dtype=pl.String)
        return add_reasons(
            df, {"judge.rejected": v == "fail", "judge.unparseable": st == "unparseable", "judge.error": st == "error"}
        )

    def usage(self, df: pl.DataFrame) -> JudgeUsage:
        """Calls, cache hits, tokens and estimated cost of the run that produced ``df``."""
        return usage_summary(df, self.config.price_in_per_m, self.config.price_out_per_m)

    def close(self) -> None:
        if self._engine is not None and self._owns_engine:
            self._engine.close()
            self._engine = None
