"""Running a recipe against the store: read checked inputs, build, publish versions (the I/O part)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from curate.checks.runner import sample_source
from curate.recipes.build import RecipeOutput, build
from curate.recipes.config import Recipe
from curate.schema import table
from curate.store import DatasetVersion, Store, StoreError, config_hash


@dataclass(frozen=True, slots=True)
class Published:
    dataset: DatasetVersion
    selection: DatasetVersion
    pass_rates: DatasetVersion
    output: RecipeOutput


def load_checked(store: Store, inputs: tuple[str, ...]) -> tuple[pl.DataFrame, list[str]]:
    """Concatenate checked inputs (dataset refs or Parquet files); return them with their parent refs."""
    if not inputs:
        raise StoreError("the recipe names no inputs (dataset refs or Parquet files of checked samples)")
    frames, parents = [], []
    for ref in inputs:
        path = Path(ref)
        if path.suffix == ".parquet" and path.exists():
            frames.append(pl.read_parquet(path))
            parents.append(str(path.resolve()))
        else:
            dv = store.get(ref)
            frames.append(dv.scan().collect())
            parents.append(dv.manifest.ref)
    return pl.concat(frames, how="diagonal_relaxed"), parents


def output_names(name: str) -> tuple[str, str, str]:
    """Every dataset a recipe publishes is named after it: two recipes never share one."""
    return name, f"{name}_selection", f"{name}_pass_rates"


def run_recipe(
    recipe: Recipe, store: Store, checked: pl.DataFrame | None = None, parents: list[str] | None = None
) -> Published:
    """Build ``recipe`` and publish ``<name>``, its decisions ``<name>_selection`` and ``<name>_pass_rates``."""
    for name in output_names(recipe.name):
        store.check_name(name)
    if checked is None:
        checked, parents = load_checked(store, recipe.inputs)
    out = build(recipe, checked)
    cfg = recipe.raw or {"recipe": recipe.kind, "name": recipe.name}
    common = {"config": cfg, "parents": tuple(parents or ()), "source": sample_source(checked)}
    extra = {**out.extra, "recipe": recipe.kind, "recipe_hash": config_hash(cfg)}
    ds = store.publish_frame(
        recipe.name, recipe.kind, table(out.table), out.rows, funnel=out.funnel, extra=extra, **common
    )
    sel = store.publish_frame(
        f"{recipe.name}_selection",
        "selection",
        table("selection"),
        out.decisions,
        funnel=out.funnel,
        extra={"for": ds.manifest.ref},
        **common,
    )
    pr = store.publish_frame(
        f"{recipe.name}_pass_rates",
        "pass_rates",
        table("pass_rate"),
        out.pass_rates,
        extra={"for": ds.manifest.ref},
        **common,
    )
    return Published(ds, sel, pr, out)
