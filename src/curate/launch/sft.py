"""``curate launch sft``: TRL's SFTTrainer on a published SFT dataset version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from curate.launch.preflight import LengthPlan, check_template_on, length_plan
from curate.launch.runs import RunRecord, train_and_record
from curate.store import DatasetVersion, Store


@dataclass(frozen=True, slots=True)
class SFTRunConfig:
    epochs: float = 2.0  # R1 fine-tuned its 800k samples for two epochs
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 1e-5
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    max_length: int | None = None  # None: the data's p99 in tokens (see curate.launch.preflight)
    seed: int = 0
    logging_steps: int = 10
    bf16: bool = False
    progress: bool = True  # the trainer's own progress bar


def load_hf_dataset(dv: DatasetVersion) -> Any:
    """The version's Parquet parts through ``datasets`` (what TRL consumes), keeping the trainer columns."""
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=[str(p) for p in dv.parts], split="train")
    keep = ["messages"] if "messages" in ds.column_names else ["prompt", "completion"]
    return ds.remove_columns([c for c in ds.column_names if c not in keep])


def sft_preflight(store: Store, dataset_ref: str, model: str, max_length: int | None = None) -> LengthPlan:
    """Before any training: one row through the model's chat template (:class:`TemplateError` if it drops or
    doubles ``<think>`` or the answer), and the maximum length (the data's p99 unless given)."""
    from transformers import AutoTokenizer

    dv = store.get(dataset_ref)
    tokenizer = AutoTokenizer.from_pretrained(model)
    check_template_on(dv, tokenizer, model)
    return length_plan(dv, tokenizer, max_length)


def run_sft(
    store: Store,
    dataset_ref: str,
    model: str,
    out: str | Path,
    spec: SFTRunConfig | None = None,
    plan: LengthPlan | None = None,
    report: Callable[[str], None] | None = None,
) -> RunRecord:
    """Fine-tune ``model`` on ``dataset_ref``; save a checkpoint that ``curate generate`` can load.

    The pre-flight (:func:`sft_preflight`) runs first unless ``plan`` is given; its length line goes to
    ``report`` and the plan (max length, p99, share truncated) into the run's config."""
    spec = spec or SFTRunConfig()
    plan = plan or sft_preflight(store, dataset_ref, model, spec.max_length)
    spec = replace(spec, max_length=plan.max_length or None)
    if report is not None:
        report(plan.line())

    def make_trainer(dv: DatasetVersion, net: Any, tokenizer: Any, scratch: Path) -> Any:
        import torch
        from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

        args = SFTConfig(
            output_dir=str(scratch),
            num_train_epochs=spec.epochs,
            max_steps=spec.max_steps,
            per_device_train_batch_size=spec.batch_size,
            gradient_accumulation_steps=spec.grad_accum,
            learning_rate=spec.learning_rate,
            lr_scheduler_type=spec.lr_scheduler,
            warmup_steps=spec.warmup_steps,
            max_length=spec.max_length,
            seed=spec.seed,
            logging_steps=spec.logging_steps,
            save_strategy="no",
            report_to="none",
            use_cpu=not torch.cuda.is_available(),
            bf16=spec.bf16,
            disable_tqdm=not spec.progress,
        )
        trainer = SFTTrainer(model=net, args=args, train_dataset=load_hf_dataset(dv), processing_class=tokenizer)
        if not spec.progress:  # without a progress bar transformers prints every log dict instead
            from transformers import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        return trainer

    config = {**asdict(spec), "max_length_plan": plan.to_dict()}
    return train_and_record(store, "sft", dataset_ref, model, out, config, make_trainer)


SFTSpec = SFTRunConfig  # the old name, kept while other branches still import it
