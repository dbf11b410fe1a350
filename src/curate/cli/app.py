"""What every command module shares: the Typer app and its groups, the consoles, the store, the config
loader, the funnel table and the progress bar. No command lives here."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table as RichTable
from typer.core import TyperGroup

from curate.checks.funnel import Funnel
from curate.cli import interrupts
from curate.errors import CurateError, UsageError
from curate.schema import reason_codes
from curate.store import Store

# typer vendors click; its exception base is reached through the public classes it re-exports.
ClickException: Any = typer.BadParameter.__mro__[2]
ClickUsageError: Any = typer.BadParameter.__mro__[1]


class Failure(ClickException):  # type: ignore[misc]
    """A ``CurateError`` (or an OS error on a user's path) on its way out: one line, its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        word = "failed" if self.exit_code == 1 else "error"
        print(f"curate: {word}: {self.message}", file=sys.stderr)


def as_failure(e: BaseException) -> Failure | None:
    """The one translation of library errors into what the user sees; ``None``: a bug, keep the traceback."""
    if isinstance(e, CurateError):
        return Failure(" ".join(str(e).split()) or type(e).__name__, e.exit_code)
    if isinstance(e, OSError) and e.filename:  # a path the user gave cannot be read or written
        return Failure(f"{e.filename}: {e.strerror or e}", 2)
    return None


class CurateGroup(TyperGroup):
    """The root command group: every command runs inside this one error path, however it is invoked
    (the console script, ``python -m curate``, or a test's ``CliRunner``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (CurateError, OSError) as e:
            failure = as_failure(e)
            if failure is None:
                raise
            raise failure from e

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        interrupts.install()
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except ClickUsageError as e:
            ctx = getattr(e, "ctx", None)
            cmd = ctx.command_path if ctx else "curate"
            print(f"{cmd}: error: {' '.join(e.format_message().split())} (see {cmd} --help)", file=sys.stderr)
            sys.exit(2)
        except ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except typer.Abort:
            print("curate: aborted", file=sys.stderr)
            sys.exit(130)
        except Exception:
            if not interrupts.stop_requested():
                raise
            # a library turned Ctrl-C/SIGTERM into its own exception (pydantic does): still a stop, not a bug
            print("curate: interrupted", file=sys.stderr)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=CurateGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Curate reasoning data: sample, check, select, publish, train.",
)
datasets_app = typer.Typer(no_args_is_help=True, help="Published dataset versions.")
app.add_typer(datasets_app, name="datasets")
launch_app = typer.Typer(no_args_is_help=True, help="Train on a dataset version (TRL), or print cluster commands.")
app.add_typer(launch_app, name="launch")

console = Console()
err = Console(stderr=True)

UserError = UsageError  # the name command modules have always raised: one line, exit code 2


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        str | None,
        typer.Option("--home", envvar="CURATE_HOME", help="Store root: a folder (default ./curate-data) or s3://…"),
    ] = None,
) -> None:
    ctx.obj = {"home": home}


def store_from(ctx: typer.Context | None) -> Store:
    home = ctx.obj.get("home") if ctx is not None and ctx.obj else None
    return Store(home)


def load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.exists():
        raise UserError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise UserError(f"{path}: config must be a mapping")
    return data


def print_funnel(funnel: Funnel, title: str = "funnel") -> None:
    """Reasons, most frequent first, with their share of all rows and their meaning."""
    t = RichTable(title=title)
    t.add_column("reason")
    t.add_column("rows", justify="right")
    t.add_column("share", justify="right")
    t.add_column("meaning")
    meanings = reason_codes()
    for r in funnel.rows():
        t.add_row(r.reason, str(r.rows), f"{r.share:.1%}" if funnel.total else "-", meanings.get(r.reason, ""))
    console.print(t)


class Ticker:
    """What :func:`progress` yields: ``tick(n)`` advances by ``n``; ``tick.at(done, total)`` sets both."""

    def __init__(self, bar: Any, task: Any, unit: str) -> None:
        self._bar, self._task, self._unit = bar, task, unit

    def __call__(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)
        self._rate()

    def at(self, done: int, total: int | None = None) -> None:
        self._bar.update(self._task, completed=done, **({"total": total} if total is not None else {}))
        self._rate()

    def _rate(self) -> None:
        t = self._bar.tasks[0]
        if t.elapsed:
            self._bar.update(self._task, rate=f"{t.completed / t.elapsed:,.0f} {self._unit}/s")


@contextmanager
def progress(label: str, unit: str, *, enabled: bool = True, transient: bool = True) -> Iterator[Ticker]:
    """The one progress bar of the command line, on stderr: count, rate, elapsed time, and the share
    done and time left once a total is known. Disabled, ticks cost nothing visible."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        SpinnerColumn(),
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{unit}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=transient, disable=not enabled) as bar:
        yield Ticker(bar, bar.add_task(label, total=None, rate=""), unit)
