"""vLLM offline engine: ``LLM.generate`` with one ``SamplingParams(n=…, seed=…)`` per prompt.

vllm is imported lazily (optional extra ``gpu``, its own environment on GPU nodes: it pins torch and
transformers). Prompts are rendered with the checkpoint's chat template and passed as token ids, so a
template that already writes the BOS token does not get a second one. vLLM V1 fans a seeded request with
``n`` samples out into children seeded ``seed + i`` — the same per-sample seeds as the other engines.
Tensor parallelism is ``tensor_parallel_size``; data parallelism is one process per GPU (group), see
``curate generate --data-parallel``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curate.generate.engines.base import Completion, EngineError, Rendered, Request, SamplingParams, assemble


@dataclass(frozen=True, slots=True)
class VLLMConfig:
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    enable_prefix_caching: bool = True  # the n samples of a prompt share its KV blocks
    trust_remote_code: bool = False
    seed: int = 0  # engine seed; per-request seeds come from SamplingParams
    extra: Mapping[str, Any] = field(default_factory=dict)  # any other LLM(...) keyword


def llm_kwargs(checkpoint: str, cfg: VLLMConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "model": checkpoint,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "dtype": cfg.dtype,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
        "enable_prefix_caching": cfg.enable_prefix_caching,
        "trust_remote_code": cfg.trust_remote_code,
        "seed": cfg.seed,
    }
    if cfg.max_model_len is not None:
        kw["max_model_len"] = cfg.max_model_len
    kw.update(cfg.extra)
    return kw


def sampling_kwargs(params: SamplingParams, seed: int) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "n": params.n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "seed": seed,
    }
    if params.stop:
        kw["stop"] = list(params.stop)
    return kw


def import_vllm() -> Any:
    try:
        return importlib.import_module("vllm")
    except ImportError as e:
        raise EngineError("vllm is not installed; on a GPU node: pip install 'curate[gpu]'") from e


class VLLMEngine:
    name = "vllm"

    def __init__(self, checkpoint: str, config: VLLMConfig = VLLMConfig()) -> None:
        self.checkpoint = checkpoint
        self.config = config
        self._vllm = import_vllm()
        self.llm = self._vllm.LLM(**llm_kwargs(checkpoint, config))
        self.tokenizer = self.llm.get_tokenizer()

    def render(self, prompt: Rendered) -> dict[str, list[int]]:
        tok = self.tokenizer
        if prompt.messages is not None:
            text = tok.apply_chat_template(prompt.chat(), tokenize=False, add_generation_prompt=True)
            ids = tok(text + prompt.prefill, add_special_tokens=False).input_ids
        else:
            ids = tok((prompt.text or "") + prompt.prefill).input_ids
        return {"prompt_token_ids": list(ids)}

    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[list[Completion]]:
        sps = [self._vllm.SamplingParams(**sampling_kwargs(params, r.seed)) for r in requests]
        t0 = time.perf_counter()
        outs = self.llm.generate([self.render(r.prompt) for r in requests], sampling_params=sps, use_tqdm=False)
        latency = (time.perf_counter() - t0) / max(1, len(requests) * params.n)
        result = []
        for req, out in zip(requests, outs, strict=True):
            t_in = len(out.prompt_token_ids or [])
            comps = sorted(out.outputs, key=lambda c: c.index)
            result.append(
                [
                    Completion(
                        assemble(req.prompt.prefill, c.text),
                        c.finish_reason or "length",
                        t_in,
                        len(c.token_ids),
                        latency,
                    )
                    for c in comps
                ]
            )
        return result

    def close(self) -> None:
        self.llm = None
