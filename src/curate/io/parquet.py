"""Parquet rows: read in record batches and refused by the same rules as JSONL rows.

A column whose type is not the declared one (``response`` as integers or lists, say) does not stop the
read: each row with a value there is refused as ``input.wrong_type`` and the rest are read, as the JSONL
reader would do line by line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from curate.io.rules import BadRow, InputError, ReadConfig, Reason, rules_for
from curate.schema import Table


def parquet_batches(
    path: Path, table: Table, opts: ReadConfig, on_bad: Callable[[BadRow], None]
) -> Iterator[pl.DataFrame]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - any pyarrow failure means "not a readable Parquet file"
        raise InputError(f"{path}: not a readable Parquet file ({e})") from e
    rules = rules_for(table, opts.required)
    cols = pf.schema_arrow.names
    missing = [r for r in opts.required if r not in cols]
    if missing:
        raise InputError(f"{path}: required column(s) {', '.join(missing)} missing")
    offset = 0
    name = str(path)
    for rb in pf.iter_batches(batch_size=opts.batch_rows):
        df = pl.from_arrow(rb)
        assert isinstance(df, pl.DataFrame)
        df = df.with_columns(pl.int_range(offset + 1, offset + 1 + df.height, dtype=pl.Int64).alias("input_line"))
        offset += df.height
        unknown = [c for c in df.columns if c not in rules.known and c not in ("input_line", "input_file")]
        if unknown:
            df = df.with_columns(pl.struct(unknown).struct.json_encode().alias("extra")).drop(unknown)
        reasons = rules.frame_reasons(df)
        bad = reasons.struct.field("code").is_not_null()
        if bad.any():
            refused = df.select("input_line").with_columns(reasons).filter(bad)
            for line, why in refused.iter_rows():
                on_bad(BadRow.of(name, line, Reason(why["code"], why["detail"] or "")))
            df = df.filter(~bad)
        wrong = [c for c in df.columns if c in rules.known and not rules.column_ok(c, df.schema[c])]
        if wrong:  # every value left there is null: the declared type, empty
            df = df.with_columns([pl.lit(None, table.polars_schema()[c]).alias(c) for c in wrong])
        if df.height:
            yield df.with_columns(pl.lit(name).alias("input_file"))
