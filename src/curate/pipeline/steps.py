"""The pipeline's stages as plain library calls, one per orchestration task.

Each function does one stage end to end from typed inputs (a recipe's specs, paths, a store) so that a
Prefect task, the demo and the CLI all call the same code. Nothing here imports Prefect: flows wrap
these calls, and resume rests on the ledger's shard files, not on Prefect's cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate.checks.cached import ShardDone, ShardJob, ShardOptions, plan_check_jobs, run_shard
from curate.checks.funnel import Funnel
from curate.checks.registry import build_checks
from curate.checks.runner import (
    CheckReport,
    check_files,
    publish_checked,
    run_corpus_checks,
    write_checked,
)
from curate.recipes.config import GenerateConfig, Recipe
from curate.recipes.run import Published, run_recipe
from curate.store import DatasetVersion, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """What a recipe's flow run produced: the refs it published, rows, funnels per stage, generation."""

    checked: str  # name@version of the checked samples
    dataset: str  # name@version of the recipe's dataset
    rows: int
    selection: str
    pass_rates: str
    funnels: dict[str, dict[str, int]]  # stage -> flat funnel (Funnel.to_dict)
    generation: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-able, without the per-worker generation reports."""
        return {
            "checked": self.checked,
            "dataset": self.dataset,
            "rows": self.rows,
            "selection": self.selection,
            "pass_rates": self.pass_rates,
            "funnel": self.funnels.get("select", {}),
            "funnels": self.funnels,
        }


def ledger_dir(spec: GenerateConfig, store: Store, name: str) -> Path:
    return Path(spec.ledger) if spec.ledger else store.local_dir / "ledgers" / name


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    ledger: Path
    n_shards: int
    done: int
    params_hash: str
    n_prompts: int = 0
    quarantined: int = 0  # bad rows of the prompts file, in ``quarantine`` (ledger/prompts.quarantine.jsonl)
    quarantine: Path | None = None


def plan_generation(spec: GenerateConfig, ledger: Path) -> GenerationPlan:
    """Open (or resume) the ledger for ``spec``: write its run manifest, count done shards."""
    from curate.generate.ledger import Ledger
    from curate.generate.prompts import read_prompt_pool
    from curate.generate.runner import build_manifest
    from curate.generate.templates import PromptTemplate

    pool = read_prompt_pool(spec.prompts)
    prompts = _limit(spec, pool.table)
    params = _params(spec)
    led = Ledger(ledger)
    manifest = led.open(
        build_manifest(
            model=spec.model,
            engine=spec.engine,
            params=params,
            template=PromptTemplate(spec.template),
            shard_size=spec.shard_size,
            n_prompts=prompts.height,
            prompts_file=spec.prompts,
        )
    )
    quarantine = pool.write_quarantine(ledger)
    log.log(logging.WARNING if quarantine else logging.INFO, "%s", pool.summary(quarantine))
    return GenerationPlan(
        ledger,
        manifest.n_shards,
        len(led.done_shards()),
        manifest.params_hash,
        prompts.height,
        pool.stats.rows_bad,
        quarantine,
    )


def _prompts(spec: GenerateConfig) -> pl.DataFrame:
    """The good prompts; plan_generation has written the bad rows to the ledger's quarantine."""
    from curate.generate.prompts import read_prompts

    return _limit(spec, read_prompts(spec.prompts, on_bad=lambda row: None))


def _limit(spec: GenerateConfig, df: pl.DataFrame) -> pl.DataFrame:
    return df.head(spec.limit) if spec.limit else df


def _params(spec: GenerateConfig) -> Any:
    from curate.generate.engines import SamplingParams

    return SamplingParams(
        n=spec.n, temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_tokens, seed=spec.seed
    )


