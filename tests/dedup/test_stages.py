"""Dedup in stages over files: the same verdicts as in memory, resume at the stage, bounded pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from curate.checks.streams import GROUP_BYTES, group_rows
from curate.dedup import DedupConfig, DedupIndex, dedup_frame
from curate.dedup.run import dedup_files

RNG = np.random.default_rng(3)
VOCAB = np.array([f"w{i}" for i in range(20_000)])


@pytest.fixture(scope="module")
def corpus() -> pl.DataFrame:
    rows = []
    for i in range(150):
        base = VOCAB[RNG.integers(0, len(VOCAB), 120)]
        near = base.copy()
        near[RNG.integers(0, 120, 2)] = "zz"
        rows += [
            (f"o{i}", f"p{i % 7}", " ".join(base)),
            (f"e{i}", f"p{i % 5}", " ".join(base).upper() + " !"),
            (f"n{i}", f"p{i % 7}", " ".join(near)),
        ]
    rows.append(("empty", "p0", ""))
    order = RNG.permutation(len(rows))
    df = pl.DataFrame(rows, schema=["sample_id", "prompt_id", "response"], orient="row")[order]
    return df.with_columns(pl.lit("q").alias("prompt"))


@pytest.mark.parametrize("kw", [{}, {"scope": "per-prompt", "keep": "shortest"}])
def test_staged_run_gives_the_in_memory_verdicts(tmp_path: Path, corpus: pl.DataFrame, kw: dict) -> None:
    inp = tmp_path / "in.jsonl"
    corpus.write_ndjson(inp)
    cfg = DedupConfig(**kw)
    rep = dedup_files([inp], tmp_path / "out.parquet", cfg, work=tmp_path / "work", shard_bytes=20_000)
    got = pl.read_parquet(tmp_path / "out.parquet")
    want = dedup_frame(corpus, cfg)
    cols = [
        "sample_id",
        "dedup_cluster_id",
        "dedup_cluster_size",
        "dedup_kept_sample_id",
        "dedup_max_jaccard",
        "reject_reasons",
    ]
    assert_frame_equal(got.select(cols), want.select(cols))
    assert rep.rows == corpus.height and rep.computed["signatures"] > 5
    if not kw:
        assert rep.counts["dedup.exact"] + rep.counts["dedup.near"] >= 280


def test_a_rerun_resumes_at_the_stage_it_lost(tmp_path: Path, corpus: pl.DataFrame) -> None:
    inp = tmp_path / "in.jsonl"
    corpus.write_ndjson(inp)
    first = dedup_files([inp], tmp_path / "a.parquet", DedupConfig(), work=tmp_path / "w", shard_bytes=20_000)
    (run,) = (tmp_path / "w" / "run").iterdir()
    (run / "marks.parquet").unlink()  # as if killed in the components stage
    for p in sorted((run / "out").iterdir())[2:]:
        p.unlink()
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    half = tmp_path / f".b.parquet.{dead.pid}.tmp"  # the output of a run killed while writing it
    half.write_bytes(b"PAR1 half")
    again = dedup_files([inp], tmp_path / "b.parquet", DedupConfig(), work=tmp_path / "w", shard_bytes=20_000)
    assert not half.exists()
    assert again.computed["signatures"] == 0 and first.computed["signatures"] > 5
    assert again.computed["marks"] == first.computed["marks"] - 2
    assert_frame_equal(pl.read_parquet(tmp_path / "a.parquet"), pl.read_parquet(tmp_path / "b.parquet"))


def test_cross_version_index_through_the_stages(tmp_path: Path, corpus: pl.DataFrame) -> None:
    v1, v2 = corpus.head(200), corpus.tail(251)
    v1.write_ndjson(tmp_path / "v1.jsonl")
    v2.write_ndjson(tmp_path / "v2.jsonl")
    cfg = DedupConfig(index_dir=str(tmp_path / "idx"))
    dedup_files(
        [tmp_path / "v1.jsonl"],
        tmp_path / "o1.parquet",
        cfg,
        work=tmp_path / "w1",
        record_as="ds@1",
        shard_bytes=20_000,
    )
    assert DedupIndex(tmp_path / "idx", cfg.index_params()).versions() == ["ds@1"]
    # recorded shard by shard (a row group each, one shard in memory at a time): exactly the kept rows
    assert pq.ParquetFile(tmp_path / "idx" / "sigs" / "ds@1.parquet").num_row_groups > 1
    o1 = pl.read_parquet(tmp_path / "o1.parquet")
    kept = o1.filter(~pl.col("reject_reasons").list.eval(pl.element().str.starts_with("dedup.")).list.any())
    recorded = pl.read_parquet(tmp_path / "idx" / "sigs" / "ds@1.parquet")
    assert recorded["sample_id"].to_list() == kept["sample_id"].to_list()
    assert set(pl.read_parquet(tmp_path / "idx" / "bands" / "ds@1.parquet")["sample_id"]) == set(kept["sample_id"])
    rep = dedup_files([tmp_path / "v2.jsonl"], tmp_path / "o2.parquet", cfg, work=tmp_path / "w2", shard_bytes=20_000)
    out = pl.read_parquet(tmp_path / "o2.parquet")
    want = dedup_frame(v2, cfg, DedupIndex(tmp_path / "idx", cfg.index_params()).load())
    assert rep.counts["dedup.seen"] > 0
    assert out["dedup_seen_sample_id"].to_list() == want["dedup_seen_sample_id"].to_list()
    assert out["reject_reasons"].to_list() == want["reject_reasons"].to_list()


def test_partitioned_buckets_give_the_same_output_and_resume(
    tmp_path: Path, corpus: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stages 2-3 split by band-hash range (here ~14 ranges) give the one-range output; a run killed
    mid-stage-2 (some ranges done) redoes only the missing ranges."""
    import curate.dedup.buckets as buckets

    inp = tmp_path / "in.jsonl"
    corpus.write_ndjson(inp)
    one = dedup_files([inp], tmp_path / "one.parquet", DedupConfig(), work=tmp_path / "w1", shard_bytes=20_000)
    monkeypatch.setattr(buckets, "PART_ROWS", 500)
    many = dedup_files([inp], tmp_path / "many.parquet", DedupConfig(), work=tmp_path / "w2", shard_bytes=20_000)
    assert one.computed["buckets"] == 1 and many.computed["buckets"] > 10
    assert_frame_equal(pl.read_parquet(tmp_path / "one.parquet"), pl.read_parquet(tmp_path / "many.parquet"))
    (run,) = (tmp_path / "w2" / "run").iterdir()
    (edges,) = run.glob("edges-*")
    for p in sorted(edges.iterdir())[3:]:
        p.unlink()
    (run / "marks.parquet").unlink()
    for p in (run / "out").iterdir():
        p.unlink()
    again = dedup_files([inp], tmp_path / "again.parquet", DedupConfig(), work=tmp_path / "w2", shard_bytes=20_000)
    assert again.computed["signatures"] == 0 and again.computed["buckets"] == many.computed["buckets"] - 3
    assert_frame_equal(pl.read_parquet(tmp_path / "one.parquet"), pl.read_parquet(tmp_path / "again.parquet"))
    out = pl.read_parquet(tmp_path / "again.parquet")
    marks = pl.read_parquet(run / "marks.parquet")  # only documents with a duplicate have a row
    assert marks.height == out.filter(pl.col("dedup_cluster_size") > 1).height < corpus.height


