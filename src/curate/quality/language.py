"""The ``lang`` check and R1's language-consistency reward.

A response (reasoning and answer) is cleaned of what carries no language (code, LaTeX, numbers,
symbols, identifiers, URLs), cut into segments (Latin sentences; runs of CJK or of another non-Latin
script, cut out of the sentence they sit in) and each segment gets a language:

* CJK runs by script (kana: ja, Hangul: ko, Han only: zh), at any length, so a two-character Chinese
  word inside English reasoning is caught;
* Latin sentences with enough English function words are English without a model call (most of an
  English trace, and the reason the check is fast); other long-enough segments go to fastText in one
  batched call; a label under ``min_confidence`` leaves a Latin segment uncounted and gives an
  other-script run its script (Cyrillic, Arabic...) as label;
* short Latin segments (variable names, "Zürich", "Hmm.") are not counted at all.

The consistency score is the share of counted words that are in the target language (R1 phase 2's
reward); a CJK character counts as 1/``cjk_chars_per_word`` of a word. No counted word: 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa

from curate.checks.base import Check, add_reasons
from curate.checks.text import split_think
from curate.native import kernels, string_buffer
from curate.quality import _patterns as P
from curate.quality._lid import fasttext_predict, langdetect_predict

_CANON = {lab: lang for lang, labs in P.EQUIVALENT.items() for lab in labs if lang in ("zh", "no", "sr")}
_SEG_SCHEMA = {"seg": pl.String, "target": pl.String, "label": pl.String, "words": pl.Float64, "part": pl.UInt8}
_COLS = list(_SEG_SCHEMA)


@dataclass(frozen=True, slots=True)
class LanguageConfig:
    default_language: str = "en"  # target where the row's ``language`` is null or absent
    # fastText is unreliable below ~4 words / 20 characters (measured on MATH-500 solution sentences:
    # false non-English labels fall from 3.1% of 2-3 word segments to <0.5% from 4 words on).
    min_words: int = 4
    min_chars: int = 20
    # A segment is foreign only when fastText's top label is sure (>= min_confidence), gives the target
    # under target_floor among its top_k, and the segment has foreign_min_words words; otherwise a
    # non-target label leaves it uncounted. Measured: English solution sentences that fastText labels
    # "it"/"es" ("Medicine costs per month") keep p(en) >= 0.04; real foreign sentences have p(en) <= 0.03.
    min_confidence: float = 0.5
    target_floor: float = 0.03
    foreign_min_words: int = 5
    top_k: int = 3
    en_gate_min_hits: int = 2  # English function words needed to label a sentence "en" directly...
    en_gate_share: float = 0.2  # ...and their share of its words
    cjk_chars_per_word: float = 1.5  # Chinese averages ~1.5 characters per word
    max_foreign_segments: int = 0  # lang.mixed when more segments than this are in another language
    wrong_language_below: float = 0.5  # lang.wrong_language when the target share is below this...
    min_counted_words: float = 5.0  # ...and at least this many words were identified
    short_backend: Literal["none", "langdetect"] = "none"  # second opinion where fastText is unsure
    langdetect_min_words: int = 4
    langdetect_min_prob: float = 0.9


def _canon(expr: pl.Expr) -> pl.Expr:
    """ISO 639-1 code from a tag ("zh-CN" -> "zh"), with fastText's dialect labels folded in."""
    base = expr.str.to_lowercase().str.extract(r"^([a-z]+)", 1)
    return base.replace(_CANON)


def _fasttext(hard: pl.DataFrame, cfg: LanguageConfig) -> pl.DataFrame:
    """Add ``label``: fastText's when it is sure of a language and sure it is not the target, the
    target when that is its top label, null when it hesitates (``_second_opinion`` may then decide)."""
    labels, probs = fasttext_predict(hard["seg"].str.strip_chars().to_list(), k=cfg.top_k)
    hard = hard.with_columns(
        _l=pl.Series(labels, dtype=pl.List(pl.String)), _p=pl.Series(probs, dtype=pl.List(pl.Float64))
    )
    tgt = pl.col("target")
    p_target: pl.Expr = pl.lit(0.0)
    for i in reversed(range(cfg.top_k)):
        li = _canon(pl.col("_l").list.get(i, null_on_oob=True))
        p_target = pl.when(li == tgt).then(pl.col("_p").list.get(i, null_on_oob=True)).otherwise(p_target)
    top = _canon(pl.col("_l").list.first())
    sure_foreign = (
        (pl.col("_p").list.first() >= cfg.min_confidence)
        & (p_target < cfg.target_floor)
        & (pl.col("words") >= cfg.foreign_min_words)
    )
    label = pl.when(top == tgt).then(tgt).when(sure_foreign).then(top).otherwise(pl.lit(None, pl.String))
    hard = hard.with_columns(label=label)
    if cfg.short_backend == "langdetect":
        hard = _second_opinion(hard, cfg)
    return hard.drop("_l", "_p")


