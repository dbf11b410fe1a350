"""The compiled text passes (curate.native._kernels) give exactly what their numpy/Polars references give.

Each kernel is run beside the reference it replaces on the same inputs: R1-style traces, the
hostile texts of the same-verdicts suite, and texts hypothesis builds from a byte-level alphabet that
hits every branch (word bytes, separators, non-ASCII, Unicode whitespace, CJK, 64+-byte words, empty
and null texts; for the lang cleaning, every opener of its regexes with and without its closer). Bad
arguments are a Python error, never a crash. ``CURATE_REQUIRE_KERNELS=1`` (set by
``.ci/run``) turns a missing build into a failure instead of a skip.
"""

from __future__ import annotations

import os
import random

import numpy as np
import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

from curate.checks.format import FormatCheck, FormatConfig
from curate.checks.text import split_think
from curate.dedup.minhash import sketch
from curate.dedup.words import hash_words, hash_words_reference, text_buffer
from curate.native import kernels
from curate.quality import LanguageCheck, ReadabilityCheck, ReadabilityConfig
from curate.quality import language as L
from curate.quality import readability as R
from curate.testing.traces import make_trace

if kernels() is None:
    if os.environ.get("CURATE_REQUIRE_KERNELS") == "1":
        pytest.fail("curate.native._kernels is not built (CURATE_REQUIRE_KERNELS=1)", pytrace=False)
    pytest.skip("curate.native._kernels is not built: curate runs the references", allow_module_level=True)

PIECES = [
    "a", "Ab", "_x9", "word", " ", "  ", "\n", "\n\n", "\t", ".", ",", "$x^2$", "\\frac{1}{2}", "é", "Ünï",
    "中文", "ひらがな", "한국어", "\u3000", "\u00a0", "\u2003", "\u0085", "x" * 70, "Y" * 64, "z" * 65,
    "the same long line repeated again and again\n", "```py\nprint(1)\n```", "\r\n", "—", "Ω", "\x00",
]  # fmt: skip

texts_strategy = st.lists(
    st.one_of(st.none(), st.lists(st.sampled_from(PIECES), max_size=60).map("".join)), min_size=1, max_size=25
)


def _both(fn, monkeypatch):  # type: ignore[no-untyped-def]
    """fn() with the kernels, then with the references."""
    monkeypatch.delenv("CURATE_KERNELS", raising=False)
    fast = fn()
    monkeypatch.setenv("CURATE_KERNELS", "0")
    slow = fn()
    monkeypatch.delenv("CURATE_KERNELS")
    return fast, slow


def _corpus() -> list[str | None]:
    rng = random.Random(3)
    traces: list[str | None] = [make_trace(rng, 4096) for _ in range(60)]
    loop = "<think>Wait, let me recompute the sum of both terms again.\n" * 80 + "</think> 5"
    return [*traces, loop, "", None, " ", "x" * 500, "中文推理 " * 300, "a b c d e f g h i j k l m n o p"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts_strategy)
def test_word_hashes_match_the_reference(monkeypatch: pytest.MonkeyPatch, texts: list[str | None]) -> None:
    data, offsets = text_buffer(pl.Series(texts, dtype=pl.String))
    fast = hash_words(data, offsets)
    slow = hash_words_reference(data, offsets)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])


def test_word_hashes_at_every_block_edge() -> None:
    """The compiled pass reads 64 bytes at a time: words that end at, straddle or start on a block's edge,
    texts that end mid-block or on the buffer's last byte (where it may not read 8 bytes past a word)."""
    rng = random.Random(5)
    for lead in range(0, 140):
        for word in (1, 7, 8, 9, 63, 64, 65, 70):
            texts = ["x" * lead + " " + "Ab_9é"[: rng.randint(1, 5)] * word, "." * lead + "w" * word]
            data, offsets = text_buffer(pl.Series(texts, dtype=pl.String))
            for a, b in ((0, len(offsets)), (1, len(offsets))):  # and the last text alone, buffer-final
                d, o = data[offsets[a] : offsets[b - 1]], offsets[a:b] - offsets[a]
                fast, slow = hash_words(d, o), hash_words_reference(d, o)
                np.testing.assert_array_equal(fast[0], slow[0])
                np.testing.assert_array_equal(fast[1], slow[1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts_strategy, st.sampled_from([(128, 5, 1), (100, 3, 0), (1, 1, 7), (64, 9, 2**40)]))
def test_signatures_and_exact_keys_match_the_reference(
    monkeypatch: pytest.MonkeyPatch, texts: list[str | None], params: tuple[int, int, int]
) -> None:
    k, ngram, seed = params
    series = pl.Series(texts, dtype=pl.String)
    fast, slow = _both(lambda: sketch(series, num_perm=k, ngram=ngram, seed=seed, threads=1), monkeypatch)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])


