"""Bad input never crashes and is never lost: every unreadable row lands in the quarantine with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import polars as pl
import pytest

from curate.checks.registry import build_checks
from curate.checks.runner import check_files, quarantine_path
from curate.io.rows import BadRow, InputError, ReadConfig, read_batches
from curate.schema import table

GOOD = {"prompt": "What is 2+2?", "response": "<think>2+2=4</think>\\boxed{4}", "task": "math", "reference": "4"}

# (raw line bytes, expected quarantine reason or None when the row must be read)
CASES: list[tuple[bytes, str | None]] = [
    (orjson.dumps(GOOD), None),
    (orjson.dumps({**GOOD, "reference": 4}), None),  # numeric gold answers are read as text
    (orjson.dumps({**GOOD, "difficulty": 3, "meta": {"src": "x"}}), None),  # unknown fields are kept
    (b'{"prompt": "x", "response": ', "input.invalid_json"),
    (b"[1, 2, 3]", "input.not_object"),
    (orjson.dumps({"prompt": "x"}), "input.missing_field"),
    (orjson.dumps({"response": "x"}), "input.missing_field"),
    (orjson.dumps({"prompt": "x", "response": None}), "input.missing_field"),
    (orjson.dumps({"prompt": "x", "response": 42}), "input.wrong_type"),
    (orjson.dumps({"prompt": ["x"], "response": "y"}), "input.wrong_type"),
    (orjson.dumps({**GOOD, "sample_index": "three"}), "input.wrong_type"),
    (orjson.dumps({**GOOD, "io_tests": [{"input": 1}]}), "input.wrong_type"),
    (orjson.dumps({**GOOD, "task": "poetry"}), "input.unknown_task"),
    (orjson.dumps({**GOOD, "prompt": "a\x00b"}), "input.nul_byte"),
    (orjson.dumps({**GOOD, "response": "a\x00b"}), None),  # the model's output: read, then format.control_chars
    (b'{"prompt": "x", "response": "caf\xe9"}', "input.invalid_utf8"),
    (b'{"prompt": "x", "response": "\\ud83d alone"}', "input.lone_surrogate"),
    (b'{"prompt": "x", "response": "\\ud83d\\ude00 pair is fine"}', None),
    (b"\xef\xbb\xbf" + orjson.dumps(GOOD), None),  # a BOM before a row is an artifact: the row is read
]


def _write(path: Path, lines: list[bytes], bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n")
    return path


def _read(path: Path, **kw: object) -> tuple[pl.DataFrame, list[BadRow]]:
    bad: list[BadRow] = []
    frames = list(read_batches([path], table("checked_sample"), on_bad=bad.append, options=ReadConfig(**kw)))
    return (pl.concat(frames, how="diagonal") if frames else pl.DataFrame()), bad


def test_every_bad_case_is_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", [c[0] for c in CASES])
    df, bad = _read(path)
    expected_bad = {i + 1: r for i, (_, r) in enumerate(CASES) if r}
    assert {b.line: b.reason for b in bad} == expected_bad
    assert sorted(df["input_line"].to_list()) == [i + 1 for i, (_, r) in enumerate(CASES) if r is None]
    assert all(b.raw for b in bad if b.reason != "input.invalid_utf8")
    kept = df.filter(pl.col("input_line") == 3)["extra"].item()
    assert json.loads(kept) == {"difficulty": 3, "meta": {"src": "x"}}
    assert df.filter(pl.col("input_line") == 2)["reference"].item() == "4"


def test_leading_bom_is_an_encoding_artifact(tmp_path: Path) -> None:
    df, bad = _read(_write(tmp_path / "bom.jsonl", [orjson.dumps(GOOD)], bom=True))
    assert df.height == 1 and not bad


def test_empty_and_blank_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.jsonl").write_bytes(b"\n\n  \n")
    for name in ("empty.jsonl", "blank.jsonl"):
        df, bad = _read(tmp_path / name)
        assert df.height == 0 and not bad


def test_huge_line_is_skipped_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as f:
        f.write(orjson.dumps(GOOD) + b"\n")
        f.write(b'{"prompt": "x", "response": "' + b"a" * (100 << 20) + b'"}\n')  # a 100 MB line
        f.write(orjson.dumps(GOOD) + b"\n")
    df, bad = _read(path, chunk_bytes=1 << 20)
    assert df["input_line"].to_list() == [1, 3]
    assert [(b.line, b.reason) for b in bad] == [(2, "input.line_too_long")]
    assert len(bad[0].raw) <= 4096


def test_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(orjson.dumps(GOOD) + b"\r\n" + orjson.dumps(GOOD))
    df, bad = _read(path)
    assert df.height == 2 and not bad


def test_parquet_input_with_nulls_and_unknown_columns(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pl.DataFrame(
        {"prompt": ["a", "b", None], "response": ["r", None, "r"], "task": ["math", "code", "math"], "score": [1, 2, 3]}
    ).write_parquet(path)
    df, bad = _read(path)
    assert df["input_line"].to_list() == [1]
    assert json.loads(df["extra"].item()) == {"score": 1}
    assert sorted((b.line, b.reason) for b in bad) == [(2, "input.missing_field"), (3, "input.missing_field")]


def test_unreadable_inputs_raise_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    (tmp_path / "x.csv").write_text("a,b\n")
    for p, msg in [
        (tmp_path / "nope.jsonl", "no such file"),
        (tmp_path, "is a directory"),
        (tmp_path / "x.parquet", "not a readable Parquet"),
        (tmp_path / "x.csv", "unknown format"),
    ]:
        with pytest.raises(InputError, match=msg):
            _read(p)


def test_check_files_streams_in_batches_and_writes_quarantine(tmp_path: Path) -> None:
    lines = [orjson.dumps({**GOOD, "prompt": f"q{i}"}) for i in range(1000)] + [b"{oops"]
    path = _write(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.parquet"
    report = check_files([path], out, build_checks(only=["format", "math"]), read_options=ReadConfig(batch_rows=64))
    assert report.rows == 1000 and report.read.rows_bad == 1
    res = pl.read_parquet(out)
    assert res.height == 1000 and res["sample_id"].n_unique() == 1000 and res["accepted"].all()
    q = quarantine_path(out)
    assert q == tmp_path / "out.quarantine.jsonl"
    assert [json.loads(x)["line"] for x in q.read_text().splitlines()] == [1001]


def test_fill_ids_from_bytes_equals_the_per_text_definitions() -> None:
    """fill_ids hashes the columns' UTF-8 bytes; every id equals prompt_id / content_id of the texts,
    with given ids kept, null responses, non-ASCII text and a frame that is a slice (Arrow offset)."""
    import random

    from curate.io.rows import content_id, fill_ids, prompt_id

    rng = random.Random(0)
    n = 600
    prompts = [rng.choice(["p", "é∑ü 𝔘", "", "x" * rng.randint(0, 40)]) for _ in range(n)]
    responses = [rng.choice([None, "", "résumé 🙂" * rng.randint(0, 9), "a" * rng.randint(0, 3000)]) for _ in range(n)]
    pids = [rng.choice([None, None, "given"]) for _ in range(n)]
    sids = [rng.choice([None, None, "given-s"]) for _ in range(n)]
    df = pl.DataFrame({"prompt": prompts, "response": responses, "prompt_id": pids, "sample_id": sids})
    want_p = [p if p is not None else prompt_id(q) for p, q in zip(pids, prompts, strict=True)]
    want_s = [s if s is not None else content_id(p, r) for s, p, r in zip(sids, want_p, responses, strict=True)]
    got = fill_ids(df.slice(7))
    assert got["prompt_id"].to_list() == want_p[7:]
    assert got["sample_id"].to_list() == want_s[7:]
    bare = fill_ids(df.drop("prompt_id", "sample_id"))
    assert bare["sample_id"].to_list() == [content_id(prompt_id(q), r) for q, r in zip(prompts, responses, strict=True)]


@pytest.mark.parametrize("chunk", [1, 7, 33, 1 << 20])
def test_line_numbers_survive_any_chunking(tmp_path: Path, chunk: int) -> None:
    """Blank lines, CRLF, a blank line before a chunk's last newline and a missing final newline: every
    row keeps its line number whatever the chunk size (blocks may end with their last newline)."""
    lines = [orjson.dumps({**GOOD, "response": f"r{i}"}) for i in range(40)]
    for i in (3, 4, 17, 30):
        lines[i] = b""
    lines[9] += b"\r"
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n" + orjson.dumps({**GOOD, "response": "last"}))
    frames = list(read_batches([path], table("sample"), on_bad=lambda b: None, options=ReadConfig(chunk_bytes=chunk)))
    got = pl.concat(frames).select("input_line", "response").rows()
    want = [(i + 1, f"r{i}") for i in range(40) if lines[i]] + [(42, "last")]
    assert got == want