def _latin(segs: pl.DataFrame, cfg: LanguageConfig) -> pl.DataFrame:
    seg = pl.col("seg")
    cand = segs.filter((pl.col("words") >= cfg.min_words) & (seg.str.len_chars() >= cfg.min_chars))
    hits = seg.str.count_matches(P.EN_GATE)
    gated = (hits >= cfg.en_gate_min_hits) & (hits >= cfg.en_gate_share * pl.col("words"))
    cand = cand.with_columns(gated.alias("gated"))
    easy = cand.filter("gated").with_columns(label=pl.lit("en"), part=pl.lit(0, pl.UInt8))
    hard = _fasttext(cand.filter(~pl.col("gated")), cfg).filter(pl.col("label").is_not_null())
    return pl.concat([easy.select(_COLS), hard.with_columns(part=pl.lit(1, pl.UInt8)).select(_COLS)])


def _second_opinion(hard: pl.DataFrame, cfg: LanguageConfig) -> pl.DataFrame:
    """Ask langdetect about the segments fastText hesitated on; keep its answer when it is sure."""
    unsure = hard.with_row_index("_i").filter(pl.col("label").is_null() & (pl.col("words") >= cfg.langdetect_min_words))
    if unsure.is_empty():
        return hard
    labels, probs = langdetect_predict(unsure["seg"].to_list())
    label = hard["label"].to_list()
    for i, lab, p in zip(unsure["_i"].to_list(), labels, probs, strict=True):
        if p >= cfg.langdetect_min_prob:
            label[i] = lab
    return hard.with_columns(label=pl.Series(label, dtype=pl.String)).with_columns(label=_canon(pl.col("label")))


def _other(segs: pl.DataFrame, cfg: LanguageConfig) -> pl.DataFrame:
    seg = pl.col("seg")
    first = seg.str.slice(0, 1)
    script: pl.Expr = pl.lit(None, pl.String)
    for name, cls in reversed(P.OTHER_SCRIPTS.items()):
        script = pl.when(first.str.contains(f"^{cls}")).then(pl.lit(name)).otherwise(script)
    segs = segs.with_columns(script=script)
    long = (pl.col("words") >= cfg.min_words) & (seg.str.len_chars() >= cfg.min_chars)
    segs = segs.with_columns(long.alias("long"))
    hard = _fasttext(segs.filter("long"), cfg).with_columns(
        label=pl.col("label").fill_null(pl.col("script")), part=pl.lit(2, pl.UInt8)
    )
    short = segs.filter(~pl.col("long")).with_columns(label=pl.col("script"), part=pl.lit(3, pl.UInt8))
    return pl.concat([hard.select(_COLS), short.select(_COLS)])


def _cjk(segs: pl.DataFrame, cfg: LanguageConfig) -> pl.DataFrame:
    seg = pl.col("seg")
    hangul = seg.str.count_matches(r"\p{Hangul}+")
    words = seg.str.count_matches(P.HAN_KANA) / cfg.cjk_chars_per_word + hangul
    label = (
        pl.when(seg.str.contains(r"[\p{Hiragana}\p{Katakana}]"))
        .then(pl.lit("ja"))
        .when(hangul > 0)
        .then(pl.lit("ko"))
        .otherwise(pl.lit("zh"))
    )
    out = segs.select(
        "seg", "target", label.alias("label"), words.cast(pl.Float64).alias("words"), part=pl.lit(4, pl.UInt8)
    )
    return out.filter(pl.col("words") > 0)


def _clean_segments(text: pl.Series) -> pl.Series:
    """Cleaned text cut into segments (a list per row), one per Latin sentence or script run."""
    return _cleaned(text).str.split("\n")


def _cleaned(text: pl.Series) -> pl.Series:
    """The text with code, LaTeX, URLs and symbols removed and a newline at every segment boundary: the
    compiled pass for plain-ASCII texts when it is built, the regexes of ``_cleaned_reference`` for the
    others (and for every text without it)."""
    k = kernels()
    if k is None:
        return _cleaned_reference(text)
    text = text.cast(pl.String)
    plain = (text.str.len_bytes() == text.str.len_chars()).fill_null(False)
    n_plain = int(plain.sum())
    if n_plain == 0:
        return _cleaned_reference(text)
    sub = text if n_plain == len(text) else text.filter(plain)
    buf, out_offsets = _clean_latin(k, *string_buffer(sub))
    arr = pa.LargeStringArray.from_buffers(
        len(sub), pa.py_buffer(out_offsets), pa.py_buffer(buf[: out_offsets[-1]].tobytes())
    )
    cleaned = pl.Series(text.name, arr, dtype=pl.String)
    if n_plain == len(text):
        return cleaned
    rest = (~plain).arg_true()
    out = pl.repeat(None, len(text), dtype=pl.String, eager=True).alias(text.name)
    return out.scatter(plain.arg_true(), cleaned).scatter(rest, _cleaned_reference(text.gather(rest)))


