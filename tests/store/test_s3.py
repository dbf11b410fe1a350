"""Object storage as a home, against a real S3-compatible server (moto in server mode on 127.0.0.1).

Skipped with a reason when moto or s3fs is missing locally; CI installs both (the ``dev`` extra).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

pytest.importorskip("moto", reason="moto[server] is needed for the S3 tests (pip install -e '.[dev]')")
pytest.importorskip("s3fs", reason="s3fs is needed for the S3 tests (pip install -e '.[dev]')")

import curate  # noqa: E402
from curate.cli import app  # noqa: E402
from curate.schema import table  # noqa: E402
from curate.store import DamagedVersion, Store, StoreError  # noqa: E402
from curate.store.lifecycle import verify  # noqa: E402
from curate.store.remote import ObjectStore  # noqa: E402


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto server did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def home(s3_server: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    for k, v in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    bucket = request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:50]
    return f"s3://{bucket}/store"


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


def _cli(home: str, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["--home", home, *args])
    return r.exit_code, r.stdout, r.stderr


def test_publish_read_catalog_and_query_on_s3(home: str, tmp_path: Path) -> None:
    s = Store(home)
    assert isinstance(s, ObjectStore)
    s.publish_frame("ds", "checked", table("sample"), _rows(3, "old"))
    dv = s.publish_frame("ds", "checked", table("sample"), _rows(5, "new"), config={"k": 1})
    assert dv.path == f"{home}/datasets/ds/v2" and s.versions("ds") == [1, 2]
    assert s.get("ds@1").scan().collect().height == 3
    assert s.publish_frame("ds", "checked", table("sample"), _rows(5, "new"), config={"k": 1}).unchanged
    assert s.fs.exists(f"{home}/catalog.duckdb")
    con = s.connect()
    assert con.execute("select count(*) from ds").fetchone() == (5,)
    assert con.execute("select count(*) from dataset_version('ds', 1)").fetchone() == (3,)
    code, out, err = _cli(home, "query", "select name, version from datasets order by version", "--format", "csv")
    assert code == 0 and out.splitlines() == ["name,version", "ds,1", "ds,2"], err
    code, out, _ = _cli(home, "datasets", "list", "--json")
    assert code == 0 and json.loads(out)["home"] == home
    assert _cli(home, "datasets", "tag", "ds@1", "prod")[0] == 0
    ds = curate.open("ds@prod", home=home)
    assert ds.to_polars().height == 3 and ds.to_arrow().num_rows == 3 and ds.to_hf().num_rows == 3
    code, _, err = _cli(home, "export", "ds@2", "--format", "hf", "--out", str(tmp_path / "hf"))
    assert code == 0, err
    from datasets import load_dataset

    assert load_dataset(str(tmp_path / "hf"))["train"].num_rows == 5
    assert all(not p for p in verify(s).values())


def _publish_one(home: str, tag: str, env: dict[str, str]) -> int:
    os.environ.update(env)
    return Store(home).publish_frame("race", "checked", table("sample"), _rows(20, tag)).manifest.version


def test_two_publishers_never_get_the_same_number(home: str) -> None:
    env = {
        k: os.environ[k]
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    Store(home)  # creates the bucket
    with mp.get_context("spawn").Pool(4) as pool:
        versions = pool.starmap(_publish_one, [(home, f"t{i}", env) for i in range(4)])
    assert sorted(versions) == [1, 2, 3, 4] and Store(home).versions("race") == [1, 2, 3, 4]


def test_a_killed_publish_is_invisible_and_swept(home: str) -> None:
    s = Store(home)
    assert isinstance(s, ObjectStore)
    s.publish_frame("ds", "checked", table("sample"), _rows(2))
    n = s._claim("ds")  # a publisher claimed v2, uploaded a part, and was killed before its manifest
    s.fs.pipe_file(f"{home}/datasets/ds/v{n}/part-00000.parquet", b"half")
    assert s.versions("ds") == [1] and s.connect().execute("select count(*) from datasets").fetchone() == (1,)
    assert s.sweep(older_than_s=0) == [f"{home}/datasets/ds/v{n}"]
    assert s.publish_frame("ds", "checked", table("sample"), _rows(4)).manifest.version == n + 1


def test_tampering_on_s3_is_caught(home: str) -> None:
    s = Store(home)
    dv = s.publish_frame("ds", "checked", table("sample"), _rows(4))
    s.fs.pipe_file(dv.parts[0], b"not parquet PAR1")
    with pytest.raises(DamagedVersion, match="ds@1 is damaged"):
        s.get("ds@1").scan()
    assert verify(s)["ds@1"]


def test_homes_that_are_neither_paths_nor_supported_urls(home: str) -> None:
    for bad, needle in (("nosuchscheme://x/y", "nosuchscheme"), ("s3:bucket/x", "without '//'")):
        code, _, err = _cli(bad, "datasets", "list")
        assert code == 2 and needle in err and err.count("\n") == 1, err
    with pytest.raises(StoreError):
        Store("nosuchscheme://x")
    assert not Path("s3:bucket").exists()