def test_signatures_on_traces_in_threaded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    series = pl.Series(_corpus() * 5, dtype=pl.String)
    fast, slow = _both(lambda: sketch(series, batch_docs=17, threads=2), monkeypatch)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts_strategy, st.sampled_from([1, 2, 10]), st.sampled_from([0, 5, 30]))
def test_line_and_ngram_statistics_match_the_reference(
    monkeypatch: pytest.MonkeyPatch, texts: list[str | None], n: int, min_chars: int
) -> None:
    s = pl.Series(texts, dtype=pl.String)
    cjk = R._has_cjk(s)
    lines = _both(lambda: R._line_stats(s, 1.5, cjk, min_chars), monkeypatch)
    assert_frame_equal(*lines)
    grams = _both(lambda: R._ngram_repeat(s, n, cjk), monkeypatch)
    assert_series_equal(*grams, check_names=False)


# Every piece the lang check's cleaning regexes (STRIP_BLOCKS, STRIP_TOKENS, SENTENCE_END) care about:
# each opener with and without its closer, spaces and tabs before them, every kind of ASCII whitespace.
LANG_PIECES = [
    "```", "`", "$$", "$", "\\[", "\\]", "\\(", "\\)", "\\begin{x}", "\\end{x}", "\\end{", "}", "{", "<<", ">>", ">",
    "[asy]", "[/asy]", "http://", "https://", "h", "a", "word", "The cat", " ", "  ", "\t", "\n", "\r", "\x0b", "\x0c",
    ".", "!?", ";", ":", "<think>", "</think>", "<", "\\alpha", "\\", "x_1", "2+3=5", "(", ")", ",", "%", "#", "@",
    "&", "|", "~", "^", "=", "-", "'", '"', "é", "中",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from(LANG_PIECES), max_size=40).map("".join)), max_size=30))
def test_lang_cleaning_matches_the_regexes(monkeypatch: pytest.MonkeyPatch, texts: list[str | None]) -> None:
    s = pl.Series(texts, dtype=pl.String)
    fast, slow = _both(lambda: L._cleaned(s), monkeypatch)
    assert_series_equal(fast, slow, check_names=False)


