"""The Polars fast path for JSONL must give exactly what the exact line-by-line path gives, row for row.

Hypothesis writes random files that try what broke it before: a field first seen late, a late value of
the wrong type (``"response": 12345`` at line 200), ``finish_reason: length`` deep in the file, unknown
fields of mixed types, numeric gold answers, blank lines.
"""

from __future__ import annotations

import io
import json

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.io.jsonl import _DUPLICATE, Block, DuplicateKeys, fast_block, parse_block, read_ndjson, top_keys
from curate.io.rows import fill_ids
from curate.io.rules import ReadConfig, rules_for
from curate.native import kernels
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


# read_ndjson: Polars' reader with every line's schema at the cost of its 100-line default.

keys = st.text(alphabet=st.sampled_from('ab"\\{}[],: é\n'), min_size=1, max_size=4)
flat_values = st.one_of(st.booleans(), st.integers(-(10**12), 10**12), st.floats(-1e6, 1e6), text)
json_values = st.recursive(
    st.one_of(st.none(), flat_values),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def ndjson(draw: st.DrawFn) -> bytes:
    """Lines that share a first row's shape (flat, as most files are, or nested), with late rows (some
    past line 100) that add a key, change a value's type or take another shape."""
    base = draw(st.dictionaries(keys, st.one_of(flat_values, json_values), min_size=1, max_size=4))
    n = draw(st.integers(100, 240))
    rows = [dict(base) for _ in range(n)]
    for _ in range(draw(st.integers(0, 3))):
        i, key = draw(st.integers(0, n - 1)), draw(st.one_of(st.sampled_from(sorted(base)), keys))
        if draw(st.booleans()):
            rows[i] = {**rows[i], key: draw(st.one_of(flat_values, json_values))}
        else:
            rows[i] = draw(st.dictionaries(keys, json_values, min_size=1, max_size=4))
    spaced = draw(st.booleans())  # Python's json.dumps puts spaces after ':' and ','
    lines = [json.dumps(r, ensure_ascii=draw(st.booleans())).encode() if spaced else orjson.dumps(r) for r in rows]
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\n\n", b"\r\n"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ndjson())
def test_read_ndjson_equals_every_line_inference(data: bytes) -> None:
    try:
        want: pl.DataFrame | None = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except Exception:  # noqa: BLE001 - then ours must refuse it too
        want = None
    try:
        got: pl.DataFrame | None = read_ndjson(data)
    except Exception:  # noqa: BLE001
        got = None
    if want is None:
        assert got is None
        return
    assert got is not None
    assert got.schema == want.schema
    assert got.to_dicts() == want.to_dicts()


def _late(n: int, late: str) -> bytes:
    return b"\n".join([b'{"a":1,"b":"x","c":[],"d":{}}'] * n + [late.encode()])


@pytest.mark.parametrize(
    "late",
    [
        '{"a":1,"b":"x","c":[],"d":{},"e":"late key"}',  # a top-level field first seen at line 201
        '{"a":1,"b":"x","c":["first element"],"d":{}}',  # an empty list's element type, late
        '{"a":1,"b":"x","c":[],"d":{"k":2}}',  # an empty object's field, late
        '{"a":1.5,"b":"x","c":[],"d":{}}',  # an int column's float
        '{"a":1,"b":null,"c":[],"d":{},"\\u0065":3}',  # an escaped late key ("e")
    ],
)
def test_read_ndjson_sees_what_the_first_hundred_lines_do_not(late: str) -> None:
    data = _late(200, late)
    want = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    got = read_ndjson(data)
    assert got.schema == want.schema and got.to_dicts() == want.to_dicts()
    last = got.row(-1, named=True)
    assert {k: last[k] for k in json.loads(late)} == json.loads(late)  # nothing of the late line lost


@pytest.mark.skipif(kernels() is None, reason="the compiled scan is not built")
def test_top_keys_finds_every_top_level_key_and_only_those() -> None:
    lines = [
        b'{"a":{"a2":1,"b2":[{"deep":1}]},"s":"{\\"fake\\":1}, \\"also_fake\\": 2","t\\"q":"\\\\"}',
        b"",
        b'  { "x" : [ "]", "}" ] , "y":"\\\\\\"" }  \r',
        b'{"a":2,"\\u00e9":null}',
    ]
    assert top_keys(b"\n".join(lines) + b"\n") == {"a", "s", 't"q', "x", "y", "é"}
    assert top_keys(b'{"a":1}\n[1,2]\n') is None  # a line that is not an object
    assert top_keys(b'{"a":1} {"b":2}\n') is None  # two objects on a line
    assert top_keys(b'{"a":{"b":1}\n') is None  # an object left open
    assert top_keys(b"".join(b'{"k%d":1}\n' % i for i in range(2000))) is None  # more keys than it holds
    assert top_keys(b"") == set()
    assert top_keys(b'{"a":{"k":1,"k":2},"b":1}\n{"a":{},"b":2}\n') is _DUPLICATE  # a repeat at any depth
    assert top_keys(b'{"a":[{"k":1},{"k":2}],"b":{"k":[{"k":1}]}}\n') == {"a", "b"}  # siblings, depths: not repeats
    assert top_keys(b'{"a":{"\\u006b":1,"k":2}}\n') is _DUPLICATE  # two spellings of one key: cannot tell
    assert top_keys(b'{"a":' + b"[" * 70 + b"]" * 70 + b"}\n") is _DUPLICATE  # deeper than it follows
    assert top_keys(b'{"a":1}\n{"a":2,"b":1,"a":3}\n') is _DUPLICATE


@pytest.mark.skipif(kernels() is None, reason="the compiled scan is not built")
def test_a_key_named_twice_inside_a_declared_nested_column_reads_as_json_does() -> None:
    """The same inside ``io_tests`` (list<struct>): Polars would keep "first" for line 151's expected output
    and json "second", so which one a code test compared against depended on the lines around it."""
    lines = _file(200, {})
    head = b'{"prompt":"p","response":"<think>x</think> 4","io_tests":'
    lines[150] = head + b'[{"input":"1","output":"first","output":"second"}]}'
    fast, exact, bad = _both(lines)
    assert fast is None and bad == []
    assert exact["io_tests"][150].to_list() == [{"input": "1", "output": "second"}]
    with pytest.raises(DuplicateKeys):
        read_ndjson(b"\n".join(lines), duplicate_keys=False)
    lines[150] = head + b'[{"input":"1","output":"2"},{"input":"3","output":"4"}]}'
    fast, exact, bad = _both(lines)  # the same key in sibling objects is no repeat: Polars reads the block
    assert fast is not None and fast["io_tests"][150].to_list() == exact["io_tests"][150].to_list()


@pytest.mark.parametrize("repeat", ['"note":5,"note":"second"', '"note":"first","note":"second"'])
def test_a_key_named_twice_reads_as_json_does(repeat: str) -> None:
    """Polars keeps the first value of a repeated key, json and orjson the last: a block with one such
    line goes line by line, so the row holds what json.loads gives, on either path."""
    lines = _file(200, {})
    lines[150] = ('{"prompt":"p","response":"<think>x</think> 4",' + repeat + "}").encode()
    fast, exact, bad = _both(lines)
    assert fast is None and bad == []
    assert orjson.loads(exact["extra"][150]) == {"note": "second"}
    with pytest.raises(DuplicateKeys):
        read_ndjson(b"\n".join(lines), duplicate_keys=False)
