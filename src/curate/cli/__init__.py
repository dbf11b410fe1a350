"""The ``curate`` command line. Thin: parse, call the library, print with rich.

Errors a user can fix (missing file, bad option, bad config) exit 2 with one line on stderr and no
traceback; a run that fails on its own terms (too many bad rows) exits 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from curate.checks.base import ConfigError
from curate.io.rows import InputError, ReadOptions
from curate.schema import SchemaError, reason_codes
from curate.store import Store, StoreError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Curate reasoning data: sample, check, select, publish, train.")
datasets_app = typer.Typer(no_args_is_help=True, help="Published dataset versions.")
app.add_typer(datasets_app, name="datasets")
launch_app = typer.Typer(no_args_is_help=True, help="Train on a dataset version (TRL), or print cluster commands.")
app.add_typer(launch_app, name="launch")

# typer vendors click; its exception classes are reached through the public ones it re-exports.
UsageError: type[Exception] = typer.BadParameter.__mro__[1]
ClickException: type[Exception] = typer.BadParameter.__mro__[2]

console = Console()
err = Console(stderr=True)


class UserError(Exception):
    """Printed as one line, exit code 2."""


def store_from(ctx: typer.Context | None) -> Store:
    home = ctx.obj.get("home") if ctx is not None and ctx.obj else None
    return Store(home)


@app.callback()
def _root(ctx: typer.Context,
          home: Annotated[Path | None, typer.Option("--home", envvar="CURATE_HOME",
                                                    help="Store root (default ./curate-data)")] = None) -> None:
    ctx.obj = {"home": home}


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


def print_funnel(total: int, funnel: dict[str, int], title: str = "funnel") -> None:
    t = RichTable(title=title)
    t.add_column("reason")
    t.add_column("rows", justify="right")
    t.add_column("share", justify="right")
    t.add_column("meaning")
    meanings = reason_codes()
    for reason, n in sorted(funnel.items(), key=lambda kv: -kv[1]):
        t.add_row(reason, str(n), f"{n / total:.1%}" if total else "-", meanings.get(reason, ""))
    console.print(t)


@app.command("check")
def check_command(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(help="JSONL or Parquet sample files")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output Parquet file")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (checks: {...})")] = None,
    only: Annotated[str | None, typer.Option("--checks", help="Comma-separated checks to run (default: all)")] = None,
    max_bad_fraction: Annotated[float | None, typer.Option(
        "--max-bad-fraction", min=0.0, max=1.0, help="Fail when more than this share of rows is unreadable")] = None,
    batch_rows: Annotated[int, typer.Option("--batch-rows", min=1, help="Rows per streamed batch")] = 8192,
    publish: Annotated[str | None, typer.Option(
        "--publish", help="Also publish the output as the next version of this dataset (kind 'checked')")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON line")] = False,
) -> None:
    """Run every applicable check over samples; write each readable row with its verdict."""
    from curate.checks.registry import build_checks
    from curate.checks.runner import check_files

    cfg = load_config(config)
    checks = build_checks(cfg.get("checks"), only=[s.strip() for s in only.split(",")] if only else None)
    opts = ReadOptions(batch_rows=batch_rows)
    with Progress(SpinnerColumn(), TextColumn("[bold]checking"), BarColumn(),
                  TextColumn("{task.completed:,} rows"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("check", total=None, rate="")

        def tick(n: int) -> None:
            bar.advance(task, n)
            t = bar.tasks[0]
            if t.elapsed:
                bar.update(task, rate=f"{t.completed / t.elapsed:,.0f} rows/s")

        report = check_files(inputs, out, checks, read_options=opts, max_bad_fraction=max_bad_fraction,
                             progress=tick)
    result = report.as_dict()
    if publish:
        from curate.checks.runner import publish_checked

        dv = publish_checked(store_from(ctx), publish, out, report, config=cfg, checks=[c.name for c in checks])
        result["published"] = dv.manifest.ref
    if as_json:
        print(orjson.dumps(result).decode())
        return
    if publish:
        console.print(f"published [bold]{result['published']}[/] in {store_from(ctx).home}")
    console.print(f"[bold]{report.rows:,}[/] rows checked with {', '.join(c.name for c in checks)}: "
                  f"[green]{report.accepted:,} accepted[/], [red]{report.rows - report.accepted:,} rejected[/] "
                  f"-> {report.out}")
    if report.funnel:
        print_funnel(report.rows, dict(report.funnel))
    if report.read.rows_bad:
        by = ", ".join(f"{k} {v}" for k, v in report.read.bad_by_reason.most_common())
        console.print(f"[yellow]{report.read.rows_bad:,} unreadable rows[/] ({by}) -> {report.quarantine}")


@datasets_app.command("list")
def datasets_list(ctx: typer.Context) -> None:
    """Every published version, newest last."""
    store = store_from(ctx)
    t = RichTable(title=f"datasets in {store.home}")
    for col in ("name", "version", "kind", "rows", "created_at", "parents"):
        t.add_column(col, justify="right" if col in ("version", "rows") else "left")
    for dv in store.all_versions():
        m = dv.manifest
        t.add_row(m.name, str(m.version), m.kind, f"{m.rows:,}", m.created_at, ", ".join(m.parents))
    console.print(t)


@datasets_app.command("show")
def datasets_show(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION")]) -> None:
    """A version's manifest: rows, funnel, config, parents, files."""
    dv = store_from(ctx).get(ref)
    m = dv.manifest
    console.print(f"[bold]{m.ref}[/] kind={m.kind} schema={m.schema} rows={m.rows:,} created={m.created_at}")
    console.print(f"path: {dv.path}")
    if m.parents:
        console.print(f"parents: {', '.join(m.parents)}")
    if m.source:
        console.print(f"source: {orjson.dumps(m.source).decode()}")
    console.print(f"config hash: {m.config_hash}  code: {m.code_version}")
    if m.funnel:
        print_funnel(m.rows, dict(m.funnel))
    for f in m.files:
        console.print(f"  {f.path}  {f.rows:,} rows  {f.bytes:,} B  sha256 {f.sha256[:16]}…")


