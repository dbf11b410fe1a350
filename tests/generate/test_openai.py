"""The HTTP engine against a local OpenAI-compatible server started by the test.

A real vLLM server needs a GPU and cannot run here, so the server is ``curate.testing.fake_server``
(starlette on uvicorn, a real socket): the real client code runs, with retries (the server answers 429 and
500 at random), bounded concurrency, both endpoints and reasoning returned apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from curate.cli.generate import generate_command
from curate.generate.engines.base import EngineError, Request, SamplingParams, prompt_seed
from curate.generate.engines.openai import OpenAIConfig, OpenAIEngine
from curate.generate.templates import PromptTemplate
from curate.testing.fake_server import FakeServerConfig, serve_in_thread


def _reqs(k: int, name: str = "r1") -> list[Request]:
    t = PromptTemplate(name)
    return [Request(f"p{i}", t.render(f"question {i}"), prompt_seed(0, f"p{i}")) for i in range(k)]


@pytest.fixture(scope="module")
def flaky() -> Iterator[str]:
    with serve_in_thread(FakeServerConfig(fail_rate=0.25, latency_s=0.005)) as url:
        yield url


def _stats(url: str) -> dict[str, int]:
    return httpx.get(url.removesuffix("/v1") + "/stats").json()  # type: ignore[no-any-return]


def test_retries_and_bounded_concurrency(flaky: str) -> None:
    before = _stats(flaky)
    eng = OpenAIEngine("tiny", OpenAIConfig(base_url=flaky, concurrency=6, backoff_s=0.001, max_retries=20))
    try:
        out = eng.generate(_reqs(60), SamplingParams(n=4, max_tokens=64))
    finally:
        eng.close()
    after = _stats(flaky)
    assert [len(row) for row in out] == [4] * 60
    assert all(c.finish_reason == "stop" and c.text.startswith("<think>\n") for row in out for c in row)
    failed = after["failed"] - before["failed"]
    assert failed > 0 and eng.retries == failed  # every 429/500 was retried, nothing else
    assert after["ok"] - before["ok"] == 60
    assert after["max_in_flight"] <= 6


@pytest.mark.parametrize("backend", ["asyncio", "uvicorn"])
def test_reasoning_content_becomes_think_block(backend: str) -> None:
    with serve_in_thread(FakeServerConfig(reasoning=True), backend=backend) as url:
        eng = OpenAIEngine("tiny", OpenAIConfig(base_url=url))
        out = eng.generate(_reqs(2), SamplingParams(n=2, max_tokens=64))
        eng.close()
    c = out[0][0]
    assert c.reasoning and c.text == f"<think>{c.reasoning}</think>" + c.text.split("</think>", 1)[1]
    assert c.tokens_in and c.tokens_out is None  # usage is summed over the n choices


def test_split_n_matches_n_and_counts_tokens(flaky: str) -> None:
    """One request per sample seeded seed+i gives what one request with n gives (vLLM's fan-out)."""
    p = SamplingParams(n=3, max_tokens=64)
    a = OpenAIEngine("tiny", OpenAIConfig(base_url=flaky, backoff_s=0.001, max_retries=20))
    b = OpenAIEngine("tiny", OpenAIConfig(base_url=flaky, backoff_s=0.001, max_retries=20, split_n=True))
    try:
        ra, rb = a.generate(_reqs(5), p), b.generate(_reqs(5), p)
    finally:
        a.close()
        b.close()
    assert [[c.text for c in row] for row in ra] == [[c.text for c in row] for row in rb]
    assert all(c.tokens_out for row in rb for c in row)


def test_raw_prompt_uses_completions_endpoint() -> None:
    eng = OpenAIEngine("tiny")
    path, body = eng.body(_reqs(1, "r1-zero")[0], SamplingParams(n=2, stop=("</answer>",)), 2, 5)
    assert path == "/completions" and body["prompt"].endswith("Assistant:") and body["stop"] == ["</answer>"]
    path, body = eng.body(_reqs(1)[0], SamplingParams(n=2), 2, 5)
    assert path == "/chat/completions" and body["messages"][-1] == {
        "role": "assistant",
        "content": "<think>\n",
    }
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    eng.close()
    with serve_in_thread() as url:
        eng = OpenAIEngine("tiny", OpenAIConfig(base_url=url))
        out = eng.generate(_reqs(2, "r1-zero"), SamplingParams(n=2, max_tokens=5))
        eng.close()
    assert out[0][0].finish_reason == "length" and out[0][0].text.startswith("<think>")


def test_gives_up_after_retries_and_records_client_errors() -> None:
    with serve_in_thread(FakeServerConfig(fail_rate=1.0)) as url:
        eng = OpenAIEngine("tiny", OpenAIConfig(base_url=url, max_retries=2, backoff_s=0.001))
        with pytest.raises(EngineError, match="gave up after 3 attempts"):
            eng.generate(_reqs(3), SamplingParams(n=1))
        eng.close()
    with serve_in_thread() as url:  # a 404 will not get better by retrying: recorded as an error sample
        eng = OpenAIEngine("tiny", OpenAIConfig(base_url=url.removesuffix("/v1") + "/nope", max_retries=5))
        out = eng.generate(_reqs(1), SamplingParams(n=2))
        eng.close()
    assert [c.finish_reason for c in out[0]] == ["error", "error"] and eng.retries == 0
    eng = OpenAIEngine("tiny", OpenAIConfig(base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.001))
    with pytest.raises(EngineError, match="ConnectError"):
        eng.generate(_reqs(1), SamplingParams(n=1))
    eng.close()


def test_cli_openai_engine_with_data_parallel_workers(tmp_path: Path) -> None:
    """`--data-parallel 2` runs two real worker processes on one ledger; shards split by index."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(f'{{"prompt_id": "q{i}", "prompt": "question {i}"}}\n' for i in range(10)))
    out, stats = tmp_path / "ledger", tmp_path / "stats"
    with serve_in_thread(FakeServerConfig(fail_rate=0.2, reasoning=True)) as url:
        app = typer.Typer()
        app.command("generate")(generate_command)
        app.callback()(lambda: None)
        args = [
            "generate",
            "--prompts",
            str(prompts),
            "--model",
            "served",
            "--engine",
            "openai",
            "--base-url",
            url,
            "--n",
            "3",
            "--shard-size",
            "3",
            "--out",
            str(out),
            "--stats",
            str(stats),
            "--data-parallel",
            "2",
            "--no-progress",
            "--concurrency",
            "4",
        ]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
    events = [orjson.loads(x) for x in stats.read_text().splitlines() if '"call"' in x]
    by_pid: dict[int, list[int]] = {}
    for e in events:
        by_pid.setdefault(e["pid"], []).append(e["shard"])
    assert sorted(map(sorted, by_pid.values())) == [[0, 2], [1, 3]]
    df = pl.read_parquet(out / "part-*.parquet")
    assert df.height == 30 and df["sample_id"].n_unique() == 30
    assert df["reasoning"].null_count() == 0 and df["response"].str.starts_with("<think>").all()
    assert set(df["engine"]) == {"openai"} and set(df["checkpoint"]) == {"served"}
