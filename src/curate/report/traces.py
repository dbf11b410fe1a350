"""Reading samples: full traces with flagged spans, the staged funnel, example grids per reason.

For the notebooks (and ``curate view``): a trace is never clipped, it sits in a collapsible block; the
spans behind a readability or language reason are highlighted (a repeated line after its first
occurrence, a wall-of-text paragraph, a fenced code block in the reasoning, a run of another script), so
the middle of a long trace, where loops and language switches sit, is where the eye lands.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from curate.checks.text import split_response

# Scripts other than Latin (a language switch in an English trace): CJK, kana, Hangul, Cyrillic, Arabic,
# Hebrew, Devanagari, Thai. Python's re has no \p{Script}: explicit ranges.
FOREIGN_RUN = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\u0400-\u04ff\u0600-\u06ff"
    "\u0590-\u05ff\u0900-\u097f\u0e00-\u0e7f\u3000-\u303f\uff00-\uffef]"
    "(?:[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\u0400-\u04ff\u0600-\u06ff"
    "\u0590-\u05ff\u0900-\u097f\u0e00-\u0e7f\u3000-\u303f\uff00-\uffef\\s\\d.,!?]*"
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\u0400-\u04ff\u0600-\u06ff"
    "\u0590-\u05ff\u0900-\u097f\u0e00-\u0e7f\u3000-\u303f\uff00-\uffef])?"
)
FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
STAGES = ("generated", "format", "correct", "readable", "one language", "dedup", "selected")
STAGE_PREFIXES = {
    "format": ("format.",),
    "correct": ("math.", "code.", "judge."),
    "readable": ("readability.",),
    "one language": ("lang.",),
    "dedup": ("dedup.", "decontam."),
}
COLORS = {"lang": "#ffd8b5", "readability": "#ffe58f", "code": "#d0ebff"}


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    reason: str  # the reason code (or family) the span stands for


def _repeated_lines(text: str, min_chars: int = 30) -> list[Span]:
    seen: set[str] = set()
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        key = line.strip()
        if len(key) >= min_chars:
            if key in seen:
                out.append(Span(pos, pos + len(line.rstrip("\n")), "readability.repeated_lines"))
            seen.add(key)
        pos += len(line)
    return out


def _long_paragraphs(text: str, max_words: int = 300) -> list[Span]:
    out = []
    for m in re.finditer(r"(?:[^\n]|\n(?!\s*\n))+", text):
        if len(m.group().split()) > max_words:
            out.append(Span(m.start(), m.end(), "readability.long_paragraph"))
    return out


def flagged_spans(text: str, reasons: Sequence[str], target: str | None = "en") -> list[Span]:
    """Spans of ``text`` behind its readability and language reasons (none for other reasons)."""
    fams = {r.split(".", 1)[0] for r in reasons}
    spans: list[Span] = []
    if "lang" in fams and (target or "en") in ("en", "fr", "de", "es", "it", "pt", "nl"):
        spans += [Span(m.start(), m.end(), "lang.mixed") for m in FOREIGN_RUN.finditer(text)]
    walls: list[Span] = []
    if "readability" in fams:
        spans += _repeated_lines(text)
        spans += [Span(m.start(), m.end(), "readability.code_blocks") for m in FENCE.finditer(text)]
        walls = _long_paragraphs(text)
    spans.sort(key=lambda s: (s.start, -s.end))
    merged: list[Span] = []
    for s in spans:  # no overlaps: a later span inside an earlier one is dropped
        if merged and s.start < merged[-1].end:
            continue
        merged.append(s)
    for w in walls:  # a wall of text is marked where nothing more specific is
        pos = w.start
        for s in [m for m in merged if m.end > w.start and m.start < w.end]:
            if s.start > pos:
                merged.append(Span(pos, s.start, w.reason))
            pos = max(pos, s.end)
        if pos < w.end:
            merged.append(Span(pos, w.end, w.reason))
    return sorted(merged, key=lambda s: s.start)


def mark_html(text: str, spans: Sequence[Span]) -> str:
    out, pos = [], 0
    for s in spans:
        color = COLORS.get(s.reason.split(".", 1)[0], "#ffe58f")
        out.append(html.escape(text[pos : s.start]))
        out.append(
            f"<mark class='flag' data-reason='{html.escape(s.reason)}' title='{html.escape(s.reason)}' "
            f"style='background:{color}'>{html.escape(text[s.start : s.end])}</mark>"
        )
        pos = s.end
    out.append(html.escape(text[pos:]))
    return "".join(out)


PRE = "style='white-space:pre-wrap;background:#f6f8fa;padding:6px;margin:0'"


def trace_html(row: Mapping[str, Any], open_: bool = False, fields: Sequence[str] = ()) -> str:
    """One sample in full: verdict, reasons, then the reasoning and the answer, each in a collapsible block
    with its flagged spans highlighted. Nothing is clipped."""
    response = row.get("response") or ""
    reasoning, answer = split_response(response)
    never_closed = reasoning is None
    reasoning = response if never_closed else reasoning
    reasons = list(row.get("reject_reasons") or [])
    target = row.get("language") or "en"
    verdict = (
        "<b style='color:#1a7f37'>accepted</b>"
        if row.get("accepted")
        else f"<b style='color:#cf222e'>rejected</b>: {html.escape(', '.join(reasons))}"
    )
    spans = flagged_spans(reasoning or "", reasons, target)
    facts = " · ".join(f"{k}={html.escape(str(row[k]))}" for k in fields if row.get(k) is not None)
    flags = f" · {len(spans)} flagged span{'s' * (len(spans) != 1)}" if spans else ""
    label = "reasoning (never closed: no &lt;/think&gt;)" if never_closed else "reasoning"
    op = " open" if open_ else ""
    return (
        f"<div class='trace' data-sample='{html.escape(str(row.get('sample_id', '')))}'>"
        f"<div>{html.escape(str(row.get('sample_id', ''))[:12])} {verdict}</div>"
        f"<div style='font-size:85%'>{facts}</div>"
        f"<details{op}><summary><i>{label}</i> ({len(reasoning or ''):,} chars{flags})</summary>"
        f"<pre {PRE}>{mark_html(reasoning or '', spans)}</pre></details>"
        f"<details open><summary><i>answer</i> ({len(answer or ''):,} chars)</summary>"
        f"<pre {PRE}>{html.escape(answer or '(none)')}</pre></details></div>"
    )


def side_by_side_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """Several samples (an accepted and a rejected one of the same prompt) in columns, each in full."""
    cells = "".join(f"<td style='vertical-align:top'>{trace_html(r, open_=True)}</td>" for r in rows)
    return f"<table style='table-layout:fixed;width:100%'><tr>{cells}</tr></table>"


def stage_funnel(checked: pl.DataFrame, selection: pl.DataFrame | None = None) -> pl.DataFrame:
    """Samples left after each stage, in the order R1's rejection sampling applies them: generated ->
    well-formed -> correct -> readable -> one language -> not a duplicate -> selected. A sample leaves at the
    first stage whose reasons it carries; ``selected`` comes from the selection decisions when given."""
    reasons = checked["reject_reasons"].fill_null([]) if "reject_reasons" in checked.columns else None
    n = checked.height
    rows = [{"stage": "generated", "samples": n}]
    alive = pl.Series([True] * n)
    for stage in STAGES[1:-1]:
        if reasons is not None:
            hit = reasons.list.eval(
                pl.any_horizontal([pl.element().str.starts_with(p) for p in STAGE_PREFIXES[stage]])
            ).list.any()
            alive = alive & ~hit.fill_null(False)
        rows.append({"stage": stage, "samples": int(alive.sum())})
    if selection is not None and "selected" in selection.columns:
        ids = set(checked["sample_id"].to_list())
        chosen = selection.filter(pl.col("selected") & pl.col("sample_id").is_in(list(ids))).height
    else:
        chosen = (
            int((alive & checked["accepted"].fill_null(False)).sum())
            if "accepted" in checked.columns
            else int(alive.sum())
        )
    rows.append({"stage": "selected", "samples": chosen})
    out = pl.DataFrame(rows)
    return out.with_columns(
        (pl.col("samples") / max(n, 1)).alias("share"),
        (pl.col("samples").shift(1) - pl.col("samples")).fill_null(0).alias("dropped"),
    )


def stage_funnel_plot(funnel: pl.DataFrame, ax: Any = None, title: str = "rejection-sampling funnel") -> Any:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    stages, counts = funnel["stage"].to_list(), funnel["samples"].to_list()
    bars = ax.barh(list(range(len(stages)))[::-1], counts, color="#4c72b0")
    ax.set_yticks(list(range(len(stages)))[::-1], stages)
    total = max(counts[0], 1)
    for bar, c in zip(bars, counts, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {c:,} ({c / total:.0%})", va="center")
    ax.set_xlabel("samples left")
    ax.set_title(title)
    ax.set_xlim(0, total * 1.2)
    return ax


def reason_grid_html(
    checked: pl.DataFrame, per_reason: int = 2, reasons: Sequence[str] | None = None, seed: int = 0
) -> str:
    """For each reason (most frequent first), ``per_reason`` example samples side by side, in full."""
    exploded = checked.select("reject_reasons").explode("reject_reasons").drop_nulls()
    counts = exploded["reject_reasons"].value_counts(sort=True)
    names = list(reasons) if reasons is not None else counts["reject_reasons"].to_list()
    parts = []
    for reason in names:
        hits = checked.filter(pl.col("reject_reasons").list.contains(reason))
        if hits.is_empty():
            continue
        rows = hits.sample(min(per_reason, hits.height), seed=seed).iter_rows(named=True)
        cells = "".join(f"<td style='vertical-align:top'>{trace_html(r)}</td>" for r in rows)
        parts.append(
            f"<h4>{html.escape(reason)} · {hits.height:,} samples</h4>"
            f"<table style='table-layout:fixed;width:100%'><tr>{cells}</tr></table>"
        )
    return "".join(parts)


def k_over_n_edges(n: int) -> list[float]:
    """Histogram edges that put each possible pass rate k/n (k = 0..n) in the middle of its own bin."""
    n = max(int(n), 1)
    return [(k - 0.5) / n for k in range(n + 2)]


def typical_n(rates: pl.DataFrame) -> int:
    """The most common number of decided samples per prompt in a ``pass_rate`` table."""
    if "n" not in rates.columns or rates.is_empty():
        return 10
    decided = rates["n"] - (rates["n_undecided"] if "n_undecided" in rates.columns else 0)
    mode = decided.mode()
    top = mode.max() if len(mode) else None
    return int(top) if isinstance(top, (int, float)) else 10


__all__ = [
    "STAGES",
    "Span",
    "flagged_spans",
    "k_over_n_edges",
    "mark_html",
    "reason_grid_html",
    "side_by_side_html",
    "stage_funnel",
    "stage_funnel_plot",
    "trace_html",
    "typical_n",
]
