"""Schemas are declared once in schemas/ and drive Arrow, Polars, validation and DuckDB types."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from curate.schema import SchemaError, check_decls, duckdb_type, reason_codes, table


def test_checked_sample_extends_sample_and_every_check() -> None:
    sample = table("sample")
    checked = table("checked_sample")
    assert checked.names[: len(sample.names)] == sample.names
    for decl in check_decls().values():
        for col in decl.columns:
            assert col.name in checked.names


def test_arrow_schema_carries_name_and_version() -> None:
    schema = table("sample").arrow_schema()
    assert schema.metadata[b"curate.schema"] == b"sample@1"
    assert schema.field("io_tests").type == pa.large_list(
        pa.struct([("input", pa.large_string()), ("output", pa.large_string())])
    )


def test_every_reason_code_is_prefixed_and_explained() -> None:
    codes = reason_codes()
    assert "format.truncated" in codes and "input.invalid_json" in codes and "select.over_k" in codes
    for code, meaning in codes.items():
        prefix = code.split(".")[0]
        assert prefix in {*check_decls(), "input", "select"}, code
        assert meaning.strip(), code


def test_conform_fills_defaults_and_rejects_bad_enum() -> None:
    t = table("sample")
    df = pl.DataFrame(
        {"sample_id": ["s"], "prompt_id": ["p"], "prompt": ["q"], "response": ["r"], "task": [None]},
        schema_overrides={"task": pl.String},
    )
    out = t.conform(df)
    assert out["task"].to_list() == ["general"] and out["language"].to_list() == ["en"]
    assert out.columns == list(t.names)
    with pytest.raises(SchemaError, match="task"):
        t.conform(df.with_columns(pl.lit("poetry").alias("task")))
    with pytest.raises(SchemaError, match="response"):
        t.conform(df.drop("response"))


def test_duckdb_types() -> None:
    assert duckdb_type("list<struct<input:string,output:string>>") == 'STRUCT("input" VARCHAR, "output" VARCHAR)[]'
    assert duckdb_type("timestamp") == "TIMESTAMPTZ"
