"""``curate dedup``: mark exact and near duplicates in one or more inputs and write one Parquet file.

Thin: reading inputs, the pure ``dedup_frame``, optionally the persistent index, writing, counts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from curate.dedup.core import DedupConfig, dedup_frame, find_duplicates, sketch_frame
from curate.dedup.index import DedupIndex


def read_inputs(paths: list[Path], text_column: str) -> pl.DataFrame:
    """All rows of the inputs. Sample-shaped inputs go through ``curate.io.rows`` (ids filled); others
    (any text column) are read with Polars as they are."""
    from curate.io.rows import ReadConfig, ReadStats, fill_ids, read_batches
    from curate.schema import table

    sample = table("sample")
    if text_column in sample.names:
        stats = ReadStats()
        frames = list(
            read_batches(paths, sample, on_bad=stats.bad, options=ReadConfig(required=(text_column,)))
        )
        df = (
            pl.concat(frames, how="diagonal_relaxed")
            if frames
            else pl.DataFrame({text_column: []}, schema={text_column: pl.String})
        )
        if stats.rows_bad:
            Console(stderr=True).print(f"[yellow]{stats.rows_bad} unreadable row(s) skipped[/]")
        return fill_ids(df) if "prompt" in df.columns else df
    frames = [pl.read_parquet(p) if p.suffix in (".parquet", ".pq") else pl.read_ndjson(p, infer_schema_length=None)
              for p in paths]  # every line decides the schema, not the first hundred
    return pl.concat(frames, how="diagonal_relaxed")


def dedup_command(
    inputs: Annotated[
        list[Path], typer.Argument(help="JSONL or Parquet inputs", exists=True, dir_okay=False)
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output Parquet (all rows, with dedup columns)")],
    text_column: Annotated[str, typer.Option(help="Column compared")] = "response",
    threshold: Annotated[float, typer.Option(help="Estimated Jaccard for near duplicates")] = 0.8,
    num_perm: Annotated[int, typer.Option(help="MinHash signature length")] = 128,
    ngram: Annotated[int, typer.Option(help="Words per shingle")] = 5,
    scope: Annotated[str, typer.Option(help="global | per-prompt")] = "global",
    keep: Annotated[str, typer.Option(help="Representative: first | shortest | best_score")] = "first",
    score_column: Annotated[str | None, typer.Option(help="Score column for --keep best_score")] = None,
    exact_only: Annotated[bool, typer.Option("--exact-only", help="Skip MinHash near-dup search")] = False,
    index_dir: Annotated[
        Path | None, typer.Option(help="Persistent index: rows found there get dedup.seen")
    ] = None,
    record_as: Annotated[
        str | None, typer.Option(help="Add the kept rows to --index-dir as name@version")
    ] = None,
    drop: Annotated[bool, typer.Option("--drop", help="Write only the kept rows")] = False,
) -> None:
    """Mark exact and near-duplicate rows (dedup.exact / dedup.near / dedup.seen)."""
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
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if record_as and not index_dir:
        raise typer.BadParameter("--record-as needs --index-dir")
    df = read_inputs(inputs, text_column)
    index = DedupIndex(index_dir, cfg.index_params()).load() if index_dir else None
    sig, exact = sketch_frame(df, cfg)
    res = find_duplicates(df, cfg, sig, exact, index)
    dup = res["reject_reasons"].list.eval(pl.element().str.starts_with("dedup.")).list.any()
    counts = Counter(c for rs in res["reject_reasons"].to_list() for c in rs if c.startswith("dedup."))
    written = res.filter(~dup) if drop else res
    out.parent.mkdir(parents=True, exist_ok=True)
    written.write_parquet(out)
    if record_as and index is not None:
        keep_mask = (~dup).to_numpy()
        ids = (
            res["sample_id"] if "sample_id" in res.columns else pl.Series([str(i) for i in range(res.height)])
        )
        index.add(record_as, ids.filter(~dup), sig[keep_mask], exact[keep_mask])
    t = Table(title=f"dedup: {res.height} rows -> {int((~dup).sum())} kept")
    t.add_column("reason")
    t.add_column("rows", justify="right")
    for code in ("dedup.exact", "dedup.near", "dedup.seen"):
        t.add_row(code, str(counts.get(code, 0)))
    console.print(t)
    console.print(f"wrote {written.height} rows to {out}" + (f"; indexed {record_as}" if record_as else ""))


__all__ = ["dedup_command", "dedup_frame", "read_inputs"]
