"""The toy model behind ``curate demo``: synthetic word problems, a tiny local reasoning model, SFT/eval."""

from curate.demo.experiment import (
    Completion,
    ExperimentConfig,
    ExperimentResult,
    ToySamplingConfig,
    ToySFTConfig,
    load,
    pass_at_1,
    run_experiment,
    sample,
    sft,
)
from curate.demo.task import (
    Problem,
    extract_answer,
    is_correct,
    make_problem,
    make_problems,
    noisy_trace,
    reference_trace,
)
from curate.demo.toy_model import ToyConfig, build_tokenizer, build_toy_model, is_built, render_prompt

__all__ = [
    "Completion",
    "ExperimentResult",
    "ExperimentConfig",
    "Problem",
    "ToySFTConfig",
    "ToySamplingConfig",
    "ToyConfig",
    "build_tokenizer",
    "build_toy_model",
    "extract_answer",
    "is_built",
    "is_correct",
    "load",
    "make_problem",
    "make_problems",
    "noisy_trace",
    "pass_at_1",
    "reference_trace",
    "render_prompt",
    "run_experiment",
    "sample",
    "sft",
]
