"""The inspection notebooks run top to bottom (nbclient, a real kernel), and the example store behind them
is deterministic and shows every defect the notebooks are there to find."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import polars as pl
import pytest
from nbclient import NotebookClient

from curate import Store, table
from curate.testing.example_store import CHECKPOINTS, build_example_store, discover_refs, make_samples, problems

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def example_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("example-store")
    build_example_store(home)
    return home


def execute(name: str, home: Path | None = None) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    if home is not None:  # what papermill -p HOME does: a cell after the one tagged "parameters"
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(f"HOME = {str(home)!r}"))
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()  # raises CellExecutionError
    return nb


def outputs(nb: nbformat.NotebookNode, kind: str) -> int:
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if kind in o.get("data", {}))


def test_inspect_samples_builds_its_own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURATE_HOME", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's mkdtemp lands here, not in /tmp
    nb = execute("inspect_samples.ipynb")
    assert outputs(nb, "text/html") >= 3  # the rendered samples
    assert any(p.name.startswith("curate-example-") for p in tmp_path.iterdir())


@pytest.mark.parametrize(("name", "figures"), [("funnel.ipynb", 4), ("compare_versions.ipynb", 3)])
def test_notebook_on_existing_store(
    name: str, figures: int, example_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CURATE_HOME", str(example_home))
    nb = execute(name)
    assert outputs(nb, "image/png") >= figures
    setup = next(c for c in nb.cells if c.cell_type == "code" and "open_store(" in c.source)
    assert str(example_home) in setup.outputs[-1]["data"]["text/plain"]  # used the store it was given


@pytest.fixture(scope="module")
def demo_like_home(example_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store shaped like the demo's or a flow's: ``demo_checked`` (one checked version, no ``checked``
    view), recipe outputs under their own names, prompt/completion SFT rows."""
    from curate.recipes import recipe_from_dict, run_recipe

    home = tmp_path_factory.mktemp("demo-like")
    store = Store(home)
    df = Store(example_home).get("checked@2").scan().collect()
    ref = store.publish_frame("demo_checked", "checked", table("checked_sample"), df).manifest.ref
    run_recipe(
        recipe_from_dict({"recipe": "rs_sft", "name": "demo_rs_sft", "format": "prompt_completion", "inputs": [ref]}),
        store,
    )
    run_recipe(recipe_from_dict({"recipe": "rl_prompts", "name": "demo_rl_prompts", "inputs": [ref]}), store)
    return home


