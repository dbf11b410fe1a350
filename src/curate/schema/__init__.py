"""Tables and reason codes, loaded from the YAML declarations in ``schemas/``.

Every table the project writes is declared once there; this module derives the Arrow schema used for
Parquet (with ``curate.schema`` = ``name@version`` in the file metadata), the Polars schema, the
conformance step applied before writing (``conform``), and DuckDB types. Nothing is inferred from data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import yaml

from curate.errors import CurateError
from curate.schemas import ROOT

SCHEMA_DIR: Path = ROOT
METADATA_KEY = b"curate.schema"


class SchemaError(CurateError, ValueError):
    """A frame does not conform to its declared table."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    doc: str = ""
    enum: tuple[str, ...] | None = None
    default: Any = None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    version: int
    columns: tuple[Column, ...]
    description: str = ""

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.tag} has no column {name!r}")

    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in self.columns]
        return pa.schema(fields, metadata={METADATA_KEY: self.tag.encode()})

    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: polars_type(c.type) for c in self.columns})

    def extend(self, name: str, version: int, columns: Iterable[Column], description: str = "") -> Table:
        own = {c.name for c in self.columns}
        extra = [c for c in columns if c.name not in own]
        return Table(name, version, self.columns + tuple(extra), description or self.description)

    def conform(self, df: pl.DataFrame) -> pl.DataFrame:
        """Select, order and cast ``df`` to this table; add absent nullable columns as nulls.

        Raises SchemaError for a missing non-nullable column, nulls in a non-nullable column, a value
        outside an enum, or a cast that would lose data.
        """
        exprs: list[pl.Expr] = []
        for c in self.columns:
            dtype = polars_type(c.type)
            if c.name in df.columns:
                e = pl.col(c.name).cast(dtype, strict=True)
                exprs.append(e.fill_null(pl.lit(c.default, dtype=dtype)) if c.default is not None else e)
            elif c.default is not None:
                exprs.append(pl.lit(c.default, dtype=dtype).alias(c.name))
            elif c.nullable:
                exprs.append(pl.lit(None, dtype=dtype).alias(c.name))
            else:
                raise SchemaError(f"{self.tag}: missing required column {c.name!r}")
        try:
            out = df.select(exprs)
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as e:
            raise SchemaError(f"{self.tag}: {e}") from e
        for c in self.columns:
            if not c.nullable and out[c.name].null_count():
                raise SchemaError(f"{self.tag}: column {c.name!r} has nulls")
            if c.enum is not None:
                bad = out.filter(pl.col(c.name).is_not_null() & ~pl.col(c.name).is_in(list(c.enum)))
                if bad.height:
                    raise SchemaError(f"{self.tag}: {c.name!r} outside {list(c.enum)}: {bad[c.name][0]!r}")
        return out

    def to_arrow(self, df: pl.DataFrame) -> pa.Table:
        """Conform and convert to an Arrow table carrying this schema and its metadata."""
        return self.conform(df).to_arrow().cast(self.arrow_schema())

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema())


# ---- type expressions ------------------------------------------------------------------------------

