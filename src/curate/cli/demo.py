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
    full: Annotated[
        bool, typer.Option("--full", help="All of R1: zero RL, cold start, reasoning RL, rejection sampling, distill")
    ] = False,
    ablate: Annotated[
        bool, typer.Option("--ablate", help="With --full: SFT with each filter switched off in turn (curate ablate)")
    ] = False,
) -> None:
    """The R1 loop at toy scale on CPU: train a tiny model, sample, check, select, publish, SFT, evaluate."""
    import time

    if full:
        _full(workdir, seed, fast, as_json, ablate)
        return
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


def _full(workdir: Path, seed: int, fast: bool, as_json: bool, ablate: bool) -> None:
    import time

    from curate.demo.full import FullConfig, run_full
    from curate.demo.report import plot_phases
    from curate.store import Store

    settings = FullConfig.fast(seed) if fast else FullConfig(seed=seed)
    t0 = time.perf_counter()
    res = run_full(workdir, settings, say=err.print)  # progress on stderr; --json keeps stdout parseable
    summary = {**res.summary(), "wall_s": round(time.perf_counter() - t0, 1)}
    home = Path(res.workdir)
    (home / f"r1_phases_seed{seed}.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    seeds = [orjson.loads(p.read_bytes()) for p in sorted(home.glob("r1_phases_seed*.json"))]
    try:  # one line per seed that has run in this workdir
        summary["plot"] = str(plot_phases(seeds, home / "r1_phases.png"))
    except ImportError:
        summary["plot"] = None
        err.print("no plot: matplotlib is not installed (pip install matplotlib)")
    t = RichTable(title=f"R1 at toy scale, seed {seed}: held-out problems after each phase")
    for col in ("phase", "pass@1", "length", "lang mix", "unreadable", "format err", "seconds"):
        t.add_column(col, justify="left" if col == "phase" else "right", no_wrap=True)
    for p in res.phases:
        t.add_row(
            p.phase,
            f"{p.pass_at_1:.3f}",
            f"{p.mean_length:.0f}",
            f"{p.lang_mix_rate:.1%}",
            f"{p.unreadable_rate:.1%}",
            f"{p.format_error_rate:.1%}",
            f"{p.seconds:.0f}",
        )
    console.print(t)
    for p in res.phases:
        console.print(f"  {p.phase}: {', '.join(p.datasets) or 'no dataset'} -> {p.checkpoint}", soft_wrap=True)
    console.print(
        f"distilled student's own base: pass@1 {res.student_base_pass_at_1:.3f}; store {res.workdir}; "
        f"plot {summary['plot']}; {summary['wall_s']:.0f}s"
    )
    if ablate:  # its table after the phases'; with --json, under "ablation" in the last line
        from curate.cli.ablate import run_and_report
        from curate.demo.ablate import demo_ablation

        summary["ablation"] = {}
        for phase in ("cold_start_sft", "rs_sft"):
            a = demo_ablation(res, settings, phase=phase)
            summary["ablation"][phase] = run_and_report(Store(home), a.recipe, a.checked, a.model, a.prompts, a.config)
    if as_json:
        print(orjson.dumps(summary).decode())
