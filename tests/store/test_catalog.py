"""The store where it meets the world: copied, moved, read while publishing, queried, tampered with, killed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.schema import table
from curate.store import DamagedVersion, Store, StoreError
from curate.store.lifecycle import verify

SRC = str(Path(__file__).resolve().parents[2] / "src")


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


def _store(home: Path) -> Store:
    s = Store(home)
    s.publish_frame("ds", "checked", table("sample"), _rows(3, "old"))
    s.publish_frame("ds", "checked", table("sample"), _rows(5, "new"))
    return s


def _cli(*args: str, home: Path | str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["--home", str(home), *args])
    return r.exit_code, r.stdout, r.stderr


def test_copied_store_reads_its_own_files(tmp_path: Path) -> None:
    orig = _store(tmp_path / "orig")
    shutil.copytree(orig.home, tmp_path / "copy")
    shutil.rmtree(orig.home / "datasets" / "ds" / "v2")  # the original changes; the copy must not notice
    os.chmod(orig.home / "datasets" / "ds", 0o755)
    copy = Store(tmp_path / "copy")
    assert copy.connect().execute("select count(*) from ds").fetchone() == (5,)
    # plain duckdb, opened from another working directory, reads the copy's own Parquet
    cwd = os.getcwd()
    try:
        os.chdir("/")
        con = duckdb.connect(str(tmp_path / "copy" / "catalog.duckdb"), read_only=True)
        assert con.execute("select count(*) from ds").fetchone() == (5,)
        assert con.execute("select count(*) from dataset_version('ds', 1)").fetchone() == (3,)
        assert con.execute("select built_for from _store").fetchone() == (str(copy.home),)  # rebuilt for the copy
        con.close()
    finally:
        os.chdir(cwd)


def test_moved_store_and_plain_duckdb_never_read_elsewhere(tmp_path: Path) -> None:
    _store(tmp_path / "a")
    (tmp_path / "a").rename(tmp_path / "b")
    con = duckdb.connect(str(tmp_path / "b" / "catalog.duckdb"), read_only=True)  # not refreshed: still works
    assert con.execute("select count(*) from ds").fetchone() == (5,)
    assert con.execute("select path from datasets order by version").fetchall() == [
        ("datasets/ds/v1",),
        ("datasets/ds/v2",),
    ]
    con.close()
    # attached into another database, the views cannot find the store and say so instead of reading elsewhere
    other = duckdb.connect()
    other.execute(f"ATTACH '{tmp_path / 'b' / 'catalog.duckdb'}' AS c (READ_ONLY)")
    with pytest.raises(duckdb.Error):
        other.execute("select count(*) from c.ds").fetchone()


def test_older_versions_by_name_and_number(tmp_path: Path) -> None:
    s = _store(tmp_path)
    code, out, _ = _cli("query", "select count(*) as n from dataset_version('ds', 1)", "--format", "csv", home=tmp_path)
    assert code == 0 and out.splitlines() == ["n", "3"]
    assert s.connect().execute("select count(*) from dataset_version('ds', 2)").fetchone() == (5,)


def test_readers_never_block_a_publish(tmp_path: Path) -> None:
    s = _store(tmp_path)
    holder = duckdb.connect(str(s.catalog_path))  # a notebook holding the catalog open read-write
    assert holder.execute("select count(*) from ds").fetchone() == (5,)
    dv = s.publish_frame("ds", "checked", table("sample"), _rows(7, "newer"))
    assert dv.manifest.version == 3
    assert s.connect().execute("select count(*) from ds").fetchone() == (7,)
    holder.close()
    con = duckdb.connect(str(s.catalog_path), read_only=True)
    assert con.execute("select max(version) from datasets").fetchone() == (3,)


def test_query_during_refresh_and_publish_loop(tmp_path: Path) -> None:
    s = _store(tmp_path)
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {SRC!r})
        import polars as pl
        from curate.schema import table
        from curate.store import Store
        s = Store({str(tmp_path)!r})
        for i in range(6):
            n = i + 1
            df = pl.DataFrame({{"sample_id": [f"x{{i}}-{{j}}" for j in range(n)], "prompt_id": ["p"] * n,
                               "prompt": ["q"] * n, "response": ["r"] * n, "task": ["math"] * n}})
            s.publish_frame("ds", "checked", table("sample"), df)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        while proc.poll() is None:
            code, _, err = _cli("query", "select count(*) from ds", "--format", "csv", home=tmp_path)
            assert code == 0, err
            con = duckdb.connect(str(s.catalog_path), read_only=True)
            con.execute("select count(*) from ds").fetchone()
            con.close()
    finally:
        proc.wait(60)
    assert proc.returncode == 0
    assert Store(tmp_path).versions("ds") == list(range(1, 9))


def test_queries_cannot_write_into_the_store(tmp_path: Path) -> None:
    s = _store(tmp_path)
    part = s.get("ds@2").parts[0]
    before = part.read_bytes()
    for sql in (
        f"COPY (select 1 as a) TO '{part}'",
        "CREATE TABLE x AS SELECT 1",
        f"EXPORT DATABASE '{tmp_path}/x'",
        "ATTACH 'elsewhere.duckdb'",
        "SET enable_external_access = true; SELECT 1",
    ):
        code, _, err = _cli("query", sql, home=tmp_path)
        assert code == 2 and err.count("\n") == 1 and "read-only SQL" in err, (sql, err)
    assert part.read_bytes() == before


def test_tampered_part_is_caught_on_read_and_by_verify(tmp_path: Path) -> None:
    s = _store(tmp_path)
    part = s.get("ds@2").parts[0]
    os.chmod(part, 0o644)
    duckdb.connect().execute(f"COPY (select 'evil' as sample_id) TO '{part}'")
    with pytest.raises(DamagedVersion, match=r"ds@2 is damaged: part-00000.parquet is"):
        s.get("ds@2").scan()
    with pytest.raises(duckdb.Error, match="ds@2 is damaged"):
        s.connect().execute("select * from ds").fetchall()  # the view says so: neither evil rows nor v1
    assert s.connect().execute("select name, version from damaged").fetchall() == [("ds", 2)]
    assert s.connect().execute("select count(*) from datasets").fetchone() == (1,)
    code, out, err = _cli("datasets", "verify", home=tmp_path)
    assert code == 1 and "ok ds@1" in out and "DAMAGED ds@2" in out and "ds@2" in err


def test_verify_names_each_kind_of_damage(tmp_path: Path) -> None:
    s = Store(tmp_path)
    for name in ("trunc", "edited", "missing", "flipped"):
        s.publish_frame(name, "checked", table("sample"), _rows(4, name))
    man = tmp_path / "datasets" / "trunc" / "v1" / "_manifest.json"
    os.chmod(man, 0o644)
    man.write_bytes(man.read_bytes()[:40])
    man = tmp_path / "datasets" / "edited" / "v1" / "_manifest.json"
    os.chmod(man, 0o644)
    man.write_text(man.read_text().replace('"rows": 4', '"rows": 40', 1))
    (tmp_path / "datasets" / "missing" / "v1" / "part-00000.parquet").unlink()
    part = tmp_path / "datasets" / "flipped" / "v1" / "part-00000.parquet"
    os.chmod(part, 0o644)
    data = bytearray(part.read_bytes())
    data[10] ^= 0xFF
    part.write_bytes(bytes(data))
    report = verify(s)
    assert "not valid JSON" in report["trunc@1"][0]
    assert any("edited after publication" in p for p in report["edited@1"])
    assert report["missing@1"] == ["part-00000.parquet is missing"]
    assert report["flipped@1"] == ["part-00000.parquet: checksum mismatch (contents changed after publication)"]
    con = s.connect()  # the catalog still opens; only the same-size change needs verify's checksums to show
    assert con.execute("select name from datasets").fetchall() == [("flipped",)]
    assert {n for (n,) in con.execute("select name from damaged").fetchall()} == {"trunc", "edited", "missing"}
    with pytest.raises(StoreError, match="trunc@1 is damaged"):
        s.get("trunc")


_KILLED_PUBLISHER = """
import sys; sys.path.insert(0, {src!r})
import polars as pl
from curate.schema import table
from curate.store import Store
s = Store({home!r})
print("ready", flush=True)
i = 0
while True:
    i += 1
    s.publish_frame("ds", "checked", table("sample"), pl.DataFrame({{"sample_id": [f"k{{i}}-{{j}}" for j in range(200)],
        "prompt_id": ["p"] * 200, "prompt": ["q"] * 200, "response": ["r" * 500] * 200, "task": ["math"] * 200}}),
        rows_per_part=50)
