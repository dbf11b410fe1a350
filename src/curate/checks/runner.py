"""Running checks over files: the streaming engine behind ``curate check``.

Pass 1 streams input batches through the row checks and stages them (in memory while they are small,
else in an Arrow IPC staging file: :mod:`curate.checks.stage`). Pass 2 streams the staged rows to the
output in batches of bounded bytes. The dedup check alone (the
default) over more than a shard of rows or of text runs the staged dedup of ``curate dedup`` over parts
of the staging file and its columns are patched onto the rows as they stream: memory is bounded by a
part. Dedup over less text (or with other whole-corpus checks) sees the columns it needs for all rows at
once and returns its columns as a patch, applied the same way. The judge, corpus-scoped only to run
last and once, is applied to the streaming batches themselves (``Check.streams``).
The output appears atomically (staging file + rename).
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import orjson
import polars as pl
import pyarrow.parquet as pq

from curate.checks.base import REASONS, Check, finalize
from curate.checks.cached import (
    GIVEN,
    ShardCache,
    ShardDone,
    ShardJob,
    ShardOptions,
    local_executor,
    plan_check_jobs,
    shard_frames,
)
from curate.checks.funnel import Funnel
from curate.checks.shards import DEFAULT_SHARD_ROWS
from curate.checks.stage import Stage
from curate.checks.streams import BackgroundWriter, group_rows, prefetch, sink_frames
from curate.errors import RunFailed
from curate.io.files import commit_file, sweep_tmp_beside
from curate.io.parquet import parquet_frames
from curate.io.rows import BadRow, ReadConfig, ReadStats
from curate.native import kernels
from curate.schema import table
from curate.store import DatasetVersion, Store

if TYPE_CHECKING:
    from curate.dedup.presketch import Presketch

Progress = Callable[[int, int], None]  # (rows done so far, estimated total rows)


class TooManyBadRows(RunFailed):
    """The share of unreadable rows exceeded ``max_bad_fraction``."""


@dataclass(slots=True)
class CheckReport:
    out: Path
    quarantine: Path | None
    read: ReadStats = field(default_factory=ReadStats)
    funnel: Funnel = field(default_factory=Funnel)
    shards: list[ShardDone] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.funnel.total

    @property
    def accepted(self) -> int:
        return self.funnel.accepted

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "quarantine": str(self.quarantine) if self.quarantine else None,
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rows - self.accepted,
            "bad_rows": self.read.rows_bad,
            "bad_by_reason": dict(self.read.bad_by_reason),
            "funnel": dict(self.funnel.reasons),
            "shards": self.shard_summary(),
            "stages": dict(self.stages),
            # False: the text passes ran their numpy/Polars references (no compiler at install, a stale
            # build, or CURATE_KERNELS=0): same verdicts, about 1.35x the time
            "compiled_passes": kernels() is not None,
        }

    def shard_summary(self) -> dict[str, Any]:
        """Shards, and per piece (``read``, each check) how many were computed (the rest were reused)
        and the seconds spent computing them."""
        computed: dict[str, int] = {}
        seconds: dict[str, float] = {}
        for d in self.shards:
            for k in d.computed:
                computed[k] = computed.get(k, 0) + 1
            for k, v in d.seconds.items():
                seconds[k] = seconds.get(k, 0.0) + v
        return {"n": len(self.shards), "computed": computed, "seconds": {k: round(v, 3) for k, v in seconds.items()}}


class RepeatedIds:
    """Rows whose given ``sample_id`` an earlier row already had go to the quarantine as
    ``input.duplicate_id`` (the first row is kept), as repeated ``prompt_id``s in a prompt pool do.
    Ids derived from content are not counted: identical texts are ``dedup.exact``'s business."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def drop_repeated(self, batch: pl.DataFrame, on_bad: Callable[[BadRow], None]) -> pl.DataFrame:
        if "sample_id" not in batch.columns or batch["sample_id"].null_count() == batch.height:
            return batch
        keep: list[bool] = []
        for sid, line, file in batch.select("sample_id", "input_line", "input_file").iter_rows():
            first = sid is None or sid not in self.seen
            keep.append(first)
            if sid is None:
                continue
            if first:
                self.seen.add(sid)
            else:
                on_bad(BadRow(file, line, "input.duplicate_id", f"sample_id {sid!r} repeats an earlier row's", ""))
        return batch if all(keep) else batch.filter(pl.Series(keep))


