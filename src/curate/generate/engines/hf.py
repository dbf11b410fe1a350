"""transformers engine: batched left-padded decoding with a KV cache, one RNG per sample.

``model.generate`` draws every row of a batch from one global RNG, so a sample would depend on what
else shared its batch. This loop keeps a ``torch.Generator`` per row (seeded ``request.seed + i``) and
samples by inverse CDF over the top-p nucleus, so each sample depends only on its own seed. Meant for
small checkpoints, CPU runs and tests; vLLM is the production engine.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.generate.engines.base import (
    Completion,
    EngineError,
    Rendered,
    Request,
    SamplingParams,
    assemble,
    truncate_at_stop,
)
from curate.generate.engines.prefill import merge_prefill, template_prefill


@dataclass(frozen=True, slots=True)
class HFConfig:
    device: str = "cpu"
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    batch_size: int = 32  # rows (samples) decoded together
    trust_remote_code: bool = False


class HFEngine:
    name = "hf"

    def __init__(self, checkpoint: str, config: HFConfig = HFConfig()) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self.checkpoint = checkpoint
        self.config = config
        looks_local = checkpoint.startswith((".", "/", "~")) or checkpoint.count("/") > 1
        if looks_local and not Path(checkpoint).expanduser().is_dir():
            raise EngineError(f"checkpoint directory not found: {checkpoint}")
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=config.trust_remote_code)
            dtype: Any = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
            model: Any = AutoModelForCausalLM.from_pretrained(
                checkpoint, dtype=dtype, trust_remote_code=config.trust_remote_code
            )
            self.model: Any = model.to(config.device)
        except (OSError, ValueError) as e:
            raise EngineError(f"cannot load checkpoint {checkpoint!r}: {e}") from e
        self.model.eval()
        tok = self.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tok.eos_token_id is not None:
            eos_ids.add(tok.eos_token_id)
        self.eos_ids = sorted(eos_ids)
        self.template_prefill = template_prefill(tok)
        # transformers 5.2x renamed the forward's ``past_key_values`` to ``cache``; accept both.
        fwd = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in fwd else "past_key_values"

    def render(self, prompt: Rendered) -> list[int]:
        return self._render(prompt)[0]

    def _render(self, prompt: Rendered) -> tuple[list[int], str]:
        """Token ids and the effective prefill (chat template's + curate's, ``<think>`` written once)."""
        tok = self.tokenizer
        if prompt.messages is not None:
            text = tok.apply_chat_template(prompt.chat(), tokenize=False, add_generation_prompt=True)
            extra, prefill = merge_prefill(self.template_prefill, prompt.prefill)
            ids: list[int] = tok(text + extra, add_special_tokens=False).input_ids
        else:
            prefill = prompt.prefill
            ids = tok((prompt.text or "") + prompt.prefill).input_ids
        return ids, prefill

    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[list[Completion]]:
        rendered = [self._render(r.prompt) for r in requests]
        prompts = [ids for ids, _ in rendered]
        rows = [(ri, i) for ri in range(len(requests)) for i in range(params.n)]
        # Similar lengths together: less padding. Per-row RNGs make the order irrelevant to the output.
        rows.sort(key=lambda row: len(prompts[row[0]]))
        out: list[list[Completion | None]] = [[None] * params.n for _ in requests]
        bs = max(1, self.config.batch_size)
        for start in range(0, len(rows), bs):
            batch = rows[start : start + bs]
            t0 = time.perf_counter()
            decoded = self._decode([prompts[ri] for ri, _ in batch], [requests[ri].seed + i for ri, i in batch], params)
            latency = (time.perf_counter() - t0) / len(batch)
            for (ri, i), (text, reason, n_out) in zip(batch, decoded, strict=True):
                prefill = rendered[ri][1]
                out[ri][i] = Completion(
                    assemble(prefill, text), reason, len(prompts[ri]), n_out, latency, prefill=prefill
                )
        return [[c for c in row if c is not None] for row in out]

    def _decode(self, prompts: list[list[int]], seeds: list[int], p: SamplingParams) -> list[tuple[str, str, int]]:
        import torch

        dev = self.config.device
        width = max(len(x) for x in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for b, x in enumerate(prompts):
            ids[b, width - len(x) :] = torch.tensor(x)
            mask[b, width - len(x) :] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        eos = torch.tensor(self.eos_ids, device=dev)
        B = len(prompts)
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        reasons = ["length"] * B
        steps: list[Any] = []
        with torch.inference_mode():
            res = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            nxt = pos[:, -1:] + 1
            for _ in range(p.max_tokens):
                tok = _sample(res.logits[:, -1, :].float(), p, gens)
                tok = torch.where(done, torch.full_like(tok, self.pad_id), tok)
                steps.append(tok)
                hit = ~done & torch.isin(tok, eos)
                for b in hit.nonzero().flatten().tolist():
                    reasons[b] = "stop"
                done |= hit
                if p.stop:
                    self._check_stop(steps, done, reasons, p.stop)
                if bool(done.all()):
                    break
                mask = torch.cat([mask, (~done).long().unsqueeze(1)], dim=1)
                res = self.model(
                    input_ids=tok.unsqueeze(1),
                    attention_mask=mask,
                    position_ids=nxt,
                    use_cache=True,
                    **{self._cache_arg: _cache_of(res)},
                )
                nxt = nxt + 1
        gen = torch.stack(steps, dim=1).tolist() if steps else [[] for _ in range(B)]
        out = []
        for b, row in enumerate(gen):
            toks = []
            for t in row:
                toks.append(t)
                if t in self.eos_ids:
                    break
            text = self.tokenizer.decode([t for t in toks if t not in self.eos_ids], skip_special_tokens=True)
            if p.stop:
                text, _ = truncate_at_stop(text, p.stop)
            out.append((text, reasons[b], len(toks)))
        return out

    def _check_stop(self, steps: list[Any], done: Any, reasons: list[str], stop: tuple[str, ...]) -> None:
        # Decode only a short tail per active row: a stop string spans few tokens.
        tail = max(len(s) for s in stop) + 4
        recent = [s.tolist() for s in steps[-tail:]]
        for b in (~done).nonzero().flatten().tolist():
            text = self.tokenizer.decode([r[b] for r in recent], skip_special_tokens=True)
            if any(s in text for s in stop):
                done[b] = True
                reasons[b] = "stop"

    def close(self) -> None:
        self.model = None


def _sample(logits: Any, p: SamplingParams, gens: list[Any]) -> Any:
    """One token per row: greedy at temperature 0, else inverse-CDF inside the top-p nucleus."""
    import torch

    if p.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / p.temperature, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    cum = sorted_p.cumsum(-1)
    sorted_p = sorted_p.masked_fill((cum - sorted_p) >= p.top_p, 0.0)  # keep the smallest nucleus
    cum = sorted_p.cumsum(-1)
    u = torch.stack([torch.rand(1, generator=g) for g in gens]).to(logits.device) * cum[:, -1:]
    pick = torch.searchsorted(cum, u).clamp(max=cum.shape[-1] - 1)
    return order.gather(-1, pick).squeeze(-1)


def _cache_of(res: Any) -> Any:
    cache = getattr(res, "cache", None)
    return cache if cache is not None else res.past_key_values
