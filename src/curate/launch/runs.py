"""Training runs recorded in the store: ``<home>/runs/<run_id>/run.json`` and the catalog's ``runs`` table.

A run links a dataset version to the checkpoint it produced, so lineage reads
prompts -> samples -> checked -> dataset@v -> run -> checkpoint -> next round's samples.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from curate.store import Store


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    kind: str  # sft | grpo
    dataset: str  # name@version
    base_model: str
    output: str  # checkpoint directory
    config: Mapping[str, Any]
    metrics: Mapping[str, Any]
    status: str  # finished | failed
    created_at: str
    finished_at: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def new_run_id(kind: str) -> str:
    return f"{kind}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def runs_dir(store: Store) -> Path:
    return store.home / "runs"


def record_run(store: Store, rec: RunRecord) -> Path:
    """Write run.json atomically and refresh the catalog (which rebuilds the ``runs`` table)."""
    d = runs_dir(store) / rec.run_id
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / ".run.json.tmp"
    tmp.write_bytes(orjson.dumps(asdict(rec), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, d / "run.json")
    store.refresh_catalog()
    return d / "run.json"


def iter_runs(store: Store) -> Iterator[RunRecord]:
    root = runs_dir(store)
    if not root.exists():
        return
    for p in sorted(root.glob("*/run.json")):
        yield RunRecord(**orjson.loads(p.read_bytes()))