@pytest.mark.parametrize("name", ["inspect_samples.ipynb", "funnel.ipynb", "compare_versions.ipynb"])
def test_notebook_on_a_demo_like_store_through_its_parameters(
    name: str, demo_like_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CURATE_HOME", raising=False)
    nb = execute(name, home=demo_like_home)
    setup = next(c for c in nb.cells if c.cell_type == "code" and "open_store(" in c.source)
    assert "demo_checked@1" in setup.outputs[-1]["data"]["text/plain"]
    assert outputs(nb, "image/png") + outputs(nb, "text/html") >= 2


def test_notebooks_have_a_parameters_cell_and_no_hard_coded_views() -> None:
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "HOME = None" in tagged[0].source and "REFS = {}" in tagged[0].source
        for c in nb.cells:
            assert "FROM checked" not in c.source and "max_chars" not in c.source, path.name


def test_notebooks_match_builder_and_have_no_outputs() -> None:
    r = subprocess.run([sys.executable, str(NOTEBOOKS / "_build.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


def test_example_store_contents(example_home: Path) -> None:
    store = Store(example_home)
    refs = discover_refs(store)
    assert (refs["checked_a"], refs["checked_b"]) == ("checked@1", "checked@2")
    assert refs["rs_sft_b"] == "rs_sft@2" and refs["rl_prompts"] == "rl_prompts@1"
    a, b = (store.get(refs[k]).manifest for k in ("checked_a", "checked_b"))
    assert a.rows == b.rows == 320
    assert b.funnel["accepted"] > a.funnel["accepted"]  # ckpt-b is the stronger checkpoint
    seen = set(a.funnel) | set(b.funnel)
    for code in (
        "math.incorrect",
        "format.truncated",
        "format.missing_think",
        "lang.mixed",
        "readability.repeated_lines",
        "math.conflicting_answers",
    ):
        assert code in seen, code
    rl = store.get(refs["rl_prompts"]).scan().collect()
    assert rl.height > 0
    rates = store.get(refs["pass_rates"]).scan().collect()
    assert rates["pass_rate"].is_between(0.0, 1.0).all()


@pytest.mark.parametrize("checkpoint", CHECKPOINTS, ids=lambda c: c.name)
def test_samples_are_deterministic(checkpoint: object) -> None:
    probs = problems(3, 3)
    one, two = make_samples(checkpoint, probs, n=4), make_samples(checkpoint, probs, n=4)  # type: ignore[arg-type]
    assert one.equals(two)
    assert one["sample_id"].n_unique() == one.height == 24
    assert one.filter(pl.col("response").str.contains("</think>"))["response"].str.contains(r"\\boxed").any()


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": ["s1", "s2", "s3", "s4"],
            "prompt_id": ["p1", "p1", "p2", "p2"],
            "sample_index": [0, 1, 0, 1],
            "prompt": ["q1", "q1", "q2", "q2"],
            "checkpoint": ["a", "a", "b", "b"],
            "response": [
                "<think>fine</think>The answer is 4.",
                "<think>so <b>bold</b> and never closed",
                "<think>x</think>y",
                "no tags at all",
            ],
            "accepted": [True, False, False, False],
            "reject_reasons": [
                [],
                ["format.truncated", "math.no_answer"],
                ["math.incorrect"],
                ["format.missing_think", "math.no_answer"],
            ],
            "tokens_out": [10, 2048, 5, 7],
        }
    )


def test_funnel_table_counts_every_reason_with_its_meaning() -> None:
    from curate.report.plots import compare_funnels, funnel_table

    ft = funnel_table(_frame())
    assert ft.row(0, named=True) == {
        "reason": "math.no_answer",
        "check": "math",
        "rows": 2,
        "share": 0.5,
        "meaning": ft["meaning"][0],
    }
    assert ft["meaning"][0].startswith("No answer")
    assert ft["rows"].sum() == 5 and ft.height == 4
    wide = compare_funnels({"x": _frame(), "y": _frame().filter(pl.col("prompt_id") == "p2")})
    row = wide.filter(pl.col("reason") == "format.truncated").row(0, named=True)
    assert (row["x"], row["y"]) == (0.25, 0.0)
    assert wide.filter(pl.col("reason") == "(accepted)")["x"][0] == 0.25


def test_sample_rendering_splits_reasoning_and_escapes() -> None:
    from curate.report.plots import contrasting_pair, sample_html, side_by_side_html, split_sample

    good, bad = contrasting_pair(_frame())
    assert (good["sample_id"], bad["sample_id"]) == ("s1", "s2")
    assert split_sample(good) == ("fine", "The answer is 4.")
    html = sample_html(bad)
    assert "never closed" in html and "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert "format.truncated, math.no_answer" in html
    assert html in side_by_side_html([good, bad])
    with pytest.raises(ValueError, match="both"):
        contrasting_pair(_frame().filter(pl.col("prompt_id") == "p2"))


def test_plots_draw_without_a_display() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from curate.recipes.select import pass_rates
    from curate.report import plots

    df = _frame().with_columns(
        pl.lit("math").alias("task"),
        pl.lit(None, pl.Float64).alias("math_score"),
        pl.lit(1.0).alias("lang_target_share"),
    )
    assert len(plots.funnel_bar(plots.funnel_table(df)).patches) == 4
    assert plots.length_hist(df).get_legend() is not None
    plots.pass_rate_hist(pass_rates(df))
    plots.score_hist(df)
    plots.compare_bar(plots.compare_funnels({"x": df, "y": df}))
    plots.pass_rate_scatter(pass_rates(df), pass_rates(df))


def test_open_store_prefers_curate_home(example_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from curate.store import StoreError
    from curate.testing.example_store import open_store

    monkeypatch.setenv("CURATE_HOME", str(example_home))
    store, refs = open_store()
    assert store.home == example_home and refs["selection"] == "rs_sft_selection@2"
    other = Store(tmp_path / "no-checked")
    other.publish_frame("notes", "misc", table("pass_rate"), pl.DataFrame())
    monkeypatch.setenv("CURATE_HOME", str(other.home))
    with pytest.raises(StoreError, match="checked"):
        open_store()
