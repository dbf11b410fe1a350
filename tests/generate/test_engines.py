"""Engines, templates and seeds: the transformers engine on a locally built checkpoint, vLLM argument
building against a stand-in ``vllm`` module (vllm is not installed here: it needs a GPU node)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from curate.generate.engines.base import (
    Rendered,
    Request,
    SamplingParams,
    prompt_seed,
    sample_id,
    sample_seed,
)
from curate.generate.templates import R1_ZERO_TEMPLATE, PromptTemplate


@pytest.fixture(scope="module")
def hf(tiny_checkpoint: Path) -> Any:
    from curate.generate.engines.hf import HFConfig, HFEngine

    return HFEngine(str(tiny_checkpoint), HFConfig(batch_size=8))


def _reqs(k: int, template: PromptTemplate | None = None) -> list[Request]:
    template = template or PromptTemplate("r1")
    # Different prompt lengths so that batches really are left-padded.
    return [
        Request(f"p{i}", template.render("What is 12 + 30? " * (1 + i % 3)), prompt_seed(7, f"p{i}")) for i in range(k)
    ]


@pytest.mark.parametrize(
    ("name", "kind", "prefill"),
    [
        ("r1", "messages", "<think>\n"),
        ("few-shot", "messages", "<think>\n"),
        ("chat", "messages", ""),
        ("r1-zero", "text", ""),
    ],
)
def test_templates(name: str, kind: str, prefill: str) -> None:
    r = PromptTemplate(name, system="Be brief.").render("2+2?")
    assert r.prefill == prefill
    if kind == "text":
        assert r.text == R1_ZERO_TEMPLATE.format(prompt="2+2?") and "<answer>" in r.text
    else:
        assert r.messages is not None and r.messages[-1] == ("user", "2+2?") and r.messages[0][0] == "system"
    if name == "few-shot":
        assert r.messages is not None and any(role == "assistant" and "</think>" in c for role, c in r.messages)


def test_template_fingerprint_changes_with_content() -> None:
    assert PromptTemplate("r1").fingerprint() != PromptTemplate("r1", system="x").fingerprint()
    assert PromptTemplate("few-shot").fingerprint() != PromptTemplate("few-shot", examples=(("a", "b"),)).fingerprint()
    with pytest.raises(ValueError, match="unknown template"):
        PromptTemplate("nope")


def test_seeds_and_ids_are_stable() -> None:
    assert sample_seed(1, "p", 3) == prompt_seed(1, "p") + 3
    assert prompt_seed(1, "p") != prompt_seed(2, "p") != prompt_seed(1, "q")
    assert 0 <= prompt_seed(123, "x") < 2**31 - 2**16
    # Pinned value: sample ids must not change across versions, or resumed ledgers would duplicate.
    assert sample_id("p", "ckpt", "h", 0) == sample_id("p", "ckpt", "h", 0) != sample_id("p", "ckpt", "h", 1)
    assert len(sample_id("p", "ckpt", "h", 0)) == 32


def test_hf_greedy_matches_transformers_generate(hf: Any) -> None:
    """The KV-cached, left-padded loop gives what ``model.generate`` gives for each prompt alone."""
    import torch

    reqs = _reqs(4)
    out = hf.generate(reqs, SamplingParams(n=2, temperature=0.0, max_tokens=12))
    for r, comps in zip(reqs, out, strict=True):
        ids = torch.tensor([hf.render(r.prompt)])
        ref = hf.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
        text = hf.tokenizer.decode(ref[0, ids.shape[1] :], skip_special_tokens=True)
        assert [c.text for c in comps] == ["<think>\n" + text] * 2
        assert comps[0].tokens_in == ids.shape[1]
        assert comps[0].finish_reason in ("stop", "length") and comps[0].tokens_out <= 12


def test_hf_per_sample_seeds_independent_of_batching(hf: Any) -> None:
    from curate.generate.engines.hf import HFConfig, HFEngine

    p = SamplingParams(n=3, temperature=1.0, top_p=0.9, max_tokens=16)
    reqs = _reqs(5)
    a = hf.generate(reqs, p)
    other = HFEngine.__new__(HFEngine)  # same model, different batch size and request order
    other.__dict__.update(hf.__dict__)
    other.config = HFConfig(batch_size=4)
    b = other.generate(reqs[::-1], p)[::-1]
    assert [[c.text for c in row] for row in a] == [[c.text for c in row] for row in b]
    assert len({c.text for row in a for c in row}) > 5  # samples differ from each other


def test_hf_finish_reasons_and_stop_strings(hf: Any) -> None:
    p = SamplingParams(n=8, temperature=1.0, top_p=1.0, max_tokens=8)
    out = hf.generate(_reqs(2), p)
    for row in out:
        for c in row:
            assert c.finish_reason in ("stop", "length")
            assert (c.tokens_out == 8) == (c.finish_reason == "length")
    # A stop string that the model is sure to emit early: the text is cut before it.
    greedy = hf.generate(_reqs(1), SamplingParams(n=1, temperature=0.0, max_tokens=12))[0][0].text
    generated = greedy[len("<think>\n") :]
    stop = generated[2:4] if len(generated) >= 4 else generated
    c = hf.generate(_reqs(1), SamplingParams(n=1, temperature=0.0, max_tokens=12, stop=(stop,)))[0][0]
    assert c.finish_reason == "stop" and stop not in c.text[len("<think>\n") :]
    assert c.text == "<think>\n" + generated[: generated.find(stop)]


def test_hf_raw_text_prompt(hf: Any) -> None:
    reqs = _reqs(2, PromptTemplate("r1-zero"))
    out = hf.generate(reqs, SamplingParams(n=1, temperature=0.0, max_tokens=4))
    assert out[0][0].tokens_in > 50  # the long R1-Zero instruction


def test_sampling_params_validation() -> None:
    for bad in ({"n": 0}, {"temperature": -1.0}, {"top_p": 0.0}, {"max_tokens": 0}):
        with pytest.raises(ValueError):
            SamplingParams(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Rendered()


# ---- vLLM: argument building against a stand-in module ---------------------------------------------


class _FakeOutput:
    def __init__(self, index: int, text: str) -> None:
        self.index, self.text, self.token_ids, self.finish_reason = index, text, [1, 2, 3], "stop"


def _fake_vllm(calls: dict[str, Any], tokenizer: Any) -> types.ModuleType:
    mod = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kw: Any) -> None:
            self.kw = kw

    class LLM:
        def __init__(self, **kw: Any) -> None:
            calls["llm"] = kw

        def get_tokenizer(self) -> Any:
            return tokenizer

        def generate(self, prompts: list[Any], sampling_params: list[Any], use_tqdm: bool) -> list[Any]:
            calls["prompts"], calls["params"] = prompts, [sp.kw for sp in sampling_params]
            return [
                types.SimpleNamespace(
                    prompt_token_ids=p["prompt_token_ids"],
                    outputs=[_FakeOutput(i, f"r{i}</think>a") for i in reversed(range(sp.kw["n"]))],
                )
                for p, sp in zip(prompts, sampling_params, strict=True)
            ]

    mod.LLM, mod.SamplingParams = LLM, SamplingParams  # type: ignore[attr-defined]
    return mod


def test_vllm_engine_builds_llm_and_sampling_params(monkeypatch: pytest.MonkeyPatch, hf: Any) -> None:
    from curate.generate.engines.vllm import VLLMConfig, VLLMEngine

    calls: dict[str, Any] = {}
    monkeypatch.setitem(sys.modules, "vllm", _fake_vllm(calls, hf.tokenizer))
    eng = VLLMEngine("/models/r1", VLLMConfig(tensor_parallel_size=4, max_model_len=8192))
    assert calls["llm"] == {
        "model": "/models/r1",
        "tensor_parallel_size": 4,
        "dtype": "auto",
        "gpu_memory_utilization": 0.9,
        "enable_prefix_caching": True,
        "trust_remote_code": False,
        "seed": 0,
        "max_model_len": 8192,
    }
    reqs = _reqs(2)
    out = eng.generate(
        reqs, SamplingParams(n=3, temperature=0.6, top_p=0.95, max_tokens=100, seed=7, stop=("</answer>",))
    )
    assert calls["params"][0] == {
        "n": 3,
        "temperature": 0.6,
        "top_p": 0.95,
        "max_tokens": 100,
        "seed": reqs[0].seed,
        "stop": ["</answer>"],
    }
    # Token ids rendered with the chat template (one BOS) plus the <think> prefill, as the hf engine does.
    assert calls["prompts"][0]["prompt_token_ids"] == hf.render(reqs[0].prompt)
    assert [c.text for c in out[0]] == [
        "<think>\nr0</think>a",
        "<think>\nr1</think>a",
        "<think>\nr2</think>a",
    ]
    assert out[0][0].tokens_in == len(hf.render(reqs[0].prompt)) and out[0][0].tokens_out == 3


def test_vllm_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from curate.generate.engines.base import EngineError
    from curate.generate.engines.vllm import VLLMEngine

    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(EngineError, match="curate\\[gpu\\]"):
        VLLMEngine("/models/r1")


def test_few_shot_examples_from_file(tmp_path: Path) -> None:
    from curate.generate.templates import load_examples

    f = tmp_path / "shots.jsonl"
    f.write_text('{"prompt": "1+1?", "response": "<think>\\n1+1=2\\n</think>\\n2"}\n')
    t = PromptTemplate("few-shot", examples=load_examples(f))
    r = t.render("2+2?")
    assert r.messages == (("user", "1+1?"), ("assistant", "<think>\n1+1=2\n</think>\n2"), ("user", "2+2?"))
    f.write_text('{"question": "x"}\n')
    with pytest.raises(ValueError, match="need 'prompt' and 'response'"):
        load_examples(f)
