"""A store on object storage: ``s3://bucket/prefix`` or any fsspec URL, same layout, same promises.

There is no rename on object storage, so a version's ``_manifest.json`` is its commit marker: parts are
staged on local disk, the version number is claimed by creating ``datasets/<name>/.claims/v<N>`` with a
conditional write (S3 ``If-None-Match: *``: two publishers never get the same number), the parts are
uploaded under ``v<N>/``, and the manifest is written last, also create-only. A reader lists only
versions whose manifest exists, so a killed publisher leaves nothing visible; its orphaned parts are
removed by :meth:`ObjectStore.sweep`. ``catalog.duckdb`` is built locally and uploaded in one PUT; its
views read the store's URL through the fsspec filesystem DuckDB is given (no extension downloads).

Endpoint and credentials come from the usual environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
...) or ``storage_options``. Training-run records and generation ledgers stay on local disk
(:attr:`ObjectStore.local_dir`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from curate.schema import Table
from curate.store import integrity
from curate.store.manifest import MANIFEST, Manifest, ManifestError
from curate.store.versions import (
    TAG_RE,
    DamagedVersion,
    DatasetWriter,
    PublishHook,
    Store,
    StoreError,
    home_url,
)

ORPHAN_AFTER_S = 3600  # parts of a claimed version with no manifest after an hour: a killed publisher


def filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    import fsspec

    scheme = url.split("://", 1)[0]
    try:
        return fsspec.filesystem(scheme, skip_instance_cache=True, **dict(storage_options or {}))
    except ImportError as e:
        hint = " (pip install s3fs, or curate[s3])" if scheme in ("s3", "s3a") else ""
        raise StoreError(f"store home {url}: the {scheme}:// filesystem is not installed{hint}") from e
    except ValueError as e:
        raise StoreError(f"store home {url}: {scheme}:// is neither a path nor a supported URL ({e})") from e


@dataclass(frozen=True)
class RemoteVersion:
    """A version on object storage; the interface of :class:`curate.store.DatasetVersion`."""

    path: str
    manifest: Manifest
    fs: Any = dataclasses.field(repr=False, compare=False)
    unchanged: bool = False

    @property
    def parts(self) -> list[str]:
        return [f"{self.path}/{f.path}" for f in self.manifest.files]

    def check(self) -> None:
        problems = []
        for f, url in zip(self.manifest.files, self.parts, strict=True):
            try:
                size = self.fs.info(url)["size"]
            except FileNotFoundError:
                problems.append(f"{f.path} is missing")
                continue
            if size != f.bytes:
                problems.append(f"{f.path} is {size:,} B, the manifest recorded {f.bytes:,} B")
            elif self.fs.cat_file(url, start=max(size - 4, 0)) != b"PAR1":
                problems.append(f"{f.path} has no Parquet footer")
        if self.manifest.digest and self.manifest.digest != self.manifest.computed_digest():
            problems.append("_manifest.json was edited after publication (digest mismatch)")
        if problems:
            raise DamagedVersion(f"{self.manifest.ref} is damaged: {'; '.join(problems)}")

    def scan(self) -> pl.LazyFrame:
        import pyarrow.dataset as pads

        self.check()
        return pl.scan_pyarrow_dataset(pads.dataset(self.parts, filesystem=self.fs, format="parquet"))


class ObjectStore(Store):
    def __init__(
        self,
        home: str | Path | None = None,
        hooks: Sequence[PublishHook] = (),
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        url = home_url(home)
        assert url is not None
        self.url = url
        self.home = url  # type: ignore[assignment]  # a URL: what users and messages see
        self.hooks = tuple(hooks)
        self.fs = filesystem(url, storage_options)
        self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        try:
            self.fs.ls(self.url, refresh=True)
        except FileNotFoundError:
            try:
                self.fs.makedirs(self.url, exist_ok=True)
            except Exception as e:  # noqa: BLE001 - any refusal is the user's to fix (bucket, credentials)
                raise StoreError(f"store home {self.url}: cannot be reached or created ({e})") from e
        except PermissionError as e:
            raise StoreError(f"store home {self.url}: access denied ({e})") from e

    @property
    def root(self) -> str:
        return self.url

    @property
    def catalog_path(self) -> str:  # type: ignore[override]
        return f"{self.url}/catalog.duckdb"

    def _ddir(self, name: str) -> str:
        return f"{self.url}/datasets/{self.check_name(name)}"

    def _ls(self, url: str) -> list[str]:
        try:
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(url, detail=False, refresh=True)]
        except FileNotFoundError:
            return []

    # -- reading ----------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        self.fs.invalidate_cache()
        return sorted(n for n in self._ls(f"{self.url}/datasets") if self.versions(n))

    def versions(self, name: str) -> list[int]:
        d = self._ddir(name)
        found = self.fs.glob(f"{d}/v*/{MANIFEST}")
        return sorted(int(m.group(1)) for p in found if (m := re.search(r"/v(\d+)/" + MANIFEST + "$", p)))

    def tags(self, name: str) -> dict[str, int]:
        d = f"{self._ddir(name)}/.tags"
        out = {}
        for tag in self._ls(d):
            text = self.fs.cat_file(f"{d}/{tag}").decode().strip()
            if TAG_RE.match(tag) and text.isdigit():
                out[tag] = int(text)
        return out

    def set_tag(self, name: str, version: int, tag: str) -> None:
        self.fs.pipe_file(f"{self._ddir(name)}/.tags/{tag}", f"{version}\n".encode())

    def remove_tag(self, name: str, tag: str) -> None:
        self.fs.rm(f"{self._ddir(name)}/.tags/{tag}")

    def remove_version(self, name: str, version: int) -> None:
        vdir = f"{self._ddir(name)}/v{version}"
        self.fs.rm(f"{vdir}/{MANIFEST}")  # the commit marker first: invisible to every reader at once
        self.fs.rm(vdir, recursive=True)

    def get(self, ref: str) -> RemoteVersion:  # type: ignore[override]
        name, version = self.resolve(ref)
        path = f"{self._ddir(name)}/v{version}"
        try:
            return RemoteVersion(path, Manifest.from_json(self.fs.cat_file(f"{path}/{MANIFEST}")), self.fs)
        except ManifestError as e:
            raise DamagedVersion(f"{name}@{version} is damaged: _manifest.json {e}") from e

    def all_versions(self, *, skip_damaged: bool = False) -> Iterator[RemoteVersion]:  # type: ignore[override]
        yield from super().all_versions(skip_damaged=skip_damaged)  # type: ignore[misc]

    # -- writing ----------------------------------------------------------------------------------------
    def _claim(self, name: str) -> int:
        claims = f"{self._ddir(name)}/.claims"
        existing = [int(c[1:]) for c in self._ls(claims) if re.fullmatch(r"v\d+", c)]
        n = max([*existing, *self.versions(name)], default=0) + 1
        while True:
            try:  # create-only (S3 If-None-Match): exactly one publisher gets each number
                self.fs.pipe_file(f"{claims}/v{n}", integrity.owner_tag().encode(), mode="create")
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
        self.check_name(name)
        for old in Path(tempfile.gettempdir()).glob("curate-*--*--*"):  # staging of killed publishers
            if old.is_dir() and integrity.is_stale(old.name, old):
                shutil.rmtree(old, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f"curate-{name}--{integrity.owner_tag()}--"))
        w = DatasetWriter(staging, table, rows_per_part)
        w.funnel, w.config, w.extra = dict(funnel or {}), dict(config or {}), dict(extra or {})
        w.source, w.parents = dict(source or {}), tuple(parents)
        try:
            yield w
            w.close()
            w.published = self._publish(name, kind, w, if_changed)  # type: ignore[assignment]
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, name: str, kind: str, w: DatasetWriter, if_changed: bool) -> RemoteVersion:  # type: ignore[override]
        if if_changed and self.versions(name):
            try:
                latest: RemoteVersion | None = self.get(name)
            except DamagedVersion:
                latest = None
            if latest is not None and latest.manifest.content_key() == self._manifest(name, 0, kind, w).content_key():
                return dataclasses.replace(latest, unchanged=True)
        version = self._claim(name)
        manifest = self._manifest(name, version, kind, w)
        vdir = f"{self._ddir(name)}/v{version}"
        for f in w.files:
            self.fs.put_file(str(w.staging / f.path), f"{vdir}/{f.path}")
        self.fs.pipe_file(f"{vdir}/{MANIFEST}", manifest.to_json(), mode="create")  # the commit marker
        dv = RemoteVersion(vdir, manifest, self.fs)
        self.refresh_catalog(quiet=True)
        for hook in self.hooks:
            hook(dv)  # type: ignore[arg-type]
        return dv

    def sweep(self, older_than_s: float = ORPHAN_AFTER_S) -> list[str]:
        """Remove parts of claimed versions that never got a manifest (a publisher killed mid-upload)."""
        removed = []
        now = time.time()
        for name in self._ls(f"{self.url}/datasets"):
            d = f"{self.url}/datasets/{name}"
            for v in self._ls(d):
                vdir = f"{d}/{v}"
                if not re.fullmatch(r"v\d+", v) or self.fs.exists(f"{vdir}/{MANIFEST}"):
                    continue
                infos = self.fs.find(vdir, detail=True).values()
                newest = max((_mtime(i) for i in infos), default=0.0)
                if now - newest > older_than_s:
                    self.fs.rm(vdir, recursive=True)
                    removed.append(vdir)
        return removed

    # -- catalog ----------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        self.fs.invalidate_cache()
        h = hashlib.sha256()
        try:
            found = self.fs.find(f"{self.url}/datasets", detail=True)
        except FileNotFoundError:
            found = {}
        for path, info in sorted(found.items()):
            if "/.claims/" not in path:
                h.update(f"{path}:{info.get('size')}:{info.get('ETag') or _mtime(info)}\n".encode())
        return h.hexdigest()

    @property
    def local_dir(self) -> Path:
        """Ledgers and run records stay on local disk: ``$CURATE_LOCAL`` (default ``./curate-local``) /
        the URL made a folder name."""
        base = Path(os.environ.get("CURATE_LOCAL") or "./curate-local").absolute()
        return base / re.sub(r"[^A-Za-z0-9_.-]+", "_", self.url)

    def refresh_catalog(self, quiet: bool = False) -> None:
        from curate.store.catalog import build, gather, log

        try:
            state = gather(self)
            with tempfile.TemporaryDirectory(prefix="curate-catalog-") as tmp:
                local = Path(tmp) / "catalog.duckdb"
                con = duckdb.connect(str(local), config={"autoinstall_known_extensions": False})
                con.register_filesystem(self.fs)
                try:
                    build(con, state, _q(self.url), self.url)
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                self.fs.put_file(str(local), self.catalog_path)  # one PUT: the old catalog or the new one
        except (OSError, duckdb.Error, StoreError) as e:
            if not quiet:
                raise
            log.warning("catalog.duckdb not refreshed (%s); it is rebuilt on the next read", str(e).splitlines()[0])

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        from curate.store.catalog import build, gather

        state = gather(self)
        if self._catalog_state() != (self.url, state.fingerprint):
            self.refresh_catalog(quiet=True)
        con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
        con.register_filesystem(self.fs)
        build(con, state, _q(self.url), self.url)
        return con

    def _catalog_state(self) -> tuple[str, str] | None:
        try:
            data = self.fs.cat_file(self.catalog_path)
        except FileNotFoundError:
            return None
        with tempfile.TemporaryDirectory(prefix="curate-catalog-") as tmp:
            local = Path(tmp) / "catalog.duckdb"
            local.write_bytes(data)
            con = duckdb.connect(str(local), read_only=True)
            try:
                row = con.execute("SELECT built_for, fingerprint FROM _store").fetchone()
            except duckdb.Error:
                row = None
            finally:
                con.close()
        return (str(row[0]), str(row[1])) if row else ("", "")


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _mtime(info: Mapping[str, Any]) -> float:
    t = info.get("LastModified") or info.get("mtime") or info.get("created") or 0
    return float(t.timestamp()) if hasattr(t, "timestamp") else float(t)


__all__ = ["ObjectStore", "RemoteVersion", "filesystem"]
