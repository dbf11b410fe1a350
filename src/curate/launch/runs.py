"""Training runs recorded in the store: ``<home>/runs/<run_id>/run.json`` and the catalog's ``runs`` table.

A run links a dataset version to the checkpoint it produced, so lineage reads
prompts -> samples -> checked -> dataset@v -> run -> checkpoint -> next round's samples.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from curate.io.files import write_bytes_atomic
from curate.store import DatasetVersion, Store

# (dataset version, model, tokenizer, scratch dir) -> a transformers/TRL trainer
MakeTrainer = Callable[[DatasetVersion, Any, Any, Path], Any]


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
    return store.local_dir / "runs"


def record_run(store: Store, rec: RunRecord) -> Path:
    """Write run.json atomically and refresh the catalog (which rebuilds the ``runs`` table)."""
    d = runs_dir(store) / rec.run_id
    d.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(orjson.dumps(asdict(rec), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS), d / "run.json")
    store.refresh_catalog()
    return d / "run.json"


def iter_runs(store: Store) -> Iterator[RunRecord]:
    root = runs_dir(store)
    if not root.exists():
        return
    for p in sorted(root.glob("*/run.json")):
        yield RunRecord(**orjson.loads(p.read_bytes()))


def train_and_record(
    store: Store,
    kind: str,
    dataset_ref: str,
    model: str,
    out: str | Path,
    config: Mapping[str, Any],
    make_trainer: MakeTrainer,
) -> RunRecord:
    """Load ``model``, train with the trainer ``make_trainer`` builds, save a checkpoint that
    ``curate generate`` loads, and record the run (dataset version -> run -> checkpoint) in the catalog."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dv = store.get(dataset_ref)
    out = Path(out).absolute()
    run_id = new_run_id(kind)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model)
    net = AutoModelForCausalLM.from_pretrained(model)
    scratch = out.parent / f".{out.name}.trainer"
    trainer = make_trainer(dv, net, tokenizer, scratch)
    result = trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    shutil.rmtree(scratch, ignore_errors=True)
    metrics = {k: float(v) for k, v in (result.metrics or {}).items() if isinstance(v, (int, float))}
    metrics["examples"] = float(len(trainer.train_dataset))
    metrics["wall_s"] = time.perf_counter() - t0
    rec = RunRecord(
        run_id=run_id,
        kind=kind,
        dataset=dv.manifest.ref,
        base_model=str(model),
        output=str(out),
        config=dict(config),
        metrics=metrics,
        status="finished",
        created_at=started,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    record_run(store, rec)
    return rec
