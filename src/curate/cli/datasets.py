"""``curate datasets``, ``query``, ``export``, ``catalog``: read what the store holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table as RichTable

from curate.checks.funnel import Funnel
from curate.cli.app import UserError, app, console, datasets_app, err, print_funnel, store_from


@datasets_app.command("list")
def datasets_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every published version, newest last (damaged ones are flagged: see `datasets verify`)."""
    from curate.store.catalog import gather

    store = store_from(ctx)
    state = gather(store)
    if as_json:
        rows = [
            {**r, "tags": sorted(t for n, t, v in state.tags if n == r["name"] and v == r["version"])}
            for r in state.datasets
        ]
        damaged = [{"name": n, "version": v, "problem": p} for n, v, p in state.damaged]
        print(orjson.dumps({"home": str(store.home), "datasets": rows, "damaged": damaged}, default=str).decode())
        return
    t = RichTable(title=f"datasets in {store.home}")
    for col in ("name", "version", "kind", "rows", "created_at", "parents"):
        t.add_column(col, justify="right" if col in ("version", "rows") else "left")
    for r in state.datasets:
        t.add_row(r["name"], str(r["version"]), r["kind"], f"{r['rows']:,}", r["created_at"], ", ".join(r["parents"]))
    for tag in state.tags:
        t.add_row(f"{tag[0]}@{tag[1]}", str(tag[2]), "tag", "", "", "")
    console.print(t)
    for _, _, problem in state.damaged:
        err.print(f"curate: warning: {problem}")


@datasets_app.command("show")
def datasets_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@TAG")],
    as_json: Annotated[bool, typer.Option("--json", help="The manifest as JSON, plus path and tags")] = False,
) -> None:
    """A version's manifest: rows, funnel, config, parents, files."""
    store = store_from(ctx)
    dv = store.get(ref)
    m = dv.manifest
    if as_json:
        tags = sorted(t for t, v in store.tags(m.name).items() if v == m.version)
        body = {**orjson.loads(m.to_json()), "path": str(dv.path), "ref": m.ref, "tags": tags}
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
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


@app.command("catalog")
def catalog_command(ctx: typer.Context) -> None:
    """Rebuild catalog.duckdb from the manifests (curate also does it on its own whenever the catalog is stale
    or was built for another folder: a copied or moved store)."""
    store = store_from(ctx)
    store.refresh_catalog()
    console.print(f"catalog rebuilt: {store.catalog_path}")
