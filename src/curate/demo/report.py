"""The ``--full`` demo's per-phase figures as a plot: what each R1 phase did to the toy model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

_METRICS = (
    ("pass_at_1", "pass@1 (held out)"),
    ("lang_mix_rate", "language mixing (share of samples)"),
    ("unreadable_rate", "unreadable (share of samples)"),
    ("mean_length", "mean response length (chars)"),
)


def plot_phases(summaries: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One panel per metric, one line per seed, phases in order on the x axis; saved as PNG at ``path``."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    fig = Figure(figsize=(12, 3.2), layout="constrained")
    axes = fig.subplots(1, len(_METRICS))
    for ax, (key, title) in zip(axes, _METRICS, strict=True):
        for summary in summaries:
            # the distilled model is another (smaller) network: a point of its own, not the line's next step
            line = [p for p in summary["phases"] if p["phase"] != "distill"]
            student = [p for p in summary["phases"] if p["phase"] == "distill"]
            drawn = ax.plot(
                [p["phase"] for p in line], [p[key] for p in line], marker="o", label=f"seed {summary['seed']}"
            )
            colour = drawn[0].get_color()
            ax.plot([p["phase"] for p in student], [p[key] for p in student], marker="D", ls="", color=colour)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, title="diamond: the student", title_fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
