"""Equivalent launch commands and configs for clusters: accelerate/torchrun (TRL), verl, OpenRLHF.

Nothing here runs anything: it writes the command lines and configs that point at a dataset version's
Parquet parts, so the same version trains on a cluster that this machine cannot reach.
"""

from __future__ import annotations

import shlex

from curate.store import DatasetVersion


def _files(dv: DatasetVersion) -> str:
    return ",".join(str(p) for p in dv.parts)


def accelerate_sft(dv: DatasetVersion, model: str, out: str, gpus: int = 8, nodes: int = 1) -> str:
    """TRL's own SFT script under accelerate (DeepSpeed ZeRO-3 config left to the cluster)."""
    args = ["accelerate", "launch", "--num_processes", str(gpus * nodes), "--num_machines", str(nodes),
            "-m", "trl.scripts.sft", "--model_name_or_path", model, "--dataset_name", "parquet",
            "--dataset_config", "default", "--data_files", _files(dv), "--output_dir", out,
            "--num_train_epochs", "2", "--bf16", "--gradient_checkpointing"]
    return shlex.join(args)


def torchrun_sft(dv: DatasetVersion, model: str, out: str, gpus: int = 8) -> str:
    args = ["torchrun", f"--nproc_per_node={gpus}", "-m", "trl.scripts.sft", "--model_name_or_path", model,
            "--dataset_name", "parquet", "--data_files", _files(dv), "--output_dir", out, "--bf16"]
    return shlex.join(args)


def verl_grpo(dv: DatasetVersion, model: str, gpus: int = 8, nodes: int = 1) -> str:
    """verl PPO trainer in GRPO mode over the rl_prompts version, scored by curate.launch.rewards.compute_score."""
    import curate.launch.rewards as rewards

    files = "[" + ",".join(f"'{p}'" for p in dv.parts) + "]"
    args = [
        "python3", "-m", "verl.trainer.main_ppo", "algorithm.adv_estimator=grpo",
        f"data.train_files={files}", "data.prompt_key=prompt", "data.max_response_length=32768",
        f"actor_rollout_ref.model.path={model}", "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.n=16", "actor_rollout_ref.rollout.temperature=0.6",
        f"custom_reward_function.path={rewards.__file__}", "custom_reward_function.name=compute_score",
        f"trainer.n_gpus_per_node={gpus}", f"trainer.nnodes={nodes}",
        f"trainer.experiment_name={dv.manifest.ref.replace('@', '_v')}",
    ]
    return shlex.join(args)


def openrlhf_sft(jsonl: str, model: str, out: str, gpus: int = 8) -> str:
    args = ["deepspeed", f"--num_gpus={gpus}", "--module", "openrlhf.cli.train_sft", "--pretrain", model,
            "--dataset", jsonl, "--input_key", "messages", "--apply_chat_template", "--save_path", out,
            "--max_epochs", "2", "--zero_stage", "3", "--bf16"]
    return shlex.join(args)
