"""Dataset recipes: cold-start SFT, rejection-sampling SFT, distillation and RL prompt sets."""

from curate.recipes.build import RecipeOutput, build, funnel_of
from curate.recipes.config import GenerateConfig, Recipe, load_recipe, recipe_from_dict
from curate.recipes.export import to_messages, to_openrlhf_jsonl, to_prompt_completion, to_verl
from curate.recipes.preflight import check_recipe, load_checked_recipe, resolve_paths
from curate.recipes.run import Published, load_checked, run_recipe

__all__ = [
    "GenerateConfig",
    "Published",
    "Recipe",
    "RecipeOutput",
    "build",
    "check_recipe",
    "funnel_of",
    "load_checked",
    "load_checked_recipe",
    "load_recipe",
    "recipe_from_dict",
    "resolve_paths",
    "run_recipe",
    "to_messages",
    "to_openrlhf_jsonl",
    "to_prompt_completion",
    "to_verl",
]
