"""Inspection helpers for notebooks: funnel frames, matplotlib charts, samples rendered as HTML.

The notebooks only call these, so what they show is tested library code. matplotlib is imported
inside the plotting functions (it is a ``dev`` dependency, not a runtime one); each function draws on
the ``ax`` it is given, or a new figure, and returns the axes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.checks.funnel import REASONS, Funnel
from curate.checks.text import answer_expr, reasoning_expr
from curate.recipes.select import length_expr
from curate.schema import reason_codes
from curate.store import DatasetVersion

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def funnel_table(checked: pl.DataFrame) -> pl.DataFrame:
    """One row per reason code: check, rows with it, share of all rows, meaning; most frequent first.

    A row can carry several reasons, so shares add up to more than the rejected share.
    """
    return Funnel.from_frame(checked).frame(reason_codes())


def compare_funnels(frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Reason shares side by side, one column per labelled frame (e.g. per checkpoint or version)."""
    out: pl.DataFrame | None = None
    for label, df in frames.items():
        ft = funnel_table(df).select("reason", pl.col("share").alias(label))
        share = float(df.select(pl.col("accepted").mean()).item() or 0.0)
        accepted = pl.DataFrame({"reason": ["(accepted)"], label: [share]})
        ft = pl.concat([accepted, ft])
        out = ft if out is None else out.join(ft, on="reason", how="full", coalesce=True)
    assert out is not None, "no frames to compare"
    return out.fill_null(0.0).sort("reason")


def manifests_frame(versions: Sequence[DatasetVersion]) -> pl.DataFrame:
    """Dataset versions side by side: what they are, where they came from, how many rows survived."""
    rows = []
    for dv in versions:
        m = dv.manifest
        funnel = Funnel.from_dict(m.funnel) if m.funnel else None
        rows.append(
            {
                "ref": m.ref,
                "kind": m.kind,
                "rows": m.rows,
                "total_in": funnel.total if funnel else None,
                "accepted_in": funnel.accepted if funnel else None,
                "checkpoints": ", ".join(map(str, m.source.get("checkpoints", []))),
                "parents": ", ".join(m.parents),
                "config_hash": m.config_hash[:12],
                "created_at": m.created_at,
            }
        )
    return pl.DataFrame(rows)


def contrasting_pair(checked: pl.DataFrame, prompt_id: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """An accepted and a rejected sample of one prompt (the first prompt that has both, by id)."""
    if prompt_id is None:
        both = (
            checked.group_by("prompt_id")
            .agg(pl.col("accepted").any().alias("a"), (~pl.col("accepted")).any().alias("r"))
            .filter(pl.col("a") & pl.col("r"))
        )
        if both.height == 0:
            raise ValueError("no prompt has both an accepted and a rejected sample")
        prompt_id = str(both["prompt_id"].sort()[0])
    rows = checked.filter(pl.col("prompt_id") == prompt_id).sort("sample_index", "sample_id", nulls_last=True)
    return rows.filter(pl.col("accepted")).row(0, named=True), rows.filter(~pl.col("accepted")).row(0, named=True)


def summary_by(checked: pl.DataFrame, by: str = "checkpoint") -> pl.DataFrame:
    """Per group (checkpoint by default): samples, accepted share, verifier-correct share, lengths."""
    verdict = pl.col("math_score") if "math_score" in checked.columns else pl.lit(None, pl.Float64)
    return (
        checked.with_columns(length_expr(checked).alias("_len"))
        .group_by(by)
        .agg(
            pl.len().alias("samples"),
            pl.col("accepted").mean().alias("accepted_share"),
            verdict.mean().alias("correct_share"),
            pl.col("_len").mean().alias("mean_length"),
            pl.col("_len").median().alias("median_length"),
        )
        .sort(by)
    )


def _axes(ax: Axes | None, size: tuple[float, float] = (7, 4)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=size)
    return new


def funnel_bar(funnel: pl.DataFrame, ax: Axes | None = None, title: str = "rejections per reason") -> Axes:
    """Horizontal bars of :func:`funnel_table` (rows per reason), coloured by check."""
    import matplotlib.pyplot as plt

    ax = _axes(ax, (7, 0.35 * max(funnel.height, 4) + 1))
    f = funnel.reverse()  # largest bar on top
    checks = sorted(set(f["check"].to_list()))
    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(checks)}
    ax.barh(f["reason"].to_list(), f["rows"].to_list(), color=[colours[c] for c in f["check"].to_list()])
    for y, n in enumerate(f["rows"].to_list()):
        ax.annotate(str(n), (n, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("rows")
    ax.set_title(title)
    return ax


def length_hist(
    checked: pl.DataFrame, ax: Axes | None = None, bins: int = 30, title: str = "response length, accepted vs rejected"
) -> Axes:
    """Overlaid histograms of response length (tokens_out, else characters) by verdict."""
    ax = _axes(ax)
    df = checked.with_columns(length_expr(checked).alias("_len"))
    unit = "tokens" if "tokens_out" in checked.columns else "chars"
    lo, hi = (float(x or 0) for x in df.select(pl.min("_len").alias("lo"), pl.max("_len").alias("hi")).row(0))
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)] if hi > lo else bins  # shared bins
    for label, accepted in (("accepted", True), ("rejected", False)):
        values = df.filter(pl.col("accepted") == accepted)["_len"].drop_nulls().to_list()
        if values:
            ax.hist(values, bins=edges, alpha=0.55, label=f"{label} ({len(values)})")
    ax.set_xlabel(f"length ({unit})")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.legend()
    return ax


