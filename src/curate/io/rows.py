"""Reading samples (or prompts) from JSONL and Parquet, in bounded batches, with a quarantine.

Every row either comes out in a batch conforming to the declared table or goes to the ``on_bad``
callback with its 1-based line number and an ``input.`` reason code; nothing is dropped silently.
Unknown fields are kept as a JSON object in the ``extra`` column (their types are never guessed into
the schema). Memory stays bounded: files are read in chunks, and an over-long line is skipped while
streaming, never held whole.
"""

from __future__ import annotations

import codecs
import io
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.parquet as pq
import xxhash

from curate.errors import CurateError
from curate.schema import Table
from curate.schema import table as schema_table

RAW_CUT = 4096
TASKS = ("math", "code", "general")
BOM = codecs.BOM_UTF8


class InputError(CurateError):
    """A whole input cannot be read (missing file, unreadable Parquet, ...): one clear line."""


@dataclass(frozen=True, slots=True)
class BadRow:
    file: str
    line: int
    reason: str
    detail: str
    raw: str

    def to_json(self) -> bytes:
        return orjson.dumps({"file": self.file, "line": self.line, "reason": self.reason,
                             "detail": self.detail, "raw": self.raw})


@dataclass(slots=True)
class ReadStats:
    rows_ok: int = 0
    rows_bad: int = 0
    bad_by_reason: Counter[str] = field(default_factory=Counter)
    duplicate_ids: int = 0  # rows whose sample_id was already read (kept, marked input.duplicate_id)

    def bad(self, row: BadRow) -> None:
        self.rows_bad += 1
        self.bad_by_reason[row.reason] += 1


@dataclass(frozen=True, slots=True)
class ReadOptions:
    batch_rows: int = 8192
    chunk_bytes: int = 32 << 20
    max_line_bytes: int = 64 << 20
    required: tuple[str, ...] = ("prompt", "response")


