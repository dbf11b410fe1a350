"""Downstream training: SFT and GRPO runs on published dataset versions, recorded in the catalog."""

from curate.launch.cluster import accelerate_sft, openrlhf_sft, torchrun_sft, verl_grpo
from curate.launch.grpo import GRPORunConfig, run_grpo
from curate.launch.runs import RunRecord, iter_runs, record_run
from curate.launch.sft import SFTRunConfig, load_hf_dataset, run_sft

__all__ = ["GRPORunConfig", "RunRecord", "SFTRunConfig",
           "accelerate_sft", "iter_runs", "load_hf_dataset", "openrlhf_sft",
           "record_run", "run_grpo", "run_sft", "torchrun_sft", "verl_grpo"]