"""


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.07, 0.15, 0.3])
def test_kill_9_mid_publish_leaves_store_readable_and_swept(tmp_path: Path, delay: float) -> None:
    _store(tmp_path)
    script = _KILLED_PUBLISHER.format(src=SRC, home=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"  # imports done: publishing now
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    s = Store(tmp_path)
    assert s.get("ds@1").scan().collect().height == 3  # previous versions intact
    assert all(not p for p in verify(s).values())  # nothing half-published is listed
    con = duckdb.connect(str(s.catalog_path), read_only=True)  # the catalog on disk still opens
    con.execute("select count(*) from datasets").fetchone()
    con.close()
    s.publish_frame("ds", "checked", table("sample"), _rows(2, "after"))  # the next run sweeps the leftovers
    assert list((tmp_path / ".staging").iterdir()) == []
    assert not list(tmp_path.glob(".catalog--*"))
    latest = s.versions("ds")[-1]
    assert s.connect().execute("select max(version) from datasets").fetchone() == (latest,)


def test_a_home_that_is_not_a_path_is_refused(tmp_path: Path) -> None:
    import importlib.util

    for bad, needle in (("nosuchscheme://x/y", "nosuchscheme"), ("s3:bucket/x", "without '//'")):
        code, _, err = _cli("datasets", "list", home=bad)
        assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not Path("s3:bucket").exists()
    if importlib.util.find_spec("s3fs") is None:
        code, _, err = _cli("datasets", "list", home="s3://bucket/x")
        assert code == 2 and "pip install s3fs" in err
    assert Store(f"file://{tmp_path}").home == tmp_path


def test_temp_files_of_a_killed_check_or_export_are_swept(tmp_path: Path) -> None:
    from curate.io.files import TMP_MARK, sweep_tmp_beside

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "checked.parquet"
    left = [
        tmp_path / f".checked.parquet.{dead.pid}.tmp",
        tmp_path / f".checked.parquet.{dead.pid}.pass1",
        tmp_path / f".checked.parquet{TMP_MARK}{socket.gethostname()}-{dead.pid}",
    ]
    live = tmp_path / f".checked.parquet.{os.getpid()}.tmp"
    for p in [*left, live]:
        p.write_bytes(b"half")
    work = tmp_path / f".checked.parquet.{dead.pid}.tmp.dedup"  # the staged dedup's parts and stages
    (work / "in").mkdir(parents=True)
    (work / "in" / "part-000000.parquet").write_bytes(b"half")
    (tmp_path / f".checked.parquet.{os.getpid()}.tmp.dedup").mkdir()
    assert sorted(sweep_tmp_beside(out)) == sorted([*left, work])
    assert live.exists() and not work.exists() and (tmp_path / f".checked.parquet.{os.getpid()}.tmp.dedup").exists()
