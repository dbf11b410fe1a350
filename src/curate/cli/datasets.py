"""``curate datasets``, ``query``, ``export``, ``catalog``: read what the store holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table as RichTable

from curate.checks.funnel import Funnel
from curate.cli.app import UserError, app, console, datasets_app, print_funnel, store_from


@datasets_app.command("list")
def datasets_list(ctx: typer.Context) -> None:
    """Every published version, newest last."""
    store = store_from(ctx)
    t = RichTable(title=f"datasets in {store.home}")
    for col in ("name", "version", "kind", "rows", "created_at", "parents"):
        t.add_column(col, justify="right" if col in ("version", "rows") else "left")
    for dv in store.all_versions():
        m = dv.manifest
        t.add_row(m.name, str(m.version), m.kind, f"{m.rows:,}", m.created_at, ", ".join(m.parents))
    console.print(t)


@datasets_app.command("show")
def datasets_show(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION")]) -> None:
    """A version's manifest: rows, funnel, config, parents, files."""
    dv = store_from(ctx).get(ref)
    m = dv.manifest
    console.print(f"[bold]{m.ref}[/] kind={m.kind} schema={m.schema} rows={m.rows:,} created={m.created_at}")
    console.print(f"path: {dv.path}")
    if m.parents:
        console.print(f"parents: {', '.join(m.parents)}")
    if m.source:
        console.print(f"source: {orjson.dumps(m.source).decode()}")
    console.print(f"config hash: {m.config_hash}  code: {m.code_version}")
    if m.funnel:
        print_funnel(Funnel.from_dict(m.funnel))
    for f in m.files:
        console.print(f"  {f.path}  {f.rows:,} rows  {f.bytes:,} B  sha256 {f.sha256[:16]}…")


@app.command("query")
def query_command(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="SQL over the catalog: datasets table and one view per dataset")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | csv | json | parquet")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows shown in table format")] = 50,
) -> None:
    """Run SQL with DuckDB against the store's catalog."""
    import duckdb

    if fmt not in ("table", "csv", "json", "parquet"):
        raise UserError(f"--format must be table, csv, json or parquet, not {fmt!r}")
    if fmt == "parquet" and out is None:
        raise UserError("--format parquet needs --out FILE")
    from curate.store.catalog import check_read_only

    store = store_from(ctx)
    con = store.connect(read_only=True)
    try:
        check_read_only(con, sql)
        rel = con.sql(sql)
    except duckdb.Error as e:
        con.close()
        raise UserError(f"query failed: {str(e).splitlines()[0]}") from e
    except BaseException:
        con.close()
        raise
    try:
        if rel is None:
            return
        df = rel.pl()
    except duckdb.Error as e:
        raise UserError(f"query failed: {str(e).splitlines()[0]}") from e
    finally:
        con.close()
    if fmt == "parquet":
        assert out is not None
        df.write_parquet(out)
        console.print(f"{df.height:,} rows -> {out}")
    elif fmt == "csv":
        text = df.write_csv()
        _emit(text, out)
    elif fmt == "json":
        text = "".join(orjson.dumps(r, default=str).decode() + "\n" for r in df.iter_rows(named=True))
        _emit(text, out)
    else:
        if out is not None:
            raise UserError("--out needs --format csv, json or parquet")
        t = RichTable()
        for c in df.columns:
            t.add_column(c)
        for row in df.head(limit).iter_rows():
            t.add_row(*[_cell(v) for v in row])
        console.print(t)
        if df.height > limit:
            console.print(f"… {df.height - limit:,} more rows (use --limit or --format csv)")


def _cell(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "…"


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"-> {out}")


@app.command("export")
def export_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION] of an SFT or RL dataset")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="openrlhf (JSONL) | jsonl | parquet")] = "openrlhf",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file")] = Path("export.jsonl"),
) -> None:
    """Write a dataset version in a trainer's format (the version itself is already TRL/verl-ready Parquet)."""
    from curate.recipes import to_openrlhf_jsonl

    df = store_from(ctx).get(ref).scan().collect()
    if fmt == "openrlhf":
        out.write_bytes(to_openrlhf_jsonl(df))
    elif fmt == "jsonl":
        df.write_ndjson(out)
    elif fmt == "parquet":
        df.write_parquet(out)
    else:
        raise UserError(f"--format must be openrlhf, jsonl or parquet, not {fmt!r}")
    console.print(f"{df.height:,} rows -> {out}")


@app.command("catalog")
def catalog_command(ctx: typer.Context) -> None:
    """Rebuild catalog.duckdb from the manifests (after moving or copying the store)."""
    store = store_from(ctx)
    store.refresh_catalog()
    console.print(f"catalog rebuilt: {store.catalog_path}")
