"""Splitting an R1-style response into reasoning and answer, as Polars expressions.

``<think>`` may be absent from the response when the chat template pre-fills it (R1's template ends the
prompt with ``<think>\\n``), so the reasoning is everything before the last ``</think>``; the answer is
everything after it. A response without ``</think>`` has no answer part: nothing is ever taken from
inside the reasoning.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from curate.native import kernels, string_buffer

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def reasoning_expr(col: str = "response") -> pl.Expr:
    """Text between the (optional) opening tag and the last ``</think>``; null when never closed."""
    c = pl.col(col)
    parts = c.str.split("</think>")
    before = parts.list.slice(0, parts.list.len() - 1).list.join("</think>")
    before = pl.when(c.str.contains("</think>", literal=True)).then(before).otherwise(None)
    return before.str.strip_chars_start().str.strip_prefix("<think>").alias("_reasoning")


def answer_expr(col: str = "response") -> pl.Expr:
    """Text after the last ``</think>``; null when the response has none."""
    c = pl.col(col)
    # split().last() is exact for several closing tags and ~7x cheaper than a backtracking regex.
    return (
        pl.when(c.str.contains("</think>", literal=True))
        .then(c.str.split("</think>").list.last())
        .otherwise(None)
        .alias("_answer")
    )


def split_think(responses: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(reasoning, answer) of each response, as ``reasoning_expr`` and ``answer_expr`` give them: one
    compiled pass when it is built (it finds the last ``</think>`` once instead of splitting each text
    four times), else those expressions."""
    k = kernels()
    if k is None:
        both = pl.DataFrame({"response": responses}).select(reasoning_expr(), answer_expr())
        return both["_reasoning"], both["_answer"]
    s = responses.cast(pl.String)
    data, offsets = string_buffer(s)
    n = len(s)
    r, a = np.empty(len(data), np.uint8), np.empty(len(data), np.uint8)
    r_off, a_off, closed = np.empty(n + 1, np.int64), np.empty(n + 1, np.int64), np.empty(n, np.uint8)
    k.think_split(data, offsets, r, r_off, a, a_off, closed)
    valid = pa.py_buffer(np.packbits(closed.view(bool) & s.is_not_null().to_numpy(), bitorder="little"))

    def column(name: str, buf: np.ndarray, off: np.ndarray) -> pl.Series:
        arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(off), pa.py_buffer(buf[: off[-1]]), valid)
        return pl.Series(name, arr, dtype=pl.String)

    return column("_reasoning", r, r_off), column("_answer", a, a_off)


def split_response(text: str) -> tuple[str | None, str | None]:
    """Python form of the two expressions above, for reward functions scoring one completion."""
    idx = text.rfind(THINK_CLOSE)
    if idx < 0:
        return None, None
    reasoning = text[:idx].lstrip()
    if reasoning.startswith(THINK_OPEN):
        reasoning = reasoning[len(THINK_OPEN) :]
    return reasoning, text[idx + len(THINK_CLOSE) :]
