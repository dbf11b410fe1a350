"""Drive an engine over a prompt pool, shard by shard, into a crash-safe ledger.

Resume rests on the ledger's part files, never on process state: a restarted run (a new process, after
``kill -9``) lists done parts, skips them, and generates only the missing shards. With ``worker=(i, k)``
a process takes shards ``s`` with ``s % k == i``: data parallelism is ``k`` processes on one ledger.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from curate.generate.checkpoint import checkpoint_fingerprint
from curate.generate.engines.base import (
    Completion,
    Engine,
    Request,
    SamplingParams,
    prompt_seed,
    sample_id,
    stable_hash,
)
from curate.generate.ledger import Ledger, RunManifest
from curate.generate.templates import PromptTemplate
from curate.io.files import sha256_file
from curate.schema import table

_CODE_VERSION = "curate.generate/1"


def run_params(params: SamplingParams, template: PromptTemplate) -> dict[str, object]:
    """What the params hash covers: sampling parameters and the prompt template."""
    return {**params.to_dict(), "template": template.describe()}


def params_hash(params: SamplingParams, template: PromptTemplate) -> str:
    return stable_hash(run_params(params, template))[:16]


def build_manifest(
    *,
    model: str,
    engine: str,
    params: SamplingParams,
    template: PromptTemplate,
    shard_size: int,
    n_prompts: int,
    prompts_file: str | Path,
) -> RunManifest:
    return RunManifest(
        model=model,
        engine=engine,
        template=template.name,
        params=run_params(params, template),
        params_hash=params_hash(params, template),
        shard_size=shard_size,
        n_prompts=n_prompts,
        n_shards=-(-n_prompts // shard_size),
        prompts_file=str(prompts_file),
        prompts_sha256=sha256_file(prompts_file),
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        code_version=_CODE_VERSION,
        model_fingerprint=checkpoint_fingerprint(model),
    )


@dataclass(frozen=True, slots=True)
class RunResult:
    shards_total: int
    shards_skipped: int  # already done when the run started
    shards_written: int
    samples_written: int
    engine_s: float  # time inside engine.generate
    ledger_s: float  # time building rows and writing parts
    wall_s: float


def shard_rows(
    prompts: pl.DataFrame,
    completions: Sequence[Sequence[Completion]],
    *,
    shard: int,
    checkpoint: str,
    engine: str,
    phash: str,
    params_json: str,
    n: int,
    seed: int = 0,
) -> pa.Table:
    """The ledger rows of one shard: each prompt row repeated n times plus the generated columns."""
    idx = np.repeat(np.arange(prompts.height), n)
    base = prompts[idx].drop("source")
    flat = [c for row in completions for c in row]
    pids = base["prompt_id"].to_list()
    index = np.tile(np.arange(n, dtype=np.int32), prompts.height)
    now = dt.datetime.now(dt.UTC)
    df = base.with_columns(
        pl.Series("sample_id", [sample_id(p, checkpoint, phash, int(i)) for p, i in zip(pids, index, strict=True)]),
        pl.Series("response", [c.text for c in flat], dtype=pl.String),
        pl.Series("reasoning", [c.reasoning for c in flat], dtype=pl.String),
        pl.Series("prefill", [c.prefill for c in flat], dtype=pl.String),
        pl.Series("finish_reason", [c.finish_reason for c in flat], dtype=pl.String),
        pl.Series("sample_index", index, dtype=pl.Int32),
        pl.Series("seed", [prompt_seed(seed, p) + int(i) for p, i in zip(pids, index, strict=True)], dtype=pl.Int64),
        pl.lit(checkpoint).alias("checkpoint"),
        pl.lit(engine).alias("engine"),
        pl.lit(phash).alias("params_hash"),
        pl.lit(params_json).alias("sampling_params"),
        pl.Series("tokens_in", [c.tokens_in for c in flat], dtype=pl.Int32),
        pl.Series("tokens_out", [c.tokens_out for c in flat], dtype=pl.Int32),
        pl.Series("latency_s", [c.latency_s for c in flat], dtype=pl.Float64),
        pl.lit(shard, dtype=pl.Int32).alias("shard"),
        pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("created_at"),
    )
    return table("sample").to_arrow(df)


ProgressHook = Callable[[int, int], None]  # (samples completed, samples total) for this worker


def generate_ledger(
    prompts: pl.DataFrame,
    engine: Engine,
    params: SamplingParams,
    template: PromptTemplate,
    ledger: Ledger,
    manifest: RunManifest,
    *,
    worker: tuple[int, int] = (0, 1),
    stats_path: str | Path | None = None,
    on_progress: ProgressHook | None = None,
) -> RunResult:
    """Generate every missing shard of ``manifest``'s run into ``ledger`` (opened by the caller).

    ``stats_path``: a JSON line is appended per engine call (shard, prompts, samples, seconds, pid),
    flushed before the shard is written, so a killed run's calls are still counted.
    """
    t_start = time.perf_counter()
    size, total = manifest.shard_size, manifest.n_shards
    done = ledger.done_shards()
    mine = [s for s in range(total) if s % worker[1] == worker[0]]
    todo = [s for s in mine if s not in done]

    def n_samples(shards: list[int]) -> int:
        return sum(max(0, min(size, manifest.n_prompts - s * size)) for s in shards) * params.n

    completed, grand = n_samples([s for s in mine if s in done]), n_samples(mine)
    if on_progress:
        on_progress(completed, grand)
    params_json = orjson.dumps(run_params(params, template), option=orjson.OPT_SORT_KEYS).decode()
    engine_s = ledger_s = 0.0
    written = samples = 0
    stats = open(stats_path, "a", encoding="utf-8") if stats_path else None  # noqa: SIM115

    def run_shard(s: int) -> None:
        nonlocal engine_s, ledger_s, written, samples, completed
        chunk = prompts.slice(s * size, size)
        reqs = [
            Request(pid, template.render(text), prompt_seed(params.seed, pid))
            for pid, text in zip(chunk["prompt_id"], chunk["prompt"], strict=True)
        ]
        t0 = time.perf_counter()
        if stats:
            stats.write(orjson.dumps({"event": "call", "shard": s, "pid": os.getpid()}).decode() + "\n")
            stats.flush()
        comps = engine.generate(reqs, params)
        t1 = time.perf_counter()
        if len(comps) != len(reqs) or any(len(c) != params.n for c in comps):
            raise RuntimeError(f"engine {engine.name} returned a wrong number of completions for shard {s}")
        tbl = shard_rows(
            chunk,
            comps,
            shard=s,
            checkpoint=manifest.model,
            engine=manifest.engine,
            phash=manifest.params_hash,
            params_json=params_json,
            n=params.n,
            seed=params.seed,
        )
        ledger.write_shard(s, tbl)
        t2 = time.perf_counter()
        engine_s += t1 - t0
        ledger_s += t2 - t1
        written += 1
        samples += tbl.num_rows
        if stats:
            stats.write(
                orjson.dumps(
                    {
                        "event": "done",
                        "shard": s,
                        "samples": tbl.num_rows,
                        "engine_s": round(t1 - t0, 6),
                        "ledger_s": round(t2 - t1, 6),
                        "pid": os.getpid(),
                    }
                ).decode()
                + "\n"
            )
            stats.flush()
        completed += tbl.num_rows
        if on_progress:
            on_progress(completed, grand)

    try:
        # One writer per shard: a shard another live process holds is skipped now and waited for at the
        # end (then it is done, or its holder died and this run takes it over).
        busy: list[int] = []
        for s in todo:
            lease = ledger.claim(s)
            if lease is None:
                busy.append(s)
                continue
            with lease:
                if not ledger.is_done(s):
                    run_shard(s)
        for s in busy:
            waited = ledger.claim(s, wait=True)
            assert waited is not None
            with waited:
                if not ledger.is_done(s):
                    run_shard(s)
    finally:
        if stats:
            stats.close()
    return RunResult(
        len(mine), len(mine) - len(todo), written, samples, engine_s, ledger_s, time.perf_counter() - t_start
    )
