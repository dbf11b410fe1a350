"""The CLI's one error path: a mistake the user can fix is one line and exit code 2, refused before any
work starts; nothing a user can cause prints a traceback."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app


def _run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


def _samples(path: Path, n: int = 3, ids: list[str] | None = None) -> Path:
    rows = [
        {
            "prompt": f"What is {i} + {i}?",
            "response": f"<think>add</think> {2 * i}",
            "task": "math",
            "reference": str(2 * i),
            **({"sample_id": ids[i]} if ids else {}),
        }
        for i in range(n)
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _one_line(code: int, out: str, expect: int = 2) -> str:
    assert code == expect, out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out
    return out


def test_dedup_index_with_other_num_perm(tmp_path: Path) -> None:
    inp = _samples(tmp_path / "in.jsonl")
    idx = tmp_path / "idx"
    code, out = _run(
        "dedup", str(inp), "--out", str(tmp_path / "a.parquet"), "--index-dir", str(idx), "--record-as", "x@1"
    )
    assert code == 0, out
    code, out = _run(
        "dedup", str(inp), "--out", str(tmp_path / "b.parquet"), "--index-dir", str(idx), "--num-perm", "64"
    )
    assert "num-perm 64 (index: 128)" in _one_line(code, out)


@pytest.mark.parametrize("out", ["/proc/no/such/dir/out.parquet", "DIR"])
def test_unwritable_out_is_refused_before_reading(tmp_path: Path, out: str) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"not even json\n")  # never read: the refusal comes first
    target = str(tmp_path) if out == "DIR" else out
    code, text = _run("check", str(inp), "--out", target, "--checks", "format")
    assert "--out" in _one_line(code, text)
    assert not (tmp_path / "in.quarantine.jsonl").exists()


def test_bad_publish_name_is_refused_before_checking(tmp_path: Path) -> None:
    inp = _samples(tmp_path / "in.jsonl")
    out = tmp_path / "out.parquet"
    code, text = _run("--home", str(tmp_path / "home"), "check", str(inp), "--out", str(out), "--publish", "bad name")
    assert "bad dataset name" in _one_line(code, text)
    assert not out.exists()


def test_repeated_sample_ids_are_quarantined_and_counted(tmp_path: Path) -> None:
    inp = _samples(tmp_path / "in.jsonl", 3, ids=["s1", "s2", "s1"])
    out = tmp_path / "out.parquet"
    code, text = _run("check", str(inp), "--out", str(out), "--checks", "format", "--json")
    assert code == 0, text
    report = orjson.loads(text.strip().splitlines()[-1])
    assert report["rows"] == 2 and report["bad_by_reason"] == {"input.duplicate_id": 1}
    q = [orjson.loads(x) for x in (tmp_path / "out.quarantine.jsonl").read_bytes().splitlines()]
    assert [(r["line"], r["reason"]) for r in q] == [(3, "input.duplicate_id")]


@pytest.mark.parametrize("bad", [pl.Series("response", [1, 2, 3]), pl.Series("response", [["a"], None, ["b"]])])
def test_parquet_with_wrongly_typed_response_quarantines_rows(tmp_path: Path, bad: pl.Series) -> None:
    inp = tmp_path / "in.parquet"
    pl.DataFrame({"prompt": ["a", "b", "c"]}).with_columns(bad).write_parquet(inp)
    code, text = _run("check", str(inp), "--out", str(tmp_path / "out.parquet"), "--checks", "format", "--json")
    assert code == 0 and "Traceback" not in text, text
    report = orjson.loads(text.strip().splitlines()[-1])
    assert report["bad_by_reason"].get("input.wrong_type") == bad.drop_nulls().len()


def test_deeply_nested_line_is_quarantined(tmp_path: Path) -> None:
    inp = _samples(tmp_path / "in.jsonl")
    with inp.open("ab") as f:
        f.write(b'{"prompt": "p", "response": "r", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}\n")
    code, text = _run("check", str(inp), "--out", str(tmp_path / "out.parquet"), "--checks", "format", "--json")
    assert code == 0, text
    assert orjson.loads(text.strip().splitlines()[-1])["bad_by_reason"] == {"input.invalid_json": 1}


def test_generate_and_check_give_a_prompt_the_same_id(tmp_path: Path) -> None:
    from curate.generate.prompts import read_prompts
    from curate.io.rows import fill_ids

    p = tmp_path / "p.jsonl"
    p.write_bytes(orjson.dumps({"prompt": "What is 2 + 2?"}) + b"\n")
    generated = read_prompts(p)["prompt_id"][0]
    checked = fill_ids(pl.DataFrame({"prompt": ["What is 2 + 2?"], "response": ["4"]}))["prompt_id"][0]
    assert generated == checked
