"""``curate generate``: sample n responses per prompt into a resumable ledger.

Registered by ``curate.cli`` as ``app.command("generate")(generate_command)``; also runnable alone as
``python -m curate.cli.generate``. Bad options and unusable inputs exit with code 2 and one line; bad
rows of the prompts file go to ``OUT/prompts.quarantine.jsonl`` (ingest's format) and the rest generate.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from curate.cli.app import progress as progress_bar
from curate.errors import RunFailed, UsageError
from curate.generate.engines.base import EngineError, SamplingParams
from curate.generate.ledger import Ledger, LedgerMismatch
from curate.generate.prompts import read_prompt_pool
from curate.generate.templates import PromptTemplate, load_examples


def _fail(msg: str, code: int = 2) -> NoReturn:
    """Refuse (exit 2) or fail (exit 1) through the CLI's one error path."""
    raise (RunFailed if code == 1 else UsageError)(msg)


def _parse_worker(worker: str | None) -> tuple[int, int]:
    if worker is None:
        return (0, 1)
    try:
        i, k = (int(x) for x in worker.split("/"))
    except ValueError:
        _fail(f"--worker must look like I/K (e.g. 0/4), got {worker!r}")
    if not 0 <= i < k:
        _fail(f"--worker {worker}: need 0 <= I < K")
    return (i, k)


