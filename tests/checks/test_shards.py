"""Per-shard, cached row checks: resume after kill -9, one changed option, identical output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
import polars as pl
from polars.testing import assert_frame_equal

from curate.checks.base import Check, add_reasons
from curate.checks.format import FormatCheck
from curate.checks.runner import ShardOptions, check_files
from curate.checks.shards import plan_shards
from curate.schema import CheckDecl

SHARD = 4096  # bytes: the inputs below make about a dozen shards


@dataclass(frozen=True, slots=True)
class MarkConfig:
    mark: str = "7"
    kill_flag: str = ""  # a file: while it exists, the check kills its process at the row "die"


class MarkCheck(Check[MarkConfig]):
    """Flags responses containing ``mark``; kills its own process (SIGKILL) when told to."""

    name = "mark"
    cost = 5
    Config = MarkConfig
    declared = CheckDecl("mark", "test check", (), {"mark.hit": "response contains the mark"})
    calls: ClassVar[int] = 0

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        if self.config.kill_flag and os.path.exists(self.config.kill_flag) and (df["prompt"] == "die").any():
            os.kill(os.getpid(), signal.SIGKILL)
        return add_reasons(df, {"mark.hit": pl.col("response").str.contains(self.config.mark, literal=True)})


def write_input(path: Path, n: int = 240, die_at: int | None = None) -> Path:
    with path.open("wb") as f:
        for i in range(n):
            resp = f"<think>step {i} " + "word " * (i % 13) + f"</think>\nThe answer is {i % 17}."
            if i % 11 == 0:
                resp = f"no think tags {i}"
            prompt = "die" if i == die_at else f"q{i // 4}"
            f.write(
                orjson.dumps(
                    {
                        "prompt_id": f"p{i // 4}",
                        "task": "math",
                        "prompt": prompt,
                        "response": resp,
                        "reference": str(i % 17),
                    }
                )
                + b"\n"
            )
        f.write(b"{not json\n")  # one quarantined row
    return path


def run(inp: Path, out: Path, cache: Path | None, checks: list[Check[Any]]) -> Any:
    return check_files([inp], out, checks, shards=ShardOptions(shard_bytes=SHARD, cache=cache))


def computed(report: Any) -> dict[int, list[str]]:
    return {d.index: d.computed for d in report.shards}


def test_shards_keep_line_numbers_and_cover_the_file(tmp_path: Path) -> None:
    inp = write_input(tmp_path / "in.jsonl")
    shards = plan_shards([inp], SHARD)
    assert len(shards) > 5
    assert shards[0].start == 0 and shards[-1].end == inp.stat().st_size
    assert all(a.end == b.start for a, b in zip(shards, shards[1:], strict=False))
    lines = inp.read_bytes().split(b"\n")
    offsets = [0]
    for line in lines[:-1]:
        offsets.append(offsets[-1] + len(line) + 1)
    for s in shards:  # every cut falls just after a newline, and first_line is that line's number
        assert offsets[s.first_line - 1] == s.start


def test_cached_run_is_identical_and_reuses_everything(tmp_path: Path) -> None:
    inp = write_input(tmp_path / "in.jsonl")
    checks: list[Check[Any]] = [FormatCheck(), MarkCheck()]
    fresh = run(inp, tmp_path / "fresh.parquet", None, checks)
    first = run(inp, tmp_path / "a.parquet", tmp_path / "cache", checks)
    second = run(inp, tmp_path / "b.parquet", tmp_path / "cache", checks)
    assert all(c == ["read", "format", "mark"] for c in computed(first).values())
    assert all(c == [] for c in computed(second).values())
    want = pl.read_parquet(tmp_path / "fresh.parquet")
    assert want.height == 240 and fresh.read.rows_bad == 1
    assert want["reject_reasons"].list.len().sum() > 0
    for name in ("a", "b"):
        assert_frame_equal(pl.read_parquet(tmp_path / f"{name}.parquet"), want)
    assert (tmp_path / "b.quarantine.jsonl").read_bytes() == (tmp_path / "fresh.quarantine.jsonl").read_bytes()


def test_changing_one_option_recomputes_only_that_check(tmp_path: Path) -> None:
    inp = write_input(tmp_path / "in.jsonl")
    run(inp, tmp_path / "a.parquet", tmp_path / "cache", [FormatCheck(), MarkCheck()])
    changed = [FormatCheck(), MarkCheck(MarkConfig(mark="9"))]
    report = run(inp, tmp_path / "b.parquet", tmp_path / "cache", changed)
    assert all(c == ["mark"] for c in computed(report).values())
    run(inp, tmp_path / "fresh.parquet", None, changed)
    assert_frame_equal(pl.read_parquet(tmp_path / "b.parquet"), pl.read_parquet(tmp_path / "fresh.parquet"))


def _killed_run(inp: Path, out: Path, cache: Path, flag: Path) -> None:
    run(inp, out, cache, [FormatCheck(), MarkCheck(MarkConfig(kill_flag=str(flag)))])


def test_resume_after_kill_9_recomputes_only_the_missing_shards(tmp_path: Path) -> None:
    inp = write_input(tmp_path / "in.jsonl", die_at=150)
    n = len(plan_shards([inp], SHARD))
    flag = tmp_path / "kill"
    flag.touch()
    child = (
        "import importlib.util, sys\nfrom pathlib import Path\n"
        "spec = importlib.util.spec_from_file_location('shards_child', sys.argv[1])\n"
        "m = sys.modules['shards_child'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "m._killed_run(*map(Path, sys.argv[2:]))\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            child,
            __file__,
            str(inp),
            str(tmp_path / "out.parquet"),
            str(tmp_path / "cache"),
            str(flag),
        ],
        timeout=300,
        capture_output=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not (tmp_path / "out.parquet").exists()  # nothing half-written where the output goes
    flag.unlink()
    checks: list[Check[Any]] = [FormatCheck(), MarkCheck(MarkConfig(kill_flag=str(flag)))]
    report = run(inp, tmp_path / "out.parquet", tmp_path / "cache", checks)
    done = computed(report)
    dead = min(i for i, c in done.items() if c)  # the shard the process died in
    assert 0 < dead < n - 1
    assert all(done[i] == [] for i in range(dead))  # finished shards: nothing recomputed
    assert done[dead] == ["mark"]  # read and format were finished before the kill
    assert all(done[i] == ["read", "format", "mark"] for i in range(dead + 1, n))
    run(inp, tmp_path / "fresh.parquet", None, checks)
    assert_frame_equal(pl.read_parquet(tmp_path / "out.parquet"), pl.read_parquet(tmp_path / "fresh.parquet"))


def test_repeated_ids_across_shards_go_to_the_quarantine_but_derived_ids_do_not(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    with inp.open("wb") as f:
        for i in range(200):  # the same text twice without ids (dedup's business), then a given id repeated
            f.write(orjson.dumps({"prompt": "q", "response": f"<think>x</think> same {i % 100}"}) + b"\n")
        for i in range(100):
            f.write(orjson.dumps({"prompt": "q", "sample_id": f"s{i % 60}", "response": f"r {i}"}) + b"\n")
    report = run(inp, tmp_path / "out.parquet", None, [FormatCheck()])
    assert len(report.shards) > 3
    assert report.read.bad_by_reason == {"input.duplicate_id": 40}
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out.height == 260 and "_given_sample_id" not in out.columns


def test_concurrent_checks_give_the_sequential_output(tmp_path: Path) -> None:
    """Checks that declare ``concurrent`` share threads within a shard; the output and the pieces
    computed are those of running every check in turn."""
    from curate.checks.registry import build_checks

    inp = write_input(tmp_path / "in.jsonl")
    checks = [*build_checks(None, only=["format", "readability", "lang", "decontam", "math"]), MarkCheck()]
    assert sum(c.concurrent for c in checks) == 4
    reports = []
    for threads in (1, 3):
        out = tmp_path / f"out{threads}.parquet"
        reports.append(check_files([inp], out, checks, shards=ShardOptions(shard_bytes=SHARD, threads=threads)))
    assert_frame_equal(pl.read_parquet(tmp_path / "out1.parquet"), pl.read_parquet(tmp_path / "out3.parquet"))
    one, three = (r.shard_summary()["computed"] for r in reports)
    assert one == three and one["readability"] == reports[0].shard_summary()["n"] > 1


def test_in_process_pieces_stay_in_memory(tmp_path: Path) -> None:
    """A run whose shards are computed in the writing process, with no cache, hands its pieces over in
    memory: the same output and quarantine, no piece left behind; a real cache still gets its files."""
    from curate.checks import cached

    inp = write_input(tmp_path / "in.jsonl")
    with inp.open("ab") as f:
        f.write(b"{not json\n")
    outs = {}
    for name, opts in (
        ("disk", ShardOptions(shard_bytes=SHARD)),
        ("memory", ShardOptions(shard_bytes=SHARD, in_process=True, threads=2)),
        ("cached", ShardOptions(shard_bytes=SHARD, in_process=True, cache=tmp_path / "cache")),
    ):
        out = tmp_path / f"{name}.parquet"
        report = check_files([inp], out, [FormatCheck(), MarkCheck()], shards=opts)
        outs[name] = (pl.read_parquet(out), report.quarantine.read_bytes() if report.quarantine else b"")
        assert not cached._MEMORY
    assert_frame_equal(outs["disk"][0], outs["memory"][0])
    assert_frame_equal(outs["disk"][0], outs["cached"][0])
    assert outs["disk"][1] == outs["memory"][1] == outs["cached"][1] != b""
    assert list((tmp_path / "cache" / "read").glob("*.parquet"))


def test_corpus_dedup_staged_gives_the_in_memory_output(tmp_path: Path, monkeypatch: Any) -> None:
    """Past a shard of rows or text, ``curate check``'s dedup runs staged over parts of the staging file
    (memory bounded by a part); its output equals the in-memory check's, row for row, column for column.
    The in-memory run starts from the signatures computed while pass 1 staged the rows (Presketch), the
    staged one sketches its parts itself: so the two sketches agree too."""
    import random

    import curate.checks.runner as runner
    from curate.dedup import DedupCheck, DedupConfig

    rng = random.Random(11)
    vocab = [f"w{i}" for i in range(3000)]
    texts: list[str] = []
    with (tmp_path / "in.jsonl").open("wb") as f:
        for i in range(3000):
            if i > 50 and rng.random() < 0.08:
                t = texts[rng.randrange(i)]  # an exact copy (within its prompt or not)
            elif i > 50 and rng.random() < 0.08:
                w = texts[rng.randrange(i)].split()
                w[rng.randrange(len(w))] = "zz"  # a near copy
                t = " ".join(w)
            else:
                t = " ".join(rng.choices(vocab, k=rng.choice([3, 40, 120])))
            texts.append(t)
            row = {"prompt": "q", "prompt_id": f"p{i % 4}", "response": f"<think>{t}</think> 7", "task": "math"}
            f.write(orjson.dumps(row) + b"\n")
    for cfg in (DedupConfig(), DedupConfig(scope="per-prompt", keep="shortest")):
        checks = [FormatCheck(), DedupCheck(cfg)]
        presketched: list[int] = []
        monkeypatch.setattr(DedupCheck, "run", _spy_sketched(DedupCheck.run, presketched))
        check_files([tmp_path / "in.jsonl"], tmp_path / "mem.parquet", checks)
        assert presketched == [3000], "the in-memory dedup did not get the presketched signatures"
        monkeypatch.setattr(runner, "DEFAULT_SHARD_ROWS", 700)  # staged, in parts of 700 rows
        staged = []
        monkeypatch.setattr(runner, "_dedup_staged", _spy(runner._dedup_staged, staged))
        check_files([tmp_path / "in.jsonl"], tmp_path / "staged.parquet", checks)
        monkeypatch.undo()
        assert staged, "the staged path did not run"
        mem, got = pl.read_parquet(tmp_path / "mem.parquet"), pl.read_parquet(tmp_path / "staged.parquet")
        assert_frame_equal(got, mem)
        codes = mem["reject_reasons"].explode().value_counts()
        assert set(codes["reject_reasons"].drop_nulls()) >= {"dedup.exact", "dedup.near"}, codes


def _spy_sketched(fn: Any, rows: list[int]) -> Any:
    def wrapped(self: Any, df: Any, sketched: Any = None) -> Any:
        if sketched is not None:
            rows.append(len(sketched[1]))
        return fn(self, df, sketched)

    return wrapped


def _spy(fn: Any, calls: list[int]) -> Any:
    def wrapped(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return fn(*a, **k)

    return wrapped


def _killed_in_staged_dedup(inp: Path, out: Path) -> None:
    """Child process: ``curate check``'s staged dedup, SIGKILLed once its parts are on disk."""
    import curate.checks.runner as runner
    import curate.checks.stage as stage
    import curate.dedup.run as dedup_run
    from curate.dedup import DedupCheck
    from curate.testing.faults import die_on_call

    runner.DEFAULT_SHARD_ROWS = 50  # staged, in parts of 50 rows
    stage.STAGE_MEMORY_BYTES = 0  # pass 1's rows in the staging file, not held in memory
    die_on_call(dedup_run, "dedup_files", 1)
    check_files([inp], out, [FormatCheck(), DedupCheck()])