@pytest.mark.parametrize("parts", [1, 3, 8])
def test_band_hash_ranges_cover_int64_once(parts: int) -> None:
    from curate.dedup.buckets import PartJob

    jobs = [PartJob(i, parts, "", "", (), (), DedupConfig()) for i in range(parts)]
    edges = [-(1 << 63), (1 << 63) - 1, -1, 0, 1] + [b for j in jobs for b in j.bounds() if b is not None]
    for v in edges + [b - 1 for b in edges if b > -(1 << 63)]:
        owners = [
            j
            for j in jobs
            if (j.bounds()[0] is None or v >= j.bounds()[0]) and (j.bounds()[1] is None or v < j.bounds()[1])
        ]
        assert len(owners) == 1, v


def _killed_dedup(inp: str, work: str, out: str, stage: str, nth: str) -> None:
    """Child process: ``dedup_files`` that SIGKILLs itself on the ``nth`` call of one stage's function
    (earlier calls of it complete, so the stage is left half done)."""
    import curate.dedup.buckets as buckets
    import curate.dedup.run as run
    from curate.dedup.stages import signatures_on_threads
    from curate.testing.faults import die_on_call

    buckets.PART_ROWS = 500  # many band-hash ranges, so stage 2 can die between them
    die_on_call(run, stage, int(nth))
    # as `curate dedup` runs it: two shards of the signature stage at a time
    mapper = signatures_on_threads(2)
    run.dedup_files([inp], out, DedupConfig(), work=work, shard_bytes=20_000, mapper=mapper)


