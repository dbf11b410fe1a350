"""Dataset versions in the store: ``<home>/datasets/<name>/v<N>/part-*.parquet`` + ``_manifest.json``.

Publishing writes parts into a staging folder on the same filesystem, claims the next version number
with an exclusive ``mkdir`` (two publishers can never take the same number), writes the manifest, and
renames the folder into place, so readers see a whole version or none. Published files are made
read-only and never modified. ``catalog.duckdb`` is an index derived from the manifests (rebuildable at
any time with :meth:`Store.refresh_catalog`): a ``datasets`` table and one view per dataset name over its
latest version.
"""

from __future__ import annotations

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
from typing import Any, Protocol

import duckdb
import polars as pl
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.io.files import sha256_file
from curate.schema import Table
from curate.store.catalog import refresh_catalog
from curate.store.manifest import MANIFEST, FileEntry, Manifest, code_version, config_hash

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
RESERVED = frozenset({"datasets", "runs"})  # catalog tables; a view of that name would shadow them
DEFAULT_HOME = "./curate-data"


class StoreError(CurateError):
    """A store operation failed in a way the user should see (unknown dataset, bad name...)."""


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    path: Path
    manifest: Manifest

    @property
    def parts(self) -> list[Path]:
        return [self.path / f.path for f in self.manifest.files]

    def scan(self) -> pl.LazyFrame:
        if not self.parts:
            return pl.LazyFrame()
        return pl.scan_parquet([str(p) for p in self.parts])


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name@N`` / ``name@vN`` -> (name, version or None for latest)."""
    name, _, ver = ref.partition("@")
    if not ver:
        return name, None
    ver = ver[1:] if ver.startswith("v") else ver
    if not ver.isdigit():
        raise StoreError(f"bad dataset reference {ref!r}: expected NAME or NAME@VERSION")
    return name, int(ver)


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
                self._writer = pq.ParquetWriter(self.staging / f"part-{len(self.files):05d}.parquet",
                                                self.table.arrow_schema(), compression="zstd")
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
            self._writer = pq.ParquetWriter(self.staging / "part-00000.parquet", self.table.arrow_schema(),
                                            compression="zstd")
            self._rows_in_part = 0
            self._close_part()


class PublishHook(Protocol):
    """Called after a version is in place and catalogued (e.g. to emit an orchestration event)."""

    def __call__(self, version: DatasetVersion) -> None: ...


class Store:
    def __init__(self, home: str | Path | None = None, hooks: Sequence[PublishHook] = ()) -> None:
        self.home = Path(home or os.environ.get("CURATE_HOME") or DEFAULT_HOME).absolute()
        self.hooks = tuple(hooks)

    # -- layout ---------------------------------------------------------------------------------------
    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.duckdb"

    def _dataset_dir(self, name: str) -> Path:
        if not NAME_RE.match(name) or name.lower() in RESERVED:
            raise StoreError(f"bad dataset name {name!r}: letters, digits and _, starting with a letter")
        return self.datasets_dir / name

    def check_name(self, name: str) -> str:
        """Refuse a dataset name the store cannot take, before any work that ends in publishing it."""
        self._dataset_dir(name)
        return name

    # -- reading ----------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.datasets_dir.exists():
            return []
        return sorted(p.name for p in self.datasets_dir.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        d = self._dataset_dir(name)
        if not d.exists():
            return []
        return sorted(int(p.name[1:]) for p in d.iterdir()
                      if re.fullmatch(r"v\d+", p.name) and (p / MANIFEST).exists())

    def get(self, ref: str) -> DatasetVersion:
        name, version = parse_ref(ref)
        versions = self.versions(name)
        if not versions:
            raise StoreError(f"no dataset named {name!r} in {self.home}")
        if version is None:
            version = versions[-1]
        elif version not in versions:
            raise StoreError(f"{name} has no version {version} (has {', '.join(map(str, versions))})")
        path = self._dataset_dir(name) / f"v{version}"
        return DatasetVersion(path, Manifest.from_json((path / MANIFEST).read_bytes()))

    def all_versions(self) -> Iterator[DatasetVersion]:
        for name in self.names():
            for v in self.versions(name):
                yield self.get(f"{name}@{v}")

    # -- writing ----------------------------------------------------------------------------------------
    def _claim(self, name: str) -> int:
        claims = self._dataset_dir(name) / ".claims"
        claims.mkdir(parents=True, exist_ok=True)
        existing = [int(p.name[1:]) for p in claims.iterdir() if re.fullmatch(r"v\d+", p.name)]
        n = max(existing, default=0) + 1
        while True:
            try:
                os.mkdir(claims / f"v{n}")  # atomic and exclusive: the claim
                return n
            except FileExistsError:
                n += 1

    @contextmanager
    def writer(self, name: str, kind: str, table: Table, *, funnel: Mapping[str, int] | None = None,
               config: Mapping[str, Any] | None = None, parents: Sequence[str] = (),
               source: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
               rows_per_part: int = 1_000_000) -> Iterator[DatasetWriter]:
        """Stage parts, then publish them as the next version of ``name`` when the block exits cleanly.

        Funnel/config/extra may also be set on the writer (``w.funnel = ...``) before the block ends.
        The published :class:`DatasetVersion` is available as ``w.published`` afterwards.
        """
        self._dataset_dir(name)  # validates the name
        staging = self.home / ".staging" / f"{name}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        w = DatasetWriter(staging, table, rows_per_part)
        w.funnel, w.config, w.extra = dict(funnel or {}), dict(config or {}), dict(extra or {})
        w.source, w.parents = dict(source or {}), tuple(parents)
        try:
            yield w
            w.close()
            w.published = self._publish(name, kind, w)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def publish_frame(self, name: str, kind: str, table: Table, df: pl.DataFrame, **kw: Any) -> DatasetVersion:
        with self.writer(name, kind, table, **kw) as w:
            w.write(df)
        assert w.published is not None
        return w.published

    def _publish(self, name: str, kind: str, w: DatasetWriter) -> DatasetVersion:
        version = self._claim(name)
        manifest = Manifest(
            name=name, version=version, kind=kind, schema=w.table.tag, rows=w.rows, files=tuple(w.files),
            funnel=dict(w.funnel), config=dict(w.config), config_hash=config_hash(w.config),
            parents=tuple(w.parents), source=dict(w.source), code_version=code_version(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"), extra=dict(w.extra),
        )
        (w.staging / MANIFEST).write_bytes(manifest.to_json())
        for p in w.staging.iterdir():
            os.chmod(p, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            with p.open("rb") as f:
                os.fsync(f.fileno())
        final = self._dataset_dir(name) / f"v{version}"
        os.rename(w.staging, final)  # atomic: readers see all of the version or none of it
        self.refresh_catalog()
        dv = DatasetVersion(final, manifest)
        for hook in self.hooks:
            hook(dv)
        return dv

    # -- catalog ----------------------------------------------------------------------------------------
    def refresh_catalog(self) -> None:
        """Rebuild ``catalog.duckdb`` from the manifests (the source of truth)."""
        refresh_catalog(self)

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        if not self.catalog_path.exists():
            self.refresh_catalog()
        return duckdb.connect(str(self.catalog_path), read_only=read_only)
