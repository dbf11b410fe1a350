"""The seen stage: the staged run matched against a multi-version index in one pass, with the verdicts of
``dedup_frame`` given the loaded index, row for row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import curate.dedup.buckets as buckets
import curate.dedup.seen as seen
from curate.dedup import DedupConfig, DedupIndex, dedup_frame
from curate.dedup.core import sketch_frame
from curate.dedup.run import dedup_files

RNG = np.random.default_rng(7)
VOCAB = np.array([f"w{i}" for i in range(20_000)])
COLS = ["sample_id", "dedup_seen_in", "dedup_seen_sample_id", "reject_reasons"]


def _doc() -> np.ndarray:
    return VOCAB[RNG.integers(0, len(VOCAB), 120)]


def _near(words: np.ndarray, k: int = 2) -> str:
    w = words.copy()
    w[RNG.integers(0, len(w), k)] = "zz"
    return " ".join(w)


@pytest.fixture(scope="module")
def data() -> dict[str, pl.DataFrame]:
    """Three published versions and a run: exact and near copies of published documents (some published
    in two versions, or twice in one, so ties must break the same way), and new documents."""
    base = [_doc() for _ in range(120)]
    v1 = [(f"a{i}", f"p{i % 3}", " ".join(base[i])) for i in range(50)]
    v1 += [(f"a-dup{i}", "p0", " ".join(base[i])) for i in range(5)]  # the same text twice in a version
    v2 = [(f"b{i}", f"p{i % 4}", " ".join(base[i])) for i in range(40, 90)]  # 40..49 also in v1
    v3 = [(f"c{i}", "p1", _near(base[i], 1)) for i in range(85, 110)]
    run = [(f"x{i}", f"p{i % 5}", " ".join(base[i]).upper() + " !") for i in range(0, 120, 2)]
    run += [(f"y{i}", f"p{i % 3}", _near(base[i])) for i in range(1, 120, 2)]
    run += [(f"z{i}", f"p{i % 2}", " ".join(_doc())) for i in range(60)]
    run += [(f"d{i}", "p0", " ".join(base[7])) for i in range(3)]  # duplicates within the run too
    run.append(("empty", "p0", ""))

    def frame(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
        df = pl.DataFrame(rows, schema=["sample_id", "prompt_id", "response"], orient="row")
        return df.with_columns(pl.lit("q").alias("prompt"))

    r = frame(run)
    return {"ds@1": frame(v1), "ds@2": frame(v2), "other@1": frame(v3), "run": r[RNG.permutation(r.height)]}


def _publish(idx: Path, cfg: DedupConfig, tag: str, df: pl.DataFrame, parts: int = 3) -> None:
    sig, exact = sketch_frame(df, cfg)
    cuts = np.linspace(0, df.height, parts + 1).astype(int)
    DedupIndex(idx, cfg.index_params()).add_parts(
        tag, [(df["sample_id"][a:b], sig[a:b], exact[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    )


def _publish_old(idx: Path, cfg: DedupConfig, tag: str, df: pl.DataFrame) -> None:
    """A version written the old way: band rows in shard order (not sorted), a row group per part."""
    index = DedupIndex(idx, cfg.index_params())
    sig, exact = sketch_frame(df, cfg)
    bands, sigs = index._tables(tag, df["sample_id"], sig, exact)
    for kind, t in (("bands", bands[RNG.permutation(bands.height)]), ("sigs", sigs)):
        (idx / kind).mkdir(parents=True, exist_ok=True)
        t.write_parquet(idx / kind / f"{tag}.parquet", row_group_size=max(1, t.height // 3))


def _index(tmp_path: Path, cfg: DedupConfig, data: dict[str, pl.DataFrame], old: bool = False) -> Path:
    idx = tmp_path / "idx"
    if old:
        _publish_old(idx, cfg, "ds@1", data["ds@1"])
    for tag in ("ds@1", "ds@2", "other@1")[int(old) :]:
        _publish(idx, cfg, tag, data[tag])
    return idx


def _staged(tmp_path: Path, cfg: DedupConfig, data: dict[str, pl.DataFrame], name: str = "w") -> pl.DataFrame:
    inp = tmp_path / "run.jsonl"
    data["run"].write_ndjson(inp)
    dedup_files([inp], tmp_path / f"{name}.parquet", cfg, work=tmp_path / name, shard_bytes=8_000)
    return pl.read_parquet(tmp_path / f"{name}.parquet")


@pytest.mark.parametrize("kw", [{}, {"scope": "per-prompt", "keep": "shortest"}])
def test_seen_stage_gives_the_in_memory_verdicts(
    tmp_path: Path, data: dict[str, pl.DataFrame], monkeypatch: pytest.MonkeyPatch, kw: dict
) -> None:
    """Many shards, many band-hash ranges (in the index merge and in the seen stage), three versions."""
    monkeypatch.setattr(buckets, "PART_ROWS", 400)
    cfg = DedupConfig(index_dir=str(tmp_path / "idx"), **kw)
    idx = _index(tmp_path, cfg, data)
    for f in (idx / "bands").iterdir():  # written sorted by band_hash
        assert pl.read_parquet(f)["band_hash"].is_sorted()
    assert pq.ParquetFile(idx / "bands" / "ds@1.parquet").metadata.num_row_groups > 1  # merged range by range
    got = _staged(tmp_path, cfg, data)
    want = dedup_frame(data["run"], cfg, DedupIndex(idx, cfg.index_params()).load())
    assert_frame_equal(got.select(COLS), want.select(COLS))
    seen_in = got["dedup_seen_in"].value_counts()
    assert set(seen_in["dedup_seen_in"].drop_nulls()) == {"ds@1", "ds@2", "other@1"}
    (run,) = (tmp_path / "w" / "run").iterdir()
    assert len(list((tmp_path / "w" / "rows").glob("*"))) > 10  # many shards
    assert len(list(next(run.glob("seen-[0-9]*")).iterdir())) > 10  # many band-hash ranges


def test_an_old_unsorted_index_still_gives_the_right_answer(
    tmp_path: Path, data: dict[str, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buckets, "PART_ROWS", 400)
    cfg = DedupConfig(index_dir=str(tmp_path / "idx"))
    idx = _index(tmp_path, cfg, data, old=True)
    assert not pl.read_parquet(idx / "bands" / "ds@1.parquet")["band_hash"].is_sorted()
    assert json.loads((idx / "index.json").read_text())["versions"] == ["ds@1", "ds@2", "other@1"]
    got = _staged(tmp_path, cfg, data)
    want = dedup_frame(data["run"], cfg, DedupIndex(idx, cfg.index_params()).load())
    assert_frame_equal(got.select(COLS), want.select(COLS))
    assert got.filter(pl.col("dedup_seen_in") == "ds@1").height > 10


def test_the_index_is_read_once_per_run_not_once_per_shard(
    tmp_path: Path, data: dict[str, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = DedupConfig(index_dir=str(tmp_path / "idx"))
    _index(tmp_path, cfg, data)
    band_scans: list[int] = []
    sig_passes: list[int] = []
    real_range, real_sigs = seen.index_range, seen._sig_hits

    def count_range(*a: object) -> pl.DataFrame:
        band_scans.append(1)
        return real_range(*a)  # type: ignore[arg-type]

    def count_sigs(*a: object) -> object:
        sig_passes.append(1)
        return real_sigs(*a)  # type: ignore[arg-type]

    def no_query(*a: object, **k: object) -> None:
        raise AssertionError("the staged run queries the index per shard")

    monkeypatch.setattr(seen, "index_range", count_range)
    monkeypatch.setattr(seen, "_sig_hits", count_sigs)
    monkeypatch.setattr(DedupIndex, "query", no_query)
    got = _staged(tmp_path, cfg, data)
    assert len(list((tmp_path / "w" / "rows").glob("*"))) > 10  # many shards ...
    assert band_scans == [1] and sig_passes == [1]  # ... one range, one pass over each table
    assert got["dedup_seen_in"].is_not_null().sum() > 50


def test_seen_stage_resumes_to_the_same_output(
    tmp_path: Path, data: dict[str, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half the ranges and ``seen.parquet`` lost (as after a kill mid-stage): the rerun redoes only them."""
    monkeypatch.setattr(buckets, "PART_ROWS", 400)
    cfg = DedupConfig(index_dir=str(tmp_path / "idx"))
    _index(tmp_path, cfg, data)
    first = _staged(tmp_path, cfg, data)
    (run,) = (tmp_path / "w" / "run").iterdir()
    ranges = sorted(next(run.glob("seen-[0-9]*")).iterdir())
    for p in ranges[::2]:
        p.unlink()
    (run / "seen.parquet").unlink()
    for p in (run / "out").iterdir():
        p.unlink()
    inp = tmp_path / "run.jsonl"
    rep = dedup_files([inp], tmp_path / "again.parquet", cfg, work=tmp_path / "w", shard_bytes=8_000)
    assert rep.computed["seen"] == len(ranges[::2]) and rep.computed["signatures"] == 0
    assert_frame_equal(pl.read_parquet(tmp_path / "again.parquet"), first)
    # a finished seen stage is not redone
    rep = dedup_files([inp], tmp_path / "third.parquet", cfg, work=tmp_path / "w", shard_bytes=8_000)
    assert "seen" not in rep.computed
    assert_frame_equal(pl.read_parquet(tmp_path / "third.parquet"), first)


