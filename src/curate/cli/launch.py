"""``curate launch sft|grpo``: train on a dataset version, or print the cluster commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.app import UserError, console, launch_app, store_from


def _check_model(model: str) -> None:
    if not Path(model).exists():
        raise UserError(f"{model}: no such checkpoint directory (nothing is downloaded at run time)")


@launch_app.command("sft")
def launch_sft(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="SFT dataset NAME@VERSION (messages or prompt/completion)")],
    model: Annotated[str, typer.Option("--model", help="Base checkpoint directory")],
    out: Annotated[Path, typer.Option("--out", help="Output checkpoint directory")],
    epochs: Annotated[float, typer.Option("--epochs")] = 2.0,
    max_steps: Annotated[int, typer.Option("--max-steps")] = -1,
    lr: Annotated[float, typer.Option("--lr")] = 1e-5,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Only print accelerate/torchrun/OpenRLHF commands")
    ] = False,
) -> None:
    """Supervised fine-tuning with TRL's SFTTrainer; the run is recorded in the catalog's runs table."""
    from curate.launch import SFTRunConfig, accelerate_sft, openrlhf_sft, run_sft, torchrun_sft

    store = store_from(ctx)
    if cluster:
        dv = store.get(dataset)
        console.print(accelerate_sft(dv, model, str(out)), soft_wrap=True)
        console.print(torchrun_sft(dv, model, str(out)), soft_wrap=True)
        console.print(openrlhf_sft("EXPORT.jsonl  # curate export " + dv.manifest.ref, model, str(out)), soft_wrap=True)
        return
    _check_model(model)
    rec = run_sft(
        store,
        dataset,
        model,
        out,
        SFTRunConfig(epochs=epochs, max_steps=max_steps, learning_rate=lr, batch_size=batch_size),
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
    out: Annotated[Path, typer.Option("--out", help="Output checkpoint directory")],
    max_steps: Annotated[int, typer.Option("--max-steps")] = 100,
    num_generations: Annotated[int, typer.Option("--num-generations")] = 8,
    max_completion_length: Annotated[int, typer.Option("--max-completion-length")] = 1024,
    lr: Annotated[float, typer.Option("--lr")] = 1e-6,
    cluster: Annotated[bool, typer.Option("--cluster", help="Only print the verl command")] = False,
) -> None:
    """GRPO with TRL's GRPOTrainer, rewarded by curate's format, correctness and language checks."""
    from curate.launch import GRPORunConfig, run_grpo, verl_grpo

    store = store_from(ctx)
    if cluster:
        console.print(verl_grpo(store.get(dataset), model), soft_wrap=True)
        return
    _check_model(model)
    spec = GRPORunConfig(
        max_steps=max_steps,
        num_generations=num_generations,
        batch_size=num_generations,
        max_completion_length=max_completion_length,
        learning_rate=lr,
    )
    rec = run_grpo(store, dataset, model, out, spec)
    console.print(f"run {rec.run_id}: {rec.dataset} -> {rec.output} ({rec.metrics['wall_s']:.0f}s)")