@app.command("query")
def query_command(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="SQL over the catalog: datasets table and one view per dataset")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | csv | json | parquet")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows shown in table format")] = 50,
) -> None:
    """Run SQL with DuckDB against the store's catalog."""
    import duckdb

    if fmt not in ("table", "csv", "json", "parquet"):
        raise UserError(f"--format must be table, csv, json or parquet, not {fmt!r}")
    if fmt == "parquet" and out is None:
        raise UserError("--format parquet needs --out FILE")
    store = store_from(ctx)
    con = store.connect(read_only=True)
    try:
        rel = con.sql(sql)
    except duckdb.Error as e:
        raise UserError(f"query failed: {str(e).splitlines()[0]}") from e
    finally:
        pass
    try:
        if rel is None:
            return
        df = rel.pl()
    except duckdb.Error as e:
        raise UserError(f"query failed: {str(e).splitlines()[0]}") from e
    finally:
        con.close()
    if fmt == "parquet":
        assert out is not None
        df.write_parquet(out)
        console.print(f"{df.height:,} rows -> {out}")
    elif fmt == "csv":
        text = df.write_csv()
        _emit(text, out)
    elif fmt == "json":
        text = "".join(orjson.dumps(r, default=str).decode() + "\n" for r in df.iter_rows(named=True))
        _emit(text, out)
    else:
        if out is not None:
            raise UserError("--out needs --format csv, json or parquet")
        t = RichTable()
        for c in df.columns:
            t.add_column(c)
        for row in df.head(limit).iter_rows():
            t.add_row(*[_cell(v) for v in row])
        console.print(t)
        if df.height > limit:
            console.print(f"… {df.height - limit:,} more rows (use --limit or --format csv)")


def _cell(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "…"


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"-> {out}")