@pytest.mark.parametrize(
    ("stage", "nth"),
    [("sign_shard", 4), ("bucket_part", 5), ("resolve_components", 1), ("mark_shard", 3), ("_write_output", 1)],
)
def test_a_dedup_killed_in_any_stage_resumes_to_the_same_output(
    tmp_path: Path, corpus: pl.DataFrame, monkeypatch: pytest.MonkeyPatch, stage: str, nth: int
) -> None:
    """A real ``kill -9`` of the process mid-stage; the rerun with the same work folder redoes only what
    was not finished and writes exactly the output of a run from nothing, and nothing half-written stays
    beside the output."""
    import signal
    import subprocess
    import sys

    import curate.dedup.buckets as buckets

    inp = tmp_path / "in.jsonl"
    corpus.write_ndjson(inp)
    child = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('stages_child', sys.argv[1])\n"
        "m = sys.modules['stages_child'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "m._killed_dedup(*sys.argv[2:])\n"
    )
    args = [__file__, str(inp), str(tmp_path / "w"), str(tmp_path / "out.parquet"), stage, str(nth)]
    proc = subprocess.run([sys.executable, "-c", child, *args], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not (tmp_path / "out.parquet").exists()
    # Shards whose signature stage finished before the kill (two run at a time: the 4th call starts once
    # two of the first three are done).
    finished = len(list((tmp_path / "w" / "rows").glob("*.parquet")))
    monkeypatch.setattr(buckets, "PART_ROWS", 500)
    again = dedup_files([inp], tmp_path / "out.parquet", DedupConfig(), work=tmp_path / "w", shard_bytes=20_000)
    fresh = dedup_files([inp], tmp_path / "fresh.parquet", DedupConfig(), work=tmp_path / "w2", shard_bytes=20_000)
    assert_frame_equal(pl.read_parquet(tmp_path / "out.parquet"), pl.read_parquet(tmp_path / "fresh.parquet"))
    if stage == "sign_shard":
        assert finished >= 2
        assert again.computed["signatures"] == fresh.computed["signatures"] - finished
    else:
        assert again.computed["signatures"] == 0
    if stage == "bucket_part":
        assert again.computed["buckets"] == fresh.computed["buckets"] - 4
    if stage == "mark_shard":
        assert again.computed["marks"] == fresh.computed["marks"] - 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.parquet", "in.jsonl", "out.parquet", "w", "w2"]


def test_inputs_with_different_columns_meet_in_one_output(tmp_path: Path) -> None:
    """Shards that differ in their columns (a field only one input has, one that is null throughout a
    shard) and a shard with no rows at all: one output with the union of the columns, nulls where a row
    had none, every row in input order, duplicates across the inputs found; row groups of about
    ``GROUP_BYTES``; ``--drop`` keeps the kept rows in order."""
    import orjson

    rng = np.random.default_rng(5)
    texts = [" ".join(f"w{w}" for w in rng.integers(0, 50_000, 40)) for _ in range(300)]
    a, b, empty = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    with a.open("wb") as f:
        for i in range(300):
            f.write(orjson.dumps({"prompt": f"q{i}", "response": texts[i], "reference": str(i)}) + b"\n")
    with b.open("wb") as f:
        for i in range(200):  # no reference; language present but null; the first 50 copy a's rows
            text = texts[i] if i < 50 else f"own text {i} " * 12
            f.write(orjson.dumps({"prompt": f"r{i}", "response": text, "language": None}) + b"\n")
    empty.write_bytes(b"")
    rep = dedup_files([a, empty, b], tmp_path / "out.parquet", DedupConfig(), work=tmp_path / "w", shard_bytes=9_000)
    got = pl.read_parquet(tmp_path / "out.parquet")
    assert got.height == rep.rows == rep.written == 500
    assert got["reference"].to_list() == [str(i) for i in range(300)] + [None] * 200
    assert got["prompt"].to_list() == [f"q{i}" for i in range(300)] + [f"r{i}" for i in range(200)]
    dup = got["reject_reasons"].list.contains("dedup.exact")
    assert (
        dup.sum() >= 50
        and dup[300:350].all()
        and rep.kept
        == 500 - int(got["reject_reasons"].list.eval(pl.element().str.starts_with("dedup.")).list.any().sum())
    )
    assert pq.read_metadata(tmp_path / "out.parquet").num_row_groups >= 1
    rows_per_group = group_rows(500, 500 * 300)
    assert rows_per_group == min(131_072, GROUP_BYTES // 300)
    assert group_rows(10, 10 << 30) == 1024 and group_rows(0, 0) == 131_072
    kept = dedup_files(
        [a, empty, b], tmp_path / "kept.parquet", DedupConfig(), work=tmp_path / "w", shard_bytes=9_000, drop=True
    )
    only = pl.read_parquet(tmp_path / "kept.parquet")
    assert only.height == kept.written == kept.kept == rep.kept
    assert (
        only["prompt"].to_list()
        == got.filter(~dup & ~got["reject_reasons"].list.len().cast(pl.Boolean))["prompt"].to_list()
    )


@pytest.mark.parametrize("hashes", [3, 50, 10**6])
def test_bucket_rows_in_the_order_of_sorting_every_key(hashes: int) -> None:
    """Stage 2 sorts by the band hash alone and then only its runs of equal hashes by (band, doc): the
    same order as sorting every row by all three keys, so the same chain + star edges."""
    from curate.dedup.buckets import _ties_sorted

    rng = np.random.default_rng(hashes)
    n = 20_000
    t = pl.DataFrame(
        {
            "band_hash": rng.integers(-hashes, hashes, n),
            "band_id": rng.integers(0, 6, n).astype(np.int16),
            "doc": rng.permutation(n).astype(np.int64),
        }
    )
    want = t.sort("band_hash", "band_id", "doc")
    by_hash = t.sort("band_hash")
    got = _ties_sorted(*(by_hash[c].to_numpy() for c in want.columns))
    for g, c in zip(got, want.columns, strict=True):
        np.testing.assert_array_equal(g, want[c].to_numpy())
