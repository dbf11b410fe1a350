"""``curate export``: a dataset version in a trainer's or the Hub's format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.app import UserError, app, console, store_from

FORMATS = ("openrlhf", "jsonl", "parquet", "hf")


@app.command("export")
def export_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION|@TAG]")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="openrlhf (JSONL, SFT/RL kinds) | jsonl | parquet | hf (folder + dataset card; any kind)",
        ),
    ] = "openrlhf",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (a folder for hf)")] = None,
    license: Annotated[str | None, typer.Option("--license", help="hf: license for the card (SPDX id)")] = None,
    push: Annotated[str | None, typer.Option("--push", help="hf: upload the folder to this Hub dataset repo")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="hf --push: print the upload plan, upload nothing")] = False,
) -> None:
    """Write a dataset version in a trainer's format, or as a Hugging Face dataset folder with a card.

    jsonl, parquet and hf take every kind; openrlhf takes SFT and RL datasets (cold_start_sft, rs_sft,
    distill, rl_prompts) and says so for others.
    """
    from curate.io.files import atomic_path, sweep_tmp_beside
    from curate.recipes.export import OPENRLHF_SCHEMAS, openrlhf_supports, to_openrlhf_jsonl

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if (push or plan) and fmt != "hf":
        raise UserError("--push and --plan go with --format hf")
    store = store_from(ctx)
    dv = store.get(ref)
    m = dv.manifest
    if fmt == "openrlhf" and not openrlhf_supports(m.schema):
        raise UserError(
            f"--format openrlhf exports SFT and RL datasets (schemas {', '.join(OPENRLHF_SCHEMAS)}; "
            f"kinds cold_start_sft, rs_sft, distill, rl_prompts); {m.ref} is a {m.kind!r} dataset "
            f"({m.schema}): build one with `curate recipe`, or use --format jsonl, parquet or hf"
        )
    if fmt == "hf":
        from curate.recipes.hf import export_hf, require_token, upload_plan
        from curate.recipes.hf import push as push_folder

        if push and not plan:
            require_token()

        folder = export_hf(store, dv, out or Path(f"{m.name}-v{m.version}-hf"), license=license)
        console.print(f"{m.rows:,} rows of {m.ref} -> {folder} (data/*.parquet + README.md)")
        if push and plan:
            for local, remote in upload_plan(folder, push):
                console.print(f"  {local} -> {push}:{remote}")
        elif push:
            console.print(f"pushed: {push_folder(folder, push)}")
        return
    dest = out or Path(f"{m.name}-v{m.version}.{'parquet' if fmt == 'parquet' else 'jsonl'}")
    df = dv.scan().collect()
    sweep_tmp_beside(dest)
    with atomic_path(dest) as tmp:
        if fmt == "openrlhf":
            tmp.write_bytes(to_openrlhf_jsonl(df))
        elif fmt == "jsonl":
            df.write_ndjson(tmp)
        else:
            df.write_parquet(tmp)
    console.print(f"{df.height:,} rows of {m.ref} -> {dest}")
