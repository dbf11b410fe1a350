"""Launch commands for clusters: TRL (accelerate / torchrun), verl and OpenRLHF.

Nothing here runs anything: it writes the command lines that train on a dataset version's Parquet parts on
a cluster this machine cannot reach. Every path in a command is the one the cluster sees: under
``remote_root`` (where the store is mounted or synced there), or relative to the store root when none is
given (the command then runs from the store root). The reward functions verl and OpenRLHF load by file
path are small shims written into the store (``launch/*.py``) so they travel with it; they import curate,
which the cluster's environment needs anyway.

Each command is checked by its trainer's own parser in the tests (TRL's ``TrlParser``; verl's Hydra
config and OpenRLHF's argparse parsers as recorded from the released packages, see
``tests/data/trainers``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from curate.errors import UsageError
from curate.store import DatasetVersion

CHECKED_AGAINST = {"trl": "1.16.0", "verl": "0.9.1", "openrlhf": "0.11.2"}

VERL_SHIM = '''"""verl's custom reward function (written by curate): curate's verifiers, scored outside the policy."""
from curate.launch.rewards import compute_score  # noqa: F401
'''
OPENRLHF_SHIM = '''"""OpenRLHF's reward_func(queries, prompts, labels) (written by curate): curate's verifiers."""
from curate.launch.openrlhf_reward import reward_func  # noqa: F401
'''
SHIMS = {"verl": ("launch/verl_reward.py", VERL_SHIM), "openrlhf": ("launch/openrlhf_reward.py", OPENRLHF_SHIM)}


@dataclass(frozen=True, slots=True)
class ClusterPaths:
    """Maps a path in the local store to the path the cluster sees."""

    home: Path
    remote_root: str | None = None

    def of(self, path: Path | str) -> str:
        p = Path(path)
        try:
            rel = p.resolve().relative_to(self.home.resolve())
        except ValueError as e:
            raise UsageError(f"{p}: not inside the store {self.home}, so the cluster cannot see it") from e
        if self.remote_root:
            return str(PurePosixPath(self.remote_root) / rel.as_posix())
        return rel.as_posix()

    def shim(self, trainer: str) -> str:
        """Write (once) the reward shim ``trainer`` loads by path; return its path on the cluster."""
        rel, text = SHIMS[trainer]
        target = self.home / rel
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
        return self.of(target)

    @property
    def where(self) -> str:
        if self.remote_root:
            return f"paths under {self.remote_root}: the store, launch/ included, as mounted or synced there"
        return (
            "paths relative to the store root: run from there (multi-node Ray jobs resolve paths per worker: "
            "give --remote-root)"
        )


@dataclass(frozen=True, slots=True)
class Command:
    """A printed command: its argv, how many leading words are the launcher, and the trainer it calls."""

    trainer: str  # trl | verl | openrlhf
    entry: str  # the trainer's module (trl.scripts.sft, verl.trainer.main_ppo, openrlhf.cli.train_sft, ...)
    argv: tuple[str, ...]
    launcher: int  # argv[:launcher] is the launcher (accelerate, torchrun, deepspeed, python3 -m ...)
    notes: tuple[str, ...] = field(default=())

    @property
    def trainer_args(self) -> list[str]:
        return list(self.argv[self.launcher :])

    def shell(self) -> str:
        return shlex.join(self.argv)

    def __str__(self) -> str:
        return self.shell()


def _data_format(dv: DatasetVersion) -> str:
    schema = dv.manifest.schema or ""
    if "prompt_completion" in schema:
        return "prompt_completion"
    if "rl_prompt" in schema:
        return "rl_prompt"
    return "messages"


def _trl_args(
    dv: DatasetVersion, paths: ClusterPaths, model: str, out: str, max_length: int, epochs: float
) -> list[str]:
    # A version folder is a Parquet dataset to ``datasets.load_dataset`` (``_manifest.json`` is skipped).
    return [
        "--model_name_or_path",
        model,
        "--dataset_name",
        paths.of(dv.path),
        "--dataset_train_split",
        "train",
        "--output_dir",
        out,
        "--num_train_epochs",
        f"{epochs:g}",
        "--max_length",
        str(max_length),
        "--bf16",
        "true",
        "--gradient_checkpointing",
        "true",
        "--report_to",
        "none",
    ]


def accelerate_sft(
    dv: DatasetVersion,
    paths: ClusterPaths,
    model: str,
    out: str,
    *,
    gpus: int = 8,
    max_length: int = 32768,
    epochs: float = 2.0,
) -> Command:
    """TRL's own SFT script under accelerate (one node; a DeepSpeed/FSDP config is the cluster's own)."""
    launcher = ["accelerate", "launch", "--num_processes", str(gpus), "-m", "trl.scripts.sft"]
    return Command(
        "trl",
        "trl.scripts.sft",
        (*launcher, *_trl_args(dv, paths, model, out, max_length, epochs)),
        len(launcher),
        (paths.where,),
    )


def torchrun_sft(
    dv: DatasetVersion,
    paths: ClusterPaths,
    model: str,
    out: str,
    *,
    gpus: int = 8,
    max_length: int = 32768,
    epochs: float = 2.0,
) -> Command:
    launcher = ["torchrun", f"--nproc_per_node={gpus}", "-m", "trl.scripts.sft"]
    return Command(
        "trl",
        "trl.scripts.sft",
        (*launcher, *_trl_args(dv, paths, model, out, max_length, epochs)),
        len(launcher),
        (paths.where,),
    )


def _hydra_list(items: list[str]) -> str:
    return "[" + ",".join('"' + i.replace('"', '\\"') + '"' for i in items) + "]"


def verl_grpo(
    dv: DatasetVersion,
    paths: ClusterPaths,
    model: str,
    out: str,
    *,
    val: DatasetVersion | None = None,
    gpus: int = 8,
    nodes: int = 1,
    n: int = 16,
    temperature: float = 0.6,
    max_prompt_length: int = 2048,
    max_response_length: int = 32768,
) -> Command:
    """verl's PPO trainer in GRPO mode on an ``rl_prompts`` version, scored by curate's ``compute_score``.

    Without ``val`` the same version is the validation set (verl loads one before training), and the
    periodic validation is off."""
    train = [paths.of(p) for p in dv.parts]
    valid = [paths.of(p) for p in (val or dv).parts]
    launcher = ["python3", "-m", "verl.trainer.main_ppo"]
    args = [
        "algorithm.adv_estimator=grpo",
        f"data.train_files={_hydra_list(train)}",
        f"data.val_files={_hydra_list(valid)}",
        "data.prompt_key=prompt",
        f"data.max_prompt_length={max_prompt_length}",
        f"data.max_response_length={max_response_length}",
        "data.filter_overlong_prompts=true",
        f"actor_rollout_ref.model.path={model}",
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.rollout.n={n}",
        f"actor_rollout_ref.rollout.temperature={temperature}",
        "actor_rollout_ref.actor.use_kl_loss=false",
        f"reward.custom_reward_function.path={paths.shim('verl')}",
        "reward.custom_reward_function.name=compute_score",
        f"trainer.n_gpus_per_node={gpus}",
        f"trainer.nnodes={nodes}",
        "trainer.project_name=curate",
        f"trainer.experiment_name={dv.manifest.name}_v{dv.manifest.version}",
        f"trainer.default_local_dir={out}",
        "trainer.logger=[console]",
    ]
    if val is None:
        args += ["trainer.val_before_train=false", "trainer.test_freq=-1"]
    return Command("verl", "verl.trainer.main_ppo", (*launcher, *args), len(launcher), (paths.where,))


def openrlhf_sft(
    dv: DatasetVersion,
    paths: ClusterPaths,
    model: str,
    out: str,
    *,
    gpus: int = 8,
    max_length: int = 32768,
    epochs: int = 2,
) -> Command:
    """OpenRLHF's SFT trainer reading the version's Parquet parts, templated by the model's chat template."""
    fmt = _data_format(dv)
    keys = (
        ["--data.input_key", "prompt", "--data.output_key", "completion"]
        if fmt == "prompt_completion"
        else ["--data.input_key", "messages"]
    )
    launcher = ["deepspeed", f"--num_gpus={gpus}", "--module", "openrlhf.cli.train_sft"]
    args = [
        "--model.model_name_or_path",
        model,
        "--data.dataset",
        ",".join(paths.of(p) for p in dv.parts),
        *keys,
        "--data.apply_chat_template",
        "--data.max_len",
        str(max_length),
        "--ckpt.output_dir",
        out,
        "--train.max_epochs",
        str(epochs),
        "--ds.zero_stage",
        "3",
        "--ds.param_dtype",
        "bf16",
        "--model.gradient_checkpointing_enable",
    ]
    return Command("openrlhf", "openrlhf.cli.train_sft", (*launcher, *args), len(launcher), (paths.where,))


