"""Any fsspec URL as a home (here ``memory://``, which needs no server): the object-storage code path
runs in every environment, S3 itself in ``test_s3.py``."""

from __future__ import annotations

import uuid
from pathlib import Path

import polars as pl
import pytest

import curate
from curate.schema import table
from curate.store import Store
from curate.store.lifecycle import verify
from curate.store.remote import ObjectStore


def _rows(n: int, tag: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": [f"{tag}{i}" for i in range(n)],
            "prompt_id": ["p"] * n,
            "prompt": ["q"] * n,
            "response": ["r"] * n,
            "task": ["math"] * n,
        }
    )


@pytest.fixture
def home() -> str:
    return f"memory://curate-{uuid.uuid4().hex[:8]}/store"


def test_publish_read_query_on_an_fsspec_home(home: str) -> None:
    s = Store(home)
    assert isinstance(s, ObjectStore)
    s.publish_frame("ds", "checked", table("sample"), _rows(3, "a"))
    s.publish_frame("ds", "checked", table("sample"), _rows(2, "b"))
    assert s.publish_frame("ds", "checked", table("sample"), _rows(2, "b")).unchanged
    assert s.versions("ds") == [1, 2] and s.get("ds@1").scan().collect().height == 3
    con = s.connect()
    assert con.execute("select count(*) from ds").fetchone() == (2,)
    assert con.execute("select count(*) from dataset_version('ds', 1)").fetchone() == (3,)
    assert s.fs.exists(s.catalog_path)
    assert curate.open("ds@1", home=home).to_arrow().num_rows == 3
    assert verify(s) == {"ds@1": [], "ds@2": []}


def test_claims_are_create_only_and_a_missing_manifest_hides_a_version(home: str) -> None:
    s = Store(home)
    assert isinstance(s, ObjectStore)
    s.publish_frame("ds", "checked", table("sample"), _rows(1, "a"))
    with pytest.raises(FileExistsError):
        s.fs.pipe_file(f"{home}/datasets/ds/.claims/v1", b"me", mode="create")
    n = s._claim("ds")
    s.fs.pipe_file(f"{home}/datasets/ds/v{n}/part-00000.parquet", b"half")  # killed before its manifest
    assert s.versions("ds") == [1]
    assert s.sweep(older_than_s=0) == [f"{home}/datasets/ds/v{n}"]


def test_tags_rm_gc_diff_on_an_fsspec_home(home: str) -> None:
    from curate.store.lifecycle import diff, gc, remove_tag, rm, set_tag

    s = Store(home)
    for i in range(3):
        s.publish_frame("ds", "checked", table("sample"), _rows(i + 1, "a"))
    s.publish_frame("kid", "checked", table("sample"), _rows(1, "k"), parents=("ds@1",))
    set_tag(s, "ds@2", "prod")
    assert s.get("ds@prod").manifest.version == 2 and diff(s, "ds@1", "ds@2").added == ["a1"]
    assert gc(s, dry_run=True) == []  # ds@1 is kid's parent, ds@2 is tagged
    remove_tag(s, "ds@prod")
    assert gc(s) == ["ds@2"] and s.versions("ds") == [1, 3]
    assert rm(s, "ds@1", force=True) == "ds@1" and s.versions("ds") == [3]
    assert s.connect().execute("select count(*) from datasets where name = 'ds'").fetchone() == (1,)


def test_ledgers_and_runs_of_an_object_store_stay_local(
    home: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orjson

    from curate.store.lifecycle import dependents

    monkeypatch.setenv("CURATE_LOCAL", str(tmp_path))
    s = Store(home)
    s.publish_frame("ds", "checked", table("sample"), _rows(1, "a"))
    run = s.local_dir / "runs" / "r1" / "run.json"
    run.parent.mkdir(parents=True)
    run.write_bytes(
        orjson.dumps(
            {
                "run_id": "r1",
                "kind": "sft",
                "dataset": "ds@1",
                "status": "finished",
                "created_at": "2026-01-01T00:00:00",
            }
        )
    )
    assert str(s.local_dir).startswith(str(tmp_path)) and dependents(s)["ds@1"] == ["run r1"]
    assert s.connect().execute("select run_id from runs").fetchall() == [("r1",)]
