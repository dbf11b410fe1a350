"""``curate judge``: probe a judge model for prompt injection, and measure its agreement with the rules.

- ``curate judge probe --engine openai --model NAME --option base_url=http://host:8000/v1`` judges the
  probe suite and prints probe, score, control score and pass/fail; exit status 1 if any probe fails.
- ``curate judge calibrate CHECKED.parquet`` prints the confusion matrix of judge verdicts against the
  math/code verifiers; with ``--engine/--model`` it first judges (reference rubric) up to ``--sample``
  rule-decided rows, so the judge can be calibrated before it is trusted where rules cannot decide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import polars as pl
import typer
import yaml
from rich.console import Console
from rich.table import Table

judge_app = typer.Typer(no_args_is_help=True, help="LLM judge: probe a judge model, calibrate it against rules.")

EngineOpt = Annotated[str, typer.Option("--engine", help="hf | openai | vllm")]
ModelOpt = Annotated[str, typer.Option("--model", help="Judge checkpoint path or served model name")]
OptionsOpt = Annotated[
    list[str] | None,
    typer.Option("--option", "-O", help="Engine option KEY=VALUE (repeatable), e.g. base_url=http://localhost:8000/v1"),
]
KeyEnvOpt = Annotated[str, typer.Option("--api-key-env", help="Environment variable holding the API key")]


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are read as YAML scalars (numbers, booleans, null, or strings)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--option")
        out[key.strip()] = yaml.safe_load(value) if value else ""
    return out


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


@judge_app.command("probe")
def probe_command(
    engine: EngineOpt,
    model: ModelOpt,
    option: OptionsOpt = None,
    api_key_env: KeyEnvOpt = "",
    rubric: Annotated[
        list[str] | None, typer.Option("--rubric", help="Rubric to probe (repeatable; default: every built-in)")
    ] = None,
    max_tokens: Annotated[int, typer.Option(help="Judge reply budget")] = 2048,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per probe instead of a table")] = False,
) -> None:
    """Judge adversarial probes against honest controls; fails (exit 1) if any probe beats its control."""
    from curate.judge.check import JudgeConfig, build_engine
    from curate.judge.probes import run_probes
    from curate.judge.rubrics import BUILTIN_RUBRICS, load_rubric

    cfg = JudgeConfig(engine=engine, model=model, engine_options=parse_options(option), api_key_env=api_key_env)
    rubrics = [load_rubric(r) for r in rubric] if rubric else list(BUILTIN_RUBRICS.values())
    eng = build_engine(cfg)
    try:
        results = run_probes(eng, model, rubrics, max_tokens=max_tokens)
    finally:
        eng.close()
    if as_json:
        for r in results:
            typer.echo(
                orjson.dumps(
                    {
                        "probe": r.probe,
                        "rubric": r.rubric,
                        "score": r.score,
                        "control_score": r.control_score,
                        "verdict": r.verdict,
                        "rationale": r.rationale,
                    }
                ).decode()
            )
    else:
        t = Table(title=f"judge probes: {model}")
        for col in ("probe", "rubric", "score", "control score", "verdict"):
            t.add_column(col)
        colors = {"pass": "green", "fail": "red", "undecided": "yellow"}
        for r in results:
            t.add_row(r.probe, r.rubric, _fmt(r.score), _fmt(r.control_score), f"[{colors[r.verdict]}]{r.verdict}[/]")
        Console().print(t)
    n_fail = sum(r.verdict == "fail" for r in results)
    n_und = sum(r.verdict == "undecided" for r in results)
    Console(stderr=True).print(f"{len(results)} probes: {n_fail} failed, {n_und} undecided (no control verdict)")
    raise typer.Exit(1 if n_fail else 0)


@judge_app.command("calibrate")
def calibrate_command(
    dataset: Annotated[
        Path, typer.Argument(help="Checked Parquet file (judge and math/code columns)", exists=True, dir_okay=False)
    ],
    by: Annotated[str | None, typer.Option(help="Group by this column (e.g. task)")] = "task",
    engine: Annotated[str, typer.Option("--engine", help="Judge first with this engine (hf | openai | vllm)")] = "",
    model: Annotated[str, typer.Option("--model", help="Judge model (with --engine)")] = "",
    option: OptionsOpt = None,
    api_key_env: KeyEnvOpt = "",
    sample: Annotated[int, typer.Option(help="With --engine: rule-decided rows to judge")] = 200,
    cache_dir: Annotated[Path | None, typer.Option(help="With --engine: verdict cache directory")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Agreement of judge verdicts with the rule verifiers (confusion matrix, accuracy, kappa)."""
    from curate.judge.calibration import agreement

    df = pl.read_parquet(dataset)
    if engine:
        if not model:
            raise typer.BadParameter("--engine needs --model", param_hint="--model")
        df = judge_rule_decided(df, engine, model, parse_options(option), api_key_env, sample, cache_dir)
    result = agreement(df, by=by)
    if as_json:
        typer.echo(orjson.dumps({k: v.as_dict() for k, v in result.items()}).decode())
        return
    if not result:
        Console(stderr=True).print("[yellow]no rows with both a judge verdict (reference rubric) and a rule verdict[/]")
        raise typer.Exit(1)
    t = Table(title="judge vs rules (pass = correct)")
    for col in (
        "group",
        "n",
        "judge pass & rule ok",
        "judge pass & rule wrong",
        "judge fail & rule ok",
        "judge fail & rule wrong",
        "accuracy",
        "precision",
        "recall",
        "kappa",
    ):
        t.add_column(col)
    for g, a in result.items():
        t.add_row(
            g,
            str(a.n),
            str(a.tp),
            str(a.fp),
            str(a.fn),
            str(a.tn),
            _fmt(a.accuracy),
            _fmt(a.precision),
            _fmt(a.recall),
            _fmt(a.kappa),
        )
    Console().print(t)


