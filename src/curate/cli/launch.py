"""``curate launch sft|grpo``: train on a dataset version, or print the cluster commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from curate.cli.app import UserError, console, err, launch_app, store_from

_REMOTE = typer.Option(
    "--remote-root",
    help="Where the store is on the cluster (default: paths relative to the store root, run from there)",
)


def _check_model(model: str) -> None:
    if not Path(model).exists():
        raise UserError(f"{model}: no such checkpoint directory (nothing is downloaded at run time)")


def _print_commands(commands: list[Any], plan: dict[str, Any], store: Any, dataset: str, kind: str) -> None:
    """Commands on stdout (pipe them to a script), notes on stderr; the plan is kept beside the store."""
    from curate.io.files import write_bytes_atomic

    for c in commands:
        console.print(c.shell(), soft_wrap=True, markup=False, highlight=False)
    if commands:
        err.print(f"# {commands[0].notes[0]}", markup=False, highlight=False, soft_wrap=True)
    target = store.home / "launch" / "plans" / f"{dataset.replace('@', '_v')}-{kind}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {**plan, "commands": [{"trainer": c.trainer, "entry": c.entry, "argv": list(c.argv)} for c in commands]}
    write_bytes_atomic(orjson.dumps(body, option=orjson.OPT_INDENT_2), target)
    err.print(f"# plan recorded in {target}", markup=False, highlight=False, soft_wrap=True)


def _cluster_plan(store: Any, dv: Any, model: str, max_length: int | None) -> Any:
    """The length plan on this machine's copy of the data: tokens with the model's tokenizer when the model
    is here (and its chat template checked), else a chars/4 estimate."""
    from curate.launch.preflight import length_plan
    from curate.launch.sft import sft_preflight

    if Path(model).exists():
        return sft_preflight(store, dv.manifest.ref, model, max_length)
    err.print(
        f"# {model} is not on this machine: chat template not checked, lengths estimated at 4 chars a "
        f"token (point --model at a local copy to count tokens)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return length_plan(dv, None, max_length)


@launch_app.command("sft")
def launch_sft(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="SFT dataset NAME@VERSION (messages or prompt/completion)")],
    model: Annotated[
        str, typer.Option("--model", help="Base checkpoint directory (a path on the cluster with --cluster)")
    ],
    out: Annotated[str, typer.Option("--out", help="Output checkpoint directory")],
    epochs: Annotated[float, typer.Option("--epochs")] = 2.0,
    max_steps: Annotated[int, typer.Option("--max-steps")] = -1,
    lr: Annotated[float, typer.Option("--lr")] = 1e-5,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    max_length: Annotated[
        int | None, typer.Option("--max-length", min=16, help="Tokens per sample (default: the data's p99)")
    ] = None,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Only print TRL (accelerate, torchrun) and OpenRLHF commands")
    ] = False,
    remote_root: Annotated[str | None, _REMOTE] = None,
    gpus: Annotated[int, typer.Option("--gpus", min=1, help="GPUs per node (cluster commands)")] = 8,
) -> None:
    """Supervised fine-tuning with TRL's SFTTrainer; the run is recorded in the catalog's runs table."""
    from curate.launch import (
        ClusterPaths,
        SFTRunConfig,
        accelerate_sft,
        openrlhf_sft,
        run_sft,
        sft_preflight,
        torchrun_sft,
    )

    store = store_from(ctx)
    dv = store.get(dataset)
    if cluster:
        plan = _cluster_plan(store, dv, model, max_length)
        err.print(f"# {plan.line()}", markup=False, highlight=False, soft_wrap=True)
        paths = ClusterPaths(store.home, remote_root)
        kw = {"gpus": gpus, "max_length": plan.max_length}
        cmds = [
            accelerate_sft(dv, paths, model, out, epochs=epochs, **kw),
            torchrun_sft(dv, paths, model, out, epochs=epochs, **kw),
            openrlhf_sft(dv, paths, model, out, epochs=max(1, round(epochs)), **kw),
        ]
        _print_commands(cmds, {"dataset": dv.manifest.ref, "max_length_plan": plan.to_dict()}, store, dataset, "sft")
        return
    _check_model(model)
    plan = sft_preflight(store, dataset, model, max_length)
    rec = run_sft(
        store,
        dataset,
        model,
        out,
        SFTRunConfig(epochs=epochs, max_steps=max_steps, learning_rate=lr, batch_size=batch_size),
        plan=plan,
        report=lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True),
    )
    console.print(
        f"run {rec.run_id}: {rec.dataset} -> {rec.output} "
        f"(loss {rec.metrics.get('train_loss', float('nan')):.3f}, {rec.metrics['wall_s']:.0f}s)"
    )


@launch_app.command("grpo")
def launch_grpo(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="rl_prompts NAME@VERSION (verl format)")],
    model: Annotated[str, typer.Option("--model", help="Policy checkpoint directory")],
    out: Annotated[str, typer.Option("--out", help="Output checkpoint directory")],
    max_steps: Annotated[int, typer.Option("--max-steps")] = 100,
    num_generations: Annotated[int, typer.Option("--num-generations", min=2)] = 8,
    max_completion_length: Annotated[
        int | None,
        typer.Option(
            "--max-completion-length", min=1, help="Tokens per completion (default 1024 here, 32768 on a cluster)"
        ),
    ] = None,
    lr: Annotated[float, typer.Option("--lr")] = 1e-6,
    cluster: Annotated[bool, typer.Option("--cluster", help="Only print the verl and OpenRLHF commands")] = False,
    remote_root: Annotated[str | None, _REMOTE] = None,
    gpus: Annotated[int, typer.Option("--gpus", min=1, help="GPUs per node (cluster commands)")] = 8,
    nodes: Annotated[int, typer.Option("--nodes", min=1, help="Nodes (verl)")] = 1,
    val: Annotated[
        str | None,
        typer.Option(
            "--val",
            help="Validation rl_prompts NAME@VERSION for verl (default: the same version, periodic validation off)",
        ),
    ] = None,
) -> None:
    """GRPO with TRL's GRPOTrainer, rewarded by curate's format, correctness and language checks."""
    from curate.launch import ClusterPaths, GRPORunConfig, openrlhf_grpo, run_grpo, verl_grpo

    store = store_from(ctx)
    dv = store.get(dataset)
    if cluster:
        paths = ClusterPaths(store.home, remote_root)
        kw = {"gpus": gpus, "n": num_generations, "max_response_length": max_completion_length or 32768}
        cmds = [
            verl_grpo(dv, paths, model, out, val=store.get(val) if val else None, nodes=nodes, **kw),
            openrlhf_grpo(dv, paths, model, out, **kw),
        ]
        _print_commands(cmds, {"dataset": dv.manifest.ref}, store, dataset, "grpo")
        return
    _check_model(model)
    spec = GRPORunConfig(
        max_steps=max_steps,
        num_generations=num_generations,
        batch_size=num_generations,
        max_completion_length=max_completion_length or 1024,
        learning_rate=lr,
    )
    rec = run_grpo(store, dataset, model, out, spec)
    console.print(f"run {rec.run_id}: {rec.dataset} -> {rec.output} ({rec.metrics['wall_s']:.0f}s)")