def pass_rate_hist(
    rates: pl.DataFrame, ax: Axes | None = None, by: str = "checkpoint", title: str = "pass rate per prompt"
) -> Axes:
    """Histogram of per-prompt pass rates (a ``pass_rate`` table), one series per ``by`` value."""
    from curate.report.traces import k_over_n_edges, typical_n

    ax = _axes(ax)
    n = typical_n(rates)  # pass rates are k/n: one bin per k, centred on k/n
    edges = k_over_n_edges(n)
    groups = rates[by].unique().sort().to_list() if by in rates.columns else [None]
    for g in groups:
        part = rates if g is None else rates.filter(pl.col(by) == g)
        ax.hist(part["pass_rate"].drop_nulls().to_list(), bins=edges, alpha=0.55, label=str(g))
    ax.set_xlabel(f"pass rate (verifier-correct / decided samples; bins at k/{n})")
    ax.set_ylabel("prompts")
    ax.set_title(title)
    if len(groups) > 1 or groups[0] is not None:
        ax.legend()
    return ax


def score_hist(
    checked: pl.DataFrame,
    column: str = "lang_target_share",
    ax: Axes | None = None,
    by: str | None = "checkpoint",
    bins: int = 20,
    log: bool = True,
    title: str | None = None,
) -> Axes:
    """Histogram of one score column (default: the language-consistency score), per ``by`` group.

    A log count axis by default: these scores pile up at 1.0 and the tail is what matters.
    """
    ax = _axes(ax)
    groups = checked[by].unique().sort().to_list() if by and by in checked.columns else [None]
    for g in groups:
        part = checked if g is None else checked.filter(pl.col(by) == g)  # type: ignore[arg-type]
        ax.hist(part[column].drop_nulls().to_list(), bins=bins, alpha=0.55, label=str(g), log=log)
    ax.set_xlabel(column)
    ax.set_ylabel("samples")
    ax.set_title(title or f"{column} distribution")
    if groups[0] is not None:
        ax.legend()
    return ax


