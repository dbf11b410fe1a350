"""One Prefect task per library call. Retries only where a fault is transient: engines, judges, I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from curate import pipeline
from curate.checks.funnel import Funnel
from curate.recipes.config import GenerateConfig, Recipe, load_recipe
from curate.store import DatasetVersion, Store

PUBLISHED_EVENT = "curate.dataset.published"


def emit_published(dv: DatasetVersion) -> None:
    """Store hook: tell Prefect a version is published (a deployment trigger can start training)."""
    m = dv.manifest
    emit_event(event=PUBLISHED_EVENT,
               resource={"prefect.resource.id": f"curate.dataset.{m.name}", "curate.name": m.name,
                         "curate.version": str(m.version), "curate.kind": m.kind, "curate.ref": m.ref},
               payload={"rows": m.rows, "path": str(dv.path), "parents": list(m.parents)})


def store_for(home: str | None) -> Store:
    return Store(home, hooks=(emit_published,))


@task(cache_policy=NO_CACHE)
def load_recipe_task(path: str) -> Recipe:
    return load_recipe(path)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def plan_generation(spec: GenerateConfig, ledger: Path) -> pipeline.GenerationPlan:
    return pipeline.plan_generation(spec, ledger)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, tags=["gpu"])
def generate_shards(spec: GenerateConfig, ledger: Path, worker: tuple[int, int],
                    engine_options: dict[str, Any] | None = None) -> dict[str, float]:
    # A retry (or a new flow run after kill -9) skips the shards this worker already wrote.
    return pipeline.generate_shards(spec, ledger, worker, engine_options)


@task(cache_policy=NO_CACHE)
def ledger_parts(ledger: Path) -> list[Path]:
    return pipeline.ledger_parts(ledger)


@task(cache_policy=NO_CACHE)
def row_checks(parts: list[Path], out: Path, checks: dict[str, Any]) -> dict[str, int]:
    report = pipeline.row_checks(parts, out, checks)
    return report.funnel.to_dict()


@task(cache_policy=NO_CACHE)
def plan_row_checks(parts: list[Path], checks: dict[str, Any], home: str | None) -> list[Any]:
    return pipeline.plan_row_checks(parts, checks, pipeline.check_cache(store_for(home)))


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def check_shard(job: Any) -> Any:
    # A retry (or a new flow run after kill -9) finds the pieces this shard already finished in the cache.
    return pipeline.check_shard(job)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def dedup_signatures(job: Any) -> Any:
    from curate.dedup.stages import sign_shard

    return sign_shard(job)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def dedup_marks(job: Any) -> Any:
    from curate.dedup.run import mark_shard

    return mark_shard(job)



def submit_shards(jobs: list[Any]) -> list[Any]:
    """One task run per shard, named after it: the Prefect UI shows one task per shard."""
    return [check_shard.with_options(task_run_name=f"check-shard-{j.shard.index:05d}").submit(j) for j in jobs]


@task(cache_policy=NO_CACHE)
def write_row_checks(jobs: list[Any], dones: list[Any], out: Path) -> dict[str, int]:
    return pipeline.write_row_checks(jobs, dones, out).funnel.to_dict()


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10)
def corpus_check(name: str, inp: Path, out: Path, checks: dict[str, Any]) -> dict[str, int]:
    return pipeline.corpus_check(name, inp, out, checks)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def publish_checked(home: str | None, name: str, path: Path, checks: dict[str, Any], parents: list[str]) -> str:
    return pipeline.publish_checked_file(store_for(home), name, path, checks, parents).manifest.ref


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def build_recipe(recipe: Recipe, home: str | None, checked_ref: str) -> dict[str, Any]:
    pub = pipeline.build_recipe(recipe, store_for(home), checked_ref)
    return {"dataset": pub.dataset.manifest.ref, "rows": pub.dataset.manifest.rows,
            "selection": pub.selection.manifest.ref, "pass_rates": pub.pass_rates.manifest.ref,
            "funnel": dict(pub.dataset.manifest.funnel)}


def funnel_artifact(stage_funnels: dict[str, dict[str, int]], key: str) -> None:
    """One table row per (stage, reason): what each stage rejected, for the Prefect UI."""
    rows = []
    for stage, flat in stage_funnels.items():
        funnel = Funnel.from_dict(flat)
        for r in funnel.rows():
            rows.append({"stage": stage, "reason": r.reason, "rows": r.rows,
                         "share": f"{r.share:.1%}" if funnel.total else "-"})
    create_table_artifact(key=key, table=rows, description="curate funnel per stage and reason")
