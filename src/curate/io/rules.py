"""The one rule set for reading rows, compiled from a table declaration (``schemas/sample.yaml``,
``schemas/prompt.yaml``): which fields are required, what type each field has, which values are refused.

Three readers apply it: the exact JSONL path (one decoded object at a time, :meth:`RowRules.check_object`),
the Polars fast path for JSONL and the Parquet path (whole frames: :meth:`RowRules.column_ok` for a
column's type, :meth:`RowRules.frame_reasons` for per-row refusals). A refusal is a typed
:class:`Reason` (an ``input.`` code from ``schemas/quarantine.yaml`` and a detail), never a string to split.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from curate.errors import CurateError
from curate.schema import Column, Table

RAW_CUT = 4096
TASKS = ("math", "code", "general")
IO_TESTS = pl.List(pl.Struct({"input": pl.String, "output": pl.String}))


class InputError(CurateError):
    """A whole input cannot be read (missing file, unreadable Parquet, ...): one clear line."""


@dataclass(frozen=True, slots=True)
class Reason:
    """Why one row was refused: an ``input.`` code and a human-readable detail."""

    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BadRow:
    file: str
    line: int
    reason: str
    detail: str
    raw: str

    @classmethod
    def of(cls, file: str, line: int, reason: Reason, raw: bytes | str = b"") -> BadRow:
        return cls(file, line, reason.code, reason.detail, cut(raw))

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"file": self.file, "line": self.line, "reason": self.reason, "detail": self.detail, "raw": self.raw}
        )


@dataclass(frozen=True, slots=True)
class ReadConfig:
    batch_rows: int = 8192
    chunk_bytes: int = 32 << 20
    max_line_bytes: int = 64 << 20
    required: tuple[str, ...] = ("prompt", "response")


def cut(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw[:RAW_CUT].decode("utf-8", "replace")
    return raw[:RAW_CUT]


def _kind(col: Column) -> str:
    if col.type in ("string", "json"):
        return "string"
    if col.type in ("int32", "int64"):
        return "int"
    if col.type in ("float32", "float64"):
        return "float"
    if col.type == "bool":
        return "bool"
    if col.name == "io_tests":
        return "io_tests"
    return "other"  # timestamps etc.: cast by conform()


class RowRules:
    """The rules of one table, compiled once (see :func:`rules_for`)."""

    def __init__(self, table: Table, required: Sequence[str]) -> None:
        self.table = table
        self.known = {c.name: c for c in table.columns}
        self.kinds = {c.name: _kind(c) for c in table.columns}
        self.required = tuple(r for r in required if r in self.known)

    # -- one decoded JSON object (the exact path) ---------------------------------------------------------
    def check_object(self, obj: Any) -> tuple[dict[str, Any] | None, Reason | None]:
        """``(row, None)`` for a readable object, ``(None, reason)`` otherwise."""
        if not isinstance(obj, dict):
            return None, Reason("input.not_object", f"got JSON {type(obj).__name__}")
        for name in self.required:
            if obj.get(name) is None:
                return None, Reason("input.missing_field", f"missing {name!r}")
        row: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in obj.items():
            col = self.known.get(k)
            if col is None or k == "extra":
                extra[k] = v
                continue
            if v is None:
                row[k] = None
                continue
            v, why = self.check_value(col, v)
            if why is not None:
                return None, why
            row[k] = v
        task = row.get("task")
        if task is not None and task not in TASKS:
            return None, Reason("input.unknown_task", f"task {task!r} is not one of {', '.join(TASKS)}")
        if isinstance(obj.get("extra"), dict):
            extra = {**obj["extra"], **{k: v for k, v in extra.items() if k != "extra"}}
        if extra:
            row["extra"] = orjson.dumps(extra).decode()
        return row, None

    def check_value(self, col: Column, v: Any) -> tuple[Any, Reason | None]:
        """A non-null value of a declared column: the value to keep, or why the row is refused."""
        k, kind = col.name, self.kinds[col.name]
        if kind == "string":
            if isinstance(v, str):
                pass
            elif k == "reference" and isinstance(v, int | float) and not isinstance(v, bool):
                v = repr(v) if isinstance(v, float) else str(v)  # numeric gold answers are common
            elif col.type == "json":
                v = orjson.dumps(v).decode()
            else:
                return None, Reason("input.wrong_type", f"{k!r} must be a string, got {type(v).__name__}")
            if "\x00" in v and k != "response":  # a response's NULs are model output: format.control_chars
                return None, Reason("input.nul_byte", f"NUL character in {k!r}")
            return v, None
        if kind == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                return None, Reason("input.wrong_type", f"{k!r} must be an integer, got {type(v).__name__}")
            return v, None
        if kind == "float":
            if isinstance(v, bool) or not isinstance(v, int | float):
                return None, Reason("input.wrong_type", f"{k!r} must be a number, got {type(v).__name__}")
            return float(v), None
        if kind == "bool":
            if not isinstance(v, bool):
                return None, Reason("input.wrong_type", f"{k!r} must be a boolean")
            return v, None
        if kind == "io_tests":
            if not isinstance(v, list) or not all(
                isinstance(t, dict) and isinstance(t.get("input"), str) and isinstance(t.get("output"), str) for t in v
            ):
                return None, Reason("input.wrong_type", "'io_tests' must be a list of {input, output} strings")
            return [{"input": t["input"], "output": t["output"]} for t in v], None
        return v, None

    # -- whole frames (the fast JSONL path and Parquet) ---------------------------------------------------
    def column_ok(self, name: str, dtype: pl.DataType) -> bool:
        """Whether a column read with ``dtype`` holds values the exact path would accept as they are."""
        kind = self.kinds[name]
        if dtype == pl.Null:
            return True
        if kind == "string":
            return dtype == pl.String
        if kind == "int":
            return dtype.is_integer()
        if kind == "float":
            return dtype.is_numeric()
        if kind == "bool":
            return dtype == pl.Boolean
        if kind == "io_tests":
            return dtype == IO_TESTS
        return isinstance(dtype, pl.Datetime) if self.known[name].type == "timestamp" else False

    def frame_reasons(self, df: pl.DataFrame) -> pl.Series:
        """Per row, the first refusal (a ``code`` and ``detail`` struct) or null: required fields, wrong
        column types, unknown tasks, NULs outside the response. The frame's columns are as read."""
        code, detail = pl.lit(None, pl.String), pl.lit(None, pl.String)

        def refuse(mask: pl.Expr, reason: Reason) -> None:
            nonlocal code, detail
            code = pl.when(mask).then(pl.lit(reason.code)).otherwise(code)
            detail = pl.when(mask).then(pl.lit(reason.detail)).otherwise(detail)

        for c in df.columns:
            if c in self.known and not self.column_ok(c, df.schema[c]):
                why = f"{c!r} has the wrong type ({df.schema[c]}, declared {self.known[c].type})"
                refuse(pl.col(c).is_not_null(), Reason("input.wrong_type", why))
        for c in df.columns:
            if self.kinds.get(c) == "string" and c != "response" and df.schema[c] == pl.String:
                refuse(
                    pl.col(c).str.contains("\x00", literal=True).fill_null(False),
                    Reason("input.nul_byte", f"NUL character in {c!r}"),
                )
        if "task" in df.columns and df.schema["task"] == pl.String:
            refuse(
                pl.col("task").is_not_null() & ~pl.col("task").is_in(list(TASKS)),
                Reason("input.unknown_task", "task outside math|code|general"),
            )
        for r in reversed(self.required):
            refuse(
                pl.col(r).is_null() if r in df.columns else pl.lit(True),
                Reason("input.missing_field", f"missing {r!r}"),
            )
        return df.select(pl.struct(code.alias("code"), detail.alias("detail")).alias("reason")).to_series()


@functools.cache
def rules_for(table: Table, required: tuple[str, ...]) -> RowRules:
    return RowRules(table, required)


__all__ = ["RAW_CUT", "TASKS", "BadRow", "InputError", "Reason", "ReadConfig", "RowRules", "cut", "rules_for"]


ReadOptions = ReadConfig  # the old name, kept while other branches still import it