def _killed_seen(inp: str, work: str, out: str, idx: str, stage: str, nth: str) -> None:
    """Child process: ``dedup_files`` against ``idx`` that SIGKILLs itself on the ``nth`` call of a seen
    stage function (earlier calls complete, so the stage is left half done)."""
    import curate.dedup.run as run
    from curate.testing.faults import die_on_call

    buckets.PART_ROWS = 400
    die_on_call(run, stage, int(nth))
    run.dedup_files([inp], out, DedupConfig(index_dir=idx), work=work, shard_bytes=8_000)


@pytest.mark.parametrize(("stage", "nth"), [("seen_part", 4), ("resolve_seen", 1)])
def test_a_dedup_killed_in_the_seen_stage_resumes_to_the_same_output(
    tmp_path: Path, data: dict[str, pl.DataFrame], monkeypatch: pytest.MonkeyPatch, stage: str, nth: int
) -> None:
    import signal
    import subprocess
    import sys

    monkeypatch.setattr(buckets, "PART_ROWS", 400)
    cfg = DedupConfig(index_dir=str(tmp_path / "idx"))
    _index(tmp_path, cfg, data)
    inp = tmp_path / "run.jsonl"
    data["run"].write_ndjson(inp)
    child = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('seen_child', sys.argv[1])\n"
        "m = sys.modules['seen_child'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "m._killed_seen(*sys.argv[2:])\n"
    )
    args = [__file__, str(inp), str(tmp_path / "w"), str(tmp_path / "out.parquet"), cfg.index_dir, stage, str(nth)]
    proc = subprocess.run([sys.executable, "-c", child, *args], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    again = dedup_files([inp], tmp_path / "out.parquet", cfg, work=tmp_path / "w", shard_bytes=8_000)
    fresh = dedup_files([inp], tmp_path / "fresh.parquet", cfg, work=tmp_path / "w2", shard_bytes=8_000)
    assert_frame_equal(pl.read_parquet(tmp_path / "out.parquet"), pl.read_parquet(tmp_path / "fresh.parquet"))
    assert again.computed["signatures"] == 0
    assert again.computed["seen"] == (fresh.computed["seen"] - 3 if stage == "seen_part" else 0)


def test_a_killed_recordings_run_files_are_swept(tmp_path: Path, data: dict[str, pl.DataFrame]) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    cfg = DedupConfig(index_dir=str(tmp_path / "idx"))
    left = tmp_path / "idx" / "bands" / f".ds@1.parquet.{int(dead.stdout)}.tmp"
    left.mkdir(parents=True)
    (left / "000000.parquet").write_bytes(b"half")
    _publish(tmp_path / "idx", cfg, "ds@1", data["ds@1"])
    assert sorted(p.name for p in (tmp_path / "idx" / "bands").iterdir()) == ["ds@1.parquet"]
