"""``curate recipe``, ``run``, ``serve``: select from checked data, run a recipe's flow, serve it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from curate.checks.funnel import Funnel
from curate.cli.app import UserError, app, console, print_funnel, store_from


@app.command("recipe")
def recipe_command(
    ctx: typer.Context,
    recipe_file: Annotated[Path, typer.Argument(help="Recipe YAML (cold_start_sft | rs_sft | distill | rl_prompts)")],
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", help="Checked dataset ref or Parquet file (repeatable); overrides the recipe's inputs"
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Output dataset name (default: the recipe's)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Select from checked samples and publish the recipe's dataset version (+ selection and pass rates)."""
    import dataclasses

    from curate.recipes import load_recipe, run_recipe

    recipe = load_recipe(recipe_file)
    if inputs:
        recipe = dataclasses.replace(recipe, inputs=tuple(inputs))
    if name:
        recipe = dataclasses.replace(recipe, name=name)
    pub = run_recipe(recipe, store_from(ctx))
    m = pub.dataset.manifest
    if as_json:
        print(
            orjson.dumps(
                {
                    "dataset": m.ref,
                    "rows": m.rows,
                    "selection": pub.selection.manifest.ref,
                    "pass_rates": pub.pass_rates.manifest.ref,
                    "unchanged": pub.dataset.unchanged,
                    "funnel": dict(m.funnel),
                }
            ).decode()
        )
        return
    if pub.dataset.unchanged:
        console.print(f"unchanged: [bold]{m.ref}[/] already holds this content; nothing published")
        return
    console.print(
        f"published [bold]{m.ref}[/] ({m.kind}, {m.rows:,} rows) from {', '.join(m.parents)}; "
        f"decisions in {pub.selection.manifest.ref}, pass rates in {pub.pass_rates.manifest.ref}"
    )
    print_funnel(Funnel.from_dict(m.funnel))


RECIPE_FLOWS = {
    "rs_sft": "rejection_sampling",
    "cold_start_sft": "cold_start",
    "distill": "distill",
    "rl_prompts": "rl_prompts",
}


@app.command("run")
def run_command(
    ctx: typer.Context,
    recipe_file: Annotated[Path, typer.Argument(help="Recipe YAML with a generate section")],
    workers: Annotated[int, typer.Option("--workers", min=1, help="Generation workers (shards s % K == i)")] = 1,
    dask: Annotated[int, typer.Option("--dask", min=0, help="Fan out on a local Dask cluster of N workers")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a recipe's flow once on Prefect's embedded (ephemeral) API: nothing to start by hand.

    The recipe is checked first (paths against the recipe file, engine, model, prompts, check options): a
    mistake is one line and exit code 2 before Prefect starts."""
    from curate.cli.interrupts import held
    from curate.cli.prefect_env import quiet
    from curate.recipes import load_checked_recipe

    load_checked_recipe(recipe_file)
    quiet()
    with held():
        from prefect import tags

        from curate.flows import FLOWS
        from curate.flows.tasks import recipe_tags
    from curate.recipes import load_recipe

    recipe = load_recipe(recipe_file)

    fl = FLOWS[RECIPE_FLOWS[recipe.kind]]
    if dask:
        from prefect_dask import DaskTaskRunner  # type: ignore[attr-defined]

        fl = fl.with_options(
            task_runner=DaskTaskRunner(
                cluster_class="distributed.LocalCluster",
                cluster_kwargs={"n_workers": dask, "threads_per_worker": 1, "processes": True},
            )
        )
        workers = max(workers, dask)
    home = ctx.obj.get("home") if ctx.obj else None
    with tags(*recipe_tags(recipe_file)):
        result = fl(recipe_path=str(recipe_file.absolute()), home=str(home) if home else None, workers=workers)
    if as_json:
        print(orjson.dumps(result.summary(), default=str).decode())
        return
    console.print(
        f"checked: [bold]{result.checked}[/]  dataset: [bold]{result.dataset}[/] "
        f"({result.rows:,} rows)  decisions: {result.selection}"
    )
    for stage, funnel in result.funnels.items():
        print_funnel(Funnel.from_dict(funnel), title=stage)


@app.command("serve")
def serve_command(
    recipe_file: Annotated[Path, typer.Argument(help="Recipe YAML served on a schedule")],
    cron: Annotated[str, typer.Option("--cron", help="Schedule for the recipe's flow")] = "0 2 * * *",
    model: Annotated[str | None, typer.Option("--train-model", help="Also serve training on each publish")] = None,
) -> None:
    """Serve the recipe's flow (cron) and, with --train-model, training triggered by each publish.

    Ctrl-C or SIGTERM stops it at any moment, with the local API server it started."""
    from curate.cli.interrupts import held
    from curate.cli.prefect_env import quiet, serve_deployments
    from curate.recipes import load_checked_recipe

    recipe = load_checked_recipe(recipe_file)
    if model:
        _check_dir(model)
    quiet()
    with held():
        from prefect import serve  # noqa: F401 - imported here, where an interrupt is held
        from prefect.events import DeploymentEventTrigger

        from curate.flows import FLOWS
        from curate.flows.tasks import recipe_tags

    flow_name = RECIPE_FLOWS[recipe.kind]
    deployments = [
        FLOWS[flow_name].to_deployment(
            name=f"{recipe.name}-scheduled",
            cron=cron,
            parameters={"recipe_path": str(recipe_file.absolute())},
            tags=recipe_tags(recipe_file),
        )
    ]
    if model:
        trigger = DeploymentEventTrigger(
            expect={"curate.dataset.published"},
            match={"prefect.resource.id": f"curate.dataset.{recipe.name}"},
            parameters={"dataset": "{{ event.resource['curate.ref'] }}"},
        )
        deployments.append(
            FLOWS["launch_training"].to_deployment(
                name=f"train-on-{recipe.name}",
                triggers=[trigger],
                parameters={"model": model, "out": str(Path("checkpoints").absolute() / recipe.name)},
                tags=["curate", f"recipe:{recipe.name}", "kind:training"],
            )
        )
    serve_deployments(deployments)


def _check_dir(model: str) -> None:
    if not Path(model).is_dir():
        raise UserError(f"--train-model {model}: no such checkpoint directory (nothing is downloaded at run time)")
