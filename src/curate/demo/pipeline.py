"""``curate demo``: the R1 loop at toy scale, through the real pipeline.

toy model -> ``curate generate`` ledger (transformers engine) -> every check -> dedup -> publish checked
-> ``rs_sft`` and ``rl_prompts`` recipes -> TRL SFT on the curated set (and, as the control, on as many
unfiltered samples) -> pass@1 on held-out problems, scored by the project's math verifier.
The workdir is the store's home; a rerun reuses the toy model and the finished ledger shards.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from curate.demo.experiment import ExperimentConfig, ToySamplingConfig, load, sample
from curate.demo.rounds import sample_and_check
from curate.demo.task import Problem, make_problems
from curate.demo.toy_model import build_toy_model
from curate.launch import SFTRunConfig, run_sft
from curate.recipes import recipe_from_dict, run_recipe, to_prompt_completion
from curate.schema import table
from curate.store import Store

Say = Callable[[str], None]


@dataclass(slots=True)
class DemoResult:
    workdir: str
    pass_at_1_before: float = 0.0
    pass_at_1_after: float = 0.0
    pass_at_1_unfiltered: float = 0.0
    datasets: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    funnel: dict[str, int] = field(default_factory=dict)
    sft_rows: int = 0
    samples: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "pass_at_1_before": round(self.pass_at_1_before, 4),
            "pass_at_1_after": round(self.pass_at_1_after, 4),
            "pass_at_1_unfiltered": round(self.pass_at_1_unfiltered, 4),
            "datasets": self.datasets,
            "workdir": self.workdir,
            "sft_rows": self.sft_rows,
            "samples": self.samples,
            "runs": self.runs,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
        }


@contextmanager
def _timed(seconds: dict[str, float], name: str, say: Say) -> Iterator[None]:
    say(f"[bold]{name}[/] ...")
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = time.perf_counter() - t0
        say(f"  {name} done in {seconds[name]:.0f}s")


def pass_at_1(model_dir: str | Path, problems: Sequence[Problem], settings: ToySamplingConfig) -> float:
    """Mean verified correctness of ``settings.n`` samples per held-out problem (the math check's verdict)."""
    from curate.verify import MathConfig, verify_math

    model, tokenizer = load(model_dir)
    completions = sample(model, tokenizer, [p.prompt for p in problems], settings)
    responses = [c.text for cs in completions for c in cs]
    refs = [str(p.answer) for p, cs in zip(problems, completions, strict=True) for _ in cs]
    scores = [r.score or 0.0 for r in verify_math(responses, refs, MathConfig())]
    return sum(scores) / max(1, len(scores))


def _sft_spec(s: ExperimentConfig, rows: int, min_steps: int = 150) -> SFTRunConfig:
    # A floor on optimizer steps: after dedup a seed may keep only a few hundred rows, and too few steps
    # leave the fine-tune indistinguishable from the base. Curated and control get the same schedule.
    epochs_steps = round(s.sft.epochs * -(-rows // s.sft.batch_size))
    steps = max(1, min(s.sft.max_steps, max(min_steps, epochs_steps)))
    return SFTRunConfig(
        epochs=s.sft.epochs,
        max_steps=steps,
        batch_size=s.sft.batch_size,
        learning_rate=s.sft.lr,
        max_length=256,
        seed=s.sft.seed,
        logging_steps=max(1, steps // 5),
        progress=False,
    )


def run_demo(workdir: str | Path, settings: ExperimentConfig | None = None, say: Say = lambda _: None) -> DemoResult:
    s = settings or ExperimentConfig()
    home = Path(workdir).absolute()
    store = Store(home)
    res = DemoResult(workdir=str(home))
    t = res.seconds
    train = make_problems(s.seed, s.train_prompts)
    held_out = make_problems(s.seed, s.eval_prompts, start=s.train_prompts)
    eval_sampling = replace(s.sampling, n=s.eval_samples, seed=s.seed + 1)

    with _timed(t, "build toy model", say):
        base = build_toy_model(home / "models" / "toy-base", s.toy)
    checks: dict[str, Any] = {"dedup": {"scope": "per-prompt"}}
    with _timed(t, "generate + check", say):
        rnd = sample_and_check(store, "demo", base, train, replace(s.sampling, seed=s.seed), checks, say)
        checked = rnd.checked
        res.samples = rnd.rows
        res.funnel = dict(checked.manifest.funnel)
    with _timed(t, "select + publish", say):
        rs = run_recipe(
            recipe_from_dict(
                {
                    "recipe": "rs_sft",
                    "name": "demo_rs_sft",
                    "format": "prompt_completion",
                    "select": {"k": s.sampling.n, "policy": "shortest"},
                }
            ),
            store,
            *_checked(store, checked.manifest.ref),
        )
        rl = run_recipe(
            recipe_from_dict({"recipe": "rl_prompts", "name": "demo_rl_prompts"}),
            store,
            *_checked(store, checked.manifest.ref),
        )
        res.sft_rows = rs.dataset.manifest.rows
        unfiltered = _publish_unfiltered(store, checked.manifest.ref, res.sft_rows, s.seed)
        res.datasets = [checked.manifest.ref, rs.dataset.manifest.ref, rl.dataset.manifest.ref, unfiltered]
    with _timed(t, "sft (curated and unfiltered)", say):
        if res.sft_rows:
            spec_sft = _sft_spec(s, res.sft_rows, min_steps=150 if s.toy.steps > 100 else 1)
            run_a = run_sft(store, rs.dataset.manifest.ref, str(base), home / "models" / "sft-curated", spec_sft)
            run_b = run_sft(store, unfiltered, str(base), home / "models" / "sft-unfiltered", spec_sft)
            curated_dir, unfiltered_dir = run_a.output, run_b.output
            res.runs = [run_a.run_id, run_b.run_id]
        else:  # nothing passed (an untrained model): both stay the base model
            curated_dir = unfiltered_dir = str(base)
    with _timed(t, "evaluate pass@1", say):
        res.pass_at_1_before = pass_at_1(base, held_out, eval_sampling)
        res.pass_at_1_after = pass_at_1(curated_dir, held_out, eval_sampling)
        res.pass_at_1_unfiltered = pass_at_1(unfiltered_dir, held_out, eval_sampling)
    return res


def _checked(store: Store, ref: str) -> tuple[pl.DataFrame, list[str]]:
    return store.get(ref).scan().collect(), [ref]


def _publish_unfiltered(store: Store, checked_ref: str, n: int, seed: int) -> str:
    """The control: as many samples as the curated set, drawn at random with no check applied."""
    df = store.get(checked_ref).scan().collect()
    rows = sorted(random.Random(seed).sample(range(df.height), min(n, df.height)))
    chosen = df[rows]
    dv = store.publish_frame(
        "demo_unfiltered_sft",
        "unfiltered_sft",
        table("sft_prompt_completion"),
        to_prompt_completion(chosen),
        parents=(checked_ref,),
        config={"control": "random samples, no filter", "n": n, "seed": seed},
    )
    return dv.manifest.ref
