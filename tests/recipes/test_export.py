"""Every export format on every kind (or a clear refusal), and the Hugging Face folder with its card."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate.recipes.hf import upload_plan
from curate.store import Store
from curate.testing.example_store import build_example_store


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("example")
    return home, build_example_store(home, n_prompts=12, n_samples=4)


def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["--home", str(home), *args])
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize("key", ["checked_a", "rs_sft_b", "selection", "rl_prompts", "pass_rates"])
@pytest.mark.parametrize("fmt", ["openrlhf", "jsonl", "parquet"])
def test_every_format_on_every_kind(example: tuple[Path, dict[str, str]], tmp_path: Path, key: str, fmt: str) -> None:
    home, refs = example
    out = tmp_path / f"out.{fmt}"
    code, _, err = _cli(home, "export", refs[key], "--format", fmt, "--out", str(out))
    kind = Store(home).get(refs[key]).manifest.kind
    if fmt == "openrlhf" and kind not in ("rs_sft", "rl_prompts"):
        assert code == 2 and err.count("\n") == 1 and "--format openrlhf exports SFT and RL datasets" in err
        assert not out.exists()
        return
    assert code == 0, err
    rows = Store(home).get(refs[key]).manifest.rows
    n = pl.read_parquet(out).height if fmt == "parquet" else len(out.read_text().splitlines())
    assert n == rows
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left beside --out


def test_hf_folder_loads_as_exactly_that_version(example: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    from datasets import load_dataset

    home, refs = example
    store = Store(home)
    dv = store.get(refs["rs_sft_a"])
    assert len(store.versions(dv.manifest.name)) > 1  # the folder of the dataset holds other versions too
    out = tmp_path / "hf"
    code, _, err = _cli(home, "export", dv.manifest.ref, "--format", "hf", "--out", str(out), "--license", "mit")
    assert code == 0, err
    ds = load_dataset(str(out))
    assert list(ds) == ["train"] and ds["train"].num_rows == dv.manifest.rows
    assert sorted(ds["train"]["sample_id"]) == sorted(dv.scan().collect()["sample_id"].to_list())
    text = (out / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["configs"][0]["data_files"][0]["path"] == "data/*.parquet" and header["license"] == "mit"
    assert header["configs"][0]["default"] is True and header["configs"][0]["config_name"].startswith("rs_sft-v1-")
    for needle in (
        "## Funnel",
        "## Lineage",
        refs["checked_a"],
        "## Source checkpoints",
        "ckpt-a",
        "## Licenses",
        "- mit",
    ):
        assert needle in text, needle
    assert "select." in text or "math." in text  # reasons with their meanings
    code, _, err = _cli(home, "export", dv.manifest.ref, "--format", "hf", "--out", str(out))
    assert code == 2 and "not empty" in err  # never written over
    plan = upload_plan(out, "me/rs")
    assert [r for _, r in plan] == ["README.md", "data/train-00000-of-00001.parquet"]
    code, out_text, _ = _cli(
        home, "export", dv.manifest.ref, "--format", "hf", "--out", str(tmp_path / "hf2"), "--push", "me/rs", "--plan"
    )
    assert code == 0 and "me/rs:README.md" in out_text


def test_hf_export_of_a_checked_dataset(example: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    from datasets import load_dataset

    home, refs = example
    code, out, err = _cli(home, "export", refs["checked_a"], "--format", "hf", "--out", str(tmp_path / "c"))
    assert code == 0, err
    assert load_dataset(str(tmp_path / "c"))["train"].num_rows == Store(home).get(refs["checked_a"]).manifest.rows


def test_recipe_outputs_are_named_after_the_recipe(example: tuple[Path, dict[str, str]]) -> None:
    home, refs = example
    names = Store(home).names()
    assert "pass_rates" not in names and "rs_sft_pass_rates" in names and "rl_prompts_pass_rates" in names
    code, out, _ = _cli(home, "datasets", "list", "--json")
    assert {d["name"] for d in json.loads(out)["datasets"]} >= {"rs_sft_selection", "rl_prompts_selection"}


def test_two_versions_exported_to_same_named_folders_load_as_themselves(
    example: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    from datasets import load_dataset

    home, refs = example
    store = Store(home)
    for ref, where in ((refs["rs_sft_a"], tmp_path / "x" / "ds"), (refs["rs_sft_b"], tmp_path / "y" / "ds")):
        assert _cli(home, "export", ref, "--format", "hf", "--out", str(where))[0] == 0
        ids = sorted(load_dataset(str(where))["train"]["sample_id"])
        assert ids == sorted(store.get(ref).scan().collect()["sample_id"].to_list())


def test_push_without_a_token_is_refused_before_any_work(
    example: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, refs = example
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    out = tmp_path / "never"
    code, _, err = _cli(home, "export", refs["rs_sft_b"], "--format", "hf", "--out", str(out), "--push", "me/rs")
    assert code == 2 and "Hugging Face token" in err and err.count("\n") == 1
    assert not out.exists()
