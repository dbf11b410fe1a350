"""Dataset versions in the store: ``<home>/datasets/<name>/v<N>/part-*.parquet`` + ``_manifest.json``.

Publishing writes parts into a staging folder on the same filesystem, claims the next version number
with an exclusive ``mkdir`` (two publishers can never take the same number), writes the manifest, and
renames the folder into place, so readers see a whole version or none. Published files are made
read-only and never modified; every read checks sizes and footers against the manifest. A publish
whose content equals the latest version is a no-op (``DatasetVersion.unchanged``). Tags
(``datasets/<name>/.tags/<tag>``) name versions: ``rs_sft@prod`` works wherever ``rs_sft@3`` does.
``catalog.duckdb`` is an index derived from the manifests (:mod:`curate.store.catalog`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.io.files import fsync_dir, sha256_file, write_bytes_atomic
from curate.schema import Table
from curate.store import integrity
from curate.store.manifest import MANIFEST, FileEntry, Manifest, ManifestError, code_version, config_hash

if TYPE_CHECKING:  # duckdb costs 25 ms at import; check and dedup runs never connect
    import duckdb

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
RESERVED = frozenset({"datasets", "runs", "tags", "damaged", "_store"})  # catalog tables
DEFAULT_HOME = "./curate-data"
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(//)?")


class StoreError(CurateError):
    """A store operation failed in a way the user should see (unknown dataset, bad name...)."""


class DamagedVersion(StoreError):
    """A published version no longer matches its manifest."""


def home_url(home: str | Path | None) -> str | None:
    """The URL of an object-storage home (``s3://bucket/x``, any fsspec URL), None for a local path.

    A URL without ``//`` after its scheme (``s3:bucket``) is refused rather than made a local folder.
    """
    raw = str(home or os.environ.get("CURATE_HOME") or DEFAULT_HOME)
    m = _URL_RE.match(raw)
    if not m or len(m.group(1)) == 1 or m.group(1).lower() == "file":  # "C:" is a drive, "s3:" a scheme
        return None
    if not m.group(2):
        raise StoreError(
            f"store home {raw!r} looks like a URL without '//': write {m.group(1)}://BUCKET/PATH "
            f"for object storage, or ./{raw} for a local folder"
        )
    return raw.rstrip("/")


def resolve_home(home: str | Path | None) -> Path:
    """The store root as a local path (``file://`` URLs included)."""
    raw = str(home or os.environ.get("CURATE_HOME") or DEFAULT_HOME)
    m = _URL_RE.match(raw)
    if m and m.group(1).lower() == "file":
        return Path(raw[len(m.group(0)) :] if m.group(2) else raw[5:]).absolute()
    return Path(raw).absolute()


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    path: Path
    manifest: Manifest
    unchanged: bool = False  # set on the result of a publish that found the same content already there

    @property
    def parts(self) -> list[Path]:
        return [self.path / f.path for f in self.manifest.files]

    def check(self) -> None:
        """Cheap tamper check (sizes, Parquet footers); raises :class:`DamagedVersion`."""
        problems = integrity.quick_problems(self.path, self.manifest)
        if problems:
            raise DamagedVersion(
                f"{self.manifest.ref} is damaged: {'; '.join(problems)} "
                f"(run `curate datasets verify {self.manifest.name}`)"
            )

    def scan(self) -> pl.LazyFrame:
        self.check()
        if not self.parts:
            return pl.LazyFrame()
        return pl.scan_parquet([str(p) for p in self.parts])


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name@N`` / ``name@vN`` -> (name, version or None for latest)."""
    name, sel = split_ref(ref)
    if sel is None:
        return name, None
    if not sel.isdigit():
        raise StoreError(f"bad dataset reference {ref!r}: expected NAME or NAME@VERSION")
    return name, int(sel)


def split_ref(ref: str) -> tuple[str, str | None]:
    """``name[@selector]``: a selector is a version (``3``, ``v3``), ``latest`` or a tag."""
    name, at, sel = ref.partition("@")
    if not at:
        return name, None
    if not sel:
        raise StoreError(f"bad dataset reference {ref!r}: nothing after @")
    return name, sel[1:] if re.fullmatch(r"v\d+", sel) else sel


class DatasetWriter:
    """Writes parts of one future version into a staging folder; see :meth:`Store.writer`."""

    def __init__(self, staging: Path, table: Table, rows_per_part: int) -> None:
        self.staging = staging
        self.table = table
        self.rows_per_part = rows_per_part
        self.files: list[FileEntry] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_part = 0
        self.rows = 0
        # Manifest fields the caller may still set before the block ends.
        self.funnel: dict[str, int] = {}
        self.config: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.source: dict[str, Any] = {}
        self.parents: tuple[str, ...] = ()
        self.published: DatasetVersion | None = None

    def write(self, df: pl.DataFrame) -> None:
        """Conform ``df`` to the table and append it, starting a new part when the current one is full."""
        if df.height == 0:
            return
        arrow = self.table.to_arrow(df)
        start = 0
        while start < arrow.num_rows:
            if self._writer is None:
                self._writer = pq.ParquetWriter(
                    self.staging / f"part-{len(self.files):05d}.parquet", self.table.arrow_schema(), compression="zstd"
                )
                self._rows_in_part = 0
            take = min(arrow.num_rows - start, self.rows_per_part - self._rows_in_part)
            self._writer.write_table(arrow.slice(start, take))
            self._rows_in_part += take
            self.rows += take
            start += take
            if self._rows_in_part >= self.rows_per_part:
                self._close_part()

    def _close_part(self) -> None:
        if self._writer is None:
            return
        path = Path(self._writer.where)
        self._writer.close()
        self._writer = None
        self.files.append(FileEntry(path.name, self._rows_in_part, path.stat().st_size, sha256_file(path)))

    def close(self) -> None:
        self._close_part()
        if not self.files:  # an empty dataset still has one (empty) part with the schema
            self._writer = pq.ParquetWriter(
                self.staging / "part-00000.parquet", self.table.arrow_schema(), compression="zstd"
            )
            self._rows_in_part = 0
            self._close_part()


class PublishHook(Protocol):
    """Called after a version is in place and catalogued (e.g. to emit an orchestration event)."""

    def __call__(self, version: DatasetVersion) -> None: ...


class Store:
    """A store on a local (or mounted) path; ``Store("s3://bucket/x")`` gives a
    :class:`curate.store.remote.ObjectStore` with the same interface."""

    def __new__(cls, home: str | Path | None = None, hooks: Sequence[PublishHook] = ()) -> Store:
        if cls is Store and home_url(home) is not None:
            from curate.store.remote import ObjectStore

            return super().__new__(ObjectStore)
        return super().__new__(cls)

    def __init__(self, home: str | Path | None = None, hooks: Sequence[PublishHook] = ()) -> None:
        self.home = resolve_home(home)
        self.hooks = tuple(hooks)

    @property
    def root(self) -> str:
        """The store root as DuckDB reads it (a folder, or a URL for object storage)."""
        return str(self.home)

    @property
    def local_dir(self) -> Path:
        """Where files that need a local filesystem live (generation ledgers, training-run records)."""
        return self.home

    # -- layout ---------------------------------------------------------------------------------------
    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.duckdb"

    def _dataset_dir(self, name: str) -> Path:
        return self.datasets_dir / self.check_name(name)

    def check_name(self, name: str) -> str:
        """Refuse a dataset name the store cannot take, before any work that ends in publishing it."""
        if not NAME_RE.match(name) or name.lower() in RESERVED:
            raise StoreError(
                f"bad dataset name {name!r}: letters, digits and _, starting with a letter "
                f"(not {', '.join(sorted(RESERVED))})"
            )
        return name

    def version_dir(self, name: str, version: int) -> Path:
        return self._dataset_dir(name) / f"v{version}"

    # -- reading ----------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.datasets_dir.exists():
            return []
        return sorted(
            p.name
            for p in self.datasets_dir.iterdir()
            if p.is_dir() and NAME_RE.match(p.name) and self.versions(p.name)
        )

    def versions(self, name: str) -> list[int]:
        d = self._dataset_dir(name)
        if not d.exists():
            return []
        return sorted(int(p.name[1:]) for p in d.iterdir() if re.fullmatch(r"v\d+", p.name) and (p / MANIFEST).exists())

    def tags(self, name: str) -> dict[str, int]:
        d = self._dataset_dir(name) / ".tags"
        if not d.is_dir():
            return {}
        out = {}
        for p in sorted(d.iterdir()):
            if TAG_RE.match(p.name) and p.read_text().strip().isdigit():
                out[p.name] = int(p.read_text().strip())
        return out

    def set_tag(self, name: str, version: int, tag: str) -> None:
        d = self._dataset_dir(name) / ".tags"
        d.mkdir(exist_ok=True)
        write_bytes_atomic(f"{version}\n".encode(), d / tag)

    def remove_tag(self, name: str, tag: str) -> None:
        (self._dataset_dir(name) / ".tags" / tag).unlink(missing_ok=True)

    def remove_version(self, name: str, version: int) -> None:
        """Gone for every reader at once (renamed into ``.trash/``), then deleted."""
        trash = self.home / ".trash"
        trash.mkdir(exist_ok=True)
        dest = trash / f"{name}-v{version}--{integrity.owner_tag()}--{uuid.uuid4().hex[:8]}"
        self.version_dir(name, version).rename(dest)
        shutil.rmtree(dest, ignore_errors=True)

    def sweep(self) -> list[str]:
        """Remove what killed writers left behind (staging folders, temp files, trash)."""
        return [str(p) for p in integrity.sweep(self.home)]

    def resolve(self, ref: str) -> tuple[str, int]:
        """``name[@version|@tag|@latest]`` -> (name, version), or a one-line error naming what exists."""
        name, sel = split_ref(ref)
        versions = self.versions(name)
        if not versions:
            raise StoreError(f"no dataset named {name!r} in {self.home}")
        if sel is None or sel == "latest":
            return name, versions[-1]
        if sel.isdigit():
            if int(sel) not in versions:
                raise StoreError(f"{name} has no version {sel} (has {', '.join(map(str, versions))})")
            return name, int(sel)
        tags = self.tags(name)
        if sel not in tags:
            known = ", ".join(sorted(tags)) or "none"
            raise StoreError(f"{name} has no tag {sel!r} (tags: {known}; versions: {', '.join(map(str, versions))})")
        if tags[sel] not in versions:
            raise StoreError(f"tag {name}@{sel} names version {tags[sel]}, which was removed")
        return name, tags[sel]

    def get(self, ref: str) -> DatasetVersion:
        name, version = self.resolve(ref)
        path = self.version_dir(name, version)
        try:
            return DatasetVersion(path, integrity.read_manifest(path))
        except ManifestError as e:
            raise DamagedVersion(
                f"{name}@{version} is damaged: _manifest.json {e} (run `curate datasets verify {name}`)"
            ) from e

    def all_versions(self, *, skip_damaged: bool = False) -> Iterator[DatasetVersion]:
        for name in self.names():
            for v in self.versions(name):
                try:
                    yield self.get(f"{name}@{v}")
                except DamagedVersion:
                    if not skip_damaged:
                        raise

    # -- writing ----------------------------------------------------------------------------------------
    def _claim(self, name: str) -> int:
        claims = self._dataset_dir(name) / ".claims"
        claims.mkdir(parents=True, exist_ok=True)
        existing = [int(p.name[1:]) for p in claims.iterdir() if re.fullmatch(r"v\d+", p.name)]
        n = max([*existing, *self.versions(name)], default=0) + 1
        while True:
            try:
                os.mkdir(claims / f"v{n}")  # atomic and exclusive: the claim
                return n
            except FileExistsError:
                n += 1

    @contextmanager
    def writer(
        self,
        name: str,
        kind: str,
        table: Table,
        *,
        funnel: Mapping[str, int] | None = None,
        config: Mapping[str, Any] | None = None,
        parents: Sequence[str] = (),
        source: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        rows_per_part: int = 1_000_000,
        if_changed: bool = True,
    ) -> Iterator[DatasetWriter]:
        """Stage parts, then publish them as the next version of ``name`` when the block exits cleanly.

        Funnel/config/extra may also be set on the writer (``w.funnel = ...``) before the block ends.
        The published :class:`DatasetVersion` is available as ``w.published`` afterwards; with
        ``if_changed`` (default) the same content as the latest version publishes nothing and
        ``w.published`` is that version with ``unchanged=True``.
        """
        self._dataset_dir(name)  # validates the name
        integrity.sweep(self.home)
        staging = self.home / ".staging" / f"{name}--{integrity.owner_tag()}--{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        w = DatasetWriter(staging, table, rows_per_part)
        w.funnel, w.config, w.extra = dict(funnel or {}), dict(config or {}), dict(extra or {})
        w.source, w.parents = dict(source or {}), tuple(parents)
        try:
            yield w
            w.close()
            w.published = self._publish(name, kind, w, if_changed)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def publish_frame(self, name: str, kind: str, table: Table, df: pl.DataFrame, **kw: Any) -> DatasetVersion:
        with self.writer(name, kind, table, **kw) as w:
            w.write(df)
        assert w.published is not None
        return w.published

    def _manifest(self, name: str, version: int, kind: str, w: DatasetWriter) -> Manifest:
        return Manifest(
            name=name,
            version=version,
            kind=kind,
            schema=w.table.tag,
            rows=w.rows,
            files=tuple(w.files),
            funnel=dict(w.funnel),
            config=dict(w.config),
            config_hash=config_hash(w.config),
            parents=tuple(w.parents),
            source=dict(w.source),
            code_version=code_version(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            extra=dict(w.extra),
        ).sealed()

    def _publish(self, name: str, kind: str, w: DatasetWriter, if_changed: bool) -> DatasetVersion:
        if if_changed and self.versions(name):
            try:
                latest = self.get(name)
            except DamagedVersion:
                latest = None
            if latest is not None and latest.manifest.content_key() == self._manifest(name, 0, kind, w).content_key():
                return dataclasses.replace(latest, unchanged=True)
        version = self._claim(name)
        manifest = self._manifest(name, version, kind, w)
        (w.staging / MANIFEST).write_bytes(manifest.to_json())
        for p in w.staging.iterdir():
            os.chmod(p, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            with p.open("rb") as f:
                os.fsync(f.fileno())
        final = self.version_dir(name, version)
        os.rename(w.staging, final)  # atomic: readers see all of the version or none of it
        fsync_dir(final.parent)
        dv = DatasetVersion(final, manifest)
        self.refresh_catalog(quiet=True)  # never fails the publish: the version is already in place
        for hook in self.hooks:
            hook(dv)
        return dv

    # -- catalog ----------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        from curate.store.catalog import fingerprint

        return fingerprint(self)

    def run_records(self) -> list[Path]:
        return sorted((self.local_dir / "runs").glob("*/run.json"))

    def refresh_catalog(self, quiet: bool = False) -> None:
        """Rebuild ``catalog.duckdb`` from the manifests (the source of truth), atomically."""
        from curate.store.catalog import refresh_catalog

        refresh_catalog(self, quiet=quiet)

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """A private in-memory DuckDB with the catalog's tables, views and macros over this store.

        It never opens ``catalog.duckdb``, so no reader holds a lock a publisher needs; the file on disk
        is brought up to date on the way (when the store is writable).
        """
        from curate.store.catalog import connect

        return connect(self, read_only=read_only)
