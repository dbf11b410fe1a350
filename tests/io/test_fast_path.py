"""The Polars fast path for JSONL must give exactly what the exact line-by-line path gives, row for row.

Hypothesis writes random files that try what broke it before: a field first seen late, a late value of
the wrong type (``"response": 12345`` at line 200), ``finish_reason: length`` deep in the file, unknown
fields of mixed types, numeric gold answers, blank lines.
"""

from __future__ import annotations

import orjson
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.io.jsonl import Block, fast_block, parse_block
from curate.io.rows import fill_ids
from curate.io.rules import ReadConfig, rules_for
from curate.schema import table

SAMPLE = table("sample")
OPTS = ReadConfig()
RULES = rules_for(SAMPLE, OPTS.required)

text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
odd_values = st.one_of(
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(text, st.integers(0, 3), max_size=2),
    st.none(),
    text,
)


@st.composite
def row(draw: st.DrawFn) -> dict[str, object]:
    r: dict[str, object] = {"prompt": draw(text), "response": draw(text)}
    if draw(st.booleans()):
        r["task"] = draw(st.sampled_from(["math", "general", "code"]))
    if draw(st.integers(0, 3)) == 0:
        r["reference"] = draw(st.one_of(text, st.integers(0, 99)))
    if draw(st.integers(0, 4)) == 0:
        r["finish_reason"] = draw(st.sampled_from(["stop", "length"]))
    if draw(st.integers(0, 5)) == 0:
        r["tokens_out"] = draw(st.integers(0, 4000))
    if draw(st.integers(0, 6)) == 0:
        r["note"] = draw(text)
    return r


@st.composite
def files(draw: st.DrawFn) -> list[bytes]:
    base = draw(row())
    n = draw(st.integers(64, 260))
    rows = [dict(base) for _ in range(n)] if draw(st.booleans()) else [draw(row()) for _ in range(n)]
    for _ in range(draw(st.integers(0, 3))):  # late oddities
        i = draw(st.integers(n // 2, n - 1))
        field = draw(
            st.sampled_from(
                [
                    "response",
                    "prompt",
                    "reference",
                    "finish_reason",
                    "tokens_out",
                    "note",
                    "latency_s",
                    "task",
                    "sampling_params",
                ]
            )
        )
        rows[i] = {**rows[i], field: draw(odd_values)}
    lines = [orjson.dumps(r) for r in rows]
    if draw(st.integers(0, 5)) == 0:
        lines[draw(st.integers(0, n - 1))] = b""
    return lines


def _both(lines: list[bytes]) -> tuple[pl.DataFrame | None, pl.DataFrame, list[tuple[int, str]]]:
    block = Block(1, b"\n".join(lines), len(lines))
    fast = fast_block(block, "f.jsonl", RULES, OPTS)
    frames, bad = parse_block(block, "f.jsonl", RULES, OPTS.max_line_bytes, OPTS.batch_rows)
    exact = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    fast_df = None
    if fast is not None:
        fast_frames, fast_bad = fast
        assert fast_bad == []
        fast_df = pl.concat(fast_frames, how="diagonal_relaxed")
    return fast_df, exact, [(b.line, b.reason) for b in bad]


def _rows(df: pl.DataFrame) -> list[dict[str, object]]:
    out = []
    for r in fill_ids(df).to_dicts():
        r = {k: v for k, v in r.items() if v is not None}
        if "extra" in r:
            r["extra"] = orjson.loads(r["extra"])  # key order may differ, the object does not
        out.append(r)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(files())
def test_fast_path_equals_exact_path(lines: list[bytes]) -> None:
    fast, exact, bad = _both(lines)
    if fast is None:
        return  # the exact path read the block: equal by construction
    assert bad == [], "the fast path took a block with a row the exact path refuses"
    assert _rows(fast) == _rows(exact)


def _file(n: int, late: dict[int, dict[str, object]]) -> list[bytes]:
    return [orjson.dumps({"prompt": f"p{i}", "response": "<think>x</think> 4", **late.get(i, {})}) for i in range(n)]


def test_late_truncation_is_seen() -> None:
    fast, exact, _ = _both(_file(300, {199: {"finish_reason": "length"}}))
    for df in (d for d in (fast, exact) if d is not None):
        assert df["finish_reason"].to_list()[199] == "length"


def test_late_wrong_type_is_quarantined_not_coerced() -> None:
    fast, exact, bad = _both(_file(300, {199: {"response": 12345}}))
    assert fast is None and bad == [(200, "input.wrong_type")] and exact.height == 299


def test_late_reference_is_kept() -> None:
    late = {i: {"reference": "4"} for i in range(150, 300)}
    fast, exact, _ = _both(_file(300, late))
    df = fast if fast is not None else exact
    assert df["reference"].drop_nulls().len() == 150


def test_deeply_nested_line_is_one_bad_row() -> None:
    deep = b'{"prompt": "p", "response": "r", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    lines = _file(70, {})
    lines[10] = deep
    fast, exact, bad = _both(lines)
    assert fast is None and bad == [(11, "input.invalid_json")] and exact.height == 69


def test_clean_blocks_take_the_fast_path() -> None:
    """The property above is not vacuous: ordinary files (numeric-looking answers, Python's spacing,
    unknown string fields) still take the fast path."""
    lines = [
        orjson.dumps({"prompt": f"p{i}", "response": "r", "reference": "42", "task": "math", "src": "x"})
        for i in range(100)
    ]
    spaced = [line.replace(b'":', b'": ') for line in lines]
    for block in (lines, spaced):
        fast, exact, bad = _both(block)
        assert fast is not None and bad == [] and _rows(fast) == _rows(exact)