def judge_rule_decided(
    df: pl.DataFrame,
    engine: str,
    model: str,
    options: dict[str, Any],
    api_key_env: str,
    sample: int,
    cache_dir: Path | None,
) -> pl.DataFrame:
    """Judge up to ``sample`` rows that a rule decided (reference rubric, any reject reasons), for calibration."""
    from curate.judge.cache import VerdictCache
    from curate.judge.calibration import rule_verdict
    from curate.judge.check import JudgeConfig, build_engine
    from curate.judge.rubrics import REFERENCE
    from curate.judge.run import Item, JudgeParams, judge_items

    cfg = JudgeConfig(engine=engine, model=model, engine_options=options, api_key_env=api_key_env)
    has_ref = pl.col("reference").is_not_null() if "reference" in df.columns else pl.lit(False)
    df = df.with_row_index("_row")
    pick = df.filter(rule_verdict(df).is_not_null() & has_ref)
    if pick.height > sample:
        pick = pick.sample(sample, seed=0)
    items = [
        Item(REFERENCE, p or "", r or "", ref)
        for p, r, ref in zip(pick["prompt"], pick["response"], pick["reference"], strict=True)
    ]
    eng = build_engine(cfg)
    try:
        outs = judge_items(items, eng, VerdictCache(cache_dir), JudgeParams(model=model))
    finally:
        eng.close()
    judged = pl.DataFrame(
        {
            "_row": pick["_row"],
            "_v": [None if o.score is None else ("pass" if o.score >= cfg.threshold else "fail") for o in outs],
        },
        schema={"_row": pl.UInt32, "_v": pl.String},
    )
    out = df.join(judged, on="_row", how="left").sort("_row")
    return out.with_columns(
        pl.col("_v").alias("judge_verdict"),
        pl.when(pl.col("_v").is_not_null()).then(pl.lit(REFERENCE.tag)).alias("judge_rubric"),
    ).drop("_row", "_v")