def test_lang_cleaning_of_every_ascii_byte_at_every_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled cleaning finds where a match may start 16 bytes at a time, from compares written out
    by hand for each start set: every ASCII byte, alone, doubled, before a letter, a space, a 't' and at
    the end, on both sides of a 16-byte edge, must clean as the regexes do."""
    texts = []
    for c in map(chr, range(1, 128)):
        for lead in range(12, 20):
            for tail in (c, c + c + "x", c + "tp://a.b c", c + " ok.", "x" + c + "ttps://q r", c + "\\frac{1}{2} z"):
                texts.append("w" * lead + " " + tail + " and then some words.")
    s = pl.Series(texts, dtype=pl.String)
    fast, slow = _both(lambda: L._cleaned(s), monkeypatch)
    assert_series_equal(fast, slow, check_names=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.none(), st.lists(st.sampled_from([*LANG_PIECES, "\u3000", "\u00a0", "\u2028"]), max_size=40).map("".join)
        ),
        max_size=30,
    )
)
def test_lang_segments_match_the_reference(monkeypatch: pytest.MonkeyPatch, texts: list[str | None]) -> None:
    base = pl.DataFrame(
        {"text": texts, "target": [None, "en", "zh-CN"] * (len(texts) // 3) + [None] * (len(texts) % 3)},
        schema={"text": pl.String, "target": pl.String},
    ).with_row_index("row")
    fast, slow = _both(lambda: L._segments(base, L.LanguageConfig()), monkeypatch)
    assert_frame_equal(fast, slow)


def test_lang_check_is_the_same_with_and_without_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _corpus() + ["Der Hund ist müde. The cat sleeps $x$ here.", "Le chat dort ici tous les jours. Yes."]
    df = pl.DataFrame({"response": texts})
    fast, slow = _both(lambda: LanguageCheck().run(df), monkeypatch)
    assert_frame_equal(fast, slow)


JUNK_PIECES = [
    "a", "Z", "0", "+", "/", "=", "==", "-", "—", "…", "。", "═", " ", "\n", "\u3000", "\u0085", "\u00a0", "x" * 31,
    "a" * 32, "-" * 40, "=" * 120, "ab12" * 30, "A" * 99, "7" * 150, "Q9+/" * 20, "é", "中", "\\frac{1}{2}",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.one_of(st.none(), st.lists(st.sampled_from(JUNK_PIECES), max_size=30).map("".join)), max_size=20),
    st.sampled_from([(32, 100), (5, 10), (3, 3), (40, 20), (1, 1), (31, 200)]),
)
def test_junk_runs_match_the_regexes(
    monkeypatch: pytest.MonkeyPatch, texts: list[str | None], limits: tuple[int, int]
) -> None:
    cfg = ReadabilityConfig(junk_min_run=limits[0], blob_min_chars=limits[1])
    s = pl.Series(texts, dtype=pl.String)
    fast, slow = _both(lambda: R._junk_runs(s, cfg), monkeypatch)
    assert_series_equal(fast, slow, check_names=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.lists(
                st.sampled_from(
                    ["<think>", "</think>", "</think", "<think", " ", "\n", "\u3000", "\u00a0", "a", "é", "中"]
                ),
                max_size=12,
            ).map("".join),
        ),
        max_size=20,
    )
)
def test_reasoning_and_answer_match_the_expressions(monkeypatch: pytest.MonkeyPatch, texts: list[str | None]) -> None:
    s = pl.Series(texts, dtype=pl.String)
    fast, slow = _both(lambda: split_think(s), monkeypatch)
    assert_series_equal(fast[0], slow[0])
    assert_series_equal(fast[1], slow[1])


FORMAT_PIECES = [
    "<think>", "</think>", "<think", " ", "\n", "\u3000", "\u00a0", "a", "é", "中", "<|im_end|>",
    "<|" + "a" * 40 + "|>", "<|" + "a" * 41 + "|>", "<||>", "<|a b|>", "<｜end▁of▁sentence｜>", "<｜｜>",
    "<｜" + "x" * 40 + "｜>", "<｜" + "x" * 41 + "｜>", "<｜a>｜>", "</s>", "</s", "[INST]", "[/INST]", "[INST", "\x00",
    "\x0b", "\x7f", "\t", "\r", "\ufffd", "\x1f", "<", "[", "｜", ">", "\uefbf",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.lists(st.sampled_from(FORMAT_PIECES), max_size=15).map("".join)),
            st.sampled_from(["stop", "length", None]),
        ),
        max_size=20,
    ),
    st.booleans(),
)
def test_format_check_is_the_same_with_and_without_kernels(
    monkeypatch: pytest.MonkeyPatch, rows: list[tuple[str | None, str | None]], prefilled: bool
) -> None:
    df = pl.DataFrame(
        {"response": [r for r, _ in rows], "finish_reason": [f for _, f in rows]},
        schema={"response": pl.String, "finish_reason": pl.String},
    )
    check = FormatCheck(FormatConfig(allow_prefilled_think=prefilled))
    for frame in (df, df.drop("finish_reason")):
        fast, slow = _both(lambda: check.run(frame), monkeypatch)  # noqa: B023 - run at once
        assert_frame_equal(fast, slow)


def test_format_scan_of_every_ascii_byte_at_every_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled scan skips 16 bytes at a time to the next byte that may matter (controls, '<', '[',
    U+FFFD's lead byte): every ASCII byte, and the special tokens, on both sides of a 16-byte edge."""
    tails = [chr(c) for c in range(1, 128)] + ["\ufffd", "<|im_end|>", "<\uff5cend\uff5c>", "[INST]", "</s>", "\ufeff"]
    texts = [
        "<think>" + "w" * lead + tail + " x</think>" + "v" * lead + tail + " The answer is 4."
        for tail in tails
        for lead in range(0, 20)
    ]
    check = FormatCheck(FormatConfig())
    frame = pl.DataFrame({"response": texts})
    fast, slow = _both(lambda: check.run(frame), monkeypatch)
    assert_frame_equal(fast, slow)
    assert fast["reject_reasons"].list.len().sum() > 0  # some of them are rejected: the scan saw them


