"""``catalog.duckdb``: an index derived from the manifests and run records, rebuildable at any time.

The DDL of its tables (``datasets``, ``runs``) is generated from ``schemas/dataset_catalog.yaml``; one
view per dataset name reads its latest version.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
from filelock import FileLock

from curate.schema import Table, catalog_tables, duckdb_type

if TYPE_CHECKING:
    from curate.store.versions import DatasetVersion, Store


def ddl(name: str, table: Table) -> str:
    """``CREATE OR REPLACE TABLE`` for one declared catalog table."""
    cols = ", ".join(f'"{c.name}" {_ddl_type(c.type)}' for c in table.columns)
    return f'CREATE OR REPLACE TABLE "{name}" ({cols})'


def _ddl_type(t: str) -> str:
    return "JSON" if t == "json" else duckdb_type(t)


def _dataset_row(dv: DatasetVersion) -> dict[str, Any]:
    m = dv.manifest
    return {
        "name": m.name,
        "version": m.version,
        "kind": m.kind,
        "rows": m.rows,
        "created_at": m.created_at,
        "path": str(dv.path),
        "parents": list(m.parents),
        "schema": m.schema,
    }


def _run_row(path: Path) -> dict[str, Any]:
    r = orjson.loads(path.read_bytes())
    return {**r, "config": orjson.dumps(r.get("config")).decode(), "metrics": orjson.dumps(r.get("metrics")).decode()}


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = table.names
    marks = ", ".join("?" for _ in names)
    con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', [[r.get(n) for n in names] for r in rows])


def refresh_catalog(store: Store) -> None:
    """Rebuild ``catalog.duckdb`` from the manifests (the source of truth) and ``runs/*/run.json``."""
    store.home.mkdir(parents=True, exist_ok=True)
    tables = catalog_tables()
    with FileLock(str(store.home / ".catalog.lock"), timeout=120):
        latest: dict[str, DatasetVersion] = {}
        datasets = []
        for dv in store.all_versions():
            datasets.append(_dataset_row(dv))
            latest[dv.manifest.name] = dv
        runs = [_run_row(p) for p in sorted((store.home / "runs").glob("*/run.json"))]
        con = duckdb.connect(str(store.catalog_path))
        try:
            con.execute("BEGIN")
            for name, table in tables.items():
                con.execute(ddl(name, table))
            _insert(con, "datasets", tables["datasets"], datasets)
            _insert(con, "runs", tables["runs"], runs)
            existing = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
            for view in existing - set(latest):
                con.execute(f'DROP VIEW IF EXISTS "{view}"')
            for name, dv in latest.items():
                files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in dv.parts)
                con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet([{files}])')
            con.execute("COMMIT")
        finally:
            con.close()
