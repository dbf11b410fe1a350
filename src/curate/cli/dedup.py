"""``curate dedup``: mark exact and near duplicates in one or more inputs and write one Parquet file.

Thin: reading inputs, the pure ``dedup_frame``, optionally the persistent index, writing, counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from curate.checks.shards import DEDUP_SHARD_BYTES
from curate.dedup.core import DedupConfig, dedup_frame
from curate.dedup.index import DedupIndex


def read_inputs(paths: list[Path], text_column: str) -> pl.DataFrame:
    """All rows of the inputs. Sample-shaped inputs go through ``curate.io.rows`` (ids filled); others
    (any text column) are read with Polars as they are."""
    from curate.io.rows import ReadConfig, ReadStats, fill_ids, read_batches
    from curate.schema import table

    sample = table("sample")
    if text_column in sample.names:
        stats = ReadStats()
        frames = list(read_batches(paths, sample, on_bad=stats.bad, options=ReadConfig(required=(text_column,))))
        df = (
            pl.concat(frames, how="diagonal_relaxed")
            if frames
            else pl.DataFrame({text_column: []}, schema={text_column: pl.String})
        )
        if stats.rows_bad:
            Console(stderr=True).print(f"[yellow]{stats.rows_bad} unreadable row(s) skipped[/]")
        return fill_ids(df) if "prompt" in df.columns else df
    from curate.io.jsonl import read_ndjson

    # every line decides the schema, not the first hundred (read_ndjson: at about the cost of 100)
    frames = [pl.read_parquet(p) if p.suffix in (".parquet", ".pq") else read_ndjson(p.read_bytes()) for p in paths]
    return pl.concat(frames, how="diagonal_relaxed")


def dedup_command(
    inputs: Annotated[list[Path], typer.Argument(help="JSONL or Parquet inputs", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output Parquet (all rows, with dedup columns)")],
    text_column: Annotated[str, typer.Option(help="Column compared")] = "response",
    threshold: Annotated[float, typer.Option(help="Estimated Jaccard for near duplicates")] = 0.8,
    num_perm: Annotated[int, typer.Option(help="MinHash signature length")] = 128,
    ngram: Annotated[int, typer.Option(help="Words per shingle")] = 5,
    scope: Annotated[str, typer.Option(help="global | per-prompt")] = "global",
    keep: Annotated[str, typer.Option(help="Representative: first | shortest | best_score")] = "first",
    score_column: Annotated[str | None, typer.Option(help="Score column for --keep best_score")] = None,
    exact_only: Annotated[bool, typer.Option("--exact-only", help="Skip MinHash near-dup search")] = False,
    index_dir: Annotated[Path | None, typer.Option(help="Persistent index: rows found there get dedup.seen")] = None,
    record_as: Annotated[str | None, typer.Option(help="Add the kept rows to --index-dir as name@version")] = None,
    drop: Annotated[bool, typer.Option("--drop", help="Write only the kept rows")] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            "--work-dir",
            help="Keep every stage's output here (resumable; default: beside --out, removed after a successful run)",
        ),
    ] = None,
    shard_mb: Annotated[float, typer.Option("--shard-mb", min=0.001, help="JSONL shard size in MB")] = DEDUP_SHARD_BYTES
    / (1 << 20),
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="Bucket stage budget: smaller cuts it into more band-hash ranges")
    ] = "2GB",
    workers: Annotated[int, typer.Option("--workers", min=1, help="Local worker processes for the shards")] = 1,
    dask: Annotated[int, typer.Option("--dask", min=0, help="Run shards on a local Dask cluster of N workers")] = 0,
    dask_address: Annotated[
        str | None, typer.Option("--dask-address", help="Run shards on the Dask scheduler at this address")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON line")] = False,
) -> None:
    """Mark exact and near-duplicate rows (dedup.exact / dedup.near / dedup.seen).

    Four stages, each one's output on disk: signatures per shard -> band buckets per band-hash range ->
    connected components of the duplicates -> marks per shard. A rerun with the same --work-dir resumes
    at the stage that was interrupted; memory per process is bounded by a shard or a range."""
    from curate.cli._dask import run_sharded
    from curate.dedup.run import clean, dedup_files
    from curate.schema import table

    console = Console()
    try:
        cfg = DedupConfig(
            text_column=text_column,
            threshold=threshold,
            num_perm=num_perm,
            ngram=ngram,
            scope=scope,  # type: ignore[arg-type]  # validated in DedupConfig
            keep=keep,  # type: ignore[arg-type]
            score_column=score_column,
            near=not exact_only,
            index_dir=str(index_dir) if index_dir else None,
            threads=1 if workers > 1 or dask or dask_address else 2,  # one sketch thread a worker process
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if record_as and not index_dir:
        raise typer.BadParameter("--record-as needs --index-dir")
    if index_dir:
        DedupIndex(index_dir, cfg.index_params())  # a mismatched index is refused before any work
    work = work_dir or out.with_name(f".{out.name}.dedup")
    rep = run_sharded(
        dask,
        dask_address,
        lambda mapper: dedup_files(
            inputs,
            out,
            cfg,
            work=work,
            sample_shaped=text_column in table("sample").names,
            drop=drop,
            record_as=record_as,
            mapper=mapper,
            shard_bytes=int(shard_mb * (1 << 20)),
            memory_limit=memory_limit,
        ),
        workers,
    )
    if work_dir is None:
        clean(work)
    if as_json:
        import orjson

        print(orjson.dumps(rep.as_dict()).decode())
        return
    if rep.bad_rows:
        Console(stderr=True).print(f"[yellow]{rep.bad_rows} unreadable row(s) skipped[/]")
    t = Table(title=f"dedup: {rep.rows} rows -> {rep.kept} kept")
    t.add_column("reason")
    t.add_column("rows", justify="right")
    for code in ("dedup.exact", "dedup.near", "dedup.seen"):
        t.add_row(code, str(rep.counts.get(code, 0)))
    console.print(t)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in rep.stages.items())
    console.print(f"wrote {rep.written} rows to {out}" + (f"; indexed {record_as}" if record_as else ""))
    console.print(f"stages: {stages}; peak RSS {rep.peak_rss_mb:,.0f} MB")


__all__ = ["dedup_command", "dedup_frame", "read_inputs"]
