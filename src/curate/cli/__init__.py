"""The ``curate`` command line: one module per command group, one error path.

Thin: parse, validate before any long work, call the library, print with rich. A ``CurateError`` (a
mistake the user can fix) is one line on stderr and exit code 2; ``RunFailed`` (the run failed on its
own terms, e.g. too many bad rows) exits 1; neither prints a traceback. Only a bug does.
"""

from __future__ import annotations

import gc
import sys

from curate.cli._malloc import arrow_system_pool, limit_arenas

limit_arenas()  # first: an arena made before the cap (a thread started by an import) stays
arrow_system_pool()

from curate.cli import ablate, check, datasets, demo, export, launch, recipes, versions, view  # noqa: E402, F401  (each registers its commands)
from curate.cli.app import (  # noqa: E402
    CurateGroup,
    UserError,
    app,
    console,
    err,
    load_config,
    print_funnel,
    progress,
    store_from,
)


def _register_stage_commands() -> None:
    from curate.cli.dedup import dedup_command
    from curate.cli.generate import generate_command
    from curate.cli.judge import judge_app

    app.command("generate")(generate_command)
    app.command("dedup")(dedup_command)
    app.add_typer(judge_app, name="judge")


_register_stage_commands()


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Errors reach the user through :class:`curate.cli.app.CurateGroup` (one line,
    exit 2 for a mistake the user can fix, 1 for a run that failed on its own terms)."""
    # What the imports made (~80k objects: modules, classes, functions) lives as long as the process.
    # Frozen, the collector never walks it again, and the full collection at exit skips it: `curate
    # check` on 20k traces took 0.22-0.24 s from its last line to its exit, 0.10-0.12 s frozen. Only
    # here, in the command line's own process: a notebook or test that imports curate keeps its own.
    gc.freeze()
    try:
        app(args=argv)
    except KeyboardInterrupt:
        err.print("curate: interrupted")
        sys.exit(130)


__all__ = [
    "CurateGroup",
    "UserError",
    "app",
    "console",
    "err",
    "load_config",
    "main",
    "print_funnel",
    "progress",
    "store_from",
]