def test_readability_check_is_the_same_with_and_without_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _corpus()
    tasks = [("math", "code", "general", None)[i % 4] for i in range(len(texts))]
    df = pl.DataFrame({"response": texts, "task": tasks}, strict=False)
    fast, slow = _both(lambda: ReadabilityCheck(ReadabilityConfig()).run(df), monkeypatch)
    assert_frame_equal(fast, slow)
    assert fast["reject_reasons"].list.len().sum() > 0  # the loop and the wall are caught either way


def test_bad_arguments_raise_instead_of_crashing() -> None:
    k = kernels()
    assert k is not None
    data = np.frombuffer(b"hello world", dtype=np.uint8)
    out, counts = np.empty(16, np.uint64), np.empty(1, np.int64)
    with pytest.raises(ValueError, match="offsets"):
        k.hash_words(data, np.array([0, 99], np.int64), out, counts)  # past the data
    with pytest.raises(ValueError, match="offsets"):
        k.hash_words(data, np.array([5, 2], np.int64), out, counts)  # decreasing
    with pytest.raises(ValueError, match="offsets"):
        k.hash_words(data, np.array([0, 11], np.int32), out, counts)  # not int64
    with pytest.raises(ValueError, match="out_hashes"):
        k.hash_words(data, np.array([0, 11], np.int64), np.empty(1, np.uint64), counts)
    with pytest.raises(ValueError, match="sum to"):
        sig = np.empty((1, 4), np.uint32)
        k.oph_bins(np.zeros(3, np.uint64), np.array([5], np.int64), 4, 2, 1, sig, counts, np.empty(1, np.uint64))
    with pytest.raises(ValueError, match="out_frac"):
        k.ngram_repeat(data, np.array([0, 11], np.int64), 2, np.empty(0))
    with pytest.raises(ValueError, match="out_closed"):
        buf = np.empty(11, np.uint8)
        off = np.empty(2, np.int64)
        k.think_split(data, np.array([0, 11], np.int64), buf, off, buf.copy(), off.copy(), np.empty(0, np.uint8))
    with pytest.raises(ValueError, match="out_control"):
        outs = [np.empty(1, t) for t in (np.int32, np.int32, np.uint8, np.int32, np.uint8)]
        k.format_scan(data, np.array([0, 11], np.int64), *outs, np.empty(0, np.uint8))
    with pytest.raises(ValueError, match="min_run"):
        k.junk_runs(data, np.array([0, 11], np.int64), 0, 100, np.empty(1, np.int32))
    with pytest.raises(ValueError, match="out_rows"):
        buf, off = np.empty(11, np.uint8), np.empty(3, np.int64)
        k.split_segments(data, np.array([0, 11], np.int64), buf, off, np.empty(0, np.uint32))
    with pytest.raises(ValueError, match="out_data"):
        k.clean_latin(data, np.array([0, 11], np.int64), np.empty(3, np.uint8), np.empty(2, np.int64))
    with pytest.raises(BufferError):  # a read-only output
        k.line_stats(data, np.array([0, 11], np.int64), 30, np.empty(1, np.int32), np.empty(1, np.int32), b"ro")


def test_the_environment_switch_turns_them_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATE_KERNELS", "0")
    assert kernels() is None
    monkeypatch.delenv("CURATE_KERNELS")
    assert kernels() is not None


def test_a_stale_build_is_refused_for_the_references(monkeypatch: pytest.MonkeyPatch) -> None:
    """An editable install not rebuilt after a pull keeps an older extension: its VERSION differs, so curate
    warns once and runs the references instead of calling functions whose arguments may have changed."""
    import curate.native as native
    from curate.native import _kernels

    monkeypatch.setattr(_kernels, "VERSION", native.VERSION - 1)
    native._load.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="rebuild"):
            assert native.kernels() is None
    finally:
        monkeypatch.undo()
        native._load.cache_clear()
    assert native.kernels() is not None


