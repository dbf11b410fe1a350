"""One rejection-sampling round of the demo through the real pipeline, shared by ``curate demo`` and
``curate demo --full``: prompts file -> ``generate`` ledger (transformers engine) -> every row check ->
dedup -> a published ``checked`` version."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from curate import pipeline
from curate.demo.experiment import ToySamplingConfig
from curate.demo.task import Problem
from curate.recipes.config import GenerateConfig
from curate.store import DatasetVersion, Store

Say = Callable[[str], None]


def write_prompts(path: Path, problems: Sequence[Problem]) -> Path:
    """The problems as a ``prompt`` table in JSONL (what ``curate generate`` reads)."""
    rows = [{**p.row(), "source": "curate-demo"} for p in problems]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


@dataclass(frozen=True, slots=True)
class Round:
    checked: DatasetVersion
    ledger: Path
    rows: int


def sample_and_check(
    store: Store,
    name: str,
    model: str | Path,
    problems: Sequence[Problem],
    sampling: ToySamplingConfig,
    checks: dict[str, Any],
    say: Say = lambda _: None,
) -> Round:
    """Sample ``sampling.n`` responses per problem from ``model`` into the ledger ``ledgers/<name>``
    (resuming: finished shards are kept), run every check and publish ``<name>_checked``."""
    home = store.local_dir
    prompts = write_prompts(home / "prompts" / f"{name}.jsonl", problems)
    spec = GenerateConfig(
        prompts=str(prompts),
        model=str(model),
        engine="hf",
        n=sampling.n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_new_tokens,
        seed=sampling.seed,
        shard_size=32,
        template="r1",
    )
    ledger = home / "ledgers" / name
    plan = pipeline.plan_generation(spec, ledger)
    say(f"  ledger {ledger}: {plan.n_shards} shards of 32 prompts x n={spec.n}, {plan.done} already done")
    pipeline.generate_shards(spec, ledger, engine_options={"batch_size": sampling.batch_size})
    work = ledger / "checks"
    work.mkdir(parents=True, exist_ok=True)
    report = pipeline.row_checks(pipeline.ledger_parts(ledger), work / "rows.parquet", checks)
    pipeline.corpus_check("dedup", work / "rows.parquet", work / "final.parquet", checks)
    checked = pipeline.publish_checked_file(
        store, f"{name}_checked", work / "final.parquet", checks, parents=[f"ledger:{ledger}"]
    )
    return Round(checked=checked, ledger=ledger, rows=report.rows)
