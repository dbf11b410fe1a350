"""``curate ablate``: what each filter buys (SFT on each filter switched off in turn, held-out pass@1)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from curate.cli.app import UserError, app, console, err, store_from

if TYPE_CHECKING:
    import polars as pl

    from curate.pipeline.ablate import AblationConfig
    from curate.recipes.config import Recipe
    from curate.store import Store

SFT_KINDS = ("cold_start_sft", "rs_sft", "distill")


def _recipe(spec: str) -> Any:
    from curate.recipes import load_recipe, recipe_from_dict
    from curate.recipes.config import KINDS

    if spec in KINDS and not Path(spec).exists():  # rl_prompts too: refused with its reason by the plan
        return recipe_from_dict({"recipe": spec, "name": spec})
    if Path(spec).suffix in (".yaml", ".yml") or Path(spec).exists():
        return load_recipe(spec)
    raise UserError(f"{spec}: neither a recipe file nor one of {', '.join(SFT_KINDS)}")


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{what}: a comma-separated list of integers, got {text!r}") from None


def _say(message: str) -> None:
    err.print(message, markup=False, highlight=False)


def _fmt(mean: float, std: float | None, signed: bool = False) -> str:
    m = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return f"{m} ± {std:.3f}" if std is not None else m


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    t = Table(title="ablation: held-out pass@1 per variant")
    for col in ("variant", "rows", "readmitted", "pass@1", "delta vs all-on", "mean length", "lang mix", "format ok"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for r in rows:
        t.add_row(
            r["variant"],
            f"{r['rows']:,}",
            f"{r['readmitted']:,}",
            _fmt(r["pass_at_1_mean"], r["pass_at_1_std"]),
            "-" if r["filter"] is None else _fmt(r["delta_mean"], r["delta_std"], signed=True),
            f"{r['mean_length']:.0f}",
            f"{r['lang_mix_rate']:.3f}",
            f"{r['format_ok_rate']:.3f}",
        )
    console.print(t)


@app.command("ablate")
def ablate_command(
    ctx: typer.Context,
    recipe_spec: Annotated[str, typer.Argument(metavar="RECIPE", help="Recipe YAML, or cold_start_sft|rs_sft|distill")],
    checked: Annotated[str, typer.Option("--checked", help="Checked dataset version: name or name@version")],
    model: Annotated[str, typer.Option("--model", help="Base checkpoint directory every variant starts from")],
    eval_path: Annotated[Path, typer.Option("--eval", help="Held-out prompts (JSONL or Parquet, prompt schema)")],
    seeds: Annotated[str, typer.Option("--seeds", help="Training seeds, comma-separated")] = "0,1",
    filters: Annotated[
        str | None,
        typer.Option("--filters", help="Filters to switch off, e.g. format,math,lang (default: each that rejected)"),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="SFT optimizer steps, the same for every variant")] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    lr: Annotated[float, typer.Option("--lr")] = 1e-5,
    max_length: Annotated[
        int | None, typer.Option("--max-length", min=16, help="Tokens per sample (default: all-on data's p99)")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Samples per held-out prompt")] = 4,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Evaluation tokens per sample")] = 1024,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 0.6,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0)] = 0.95,
    eval_limit: Annotated[int | None, typer.Option("--eval-limit", min=1, help="First N held-out prompts")] = None,
    eval_batch: Annotated[int, typer.Option("--eval-batch", min=1, help="Samples decoded together")] = 64,
    name: Annotated[str | None, typer.Option("--name", help="Table dataset name (default <recipe>_ablation)")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Chart path (default <home>/reports/<name>-v<N>.png)")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep-checkpoints/--drop-checkpoints")] = True,
    as_json: Annotated[bool, typer.Option("--json", help='End with one JSON line {"variants": [...]}')] = False,
) -> None:
    """Fine-tune on the recipe's data with all filters on and with each filter off in turn, with one schedule,
    and evaluate every model on held-out prompts: pass@1 mean ± std over seeds and the delta per filter."""
    from curate.generate.prompts import read_prompts
    from curate.launch.evaluate import EvalConfig
    from curate.launch.sft import SFTRunConfig
    from curate.pipeline.ablate import AblationConfig

    recipe = _recipe(recipe_spec)
    seed_list = _ints(seeds, "--seeds")
    wanted = tuple(f.strip() for f in filters.split(",") if f.strip()) if filters else ()
    sft = SFTRunConfig(
        max_steps=steps, batch_size=batch_size, learning_rate=lr, max_length=max_length, progress=False,
        logging_steps=max(1, steps // 5),
    )  # fmt: skip
    ev = EvalConfig(
        n=n, max_tokens=max_tokens, temperature=temperature, top_p=top_p, limit=eval_limit, batch_size=eval_batch
    )
    config = AblationConfig(
        seeds=seed_list, filters=wanted, sft=sft, eval=ev, table_name=name or "", keep_checkpoints=keep
    )
    store = store_from(ctx)
    prompts = read_prompts(eval_path)
    run_and_report(store, recipe, checked, model, prompts, config, plot, as_json)


def run_and_report(
    store: Store,
    recipe: Recipe,
    checked: str,
    model: str,
    prompts: pl.DataFrame,
    config: AblationConfig,
    plot: Path | None = None,
    as_json: bool = False,
) -> dict[str, Any]:
    """Plan (every refusal before training), run, publish, plot and print an ablation; ``curate demo
    --full --ablate`` calls it on the demo's own rejection-sampling round."""
    from curate.pipeline.ablate import plan_ablation, run_ablation

    seed_list, steps = config.seeds, config.sft.max_steps
    plan = plan_ablation(store, recipe, checked, model, prompts, config)
    overlap = set(prompts["prompt_id"].to_list()) & set(
        store.get(plan.checked_ref).scan().select("prompt_id").unique().collect()["prompt_id"].to_list()
    )
    if overlap:
        _say(f"warning: {len(overlap)} held-out prompt(s) also in {checked}: the evaluation is not held out")
    runs = len(plan.variants) * len(seed_list)
    _say(
        f"ablate {recipe.name} on {checked}: {len(plan.variants)} variants "
        f"({', '.join(v.name for v in plan.variants)}) x {len(seed_list)} seeds = {runs} SFT runs of {steps} steps"
    )
    result = run_ablation(store, plan, say=_say)
    chart = None
    try:
        from curate.report.ablation import save_ablation_plot

        version = result.dataset.rsplit("@", 1)[-1]
        target = plot or store.local_dir / "reports" / f"{plan.table_name}-v{version}.png"
        chart = str(save_ablation_plot(result.table, target))
        _say(f"plot: {chart}")
    except ImportError:
        _say("plot skipped: matplotlib is not installed (the dev extra)")
    _say(f"table: {result.dataset} (SELECT * FROM {plan.table_name}); {result.seconds:.0f}s")
    rows = result.rows()
    out: dict[str, Any] = {"variants": rows, "dataset": result.dataset, "plot": chart}
    if as_json:
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
    else:
        _print_table(rows)
    return out
