"""Row checks fanned out: one Prefect task per shard (see ``curate.checks.cached``), on whatever task
runner the flow is given (``DaskTaskRunner`` for ``curate check --dask N`` / ``--dask-address``)."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate.checks.cached import ShardDone, ShardJob, run_shard


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def check_shard(job: ShardJob) -> ShardDone:
    # A retry (or a new run after kill -9) finds the pieces this shard already finished in the cache.
    return run_shard(job)


def submit_shards(jobs: list[ShardJob]) -> list[Any]:
    """One task run per shard, named after it (the Prefect UI shows one task per shard)."""
    return [check_shard.with_options(task_run_name=f"check-shard-{j.shard.index:05d}").submit(j) for j in jobs]


@flow(name="check_shards", log_prints=True)
def check_shards(jobs: list[Any]) -> list[ShardDone]:
    """Run every shard's row checks; results in shard order."""
    return [f.result() for f in submit_shards(jobs)]
