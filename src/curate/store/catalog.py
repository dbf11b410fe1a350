"""``catalog.duckdb``: an index derived from the manifests and run records, rebuildable at any time.

The DDL of its tables is generated from ``schemas/dataset_catalog.yaml``: ``datasets``, ``runs``,
``tags``, ``damaged`` (versions that fail their cheap check) and ``_store`` (the root the catalog was
built for and a fingerprint of what it listed). One view per dataset name reads its latest intact
version; the table macro ``dataset_version(name, version)`` reads any version.

Relocatable: no path in the file is absolute. Every view reads ``curate_root() || '/datasets/…'``, and in
``catalog.duckdb`` ``curate_root()`` is the folder of the database file itself (DuckDB derives its
``temp_directory`` from the file's path), so a copied or moved store reads its own Parquet, whichever
directory plain ``duckdb`` is started from, and never the original's. Curate's own readers use a
private in-memory database with the same tables and views (:func:`connect`): they never open the file,
so they never hold a lock that a publish needs. A refresh builds a new file beside the old one and
renames it into place: a reader sees the old catalog or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import yaml
from filelock import FileLock, Timeout

from curate.io.files import fsync_dir
from curate.schema import Table, catalog_tables, duckdb_type
from curate.store import integrity

if TYPE_CHECKING:
    from curate.store.versions import DatasetVersion, Store

log = logging.getLogger("curate.store")
SELF_ROOT = "parse_dirpath(current_setting('temp_directory'))"  # the catalog file's own folder
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
FOLDER_CARD = "README.md"


def ddl(name: str, table: Table) -> str:
    """``CREATE OR REPLACE TABLE`` for one declared catalog table."""
    cols = ", ".join(f'"{c.name}" {_ddl_type(c.type)}' for c in table.columns)
    return f'CREATE OR REPLACE TABLE "{name}" ({cols})'


def _ddl_type(t: str) -> str:
    return "JSON" if t == "json" else duckdb_type(t)


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@dataclass
class State:
    """What the catalog says, gathered from the store in one pass."""

    fingerprint: str
    datasets: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    tags: list[tuple[str, str, int]] = field(default_factory=list)
    damaged: list[tuple[str, int, str]] = field(default_factory=list)
    latest: dict[str, DatasetVersion | str] = field(default_factory=dict)  # a version, or why it is damaged


def fingerprint(store: Store) -> str:
    """Changes whenever a version, tag or run appears, goes, or a published file changes size or mtime."""
    h = hashlib.sha256()
    for top in (store.datasets_dir, store.home / "runs"):
        if not top.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != ".claims")
            for f in sorted(filenames):
                if f == FOLDER_CARD:  # derived, like the catalog itself
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, f))
                except FileNotFoundError:
                    continue
                h.update(f"{os.path.relpath(dirpath, store.home)}/{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _run_row(path: Path) -> dict[str, Any]:
    r = orjson.loads(path.read_bytes())
    return {**r, "config": orjson.dumps(r.get("config")).decode(), "metrics": orjson.dumps(r.get("metrics")).decode()}


def gather(store: Store) -> State:
    from curate.store.versions import DamagedVersion

    state = State(store.fingerprint())
    for name in store.names():
        for v in store.versions(name):
            try:
                dv = store.get(f"{name}@{v}")
                dv.check()
            except DamagedVersion as e:
                state.damaged.append((name, v, str(e)))
                state.latest[name] = str(e)
                continue
            m = dv.manifest
            state.datasets.append(
                {
                    "name": m.name,
                    "version": m.version,
                    "kind": m.kind,
                    "rows": m.rows,
                    "created_at": m.created_at,
                    "path": f"datasets/{m.name}/v{m.version}",
                    "parents": list(m.parents),
                    "schema": m.schema,
                }
            )
            state.latest[name] = dv
        state.tags += [(name, tag, ver) for tag, ver in store.tags(name).items()]
    for p in store.run_records():
        try:
            state.runs.append(_run_row(p))
        except (OSError, orjson.JSONDecodeError) as e:  # a run being written: listed on the next refresh
            log.warning("skipping %s: %s", p, e)
    return state


def _insert(con: duckdb.DuckDBPyConnection, name: str, names: tuple[str, ...] | list[str], rows: list[Any]) -> None:
    if rows:
        marks = ", ".join("?" for _ in names)
        con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)


def build(con: duckdb.DuckDBPyConnection, state: State, root_sql: str, built_for: str) -> None:
    """Create every table, view and macro of the catalog in ``con``; paths are ``root_sql || '/…'``."""
    tables = catalog_tables()
    for name, table in tables.items():
        con.execute(ddl(name, table))
    ds, runs = tables["datasets"], tables["runs"]
    _insert(con, "datasets", ds.names, [[r.get(n) for n in ds.names] for r in state.datasets])
    _insert(con, "runs", runs.names, [[r.get(n) for n in runs.names] for r in state.runs])
    _insert(con, "tags", tables["tags"].names, [list(t) for t in state.tags])
    _insert(con, "damaged", tables["damaged"].names, [list(d) for d in state.damaged])
    _insert(
        con,
        "_store",
        tables["_store"].names,
        [[built_for, state.fingerprint, datetime.now(UTC).isoformat(timespec="seconds")]],
    )
    con.execute(f"CREATE OR REPLACE MACRO curate_root() AS {root_sql}")
    con.execute(
        "CREATE OR REPLACE MACRO dataset_version(name, version) AS TABLE SELECT * FROM read_parquet("
        "curate_root() || '/datasets/' || name || '/v' || CAST(version AS VARCHAR) || '/part-*.parquet')"
    )
    for name, dv in state.latest.items():
        if isinstance(dv, str):  # the latest version is damaged: say so instead of serving it or an older one
            fail = f"SELECT * FROM (SELECT error({_q(dv)}) AS e) WHERE e IS NULL"
            con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {fail}')
            continue
        rel = f"datasets/{name}/v{dv.manifest.version}/"
        files = ", ".join(f"curate_root() || {_q('/' + rel + f.path)}" for f in dv.manifest.files)
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet([{files}])')


def refresh_catalog(store: Store, quiet: bool = False) -> None:
    """Rebuild ``catalog.duckdb`` from the manifests in a new file and rename it into place.

    ``quiet``: a failure is logged, not raised (a publish whose version is already in place must not
    fail; the next reader sees the stale fingerprint and rebuilds).
    """
    try:
        _refresh(store)
    except (OSError, duckdb.Error, Timeout) as e:
        if not quiet:
            raise
        log.warning("catalog.duckdb not refreshed (%s); it is rebuilt on the next read", str(e).splitlines()[0])


def _refresh(store: Store) -> None:
    store.home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(store.home / ".catalog.lock"), timeout=120):
        integrity.sweep(store.home)
        state = gather(store)
        write_folder_cards(store, state)
        tmp = store.home / f".catalog--{integrity.owner_tag()}--{uuid.uuid4().hex[:8]}.duckdb"
        try:
            con = duckdb.connect(str(tmp))
            try:
                con.execute("BEGIN")
                build(con, state, SELF_ROOT, str(store.home))
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            finally:
                con.close()
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            # A WAL beside the old file belongs to it (a session that wrote into the catalog): it must
            # never be replayed into the new one. The catalog is derived data, so nothing is lost.
            Path(f"{store.catalog_path}.wal").unlink(missing_ok=True)
            os.replace(tmp, store.catalog_path)
            fsync_dir(store.home)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)


def write_folder_cards(store: Store, state: State) -> None:
    """``datasets/<name>/README.md``: one Hugging Face config per version, the latest the default, so
    ``datasets.load_dataset("<home>/datasets/<name>")`` reads one version, never all of them at once.
    Config names carry the manifest digest: ``datasets`` caches a local folder by name and config alone."""
    from curate.io.files import write_bytes_atomic

    by_name: dict[str, list[DatasetVersion]] = {}
    for row in state.datasets:
        by_name.setdefault(row["name"], []).append(store.get(f"{row['name']}@{row['version']}"))
    for name, versions in by_name.items():
        configs: list[dict[str, Any]] = []
        for dv in reversed(versions):
            m = dv.manifest
            cfg: dict[str, Any] = {"config_name": f"v{m.version}-{(m.digest or m.content_key())[:8]}"}
            if not configs:
                cfg["default"] = True
            cfg["data_files"] = [{"split": "train", "path": f"v{m.version}/part-*.parquet"}]
            configs.append(cfg)
        text = (
            "---\n" + yaml.safe_dump({"configs": configs}, sort_keys=False) + "---\n\n"
            f"# {name}\n\nWritten by curate from the manifests; not to be edited. Each version lies in its own "
            f"folder (`v<N>/`): `datasets.load_dataset(<this folder>)` reads the latest, "
            f"v{versions[-1].manifest.version}; pass a config name above for another.\n"
        )
        path = store.datasets_dir / name / FOLDER_CARD
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_bytes_atomic(text.encode(), path)
    if store.datasets_dir.is_dir():  # a name whose versions are all gone keeps no card
        for card in store.datasets_dir.glob(f"*/{FOLDER_CARD}"):
            if card.parent.name not in by_name:
                card.unlink(missing_ok=True)


def on_disk_state(store: Store) -> tuple[str, str] | None:
    """(built_for, fingerprint) recorded in ``catalog.duckdb``; None when absent or unreadable."""
    if not store.catalog_path.exists():
        return None
    try:
        con = duckdb.connect(str(store.catalog_path), read_only=True)
    except duckdb.Error:
        return None  # held by a writer (a plain `duckdb` session): leave it alone
    try:
        row = con.execute("SELECT built_for, fingerprint FROM _store").fetchone()
    except duckdb.Error:
        row = None  # an older catalog without _store: stale
    finally:
        con.close()
    return (str(row[0]), str(row[1])) if row else ("", "")


def connect(store: Store, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB with the catalog over ``store``; ``catalog.duckdb`` is refreshed when it
    was built for another folder (a copied or moved store) or before the last change."""
    state = gather(store)
    disk = on_disk_state(store)
    if store.home.is_dir() and (disk is None or disk != (str(store.home), state.fingerprint)):
        refresh_catalog(store, quiet=True)
    con = duckdb.connect(":memory:")
    build(con, state, _q(str(store.home)), str(store.home))
    return con


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse SQL that could write (``COPY … TO``, ``EXPORT``, ``ATTACH``, ``SET``, DDL) before running it."""
    from curate.store.versions import StoreError

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise StoreError(f"query failed: {str(e).splitlines()[0]}") from e
    for s in statements:
        kind = str(s.type).rsplit(".", 1)[-1]
        if kind not in READ_ONLY_STATEMENTS:
            raise StoreError(
                f"curate query runs read-only SQL (SELECT, EXPLAIN), not {kind}: the store's files "
                f"are never written by a query (save results with --format csv|json|parquet --out FILE)"
            )
