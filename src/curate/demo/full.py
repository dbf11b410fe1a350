"""``curate demo --full``: DeepSeek-R1's four phases and its distillation at toy scale, through the real
pipeline, with pass@1, response length and language mixing measured after every phase.

base (pretrained on R1-Zero's failure modes, :mod:`curate.demo.failures`)
 -> ``zero_rl``: GRPO from the base with rule rewards only (accuracy, format, language consistency) on
    the ``rl_prompts`` recipe of the base's own samples
 -> ``cold_start_sft``: sample the R1-Zero checkpoint, check, the ``cold_start_sft`` recipe (correct,
    readable, one language, reasoning then a summary); SFT the base on it
 -> ``reasoning_rl``: GRPO from the cold-start checkpoint with the language-consistency reward
 -> ``rs_sft``: sample that checkpoint, check, the ``rs_sft`` recipe; SFT the base on it (as R1 fine-tuned
    DeepSeek-V3-Base on its 800k samples)
 -> ``distill``: the ``distill`` recipe of the same samples; SFT a smaller student pretrained on the same mix.

Every sampling round goes through the ledger, every check, dedup and a recipe, and is published with its
lineage; every training run is recorded in the catalog (dataset version -> run -> checkpoint).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from curate.demo.evaluate import PhaseEval, evaluate_phase
from curate.demo.experiment import ToySamplingConfig, ToySFTConfig
from curate.demo.failures import TOY_CHECKS
from curate.demo.rounds import sample_and_check
from curate.demo.task import make_problems
from curate.demo.toy_model import ToyConfig, build_toy_model
from curate.launch import GRPORunConfig, SFTRunConfig, run_grpo, run_sft
from curate.recipes import recipe_from_dict, run_recipe
from curate.store import DatasetVersion, Store

Say = Callable[[str], None]
PHASES = ("base", "zero_rl", "cold_start_sft", "reasoning_rl", "rs_sft", "distill")


def _toy() -> ToyConfig:
    return ToyConfig(mix="r1_zero", max_positions=320)


def _student() -> ToyConfig:
    # About 40% of the teacher's parameters; a 2-layer, 64-wide student stayed at pass@1 0.03 before and
    # after distillation (too small to learn two-digit carries from 300 rows).
    return ToyConfig(mix="r1_zero", layers=2, hidden=96, heads=4, intermediate=288, max_positions=320)


def _grpo() -> GRPORunConfig:
    return GRPORunConfig(
        num_generations=8,
        max_steps=40,
        batch_size=64,
        learning_rate=5e-5,  # 2e-4 collapsed pass@1 (0.23 -> 0.06) in 30 steps
        max_completion_length=112,
        temperature=0.7,
        beta=0.0,
        logging_steps=5,
        rewards=("format", "math", "language"),
        progress=False,
    )


@dataclass(frozen=True, slots=True)
class FullConfig:
    seed: int = 0
    toy: ToyConfig = field(default_factory=_toy)
    student: ToyConfig = field(default_factory=_student)
    train_prompts: int = 256
    eval_prompts: int = 128
    eval_samples: int = 4
    sampling: ToySamplingConfig = field(default_factory=lambda: ToySamplingConfig(n=8, max_new_tokens=112))
    grpo: GRPORunConfig = field(default_factory=_grpo)
    sft: ToySFTConfig = field(default_factory=lambda: ToySFTConfig(epochs=2.0, max_steps=200, batch_size=16))
    checks: dict[str, Any] = field(default_factory=lambda: dict(TOY_CHECKS))
    drop_uniform_groups: bool = True  # rl_prompts: all-right or all-wrong groups teach GRPO nothing
    # A floor on SFT optimizer steps: a cold-start set of a hundred rows is a dozen steps at two epochs,
    # too few to move the model (the plain demo's floor is 150).
    sft_min_steps: int = 120

    @classmethod
    def fast(cls, seed: int = 0) -> FullConfig:
        """Every phase with tiny models and a handful of steps: the mechanics in about a minute."""
        tiny = ToyConfig(
            mix="r1_zero", seed=seed, layers=1, hidden=32, heads=2, intermediate=64, steps=20, batch_size=16
        )
        return cls(
            seed=seed,
            toy=tiny,
            student=replace(tiny, hidden=16, intermediate=32),
            train_prompts=8,
            eval_prompts=4,
            eval_samples=1,
            sampling=ToySamplingConfig(n=2, max_new_tokens=24, seed=seed),
            grpo=replace(_grpo(), num_generations=2, max_steps=1, batch_size=4, max_completion_length=16),
            sft=ToySFTConfig(epochs=1, batch_size=4, max_steps=2, seed=seed),
            drop_uniform_groups=False,  # an untrained model gets every prompt wrong
            sft_min_steps=1,
        )


@dataclass(slots=True)
class PhaseResult:
    phase: str
    pass_at_1: float
    mean_length: float
    lang_mix_rate: float
    datasets: list[str]
    checkpoint: str
    unreadable_rate: float = 0.0
    format_error_rate: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("pass_at_1", "mean_length", "lang_mix_rate", "unreadable_rate", "format_error_rate", "seconds"):
            d[k] = round(d[k], 4 if k != "seconds" else 1)
        return d


@dataclass(slots=True)
class FullResult:
    workdir: str
    seed: int
    phases: list[PhaseResult] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    student_base_pass_at_1: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "workdir": self.workdir,
            "seed": self.seed,
            "phases": [p.to_dict() for p in self.phases],
            "runs": self.runs,
            "student_base_pass_at_1": round(self.student_base_pass_at_1, 4),
        }


class _Phases:
    """The state carried from phase to phase (store, problems, settings) and one method per phase."""

    def __init__(self, home: Path, s: FullConfig, say: Say) -> None:
        self.home, self.s, self.say = home, s, say
        self.store = Store(home)
        self.train = make_problems(s.seed, s.train_prompts)
        self.held_out = make_problems(s.seed, s.eval_prompts, start=s.train_prompts)
        self.result = FullResult(workdir=str(home), seed=s.seed)

    # -- shared steps ----------------------------------------------------------------------------------
    def evaluate(self, name: str, model: str | Path, datasets: list[str], t0: float) -> PhaseResult:
        s = self.s
        sampling = replace(s.sampling, n=s.eval_samples, seed=s.seed + 1)
        ev: PhaseEval = evaluate_phase(model, self.held_out, sampling, s.checks)
        res = PhaseResult(
            phase=name,
            pass_at_1=ev.pass_at_1,
            mean_length=ev.mean_length,
            lang_mix_rate=ev.lang_mix_rate,
            datasets=datasets,
            checkpoint=str(model),
            unreadable_rate=ev.unreadable_rate,
            format_error_rate=ev.format_error_rate,
            seconds=time.perf_counter() - t0,
        )
        self.result.phases.append(res)
        self.say(
            f"  {name}: pass@1 {res.pass_at_1:.3f}, mean length {res.mean_length:.0f} chars, "
            f"language mixing {res.lang_mix_rate:.1%}, unreadable {res.unreadable_rate:.1%} ({res.seconds:.0f}s)"
        )
        return res

    def round(self, name: str, model: str | Path) -> DatasetVersion:
        """Sample the train prompts from ``model`` and publish ``<name>_checked``."""
        sampling = replace(self.s.sampling, seed=self.s.seed)
        return sample_and_check(self.store, name, model, self.train, sampling, self.s.checks, self.say).checked

    def recipe(self, kind: str, name: str, checked: DatasetVersion) -> str:
        data: dict[str, Any] = {"recipe": kind, "name": name}
        if kind == "rl_prompts":
            data["drop_uniform_groups"] = self.s.drop_uniform_groups
        else:
            data |= {"format": "prompt_completion", "select": {"k": self.s.sampling.n, "policy": "shortest"}}
        out = run_recipe(recipe_from_dict(data), self.store, checked.scan().collect(), [checked.manifest.ref])
        self.say(f"  {out.dataset.manifest.ref}: {out.dataset.manifest.rows} rows")
        return out.dataset.manifest.ref

    def _empty(self, dataset: str, model: str | Path) -> bool:
        """Nothing selected (only with an untrained model): the phase keeps its input checkpoint."""
        if self.store.get(dataset).manifest.rows:
            return False
        self.say(f"  {dataset} is empty: no training, the checkpoint stays {model}")
        return True

    def grpo(self, dataset: str, model: str | Path, out: str) -> str:
        if self._empty(dataset, model):
            return str(model)
        spec = replace(self.s.grpo, seed=self.s.seed)
        run = run_grpo(self.store, dataset, str(model), self.home / "models" / out, spec)
        self.result.runs.append(run.run_id)
        return run.output

    def sft(self, dataset: str, model: str | Path, out: str) -> str:
        if self._empty(dataset, model):
            return str(model)
        s = self.s.sft
        rows = self.store.get(dataset).manifest.rows
        steps = max(1, min(s.max_steps, max(self.s.sft_min_steps, round(s.epochs * -(-rows // s.batch_size)))))
        spec = SFTRunConfig(
            epochs=s.epochs,
            max_steps=steps,
            batch_size=s.batch_size,
            learning_rate=s.lr,
            max_length=self.s.toy.max_positions,
            seed=self.s.seed,
            logging_steps=max(1, steps // 5),
            progress=False,
        )
        run = run_sft(self.store, dataset, str(model), self.home / "models" / out, spec)
        self.result.runs.append(run.run_id)
        return run.output

    # -- the phases --------------------------------------------------------------------------------------
    def run(self) -> FullResult:
        s, models = self.s, self.home / "models"
        p = f"r1_s{s.seed}"  # every name carries the seed: two seeds share one store side by side
        t0 = time.perf_counter()
        base = build_toy_model(models / f"{p}-base", s.toy)
        self.evaluate("base", base, [], t0)

        t0 = time.perf_counter()
        base_round = self.round(f"{p}_base", base)
        zero_prompts = self.recipe("rl_prompts", f"{p}_zero_rl_prompts", base_round)
        zero = self.grpo(zero_prompts, base, f"{p}-zero-rl")
        self.evaluate("zero_rl", zero, [base_round.manifest.ref, zero_prompts], t0)

        t0 = time.perf_counter()
        zero_round = self.round(f"{p}_zero_rl", zero)
        cold = self.recipe("cold_start_sft", f"{p}_cold_start_sft", zero_round)
        cold_ckpt = self.sft(cold, base, f"{p}-cold-start-sft")
        self.evaluate("cold_start_sft", cold_ckpt, [zero_round.manifest.ref, cold], t0)

        t0 = time.perf_counter()
        rl_prompts = self.recipe("rl_prompts", f"{p}_reasoning_rl_prompts", zero_round)
        rl = self.grpo(rl_prompts, cold_ckpt, f"{p}-reasoning-rl")
        self.evaluate("reasoning_rl", rl, [rl_prompts], t0)

        t0 = time.perf_counter()
        rl_round = self.round(f"{p}_reasoning_rl", rl)
        rs = self.recipe("rs_sft", f"{p}_rs_sft", rl_round)
        rs_ckpt = self.sft(rs, base, f"{p}-rs-sft")
        self.evaluate("rs_sft", rs_ckpt, [rl_round.manifest.ref, rs], t0)

        t0 = time.perf_counter()
        student = build_toy_model(models / f"{p}-student-base", s.student)
        sampling = replace(s.sampling, n=s.eval_samples, seed=s.seed + 1)
        self.result.student_base_pass_at_1 = evaluate_phase(student, self.held_out, sampling, s.checks).pass_at_1
        distill = self.recipe("distill", f"{p}_distill", rl_round)
        student_ckpt = self.sft(distill, student, f"{p}-distill")
        self.evaluate("distill", student_ckpt, [rl_round.manifest.ref, distill], t0)
        return self.result


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No per-load and per-map progress bars (transformers' "Loading weights", datasets' "Tokenizing"):
    dozens per run, they drown the phase lines."""
    import datasets
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    ds_bars = datasets.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        if ds_bars:
            datasets.enable_progress_bars()


def run_full(workdir: str | Path, settings: FullConfig | None = None, say: Say = lambda _: None) -> FullResult:
    """Every phase in order in the store at ``workdir`` (models under ``models/``); returns the table."""
    with _quiet_transformers():
        return _Phases(Path(workdir).absolute(), settings or FullConfig(), say).run()
