"""Recipes: one YAML each, loaded into typed, frozen configs (unknown keys are errors, not ignored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from curate.checks.base import ConfigError, make_config
from curate.recipes.select import SelectConfig

RecipeKind = Literal["cold_start_sft", "rs_sft", "distill", "rl_prompts"]
KINDS: tuple[str, ...] = ("cold_start_sft", "rs_sft", "distill", "rl_prompts")


@dataclass(frozen=True, slots=True)
class GenerateConfig:
    """What to sample when a flow runs the recipe end to end (``curate run``)."""

    prompts: str = ""
    model: str = ""
    engine: Literal["vllm", "openai", "hf"] = "hf"
    n: int = 16
    max_tokens: int = 32768
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int = 0
    shard_size: int = 64
    template: str = "r1"
    ledger: str = ""  # default: <home>/ledgers/<recipe name>
    base_url: str = ""  # openai engine
    limit: int | None = None  # first N prompts only


@dataclass(frozen=True, slots=True)
class MixConfig:
    reasoning: int | None = None  # R1 used about 600k
    non_reasoning: int | None = None  # and about 200k


@dataclass(frozen=True, slots=True)
class ColdStartConfig:
    min_summary_chars: int = 20  # R1's cold-start form ends with a readable summary
    max_reasoning_chars: int = 16000
    require_boxed: bool = False


@dataclass(frozen=True, slots=True)
class Recipe:
    kind: RecipeKind  # the YAML key is ``recipe:`` (kept); ``kind:`` is accepted too
    name: str
    inputs: tuple[str, ...] = ()
    select: SelectConfig = field(default_factory=SelectConfig)
    format: Literal["messages", "prompt_completion"] = "messages"
    mix: MixConfig = field(default_factory=MixConfig)
    require_judge: bool = False
    max_rows: int | None = None
    cold_start: ColdStartConfig = field(default_factory=ColdStartConfig)
    drop_uniform_groups: bool = True  # rl_prompts: all-correct or all-wrong groups teach GRPO nothing
    system_prompt: str | None = None
    generate: GenerateConfig | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> Recipe:
    data = dict(data)
    raw = dict(data)
    if "recipe" in data and "kind" in data and data["recipe"] != data["kind"]:
        raise ConfigError(f"{where}: 'recipe' and 'kind' disagree ({data['recipe']!r} vs {data['kind']!r})")
    kind = data.pop("recipe", data.get("kind"))
    data["kind"] = kind
    if kind not in KINDS:
        raise ConfigError(f"{where}: 'recipe' must be one of {', '.join(KINDS)}, got {kind!r}")
    data.setdefault("name", kind)
    if isinstance(data.get("inputs"), str):
        data["inputs"] = [data["inputs"]]
    data["inputs"] = tuple(data.get("inputs") or ())
    sub = {"select": SelectConfig, "mix": MixConfig, "cold_start": ColdStartConfig, "generate": GenerateConfig}
    for key, cls in sub.items():
        if key in data and data[key] is not None:
            data[key] = make_config(cls, data[key], f"{where}.{key}")
    data["checks"] = dict(data.get("checks") or {})
    data["raw"] = raw
    return make_config(Recipe, data, where)


def load_recipe(path: str | Path) -> Recipe:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such recipe file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a recipe is a mapping")
    from curate.recipes.preflight import resolve_paths

    # Paths in a recipe (prompts, model, ledger, Parquet inputs) are relative to the recipe file.
    return resolve_paths(recipe_from_dict(data, str(p)), p.parent)


# Old names (before settings classes all ended in ...Config), kept while other branches still import them.
GenerateSpec = GenerateConfig
MixSpec = MixConfig
ColdStartSpec = ColdStartConfig
