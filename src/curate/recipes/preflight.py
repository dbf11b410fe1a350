"""A recipe checked before any flow starts: paths against the recipe file, engine, model, prompts, checks.

Everything here is cheap and raises :class:`~curate.checks.base.ConfigError` (a ``CurateError``: one line,
exit code 2, never retried) for a mistake the user can fix. Flows call it first and the CLI calls it before
Prefect starts, so a missing prompts file or an engine typo never reaches a retrying task.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path

from curate.checks.base import ConfigError
from curate.recipes.config import GenerateConfig, Recipe

# What each engine needs importable (the engine modules themselves import these lazily).
ENGINE_MODULES: dict[str, tuple[str, ...]] = {"hf": ("torch", "transformers"), "vllm": ("vllm",), "openai": ("httpx",)}
LOCAL_ENGINES = ("hf", "vllm")  # they load a checkpoint directory; ``openai`` names a served model


def _against(base: Path, value: str) -> str:
    if not value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def resolve_paths(recipe: Recipe, base: Path) -> Recipe:
    """Relative paths in ``recipe`` are relative to ``base`` (the recipe file's folder), not the cwd."""
    base = base.resolve()
    inputs = tuple(_against(base, i) if i.endswith(".parquet") else i for i in recipe.inputs)
    spec = recipe.generate
    if spec is not None:
        model = _against(base, spec.model) if spec.engine in LOCAL_ENGINES else spec.model
        spec = replace(spec, prompts=_against(base, spec.prompts), model=model, ledger=_against(base, spec.ledger))
    return replace(recipe, inputs=inputs, generate=spec)


def check_generate(spec: GenerateConfig, where: str) -> None:
    from curate.generate.engines import ENGINES

    if spec.engine not in ENGINES:
        raise ConfigError(
            f"{where}: generate.engine {spec.engine!r} is not an engine; choose one of {', '.join(ENGINES)}"
        )
    missing = [m for m in ENGINE_MODULES[spec.engine] if find_spec(m) is None]
    if missing:
        extra = " (pip install 'curate[gpu]')" if spec.engine == "vllm" else ""
        need = ", ".join(missing)
        raise ConfigError(f"{where}: the {spec.engine} engine needs {need}, which is not installed{extra}")
    if not spec.prompts:
        raise ConfigError(f"{where}: generate.prompts is not set")
    if not Path(spec.prompts).is_file():
        raise ConfigError(f"{where}: generate.prompts {spec.prompts}: no such file")
    if not spec.model:
        raise ConfigError(f"{where}: generate.model is not set")
    if spec.engine in LOCAL_ENGINES and not Path(spec.model).is_dir():
        raise ConfigError(
            f"{where}: generate.model {spec.model}: no such checkpoint directory (nothing is downloaded at run time)"
        )
    if spec.engine == "openai" and not spec.base_url:
        raise ConfigError(f"{where}: the openai engine needs generate.base_url (an OpenAI-compatible server)")
    for name in ("n", "max_tokens", "shard_size"):
        if int(getattr(spec, name)) < 1:
            raise ConfigError(f"{where}: generate.{name} must be at least 1")
    if not 0 < spec.top_p <= 1 or spec.temperature < 0:
        raise ConfigError(f"{where}: generate.top_p must be in (0, 1] and temperature at least 0")


def check_recipe(recipe: Recipe, where: str, *, needs_generate: bool = True) -> Recipe:
    """Validate ``recipe`` for a run; returns it unchanged. Check options are built (and so validated)."""
    from curate.checks.registry import build_checks

    if needs_generate:
        if recipe.generate is None:
            raise ConfigError(f"{where}: no generate section: nothing to sample (use `curate recipe` on checked data)")
        check_generate(recipe.generate, where)
    build_checks(recipe.checks)
    for name in ("dedup", "judge"):  # corpus checks the flow turns on by name
        section = recipe.checks.get(name)
        if isinstance(section, dict) and section.get("enabled", name == "dedup"):
            build_checks({**recipe.checks, name: {**section, "enabled": True}}, only=[name])
    return recipe


def load_checked_recipe(path: str | Path, *, needs_generate: bool = True) -> Recipe:
    """Load a recipe file (paths resolved against it) and check it: what flows and ``curate run`` start from."""
    from curate.recipes.config import load_recipe

    return check_recipe(load_recipe(path), str(path), needs_generate=needs_generate)


__all__ = ["check_generate", "check_recipe", "load_checked_recipe", "resolve_paths"]