def generate_command(
    ctx: typer.Context,
    prompts: Annotated[Path, typer.Option("--prompts", help="Prompts file, JSONL or Parquet (schemas/prompt.yaml)")],
    model: Annotated[str, typer.Option("--model", help="Checkpoint path or served model name")],
    out: Annotated[Path, typer.Option("--out", help="Ledger directory (created; resumed if it exists)")],
    engine: Annotated[str, typer.Option("--engine", help="vllm | openai | hf")] = "hf",
    n: Annotated[int, typer.Option("--n", help="Samples per prompt")] = 16,
    shard_size: Annotated[int, typer.Option("--shard-size", help="Prompts per ledger shard")] = 64,
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 32768,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.6,
    top_p: Annotated[float, typer.Option("--top-p")] = 0.95,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    stop: Annotated[list[str] | None, typer.Option("--stop", help="Stop string (repeatable)")] = None,
    template: Annotated[str, typer.Option("--template", help="r1 | r1-zero | few-shot | chat")] = "r1",
    system: Annotated[str | None, typer.Option("--system", help="System turn for chat templates")] = None,
    few_shot: Annotated[Path | None, typer.Option("--few-shot", help="JSONL of {prompt, response} exemplars")] = None,
    base_url: Annotated[str, typer.Option("--base-url", help="openai: server URL")] = "http://localhost:8000/v1",
    api_key_env: Annotated[
        str, typer.Option("--api-key-env", help="openai: env var holding the key")
    ] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option("--concurrency", help="openai: requests in flight")] = 64,
    max_retries: Annotated[int, typer.Option("--max-retries", help="openai: retries per request")] = 8,
    timeout: Annotated[float, typer.Option("--timeout", help="openai: seconds per request")] = 600.0,
    split_n: Annotated[bool, typer.Option("--split-n", help="openai: one request per sample")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="hf: samples decoded together")] = 32,
    device: Annotated[str, typer.Option("--device", help="hf: torch device")] = "cpu",
    dtype: Annotated[str, typer.Option("--dtype", help="hf/vllm: auto | float32 | bfloat16 | float16")] = "auto",
    tensor_parallel_size: Annotated[int, typer.Option("--tensor-parallel-size", help="vllm: GPUs per model")] = 1,
    gpu_memory_utilization: Annotated[float, typer.Option("--gpu-memory-utilization", help="vllm")] = 0.9,
    max_model_len: Annotated[int | None, typer.Option("--max-model-len", help="vllm")] = None,
    kv_cache_gib: Annotated[
        float | None, typer.Option("--kv-cache-gib", help="vllm on CPU: KV cache GiB (default: 1/4 of free RAM, <= 4)")
    ] = None,
    vllm_option: Annotated[
        list[str] | None, typer.Option("--vllm-option", help="vllm: any other LLM() keyword, KEY=JSON (repeatable)")
    ] = None,
    data_parallel: Annotated[int, typer.Option("--data-parallel", help="Worker processes, one per GPU group")] = 1,
    worker: Annotated[str | None, typer.Option("--worker", help="Run only shards s with s % K == I (I/K)")] = None,
    stats: Annotated[Path | None, typer.Option("--stats", help="Append one JSON line per engine call")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar")] = True,
) -> None:
    """Sample N responses per prompt into a crash-safe, resumable ledger of Parquet shards."""
    from curate.generate.engines import ENGINES, engine_config, make_engine
    from curate.generate.runner import build_manifest, generate_ledger

    if engine not in ENGINES:
        _fail(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if shard_size < 1 or data_parallel < 1 or batch_size < 1 or concurrency < 1:
        _fail("--shard-size, --data-parallel, --batch-size and --concurrency must be >= 1")
    _check_engine_options(ctx, engine)
    vllm_extra = _parse_vllm_options(vllm_option or [])
    _check_model(engine, model, max_tokens, max_model_len)
    if engine == "vllm":
        import importlib.util

        from curate.generate.engines.vllm import VENV_HINT

        if importlib.util.find_spec("vllm") is None:
            _fail(f"--engine vllm: vllm is not installed in this environment; {VENV_HINT}")
    try:
        params = SamplingParams(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            seed=seed,
            stop=tuple(stop or ()),
        )
        examples = load_examples(few_shot) if few_shot else None
        tmpl = PromptTemplate(template, system, examples) if examples else PromptTemplate(template, system)
        pool = read_prompt_pool(prompts)  # bad rows are kept aside, written to the quarantine below
    except (ValueError, OSError) as e:  # PromptFileError is a ValueError
        _fail(str(e))
    table = pool.table
    worker_slot = _parse_worker(worker)
    ledger = Ledger(out)
    manifest = build_manifest(
        model=model,
        engine=engine,
        params=params,
        template=tmpl,
        shard_size=shard_size,
        n_prompts=table.height,
        prompts_file=prompts,
    )
    try:
        manifest = ledger.open(manifest)
    except LedgerMismatch as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot create ledger {out}: {e}")
    try:  # the ledger lease is held until this run ends (the kernel drops it if the process dies)
        try:  # every process writes the same file atomically; only after open, so a refused run leaves none
            quarantine = pool.write_quarantine(out)
        except OSError as e:
            _fail(f"cannot write the prompts quarantine in {out}: {e}")

        if data_parallel > 1:
            _launch_workers(ctx, data_parallel, tensor_parallel_size)
            return
        # Every engine's options at once, under its config's field names; each engine takes its own.
        opts: dict[str, Any] = dict(
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            base_url=base_url,
            api_key=os.environ.get(api_key_env) if api_key_env else None,
            concurrency=concurrency,
            max_retries=max_retries,
            timeout_s=timeout,
            split_n=split_n,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            kv_cache_gib=kv_cache_gib,
            extra=vllm_extra,
        )
        try:
            eng = make_engine(engine, model, engine_config(engine, opts, strict=False))
        except EngineError as e:
            _fail(str(e))
        if worker_slot[0] == 0:  # one counts line per run, not one per data-parallel worker
            typer.echo(pool.summary(quarantine), err=True)
        try:
            with progress_bar("generate", "samples", enabled=progress and sys.stderr.isatty(), transient=False) as tick:
                result = generate_ledger(
                    table,
                    eng,
                    params,
                    tmpl,
                    ledger,
                    manifest,
                    worker=worker_slot,
                    stats_path=stats,
                    on_progress=tick.at,
                )
        except EngineError as e:
            _fail(f"{e} (finished shards are kept; rerun the same command to resume)", code=1)
        finally:
            eng.close()
        typer.echo(
            f"{out}: {result.shards_written} shards written, {result.shards_skipped} already done, "
            f"{result.samples_written} samples in {result.wall_s:.1f}s "
            f"(engine {result.engine_s:.1f}s, ledger {result.ledger_s:.2f}s)",
            err=True,
        )
    finally:
        ledger.close()


# Options that belong to one engine (or two): set to a non-default value for another engine they would be
# silently ignored, so they are refused instead.
ENGINE_OPTIONS: dict[str, tuple[str, ...]] = {
    "base_url": ("openai",),
    "api_key_env": ("openai",),
    "concurrency": ("openai",),
    "max_retries": ("openai",),
    "timeout": ("openai",),
    "split_n": ("openai",),
    "batch_size": ("hf",),
    "device": ("hf",),
    "dtype": ("hf", "vllm"),
    "tensor_parallel_size": ("vllm",),
    "gpu_memory_utilization": ("vllm",),
    "max_model_len": ("vllm",),
    "kv_cache_gib": ("vllm",),
    "vllm_option": ("vllm",),
}


def _check_engine_options(ctx: typer.Context, engine: str) -> None:
    for p in ctx.command.params:
        engines = ENGINE_OPTIONS.get(p.name or "")
        value = ctx.params.get(p.name or "")
        if engines and engine not in engines and value not in (p.default, None, [], ()):
            opt = p.opts[0] if getattr(p, "opts", None) else p.name
            _fail(f"{opt} is an option of --engine {' / '.join(engines)}, not of --engine {engine}")


def _parse_vllm_options(items: list[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            _fail(f"--vllm-option must look like KEY=VALUE (e.g. enforce_eager=true), got {item!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _check_model(engine: str, model: str, max_tokens: int, max_model_len: int | None) -> None:
    """Before anything starts: a local checkpoint folder exists, and ``--max-tokens`` fits its context."""
    if engine == "openai":
        return  # a served model name; the server knows its own limits
    looks_local = model.startswith((".", "/", "~")) or model.count("/") > 1
    path = Path(model).expanduser()
    if looks_local and not path.is_dir():
        _fail(f"checkpoint directory not found: {model}")
    if not path.is_dir():
        return  # a hub name: nothing local to check
    from curate.generate.engines.vllm import context_length

    ctx_len = context_length(model)
    limit, what = (max_model_len, "--max-model-len") if engine == "vllm" and max_model_len else (ctx_len, "")
    if limit is not None and max_tokens >= limit:
        where = what or f"the model's context length (max_position_embeddings in {path / 'config.json'})"
        _fail(
            f"--max-tokens {max_tokens} leaves no room for the prompt in {where}, {limit} tokens; "
            f"use --max-tokens below {limit}"
        )


def _launch_workers(ctx: typer.Context, k: int, tp: int) -> None:
    """Re-run this command as ``k`` worker processes, each on its own GPU group; shards are split by
    index, so workers never touch the same part file."""
    argv = _command_argv(ctx, skip=("data_parallel", "worker"))
    procs = []
    for i in range(k):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(str(g) for g in range(i * tp, (i + 1) * tp)))
        cmd = [sys.executable, "-m", "curate.cli.generate", *argv, "--worker", f"{i}/{k}"]
        procs.append(subprocess.Popen(cmd, env=env))
    codes = [p.wait() for p in procs]
    if any(codes):
        _fail(f"data-parallel workers exited with {codes}; rerun to resume", code=1)


def _command_argv(ctx: typer.Context, skip: tuple[str, ...]) -> list[str]:
    """This command's options as parsed, back as argv (independent of how the command was invoked)."""
    argv: list[str] = []
    for p in ctx.command.params:
        value = ctx.params.get(p.name or "")
        if p.name in skip or value is None or not getattr(p, "opts", None):
            continue
        if isinstance(value, bool):
            secondary = getattr(p, "secondary_opts", None)
            flag = p.opts[0] if value else (secondary[0] if secondary else None)
            argv += [flag] if flag else []
        elif isinstance(value, list | tuple):
            for v in value:
                argv += [p.opts[0], str(v)]
        else:
            argv += [p.opts[0], str(value)]
    return argv


def main() -> None:
    """``python -m curate.cli.generate ...`` (data-parallel workers): ``curate generate ...``."""
    from curate.cli import main as cli_main

    argv = sys.argv[1:]
    cli_main(argv if argv[:1] == ["generate"] else ["generate", *argv])


if __name__ == "__main__":
    main()
