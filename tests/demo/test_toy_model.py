"""The demo's toy task and model: deterministic problems, a real HF checkpoint, the SFT/eval mechanics."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from curate.demo import (
    ExperimentConfig,
    ToyConfig,
    build_toy_model,
    extract_answer,
    is_correct,
    load,
    make_problems,
    noisy_trace,
    reference_trace,
    render_prompt,
    run_experiment,
    sample,
    sft,
)
from curate.demo.experiment import ToySamplingConfig, ToySFTConfig
from curate.demo.toy_model import MARKER

TINY = ToyConfig(layers=1, hidden=32, heads=2, intermediate=64, steps=4, batch_size=8)


@pytest.mark.parametrize(
    ("a", "op", "b", "trace_part"),
    [
        (23, "+", 45, "23 + 45: 3 + 5 = 8, 2 + 4 = 6, so 68."),
        (47, "+", 38, "47 + 38: 7 + 8 = 15, carry 1, 4 + 3 + 1 = 8, so 85."),
        (99, "+", 99, "99 + 99: 9 + 9 = 18, carry 1, 9 + 9 + 1 = 19, so 198."),
        (72, "-", 38, "72 - 38: 12 - 8 = 4, borrow 1, 7 - 1 - 3 = 3, so 34."),
        (68, "-", 23, "68 - 23: 8 - 3 = 5, 6 - 2 = 4, so 45."),
        (45, "-", 38, "45 - 38: 15 - 8 = 7, borrow 1, 4 - 1 - 3 = 0, so 7."),
    ],
)
def test_reference_trace_works_digit_by_digit(a: int, op: str, b: int, trace_part: str) -> None:
    from curate.demo.task import Problem

    p = Problem(prompt_id="x", prompt="?", a=a, b=b, op=op)  # type: ignore[arg-type]
    trace = reference_trace(p)
    assert trace == f"<think>\n{trace_part}\n</think>\nThe answer is \\boxed{{{p.answer}}}."
    assert is_correct(trace, p.answer)


def test_problems_are_deterministic_and_splits_disjoint() -> None:
    train, held_out = make_problems(3, 50), make_problems(3, 50, start=50)
    assert train == make_problems(3, 50)
    assert {p.prompt_id for p in train}.isdisjoint(p.prompt_id for p in held_out)
    assert make_problems(4, 50) != train
    row = train[0].row()
    assert row["task"] == "math" and row["source"] == "demo" and row["language"] == "en"
    assert row["reference"] == str(train[0].answer) and row["prompt"] == train[0].prompt
    assert all(p.answer >= 0 for p in train)


def test_noisy_traces_are_always_wrong_and_reference_always_right() -> None:
    rng = random.Random(0)
    kinds = set()
    for p in make_problems(0, 2000):
        assert is_correct(reference_trace(p), p.answer)
        text, kind = noisy_trace(p, rng)
        kinds.add(kind)
        assert not is_correct(text, p.answer), (kind, text)
    assert kinds == {"carry", "digit", "copy", "unclosed", "unboxed"}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<think>\nso 5.\n</think>\nThe answer is \\boxed{5}.", "5"),
        ("<think>\n\\boxed{4}\n</think>\nThe answer is \\boxed{5}.", "5"),  # never from the reasoning
        ("<think>\nso 5.\nThe answer is \\boxed{5}.", None),  # unclosed think block
        ("<think>\nso 5.\n</think>\nThe answer is 5.", None),
        ("<think>\n</think>\n\\boxed{1} then \\boxed{ 2 }", "2"),
    ],
)
def test_extract_answer(response: str, expected: str | None) -> None:
    assert extract_answer(response) == expected


def test_tokenizer_round_trips_and_chat_template_matches(tmp_path: Path) -> None:
    path = build_toy_model(tmp_path / "toy", TINY)
    _, tok = load(path)
    p = make_problems(0, 1)[0]
    msgs = [{"role": "user", "content": p.prompt}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == render_prompt(p.prompt)
    text = render_prompt(p.prompt) + reference_trace(p) + tok.eos_token
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.convert_tokens_to_ids("<think>") != tok.unk_token_id
    assert tok.unk_token_id not in ids
    full = tok.apply_chat_template([*msgs, {"role": "assistant", "content": "hi"}], tokenize=False)
    assert full == render_prompt(p.prompt) + "hi" + tok.eos_token


def test_build_reuses_matching_checkpoint_and_rebuilds_on_change(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    path = build_toy_model(tmp_path / "toy", TINY)
    marker = json.loads((path / MARKER).read_text())
    assert marker["hash"] == TINY.digest()
    mtime = (path / MARKER).stat().st_mtime_ns
    assert build_toy_model(path, TINY) == path and (path / MARKER).stat().st_mtime_ns == mtime
    other = ToyConfig(layers=1, hidden=32, heads=2, intermediate=64, steps=5, batch_size=8)
    build_toy_model(path, other)
    assert json.loads((path / MARKER).read_text())["hash"] == other.digest()
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.num_hidden_layers == 1 and model.config.model_type == "llama"
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_toy_model(tmp_path / "foreign", TINY)


def test_sample_shapes_and_finish_reasons(tmp_path: Path) -> None:
    model, tok = load(build_toy_model(tmp_path / "toy", TINY))
    prompts = [p.prompt for p in make_problems(0, 3)]
    out = sample(model, tok, prompts, ToySamplingConfig(n=2, max_new_tokens=8, batch_size=4))
    assert [len(cs) for cs in out] == [2, 2, 2]
    assert all(c.finish_reason in {"stop", "length"} for cs in out for c in cs)
    again = sample(model, tok, prompts, ToySamplingConfig(n=2, max_new_tokens=8, batch_size=4))
    assert out == again  # seeded


def test_sft_on_reference_traces_lowers_their_loss(tmp_path: Path) -> None:
    base = build_toy_model(tmp_path / "toy", TINY)
    problems = make_problems(0, 8)
    rows = [(p.prompt, reference_trace(p)) for p in problems]

    def loss(path: Path) -> float:
        model, tok = load(path)
        texts = [render_prompt(p) + r + tok.eos_token for p, r in rows]
        enc = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        with torch.no_grad():
            return float(model(**enc, labels=labels).loss)

    tuned = sft(base, tmp_path / "tuned", rows, ToySFTConfig(epochs=10, batch_size=4, lr=3e-3, max_steps=20))
    assert (tuned / "config.json").is_file() and (tuned / "tokenizer_config.json").is_file()
    assert loss(tuned) < loss(base) - 0.2


def test_run_experiment_fast_mechanics(tmp_path: Path) -> None:
    result = run_experiment(tmp_path, ExperimentConfig.fast())
    assert set(result.pass_at_1) == {"base", "filtered", "unfiltered"}
    assert all(0.0 <= v <= 1.0 for v in result.pass_at_1.values())
    assert result.train_samples == 12
    assert {"build", "generate", "score", "sft", "eval"} <= set(result.seconds)
    assert "pass@1" in result.table()
