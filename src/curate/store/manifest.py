"""The ``_manifest.json`` beside every dataset version (fields declared in ``schemas/manifest.yaml``).

A manifest carries a ``digest``: the sha256 of its own canonical JSON without that field, so a
hand-edited manifest is told from a damaged part file by ``curate datasets verify``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from curate.io.files import sha256_bytes

MANIFEST = "_manifest.json"


class ManifestError(ValueError):
    """A manifest that cannot be read as one: truncated, not JSON, fields missing or of the wrong type."""


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
    digest: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    def computed_digest(self) -> str:
        body = asdict(self)
        body.pop("digest")
        return sha256_bytes(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))

    def sealed(self) -> Manifest:
        return dataclasses.replace(self, digest=self.computed_digest())

    def content_key(self) -> str:
        """What makes two versions the same content: data bytes, kind, schema, funnel, config, parents."""
        body = [
            self.kind,
            self.schema,
            sorted(f.sha256 for f in self.files),
            dict(self.funnel),
            self.config_hash,
            list(self.parents),
        ]
        return sha256_bytes(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            d = orjson.loads(data)
            if not isinstance(d, dict):
                raise ManifestError("not a JSON object")
            d["files"] = tuple(FileEntry(**f) for f in d["files"])
            d["parents"] = tuple(d["parents"])
            m = cls(**d)
        except orjson.JSONDecodeError as e:
            raise ManifestError(f"not valid JSON (truncated or hand-edited): {e}") from e
        except (KeyError, TypeError) as e:
            raise ManifestError(f"fields missing or unexpected: {e}") from e
        if not isinstance(m.version, int) or not isinstance(m.rows, int) or not isinstance(m.name, str):
            raise ManifestError("name, version or rows of the wrong type")
        return m


def config_hash(config: Mapping[str, Any]) -> str:
    return sha256_bytes(orjson.dumps(config, option=orjson.OPT_SORT_KEYS))


def code_version() -> str:
    from curate import __version__

    return __version__
