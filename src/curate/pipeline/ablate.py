"""``curate ablate``: what each filter buys, measured by training on the data it would have let through.

For "all filters on" and for each filter switched off in turn (:func:`curate.recipes.ablate.without_filter`)
the recipe's dataset is built from the same checked version and published (``<recipe>_ablate_<variant>``,
parent: the checked version), a model is fine-tuned on it with one fixed schedule (the same optimizer
steps and maximum length for every variant, whatever its size; only the seed varies) and evaluated on
held-out prompts (:func:`curate.launch.evaluate.evaluate`). The table (kind ``ablation``) is published
too, so ``SELECT * FROM <recipe>_ablation`` in DuckDB shows it; the runs are in the catalog's ``runs``.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from curate.checks.base import ConfigError
from curate.launch.evaluate import EvalConfig, EvalError, EvalReport, check_prompts, evaluate
from curate.launch.sft import SFTRunConfig, run_sft, sft_preflight
from curate.recipes.ablate import readmitted, require_checked, resolve_filters, without_filter
from curate.recipes.build import build
from curate.recipes.config import Recipe
from curate.recipes.run import output_names, run_recipe
from curate.schema import reason_codes, table
from curate.store import Store, config_hash

Say = Callable[[str], None]
ALL_ON = "all_on"


@dataclass(frozen=True, slots=True)
class AblationConfig:
    seeds: tuple[int, ...] = (0, 1)
    filters: tuple[str, ...] = ()  # empty: every filter that rejected at least one checked row
    sft: SFTRunConfig = field(default_factory=lambda: SFTRunConfig(max_steps=100, progress=False))
    eval: EvalConfig = field(default_factory=EvalConfig)
    table_name: str = ""  # default: <recipe name>_ablation
    keep_checkpoints: bool = True  # False: delete each fine-tuned model once it is evaluated


@dataclass(frozen=True, slots=True)
class Variant:
    name: str  # all_on | no_<filter>
    filter: str | None
    rows: int  # rows the recipe selects (checked at planning, before any training)
    readmitted: int


@dataclass(frozen=True, slots=True)
class AblationPlan:
    recipe: Recipe
    checked_ref: str
    model: str
    prompts: pl.DataFrame
    variants: tuple[Variant, ...]
    config: AblationConfig
    table_name: str


@dataclass(slots=True)
class VariantResult:
    variant: Variant
    dataset: str
    runs: list[str] = field(default_factory=list)
    reports: list[EvalReport] = field(default_factory=list)


@dataclass(slots=True)
class AblationResult:
    table: pl.DataFrame
    dataset: str  # the published table's ref
    variants: list[VariantResult]
    seconds: float = 0.0

    def rows(self) -> list[dict[str, Any]]:
        return self.table.to_dicts()


def dataset_name(recipe: Recipe, variant: str) -> str:
    return f"{recipe.name}_ablate_{variant}"


def plan_ablation(
    store: Store, recipe: Recipe, checked_ref: str, model: str | Path, prompts: pl.DataFrame, config: AblationConfig
) -> AblationPlan:
    """Everything a user can get wrong, checked before any training: the recipe kind, the checked set, the
    filters, the dataset names, the model directory, the prompts, the seeds and the schedule."""
    if recipe.kind == "rl_prompts":
        raise ConfigError("ablate trains SFT models: the recipe must be cold_start_sft, rs_sft or distill")
    if not config.seeds or len(set(config.seeds)) != len(config.seeds):
        raise ConfigError("ablate needs one or more distinct seeds")
    if config.sft.max_steps < 1:
        raise ConfigError("ablate needs a fixed number of SFT steps (max_steps >= 1): every variant gets the same")
    if not (Path(model).expanduser() / "config.json").is_file():
        raise EvalError(f"{model}: not a checkpoint directory (no config.json)")
    prompts = check_prompts(prompts)
    source = store.get(checked_ref)
    checked_ref = source.manifest.ref  # pinned: name@version, whatever the user wrote
    checked = source.scan().collect()
    require_checked(checked)
    known = {code.split(".", 1)[0] for code in reason_codes()}
    filters = resolve_filters(list(config.filters), checked, known)
    variants = []
    for f in (None, *filters):
        name = ALL_ON if f is None else f"no_{f}"
        for out in output_names(dataset_name(recipe, name)):
            store.check_name(out)
        view = checked if f is None else without_filter(checked, f)
        rows = build(replace(recipe, name=dataset_name(recipe, name)), view).rows.height
        if rows == 0:
            raise ConfigError(f"variant {name} selects no rows from {checked_ref}: nothing to fine-tune on")
        variants.append(Variant(name, f, rows, 0 if f is None else readmitted(checked, f)))
    table_name = store.check_name(config.table_name or f"{recipe.name}_ablation")
    return AblationPlan(recipe, checked_ref, str(model), prompts, tuple(variants), config, table_name)


def _std(xs: Sequence[float]) -> float | None:
    return statistics.stdev(xs) if len(xs) > 1 else None


def _mean(xs: Sequence[float]) -> float:
    return float(statistics.fmean(xs)) if xs else 0.0


def ablation_frame(results: Sequence[VariantResult], seeds: Sequence[int]) -> pl.DataFrame:
    """The ``ablation`` table: pass@1 per seed, mean ± std, and the delta against all-on paired by seed."""
    base = next((r for r in results if r.variant.filter is None), None)
    if base is None:
        raise ValueError("no all_on variant to compare against")
    ref = [rep.pass_at_1 for rep in base.reports]
    rows = []
    for r in results:
        p = [rep.pass_at_1 for rep in r.reports]
        deltas = [a - b for a, b in zip(p, ref, strict=True)]
        rows.append(
            {
                "variant": r.variant.name,
                "filter": r.variant.filter,
                "dataset": r.dataset,
                "rows": r.variant.rows,
                "readmitted": r.variant.readmitted,
                "seeds": list(seeds),
                "pass_at_1": p,
                "pass_at_1_mean": _mean(p),
                "pass_at_1_std": _std(p),
                "delta_mean": _mean(deltas),
                "delta_std": _std(deltas),
                "mean_length": _mean([rep.mean_length for rep in r.reports]),
                "mean_tokens": _mean([rep.mean_tokens for rep in r.reports]),
                "lang_mix_rate": _mean([rep.lang_mix_rate for rep in r.reports]),
                "format_ok_rate": _mean([rep.format_ok_rate for rep in r.reports]),
                "runs": list(r.runs),
            }
        )
    return table("ablation").conform(pl.DataFrame(rows, schema=table("ablation").polars_schema()))


def run_ablation(
    store: Store, plan: AblationPlan, workdir: str | Path | None = None, say: Say = lambda _: None
) -> AblationResult:
    """Publish every variant's dataset, fine-tune and evaluate each once per seed, publish the table."""
    t0 = time.perf_counter()
    cfg = plan.config
    work = Path(workdir) if workdir is not None else store.local_dir / "models" / "ablate" / plan.table_name
    checked = store.get(plan.checked_ref).scan().collect()
    results: list[VariantResult] = []
    for v in plan.variants:
        view = checked if v.filter is None else without_filter(checked, v.filter)
        recipe = replace(plan.recipe, name=dataset_name(plan.recipe, v.name))
        pub = run_recipe(recipe, store, view, [plan.checked_ref])
        ref = pub.dataset.manifest.ref
        note = "" if v.filter is None or v.readmitted else "; every row it rejects is rejected by another check too"
        say(f"published {ref}: {pub.dataset.manifest.rows:,} rows ({v.readmitted:,} checked rows readmitted{note})")
        results.append(VariantResult(v, ref))
    # One maximum length for every run: the all-on data's p99 unless given (the preflight checks the template).
    base_plan = sft_preflight(store, results[0].dataset, plan.model, cfg.sft.max_length)
    max_length = base_plan.max_length
    say(f"sft schedule: {cfg.sft.max_steps} steps, batch {cfg.sft.batch_size}, max length {max_length} for all")
    total, done = len(results) * len(cfg.seeds), 0
    for seed in cfg.seeds:
        spec = replace(cfg.sft, seed=seed, max_length=max_length)
        settings = replace(cfg.eval, seed=cfg.eval.seed + seed)
        for r in results:
            done += 1
            t1 = time.perf_counter()
            out = work / f"{r.variant.name}-s{seed}"
            length = sft_preflight(store, r.dataset, plan.model, max_length)
            run = run_sft(store, r.dataset, plan.model, out, spec, plan=length)
            rep = evaluate(out, plan.prompts, settings)
            r.runs.append(run.run_id)
            r.reports.append(rep)
            if not cfg.keep_checkpoints:
                shutil.rmtree(out, ignore_errors=True)
            say(
                f"[{done}/{total}] {r.variant.name} seed {seed}: pass@1 {rep.pass_at_1:.3f}, "
                f"format ok {rep.format_ok_rate:.2f}, lang mixed {rep.lang_mix_rate:.2f} "
                f"({time.perf_counter() - t1:.0f}s, run {run.run_id})"
            )
    frame = ablation_frame(results, cfg.seeds)
    settings_snapshot = {
        "recipe": plan.recipe.raw or {"recipe": plan.recipe.kind, "name": plan.recipe.name},
        "model": plan.model,
        "seeds": list(cfg.seeds),
        "filters": [v.filter for v in plan.variants if v.filter is not None],
        "sft": {**dataclasses.asdict(cfg.sft), "max_length": max_length},
        "eval": dataclasses.asdict(cfg.eval),
        "eval_prompts": {
            "rows": plan.prompts.height,
            "hash": config_hash({"ids": plan.prompts["prompt_id"].cast(pl.String).to_list()}),
        },
    }
    dv = store.publish_frame(
        plan.table_name,
        "ablation",
        table("ablation"),
        frame,
        parents=(plan.checked_ref, *(r.dataset for r in results)),
        config=settings_snapshot,
        extra={"runs": [run for r in results for run in r.runs]},
    )
    return AblationResult(frame, dv.manifest.ref, results, time.perf_counter() - t0)
