"""The ablation chart: held-out pass@1 change per filter switched off, with its spread over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from curate.report.plots import _axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def ablation_bar(ablation: pl.DataFrame, ax: Axes | None = None, title: str | None = None) -> Axes:
    """One bar per filter switched off: pass@1 minus all-on's (paired by seed), error bar = std over seeds.

    Below zero, the filter helps: training on what it rejected made the model worse."""
    rows = ablation.filter(pl.col("filter").is_not_null())
    ax = _axes(ax, (7, 0.45 * max(rows.height, 3) + 1.2))
    labels = [f"no {f} ({n:,} readmitted)" for f, n in zip(rows["filter"], rows["readmitted"], strict=True)]
    deltas = rows["delta_mean"].to_list()
    errs = [e or 0.0 for e in rows["delta_std"].to_list()]
    colours = ["tab:red" if d < 0 else "tab:green" for d in deltas]
    ax.barh(labels, deltas, xerr=errs, color=colours, capsize=4, alpha=0.8)
    ax.axvline(0.0, color="grey", linewidth=1)
    ax.invert_yaxis()
    base = ablation.filter(pl.col("filter").is_null())
    ref = f" (all on: {base['pass_at_1_mean'][0]:.3f})" if base.height else ""
    ax.set_xlabel(f"held-out pass@1 change vs all filters on{ref}")
    n = len(ablation["seeds"][0]) if ablation.height else 0
    ax.set_title(title or f"what each filter buys ({n} seed{'s' if n != 1 else ''}; error bars: std)")
    return ax


def save_ablation_plot(ablation: pl.DataFrame, path: str | Path) -> Path:
    """Draw :func:`ablation_bar` into ``path`` (PNG, SVG, ... by suffix); needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = max(ablation.filter(pl.col("filter").is_not_null()).height, 3)
    fig, ax = plt.subplots(figsize=(7, 0.45 * rows + 1.2))
    ablation_bar(ablation, ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