def content_id(*parts: str | None) -> str:
    """Stable 128-bit hex id from text parts (xxh3; NUL-separated so ("ab","c") != ("a","bc"))."""
    h = xxhash.xxh3_128()
    for p in parts:
        h.update((p or "").encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _cut(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw[:RAW_CUT].decode("utf-8", "replace")
    return raw[:RAW_CUT]


# ---- row validation ------------------------------------------------------------------------------------


class _RowCheck:
    """Validates one decoded JSON object against a table; returns (row, None) or (None, (reason, detail))."""

    def __init__(self, table: Table, required: Sequence[str]) -> None:
        self.table = table
        self.known = {c.name: c for c in table.columns}
        self.required = tuple(r for r in required if r in self.known)
        self.strings = {c.name for c in table.columns if c.type in ("string", "json")}
        self.ints = {c.name for c in table.columns if c.type in ("int32", "int64")}
        self.floats = {c.name for c in table.columns if c.type in ("float32", "float64")}

    def __call__(self, obj: Any) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
        if not isinstance(obj, dict):
            return None, ("input.not_object", f"got JSON {type(obj).__name__}")
        for name in self.required:
            if obj.get(name) is None:
                return None, ("input.missing_field", f"missing {name!r}")
        row: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in obj.items():
            col = self.known.get(k)
            if col is None or k == "extra":
                extra[k] = v
                continue
            if v is None:
                row[k] = None
            elif k in self.strings:
                if isinstance(v, str):
                    pass
                elif k == "reference" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    v = repr(v) if isinstance(v, float) else str(v)  # numeric gold answers are common
                elif col.type == "json":
                    v = orjson.dumps(v).decode()
                else:
                    return None, ("input.wrong_type", f"{k!r} must be a string, got {type(v).__name__}")
                if "\x00" in v and k != "response":  # a response's NULs are model output: format.control_chars
                    return None, ("input.nul_byte", f"NUL character in {k!r}")
                row[k] = v
            elif k in self.ints:
                if isinstance(v, bool) or not isinstance(v, int):
                    return None, ("input.wrong_type", f"{k!r} must be an integer, got {type(v).__name__}")
                row[k] = v
            elif k in self.floats:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    return None, ("input.wrong_type", f"{k!r} must be a number, got {type(v).__name__}")
                row[k] = float(v)
            elif col.type == "bool":
                if not isinstance(v, bool):
                    return None, ("input.wrong_type", f"{k!r} must be a boolean")
                row[k] = v
            elif k == "io_tests":
                if not isinstance(v, list) or not all(
                    isinstance(t, dict) and isinstance(t.get("input"), str) and isinstance(t.get("output"), str)
                    for t in v
                ):
                    return None, ("input.wrong_type", "'io_tests' must be a list of {input, output} strings")
                row[k] = [{"input": t["input"], "output": t["output"]} for t in v]
            else:
                row[k] = v  # timestamps etc.: cast by conform()
        task = row.get("task")
        if task is not None and task not in TASKS:
            return None, ("input.unknown_task", f"task {task!r} is not one of {', '.join(TASKS)}")
        if isinstance(obj.get("extra"), dict):
            extra = {**obj["extra"], **{k: v for k, v in extra.items() if k != "extra"}}
        if extra:
            row["extra"] = orjson.dumps(extra).decode()
        return row, None


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


def _loads(line: bytes) -> tuple[Any, tuple[str, str] | None]:
    try:
        return orjson.loads(line), None
    except orjson.JSONDecodeError as e:
        msg = str(e)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as ue:
            return None, ("input.invalid_utf8", str(ue))
        if "surrogate" in msg:
            return None, ("input.lone_surrogate", msg)
        # orjson rejects lone surrogates; the stdlib is lenient, so tell the two cases apart.
        import json

        try:
            obj = json.loads(line)
        except ValueError:
            return None, ("input.invalid_json", msg)
        if _has_lone_surrogate(obj):
            return None, ("input.lone_surrogate", "unpaired UTF-16 surrogate in a string")
        return obj, None


# ---- JSONL ----------------------------------------------------------------------------------------------


Line = tuple[int, bytes | None, int]  # (line number, bytes or None when too long, length)


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines read at once: ``data`` starts at line ``first_line``; ``long_lines`` were skipped."""

    first_line: int
    data: bytes
    n_lines: int
    long_lines: tuple[Line, ...] = ()

    def lines(self) -> list[Line]:
        out: list[Line] = list(self.long_lines)
        if self.data:
            out += [(self.first_line + i, line, len(line)) for i, line in enumerate(self.data.split(b"\n"))]
        return sorted(out, key=lambda x: x[0])


def _iter_blocks(path: Path, opts: ReadOptions) -> Iterator[Block]:
    """Yield blocks of whole lines, numbered, without ever holding an over-long line."""
    lineno = 0  # lines yielded so far
    buf = b""
    skipping = False
    skipped = 0
    first = True
    with path.open("rb") as f:
        while True:
            chunk = f.read(opts.chunk_bytes)
            if first:
                if chunk.startswith(BOM):  # a leading BOM is an encoding artifact, not data
                    chunk = chunk[len(BOM):]
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
                chunk = chunk[nl + 1:]
            cut = chunk.rfind(b"\n")
            if cut < 0:
                buf, whole = buf + chunk, b""
            else:  # one copy: the carried-over tail and this chunk's whole lines
                whole, buf = b"".join((buf, memoryview(chunk)[:cut])), chunk[cut + 1:]
            n = whole.count(b"\n") + 1 if cut >= 0 else 0
            if n or long:
                yield Block(lineno + 1, whole, n, tuple(long))
                lineno += n
            if len(buf) > opts.max_line_bytes:
                skipping, skipped, buf = True, len(buf), b""
        if skipping:
            yield Block(lineno + 1, b"", 0, ((lineno + 1, None, skipped),))
        elif buf:
            yield Block(lineno + 1, buf, 1)


def _parse_block(block: Block, name: str, table_name: str, required: tuple[str, ...], max_line_bytes: int,
                 batch_rows: int) -> tuple[list[pl.DataFrame], list[BadRow]]:
    """Validate and convert one block of lines (pure; runs in a worker process for large files)."""
    tbl = schema_table(table_name)
    check = _RowCheck(tbl, required)
    frames: list[pl.DataFrame] = []
    bad: list[BadRow] = []
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for lineno, line, length in block.lines():
        if line is None or length > max_line_bytes:
            bad.append(BadRow(name, lineno, "input.line_too_long", f"{length} bytes > limit {max_line_bytes}",
                              _cut(line or b"")))
            continue
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            continue  # blank lines carry no row
        obj, err = _loads(line)
        if err is None:
            row, err = check(obj)
        if err is not None or row is None:
            reason, detail = err or ("input.invalid_json", "")
            bad.append(BadRow(name, lineno, reason, detail, _cut(line)))
            continue
        rows.append(row)
        lines.append(lineno)
        if len(rows) >= batch_rows:
            frames.append(_frame(rows, lines, name, tbl))
            rows, lines = [], []
    if rows:
        frames.append(_frame(rows, lines, name, tbl))
    return frames, bad


def _jsonl_batches(path: Path, table: Table, opts: ReadOptions,
                   on_bad: Callable[[BadRow], None]) -> Iterator[pl.DataFrame]:
    name = str(path)
    for block in _iter_blocks(path, opts):
        fast = _fast_block(block, name, table, opts)
        frames, bad = fast if fast is not None else _parse_block(
            block, name, table.name, opts.required, opts.max_line_bytes, opts.batch_rows)
        for b in bad:
            on_bad(b)
        yield from frames


def _fast_block(block: Block, name: str, table: Table, opts: ReadOptions
                ) -> tuple[list[pl.DataFrame], list[BadRow]] | None:
    """Polars' native NDJSON reader for a block with nothing unusual in it, else None (the caller then
    parses line by line). Anything the per-line path would quarantine or treat specially (blank or
    over-long lines, CR, surrogate escapes, NULs, nulls in required fields, wrong types, unknown tasks,
    sparse unknown fields) sends the block down the exact path, so both paths give the same rows."""
    # Polars skips blank lines (the height check below catches them), reads CRLF, and decodes a lone
    # surrogate escape to NUL (the NUL check catches it): no extra byte scans are needed here.
    if block.n_lines < 64 or block.long_lines:
        return None
    data = block.data
    try:
        df = pl.read_ndjson(io.BytesIO(data))
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
        col = known.get(c)
        dtype = df.schema[c]
        if col is None:
            if df[c].null_count():
                return None  # absent in some rows: the exact path keeps only what is there
            continue
        if dtype == pl.Null:
            continue
        if col.type in ("string", "json"):
            if dtype != pl.String or (c != "response" and df[c].str.contains("\x00", literal=True).any()):
                return None
        elif col.type in ("int32", "int64"):
            if not dtype.is_integer():
                return None
        elif col.type in ("float32", "float64"):
            if not dtype.is_numeric():
                return None
        elif col.type == "bool":
            if dtype != pl.Boolean:
                return None
        elif c == "io_tests":
            if dtype != pl.List(pl.Struct({"input": pl.String, "output": pl.String})):
                return None
        else:
            return None
    if "task" in df.columns and not df["task"].drop_nulls().is_in(list(TASKS)).all():
        return None
    if unknown:
        df = df.with_columns(pl.struct(unknown).struct.json_encode().alias("extra")).drop(unknown)
        if df["extra"].str.contains("\\u0000", literal=True).any():
            return None
    df = df.with_columns(pl.int_range(block.first_line, block.first_line + df.height, dtype=pl.Int64)
                         .alias("input_line"),
                         pl.lit(name).alias("input_file"))
    casts = {c: known[c] for c in df.columns if c in known and df.schema[c] != pl.Null}
    df = df.with_columns([pl.col(c).cast(table.polars_schema()[c]) for c in casts])
    return [df.slice(i, opts.batch_rows) for i in range(0, df.height, opts.batch_rows)], []


def _frame(rows: list[dict[str, Any]], lines: list[int], name: str, table: Table) -> pl.DataFrame:
    keys: set[str] = set()
    for r in rows:
        keys.update(r)
    present = {c.name for c in table.columns if c.name in keys}
    cols = {c: [r.get(c) for r in rows] for c in present}
    schema = {c.name: table.polars_schema()[c.name] for c in table.columns if c.name in present}
    df = pl.DataFrame(cols, schema=schema)
    return df.with_columns(pl.Series("input_line", lines, dtype=pl.Int64), pl.lit(name).alias("input_file"))


# ---- Parquet --------------------------------------------------------------------------------------------


def _parquet_batches(path: Path, table: Table, opts: ReadOptions,
                     on_bad: Callable[[BadRow], None]) -> Iterator[pl.DataFrame]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - any pyarrow failure means "not a readable Parquet file"
        raise InputError(f"{path}: not a readable Parquet file ({e})") from e
    known = set(table.names)
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
        unknown = [c for c in df.columns if c not in known and c not in ("input_line", "input_file")]
        if unknown:
            df = df.with_columns(pl.struct(unknown).struct.json_encode().alias("extra")).drop(unknown)
        bad = pl.lit(None, pl.String)
        for r in opts.required:
            bad = pl.when(pl.col(r).is_null()).then(pl.lit(f"input.missing_field:missing {r!r}")).otherwise(bad)
        if "task" in df.columns:
            bad = pl.when(pl.col("task").is_not_null() & ~pl.col("task").is_in(list(TASKS))).then(
                pl.lit("input.unknown_task:task outside math|code|general")).otherwise(bad)
        for c in ("prompt",):  # NULs in a response are the model's: the format check rejects them
            if c in df.columns and df.schema[c] == pl.String:
                bad = pl.when(pl.col(c).str.contains("\x00", literal=True)).then(
                    pl.lit(f"input.nul_byte:NUL character in {c!r}")).otherwise(bad)
        df = df.with_columns(bad.alias("_bad"))
        for row in df.filter(pl.col("_bad").is_not_null()).select("input_line", "_bad").iter_rows():
            reason, _, detail = row[1].partition(":")
            on_bad(BadRow(name, row[0], reason, detail, ""))
        good = df.filter(pl.col("_bad").is_null()).drop("_bad")
        if good.height:
            yield good.with_columns(pl.lit(name).alias("input_file"))


# ---- entry point ----------------------------------------------------------------------------------------


def read_batches(paths: Sequence[str | Path], table: Table, *, on_bad: Callable[[BadRow], None],
                 options: ReadOptions | None = None) -> Iterator[pl.DataFrame]:
    """Yield frames of at most ``batch_rows`` good rows from each input, in order.

    Frames hold the table's columns that the input had (plus ``extra``, ``input_line``,
    ``input_file``); ids and defaults are filled by :func:`fill_ids`. Raises InputError for an input
    that cannot be read at all.
    """
    opts = options or ReadOptions()
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a directory")
        suffix = path.suffix.lower()
        try:
            if suffix in (".parquet", ".pq"):
                yield from _parquet_batches(path, table, opts, on_bad)
            elif suffix in (".jsonl", ".json", ".ndjson"):
                yield from _jsonl_batches(path, table, opts, on_bad)
            else:
                raise InputError(f"{path}: unknown format (expected .jsonl or .parquet)")
        except PermissionError as e:
            raise InputError(f"{path}: cannot read ({e.strerror})") from e


def fill_ids(df: pl.DataFrame) -> pl.DataFrame:
    """Derive ``prompt_id`` from the prompt text and ``sample_id`` from (prompt_id, response) when absent."""
    if "prompt_id" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.String).alias("prompt_id"))
    if df["prompt_id"].null_count():
        ids = [pid if pid is not None else content_id(p)
               for pid, p in zip(df["prompt_id"].to_list(), df["prompt"].to_list(), strict=True)]
        df = df.with_columns(pl.Series("prompt_id", ids, dtype=pl.String))
    if "response" in df.columns:
        if "sample_id" not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias("sample_id"))
        if df["sample_id"].null_count():
            ids = [sid if sid is not None else content_id(pid, r)
                   for sid, pid, r in zip(df["sample_id"].to_list(), df["prompt_id"].to_list(),
                                          df["response"].to_list(), strict=True)]
            df = df.with_columns(pl.Series("sample_id", ids, dtype=pl.String))
    return df