def _cleaned_buffers(text: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """``_cleaned(text)`` as (bytes, int64 offsets; the bytes may run past the last offset). Where every
    text is ASCII (most English traces) the compiled pass writes them directly: no Series is built only
    to be turned back into buffers (two copies of the column: 0.1 of lang's 1.6 CPU-s on 20k traces)."""
    k = kernels()
    if k is not None:
        data, offsets = string_buffer(text.cast(pl.String))  # nulls: empty, as they clean to no segment
        if not len(data) or int(data.max()) < 0x80:
            return _clean_latin(k, data, offsets)
    return string_buffer(_cleaned(text))


def _clean_latin(k: Any, data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The compiled cleaning of ASCII texts: (bytes, offsets); the bytes may run past the last offset."""
    buf, out = np.empty(len(data), dtype=np.uint8), np.empty(len(offsets), dtype=np.int64)
    k.clean_latin(data, offsets, buf, out)
    return buf, out


def _cleaned_reference(text: pl.Series) -> pl.Series:
    text = text.str.replace_all(P.STRIP_BLOCKS, "").str.replace_all(P.STRIP_TOKENS, "")
    # Script runs are non-ASCII: plain ASCII texts (most English traces) have none to cut out.
    wide = (text.str.len_bytes() != text.str.len_chars()).fill_null(False)
    if wide.any():
        idx = wide.arg_true()
        text = text.scatter(idx, text.gather(idx).str.replace_all(P.SCRIPT_RUN, "\n${0}\n"))
    return text.str.replace_all(P.SENTENCE_END, "\n")


def language_segments(texts: pl.Series, targets: pl.Series, config: LanguageConfig | None = None) -> pl.DataFrame:
    """One row per counted segment: ``row`` (index into ``texts``), ``label``, ``words``, ``is_target``."""
    cfg = config or LanguageConfig()
    base = pl.DataFrame({"text": texts.cast(pl.String), "target": targets.cast(pl.String)}).with_row_index("row")
    segs = _segments(base, cfg)
    # Traces repeat themselves ("Wait,", "Let me check.", whole sentences): each distinct (segment,
    # target) is labelled once - one regex pass and one fastText line each - and the labels joined back.
    labelled = _label_unique(segs.select("seg", "target").unique(), cfg)
    # The label's code and whether it is the target, per distinct segment: computed on every segment
    # after the join, these string expressions were a third of the check (280k segments of 4k traces).
    tgt = pl.col("target")
    label = _canon(pl.col("label")).fill_null(pl.col("label"))  # script codes ("Cyrl") pass through
    is_target = (
        (label == tgt)
        | (pl.col("label") == tgt.replace_strict(P.TARGET_SCRIPT, default="Latn"))
        | ((tgt == "ja") & (label == "zh"))
    )
    labelled = labelled.with_columns(label=label, is_target=is_target)
    out = segs.join(labelled, on=["seg", "target"], how="inner", maintain_order="left")
    # The order of the per-kind labelling: easy and hard Latin, long and short other-script, CJK.
    return out.sort("part", maintain_order=True).select("row", "target", "label", "words", "is_target")


def _segments(base: pl.DataFrame, cfg: LanguageConfig) -> pl.DataFrame:
    """(row, target, seg): every non-empty stripped segment of every text, in order (compiled when built)."""
    target = _canon(pl.col("target")).fill_null(cfg.default_language).alias("target")
    k = kernels()
    if k is None:
        segs = base.select("row", target, _clean_segments(base["text"]).alias("seg")).explode("seg")
        seg = pl.col("seg").str.strip_chars()
        return segs.select("row", "target", seg.alias("seg")).filter(pl.col("seg").str.len_bytes() > 0)
    data, offsets = _cleaned_buffers(base["text"])
    data = data[: offsets[-1]]
    most = int(np.count_nonzero(data == 10)) + len(offsets)  # a segment per line at most
    buf, seg_offsets, rows = np.empty(len(data), np.uint8), np.empty(most + 1, np.int64), np.empty(most, np.uint32)
    n = k.split_segments(data, offsets, buf, seg_offsets, rows)
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(seg_offsets[: n + 1]), pa.py_buffer(buf[: seg_offsets[n]]))
    row = pl.Series("row", rows[:n])
    return pl.DataFrame([row]).with_columns(
        base.select(target)["target"].gather(row), pl.Series("seg", arr, dtype=pl.String)
    )


def _label_unique(segs: pl.DataFrame, cfg: LanguageConfig) -> pl.DataFrame:
    """(seg, target, label, words, part) of each counted distinct segment; ``part`` orders the kinds."""
    segs = segs.with_columns(
        kind=pl.when(pl.col("seg").str.contains(f"^[{P.CJK_CHARS}]"))
        .then(pl.lit("cjk"))
        .when(pl.col("seg").str.contains(f"^[{P.OTHER_CHARS}]"))
        .then(pl.lit("other"))
        .otherwise(pl.lit("latin")),
        # Cleaning leaves one space between words (see _patterns.STRIP_TOKENS).
        words=(pl.col("seg").str.count_matches(" ", literal=True) + 1).cast(pl.Float64),
    )
    parts = [
        _latin(segs.filter(pl.col("kind") == "latin"), cfg),
        _other(segs.filter(pl.col("kind") == "other"), cfg),
        _cjk(segs.filter(pl.col("kind") == "cjk"), cfg),
    ]
    return pl.concat([p.cast(_SEG_SCHEMA) for p in parts])  # type: ignore[arg-type]


def language_stats(texts: pl.Series, targets: pl.Series, config: LanguageConfig | None = None) -> pl.DataFrame:
    """Per text, in order: lang_target_share, lang_detected, lang_foreign_segments, lang_foreign_words."""
    segs = language_segments(texts, targets, config)
    foreign = ~pl.col("is_target")
    per_row = segs.group_by("row").agg(
        target_w=pl.col("words").filter("is_target").sum(),
        foreign_w=pl.col("words").filter(foreign).sum(),
        lang_foreign_segments=foreign.sum().cast(pl.Int32),
    )
    majority = (
        segs.group_by("row", "label")
        .agg(pl.col("words").sum())
        .sort(["row", "words", "label"], descending=[False, True, False])
        .group_by("row", maintain_order=True)
        .agg(lang_detected=pl.col("label").first())
    )
    total = pl.col("target_w") + pl.col("foreign_w")
    rows = pl.DataFrame({"row": pl.arange(0, len(texts), eager=True).cast(pl.UInt32)})
    out = rows.join(per_row, on="row", how="left").join(majority, on="row", how="left")
    return out.select(
        pl.when(total > 0).then(pl.col("target_w") / total).otherwise(1.0).alias("lang_target_share"),
        pl.col("lang_detected"),
        pl.col("lang_foreign_segments").fill_null(0),
        pl.col("foreign_w").fill_null(0.0).alias("lang_foreign_words"),
        total.fill_null(0.0).alias("_counted"),
    )


def language_consistency(text: str, target: str = "en") -> float:
    """R1's language-consistency reward: share of the text's identified words in ``target`` (1.0: none)."""
    return language_consistency_batch([text], [target])[0]


def language_consistency_batch(texts: Sequence[str], targets: Sequence[str] | str = "en") -> list[float]:
    """``language_consistency`` for many completions in one batched model call (GRPO groups)."""
    tg = [targets] * len(texts) if isinstance(targets, str) else list(targets)
    stats = language_stats(pl.Series(list(texts), dtype=pl.String), pl.Series(tg, dtype=pl.String))
    return [float(x) for x in stats["lang_target_share"]]


class LanguageCheck(Check[LanguageConfig]):
    name = "lang"
    cost = 20
    Config = LanguageConfig
    reads = ("response", "language")
    concurrent = True

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        cfg = self.config
        # The reasoning and the answer; a response that never closes </think> is all reasoning.
        reasoning, answer = split_think(df["response"])
        text = pl.concat_str([reasoning.fill_null(df["response"]), answer.fill_null("")], separator="\n")
        lang = pl.col("language") if "language" in df.columns else pl.lit(None, pl.String)
        inp = df.select(text.alias("text"), lang.fill_null(cfg.default_language).alias("target"))
        stats = language_stats(inp["text"], inp["target"], cfg)
        wrong = (pl.col("lang_target_share") < cfg.wrong_language_below) & (pl.col("_counted") >= cfg.min_counted_words)
        mixed = (pl.col("lang_foreign_segments") > cfg.max_foreign_segments) & ~wrong
        codes = stats.select(wrong.alias("w"), mixed.alias("m"))
        df = df.with_columns(stats.drop("_counted"), _w=codes["w"], _m=codes["m"])
        df = add_reasons(df, {"lang.wrong_language": pl.col("_w"), "lang.mixed": pl.col("_m")})
        return df.drop("_w", "_m")
