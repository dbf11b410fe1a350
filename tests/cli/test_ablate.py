"""``curate ablate`` end to end on the fast toy: check -> variants -> SFT per seed -> evaluate -> table."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.demo import ExperimentConfig, build_toy_model, make_problems, noisy_trace, reference_trace
from curate.store import Store

MIXED = " 所以答案是对的，我们再检查一遍。"


def _samples(path: Path) -> Path:
    """Four samples per toy problem: correct, a realistic mistake, correct in mostly Chinese, cut at the limit."""
    rng = random.Random(0)
    rows = []
    for p in make_problems(0, 8):
        ok = reference_trace(p)
        for i, (response, finish) in enumerate(
            (
                (ok, "stop"),
                (noisy_trace(p, rng)[0], "stop"),
                (ok.replace("\n</think>", MIXED + "\n</think>"), "stop"),
                (ok.replace("The answer is", "So the result is"), "length"),  # format.truncated alone
            )
        ):
            rows.append({**p.row(), "response": response, "sample_index": i, "finish_reason": finish})
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.slow
def test_ablate_publishes_variants_runs_and_a_queryable_table(tmp_path: Path) -> None:
    home = tmp_path / "store"
    model = build_toy_model(tmp_path / "toy", ExperimentConfig.fast().toy)
    code, out, errs = _invoke(
        "--home", str(home), "check", str(_samples(tmp_path / "samples.jsonl")),
        "--out", str(tmp_path / "checked.parquet"), "--publish", "toy_checked",
    )  # fmt: skip
    assert code == 0, errs
    held_out = tmp_path / "eval.jsonl"
    held_out.write_bytes(b"".join(orjson.dumps(p.row()) + b"\n" for p in make_problems(0, 3, start=100)))
    code, out, errs = _invoke(
        "--home", str(home), "ablate", "rs_sft", "--checked", "toy_checked", "--model", str(model),
        "--eval", str(held_out), "--seeds", "0,1", "--filters", "format,lang", "--steps", "2",
        "--batch-size", "4", "--lr", "3e-4", "--n", "1", "--max-tokens", "24", "--json",
    )  # fmt: skip
    assert code == 0, errs
    result = orjson.loads(out.strip().splitlines()[-1])
    variants = {v["variant"]: v for v in result["variants"]}
    assert list(variants) == ["all_on", "no_format", "no_lang"]
    on, no_format = variants["all_on"], variants["no_format"]
    assert on["rows"] > 0 and no_format["rows"] > on["rows"] and no_format["readmitted"] > 0
    assert all(len(v["runs"]) == 2 and len(v["pass_at_1"]) == 2 for v in variants.values())
    assert on["delta_mean"] == 0.0 and on["delta_std"] == 0.0
    assert "[6/6]" in errs and "plot:" in errs
    assert Path(result["plot"]).is_file()
    store = Store(home)
    table = store.get(result["dataset"])
    assert table.manifest.kind == "ablation" and table.manifest.parents[0].startswith("toy_checked@")
    assert store.get(no_format["dataset"]).manifest.parents == (store.get("toy_checked").manifest.ref,)
    store.refresh_catalog()
    con = duckdb.connect(str(store.catalog_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM rs_sft_ablation").fetchone() == (3,)
        runs = con.execute("SELECT count(*) FROM runs WHERE dataset LIKE 'rs_sft_ablate_%'").fetchone()
        assert runs == (6,)
    finally:
        con.close()


def test_ablate_refuses_mistakes_before_any_training(tmp_path: Path) -> None:
    home = tmp_path / "store"
    held_out = tmp_path / "eval.jsonl"
    held_out.write_bytes(b"".join(orjson.dumps(p.row()) + b"\n" for p in make_problems(0, 2)))
    base = ["--home", str(home), "ablate"]
    code, _, errs = _invoke(*base, "rl_prompts", "--checked", "x", "--model", str(tmp_path), "--eval", str(held_out))
    assert code == 2 and "recipe must be" in errs
    code, _, errs = _invoke(*base, "nope", "--checked", "x", "--model", str(tmp_path), "--eval", str(held_out))
    assert code == 2 and "neither a recipe file" in errs
    code, _, errs = _invoke(*base, "rs_sft", "--checked", "x", "--model", str(tmp_path), "--eval", str(held_out))
    assert code == 2 and "not a checkpoint directory" in errs
    code, _, errs = _invoke(
        *base, "rs_sft", "--checked", "x", "--model", str(tmp_path), "--eval", "x.jsonl", "--seeds", "a"
    )
    assert code == 2 and "--seeds" in errs