_SCALARS_ARROW: dict[str, pa.DataType] = {
    "string": pa.large_string(),
    "json": pa.large_string(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_SCALARS_POLARS: dict[str, pl.DataType] = {
    "string": pl.String(),
    "json": pl.String(),
    "bool": pl.Boolean(),
    "int32": pl.Int32(),
    "int64": pl.Int64(),
    "float32": pl.Float32(),
    "float64": pl.Float64(),
    "timestamp": pl.Datetime("us", "UTC"),
}
_SCALARS_DUCKDB = {
    "string": "VARCHAR",
    "json": "VARCHAR",
    "bool": "BOOLEAN",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "timestamp": "TIMESTAMPTZ",
}


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


_COMPOUND = re.compile(r"^(list|struct)<(.*)>$")


def _parse(t: str) -> tuple[str, Any]:
    t = t.strip()
    if t in _SCALARS_ARROW:
        return ("scalar", t)
    m = _COMPOUND.match(t)
    if not m:
        raise SchemaError(f"unknown column type {t!r}")
    if m.group(1) == "list":
        return ("list", _parse(m.group(2)))
    fields = []
    for part in _split_top(m.group(2)):
        name, _, sub = part.partition(":")
        fields.append((name.strip(), _parse(sub)))
    return ("struct", fields)


def _arrow(p: tuple[str, Any]) -> pa.DataType:
    kind, arg = p
    if kind == "scalar":
        return _SCALARS_ARROW[arg]
    if kind == "list":
        return pa.large_list(_arrow(arg))
    return pa.struct([pa.field(n, _arrow(sub)) for n, sub in arg])


def _polars(p: tuple[str, Any]) -> pl.DataType:
    kind, arg = p
    if kind == "scalar":
        return _SCALARS_POLARS[arg]
    if kind == "list":
        return pl.List(_polars(arg))
    return pl.Struct({n: _polars(sub) for n, sub in arg})


def _duckdb(p: tuple[str, Any]) -> str:
    kind, arg = p
    if kind == "scalar":
        return _SCALARS_DUCKDB[arg]
    if kind == "list":
        return f"{_duckdb(arg)}[]"
    return "STRUCT(" + ", ".join(f'"{n}" {_duckdb(sub)}' for n, sub in arg) + ")"


def arrow_type(t: str) -> pa.DataType:
    return _arrow(_parse(t))


def polars_type(t: str) -> pl.DataType:
    return _polars(_parse(t))


def duckdb_type(t: str) -> str:
    return _duckdb(_parse(t))


# ---- loading -----------------------------------------------------------------------------------------


def _columns(raw: Iterable[Mapping[str, Any]]) -> tuple[Column, ...]:
    cols = []
    for c in raw:
        enum = tuple(c["enum"]) if c.get("enum") else None
        col = Column(c["name"], c["type"], bool(c.get("nullable", True)), c.get("doc", ""), enum, c.get("default"))
        _parse(col.type)  # fail at load time on a bad type
        cols.append(col)
    return tuple(cols)


# libyaml's loader when PyYAML was built with it (ten times faster: every run reads the declarations)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        data = yaml.load(f, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: not a mapping")
    return data


@dataclass(frozen=True, slots=True)
class CheckDecl:
    """A check's declared score columns and reason codes (schemas/checks/<check>.yaml)."""

    check: str
    description: str
    columns: tuple[Column, ...]
    reasons: Mapping[str, str]
    # ``enabled: false`` in the YAML: the check runs only when a config enables it (the registry knows
    # this without importing the check's modules; the class's ``default_enabled`` must agree).
    enabled: bool = True


@functools.cache
def check_decls() -> dict[str, CheckDecl]:
    out: dict[str, CheckDecl] = {}
    for path in sorted((SCHEMA_DIR / "checks").glob("*.yaml")):
        data = _read(path)
        name = data["check"]
        reasons = dict(data.get("reasons") or {})
        for code in reasons:
            if not code.startswith(name + "."):
                raise SchemaError(f"{path}: reason {code!r} must start with {name + '.'!r}")
        columns = _columns(data.get("columns") or [])
        out[name] = CheckDecl(name, data.get("description", ""), columns, reasons, bool(data.get("enabled", True)))
    return out


@functools.cache
def table(name: str) -> Table:
    """The declared table ``name``; ``checked_sample`` includes every check's columns."""
    data = _read(SCHEMA_DIR / f"{name}.yaml")
    cols = _columns(data.get("columns") or [])
    base = data.get("extends")
    if base:
        t = table(base).extend(name, int(data["version"]), cols, data.get("description", ""))
    else:
        t = Table(name, int(data["version"]), cols, data.get("description", ""))
    if name == "checked_sample":
        for decl in check_decls().values():
            t = t.extend(t.name, t.version, decl.columns)
    return t


@functools.cache
def catalog_tables() -> dict[str, Table]:
    """The tables of ``catalog.duckdb`` (``datasets``, ``runs``, ...), declared in ``dataset_catalog.yaml``."""
    data = _read(SCHEMA_DIR / "dataset_catalog.yaml")
    out = {str(data.get("catalog_table", "datasets")): table("dataset_catalog")}
    for name, decl in (data.get("tables") or {}).items():
        out[str(name)] = Table(
            f"{name}_catalog", int(data["version"]), _columns(decl.get("columns") or []), decl.get("description", "")
        )
    return out


@functools.cache
def reason_codes() -> dict[str, str]:
    """Every reason code with its one-line meaning: check codes, the ``input.`` quarantine codes and the
    ``select.`` codes of recipe decisions."""
    codes: dict[str, str] = {}
    for decl in check_decls().values():
        codes.update(decl.reasons)
    codes.update(_read(SCHEMA_DIR / "quarantine.yaml").get("reasons") or {})
    codes.update(_read(SCHEMA_DIR / "selection.yaml").get("reasons") or {})
    return codes


def schema_tag(path: str | Path) -> str | None:
    """The ``name@version`` recorded in a Parquet file's metadata, if any."""
    import pyarrow.parquet as pq

    # The footer's key-value metadata: pyarrow's writer puts the schema's metadata there and in the
    # embedded Arrow schema; Polars' sink (curate.checks.streams.sink_frames) only there.
    md = pq.read_metadata(path).metadata or {}
    tag = md.get(METADATA_KEY)
    return tag.decode() if tag else None
