"""Row checks fanned out: one Prefect task per shard (see ``curate.checks.cached``), on whatever task
runner the flow is given (``DaskTaskRunner`` for ``curate check --dask N`` / ``--dask-address``)."""

from __future__ import annotations

from typing import Any

from curate.flows import tasks
from prefect import flow


@flow(name="check_shards", log_prints=True)
def check_shards(jobs: list[Any]) -> list[Any]:
    """Run every shard's row checks; results in shard order."""
    return [f.result() for f in tasks.submit_shards(jobs)]
