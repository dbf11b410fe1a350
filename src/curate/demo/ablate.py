"""``curate demo --full --ablate``: what each filter buys on the demo's own sampling rounds.

The same ``curate ablate`` a user runs on their data (:mod:`curate.pipeline.ablate`), pointed at the
``cold_start_sft`` round (samples of the R1-Zero checkpoint: where language mixing and walls of text still
occur) and at the ``rs_sft`` round: their checked samples, the toy base every variant is fine-tuned from,
the held-out problems, and the demo's own SFT and sampling settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from curate.demo.full import FullConfig, FullResult
from curate.demo.task import make_problems
from curate.launch import SFTRunConfig
from curate.launch.evaluate import EvalConfig
from curate.pipeline.ablate import AblationConfig
from curate.recipes import recipe_from_dict
from curate.recipes.config import Recipe


@dataclass(frozen=True, slots=True)
class DemoAblation:
    recipe: Recipe
    checked: str  # the rs_sft phase's checked samples
    model: str  # the toy base
    prompts: pl.DataFrame  # the held-out problems
    config: AblationConfig


def demo_ablation(
    res: FullResult, s: FullConfig, seeds: tuple[int, ...] = (0, 1), phase: str = "rs_sft"
) -> DemoAblation:
    """The ablation of one SFT phase's round (``cold_start_sft`` or ``rs_sft``) of a finished run."""
    phases = {p.phase: p for p in res.phases}
    recipe = recipe_from_dict(
        {
            "recipe": phase,
            "name": f"r1_s{s.seed}_{phase}",
            "format": "prompt_completion",
            "select": {"k": s.sampling.n, "policy": "shortest"},
        }
    )
    steps = s.sft_min_steps
    sft = SFTRunConfig(
        max_steps=steps,
        batch_size=s.sft.batch_size,
        learning_rate=s.sft.lr,
        max_length=s.toy.max_positions,
        logging_steps=max(1, steps // 5),
        progress=False,
    )
    ev = EvalConfig(
        n=s.eval_samples,
        max_tokens=s.sampling.max_new_tokens,
        temperature=s.sampling.temperature,
        top_p=s.sampling.top_p,
        seed=s.seed + 1,
        batch_size=s.sampling.batch_size,
    )
    held_out = make_problems(s.seed, s.eval_prompts, start=s.train_prompts)
    return DemoAblation(
        recipe=recipe,
        checked=phases[phase].datasets[0],
        model=phases["base"].checkpoint,
        prompts=pl.DataFrame([p.row() for p in held_out]),
        config=AblationConfig(seeds=seeds, sft=sft, eval=ev),
    )