def _drop_repeated_ids(repeated: RepeatedIds, df: pl.DataFrame, on_bad: Callable[[BadRow], None]) -> pl.DataFrame:
    """Repeated ``sample_id``s the input gave (not those derived from content) go to the quarantine."""
    if GIVEN not in df.columns:
        return df
    probe = df.select(pl.col(GIVEN).alias("sample_id"), "input_line", "input_file").with_row_index("_i")
    kept = repeated.drop_repeated(probe, on_bad)
    return (df if kept.height == df.height else df[kept["_i"]]).drop(GIVEN)


def quarantine_path(out: Path) -> Path:
    """``x.parquet`` -> ``x.quarantine.jsonl`` beside it."""
    return out.with_name(out.stem + ".quarantine.jsonl")


def check_files(
    inputs: Sequence[str | Path],
    out: str | Path,
    checks: Sequence[Check[Any]],
    *,
    read_options: ReadConfig | None = None,
    max_bad_fraction: float | None = None,
    progress: Progress | None = None,
    shards: ShardOptions | None = None,
) -> CheckReport:
    """Read ``inputs``, run ``checks``, and write every readable row with its verdict to ``out``.

    Row checks run per shard (:mod:`curate.checks.cached`): each finished (shard, check) piece is kept
    in ``shards.cache`` and reused by a later run; the pieces are then streamed, in input order, into
    one output, and corpus checks (dedup, the judge) run over it.
    """
    out = Path(out)
    sopts = shards or ShardOptions()
    scratch = out.with_name(f".{out.name}.{os.getpid()}.shards") if sopts.cache is None else None
    try:
        t0 = time.perf_counter()
        jobs = plan_check_jobs(
            inputs,
            checks,
            scratch or sopts.cache or "",
            read_options=read_options,
            shard_bytes=sopts.shard_bytes,
            threads=sopts.threads,
            in_process=sopts.in_process and scratch is not None,  # a real cache gets its files
        )
        plan_s = time.perf_counter() - t0
        report = write_checked(
            jobs,
            (sopts.executor or local_executor)(jobs),
            out,
            checks,
            max_bad_fraction=max_bad_fraction,
            progress=progress,
        )
        report.stages["plan_s"] = plan_s
        report.stages["wall_s"] += plan_s
        return report
    finally:
        if scratch is not None:
            ShardCache(scratch).forget()
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)