def openrlhf_grpo(
    dv: DatasetVersion,
    paths: ClusterPaths,
    model: str,
    out: str,
    *,
    gpus: int = 8,
    n: int = 16,
    temperature: float = 0.6,
    max_prompt_length: int = 2048,
    max_response_length: int = 32768,
) -> Command:
    """OpenRLHF's Ray PPO trainer with group-normalised advantages (GRPO), rewarded by curate's verifiers
    through ``reward_func(queries, prompts, labels)``; labels are the rows' ``reward_model`` structs."""
    launcher = ["python3", "-m", "openrlhf.cli.train_ppo_ray"]
    args = [
        "--actor.model_name_or_path",
        model,
        "--actor.num_gpus_per_node",
        str(gpus),
        "--ref.num_gpus_per_node",
        str(gpus),
        "--vllm.num_engines",
        str(gpus),
        "--train.colocate_all",
        "--vllm.enable_sleep",
        "--data.prompt_dataset",
        ",".join(paths.of(p) for p in dv.parts),
        "--data.input_key",
        "prompt",
        "--data.label_key",
        "reward_model",
        "--data.apply_chat_template",
        "--reward.remote_url",
        paths.shim("openrlhf"),
        "--algo.advantage.estimator",
        "group_norm",
        "--rollout.n_samples_per_prompt",
        str(n),
        "--rollout.temperature",
        f"{temperature:g}",
        "--rollout.max_new_tokens",
        str(max_response_length),
        "--data.max_len",
        str(max_prompt_length + max_response_length),
        "--ckpt.output_dir",
        out,
        "--ds.zero_stage",
        "3",
        "--ds.param_dtype",
        "bf16",
    ]
    return Command("openrlhf", "openrlhf.cli.train_ppo_ray", (*launcher, *args), len(launcher), (paths.where,))


__all__ = [
    "CHECKED_AGAINST",
    "ClusterPaths",
    "Command",
    "accelerate_sft",
    "openrlhf_grpo",
    "openrlhf_sft",
    "torchrun_sft",
    "verl_grpo",
]
