"""Launch pre-flight: max length from the data's p99, the chat template keeps R1's form, truncated GRPO
completions get no format credit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.launch.preflight import TemplateError, check_chat_template, plan_max_length
from curate.launch.rewards import make_format_reward
from curate.store import Store
from curate.testing.example_store import build_example_store

CONV = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>2 and 2 make 4.</think>The answer is \\boxed{4}."},
]
# R1-distill style: earlier reasoning stripped from assistant turns, "<think>\n" pre-filled for generation.
R1_DISTILL = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "{% set c = m['content'].split('</think>')[-1] %}<|assistant|>\n{{ c }}<|end|>\n"
    "{% else %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n<think>\n{% endif %}"
)
PREFILL = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n<think>\n{% endif %}"
)
DOUBLING = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{% if m['role'] == 'assistant' %}<think>\n"
    "{% endif %}{{ m['content'] }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def test_p99_and_truncated_share() -> None:
    plan = plan_max_length(list(range(1, 201)))
    assert plan.max_length == 198 and plan.source == "p99" and plan.truncated_rows == 2
    assert abs(plan.truncated_share - 0.01) < 1e-9
    given = plan_max_length(list(range(1, 201)), given=100)
    assert given.max_length == 100 and given.truncated_rows == 100 and "50.0%" in given.line()


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_checkpoint)


def test_template_that_keeps_the_form_passes(tokenizer) -> None:  # type: ignore[no-untyped-def]
    check_chat_template(tokenizer, CONV)


@pytest.mark.parametrize(
    ("template", "words"),
    [(R1_DISTILL, "drops <think>"), (DOUBLING, "doubles <think>"), (PREFILL, "pre-fills <think>")],
)
def test_template_that_drops_or_doubles_fails(tokenizer, template: str, words: str) -> None:  # type: ignore[no-untyped-def]
    old = tokenizer.chat_template
    tokenizer.chat_template = template
    try:
        with pytest.raises(TemplateError, match=words):
            check_chat_template(tokenizer, CONV, "ckpt")
    finally:
        tokenizer.chat_template = old


def test_format_reward_gives_truncated_completions_nothing() -> None:
    reward = make_format_reward("r1", stop_ids={2, 0})
    text = "<think>fine</think>\\boxed{4}"
    assert reward([text, text], completion_ids=[[5, 6, 2], [5, 6, 7]]) == [1.0, 0.0]
    assert reward([text, text], truncated=[False, True]) == [1.0, 0.0]
    assert reward([text], finish_reason=["length"]) == [0.0]
    assert make_format_reward()([text]) == [1.0]  # nothing tells: judged on the text


def test_grpo_format_reward_uses_the_tokenizer_stops(tokenizer) -> None:  # type: ignore[no-untyped-def]
    from curate.launch.grpo import reward_functions

    fmt = reward_functions(("format",), tokenizer)[0]
    eos = tokenizer.eos_token_id
    text = "<think>fine</think>\\boxed{4}"
    assert fmt([text, text], completion_ids=[[11, eos], [11, 12]]) == [1.0, 0.0]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    home = tmp_path_factory.mktemp("pre") / "store"
    build_example_store(home)
    return Store(home)


def test_cluster_sft_uses_the_data_p99_and_records_it(store: Store, tiny_checkpoint: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "--home",
            str(store.home),
            "launch",
            "sft",
            "rs_sft@2",
            "--model",
            str(tiny_checkpoint),
            "--out",
            "/ckpt/o",
            "--cluster",
            "--remote-root",
            "/mnt/s",
        ],
    )
    assert res.exit_code == 0, res.output
    plan = json.loads((store.home / "launch" / "plans" / "rs_sft_v2-sft.json").read_text())
    p = plan["max_length_plan"]
    assert p["source"] == "p99" and p["counted"] == "tokens" and 0 < p["truncated_share"] <= 0.02
    assert f"--max_length {p['max_length']}" in res.stdout and f"--data.max_len {p['max_length']}" in res.stdout
    assert "truncated" in res.stderr and "/mnt/s/datasets/rs_sft/v2" in res.stdout


def _with_template(src: Path, dst: Path, template: str) -> Path:
    from transformers import AutoTokenizer

    shutil.copytree(src, dst)
    tok = AutoTokenizer.from_pretrained(src)
    tok.chat_template = template
    tok.save_pretrained(dst)
    return dst


def test_local_sft_refuses_a_template_that_drops_think(store: Store, tiny_checkpoint: Path, tmp_path: Path) -> None:
    bad = _with_template(tiny_checkpoint, tmp_path / "distill-like", R1_DISTILL)
    res = CliRunner().invoke(
        app,
        [
            "--home",
            str(store.home),
            "launch",
            "sft",
            "rs_sft@2",
            "--model",
            str(bad),
            "--out",
            str(tmp_path / "out"),
            "--max-steps",
            "1",
        ],
    )
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "drops <think>" in res.stderr
    assert not (tmp_path / "out").exists()


def test_local_sft_records_the_length_plan(store: Store, tiny_checkpoint: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "--home",
            str(store.home),
            "launch",
            "sft",
            "rs_sft@2",
            "--model",
            str(tiny_checkpoint),
            "--out",
            str(tmp_path / "out"),
            "--max-steps",
            "1",
            "--batch-size",
            "2",
            "--max-length",
            "64",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "max length 64 (given" in res.stderr
    run = next((store.home / "runs").glob("sft-*/run.json"))
    cfg = orjson.loads(run.read_bytes())["config"]
    assert cfg["max_length"] == 64 and cfg["max_length_plan"]["truncated_share"] > 0.5
