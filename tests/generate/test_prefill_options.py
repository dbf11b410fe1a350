"""Chat-template prefills recorded per sample (hf engine and the openai engine's detection), and
`curate generate` options checked before anything starts. The same prefill through the real vLLM engine
and a real vLLM server: tests/generate/test_vllm_real.py."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from curate.generate.engines.prefill import merge_prefill, template_prefill
from curate.testing.tiny import CHAT_TEMPLATE

PREFILL_TEMPLATE = CHAT_TEMPLATE.replace("<|assistant|>\n{% endif %}", "<|assistant|>\n<think>\n{% endif %}")


@pytest.fixture(scope="module")
def distill(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    """The tiny checkpoint with an R1-distill style template: the generation prompt ends in <think>\\n."""
    import shutil

    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("distill") / "ckpt"
    shutil.copytree(tiny_checkpoint, out)
    tok = AutoTokenizer.from_pretrained(out)
    tok.chat_template = PREFILL_TEMPLATE
    tok.save_pretrained(out)
    return out


def test_template_prefill_detection_and_merge(distill: Path, tiny_checkpoint: Path) -> None:
    from transformers import AutoTokenizer

    assert template_prefill(AutoTokenizer.from_pretrained(distill)) == "<think>\n"
    assert template_prefill(AutoTokenizer.from_pretrained(tiny_checkpoint)) == ""
    assert merge_prefill("<think>\n", "<think>\n") == ("", "<think>\n")  # r1 on a distill: written once
    assert merge_prefill("<think>\n", "") == ("", "<think>\n")  # chat on a distill: the template's
    assert merge_prefill("", "<think>\n") == ("<think>\n", "<think>\n")  # r1 on a plain chat model
    assert merge_prefill("<think>", "<think>\n") == ("\n", "<think>\n")


def _cli(args: list[str]) -> tuple[int, str]:
    from curate.cli import app  # the real app: its one error path turns CurateError into a line, exit 2

    r = CliRunner().invoke(app, ["generate", *args])
    return r.exit_code, r.output


def _prompts(path: Path, k: int = 3) -> Path:
    path.write_bytes(
        b"".join(orjson.dumps({"prompt_id": f"q{i}", "prompt": f"What is {i} + 1?"}) + b"\n" for i in range(k))
    )
    return path


@pytest.mark.parametrize("template", ["r1", "chat"])
def test_hf_ledger_records_the_template_prefill(template: str, distill: Path, tmp_path: Path) -> None:
    out = tmp_path / "L"
    code, msg = _cli(
        [
            "--prompts",
            str(_prompts(tmp_path / "p.jsonl")),
            "--model",
            str(distill),
            "--engine",
            "hf",
            "--n",
            "2",
            "--max-tokens",
            "6",
            "--template",
            template,
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0, msg
    df = pl.read_parquet(out / "part-*.parquet")
    assert set(df["prefill"]) == {"<think>\n"}
    assert all(r.startswith("<think>\n") for r in df["response"])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(distill)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "What is 0 + 1?"}], tokenize=False, add_generation_prompt=True
    )
    # The prompt holds <think>\n once (the template's); r1's own prefill was not appended again.
    assert df.filter(pl.col("prompt_id") == "q0")["tokens_in"][0] == len(tok(text, add_special_tokens=False).input_ids)
    # The format check sees prefill + completion: no format.missing_think_open-style rejection for the tag.
    from curate.checks.format import FormatCheck

    checked = FormatCheck().run(df.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("reject_reasons")))
    assert not any("think_open" in r or "no_think" in r for rs in checked["reject_reasons"] for r in rs)


def test_openai_engine_detects_a_local_models_prefill(distill: Path) -> None:
    from curate.generate.engines.base import Request
    from curate.generate.engines.openai import OpenAIConfig, OpenAIEngine
    from curate.generate.templates import PromptTemplate

    eng = OpenAIEngine(str(distill), OpenAIConfig())
    chat = Request("p", PromptTemplate("chat").render("hi"), 0)
    r1 = Request("p", PromptTemplate("r1").render("hi"), 0)
    assert eng.prefill_of(chat) == "<think>\n" and eng.prefill_of(r1) == "<think>\n"
    c = eng.parse(chat, {"choices": [{"index": 0, "message": {"content": "x</think>y"}}]}, 1, 0.1)[0]
    assert c.text == "<think>\nx</think>y" and c.prefill == "<think>\n"
    remote = OpenAIEngine("org/served-name", OpenAIConfig())
    assert remote.prefill_of(chat) == ""
    eng.close()
    remote.close()


def test_options_checked_before_anything_starts(tmp_path: Path, tiny_checkpoint: Path) -> None:
    prompts = _prompts(tmp_path / "p.jsonl")
    base = ["--prompts", str(prompts), "--model", str(tiny_checkpoint), "--out", str(tmp_path / "L"), "--no-progress"]
    ctx = json.loads((tiny_checkpoint / "config.json").read_text())["max_position_embeddings"]
    cases = {
        "--max-tokens 32768 leaves no room for the prompt in the model's context length": ["--engine", "hf"],
        f"--max-tokens {ctx} leaves no room": ["--engine", "vllm", "--max-tokens", str(ctx)],
        "--max-tokens 600 leaves no room for the prompt in --max-model-len, 512": [
            "--engine",
            "vllm",
            "--max-tokens",
            "600",
            "--max-model-len",
            "512",
        ],
        "--batch-size is an option of --engine hf, not of --engine vllm": ["--engine", "vllm", "--batch-size", "4"],
        "--concurrency is an option of --engine openai, not of --engine hf": ["--concurrency", "3"],
        "--kv-cache-gib is an option of --engine vllm, not of --engine openai": [
            "--engine",
            "openai",
            "--kv-cache-gib",
            "1",
        ],
        "checkpoint directory not found": ["--engine", "vllm", "--model", str(tmp_path / "missing")],
        "--vllm-option must look like KEY=VALUE": ["--engine", "vllm", "--vllm-option", "eager"],
    }
    for msg, extra in cases.items():
        code, out = _cli(base + extra)
        assert code == 2 and msg in out and "Traceback" not in out, (msg, out)
        assert len(out.strip().splitlines()) == 1, out
    assert not (tmp_path / "L").exists()  # nothing started, no ledger made


def test_vllm_not_installed_is_one_line_before_any_ledger(tmp_path: Path, tiny_checkpoint: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    code, out = _cli(
        [
            "--prompts",
            str(_prompts(tmp_path / "p.jsonl")),
            "--model",
            str(tiny_checkpoint),
            "--engine",
            "vllm",
            "--max-tokens",
            "8",
            "--out",
            str(tmp_path / "L"),
            "--no-progress",
        ]
    )
    assert code == 2 and "vllm is not installed" in out and ".ci/vllm-env" in out and len(out.strip().splitlines()) == 1
    assert not (tmp_path / "L").exists()
