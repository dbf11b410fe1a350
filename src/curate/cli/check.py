"""``curate check`` and ``curate reasons``: run the checks over sample files; list every reason code."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table as RichTable

from curate.cli.app import UserError, app, console, load_config, print_funnel, progress, store_from
from curate.io.rows import ReadConfig
from curate.schema import reason_codes


def check_inputs(inputs: list[Path]) -> None:
    for p in inputs:
        if not p.is_file():
            raise UserError(f"{p}: no such input file")


def check_writable(out: Path, option: str) -> None:
    """Refuse an output path that cannot be written, before any work starts: create its folder and
    write (and remove) a probe file beside it."""
    if out.is_dir():
        raise UserError(f"{option} {out}: is a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent, prefix=f".{out.name}.probe-"):
            pass
    except OSError as e:
        raise UserError(f"{option} {out}: cannot write there ({e.strerror or e})") from e
    if out.exists() and not os.access(out, os.W_OK):
        raise UserError(f"{option} {out}: not writable")


@app.command("check")
def check_command(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(help="JSONL or Parquet sample files")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output Parquet file")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (checks: {...})")] = None,
    only: Annotated[str | None, typer.Option("--checks", help="Comma-separated checks to run (default: all)")] = None,
    max_bad_fraction: Annotated[
        float | None,
        typer.Option(
            "--max-bad-fraction", min=0.0, max=1.0, help="Fail when more than this share of rows is unreadable"
        ),
    ] = None,
    batch_rows: Annotated[int, typer.Option("--batch-rows", min=1, help="Rows per streamed batch")] = 8192,
    publish: Annotated[
        str | None,
        typer.Option("--publish", help="Also publish the output as the next version of this dataset (kind 'checked')"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON line")] = False,
    shard_mb: Annotated[
        float, typer.Option("--shard-mb", min=0.001, help="Cut JSONL inputs into shards of about this many MB")
    ] = 16.0,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Where finished (shard, check) results are kept [<home>/cache/checks]"),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute everything; keep nothing")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Local worker processes for the shards")] = 1,
    dask: Annotated[int, typer.Option("--dask", min=0, help="Run shards on a local Dask cluster of N workers")] = 0,
    dask_address: Annotated[
        str | None, typer.Option("--dask-address", help="Run shards on the Dask scheduler at this address")
    ] = None,
) -> None:
    """Run every applicable check over samples; write each readable row with its verdict.

    Row checks run per shard; each finished (shard, check) result is kept under a key of the shard's
    bytes, the check's options and its code, so a rerun (after a crash, or after changing one check's
    options) recomputes only what changed."""
    from curate.checks.cached import ShardOptions
    from curate.checks.registry import build_checks
    from curate.checks.runner import CheckReport, check_files

    cfg = load_config(config)
    checks = build_checks(cfg.get("checks"), only=[s.strip() for s in only.split(",")] if only else None)
    # Everything that can be refused is refused before the first row is read (a check can take hours).
    check_inputs(inputs)
    check_writable(out, "--out")
    store = store_from(ctx)
    if publish:
        store.check_name(publish)
    opts = ReadConfig(batch_rows=batch_rows)
    from curate.checks.cached import run_shard
    from curate.cli._dask import run_sharded

    cache = None if no_cache else (cache_dir or store.home / "cache" / "checks")
    # Local workers leave cores idle: the checks of a shard that may run side by side share them.
    threads = 1 if (dask or dask_address) else max(1, (os.cpu_count() or 1) // workers)
    with progress("checking", "rows", enabled=not as_json) as tick:

        def call(mapper: Any) -> CheckReport:
            shards = ShardOptions(
                shard_bytes=int(shard_mb * (1 << 20)),
                cache=cache,
                executor=lambda jobs: mapper(run_shard, jobs, "check"),
                threads=threads,
                in_process=not (dask or dask_address) and workers <= 1,
            )
            return check_files(
                inputs,
                out,
                checks,
                read_options=opts,
                max_bad_fraction=max_bad_fraction,
                progress=tick.at,
                shards=shards,
            )

        report = run_sharded(dask, dask_address, call, workers)
    result = report.as_dict()
    if publish:
        from curate.checks.runner import publish_checked

        dv = publish_checked(store, publish, out, report, config=cfg, checks=[c.name for c in checks])
        result["published"] = dv.manifest.ref
        result["unchanged"] = dv.unchanged
    if as_json:
        print(orjson.dumps(result).decode())
        return
    if publish and result["unchanged"]:
        console.print(f"unchanged: [bold]{result['published']}[/] already holds this content; nothing published")
    elif publish:
        console.print(f"published [bold]{result['published']}[/] in {store.home}")
    console.print(
        f"[bold]{report.rows:,}[/] rows checked with {', '.join(c.name for c in checks)}: "
        f"[green]{report.accepted:,} accepted[/], [red]{report.rows - report.accepted:,} rejected[/] "
        f"-> {report.out}"
    )
    if report.funnel.reasons:
        print_funnel(report.funnel)
    if report.read.rows_bad:
        by = ", ".join(f"{k} {v}" for k, v in report.read.bad_by_reason.most_common())
        console.print(f"[yellow]{report.read.rows_bad:,} unreadable rows[/] ({by}) -> {report.quarantine}")


@app.command("reasons")
def reasons_command() -> None:
    """Every reason code with its meaning: checks, quarantine (input.*) and selection (select.*)."""
    t = RichTable()
    t.add_column("code")
    t.add_column("meaning")
    for code, meaning in sorted(reason_codes().items()):
        t.add_row(code, meaning)
    console.print(t)
