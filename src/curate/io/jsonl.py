"""JSONL rows: blocks of whole lines read in chunks, an exact line-by-line path and a Polars fast path.

The fast path (Polars' NDJSON reader over a whole block) is taken only when it provably gives what the
exact path gives, row for row: the schema is inferred from every line of the block, every column's type
must be one the exact path would accept as it is, and a String column holding anything that may have
been a number, boolean, array or object in the JSON (Polars turns those into text) sends the block down
the exact path. ``tests/io/test_fast_path.py`` checks the equality on random files.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from curate.io.rules import TASKS, BadRow, ReadConfig, Reason, RowRules, rules_for
from curate.schema import Table

BOM = codecs.BOM_UTF8


def _has_lone_surrogate(obj: Any) -> bool:
    """json/orjson accept "\\ud800" escapes; such strings cannot be stored as UTF-8."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(obj, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_lone_surrogate(v) for v in obj)
    return False


def _loads(line: bytes) -> tuple[Any, Reason | None]:
    try:
        return orjson.loads(line), None
    except orjson.JSONDecodeError as e:
        msg = str(e)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as ue:
            return None, Reason("input.invalid_utf8", str(ue))
        if "surrogate" in msg:
            return None, Reason("input.lone_surrogate", msg)
        if "recursion" in msg.lower():  # orjson stops at 1024 levels; the stdlib would blow the stack
            return None, Reason("input.invalid_json", f"nested too deeply ({msg})")
        # orjson rejects lone surrogates; the stdlib is lenient, so tell the two cases apart.
        try:
            obj = json.loads(line)
            lone = _has_lone_surrogate(obj)
        except RecursionError:
            return None, Reason("input.invalid_json", "nested too deeply")
        except ValueError:
            return None, Reason("input.invalid_json", msg)
        if lone:
            return None, Reason("input.lone_surrogate", "unpaired UTF-16 surrogate in a string")
        return obj, None


