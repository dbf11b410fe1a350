"""A tiny causal LM built locally: random weights, a BPE tokenizer trained on a small text, a chat template.

There is no model hub at run time, so tests, benchmarks and the judge tests build their checkpoint here.
The result is a normal Hugging Face checkpoint directory (``config.json``, safetensors, tokenizer files
with the chat template) that transformers and vLLM both load. ``<think>``/``</think>``/``<answer>`` are
added as *non-special* tokens, like in the R1 distills, so decoding with ``skip_special_tokens`` keeps them.
"""

from __future__ import annotations

import itertools
from importlib import resources
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{% if not (loop.last and message['role'] == 'assistant') %}<|end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = (
    "<|pad|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
)
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")

_FALLBACK_TEXT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "<think> Let me think step by step. 2 + 3 = 5, so the answer is 5. </think> <answer> 5 </answer>"
)


def _corpus(max_lines: int) -> list[str]:
    """Training text for the tokenizer: the packaged GSM8K prompt pool (no network needed)."""
    lines = [_FALLBACK_TEXT]
    try:
        ref = resources.files("curate") / "data" / "prompts" / "gsm8k_train.jsonl"
        with ref.open("r", encoding="utf-8") as f:
            lines.extend(line for line in itertools.islice(f, max_lines))
    except (FileNotFoundError, OSError):
        pass
    return lines


def build_tiny_checkpoint(
    path: str | Path,
    *,
    arch: str = "llama",
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position_embeddings: int = 4096,
    seed: int = 0,
    corpus_lines: int = 400,
) -> Path:
    """Write a tiny random-weight ``arch`` ("llama" or "qwen2") checkpoint to ``path`` and return it.

    Deterministic for a given ``seed``; takes about a second on a CPU.
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(corpus_lines), trainer=trainer)
    tok: Any = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "left"
    tok.save_pretrained(out)

    common = dict(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    if arch == "llama":
        config: Any = LlamaConfig(**common)
    elif arch == "qwen2":
        config = Qwen2Config(**common)
    else:
        raise ValueError(f"arch must be 'llama' or 'qwen2', not {arch!r}")
    torch.manual_seed(seed)
    model: Any = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    return out
