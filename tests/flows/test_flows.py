"""Prefect flows end to end under prefect_test_harness, on the tiny locally built checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest
import yaml
from prefect.events.clients import AssertingEventsClient
from prefect.testing.fixtures import asserting_events_worker  # noqa: F401 - a pytest fixture
from prefect.testing.utilities import prefect_test_harness

from curate.schema import table
from curate.store import Store


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=180):
        yield


def _recipe(tmp_path: Path, ckpt: Path, name: str = "rs", kind: str = "rs_sft") -> Path:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(
        b"".join(
            orjson.dumps(
                {"prompt_id": f"q{i}", "prompt": f"What is {i} + {i}?", "task": "math", "reference": str(2 * i)}
            )
            + b"\n"
            for i in range(6)
        )
    )
    recipe = {
        "recipe": kind,
        "name": name,
        "generate": {
            "prompts": str(prompts),
            "model": str(ckpt),
            "engine": "hf",
            "n": 2,
            "max_tokens": 12,
            "temperature": 1.0,
            "shard_size": 2,
            "seed": 1,
        },
        "checks": {"judge": {"enabled": False}},
        "select": {"k": 2},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_rejection_sampling_flow_publishes_and_resumes(harness: None, tiny_checkpoint: Path, tmp_path: Path) -> None:
    from curate.flows import rejection_sampling

    home = tmp_path / "store"
    recipe = _recipe(tmp_path, tiny_checkpoint)
    from curate.flows.tasks import recipe_tags
    from prefect import tags
    from prefect.client.orchestration import get_client

    with tags(*recipe_tags(recipe)):  # as `curate run` calls it
        first = rejection_sampling(recipe_path=str(recipe), home=str(home))
    assert first.checked == "rs_checked@1" and first.dataset == "rs@1"
    assert first.generation[0]["shards_written"] == 3
    assert set(first.funnels) == {"checks", "dedup", "judge", "select"}
    store = Store(home)
    checked = store.get("rs_checked").scan().collect()
    # The random tiny model can emit a NUL: such a row is quarantined, never silently lost.
    bad = store.get("rs_checked").manifest.extra["bad_rows"]
    assert checked.height + bad == 12 and checked["sample_id"].n_unique() == checked.height
    assert store.get("rs").manifest.parents == ("rs_checked@1",)
    run = store.get("rs").manifest.extra["flow_run"]  # the flow run that made it, named after the recipe
    assert run["id"] and run["name"].startswith("rs-") and run["flow"] == "rejection_sampling"
    assert store.get("rs_checked").manifest.extra["flow_run"]["id"] == run["id"]
    with get_client(sync_client=True) as client:
        fr = client.read_flow_run(run["id"])
    assert fr.name.startswith("rs-") and {"curate", "recipe:rs", "kind:rs_sft"} <= set(fr.tags)
    # A second run resumes on the ledger: no shard is generated again, and the same content publishes
    # nothing new (the store's no-op publish): the run answers with the version already there.
    second = rejection_sampling(recipe_path=str(recipe), home=str(home))
    assert second.generation[0]["shards_written"] == 0 and second.generation[0]["shards_skipped"] == 3
    assert second.dataset == "rs@1" and store.versions("rs") == [1]


def test_dask_task_runner_fans_out_shards(harness: None, tiny_checkpoint: Path, tmp_path: Path) -> None:
    from curate.flows import rejection_sampling
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None},
    )
    flow = rejection_sampling.with_options(task_runner=runner)
    out = flow(recipe_path=str(_recipe(tmp_path, tiny_checkpoint, "dk")), home=str(tmp_path / "store"), workers=2)
    written = sorted(g["shards_written"] for g in out.generation)
    assert written == [1, 2]  # shards 0, 2 on worker 0 and shard 1 on worker 1
    m = Store(tmp_path / "store").get("dk_checked").manifest
    assert m.rows + m.extra["bad_rows"] == 12


def test_publish_emits_event(asserting_events_worker: object, tmp_path: Path) -> None:  # noqa: F811
    from curate.flows.tasks import PUBLISHED_EVENT, store_for

    df = pl.DataFrame({"sample_id": ["a"], "prompt_id": ["p"], "prompt": ["q"], "response": ["r"]})
    store_for(str(tmp_path)).publish_frame("evt", "checked", table("sample"), df)
    asserting_events_worker.drain()  # type: ignore[attr-defined]
    events = [e for client in AssertingEventsClient.all for e in client.events if e.event == PUBLISHED_EVENT]
    assert len(events) == 1
    assert events[0].resource["curate.ref"] == "evt@1" and events[0].resource["curate.kind"] == "checked"


def test_user_mistakes_are_not_retried(harness: None) -> None:
    from curate.flows.tasks import transient_only
    from prefect import flow, task

    from curate.checks.base import ConfigError

    calls: list[str] = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=transient_only)
    def step(kind: str) -> None:
        calls.append(kind)
        raise ConfigError("prompts.jsonl: no such file") if kind == "user" else RuntimeError("engine went away")

    @flow
    def run(kind: str) -> None:
        step(kind, return_state=True)

    run("user")
    run("transient")
    assert calls.count("user") == 1 and calls.count("transient") == 3
