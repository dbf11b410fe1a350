"""The ``format`` check: R1 output form, one closed ``<think>`` block first, then a non-empty answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import polars as pl

from curate.checks.base import Scope, add_reasons

# Chat-template control tokens: <|im_end|>, <|endoftext|>, <|eot_id|>, DeepSeek's fullwidth
# <｜end▁of▁sentence｜>, Llama-2's </s> and [INST].
SPECIAL_TOKEN_PATTERN = r"<\|[A-Za-z0-9_]{1,40}\|>|<｜[^｜>]{1,40}｜>|</s>|\[/?INST\]"


@dataclass(frozen=True, slots=True)
class FormatConfig:
    template: Literal["r1", "r1_zero"] = "r1"
    # R1's chat template ends the prompt with "<think>\n", so completions start inside the block.
    allow_prefilled_think: bool = True
    special_token_pattern: str = SPECIAL_TOKEN_PATTERN


class FormatCheck:
    name: ClassVar[str] = "format"
    scope: ClassVar[Scope] = "row"
    cost: ClassVar[int] = 0
    tasks: ClassVar[frozenset[str] | None] = None
    default_enabled: ClassVar[bool] = True
    Config: ClassVar[type] = FormatConfig

    def __init__(self, config: FormatConfig | None = None) -> None:
        self.config = config or FormatConfig()

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        cfg = self.config
        r = pl.col("response")
        n_open = r.str.count_matches("<think>", literal=True)
        n_close = r.str.count_matches("</think>", literal=True)
        stripped = r.str.strip_chars_start()
        starts_open = stripped.str.starts_with("<think>")
        answer = r.str.extract(r"(?s)^.*</think>(.*)$", 1)
        finish = pl.col("finish_reason") if "finish_reason" in df.columns else pl.lit(None, pl.String)

        truncated = (finish == "length").fill_null(False) | ((n_close == 0) & (n_open >= 1))
        if cfg.allow_prefilled_think:
            # No opening tag: fine only when the block closes and nothing but reasoning precedes it.
            missing = ((n_open == 0) & (n_close == 0)) | ((n_open >= 1) & ~starts_open)
        else:
            missing = ~starts_open
        missing = missing & ~truncated | ((n_open == 0) & (n_close == 0))
        multiple = (n_open > 1) | (n_close > 1)
        answer_text = answer.str.strip_chars()
        empty = (n_close >= 1) & ~truncated & (answer_text.is_null() | (answer_text.str.len_chars() == 0))
        special = r.str.contains(cfg.special_token_pattern)
        codes: dict[str, pl.Expr] = {
            "format.truncated": truncated,
            "format.missing_think": missing & ~truncated,
            "format.multiple_think": multiple,
            "format.empty_answer": empty,
            "format.special_token": special,
        }
        if cfg.template == "r1_zero":
            has_tag = answer.str.contains(r"(?s)<answer>.*?\S.*?</answer>").fill_null(False)
            codes["format.missing_answer_tag"] = (n_close >= 1) & ~truncated & ~empty & ~has_tag
        bad = pl.any_horizontal([m.fill_null(False) for m in codes.values()])
        df = df.with_columns(
            pl.when(bad).then(0.0).otherwise(1.0).alias("format_score"),
            n_open.cast(pl.Int32).alias("format_think_blocks"),
            answer_text.str.len_chars().fill_null(0).cast(pl.Int32).alias("format_answer_chars"),
        )
        return add_reasons(df, codes)
