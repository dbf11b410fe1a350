"""The versioned store: atomic versions, exclusive version claims, immutable files, DuckDB catalog."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import duckdb
import polars as pl
import pytest

from curate.schema import table
from curate.store import Store, StoreError, parse_ref


def _rows(n: int, tag: str = "a") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": [f"{tag}{i}" for i in range(n)],
            "prompt_id": [f"p{i % 3}" for i in range(n)],
            "prompt": ["q"] * n,
            "response": ["<think>x</think>y"] * n,
            "task": ["math"] * n,
        }
    )


def test_publish_layout_manifest_and_catalog(tmp_path: Path) -> None:
    store = Store(tmp_path)
    dv = store.publish_frame(
        "demo_set",
        "checked",
        table("sample"),
        _rows(10),
        funnel={"format.truncated": 2},
        config={"k": 1},
        parents=("ledger@1",),
        source={"checkpoint": "ckpt"},
    )
    assert dv.path == tmp_path / "datasets" / "demo_set" / "v1"
    m = dv.manifest
    assert (m.version, m.rows, m.schema, m.parents) == (1, 10, "sample@1", ("ledger@1",))
    assert len(m.files) == 1 and len(m.files[0].sha256) == 64 and m.config_hash
    assert not os.access(dv.parts[0], os.W_OK) or os.geteuid() == 0  # read-only (root ignores modes)
    assert oct(dv.parts[0].stat().st_mode & 0o222) == "0o0"
    store.publish_frame("demo_set", "checked", table("sample"), _rows(4, "b"))
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True)
    assert con.execute("select count(*) from demo_set").fetchone() == (4,)  # the view follows the latest version
    rows = con.execute("select name, version, kind, rows, parents from datasets order by version").fetchall()
    assert rows == [("demo_set", 1, "checked", 10, ["ledger@1"]), ("demo_set", 2, "checked", 4, [])]
    assert store.get("demo_set@1").manifest.rows == 10 and store.get("demo_set").manifest.version == 2


def test_failed_publish_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.writer("x", "checked", table("sample")) as w:
        w.write(_rows(3))
        raise RuntimeError("crash mid-write")
    assert store.versions("x") == []
    assert not any((tmp_path / ".staging").iterdir())


def test_empty_dataset_has_schema(tmp_path: Path) -> None:
    dv = Store(tmp_path).publish_frame("empty", "checked", table("sample"), _rows(0))
    assert dv.manifest.rows == 0
    assert pl.read_parquet(dv.parts[0]).columns == list(table("sample").names)


def _publish_one(home: str, tag: str) -> int:
    dv = Store(home).publish_frame("race", "checked", table("sample"), _rows(50, tag))
    return dv.manifest.version


def test_concurrent_publishers_get_distinct_versions(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        versions = pool.starmap(_publish_one, [(str(tmp_path), f"t{i}") for i in range(4)])
    assert sorted(versions) == [1, 2, 3, 4]
    store = Store(tmp_path)
    assert store.versions("race") == [1, 2, 3, 4]
    con = store.connect()
    assert con.execute("select count(*) from datasets").fetchone() == (4,)


def test_refs_and_bad_names(tmp_path: Path) -> None:
    assert parse_ref("a@3") == ("a", 3) and parse_ref("a@v3") == ("a", 3) and parse_ref("a") == ("a", None)
    with pytest.raises(StoreError):
        parse_ref("a@latest")
    with pytest.raises(StoreError):
        Store(tmp_path).publish_frame("../evil", "x", table("sample"), _rows(1))
    with pytest.raises(StoreError, match="no dataset"):
        Store(tmp_path).get("missing")


def test_catalog_rebuilds_from_manifests(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.publish_frame("a", "checked", table("sample"), _rows(2))
    (tmp_path / "catalog.duckdb").unlink()
    assert store.connect().execute("select count(*) from a").fetchone() == (2,)
