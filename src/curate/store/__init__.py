"""The versioned dataset store: ``<home>/datasets/<name>/v<N>/part-*.parquet`` + ``_manifest.json``.

- :mod:`curate.store.versions`: the :class:`Store`, version claims, staged writes, atomic publication.
- :mod:`curate.store.manifest`: the manifest written beside every version.
- :mod:`curate.store.catalog`: ``catalog.duckdb``, derived from the manifests, DDL from the schemas.
- :mod:`curate.store.integrity`: cheap tamper checks on read, full checksums, sweeping after ``kill -9``.
- :mod:`curate.store.lifecycle`: tags, diff, rm, gc, verify.
"""

from curate.store.manifest import MANIFEST, FileEntry, Manifest, code_version, config_hash
from curate.store.versions import (
    DEFAULT_HOME,
    NAME_RE,
    RESERVED,
    DamagedVersion,
    DatasetVersion,
    DatasetWriter,
    PublishHook,
    Store,
    StoreError,
    home_url,
    parse_ref,
    resolve_home,
    split_ref,
)

__all__ = [
    "DEFAULT_HOME",
    "MANIFEST",
    "NAME_RE",
    "RESERVED",
    "DamagedVersion",
    "DatasetVersion",
    "DatasetWriter",
    "FileEntry",
    "Manifest",
    "PublishHook",
    "Store",
    "StoreError",
    "code_version",
    "config_hash",
    "home_url",
    "parse_ref",
    "resolve_home",
    "split_ref",
]