def compare_bar(
    table: pl.DataFrame, ax: Axes | None = None, label: str = "reason", title: str = "share of samples per reason"
) -> Axes:
    """Grouped horizontal bars of a wide table such as :func:`compare_funnels` (one bar per column)."""
    ax = _axes(ax, (7, 0.45 * max(table.height, 4) + 1))
    series = [c for c in table.columns if c != label]
    height = 0.8 / max(len(series), 1)
    ys = list(range(table.height))
    for i, col in enumerate(series):
        ax.barh([y + i * height for y in ys], table[col].to_list(), height=height, label=col)
    ax.set_yticks([y + height * (len(series) - 1) / 2 for y in ys], table[label].to_list())
    ax.invert_yaxis()
    ax.set_title(title)
    ax.legend()
    return ax


def pass_rate_scatter(
    a: pl.DataFrame, b: pl.DataFrame, labels: tuple[str, str] = ("A", "B"), ax: Axes | None = None
) -> Axes:
    """Per-prompt pass rate in ``a`` (x) against ``b`` (y): points above the diagonal improved."""
    ax = _axes(ax, (5, 5))
    pa = a.group_by("prompt_id").agg(pl.col("pass_rate").mean().alias("x"))
    pb = b.group_by("prompt_id").agg(pl.col("pass_rate").mean().alias("y"))
    both = pa.join(pb, on="prompt_id").drop_nulls()
    ax.scatter(both["x"].to_list(), both["y"].to_list(), alpha=0.6)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel(f"pass rate {labels[0]}")
    ax.set_ylabel(f"pass rate {labels[1]}")
    ax.set_title(f"per-prompt pass rate ({both.height} prompts)")
    return ax


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _clip(text: str | None, max_chars: int) -> str:
    if text is None:
        return "(none)"
    text = text.strip()
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return f"{text[:half]}\n\n[… {len(text) - max_chars:,} characters …]\n\n{text[-half:]}"


def split_sample(row: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(reasoning, answer) of a sample row, split exactly as the checks split it."""
    df = pl.DataFrame({"response": [row["response"]]})
    out = df.select(reasoning_expr(), answer_expr()).row(0)
    return out[0], out[1]


SCORES = (
    "math_status",
    "math_extracted",
    "reference",
    "lang_target_share",
    "readability_longest_paragraph_words",
    "readability_ngram_repeat_frac",
    "tokens_out",
    "finish_reason",
    "checkpoint",
)


def sample_html(row: Mapping[str, Any], max_chars: int = 3000, fields: Sequence[str] = SCORES) -> str:
    """One sample as HTML: verdict and reasons, key scores, then the reasoning and the answer apart."""
    reasoning, answer = split_sample(row)
    label = "reasoning"
    if reasoning is None:  # never closed: all of it is reasoning, and there is no answer part
        reasoning, label = row["response"], "reasoning (never closed: no &lt;/think&gt;)"
    reasons = list(row.get(REASONS) or [])
    verdict = (
        "<b style='color:#1a7f37'>accepted</b>"
        if row.get("accepted")
        else f"<b style='color:#cf222e'>rejected</b>: {html.escape(', '.join(reasons))}"
    )
    facts = " · ".join(f"{k}={html.escape(_fmt(row[k]))}" for k in fields if k in row and row[k] is not None)
    pre = "style='white-space:pre-wrap;max-height:24em;overflow:auto;background:#f6f8fa;padding:6px'"
    return (
        f"<div><div>{html.escape(str(row.get('sample_id', ''))[:12])} {verdict}</div>"
        f"<div style='font-size:85%'>{facts}</div>"
        f"<div><i>{label}</i></div><pre {pre}>{html.escape(_clip(reasoning, max_chars))}</pre>"
        f"<div><i>answer</i></div><pre {pre}>{html.escape(_clip(answer, max_chars))}</pre></div>"
    )


def side_by_side_html(rows: Sequence[Mapping[str, Any]], max_chars: int = 1500) -> str:
    """Several samples (e.g. an accepted and a rejected one of the same prompt) in columns."""
    cells = "".join(
        f"<td style='vertical-align:top;width:{100 // max(len(rows), 1)}%'>{sample_html(r, max_chars)}</td>"
        for r in rows
    )
    return f"<table style='table-layout:fixed;width:100%'><tr>{cells}</tr></table>"