Line = tuple[int, bytes | None, int]  # (line number, bytes or None when too long, length)
Span = tuple[int, int, int]  # (start byte, end byte, line number at start) of a slice of a file


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines read at once: ``data`` starts at line ``first_line``; ``long_lines`` were skipped.
    Every line in ``data`` ends with its newline except, at the end of a file without one, the last.
    (A trailing blank line without a newline is then not listed by ``lines``: it carries no row.)"""

    first_line: int
    data: bytes
    n_lines: int
    long_lines: tuple[Line, ...] = ()

    def lines(self) -> list[Line]:
        out: list[Line] = list(self.long_lines)
        if self.data:
            parts = self.data.split(b"\n")
            if self.data.endswith(b"\n"):
                parts.pop()
            out += [(self.first_line + i, line, len(line)) for i, line in enumerate(parts)]
        return sorted(out, key=lambda x: x[0])


def count_newlines(data: bytes) -> int:
    """``data.count(b"\\n")``, about 3x faster: numpy compares 4 MB at a time."""
    view, step = np.frombuffer(data, np.uint8), 1 << 22
    mask = np.empty(min(step, len(view)), dtype=bool)  # one mask for every step: no fresh pages each time
    return sum(
        int(np.count_nonzero(np.equal(view[i : i + step], 10, out=mask[: len(view[i : i + step])])))
        for i in range(0, len(view), step)
    )


def iter_blocks(path: Path, opts: ReadConfig, span: Span | None = None) -> Iterator[Block]:
    """Yield blocks of whole lines, numbered, without ever holding an over-long line.

    ``span`` (start byte, end byte, number of the line at start) reads one slice of the file; its
    ends must fall just after a newline (or at the file's ends), as :func:`curate.checks.shards` cuts them.
    """
    start, end, first_line = span if span is not None else (0, -1, 1)
    lineno = first_line - 1  # lines yielded so far
    buf = b""
    skipping = False
    skipped = 0
    first = start == 0
    left = end - start if end >= 0 else -1
    with path.open("rb") as f:
        f.seek(start)
        while True:
            # A span a little over one chunk (shards end just past a multiple of their size) is read at
            # once: one block, not a copy of the first chunk's lines joined to a second read's tail.
            whole_span = 0 <= left <= opts.chunk_bytes + (opts.chunk_bytes >> 3)
            chunk = f.read(left if whole_span else opts.chunk_bytes if left < 0 else min(opts.chunk_bytes, left))
            if left > 0:
                left -= len(chunk)
            if first:
                if chunk.startswith(BOM):  # a leading BOM is an encoding artifact, not data
                    chunk = chunk[len(BOM) :]
                first = False
            if not chunk:
                break
            long: list[Line] = []
            if skipping:
                nl = chunk.find(b"\n")
                if nl < 0:
                    skipped += len(chunk)
                    continue
                lineno += 1
                long.append((lineno, None, skipped + nl))
                skipping = False
                chunk = chunk[nl + 1 :]
            cut = chunk.rfind(b"\n")
            if cut < 0:
                buf, whole = buf + chunk, b""
            elif not buf and cut == len(chunk) - 1:  # whole lines already (a shard read at once): no copy
                whole, buf = chunk, b""
            else:  # one copy: the carried-over tail and this chunk's whole lines, each with its newline
                whole, buf = b"".join((buf, memoryview(chunk)[: cut + 1])), chunk[cut + 1 :]
            n = count_newlines(whole) if cut >= 0 else 0
            if n or long:
                yield Block(lineno + 1, whole, n, tuple(long))
                lineno += n
            if len(buf) > opts.max_line_bytes:
                skipping, skipped, buf = True, len(buf), b""
        if skipping:
            yield Block(lineno + 1, b"", 0, ((lineno + 1, None, skipped),))
        elif buf:
            yield Block(lineno + 1, buf, 1)


def parse_block(
    block: Block, name: str, rules: RowRules, max_line_bytes: int, batch_rows: int
) -> tuple[list[pl.DataFrame], list[BadRow]]:
    """The exact path: decode, validate and convert one block line by line."""
    tbl = rules.table
    frames: list[pl.DataFrame] = []
    bad: list[BadRow] = []
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for lineno, line, length in block.lines():
        if line is None or length > max_line_bytes:
            bad.append(
                BadRow.of(
                    name, lineno, Reason("input.line_too_long", f"{length} bytes > limit {max_line_bytes}"), line or b""
                )
            )
            continue
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            continue  # blank lines carry no row
        obj, err = _loads(line)
        row = None
        if err is None:
            row, err = rules.check_object(obj)
        if err is not None or row is None:
            bad.append(BadRow.of(name, lineno, err or Reason("input.invalid_json"), line))
            continue
        rows.append(row)
        lines.append(lineno)
        if len(rows) >= batch_rows:
            frames.append(_frame(rows, lines, name, tbl))
            rows, lines = [], []
    if rows:
        frames.append(_frame(rows, lines, name, tbl))
    return frames, bad


def jsonl_batches(
    path: Path, table: Table, opts: ReadConfig, on_bad: Callable[[BadRow], None], span: Span | None = None
) -> Iterator[pl.DataFrame]:
    name = str(path)
    rules = rules_for(table, opts.required)
    for block in iter_blocks(path, opts, span):
        fast = fast_block(block, name, rules, opts)
        frames, bad = (
            fast if fast is not None else parse_block(block, name, rules, opts.max_line_bytes, opts.batch_rows)
        )
        for b in bad:
            on_bad(b)
        yield from frames


def fast_block(
    block: Block, name: str, rules: RowRules, opts: ReadConfig
) -> tuple[list[pl.DataFrame], list[BadRow]] | None:
    """Polars' native NDJSON reader for a block with nothing unusual in it, else None (the caller then
    parses line by line). Anything the per-line path would quarantine or treat specially (blank or
    over-long lines, CR, surrogate escapes, NULs, nulls in required fields, wrong types, unknown tasks,
    sparse unknown fields, a key named twice in any object of a line) sends the block down the exact path,
    so both paths give the same rows."""
    # Polars skips blank lines (the height check below catches them), reads CRLF, and decodes a lone
    # surrogate escape to NUL (the NUL check catches it): no extra byte scans are needed here.
    if block.n_lines < 64 or block.long_lines:
        return None
    data = block.data
    table = rules.table
    try:  # the schema from every line, not the first hundred: a late field or type is seen
        df = read_ndjson(data, duplicate_keys=False)
    except Exception:  # noqa: BLE001 - any parse problem: let the exact path find and name it
        return None
    if df.height != block.n_lines or "extra" in df.columns or "input_line" in df.columns:
        return None
    known = {c.name: c for c in table.columns}
    unknown = [c for c in df.columns if c not in known]
    for r in opts.required:
        if r not in df.columns or df[r].null_count():
            return None
    for c in df.columns:
        dtype = df.schema[c]
        if c not in known:
            # absent in some rows (the exact path keeps only what is there), or a type Polars may have
            # unified (ints into floats, objects into one struct shape)
            if df[c].null_count() or dtype not in (pl.String, pl.Int64, pl.Boolean):
                return None
        elif not rules.column_ok(c, dtype) or _nul_outside_response(df, c):
            return None
        if dtype == pl.String and not _all_strings(data, c, df[c]):
            return None  # some value was a number, boolean, array or object that Polars turned into text
    if "task" in df.columns and not df["task"].drop_nulls().is_in(list(TASKS)).all():
        return None
    if unknown:
        df = df.with_columns(pl.struct(unknown).struct.json_encode().alias("extra")).drop(unknown)
        if df["extra"].str.contains("\\u0000", literal=True).any():
            return None
    df = df.with_columns(
        pl.int_range(block.first_line, block.first_line + df.height, dtype=pl.Int64).alias("input_line"),
        pl.lit(name).alias("input_file"),
    )
    casts = {c: known[c] for c in df.columns if c in known and df.schema[c] != pl.Null}
    df = df.with_columns([pl.col(c).cast(table.polars_schema()[c]) for c in casts])
    return [df.slice(i, opts.batch_rows) for i in range(0, df.height, opts.batch_rows)], []


# Rows whose types Polars' NDJSON reader infers first (its default); see read_ndjson.
SCHEMA_SAMPLE_ROWS = 100
_FLAT = (pl.String, pl.Int64, pl.Float64, pl.Boolean)


class DuplicateKeys(ValueError):
    """An object of a line (at any depth) names a key twice: Polars keeps the first value, json and orjson
    the last."""


def read_ndjson(data: bytes | memoryview, *, duplicate_keys: bool = True) -> pl.DataFrame:
    """``pl.read_ndjson`` of ``data`` with the schema of every line (Polars' own default looks at the
    first 100 and silently drops a field first seen later), at about the cost of the default.

    Inferring from every line parses each one twice (20k traces: 0.25 of the check's ~8 CPU-s; 32 MB of
    dedup's documents 46 -> 22 ms). The result is the same from the first ``SCHEMA_SAMPLE_ROWS`` lines
    when every line's keys were among theirs (``top_keys``, a compiled scan at ~10 GB/s) and every
    column is flat: a later value of another flat type makes Polars raise (then every line is read
    again, as before), while a nested column can gain a field or an element type unseen (an empty list
    or object first) without an error, so those are read with every line too. Tests:
    tests/io/test_fast_path.py (late keys, types and nested fields past line 100).

    With ``duplicate_keys=False`` an object that names a key twice raises :class:`DuplicateKeys` (the
    fast path then reads the block line by line, as json does); otherwise it is read as Polars reads it."""
    buf = io.BytesIO(data)
    keys = top_keys(data)
    if keys is _DUPLICATE:
        if not duplicate_keys:
            raise DuplicateKeys("an object names a key twice")
        keys = None
    if keys is not None:
        try:
            df = pl.read_ndjson(buf, infer_schema_length=SCHEMA_SAMPLE_ROWS)
        except Exception:  # noqa: BLE001 - a later line disagrees with the sample's types: read it all
            pass
        else:
            if set(df.columns) == keys and all(t in _FLAT for t in df.schema.dtypes()):
                return df
        buf.seek(0)
    return pl.read_ndjson(buf, infer_schema_length=None)


_DUPLICATE: set[str] = set()  # top_keys' answer for an object that names a key twice (compared by identity)


def top_keys(data: bytes | memoryview) -> set[str] | None:
    """Every key of the top-level objects of NDJSON ``data``; None without the compiled scan, or when a
    line is not one object, or the keys are too many for it; ``_DUPLICATE`` when an object at any depth
    names a key twice, or the scan cannot rule it out (a nested key spelled with an escape, deep nesting)."""
    from curate.native import kernels

    k = kernels()
    if k is None:
        return None
    starts, lens = np.empty(1023, np.int64), np.empty(1023, np.int64)
    n = k.json_top_keys(data, starts, lens)
    if n == -3:
        return _DUPLICATE
    if n < 0:
        return None
    raw = memoryview(data).cast("B")
    try:
        spans = zip(starts[:n].tolist(), lens[:n].tolist(), strict=True)
        return {orjson.loads(b'"' + bytes(raw[a : a + b]) + b'"') for a, b in spans}
    except orjson.JSONDecodeError:  # a malformed escape in a key: the parser will say so
        return None


def _nul_outside_response(df: pl.DataFrame, c: str) -> bool:
    return c != "response" and df.schema[c] == pl.String and bool(df[c].str.contains("\x00", literal=True).any())


# What Polars makes of a JSON number, boolean, array or object read into a String column. A column with
# no value of this shape held only strings; only one with such values needs the byte count below.
_COERCED = r"^\s*(?:-?[0-9][0-9.eE+-]*|true|false|\[[\s\S]*\]|\{[\s\S]*\})\s*$"


def _all_strings(data: bytes, name: str, col: pl.Series) -> bool:
    """Whether every non-null value of ``name`` was a JSON string in ``data``. Values that cannot have
    come from anything else settle it at once; otherwise the key followed by a quote must occur exactly
    as often as there are values. Inside a JSON string every quote is escaped, so the key pattern cannot
    match there; a nested object with the same key, spacing other than the compact one and Python's
    ``json.dumps`` default, or an escaped key only make the counts differ, which is the safe answer."""
    if not col.str.contains(_COERCED).any():
        return True
    key, values = orjson.dumps(name), col.len() - col.null_count()
    found = data.count(key + b':"')  # compact (orjson, Polars); Python's json.dumps puts a space after ':'
    return found == values or found + data.count(key + b': "') == values


def _frame(rows: list[dict[str, Any]], lines: list[int], name: str, table: Table) -> pl.DataFrame:
    keys: set[str] = set()
    for r in rows:
        keys.update(r)
    present = {c.name for c in table.columns if c.name in keys}
    cols = {c: [r.get(c) for r in rows] for c in present}
    schema = {c.name: table.polars_schema()[c.name] for c in table.columns if c.name in present}
    df = pl.DataFrame(cols, schema=schema)
    return df.with_columns(pl.Series("input_line", lines, dtype=pl.Int64), pl.lit(name).alias("input_file"))
