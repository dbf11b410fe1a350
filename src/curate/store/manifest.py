"""The ``_manifest.json`` beside every dataset version (fields declared in ``schemas/manifest.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from curate.io.files import sha256_bytes

MANIFEST = "_manifest.json"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    version: int
    kind: str
    schema: str
    rows: int
    files: tuple[FileEntry, ...]
    funnel: Mapping[str, int]
    config: Mapping[str, Any]
    config_hash: str
    parents: tuple[str, ...]
    source: Mapping[str, Any]
    code_version: str
    created_at: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        d = orjson.loads(data)
        d["files"] = tuple(FileEntry(**f) for f in d["files"])
        d["parents"] = tuple(d["parents"])
        return cls(**d)


def config_hash(config: Mapping[str, Any]) -> str:
    return sha256_bytes(orjson.dumps(config, option=orjson.OPT_SORT_KEYS))


def code_version() -> str:
    from curate import __version__

    return __version__
