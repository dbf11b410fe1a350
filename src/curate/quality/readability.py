"""The ``readability`` check: R1's cold-start / rejection-sampling filter on the chain of thought.

Scored features of the reasoning (everything before ``</think>``; the whole response when it never
closes), each kept as a column, each violation its own reason code:

* longest paragraph in words (a paragraph is a line: tables and lists stay short, walls of text don't);
* fenced code blocks in the reasoning of a non-code task;
* repetition: share of repeated long lines, share of repeated word n-grams, zlib compression ratio
  (the "Wait, let me recompute..." loop);
* junk: one character repeated many times, base64-like blobs;
* length far beyond the task's word budget.

What the format check already flags (missing or multiple think blocks, empty answer, special tokens) is
not repeated here. Words: whitespace tokens, plus CJK characters at ``cjk_chars_per_word`` per word.
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.checks.base import Check, add_reasons
from curate.checks.text import split_think
from curate.native import kernels, string_buffer
from curate.quality import _patterns as P

# Whitespace-separated tokens, with CJK characters and CJK punctuation taken out of them.
_NON_CJK_TOKEN = r"[^\s\p{Han}\p{Hiragana}\p{Katakana}\x{3000}-\x{303F}\x{FF00}-\x{FFEF}]+"
_B = 1_000_003
TextBytes = tuple[np.ndarray, np.ndarray]  # (UTF-8 bytes, offsets) of a text column: native.string_buffer
_CJK_TOKEN = rf"{P.HAN_KANA}|{_NON_CJK_TOKEN}"
_PRINTABLE = [chr(c) for c in range(0x21, 0x7F)] + ["…", "。", "—", "─", "═", "・", "，"]


@dataclass(frozen=True, slots=True)
class ReadabilityConfig:
    """Defaults measured on the 1,849 reference solutions shipped in curate/data (MATH-500, AIME 2024,
    GSM8K test) and on 8 KB synthetic R1-style traces built from them (``python
    benchmarks/bench_quality.py --calibrate`` prints the table)."""

    # Longest paragraph: reference p99 126 words, max 304 (one solution); R1-style traces put a line
    # break every few sentences, so 300 words is a wall of text.
    max_paragraph_words: int = 300
    max_code_blocks: int = 0  # fenced blocks allowed in the reasoning of a non-code task
    # Repetition. Lines shorter than repeat_min_line_chars ("Hmm.", "Wait.", "So x = 3.") don't count.
    # Reference max: repeated lines 0.25, repeated 10-grams 0.21, compression 3.05; loops: >= 0.52,
    # >= 0.52 and >= 29.
    repeat_min_line_chars: int = 30
    max_repeat_line_frac: float = 0.3
    ngram_n: int = 10
    max_ngram_repeat_frac: float = 0.3
    max_compression_ratio: float = 4.0  # raw bytes / zlib bytes of the reasoning's tail
    compression_min_bytes: int = 2000  # shorter text compresses too little to judge
    compression_window: int = 4096  # bytes at the end of the reasoning that are compressed (0: all)
    compression_level: int = 1
    # Junk: a single character repeated junk_min_run times, or a base64-like blob (letters and digits).
    junk_min_run: int = 32
    blob_min_chars: int = 100
    # Length budget per task, in words. R1 samples up to 32,768 tokens (~24k English words); a trace
    # that still needs more than two thirds of that is far beyond any budget (general: half of it).
    max_words_math: int = 16000
    max_words_code: int = 16000
    max_words_general: int = 8000
    cjk_chars_per_word: float = 1.5  # Chinese averages ~1.5 characters per word
    min_answer_words: int = 0  # 0: off (a bare "\boxed{42}" is a legitimate R1 summary)


def _words(e: pl.Expr, cpw: float) -> pl.Expr:
    return e.str.count_matches(_NON_CJK_TOKEN) + e.str.count_matches(P.HAN_KANA) / cpw


def _junk_pattern(cfg: ReadabilityConfig) -> str:
    n = cfg.junk_min_run
    runs = "|".join(f"\\x{{{ord(c):X}}}{{{n},}}" for c in _PRINTABLE)
    return f"{runs}|[A-Za-z0-9+/]{{{cfg.blob_min_chars},}}={{0,2}}"


def _junk_runs(texts: pl.Series, cfg: ReadabilityConfig, buf: TextBytes | None = None) -> pl.Series:
    """Per text, the longest junk match (0: none): the compiled scan when it is built, else the reference."""
    k = kernels()
    if k is None:
        return _junk_runs_reference(texts, cfg)
    data, offsets = buf or string_buffer(texts)
    out = np.empty(len(texts), dtype=np.int32)
    k.junk_runs(data, offsets, cfg.junk_min_run, cfg.blob_min_chars, out)
    return pl.Series("j", out)


def _junk_runs_reference(texts: pl.Series, cfg: ReadabilityConfig) -> pl.Series:
    """``_junk_runs`` in Polars. Every match is a stretch without whitespace, so the
    ~100-branch junk pattern runs only on the text's long non-space tokens (a few % of a trace: LaTeX,
    URLs), found first by one cheap pass; the matches are the ones a scan of the whole text finds."""
    shortest = max(1, min(cfg.junk_min_run, cfg.blob_min_chars))
    frame = pl.DataFrame({"t": texts}).with_row_index("row")
    tokens = frame.select("row", pl.col("t").str.extract_all(rf"\S{{{shortest},}}").alias("tok")).explode("tok")
    hits = tokens.drop_nulls("tok").select("row", pl.col("tok").str.extract_all(_junk_pattern(cfg)).alias("m"))
    m = pl.col("m")
    # A blob is junk only with letters and digits/+/ in it: a 100-digit number is math.
    kept = (m.str.len_chars() < cfg.blob_min_chars) | (m.str.contains(r"[A-Za-z]") & m.str.contains(r"[0-9+/]"))
    longest = hits.explode("m").drop_nulls("m").filter(kept).group_by("row").agg(j=m.str.len_chars().max())
    out = frame.select("row").join(longest, on="row", how="left", maintain_order="left")
    return out["j"].fill_null(0).cast(pl.Int32)


def compression_ratios(
    texts: pl.Series, level: int = 1, min_bytes: int = 0, window: int = 0, buf: TextBytes | None = None
) -> pl.Series:
    """Raw UTF-8 bytes over zlib-compressed bytes of each text's last ``window`` bytes (0: all of it);
    null for texts under ``min_bytes``. A loop that never ends fills the tail of the trace, so the tail
    is where to look, and the cost per row stays bounded however long the trace is."""
    # Straight from the column's UTF-8 bytes: no Python string per text (decoding 8 KB traces to str and
    # encoding them back cost as much as compressing them).
    data, offsets = buf or string_buffer(texts)
    raw = data.data  # a memoryview: slices of it are not copied
    starts, ends = offsets[:-1], offsets[1:]
    if window:
        starts = np.maximum(starts, ends - window)
    floor = max(min_bytes, 1)
    out: list[float | None] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        out.append((b - a) / len(zlib.compress(raw[a:b], level)) if b - a >= floor else None)
    return pl.Series(out, dtype=pl.Float64)


def _ngram_repeat(texts: pl.Series, n: int, has_cjk: pl.Series, buf: TextBytes | None = None) -> pl.Series:
    """Share of each text's word n-grams that already occurred earlier in it (0 when it has none): the
    compiled pass for texts without CJK when it is built, the reference below for the others."""
    k = kernels()
    if k is None:
        return _ngram_repeat_reference(texts, n, has_cjk)
    data, offsets = buf or string_buffer(texts)
    frac = np.empty(len(texts), dtype=np.float64)
    k.ngram_repeat(data, offsets, n, frac)
    out = pl.Series("f", frac)
    if has_cjk.any():
        idx = has_cjk.arg_true()
        out = out.scatter(idx, _ngram_repeat_reference(texts.gather(idx), n, has_cjk.gather(idx)))
    return out


def _ngram_repeat_reference(texts: pl.Series, n: int, has_cjk: pl.Series) -> pl.Series:
    """``_ngram_repeat`` in Polars and numpy (every text; CJK text tokenized by character).

    An n-gram's key is the polynomial hash sum(h_(i+k) * B^k) of its word hashes (u64 arithmetic
    wraps), computed by Horner's rule over the whole batch's flat array of word hashes in place: n
    multiply-adds per word, no per-row Python."""
    frame = pl.DataFrame({"t": texts, "cjk": has_cjk}).with_row_index("row")
    # Space-separated tokens; in CJK text every character is a token. Each row's tokens stay
    # contiguous and in order, which is all the windows below need. Tokens are hashed inside their
    # lists: no column of exploded strings is ever built.
    split = pl.col("t").str.split(" ").alias("w")
    if has_cjk.any():
        cjk_tokens = pl.col("t").str.extract_all(_CJK_TOKEN).alias("w")
        plain = frame.filter(~pl.col("cjk")).select("row", split)
        lists = pl.concat([plain, frame.filter("cjk").select("row", cjk_tokens)])
    else:
        lists = frame.select("row", split)
    hashed = lists.select("row", pl.col("w").list.eval(pl.element().hash(seed=17)).alias("h"))
    hashed = hashed.filter(pl.col("h").list.len() > 0)
    h = hashed["h"].explode().to_numpy()
    row = np.repeat(hashed["row"].to_numpy(), hashed["h"].list.len().to_numpy())
    m = len(h) - n + 1
    rows = pl.DataFrame({"row": pl.arange(0, len(texts), eager=True).cast(pl.UInt32)})
    if m <= 0:
        return pl.Series("f", [0.0] * len(texts), dtype=pl.Float64)
    g = h[n - 1 :].copy()
    base = np.uint64(_B)
    for k in range(n - 2, -1, -1):
        g *= base
        g += h[k : k + m]
    valid = row[n - 1 :] == row[:m]  # the window does not run into the next text
    grams = pl.DataFrame({"row": row[:m][valid], "g": g[valid]})
    agg = grams.group_by("row").agg(n=pl.len(), u=pl.col("g").n_unique())
    out = rows.join(agg, on="row", how="left").select((1.0 - pl.col("u") / pl.col("n")).fill_null(0.0).alias("f"))
    return out["f"]


def _line_stats(
    texts: pl.Series, cpw: float, has_cjk: pl.Series, min_chars: int, buf: TextBytes | None = None
) -> pl.DataFrame:
    """Per text, from one pass over its lines: the longest line and the total in words, and the share
    of its long lines (stripped, at least ``min_chars`` characters) that repeat an earlier one. Words are
    space-separated tokens (a literal count, fast); texts with CJK are recounted with CJK characters as
    1/``cpw`` word each. The compiled pass when it is built, else the reference below."""
    k = kernels()
    if k is None:
        return _line_stats_reference(texts, cpw, has_cjk, min_chars)
    data, offsets = buf or string_buffer(texts)
    n = len(texts)
    longest, total, repeat = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.float64)
    k.line_stats(data, offsets, min_chars, longest, total, repeat)
    out = pl.DataFrame({"longest": longest, "total": total, "repeat": repeat, "null": texts.is_null()})
    out = _cjk_words(out.with_row_index("row"), texts, cpw, has_cjk)
    return out.select("longest", pl.when(~pl.col("null")).then(pl.col("total")).alias("total"), "repeat")


def _cjk_words(out: pl.DataFrame, texts: pl.Series, cpw: float, has_cjk: pl.Series) -> pl.DataFrame:
    """``out`` (row, longest, total, ...) with longest and total recounted for texts with CJK."""
    cjk = pl.DataFrame({"t": texts}).with_row_index("row").filter(has_cjk)
    if not cjk.height:
        return out
    per = cjk.select("row", pl.col("t").str.split("\n").list.eval(_words(pl.element(), cpw)).alias("w"))
    exact = per.select(
        "row",
        pl.col("w").list.max().cast(pl.UInt32).alias("longest"),
        pl.col("w").list.sum().cast(pl.UInt32).alias("total"),
    )
    return out.update(exact.cast({"longest": out.schema["longest"], "total": out.schema["total"]}), on="row")


def _line_stats_reference(texts: pl.Series, cpw: float, has_cjk: pl.Series, min_chars: int) -> pl.DataFrame:
    """``_line_stats`` in Polars."""
    frame = pl.DataFrame({"t": texts}).with_row_index("row")
    lines = frame.select("row", pl.col("t").str.split("\n")).explode("t")
    line, stripped = pl.col("t"), pl.col("t").str.strip_chars()
    per_line = lines.select(
        "row",
        # a one-space regex counts ~1.7x faster than the literal search here (same counts)
        (line.str.count_matches(" ") + (line.str.len_bytes() > 0).cast(pl.UInt32)).alias("w"),
        pl.when(stripped.str.len_chars() >= min_chars).then(stripped.hash()).alias("k"),
    )
    agg = per_line.group_by("row").agg(
        longest=pl.col("w").max(),
        total=pl.col("w").sum(),
        nk=pl.col("k").count(),
        uk=pl.col("k").drop_nulls().n_unique(),
    )
    out = _cjk_words(
        frame.select("row", pl.col("t").is_null().alias("null")).join(agg, on="row", how="left"), texts, cpw, has_cjk
    )
    return out.select(
        pl.col("longest").fill_null(0).cast(pl.Int32),
        pl.when(~pl.col("null")).then(pl.col("total")).cast(pl.Int32).alias("total"),
        pl.when(pl.col("nk") > 0).then(1.0 - pl.col("uk") / pl.col("nk")).otherwise(0.0).alias("repeat"),
    )


def _has_cjk(texts: pl.Series, buf: TextBytes | None = None) -> pl.Series:
    """Whether each text has Han or kana; the regex runs only on texts that are not plain ASCII (with
    the column's bytes at hand, one pass over them settles the all-ASCII case)."""
    out = pl.Series("cjk", [False] * len(texts), dtype=pl.Boolean)
    if buf is not None and (not len(buf[0]) or int(buf[0].max()) < 0x80):
        return out
    wide = (texts.str.len_bytes() != texts.str.len_chars()).fill_null(False)
    if wide.any():
        idx = wide.arg_true()
        out = out.scatter(idx, texts.gather(idx).str.contains(P.HAN_KANA).fill_null(False))
    return out


class ReadabilityCheck(Check[ReadabilityConfig]):
    name = "readability"
    cost = 10
    Config = ReadabilityConfig
    reads = ("response",)
    concurrent = True

    def _features(self, work: pl.DataFrame, buf: TextBytes) -> pl.DataFrame:
        cfg = self.config
        r = pl.col("r")
        has_cjk = _has_cjk(work["r"], buf)
        lines = _line_stats(work["r"], cfg.cjk_chars_per_word, has_cjk, cfg.repeat_min_line_chars, buf)
        return work.select(
            lines["longest"].alias("readability_longest_paragraph_words"),
            ((r.str.count_matches("```", literal=True) + 1) // 2).cast(pl.Int32).alias("readability_code_blocks"),
            lines["repeat"].alias("readability_repeat_line_frac"),
            _ngram_repeat(work["r"], cfg.ngram_n, has_cjk, buf).alias("readability_ngram_repeat_frac"),
            pl.lit(None, pl.Float64).alias("readability_compression_ratio"),
            _junk_runs(work["r"], cfg, buf).alias("readability_junk_run"),
            lines["total"].alias("readability_reasoning_words"),
            _words(pl.col("a"), cfg.cjk_chars_per_word).fill_null(0).cast(pl.Int32).alias("readability_answer_words"),
            pl.col("task"),
            pl.col("a").is_not_null().alias("has_answer"),
        )

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        cfg = self.config
        reasoning, answer = split_think(df["response"])
        task = pl.col("task") if "task" in df.columns else pl.lit("general")
        if reasoning.null_count():  # no </think>: the whole response is reasoning (its <think> dropped)
            idx = reasoning.is_null().arg_true()  # only those rows: a replace over all was a column copy
            reasoning = reasoning.scatter(idx, df["response"].gather(idx).str.replace(r"^\s*<think>", ""))
        work = df.select(
            reasoning.alias("r"),
            answer.alias("a"),
            task.fill_null("general").alias("task"),
        )
        # zlib releases the GIL, and so does Polars: compress in a thread while Polars does the rest.
        with ThreadPoolExecutor(1) as pool:
            buf = string_buffer(work["r"])  # the reasoning's bytes, once for every pass over them
            ratios = pool.submit(
                compression_ratios,
                work["r"],
                cfg.compression_level,
                cfg.compression_min_bytes,
                cfg.compression_window,
                buf,
            )
            feats = self._features(work, buf)
            feats = feats.with_columns(ratios.result().alias("readability_compression_ratio"))
        budget = (
            pl.when(pl.col("task") == "math")
            .then(cfg.max_words_math)
            .when(pl.col("task") == "code")
            .then(cfg.max_words_code)
            .otherwise(cfg.max_words_general)
        )
        codes = {
            "readability.long_paragraph": pl.col("readability_longest_paragraph_words") > cfg.max_paragraph_words,
            "readability.code_block": (pl.col("task") != "code")
            & (pl.col("readability_code_blocks") > cfg.max_code_blocks),
            "readability.repeated_lines": pl.col("readability_repeat_line_frac") > cfg.max_repeat_line_frac,
            "readability.repeated_ngrams": pl.col("readability_ngram_repeat_frac") > cfg.max_ngram_repeat_frac,
            "readability.compressible": pl.col("readability_compression_ratio") > cfg.max_compression_ratio,
            "readability.junk": pl.col("readability_junk_run") > 0,
            "readability.too_long": pl.col("readability_reasoning_words") > budget,
            "readability.short_summary": pl.col("has_answer")
            & (pl.col("readability_answer_words") < cfg.min_answer_words),
        }
        masks = feats.select(**{c: m.fill_null(False) for c, m in codes.items()})
        score = masks.select(pl.when(pl.any_horizontal(pl.all())).then(0.0).otherwise(1.0).alias("s"))["s"]
        cols = feats.drop("task", "has_answer")
        df = df.with_columns(
            score.alias("readability_score"), *cols.get_columns(), *[masks[c].alias(f"_{c}") for c in codes]
        )
        df = add_reasons(df, {c: pl.col(f"_{c}") for c in codes})
        return df.drop(*[f"_{c}" for c in codes])
