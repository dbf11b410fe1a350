"""The model-level loop of the demo: sample, keep the correct samples, SFT, and measure pass@1.

:func:`run_experiment` is the whole loop with the simplest possible filter (exact match of the boxed
answer), to check that curated data makes the toy model better and that as many unfiltered samples do
not. The pieces (:func:`sample`, :func:`sft`, :func:`pass_at_1`) are what ``curate demo`` reuses around
the real pipeline (generation ledger, checks, selection, published datasets).
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from curate.demo.task import Problem, is_correct, make_problems
from curate.demo.toy_model import ToyConfig, build_toy_model


@dataclass(frozen=True, slots=True)
class ToySamplingConfig:
    n: int = 8
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 96
    batch_size: int = 256
    seed: int = 0


@dataclass(frozen=True, slots=True)
class ToySFTConfig:
    epochs: float = 3.0
    batch_size: int = 16
    lr: float = 3e-4  # 1e-3 (above pretraining's final rate) made both fine-tunes worse than the base
    max_steps: int = 300
    seed: int = 0


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    seed: int = 0
    toy: ToyConfig = field(default_factory=ToyConfig)
    train_prompts: int = 256
    eval_prompts: int = 200
    eval_samples: int = 4  # samples per held-out prompt; pass@1 is their mean correctness
    sampling: ToySamplingConfig = field(default_factory=ToySamplingConfig)
    sft: ToySFTConfig = field(default_factory=ToySFTConfig)

    @classmethod
    def fast(cls, seed: int = 0) -> ExperimentConfig:
        """Everything tiny: checks the mechanics in seconds, not the gain."""
        return cls(
            seed=seed,
            toy=ToyConfig(seed=seed, layers=1, hidden=32, heads=2, intermediate=64, steps=20, batch_size=16),
            train_prompts=6,
            eval_prompts=6,
            eval_samples=1,
            sampling=ToySamplingConfig(n=2, max_new_tokens=48, seed=seed),
            sft=ToySFTConfig(epochs=1, batch_size=4, max_steps=3, seed=seed),
        )


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str  # "stop" (end-of-sequence token) or "length"


@dataclass(slots=True)
class ExperimentResult:
    pass_at_1: dict[str, float] = field(default_factory=dict)  # base, filtered, unfiltered
    sft_rows: int = 0
    train_samples: int = 0
    train_correct: int = 0
    prompts_with_correct: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"{'model':<12}{'pass@1':>8}"]
        lines += [f"{k:<12}{v:>8.3f}" for k, v in self.pass_at_1.items()]
        lines.append(
            f"samples {self.train_samples}, correct {self.train_correct}, prompts with a correct sample "
            f"{self.prompts_with_correct}, SFT rows {self.sft_rows}"
        )
        lines.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()))
        return "\n".join(lines)


def load(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path)
    model.eval()  # type: ignore[no-untyped-call]
    return model, tokenizer


@torch.inference_mode()
def sample(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    settings: ToySamplingConfig,
) -> list[list[Completion]]:
    """``settings.n`` completions per prompt with ``model.generate`` (KV cache, left padding)."""
    torch.manual_seed(settings.seed)
    rendered = [
        str(tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True))
        for p in prompts
    ]
    flat = [(i, text) for i, text in enumerate(rendered) for _ in range(settings.n)]
    out: list[list[Completion]] = [[] for _ in prompts]
    eos = tokenizer.eos_token_id
    for start in range(0, len(flat), settings.batch_size):
        chunk = flat[start : start + settings.batch_size]
        enc = tokenizer([t for _, t in chunk], add_special_tokens=False, padding=True, return_tensors="pt")
        gen = model.generate(  # type: ignore[operator]
            **enc,
            do_sample=True,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_new_tokens=settings.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=eos,
        )
        new = gen[:, enc["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        for (i, _), row, text in zip(chunk, new.tolist(), texts, strict=True):
            out[i].append(Completion(text, "stop" if eos in row else "length"))
    return out


def pass_at_1(path: str | Path, problems: Sequence[Problem], settings: ToySamplingConfig) -> float:
    """Mean correctness over ``settings.n`` samples per problem, averaged over problems."""
    model, tokenizer = load(path)
    completions = sample(model, tokenizer, [p.prompt for p in problems], settings)
    scores = [
        sum(is_correct(c.text, p.answer) for c in cs) / len(cs) for p, cs in zip(problems, completions, strict=True)
    ]
    return sum(scores) / len(scores)


def sft(base: str | Path, out: str | Path, rows: Sequence[tuple[str, str]], settings: ToySFTConfig) -> Path:
    """Fine-tune ``base`` on (prompt, response) pairs with TRL's SFTTrainer; loss on the response only."""
    from datasets import Dataset  # heavy imports, only when training
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    out = Path(out)
    model, tokenizer = load(base)
    data = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": p}], "completion": [{"role": "assistant", "content": r}]}
            for p, r in rows
        ]
    )
    steps_per_epoch = max(1, -(-len(rows) // settings.batch_size))
    max_steps = max(1, min(settings.max_steps, round(settings.epochs * steps_per_epoch)))
    scratch = out.with_name(f".{out.name}.trainer")
    args = SFTConfig(
        output_dir=str(scratch),
        max_steps=max_steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.lr,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        weight_decay=0.0,
        logging_steps=max(1, max_steps // 5),
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=settings.seed,
        data_seed=settings.seed,
        max_length=256,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    shutil.rmtree(scratch, ignore_errors=True)
    return out


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start


def run_experiment(workdir: str | Path, settings: ExperimentConfig | None = None) -> ExperimentResult:
    """Base model → n samples per train prompt → SFT on correct vs. as many random samples → pass@1."""
    s = settings or ExperimentConfig()
    workdir = Path(workdir)
    result = ExperimentResult()
    t = result.seconds
    train = make_problems(s.seed, s.train_prompts)
    held_out = make_problems(s.seed, s.eval_prompts, start=s.train_prompts)
    eval_sampling = ToySamplingConfig(
        n=s.eval_samples,
        temperature=s.sampling.temperature,
        top_p=s.sampling.top_p,
        max_new_tokens=s.sampling.max_new_tokens,
        batch_size=s.sampling.batch_size,
        seed=s.seed + 1,
    )
    with _timed(t, "build"):
        base = build_toy_model(workdir / "toy-base", s.toy)
    with _timed(t, "generate"):
        model, tokenizer = load(base)
        completions = sample(model, tokenizer, [p.prompt for p in train], s.sampling)
    with _timed(t, "score"):
        pairs = [(p, c.text) for p, cs in zip(train, completions, strict=True) for c in cs]
        correct = [(p.prompt, r) for p, r in pairs if is_correct(r, p.answer)]
        result.train_samples, result.train_correct = len(pairs), len(correct)
        hits = [any(is_correct(c.text, p.answer) for c in cs) for p, cs in zip(train, completions, strict=True)]
        result.prompts_with_correct = sum(hits)
        rng = random.Random(s.seed)
        unfiltered = [(p.prompt, r) for p, r in rng.sample(pairs, len(correct))]
        result.sft_rows = len(correct)
    with _timed(t, "sft"):
        # No correct sample (only with an untrained model): nothing to train on, both stay the base.
        filtered_dir = sft(base, workdir / "sft-filtered", correct, s.sft) if correct else base
        unfiltered_dir = sft(base, workdir / "sft-unfiltered", unfiltered, s.sft) if correct else base
    with _timed(t, "eval"):
        for name, path in (("base", base), ("filtered", filtered_dir), ("unfiltered", unfiltered_dir)):
            result.pass_at_1[name] = pass_at_1(path, held_out, eval_sampling)
    return result


ExperimentSettings = ExperimentConfig  # the old name, kept while other branches still import it
