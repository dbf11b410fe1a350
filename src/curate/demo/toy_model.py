"""A tiny reasoning model, built from scratch on CPU: a real Hugging Face checkpoint for the demo.

A character-level tokenizer (``tokenizers``, wrapped as ``PreTrainedTokenizerFast`` with a chat template)
and a small ``LlamaForCausalLM`` pretrained from random weights on synthetic word problems in R1 form.
The training traces are deliberately noisy (a share of them carry a realistic mistake), so sampling at
temperature 1 is right only sometimes and rejection sampling has something to fix. The checkpoint loads
with ``AutoModelForCausalLM`` / ``AutoTokenizer`` and is reused when its config hash matches.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import string
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import xxhash
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from curate.demo.failures import PHRASES, R1_ZERO_MIX, r1_zero_trace
from curate.demo.task import make_problem, noisy_trace, reference_trace

MARKER = "curate_toy.json"
BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
# Whole-word tokens for the R1 tags keep sequences short; everything else is one character.
WORD_TOKENS = ("<think>", "</think>")
ALPHABET = string.printable[:95] + "\n"  # digits, letters, punctuation, space, newline
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}A: {{ m['content'] }}{{ eos_token }}"
    "{% else %}Q: {{ m['content'] }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}A: {% endif %}"
)
# Pretraining problems come from their own seed space, apart from the demo's train/eval prompts.
_PRETRAIN_SEED_OFFSET = 1_000_003


def render_prompt(prompt: str) -> str:
    """What ``apply_chat_template([user], add_generation_prompt=True)`` renders, as plain Python."""
    return f"{BOS}Q: {prompt}\nA: "


def build_tokenizer(phrases: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """Character-level, plus whole-word tokens for the R1 tags and for ``phrases`` (each one token)."""
    vocab = {tok: i for i, tok in enumerate((PAD, BOS, EOS, UNK, *WORD_TOKENS, *ALPHABET))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_tokens([*WORD_TOKENS, *phrases])
    tok.add_special_tokens([PAD, BOS, EOS, UNK])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK)  # type: ignore[no-untyped-call]
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.padding_side = "left"  # generation pads on the left; training collators pad as they need
    return wrapped


@dataclass(frozen=True, slots=True)
class ToyConfig:
    """Architecture and pretraining recipe; its hash names the checkpoint for reuse."""

    seed: int = 0
    layers: int = 3
    hidden: int = 128
    heads: int = 4
    intermediate: int = 384
    steps: int = 480
    batch_size: int = 48
    lr: float = 3e-3
    warmup: int = 30
    # Share of pretraining traces with a mistake: sets how often the model is wrong at temperature 1.
    noise: float = 0.5
    # "noisy": clean traces and arithmetic slips/format faults (``noise`` of them); "r1_zero": the mix of
    # R1-Zero's failure modes in curate.demo.failures (mixed languages, walls of text, loops, ...).
    mix: str = "noisy"
    max_positions: int = 256

    def digest(self) -> str:
        fields = dataclasses.asdict(self)
        if fields["mix"] == "noisy":  # the field's default keeps the hash checkpoints were built under
            del fields["mix"]
        else:  # the mix's weights and phrases decide the checkpoint as much as the fields do
            fields["mix_spec"] = {"weights": R1_ZERO_MIX, "phrases": PHRASES}
        return xxhash.xxh64_hexdigest(json.dumps(fields, sort_keys=True).encode())


def is_built(path: str | Path, config: ToyConfig) -> bool:
    marker = Path(path) / MARKER
    if not marker.is_file():
        return False
    return bool(json.loads(marker.read_text()).get("hash") == config.digest())


def _batch(
    tokenizer: PreTrainedTokenizerFast, config: ToyConfig, rng: random.Random, step: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    prompts, texts = [], []
    for j in range(config.batch_size):
        p = make_problem(_PRETRAIN_SEED_OFFSET + config.seed, step * config.batch_size + j)
        if config.mix == "r1_zero":
            response = r1_zero_trace(p, rng)[0]
        else:
            response = noisy_trace(p, rng)[0] if rng.random() < config.noise else reference_trace(p)
        prompts.append(render_prompt(p.prompt))
        texts.append(render_prompt(p.prompt) + response + EOS)
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    plen = [len(x) for x in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    width = max(len(x) for x in enc)
    ids = torch.full((len(enc), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    labels = torch.full((len(enc), width), -100, dtype=torch.long)
    for i, (x, n) in enumerate(zip(enc, plen, strict=True)):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
        labels[i, n : len(x)] = ids[i, n : len(x)]  # loss on the response only
    return ids, mask, labels


def _pretrain(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, config: ToyConfig) -> list[float]:
    rng = random.Random(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.98))

    def schedule(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        frac = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    losses: list[float] = []
    for step in range(config.steps):
        ids, mask, labels = _batch(tokenizer, config, rng, step)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()  # type: ignore[no-untyped-call]
    return losses


def build_toy_model(path: str | Path, config: ToyConfig | None = None, *, force: bool = False) -> Path:
    """Pretrain the toy model into ``path`` (or reuse the one there when its config hash matches).

    Written to a sibling temporary folder and renamed into place, so a killed build leaves no half
    checkpoint behind. Refuses to replace a non-empty folder that is not a toy checkpoint.
    """
    config = config or ToyConfig()
    path = Path(path)
    if not force and is_built(path, config):
        return path
    if path.exists() and any(path.iterdir()) and not (path / MARKER).is_file():
        raise FileExistsError(f"{path} exists and is not a toy-model checkpoint")
    torch.manual_seed(config.seed)
    tokenizer = build_tokenizer(PHRASES if config.mix == "r1_zero" else ())
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden,
        intermediate_size=config.intermediate,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=config.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(model_config)
    started = time.perf_counter()
    losses = _pretrain(model, tokenizer, config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    marker = {
        "hash": config.digest(),
        "config": dataclasses.asdict(config),
        "train_seconds": round(time.perf_counter() - started, 1),
        "final_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
    }
    (tmp / MARKER).write_text(json.dumps(marker, indent=2))
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(path)
    return path
