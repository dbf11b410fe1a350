"""Recipes are checked before any flow starts: a user's mistake is one line, exit 2, and never retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from curate.checks.base import ConfigError
from curate.cli import app
from curate.recipes import load_checked_recipe, load_recipe

SRC = Path(__file__).resolve().parents[2] / "src"


def _write(tmp_path: Path, ckpt: Path, **generate: object) -> Path:
    d = tmp_path / "recipes"
    d.mkdir(exist_ok=True)
    (d / "prompts.jsonl").write_bytes(
        orjson.dumps({"prompt_id": "q0", "prompt": "1+1?", "task": "math", "reference": "2"}) + b"\n"
    )
    gen = {"prompts": "prompts.jsonl", "model": os.path.relpath(ckpt, d), "engine": "hf", "n": 2, "max_tokens": 8}
    gen.update(generate)
    path = d / "r.yaml"
    path.write_text(
        yaml.safe_dump({"recipe": "rs_sft", "name": "r", "generate": gen, "checks": {"judge": {"enabled": False}}})
    )
    return path


def test_paths_resolve_against_the_recipe_file(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, tiny_checkpoint)
    monkeypatch.chdir(tmp_path.parent)  # anywhere but the recipe's folder
    r = load_checked_recipe(path)
    assert r.generate is not None
    assert r.generate.prompts == str((tmp_path / "recipes" / "prompts.jsonl").resolve())
    assert Path(r.generate.model).resolve() == tiny_checkpoint.resolve()


def test_shipped_recipes_point_beside_themselves() -> None:
    import curate.flows

    folder = Path(curate.flows.__file__).parent / "recipes"
    for f in sorted(folder.glob("*.yaml")):
        r = load_recipe(f)
        assert r.generate is not None and Path(r.generate.prompts).parent == folder.resolve()


@pytest.mark.parametrize(
    ("generate", "words"),
    [
        ({"engine": "vlm"}, "'vlm' is not an engine"),
        ({"prompts": "missing.jsonl"}, "missing.jsonl: no such file"),
        ({"model": "no-such-ckpt"}, "no such checkpoint directory"),
        ({"engine": "openai", "model": "served"}, "needs generate.base_url"),
        ({"n": 0}, "generate.n must be at least 1"),
    ],
)
def test_mistakes_are_config_errors(
    tmp_path: Path, tiny_checkpoint: Path, generate: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        load_checked_recipe(_write(tmp_path, tiny_checkpoint, **generate))


def test_bad_check_option_is_a_config_error(tmp_path: Path, tiny_checkpoint: Path) -> None:
    path = _write(tmp_path, tiny_checkpoint)
    data = yaml.safe_load(path.read_text())
    data["checks"]["readability"] = {"max_paragraph_charz": 3}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError):
        load_checked_recipe(path)


def test_curate_run_refuses_before_prefect_starts(tmp_path: Path, tiny_checkpoint: Path) -> None:
    path = _write(tmp_path, tiny_checkpoint, engine="vlm")
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["--home", str(tmp_path / "store"), "run", str(path)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.stderr.strip().count("\n") == 0 and "'vlm' is not an engine" in res.stderr
    assert time.perf_counter() - t0 < 10  # no temporary Prefect server, no retries 5 s apart


def _session_processes(sid: int) -> list[str]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == sid:  # fields after "(comm)": state ppid pgrp session ...
                out.append(f"{d.name} {(d / 'cmdline').read_bytes()[:120]!r}")
        except (OSError, ValueError):
            continue
    return out


STOPS = [
    (signal.SIGINT, 1.5),
    (signal.SIGINT, 3.0),
    (signal.SIGINT, 6.0),
    (signal.SIGINT, 12.0),
    (signal.SIGTERM, 14.0),
    (signal.SIGTERM, 40.0),
]


@pytest.mark.parametrize(("sig", "after"), STOPS)
def test_serve_stops_cleanly_and_leaves_nothing(tmp_path: Path, tiny_checkpoint: Path, sig: int, after: float) -> None:
    """Stopped during start-up or while serving: it exits, and no process of its session is left."""
    path = _write(tmp_path, tiny_checkpoint)
    env = {**os.environ, "PYTHONPATH": str(SRC), "CURATE_HOME": str(tmp_path / "store")}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate", "serve", str(path)],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(after)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.time() + 10
    while _session_processes(proc.pid) and time.time() < deadline:
        time.sleep(0.2)
    left = _session_processes(proc.pid)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, (left, out.decode(errors="replace")[-2000:])
    assert b"Traceback" not in out, out.decode(errors="replace")[-3000:]
