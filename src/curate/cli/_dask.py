"""Executors for ``--dask N`` / ``--dask-address ADDR``: the shards as Prefect tasks on a
``DaskTaskRunner`` (prefect-dask), a local cluster of N worker processes or an existing scheduler.
Workers see the inputs and the shard cache through their paths, so those must be shared (one machine,
or a shared file system)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from curate.cli.app import UserError


def task_runner(n: int, address: str | None) -> Any:
    try:
        from prefect_dask import DaskTaskRunner  # type: ignore[attr-defined]
    except ImportError as e:  # pragma: no cover - prefect-dask is a base dependency
        raise UserError("--dask needs prefect-dask (pip install prefect-dask)") from e
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})


def dask_executor(n: int, address: str | None) -> Any:
    """An executor for ``check_files``: every shard a task of the ``check_shards`` flow on Dask."""
    from curate.flows.check_shards import check_shards

    fl = check_shards.with_options(task_runner=task_runner(n, address))

    def run(jobs: Sequence[Any]) -> Iterator[Any]:
        if not jobs:
            return iter(())
        return iter(fl(jobs=list(jobs)))

    return run
