"""``curate demo``: the R1 loop at toy scale on CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table as RichTable

from curate.checks.funnel import Funnel
from curate.cli.app import app, console, err, print_funnel


@app.command("demo")
def demo_command(
    workdir: Annotated[Path, typer.Option("--workdir", help="Store home for the demo (reused on rerun)")] = Path(
        "curate-demo"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the results")] = False,
    fast: Annotated[bool, typer.Option("--fast", help="Tiny settings: checks the mechanics, not the gain")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """The R1 loop at toy scale on CPU: train a tiny model, sample, check, select, publish, SFT, evaluate."""
    import time

    from curate.demo import ExperimentConfig
    from curate.demo.pipeline import run_demo

    settings = ExperimentConfig.fast(seed) if fast else ExperimentConfig(seed=seed)
    t0 = time.perf_counter()
    res = run_demo(workdir, settings, say=lambda m: err.print(m) if not as_json else None)
    wall = time.perf_counter() - t0
    summary = {**res.summary(), "wall_s": round(wall, 1)}
    # the tables go to stdout either way; --json adds the machine-readable last line
    print_funnel(Funnel.from_dict(res.funnel), title="funnel (demo_checked)")
    t = RichTable(title="pass@1 on held-out problems")
    t.add_column("model")
    t.add_column("trained on", justify="right")
    t.add_column("pass@1", justify="right")
    t.add_row("base (toy)", "-", f"{res.pass_at_1_before:.3f}")
    t.add_row("SFT on curated", f"{res.sft_rows} samples", f"{res.pass_at_1_after:.3f}")
    t.add_row("SFT on unfiltered", f"{res.sft_rows} samples", f"{res.pass_at_1_unfiltered:.3f}")
    console.print(t)
    console.print(f"datasets: {', '.join(res.datasets)}; store: {res.workdir}; {wall:.0f}s")
    if as_json:
        print(orjson.dumps(summary).decode())
