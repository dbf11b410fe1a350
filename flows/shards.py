"""Shard work as Prefect tasks: one task run per shard and stage (``check-00003``, ``signatures-00003``),
on whatever task runner the flow is given (``DaskTaskRunner`` for ``--dask N`` / ``--dask-address``).

The library takes a *mapper* ``(fn, jobs, stage) -> results in order``; :func:`prefect_map` is the one
that submits each job as a task of the running flow (the stage names the task: one @task per library
call, in ``tasks.py``), and :func:`sharded` runs a library call with it inside one flow run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from curate.flows import tasks
from prefect import flow

STAGE_TASKS = {
    "check": tasks.check_shard,
    "signatures": tasks.dedup_signatures,
    "buckets": tasks.dedup_buckets,  # one band-hash range per task (PartJob)
    "seen": tasks.dedup_seen,  # one band-hash range against the index per task (SeenJob)
    "marks": tasks.dedup_marks,
}


def _index(job: Any) -> int:
    shard = getattr(job, "shard", None)
    return int(shard.index if shard is not None else job.part)


def prefect_map(fn: Callable[[Any], Any], jobs: Sequence[Any], stage: str) -> Iterator[Any]:
    """Submit every job now (in the flow's thread), then yield the results in job order as they finish
    (the consumer may iterate in another thread)."""
    task = STAGE_TASKS[stage]  # the task wrapping ``fn`` (run_shard, sign_shard, bucket_part, mark_shard)
    futures = [task.with_options(task_run_name=f"{stage}-{_index(j):05d}").submit(j) for j in jobs]
    return (f.result() for f in futures)


# The library call is handed over here, not as a flow parameter: Prefect ships the flow run's context
# (its parameters included) with every task to the workers, and a closure over a progress bar or a
# lock does not pickle.
_CALLS: dict[str, Callable[[Callable[..., Iterator[Any]]], Any]] = {}


@flow(name="curate_sharded", log_prints=True)
def _sharded(call_id: str, what: str) -> Any:
    return _CALLS.pop(call_id)(prefect_map)


def sharded(call: Callable[[Callable[..., Iterator[Any]]], Any], task_runner: Any, what: str = "") -> Any:
    """Run ``call(prefect_map)`` inside one flow run on ``task_runner`` (one Dask cluster for every
    stage of it)."""
    import uuid

    call_id = uuid.uuid4().hex
    _CALLS[call_id] = call
    try:
        return _sharded.with_options(task_runner=task_runner)(call_id=call_id, what=what)
    finally:
        _CALLS.pop(call_id, None)