def _bundled_texts() -> list[str]:
    """Every string field of the evaluation sets and prompt pool shipped in curate/data (MATH-500's LaTeX
    and [asy] figures, AIME and AMC, GSM8K's <<calculator>> annotations, HumanEval's code): texts
    written by others, not shaped to these kernels."""
    import gzip
    import io
    from importlib.resources import files

    out: list[str] = []
    for sub in ("benchmarks", "prompts"):
        for f in sorted(files("curate.data").joinpath(sub).iterdir(), key=lambda p: p.name):
            if not f.name.endswith((".jsonl", ".jsonl.gz")):
                continue
            raw = f.read_bytes()
            df = pl.read_ndjson(io.BytesIO(gzip.decompress(raw) if f.name.endswith(".gz") else raw))
            for c in df.columns:
                if df.schema[c] == pl.String:
                    out.extend(t for t in df[c].drop_nulls().to_list() if t)
    return out


def test_every_pass_is_the_same_on_the_bundled_evaluation_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _bundled_texts()
    assert len(texts) > 5000
    # as responses: each text as the reasoning, the next one as the answer, and the raw text alone
    responses = [f"<think>{a}</think>\n{b}" for a, b in zip(texts, texts[1:] + texts[:1], strict=True)] + texts
    df = pl.DataFrame({"response": responses, "task": ["math"] * len(responses)})
    for check in (FormatCheck(), ReadabilityCheck(), LanguageCheck()):
        fast, slow = _both(lambda: check.run(df), monkeypatch)  # noqa: B023 - run at once
        assert_frame_equal(fast, slow)
    series = pl.Series(texts, dtype=pl.String)
    fast_sig, slow_sig = _both(lambda: sketch(series), monkeypatch)
    np.testing.assert_array_equal(fast_sig[0], slow_sig[0])
    np.testing.assert_array_equal(fast_sig[1], slow_sig[1])
    cleaned = _both(lambda: L._cleaned(series), monkeypatch)
    assert_series_equal(*cleaned)


def test_every_kernel_stays_inside_exactly_sized_buffers() -> None:
    """Every pass over texts in buffers of exactly their size (numpy copies, so under AddressSanitizer,
    as .ci/kernels-hardened runs this file, a read or write one byte past a buffer fails the run): the
    SSE2 scans read 16-64 bytes at a time and must stop at the end of the data, not of the text."""
    k = kernels()
    assert k is not None
    rng = random.Random(11)
    alphabet = [*"abcxyzAZ09_ \t\n\r.,;:!?<>[]{}()$\\`'\"#@&*/%^|~+-=h", "é", "中", "\ufffd", "<think>", "</think>"]
    alphabet += ["http://x ", "```", "\\frac{1}{2}", "$$", "<|im_end|>", "\uff5c"]
    for _ in range(300):
        sizes = [rng.choice([rng.randint(0, 40), rng.randint(300, 1500)]) for _ in range(rng.randint(1, 6))]
        enc = ["".join(rng.choice(alphabet) for _ in range(m)).encode() for m in sizes]
        data = np.frombuffer(b"".join(enc), np.uint8).copy()
        offs = np.zeros(len(enc) + 1, np.int64)
        offs[1:] = np.cumsum([len(e) for e in enc])
        n, size = len(enc), len(data)
        k.hash_words(data, offs, np.empty(size // 2 + n + 1, np.uint64), np.empty(n, np.int64))
        k.ngram_repeat(data, offs, 3, np.empty(n))
        k.line_stats(data, offs, 5, np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n))
        k.junk_runs(data, offs, 4, 8, np.empty(n, np.int32))
        outs = [np.empty(n, t) for t in (np.int32, np.int32, np.uint8, np.int32, np.uint8, np.uint8)]
        k.format_scan(data, offs, *outs)
        r, a = np.empty(size, np.uint8), np.empty(size, np.uint8)
        k.think_split(data, offs, r, np.empty(n + 1, np.int64), a, np.empty(n + 1, np.int64), np.empty(n, np.uint8))
        if int(data.max(initial=0)) < 0x80:
            k.clean_latin(data, offs, np.empty(size, np.uint8), np.empty(n + 1, np.int64))
        lines = [orjson.dumps({e.decode(): 1, "n": [{e.decode(): [1, {"k": e.decode()}]}]}) for e in enc]
        k.json_top_keys(np.frombuffer(b"\n".join(lines), np.uint8).copy(), np.empty(8, np.int64), np.empty(8, np.int64))
        k.json_top_keys(data, np.empty(8, np.int64), np.empty(8, np.int64))  # not JSON: any answer, no fault