def write_checked(
    jobs: Sequence[ShardJob],
    dones: Iterable[ShardDone],
    out: str | Path,
    checks: Sequence[Check[Any]],
    *,
    max_bad_fraction: float | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    """Stream finished shards (``dones``, in any order; written in shard order) into ``out``: quarantine,
    repeated ids, the funnel, then corpus checks. The output appears atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    qpath = quarantine_path(out)
    sweep_tmp_beside(out)  # what a killed earlier run left beside --out
    sweep_tmp_beside(qpath)
    report = CheckReport(out=out, quarantine=None)
    schema = table("checked_sample")
    stage1 = out.with_name(f".{out.name}.{os.getpid()}.pass1")
    final_tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    qtmp = qpath.with_name(f".{qpath.name}.{os.getpid()}.tmp")
    row_checks = tuple(c for c in checks if c.scope == "row")
    corpus_checks = sorted((c for c in checks if c.scope == "corpus"), key=lambda c: c.cost)
    cache = jobs[0].cache if jobs else ""
    total_bytes = sum(j.shard.nbytes for j in jobs) or 1
    qfile: BinaryIO | None = None
    t0 = time.perf_counter()

    def on_bad(row: BadRow) -> None:
        nonlocal qfile
        if qfile is None:
            qfile = qtmp.open("wb")
        qfile.write(row.to_json() + b"\n")
        report.read.bad(row)

    repeated = RepeatedIds()
    pending: dict[int, ShardDone] = {}
    next_index, done_bytes, done_rows = 0, 0, 0
    # The rows of a run with corpus checks are read back and rewritten: held in memory while they are
    # small, else in an uncompressed Arrow IPC staging file (curate.checks.stage: no encoding either way;
    # lz4 Parquet cost 0.3 of 9 CPU-seconds on 20k traces), and only the output is compressed.
    stage = Stage(stage1, schema, expected_bytes=total_bytes) if corpus_checks else None
    writer = stage or BackgroundWriter(final_tmp, schema.to_arrow, schema.arrow_schema())
    presketch = _presketch(corpus_checks)
    try:
        try:
            for done in prefetch(iter(dones), depth=1):
                report.shards.append(done)
                done_bytes += jobs[done.index].shard.nbytes
                done_rows += done.rows
                if progress:  # across shards; the total is estimated from the bytes seen so far
                    progress(done_rows, int(done_rows * total_bytes / max(done_bytes, 1)))
                pending[done.index] = done
                while next_index in pending:
                    ((checked, bad),) = shard_frames([pending.pop(next_index)], row_checks, cache)
                    next_index += 1
                    for row in bad:
                        on_bad(row)
                    if not checked.height:
                        continue
                    checked = finalize(_drop_repeated_ids(repeated, checked, on_bad))
                    if not corpus_checks:
                        report.funnel += Funnel.from_frame(checked)
                    writer.write(checked)
                    if presketch is not None:
                        presketch.feed(checked)
                    report.read.rows_ok += checked.height
        finally:
            writer.close()
            if qfile is not None:
                qfile.close()
        if next_index != len(jobs):
            raise RunFailed(f"{len(jobs) - next_index} of {len(jobs)} shards did not finish")
        report.stages["row_checks_s"] = time.perf_counter() - t0
        total = report.read.rows_ok + report.read.rows_bad
        if max_bad_fraction is not None and total and report.read.rows_bad / total > max_bad_fraction:
            raise TooManyBadRows(
                f"{report.read.rows_bad} of {total} rows unreadable "
                f"({report.read.rows_bad / total:.1%} > --max-bad-fraction {max_bad_fraction:.1%})"
            )
        if corpus_checks:
            t1 = time.perf_counter()
            sketched = presketch.result(report.read.rows_ok) if presketch is not None else None
            assert stage is not None
            report.stages["staged_in_memory"] = float(stage.in_memory)
            _run_corpus_checks(stage, final_tmp, corpus_checks, report, sketched)
            report.stages["corpus_checks_s"] = time.perf_counter() - t1
        commit_file(final_tmp, out)
        if report.read.rows_bad:
            commit_file(qtmp, qpath)
            report.quarantine = qpath
        elif qpath.exists():
            qpath.unlink()  # a stale quarantine from an earlier run would mislead
    finally:
        if presketch is not None:
            presketch.close()
        for p in (stage1, final_tmp, qtmp):
            if p.exists():
                p.unlink()
    report.stages["wall_s"] = time.perf_counter() - t0
    report.stages["peak_rss_mb"] = max(
        [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024] + [d.peak_rss_mb for d in report.shards]
    )
    return report


def run_corpus_checks(inp: Path, out: Path, checks: Sequence[Check[Any]]) -> Funnel:
    """Apply corpus checks to a checked Parquet file, writing ``out`` atomically; returns the funnel."""
    report = CheckReport(out=out, quarantine=None)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        _run_corpus_checks(Stage.of_file(inp, table("checked_sample")), tmp, checks, report)
        commit_file(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return report.funnel


def _presketch(checks: Sequence[Check[Any]]) -> Presketch | None:
    """Signatures computed while pass 1 stages the rows, for a dedup check the in-memory path will run."""
    from curate.dedup.check import DedupCheck

    dedup = [c for c in checks if isinstance(c, DedupCheck)]
    if len(dedup) != 1:
        return None
    from curate.dedup.presketch import Presketch

    return Presketch(dedup[0].config, DEFAULT_SHARD_ROWS, DEDUP_IN_MEMORY_BYTES)


def _run_corpus_checks(
    stage1: Stage,
    final_tmp: Path,
    checks: Sequence[Check[Any]],
    report: CheckReport,
    sketched: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Pass 2: the staged rows streamed to the output, with the columns of the checks that see every
    row at once (dedup) patched on and the streaming checks (the judge) applied batch by batch.
    ``sketched``: the dedup check's signatures of the staged rows, when pass 1 computed them."""
    whole = [c for c in checks if not c.streams]
    streamed = [c for c in checks if c.streams]
    if whole and streamed and max(c.cost for c in whole) > min(c.cost for c in streamed):
        raise ValueError("a streaming corpus check must run after the whole-corpus ones (cost order)")
    work = final_tmp.with_name(f"{final_tmp.name}.dedup")
    schema = table("checked_sample")
    try:
        patch, patch_cols = _whole_corpus_patch(stage1, work, whole, sketched)
        rows, nbytes = stage1.num_rows(), stage1.nbytes()  # before the frames are handed out
        frames: Iterator[pl.DataFrame] = _patched(stage1.frames(), patch, patch_cols)
        for c in streamed:
            frames = c.run_stream(frames)

        def finalized() -> Iterator[pl.DataFrame]:
            for df in frames:
                df = finalize(df)
                report.funnel += Funnel.from_frame(df)
                yield df

        if streamed:
            # A judge's calls can take hours: they stay in this thread, where Ctrl-C reaches them (inside
            # Polars' sink it would wait for the end), and pyarrow's writer compresses beside them.
            writer = BackgroundWriter(final_tmp, schema.to_arrow, schema.arrow_schema())
            try:
                for df in finalized():
                    writer.write(df)
            finally:
                writer.close()
        else:
            group = group_rows(rows, nbytes, OUTPUT_GROUP_BYTES)
            sink_frames(finalized(), final_tmp, schema, group)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _patched(
    frames: Iterator[pl.DataFrame], patch: Callable[[int], pl.DataFrame] | None, cols: Sequence[str]
) -> Iterator[pl.DataFrame]:
    for df in frames:
        if not df.height:
            continue
        yield df if patch is None else df.drop([c for c in cols if c in df.columns]).hstack(patch(df.height))


def _whole_corpus_patch(
    stage1: Stage, work: Path, checks: Sequence[Check[Any]], sketched: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[Callable[[int], pl.DataFrame] | None, list[str]]:
    """The columns ``checks`` add (and the reasons they update), row for row with the staging file, as
    a function giving the next ``n`` rows. The dedup check alone over more than a shard of rows or of
    text runs staged under ``work`` (memory bounded by a part); otherwise the checks see the columns
    they need for all rows at once."""
    from curate.dedup.check import DedupCheck

    if not checks:
        return None, []
    only_dedup = len(checks) == 1 and isinstance(checks[0], DedupCheck)
    # Signatures from pass 1 mean the rows passed the same two limits there (Presketch gives up past
    # them), so the staging file is not read to measure them again.
    if only_dedup and sketched is None and not _fits_in_memory(stage1, checks[0].config.text_column):
        return _dedup_staged(stage1, work, checks[0])
    schema = table("checked_sample")
    needs: set[str] = {"sample_id", "prompt_id", REASONS}
    for c in checks:
        needs.update(c.needs())
    frame = stage1.read([n for n in schema.names if n in needs])
    before = set(frame.columns)
    for c in checks:
        if sketched is not None and isinstance(c, DedupCheck) and len(sketched[1]) == frame.height:
            frame = c.run(frame, sketched)
        else:
            frame = c.run(frame)
    cols = [REASONS] + [n for n in frame.columns if n not in before and n in schema.names]
    return _rebatched(iter([frame.select(cols)])), cols


# Row groups of the check's output. 1 GB of 8 KB traces, every default check, peak RSS: 743 MB with
# 16 MB groups, 816 with 32 MB (the sink holds a few groups in flight), 771 with the pyarrow writer
# before it; the same time (20k traces: 2,000-row groups as fast as 4,000).
OUTPUT_GROUP_BYTES = 16 << 20
DEDUP_PART_BYTES = 64 << 20  # per part of the staged dedup (what one stage holds at a time): bytes...
# Up to this much text, and a shard's rows, the dedup check runs in memory (the staged path's extra
# writes cost ~40% more time on 170 MB of traces); beyond, staged: memory bounded by a part.
DEDUP_IN_MEMORY_BYTES = 256 << 20


def _fits_in_memory(stage1: Stage, text: str) -> bool:
    """At most a shard of rows and ``DEDUP_IN_MEMORY_BYTES`` of text (counted only up to the limit)."""
    if stage1.num_rows() > DEFAULT_SHARD_ROWS:
        return False
    return stage1.column_bytes(text, DEDUP_IN_MEMORY_BYTES) <= DEDUP_IN_MEMORY_BYTES


def _dedup_staged(stage1: Stage, work: Path, check: Check[Any]) -> tuple[Callable[[int], pl.DataFrame], list[str]]:
    """The dedup check over all rows in bounded memory: the columns it reads are cut into parts, the
    parts go through the staged dedup of ``curate dedup`` (signatures per part, band-hash ranges,
    components, marks: the same verdicts as the in-memory check), and its columns come back from the
    marks file under ``work`` as the rows stream. Nothing holds the corpus's texts."""
    from curate.dedup.run import MARK_COLUMNS, dedup_files

    cfg = check.config
    schema = table("checked_sample")
    have = stage1.names()
    wanted = ("sample_id", "prompt_id", REASONS, cfg.text_column, cfg.score_column)
    cols = [c for c in dict.fromkeys(wanted) if c and c in have]
    shutil.rmtree(work, ignore_errors=True)
    (work / "in").mkdir(parents=True)
    parts: list[Path] = []
    part: pq.ParquetWriter | None = None
    size = rows = 0
    for rb in stage1.batches(cols):
        if part is None:
            parts.append(work / "in" / f"part-{len(parts):06d}.parquet")
            # uncompressed: read once, right after (lz4 cost 2.3 of 11 s on 1 GB of traces)
            part, size, rows = pq.ParquetWriter(parts[-1], rb.schema, compression="none"), 0, 0
        part.write_batch(rb)
        size, rows = size + rb.nbytes, rows + rb.num_rows
        if size >= DEDUP_PART_BYTES or rows >= DEFAULT_SHARD_ROWS:  # ...and rows, as input shards
            part.close()
            part = None
    if part is not None:
        part.close()
    marks_file = work / "marks.parquet"
    # One part at a time: two (as `curate dedup` sketches its shards) saved 1.3 of 24 s at 1M tiny rows
    # but held 110-150 MB more, at the run's peak.
    dedup_files(parts, marks_file, cfg, work=work / "stages", sample_shaped=False, marks_only=True)
    patch_cols = [c for c in MARK_COLUMNS if c in schema.names or c == REASONS]
    return _rebatched(parquet_frames(marks_file, columns=patch_cols)), patch_cols


def _rebatched(batches: Iterator[pl.DataFrame]) -> Callable[[int], pl.DataFrame]:
    """A function returning the next ``n`` rows of ``batches`` as a frame."""
    buf: list[pl.DataFrame] = []
    held = 0

    def take(n: int) -> pl.DataFrame:
        nonlocal buf, held
        while held < n:
            df = next(batches)
            buf.append(df)
            held += df.height
        whole = pl.concat(buf) if len(buf) > 1 else buf[0]
        out, rest = whole.head(n), whole.slice(n)
        buf, held = ([rest] if rest.height else []), rest.height
        return out

    return take


def sample_source(df: pl.DataFrame) -> dict[str, Any]:
    """Where samples came from, for a manifest: checkpoints, params hashes, sampling params (first 8)."""

    def uniq(col: str) -> list[Any]:
        return df[col].drop_nulls().unique().sort().to_list() if col in df.columns else []

    params = [orjson.loads(str(p)) for p in uniq("sampling_params")][:8]
    return {"checkpoints": uniq("checkpoint"), "params_hashes": uniq("params_hash"), "sampling_params": params}


def publish_checked(
    store: Store,
    name: str,
    out: Path,
    report: CheckReport,
    *,
    config: dict[str, Any],
    checks: Sequence[str],
    parents: Sequence[str] = (),
) -> DatasetVersion:
    """Publish a ``curate check`` output as the next version of ``name`` (streamed, not loaded whole)."""
    funnel = report.funnel.to_dict()
    extra: dict[str, Any] = {"bad_rows": report.read.rows_bad, "inputs_quarantine": str(report.quarantine or "")}
    if report.shards or report.stages:  # per-stage seconds and peak memory, for sizing the next run
        extra["stages"] = {k: round(v, 3) for k, v in report.stages.items()}
        extra["shards"] = report.shard_summary()
    judge_cfg = (config.get("checks") or {}).get("judge") or {}
    if judge_cfg.get("enabled"):
        from curate.judge import usage_summary

        cols = [
            c
            for c in (
                "judge_rubric",
                "judge_calls",
                "judge_tokens_in",
                "judge_tokens_out",
                "judge_cached",
                "reject_reasons",
            )
            if c in pq.read_schema(out).names
        ]
        usage = usage_summary(
            pl.read_parquet(out, columns=cols),
            float(judge_cfg.get("price_in_per_m", 0.0)),
            float(judge_cfg.get("price_out_per_m", 0.0)),
        )
        extra["judge_usage"] = usage.as_dict()
    source = sample_source(pl.read_parquet(out, columns=["checkpoint", "params_hash", "sampling_params"]))
    with store.writer(
        name,
        "checked",
        table("checked_sample"),
        funnel=funnel,
        parents=parents,
        source=source,
        config={"checks": list(checks), **config},
        extra=extra,
    ) as w:
        for df in parquet_frames(out):  # 8192 rows of 8 KB traces: 64 MB a batch
            w.write(df)
    assert w.published is not None
    return w.published
