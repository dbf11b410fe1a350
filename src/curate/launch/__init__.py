"""Downstream training: SFT and GRPO runs on published dataset versions, recorded in the catalog."""

from curate.launch.cluster import (
    ClusterPaths,
    Command,
    accelerate_sft,
    openrlhf_grpo,
    openrlhf_sft,
    torchrun_sft,
    verl_grpo,
)
from curate.launch.evaluate import EvalConfig, EvalError, EvalReport, evaluate
from curate.launch.grpo import GRPORunConfig, run_grpo
from curate.launch.preflight import LengthPlan, TemplateError, check_chat_template, length_plan
from curate.launch.runs import RunRecord, iter_runs, record_run
from curate.launch.sft import SFTRunConfig, load_hf_dataset, run_sft, sft_preflight

__all__ = [
    "ClusterPaths",
    "Command",
    "EvalConfig",
    "EvalError",
    "EvalReport",
    "GRPORunConfig",
    "LengthPlan",
    "RunRecord",
    "SFTRunConfig",
    "TemplateError",
    "accelerate_sft",
    "check_chat_template",
    "evaluate",
    "iter_runs",
    "length_plan",
    "load_hf_dataset",
    "openrlhf_grpo",
    "openrlhf_sft",
    "record_run",
    "run_grpo",
    "run_sft",
    "sft_preflight",
    "torchrun_sft",
    "verl_grpo",
]
