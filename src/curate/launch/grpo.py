"""``curate launch grpo``: TRL's GRPOTrainer on an ``rl_prompts`` version, rewarded by curate's own verifiers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curate.launch.runs import RunRecord, train_and_record
from curate.store import DatasetVersion, Store


@dataclass(frozen=True, slots=True)
class GRPORunConfig:
    num_generations: int = 8  # the group size
    max_steps: int = 100
    batch_size: int = 8  # prompts x generations per device step must divide by num_generations
    learning_rate: float = 1e-6
    max_completion_length: int = 1024
    temperature: float = 0.6
    beta: float = 0.0
    seed: int = 0
    logging_steps: int = 10
    rewards: tuple[str, ...] = ("format", "correctness", "language")
    progress: bool = True  # the trainer's progress bar (off: no per-step log dicts printed either)


def load_rl_dataset(path_parts: list[str]) -> Any:
    """verl rows -> the columns the reward functions read: prompt, reference, task (+ tests)."""
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=path_parts, split="train")

    def flat(row: dict[str, Any]) -> dict[str, Any]:
        info = row.get("extra_info") or {}
        return {
            "prompt": row["prompt"],
            "reference": (row.get("reward_model") or {}).get("ground_truth"),
            "task": row.get("ability"),
            "tests": info.get("tests"),
            "entry_point": info.get("entry_point"),
        }

    return ds.map(flat, remove_columns=ds.column_names)


def stop_token_ids(tokenizer: Any) -> set[int]:
    """The ids TRL treats as a completion's proper end (EOS and pad): any other last token is a truncation."""
    ids = set()
    for attr in ("eos_token_id", "pad_token_id"):
        v = getattr(tokenizer, attr, None)
        ids.update(v if isinstance(v, list) else [v] if v is not None else [])
    return ids


def reward_functions(names: tuple[str, ...], tokenizer: Any = None) -> list[Any]:
    from curate.launch import rewards

    fmt = rewards.format_reward
    if tokenizer is not None:  # truncated completions (no EOS at the end) get no format credit
        fmt = rewards.make_format_reward("r1", stop_token_ids(tokenizer))
    table = {
        "format": fmt,
        "correctness": [rewards.math_reward, rewards.code_reward],
        "math": rewards.math_reward,
        "code": rewards.code_reward,
        "language": rewards.language_reward,
    }
    out: list[Any] = []
    for n in names:
        f = table.get(n)
        if f is None:
            raise ValueError(f"unknown reward {n!r}; known: {', '.join(table)}")
        out.extend(f if isinstance(f, list) else [f])
    return out


def run_grpo(
    store: Store, dataset_ref: str, model: str, out: str | Path, spec: GRPORunConfig | None = None
) -> RunRecord:
    """GRPO on an ``rl_prompts`` version with curate's rewards; save a checkpoint and record the run."""
    spec = spec or GRPORunConfig()

    def make_trainer(dv: DatasetVersion, net: Any, tokenizer: Any, scratch: Path) -> Any:
        import torch
        from trl import GRPOConfig, GRPOTrainer  # type: ignore[attr-defined]

        args = GRPOConfig(
            output_dir=str(scratch),
            max_steps=spec.max_steps,
            per_device_train_batch_size=spec.batch_size,
            num_generations=spec.num_generations,
            learning_rate=spec.learning_rate,
            max_completion_length=spec.max_completion_length,
            temperature=spec.temperature,
            beta=spec.beta,
            seed=spec.seed,
            logging_steps=spec.logging_steps,
            save_strategy="no",
            report_to="none",
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=not spec.progress,
        )
        trainer = GRPOTrainer(
            model=net,
            args=args,
            train_dataset=load_rl_dataset([str(p) for p in dv.parts]),
            processing_class=tokenizer,
            reward_funcs=reward_functions(spec.rewards, tokenizer),
        )
        if not spec.progress:
            from transformers import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        return trainer

    config = {**asdict(spec), "rewards": list(spec.rewards)}
    return train_and_record(store, "grpo", dataset_ref, model, out, config, make_trainer)


GRPOSpec = GRPORunConfig  # the old name, kept while other branches still import it
