"""Reading a prompt pool (JSONL or Parquet, schemas/prompt.yaml) for generation.

Rows are read by ``curate.io.rows`` against the ``prompt`` table, like ``curate check`` reads samples: a
bad row (invalid JSON, no prompt text, a wrong type, a repeated prompt_id) goes to ``on_bad`` with its
line number and an ``input.`` reason code, and the good rows still go through. ``read_prompt_pool``
collects both; ``write_quarantine`` writes the bad rows in ingest's quarantine format. A missing file,
an unreadable Parquet file or a pool with no good row at all is a one-line ``PromptFileError``.

Duplicate prompt_ids: the first row keeps the id and later rows are quarantined as ``input.duplicate_id``.
Samples are keyed by prompt_id (sample ids, per-prompt seeds, dedup scope, pass rates), so two prompts
under one id would mix their samples; keeping the first is what a reader of the file expects, and it is
stable, so a resumed run shards the same good rows the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from curate.errors import CurateError
from curate.io.files import write_bytes_atomic
from curate.io.rows import RAW_CUT, BadRow, InputError, ReadConfig, ReadStats, prompt_id, read_batches
from curate.schema import SchemaError, table

QUARANTINE_NAME = "prompts.quarantine.jsonl"
_POS = ("input_line", "input_file")  # where each row came from, added by ingest


class PromptFileError(CurateError, ValueError):
    """The prompts file cannot be used (missing, unreadable, no usable prompt, or a bad row when strict)."""


derive_prompt_id = prompt_id  # the one derivation, shared with ``curate check`` (curate.io.rows.prompt_id)


def _one_line(row: BadRow) -> str:
    detail = " ".join(row.detail.split())
    return f"{row.file}:{row.line}: {row.reason}" + (f" ({detail})" if detail else "")


def _raw(row: dict[str, Any]) -> str:
    """A row rejected after parsing, re-encoded (its fields as read, unknown ones back at the top level)
    for the quarantine's ``raw``."""
    rec = {k: v for k, v in row.items() if k not in (*_POS, "extra") and v is not None}
    extra = orjson.loads(row["extra"]) if isinstance(row.get("extra"), str) else None
    if isinstance(extra, dict):
        rec.update(extra)
    return orjson.dumps(rec, default=str).decode()[:RAW_CUT]


def _rejects(
    df: pl.DataFrame, mask: pl.Series, reason: str, detail: Callable[[dict[str, Any]], str]
) -> Iterable[BadRow]:
    for row in df.filter(mask).iter_rows(named=True):
        yield BadRow(row["input_file"], row["input_line"], reason, detail(row), _raw(row))


def _with_ids(df: pl.DataFrame) -> pl.DataFrame:
    if "prompt_id" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.String).alias("prompt_id"))
    ids = df["prompt_id"].cast(pl.String)
    if ids.null_count():
        ids = pl.Series(
            [i if i is not None else derive_prompt_id(p) for i, p in zip(ids, df["prompt"], strict=True)],
            dtype=pl.String,
        )
    return df.with_columns(ids.alias("prompt_id"))


def read_prompts(path: str | Path, on_bad: Callable[[BadRow], None] | None = None) -> pl.DataFrame:
    """The good prompts in file order, conformed to the ``prompt`` table (``prompt_id`` derived from the
    text when absent, unknown fields in ``extra``).

    Each bad row goes to ``on_bad``; without one, the first bad row raises PromptFileError naming its
    line and reason (a caller that does not keep a quarantine must not lose rows silently).
    """
    p = Path(path)
    if not p.exists():
        raise PromptFileError(f"prompts file not found: {p}")
    stats = ReadStats()
    first_bad: list[BadRow] = []

    def bad(row: BadRow) -> None:
        if on_bad is None:
            raise PromptFileError(_one_line(row))
        if not first_bad or row.line < first_bad[0].line:
            first_bad[:] = [row]
        stats.bad(row)
        on_bad(row)

    prompt = table("prompt")
    try:
        frames = list(read_batches([p], prompt, on_bad=bad, options=ReadConfig(required=("prompt",))))
    except InputError as e:
        raise PromptFileError(str(e)) from e
    df = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if df.height and df.schema["prompt"] != pl.String:  # Parquet: a column has one type for all rows
        raise PromptFileError(f"{p}: column 'prompt' must be text, got {df.schema['prompt']}")
    if df.height:
        blank = df["prompt"].str.strip_chars() == ""
        for row in _rejects(df, blank, "input.missing_field", lambda r: "'prompt' has no text"):
            bad(row)
        df = _with_ids(df.filter(~blank))
        first = df["prompt_id"].is_first_distinct()
        if not first.all():
            seen = dict(df.filter(first).select("prompt_id", "input_line").iter_rows())
            for row in _rejects(
                df,
                ~first,
                "input.duplicate_id",
                lambda r: f"prompt_id {r['prompt_id']!r} already on line {seen[r['prompt_id']]}",
            ):
                bad(row)
            df = df.filter(first)
    if not df.height:
        why = f"; {stats.rows_bad} bad rows, first {_one_line(first_bad[0])}" if first_bad else ""
        raise PromptFileError(f"{p}: no usable prompts{why}")
    try:
        return prompt.conform(df)
    except SchemaError as e:
        raise PromptFileError(f"{p}: {e}") from e


@dataclass(frozen=True, slots=True)
class PromptPool:
    """A prompt file's good rows and its quarantined rows (in line order)."""

    path: Path
    table: pl.DataFrame
    bad: tuple[BadRow, ...] = ()
    stats: ReadStats = field(default_factory=ReadStats)

    def write_quarantine(self, out_dir: str | Path) -> Path | None:
        """Write the bad rows to ``out_dir/prompts.quarantine.jsonl``; None (and no stale file) when none."""
        return write_quarantine(self.bad, Path(out_dir) / QUARANTINE_NAME)

    def summary(self, quarantine: Path | None) -> str:
        """One line of counts: ``P: read N prompts, quarantined M (reason k, ...) -> Q``."""
        line = f"{self.path}: read {self.table.height:,} prompts, quarantined {self.stats.rows_bad:,}"
        if self.stats.rows_bad:
            by = ", ".join(f"{k} {v}" for k, v in self.stats.bad_by_reason.most_common())
            line += f" ({by}) -> {quarantine}"
        return line


def read_prompt_pool(path: str | Path) -> PromptPool:
    """Read ``path`` keeping every bad row (see :func:`read_prompts`)."""
    bad: list[BadRow] = []
    df = read_prompts(path, on_bad=bad.append)
    bad.sort(key=lambda r: r.line)
    stats = ReadStats(rows_ok=df.height)
    for row in bad:
        stats.bad(row)
    return PromptPool(Path(path), df, tuple(bad), stats)


def write_quarantine(rows: Sequence[BadRow], dest: Path) -> Path | None:
    """Ingest's quarantine format (one JSON object a line), written atomically: concurrent data-parallel
    workers write the same content. With no rows, a stale file from an earlier run is removed."""
    if not rows:
        dest.unlink(missing_ok=True)
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(b"".join(r.to_json() + b"\n" for r in rows), dest)
    return dest
