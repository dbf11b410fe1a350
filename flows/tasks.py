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
from curate.errors import CurateError
from curate.recipes.config import GenerateConfig, Recipe
from curate.recipes.preflight import load_checked_recipe
from curate.store import DatasetVersion, Store

PUBLISHED_EVENT = "curate.dataset.published"


def emit_published(dv: DatasetVersion) -> None:
    """Store hook: tell Prefect a version is published (a deployment trigger can start training)."""
    m = dv.manifest
    emit_event(
        event=PUBLISHED_EVENT,
        resource={
            "prefect.resource.id": f"curate.dataset.{m.name}",
            "curate.name": m.name,
            "curate.version": str(m.version),
            "curate.kind": m.kind,
            "curate.ref": m.ref,
        },
        payload={"rows": m.rows, "path": str(dv.path), "parents": list(m.parents)},
    )


def recipe_run_name() -> str:
    """Flow run name: the recipe's name and the start time (``rs_sft-20260102-030405``), not a random pair."""
    from datetime import UTC, datetime

    import yaml
    from prefect.runtime import flow_run

    path = str(flow_run.parameters.get("recipe_path") or "")
    name = Path(path).stem or "recipe"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        name = str(data.get("name") or data.get("recipe") or name)
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    return f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def training_run_name() -> str:
    from datetime import UTC, datetime

    from prefect.runtime import flow_run

    params = flow_run.parameters
    return f"{params.get('kind', 'train')}-{params.get('dataset', '')}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def recipe_tags(recipe_path: str | Path) -> list[str]:
    """Tags for a recipe's flow runs and deployments: ``curate``, ``recipe:<name>``, ``kind:<kind>``."""
    from curate.recipes.config import load_recipe

    r = load_recipe(recipe_path)
    return ["curate", f"recipe:{r.name}", f"kind:{r.kind}"]


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition: a user's mistake (a ``CurateError``: missing file, bad option) is never retried."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - a result that cannot be read says nothing against a retry
        return True
    return not isinstance(exc, CurateError)


def flow_run_info() -> dict[str, str]:
    """The Prefect flow run this code runs in (empty outside one): recorded in every manifest it publishes."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    if not run_id:
        return {}
    return {"id": str(run_id), "name": str(flow_run.get_name() or ""), "flow": str(flow_run.get_flow_name() or "")}


class FlowStore(Store):
    """The store as flows use it: each version it publishes records the flow run that made it."""

    def writer(self, name: str, kind: str, table: Any, **kw: Any) -> Any:
        extra = dict(kw.pop("extra", None) or {})
        run = flow_run_info()
        if run:
            extra.setdefault("flow_run", run)
        return super().writer(name, kind, table, extra=extra, **kw)


def store_for(home: str | None) -> Store:
    return FlowStore(home, hooks=(emit_published,))


@task(cache_policy=NO_CACHE)
def load_recipe_task(path: str) -> Recipe:
    """Load and check the recipe (paths against its file, engine, model, prompts, check options): a
    mistake fails here, once, as a ``CurateError``, before any retrying task starts."""
    return load_checked_recipe(path)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=transient_only)
def plan_generation(spec: GenerateConfig, ledger: Path) -> pipeline.GenerationPlan:
    return pipeline.plan_generation(spec, ledger)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=transient_only, tags=["gpu"])
def generate_shards(
    spec: GenerateConfig, ledger: Path, worker: tuple[int, int], engine_options: dict[str, Any] | None = None
) -> dict[str, float]:
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


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=transient_only)
def check_shard(job: Any) -> Any:
    # A retry (or a new flow run after kill -9) finds the pieces this shard already finished in the cache.
    return pipeline.check_shard(job)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=transient_only)
def dedup_signatures(job: Any) -> Any:
    from curate.dedup.stages import sign_shard

    return sign_shard(job)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=transient_only)
def dedup_buckets(job: Any) -> Any:
    from curate.dedup.buckets import bucket_part

    return bucket_part(job)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=transient_only)
def dedup_seen(job: Any) -> Any:
    from curate.dedup.seen import seen_part

    return seen_part(job)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=transient_only)
def dedup_marks(job: Any) -> Any:
    from curate.dedup.run import mark_shard

    return mark_shard(job)


def submit_shards(jobs: list[Any]) -> list[Any]:
    """One task run per shard, named after it: the Prefect UI shows one task per shard."""
    return [check_shard.with_options(task_run_name=f"check-shard-{j.shard.index:05d}").submit(j) for j in jobs]


@task(cache_policy=NO_CACHE)
def write_row_checks(jobs: list[Any], dones: list[Any], out: Path) -> dict[str, int]:
    return pipeline.write_row_checks(jobs, dones, out).funnel.to_dict()


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10, retry_condition_fn=transient_only)
def corpus_check(name: str, inp: Path, out: Path, checks: dict[str, Any]) -> dict[str, int]:
    return pipeline.corpus_check(name, inp, out, checks)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2, retry_condition_fn=transient_only)
def publish_checked(home: str | None, name: str, path: Path, checks: dict[str, Any], parents: list[str]) -> str:
    return pipeline.publish_checked_file(store_for(home), name, path, checks, parents).manifest.ref


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2, retry_condition_fn=transient_only)
def build_recipe(recipe: Recipe, home: str | None, checked_ref: str) -> dict[str, Any]:
    pub = pipeline.build_recipe(recipe, store_for(home), checked_ref)
    return {
        "dataset": pub.dataset.manifest.ref,
        "rows": pub.dataset.manifest.rows,
        "selection": pub.selection.manifest.ref,
        "pass_rates": pub.pass_rates.manifest.ref,
        "funnel": dict(pub.dataset.manifest.funnel),
    }


def funnel_artifact(stage_funnels: dict[str, dict[str, int]], key: str) -> None:
    """One table row per (stage, reason): what each stage rejected, for the Prefect UI."""
    rows = []
    for stage, flat in stage_funnels.items():
        funnel = Funnel.from_dict(flat)
        for r in funnel.rows():
            rows.append(
                {"stage": stage, "reason": r.reason, "rows": r.rows, "share": f"{r.share:.1%}" if funnel.total else "-"}
            )
    create_table_artifact(key=key, table=rows, description="curate funnel per stage and reason")
