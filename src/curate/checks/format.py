"""The ``format`` check: R1 output form, one closed ``<think>`` block first, then a non-empty answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from curate.checks.base import Check, add_reasons
from curate.native import kernels, string_buffer

# Chat-template control tokens: <|im_end|>, <|endoftext|>, <|eot_id|>, DeepSeek's fullwidth
# <｜end▁of▁sentence｜>, Llama-2's </s> and [INST].
SPECIAL_TOKEN_PATTERN = r"<\|[A-Za-z0-9_]{1,40}\|>|<｜[^｜>]{1,40}｜>|</s>|\[/?INST\]"
# Bytes a tokenizer could not decode (U+FFFD) and C0 controls other than tab/newline/CR: a broken sample
# (a small or diverging model emits NULs), kept and rejected rather than quarantined, so that it still
# counts in its prompt's pass rate. Several small classes, not one: the regex engine scans a class of up to
# 9 bytes with a fast prefilter, and the single 30-byte class costs 40x more over 8 KB traces.
CONTROL_CHAR_PATTERNS = (r"[\x00-\x08]", r"[\x0E-\x16]", r"[\x17-\x1F]", r"[\x0B\x0C\x7F]", r"\x{FFFD}")


@dataclass(frozen=True, slots=True)
class FormatConfig:
    template: Literal["r1", "r1_zero"] = "r1"
    # R1's chat template ends the prompt with "<think>\n", so completions start inside the block.
    allow_prefilled_think: bool = True
    special_token_pattern: str = SPECIAL_TOKEN_PATTERN


class FormatCheck(Check[FormatConfig]):
    name = "format"
    cost = 0
    concurrent = True
    Config = FormatConfig
    reads = ("response", "finish_reason")

    def _features(self, df: pl.DataFrame) -> pl.DataFrame:
        """Per row: n_open, n_close, starts_open, answer_chars (null: no </think>), length_stop, special,
        control, and for ``r1_zero`` the answer itself. One compiled pass when it is built and the special
        token pattern is the default; Polars string expressions otherwise (the reference)."""
        cfg = self.config
        finish = pl.col("finish_reason") if "finish_reason" in df.columns else pl.lit(None, pl.String)
        length_stop = (finish == "length").fill_null(False).alias("length_stop")
        k = kernels()
        if k is None or cfg.template != "r1" or cfg.special_token_pattern != SPECIAL_TOKEN_PATTERN:
            return self._features_reference(df, length_stop)
        s = df["response"].cast(pl.String)
        data, offsets = string_buffer(s)
        n = len(s)
        n_open, n_close, answer = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32)
        starts_open, special, control = np.empty(n, np.uint8), np.empty(n, np.uint8), np.empty(n, np.uint8)
        k.format_scan(data, offsets, n_open, n_close, starts_open, answer, special, control)
        valid = s.is_not_null()
        cols = {
            "n_open": n_open,
            "n_close": n_close,
            "starts_open": starts_open.view(bool),
            "answer_chars": answer,
            "special": special.view(bool),
            "control": control.view(bool),
        }
        feats = pl.DataFrame(cols).with_columns(pl.when(valid).then(pl.col(c)).alias(c) for c in cols)
        return feats.with_columns(
            pl.when(pl.col("answer_chars") >= 0).then(pl.col("answer_chars")).alias("answer_chars"),
            df.with_columns(length_stop)["length_stop"],  # with_columns: a literal broadcast to the height
        )

    def _features_reference(self, df: pl.DataFrame, length_stop: pl.Expr) -> pl.DataFrame:
        cfg = self.config
        r = pl.col("response")
        # Literal searches only: a regex over 8 KB traces costs 50x more (benchmarks/bench_check.py).
        tmp = df.select(
            r.str.count_matches("<think>", literal=True).cast(pl.Int32).alias("n_open"),
            r.str.count_matches("</think>", literal=True).cast(pl.Int32).alias("n_close"),
            r.str.strip_chars_start().str.starts_with("<think>").alias("starts_open"),
            # After the first </think>; several closes are rejected as multiple_think anyway.
            # (str.find returns a byte offset but str.slice counts characters: split instead.)
            r.str.splitn("</think>", 2).struct.field("field_1").str.strip_chars().alias("answer"),
            length_stop,
            r.str.contains(cfg.special_token_pattern).alias("special"),
            pl.any_horizontal(r.str.contains(p) for p in CONTROL_CHAR_PATTERNS).alias("control"),
        )
        return tmp.with_columns(pl.col("answer").str.len_chars().cast(pl.Int32).alias("answer_chars"))

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        cfg = self.config
        tmp = self._features(df)
        n_open, n_close, starts_open = pl.col("n_open"), pl.col("n_close"), pl.col("starts_open")
        answer_chars = pl.col("answer_chars")
        truncated = pl.col("length_stop") | ((n_close == 0) & (n_open >= 1))
        no_block = (n_open == 0) & (n_close == 0)
        # With a pre-filled "<think>" (R1's chat template) no opening tag is fine when the block closes.
        missing = no_block | ((n_open >= 1) & ~starts_open) if cfg.allow_prefilled_think else ~starts_open
        empty = (n_close >= 1) & ~truncated & (answer_chars.is_null() | (answer_chars == 0))
        codes: dict[str, pl.Expr] = {
            "format.truncated": truncated & ~no_block | pl.col("length_stop"),
            "format.missing_think": missing & ~truncated,
            "format.multiple_think": (n_open > 1) | (n_close > 1),
            "format.empty_answer": empty,
            "format.special_token": pl.col("special"),
            "format.control_chars": pl.col("control"),
        }
        if cfg.template == "r1_zero":
            has_tag = pl.col("answer").str.contains(r"(?s)<answer>.*?\S.*?</answer>").fill_null(False)
            codes["format.missing_answer_tag"] = (n_close >= 1) & ~truncated & ~empty & ~has_tag
        flags = tmp.select([m.fill_null(False).alias(code) for code, m in codes.items()])
        bad = pl.any_horizontal(pl.all())
        df = df.with_columns(
            flags.select(pl.when(bad).then(0.0).otherwise(1.0).alias("format_score")).to_series(),
            tmp["n_open"].cast(pl.Int32).alias("format_think_blocks"),
            tmp.select(answer_chars.fill_null(0).cast(pl.Int32)).to_series().alias("format_answer_chars"),
        )
        return add_reasons(df, {code: flags[code] for code in codes})