def generate_shards(
    spec: GenerateConfig,
    ledger: Path,
    worker: tuple[int, int] = (0, 1),
    engine_options: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Generate this worker's missing shards (``s % k == i``) into the ledger; returns run figures."""
    from curate.generate.engines import make_engine
    from curate.generate.ledger import Ledger
    from curate.generate.runner import generate_ledger
    from curate.generate.templates import PromptTemplate

    led = Ledger(ledger)
    manifest = led.manifest()
    if manifest is None:
        raise RuntimeError(f"{ledger}: no run manifest; plan the generation first")
    engine = make_engine(spec.engine, spec.model, _engine_config(spec, engine_options or {}))
    try:
        res = generate_ledger(
            _prompts(spec),
            engine,
            _params(spec),
            PromptTemplate(spec.template),
            led,
            manifest,
            worker=worker,
            on_progress=on_progress,
        )
    finally:
        engine.close()
    return {
        "shards_written": res.shards_written,
        "shards_skipped": res.shards_skipped,
        "samples_written": res.samples_written,
        "engine_s": res.engine_s,
        "ledger_s": res.ledger_s,
        "wall_s": res.wall_s,
    }


def _engine_config(spec: GenerateConfig, options: dict[str, Any]) -> Any:
    from curate.generate.engines import engine_config

    kw: dict[str, Any] = dict(options)
    if spec.engine == "openai" and spec.base_url:
        kw.setdefault("base_url", spec.base_url)
    return engine_config(spec.engine, kw)


def ledger_parts(ledger: Path) -> list[Path]:
    from curate.generate.ledger import Ledger

    return Ledger(ledger).parts()


def row_checks(
    inputs: Sequence[Path], out: Path, checks_config: dict[str, Any], cache: Path | None = None
) -> CheckReport:
    """Every row-scope check (format, readability, language, math, code, decontamination) over ``inputs``,
    shard by shard; with ``cache``, finished (shard, check) results are kept there and reused."""
    checks = [c for c in build_checks(checks_config) if c.scope == "row"]
    return check_files(inputs, out, checks, shards=ShardOptions(cache=cache))


def check_cache(store: Store) -> Path:
    """Where the store keeps finished (shard, check) results: ``<home>/cache/checks``."""
    return store.home / "cache" / "checks"


def plan_row_checks(inputs: Sequence[Path], checks_config: dict[str, Any], cache: Path) -> list[ShardJob]:
    """One job per input shard for the row checks (the fan-out form of :func:`row_checks`)."""
    checks = [c for c in build_checks(checks_config) if c.scope == "row"]
    return plan_check_jobs(inputs, checks, cache)


def check_shard(job: ShardJob) -> ShardDone:
    """The row checks of one shard; what is cached already is not recomputed."""
    return run_shard(job)


def write_row_checks(jobs: Sequence[ShardJob], dones: Sequence[ShardDone], out: Path) -> CheckReport:
    """The finished shards, in order, into one checked file (quarantine and funnel included)."""
    checks = list(jobs[0].checks) if jobs else []
    return write_checked(jobs, dones, out, checks)


def corpus_check(name: str, inp: Path, out: Path, checks_config: dict[str, Any]) -> dict[str, int]:
    """One corpus-scope check (``dedup`` or ``judge``) over a checked file; returns the new funnel."""
    config = dict(checks_config)
    if name == "judge" and "judge" not in config:
        return funnel_of_file(_copy(inp, out))
    section = dict(config.get(name) or {})
    section.setdefault("enabled", True)
    if not section["enabled"]:
        return funnel_of_file(_copy(inp, out))
    config[name] = section
    checks = [c for c in build_checks(config) if c.name == name]
    return run_corpus_checks(inp, out, checks).to_dict()


def _copy(inp: Path, out: Path) -> Path:
    import shutil

    if inp != out:
        shutil.copyfile(inp, out)
    return out


def funnel_of_file(path: Path) -> dict[str, int]:
    """The flat funnel of a checked Parquet file (JSON-able: flows pass it between tasks)."""
    return Funnel.from_parquet(path).to_dict()


def publish_checked_file(
    store: Store, name: str, path: Path, checks_config: dict[str, Any], parents: Sequence[str] = ()
) -> DatasetVersion:
    """Publish a checked Parquet file as the next ``checked`` version of ``name``."""
    report = CheckReport(out=path, quarantine=None, funnel=Funnel.from_parquet(path))
    from curate.checks.runner import quarantine_path

    q = quarantine_path(path.with_name("rows.parquet"))
    if q.exists():  # rows the row checks could not read are counted in the manifest, not lost
        report.quarantine = q
        report.read.rows_bad = sum(1 for _ in q.open("rb"))
    return publish_checked(store, name, path, report, config={"checks": checks_config}, checks=[], parents=parents)


def build_recipe(recipe: Recipe, store: Store, checked_ref: str) -> Published:
    from dataclasses import replace

    return run_recipe(replace(recipe, inputs=(checked_ref,)), store)
