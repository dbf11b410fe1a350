"""``--dask N`` / ``--dask-address ADDR``: a library call run inside one Prefect flow whose task runner
is prefect-dask's ``DaskTaskRunner`` (a local cluster of N worker processes, or an existing scheduler),
each shard and stage a task. Workers see the inputs and the work folders through their paths, so those
must be shared (one machine, or a shared file system)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curate.cli.app import UserError


def task_runner(n: int, address: str | None) -> Any:
    try:
        from prefect_dask import DaskTaskRunner  # type: ignore[attr-defined]
    except ImportError as e:  # pragma: no cover - prefect-dask is a base dependency
        raise UserError("--dask needs prefect-dask (pip install prefect-dask)") from e
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True, "dashboard_address": None},
    )


def run_sharded(n: int, address: str | None, call: Callable[[Any], Any], workers: int = 1) -> Any:
    """``call(mapper)`` with shards on Dask when asked for, on ``workers`` local processes (no Prefect),
    or one after the other in this process."""
    if not (n or address):
        from curate.dedup.stages import signatures_on_threads

        if workers <= 1:
            return call(signatures_on_threads(2))
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return call(lambda fn, jobs, stage: pool.map(fn, jobs))
    from curate.flows.shards import sharded

    return sharded(call, task_runner(n, address))