@app.command("recipe")
def recipe_command(
    ctx: typer.Context,
    recipe_file: Annotated[Path, typer.Argument(help="Recipe YAML (cold_start_sft | rs_sft | distill | rl_prompts)")],
    inputs: Annotated[list[str] | None, typer.Option("--input", "-i",
                                                     help="Checked dataset ref or Parquet file (repeatable); "
                                                          "overrides the recipe's inputs")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Output dataset name (default: the recipe's)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Select from checked samples and publish the recipe's dataset version (+ selection and pass rates)."""
    import dataclasses

    from curate.recipes import load_recipe, run_recipe

    recipe = load_recipe(recipe_file)
    if inputs:
        recipe = dataclasses.replace(recipe, inputs=tuple(inputs))
    if name:
        recipe = dataclasses.replace(recipe, name=name)
    pub = run_recipe(recipe, store_from(ctx))
    m = pub.dataset.manifest
    if as_json:
        print(orjson.dumps({"dataset": m.ref, "rows": m.rows, "selection": pub.selection.manifest.ref,
                            "pass_rates": pub.pass_rates.manifest.ref, "funnel": dict(m.funnel)}).decode())
        return
    console.print(f"published [bold]{m.ref}[/] ({m.kind}, {m.rows:,} rows) from {', '.join(m.parents)}; "
                  f"decisions in {pub.selection.manifest.ref}, pass rates in {pub.pass_rates.manifest.ref}")
    print_funnel(int(m.funnel.get("total", 0)), {k: v for k, v in m.funnel.items() if k != "total"})


@app.command("export")
def export_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION] of an SFT or RL dataset")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="openrlhf (JSONL) | jsonl | parquet")] = "openrlhf",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file")] = Path("export.jsonl"),
) -> None:
    """Write a dataset version in a trainer's format (the version itself is already TRL/verl-ready Parquet)."""
    from curate.recipes import to_openrlhf_jsonl

    df = store_from(ctx).get(ref).scan().collect()
    if fmt == "openrlhf":
        out.write_bytes(to_openrlhf_jsonl(df))
    elif fmt == "jsonl":
        df.write_ndjson(out)
    elif fmt == "parquet":
        df.write_parquet(out)
    else:
        raise UserError(f"--format must be openrlhf, jsonl or parquet, not {fmt!r}")
    console.print(f"{df.height:,} rows -> {out}")


def _check_model(model: str) -> None:
    if not Path(model).exists():
        raise UserError(f"{model}: no such checkpoint directory (nothing is downloaded at run time)")


@launch_app.command("sft")
def launch_sft(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="SFT dataset NAME@VERSION (messages or prompt/completion)")],
    model: Annotated[str, typer.Option("--model", help="Base checkpoint directory")],
    out: Annotated[Path, typer.Option("--out", help="Output checkpoint directory")],
    epochs: Annotated[float, typer.Option("--epochs")] = 2.0,
    max_steps: Annotated[int, typer.Option("--max-steps")] = -1,
    lr: Annotated[float, typer.Option("--lr")] = 1e-5,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    cluster: Annotated[bool, typer.Option(
        "--cluster", help="Only print accelerate/torchrun/OpenRLHF commands")] = False,
) -> None:
    """Supervised fine-tuning with TRL's SFTTrainer; the run is recorded in the catalog's runs table."""
    from curate.launch import SFTSpec, accelerate_sft, openrlhf_sft, run_sft, torchrun_sft

    store = store_from(ctx)
    if cluster:
        dv = store.get(dataset)
        console.print(accelerate_sft(dv, model, str(out)), soft_wrap=True)
        console.print(torchrun_sft(dv, model, str(out)), soft_wrap=True)
        console.print(openrlhf_sft("EXPORT.jsonl  # curate export " + dv.manifest.ref, model, str(out)), soft_wrap=True)
        return
    _check_model(model)
    rec = run_sft(store, dataset, model, out, SFTSpec(epochs=epochs, max_steps=max_steps, learning_rate=lr,
                                                     batch_size=batch_size))
    console.print(f"run {rec.run_id}: {rec.dataset} -> {rec.output} "
                  f"(loss {rec.metrics.get('train_loss', float('nan')):.3f}, {rec.metrics['wall_s']:.0f}s)")


@launch_app.command("grpo")
def launch_grpo(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="rl_prompts NAME@VERSION (verl format)")],
    model: Annotated[str, typer.Option("--model", help="Policy checkpoint directory")],
    out: Annotated[Path, typer.Option("--out", help="Output checkpoint directory")],
    max_steps: Annotated[int, typer.Option("--max-steps")] = 100,
    num_generations: Annotated[int, typer.Option("--num-generations")] = 8,
    max_completion_length: Annotated[int, typer.Option("--max-completion-length")] = 1024,
    lr: Annotated[float, typer.Option("--lr")] = 1e-6,
    cluster: Annotated[bool, typer.Option("--cluster", help="Only print the verl command")] = False,
) -> None:
    """GRPO with TRL's GRPOTrainer, rewarded by curate's format, correctness and language checks."""
    from curate.launch import GRPOSpec, run_grpo, verl_grpo

    store = store_from(ctx)
    if cluster:
        console.print(verl_grpo(store.get(dataset), model), soft_wrap=True)
        return
    _check_model(model)
    spec = GRPOSpec(max_steps=max_steps, num_generations=num_generations, batch_size=num_generations,
                    max_completion_length=max_completion_length, learning_rate=lr)
    rec = run_grpo(store, dataset, model, out, spec)
    console.print(f"run {rec.run_id}: {rec.dataset} -> {rec.output} ({rec.metrics['wall_s']:.0f}s)")


