"""``curate datasets diff|tag|untag|rm|gc|verify``: a version's life after publication."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table as RichTable

from curate.cli.app import console, datasets_app, store_from
from curate.errors import RunFailed


@datasets_app.command("diff")
def datasets_diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@TAG (the older)")],
    b: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@TAG (the newer)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rows in and out (by sample_id), funnel and config deltas between two versions."""
    from curate.store.lifecycle import diff

    d = diff(store_from(ctx), a, b)
    if as_json:
        print(orjson.dumps(d.to_dict(), default=str).decode())
        return
    console.print(
        f"[bold]{d.a} -> {d.b}[/]  rows {d.rows_a:,} -> {d.rows_b:,}  "
        f"(+{len(d.added):,} in, -{len(d.removed):,} out, by {d.key})"
    )
    for label, keys in (("in", d.added), ("out", d.removed)):
        if keys:
            more = f" … {len(keys) - 5:,} more" if len(keys) > 5 else ""
            console.print(f"  {label}: {', '.join(keys[:5])}{more}")
    for title, changes in (("funnel", d.funnel), ("config", d.config), ("manifest", d.header)):
        if not changes:
            continue
        t = RichTable(title=title)
        for col in ("key", d.a, d.b):
            t.add_column(col)
        for k, (x, y) in changes.items():
            t.add_row(k, str(x), str(y))
        console.print(t)
    if not (d.funnel or d.config or d.header):
        console.print("funnel, config and lineage are the same")


@datasets_app.command("tag")
def datasets_tag(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to tag")],
    tag: Annotated[str, typer.Argument(help="Tag name, e.g. prod: then NAME@prod works wherever a version does")],
) -> None:
    """Point NAME@TAG at a version (moves the tag if it existed)."""
    from curate.store.lifecycle import set_tag

    target = set_tag(store_from(ctx), ref, tag)
    console.print(f"{target.split('@')[0]}@{tag} -> {target}")


@datasets_app.command("untag")
def datasets_untag(ctx: typer.Context, name_tag: Annotated[str, typer.Argument(help="NAME@TAG")]) -> None:
    """Remove a tag (the version stays)."""
    from curate.store.lifecycle import remove_tag

    remove_tag(store_from(ctx), name_tag)
    console.print(f"removed tag {name_tag}")


@datasets_app.command("rm")
def datasets_rm(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to remove")],
    force: Annotated[bool, typer.Option("--force", help="Remove even if a version, run or tag names it")] = False,
) -> None:
    """Remove one version (refused while another version, a training run or a tag needs it)."""
    from curate.store.lifecycle import rm

    console.print(f"removed {rm(store_from(ctx), ref, force=force)}")


@datasets_app.command("gc")
def datasets_gc(
    ctx: typer.Context,
    keep: Annotated[int, typer.Option("--keep", help="Newest versions kept per dataset")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go, remove nothing")] = False,
) -> None:
    """Remove old versions nothing needs (not tagged, not a parent of a kept version or of a run)."""
    from curate.store.lifecycle import gc

    removed = gc(store_from(ctx), keep=keep, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb} {len(removed)} version(s){': ' + ', '.join(removed) if removed else ''}")


@datasets_app.command("verify")
def datasets_verify(
    ctx: typer.Context,
    refs: Annotated[list[str] | None, typer.Argument(help="NAME or NAME@VERSION (default: every version)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check every part's checksum and row count and each manifest's digest; exit 1 on any damage."""
    from curate.store.lifecycle import verify

    report = verify(store_from(ctx), refs or ())
    damaged = {r: p for r, p in report.items() if p}
    if as_json:
        print(orjson.dumps({"ok": [r for r, p in report.items() if not p], "damaged": damaged}).decode())
    else:
        for ref, problems in report.items():
            console.print(f"[red]DAMAGED[/] {ref}: {'; '.join(problems)}" if problems else f"ok {ref}")
    if damaged:
        raise RunFailed(f"{len(damaged)} of {len(report)} version(s) damaged: {', '.join(damaged)}")
