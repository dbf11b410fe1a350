"""Shard work as Prefect tasks: one task run per shard and stage (``check-00003``, ``signatures-00003``),
on whatever task runner the flow is given (``DaskTaskRunner`` for ``--dask N`` / ``--dask-address``).

The library takes a *mapper* ``(fn, jobs, stage) -> results in order``; :func:`prefect_map` is the one
that submits each job as a task of the running flow, and :func:`sharded` runs a library call with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def run_job(fn: Callable[[Any], Any], job: Any) -> Any:
    # A retry (or a new run after kill -9) finds what this shard already finished on disk.
    return fn(job)


def prefect_map(fn: Callable[[Any], Any], jobs: Sequence[Any], stage: str) -> Iterator[Any]:
    """Submit every job, then yield the results in job order as they finish."""
    futures = [run_job.with_options(task_run_name=f"{stage}-{getattr(j, 'shard', j).index:05d}").submit(fn, j)
               for j in jobs]
    for f in futures:
        yield f.result()


@flow(name="curate_sharded", log_prints=True)
def sharded(call: Callable[[Callable[..., Iterator[Any]]], Any]) -> Any:
    """Run ``call(prefect_map)`` inside one flow run (one Dask cluster for every stage of it)."""
    return call(prefect_map)