RECIPE_FLOWS = {"rs_sft": "rejection_sampling", "cold_start_sft": "cold_start", "distill": "distill",
                "rl_prompts": "rl_prompts"}


@app.command("run")
def run_command(
    ctx: typer.Context,
    recipe_file: Annotated[Path, typer.Argument(help="Recipe YAML with a generate section")],
    workers: Annotated[int, typer.Option("--workers", min=1, help="Generation workers (shards s % K == i)")] = 1,
    dask: Annotated[int, typer.Option("--dask", min=0, help="Fan out on a local Dask cluster of N workers")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a recipe's flow once on Prefect's embedded (ephemeral) API: nothing to start by hand."""
    from curate.recipes import load_recipe

    recipe = load_recipe(recipe_file)
    if recipe.generate is None:
        raise UserError(f"{recipe_file}: no generate section; use `curate recipe` on checked data instead")
    from curate.flows import FLOWS

    fl = FLOWS[RECIPE_FLOWS[recipe.recipe]]
    if dask:
        from prefect_dask import DaskTaskRunner  # type: ignore[attr-defined]

        fl = fl.with_options(task_runner=DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": dask, "threads_per_worker": 1, "processes": True}))
        workers = max(workers, dask)
    home = ctx.obj.get("home") if ctx.obj else None
    result = fl(recipe_path=str(recipe_file.absolute()), home=str(home) if home else None, workers=workers)
    if as_json:
        print(orjson.dumps({k: v for k, v in result.items() if k != "generation"}, default=str).decode())
        return
    console.print(f"checked: [bold]{result['checked']}[/]  dataset: [bold]{result['dataset']}[/] "
                  f"({result['rows']:,} rows)  decisions: {result['selection']}")
    for stage, funnel in result["funnels"].items():
        print_funnel(int(funnel.get("total", 0)), {k: v for k, v in funnel.items() if k != "total"}, title=stage)


@app.command("serve")
def serve_command(
    recipe_file: Annotated[Path, typer.Argument(help="Recipe YAML served on a schedule")],
    cron: Annotated[str, typer.Option("--cron", help="Schedule for the recipe's flow")] = "0 2 * * *",
    model: Annotated[str | None, typer.Option("--train-model", help="Also serve training on each publish")] = None,
) -> None:
    """Serve the recipe's flow (cron) and, with --train-model, training triggered by each publish."""
    from prefect import serve
    from prefect.events import DeploymentEventTrigger

    from curate.flows import FLOWS
    from curate.recipes import load_recipe

    recipe = load_recipe(recipe_file)
    flow_name = RECIPE_FLOWS[recipe.recipe]
    deployments = [FLOWS[flow_name].to_deployment(name=f"{recipe.name}-scheduled", cron=cron,
                                                  parameters={"recipe_path": str(recipe_file.absolute())})]
    if model:
        trigger = DeploymentEventTrigger(expect={"curate.dataset.published"},
                                         match={"prefect.resource.id": f"curate.dataset.{recipe.name}"},
                                         parameters={"dataset": "{{ event.resource['curate.ref'] }}"})
        deployments.append(FLOWS["launch_training"].to_deployment(
            name=f"train-on-{recipe.name}", triggers=[trigger],
            parameters={"model": model, "out": str(Path("checkpoints").absolute() / recipe.name)}))
    serve(*deployments)


@app.command("demo")
def demo_command(
    workdir: Annotated[Path, typer.Option("--workdir", help="Store home for the demo (reused on rerun)")] = Path(
        "curate-demo"),
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of the results")] = False,
    fast: Annotated[bool, typer.Option("--fast", help="Tiny settings: checks the mechanics, not the gain")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """The R1 loop at toy scale on CPU: train a tiny model, sample, check, select, publish, SFT, evaluate."""
    import time

    from curate.demo import ExperimentSettings
    from curate.demo.pipeline import run_demo

    settings = ExperimentSettings.fast(seed) if fast else ExperimentSettings(seed=seed)
    t0 = time.perf_counter()
    res = run_demo(workdir, settings, say=lambda m: err.print(m) if not as_json else None)
    wall = time.perf_counter() - t0
    summary = {**res.summary(), "wall_s": round(wall, 1)}
    if True:  # the tables go to stdout either way; --json adds the machine-readable last line
        print_funnel(int(res.funnel.get("total", 0)), {k: v for k, v in res.funnel.items() if k != "total"},
                     title="funnel (demo_checked)")
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


@app.command("reasons")
def reasons_command() -> None:
    """Every reason code with its meaning."""
    t = RichTable()
    t.add_column("code")
    t.add_column("meaning")
    for code, meaning in sorted(reason_codes().items()):
        t.add_row(code, meaning)
    console.print(t)


@app.command("catalog")
def catalog_command(ctx: typer.Context) -> None:
    """Rebuild catalog.duckdb from the manifests (after moving or copying the store)."""
    store = store_from(ctx)
    store.refresh_catalog()
    console.print(f"catalog rebuilt: {store.catalog_path}")


def _register_stage_commands() -> None:
    """Commands whose code lives with their stage (imported lazily inside each command body)."""
    from curate.cli.dedup import dedup_command
    from curate.cli.generate import generate_command
    from curate.cli.judge import judge_app

    app.command("generate")(generate_command)
    app.command("dedup")(dedup_command)
    app.add_typer(judge_app, name="judge")


_register_stage_commands()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line and exit code 2."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("curate: aborted")
        sys.exit(130)
    except UsageError as e:
        msg = e.format_message().replace("\n", " ")  # type: ignore[attr-defined]
        ctx = getattr(e, "ctx", None)
        cmd = ctx.command_path if ctx else "curate"
        print(f"{cmd}: error: {msg} (see {cmd} --help)", file=sys.stderr)
        sys.exit(2)
    except ClickException as e:
        print(f"curate: error: {e.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
        sys.exit(2)
    except (UserError, InputError, StoreError, ConfigError, SchemaError) as e:
        print(f"curate: error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - last resort: still one line, the exit code says failure
        from curate.checks.runner import TooManyBadRows

        if isinstance(e, TooManyBadRows):
            print(f"curate: failed: {e}", file=sys.stderr)
            sys.exit(1)
        raise
    if isinstance(rv, int) and rv:
        sys.exit(rv)


if __name__ == "__main__":
    main()