def test_a_check_killed_in_its_staged_dedup_leaves_nothing_after_the_rerun(tmp_path: Path) -> None:
    """The staged dedup's work folder (parts of the staging file: as large as the input's texts) is
    swept by the next run beside the same output, as its staging files are."""
    from curate.dedup import DedupCheck

    inp = write_input(tmp_path / "in.jsonl")
    out = tmp_path / "out.parquet"
    child = (
        "import importlib.util, sys\nfrom pathlib import Path\n"
        "spec = importlib.util.spec_from_file_location('shards_child', sys.argv[1])\n"
        "m = sys.modules['shards_child'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "m._killed_in_staged_dedup(*map(Path, sys.argv[2:]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", child, __file__, str(inp), str(out)], timeout=300, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out.parquet."))
    assert any(n.endswith(".tmp.dedup") for n in left) and any(n.endswith(".pass1") for n in left), left
    assert list(tmp_path.glob(".out.parquet.*.tmp.dedup/in/part-*.parquet"))
    check_files([inp], out, [FormatCheck(), DedupCheck()])
    assert pl.read_parquet(out).height == 240
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "out.quarantine.jsonl") == ["in.jsonl", "out.parquet"]


def test_two_processes_sharing_one_cache_agree_and_leave_it_whole(tmp_path: Path) -> None:
    """Two ``curate check`` processes on the same input and ``--cache-dir`` at once (two workers of a
    cluster, two users): both outputs equal a run without a cache, no temporary file stays in the cache,
    and a third run finds every piece there."""
    inp = write_input(tmp_path / "in.jsonl", n=600)
    cache = tmp_path / "cache"

    def cli(out: str, *extra: str) -> subprocess.Popen[bytes]:
        args = ["check", str(inp), "--out", str(tmp_path / out), "--checks", "format,readability"]
        cmd = [sys.executable, "-m", "curate.cli", *args, "--shard-mb", "0.004", "--json", *extra]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = [cli("a.parquet", "--cache-dir", str(cache)), cli("b.parquet", "--cache-dir", str(cache))]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    ref = cli("ref.parquet", "--no-cache")
    ref.communicate(timeout=300)
    assert ref.returncode == 0
    want = pl.read_parquet(tmp_path / "ref.parquet")
    for out in ("a.parquet", "b.parquet"):
        assert_frame_equal(pl.read_parquet(tmp_path / out), want)
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    third = cli("c.parquet", "--cache-dir", str(cache))
    stdout, _ = third.communicate(timeout=300)
    report = orjson.loads(stdout.splitlines()[-1])
    assert report["shards"]["n"] > 10 and report["shards"]["computed"] == {}
    assert_frame_equal(pl.read_parquet(tmp_path / "c.parquet"), want)
