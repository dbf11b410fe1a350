"""Tags, diff, rm, gc, no-op publishes, the notebook API and --json listings."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

import curate
from curate.cli import app
from curate.schema import table
from curate.store import Store, StoreError
from curate.store.lifecycle import diff, gc, rm, set_tag


def _rows(ids: list[str]) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "sample_id": ids,
            "prompt_id": [f"p{i % 3}" for i in range(n)],
            "prompt": ["q"] * n,
            "response": ["<think>x</think>y"] * n,
            "task": ["math"] * n,
        }
    )


def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["--home", str(home), *args])
    return r.exit_code, r.stdout, r.stderr


def test_same_content_is_a_no_op_that_says_so(tmp_path: Path) -> None:
    s = Store(tmp_path)
    a = s.publish_frame("ds", "checked", table("sample"), _rows(["a", "b"]), config={"k": 1})
    b = s.publish_frame("ds", "checked", table("sample"), _rows(["a", "b"]), config={"k": 1})
    assert (a.unchanged, b.unchanged, b.manifest.version, s.versions("ds")) == (False, True, 1, [1])
    c = s.publish_frame("ds", "checked", table("sample"), _rows(["a", "b"]), config={"k": 2})  # config differs
    assert c.manifest.version == 2 and not c.unchanged


def test_tags_work_wherever_a_version_does(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.publish_frame("ds", "checked", table("sample"), _rows(["a"]))
    s.publish_frame("ds", "checked", table("sample"), _rows(["a", "b"]))
    assert _cli(tmp_path, "datasets", "tag", "ds@1", "prod")[0] == 0
    assert s.get("ds@prod").manifest.version == 1
    assert curate.open("ds@prod", home=tmp_path).manifest.rows == 1
    code, out, _ = _cli(tmp_path, "query", "select version from tags where tag = 'prod'", "--format", "csv")
    assert out.splitlines() == ["version", "1"]
    with pytest.raises(StoreError, match="no tag 'staging'"):
        s.get("ds@staging")
    code, _, err = _cli(tmp_path, "datasets", "tag", "ds@2", "7")
    assert code == 2 and "bad tag" in err
    set_tag(s, "ds@2", "prod")  # moves
    assert s.get("ds@prod").manifest.version == 2
    assert _cli(tmp_path, "datasets", "untag", "ds@prod")[0] == 0 and s.tags("ds") == {}


def test_diff_rows_funnel_config(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.publish_frame(
        "ds",
        "checked",
        table("sample"),
        _rows(["a", "b", "c"]),
        funnel={"total": 5, "format.x": 2},
        config={"k": 4, "policy": {"t": 0.6}},
    )
    s.publish_frame(
        "ds",
        "checked",
        table("sample"),
        _rows(["b", "c", "d", "e"]),
        funnel={"total": 5, "format.x": 1},
        config={"k": 4, "policy": {"t": 0.7}},
    )
    d = diff(s, "ds@1", "ds@2")
    assert (d.key, d.added, d.removed) == ("sample_id", ["d", "e"], ["a"])
    assert d.funnel == {"format.x": (2, 1)} and d.config == {"policy.t": (0.6, 0.7)}
    code, out, _ = _cli(tmp_path, "datasets", "diff", "ds@1", "ds@2", "--json")
    body = json.loads(out)
    assert code == 0 and body["added"] == 2 and body["removed"] == 1 and body["config"] == {"policy.t": [0.6, 0.7]}
    code, out, _ = _cli(tmp_path, "datasets", "diff", "ds@1", "ds@2")
    assert code == 0 and "+2 in, -1 out" in out


def test_rm_and_gc_keep_what_others_name(tmp_path: Path) -> None:
    s = Store(tmp_path)
    for i in range(3):
        s.publish_frame("base", "checked", table("sample"), _rows([f"b{i}"]))
    s.publish_frame("derived", "checked", table("sample"), _rows(["d"]), parents=("base@1",))
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    run.joinpath("run.json").write_bytes(
        orjson.dumps(
            {
                "run_id": "r1",
                "kind": "sft",
                "dataset": "base@2",
                "status": "finished",
                "created_at": "2026-01-01T00:00:00",
            }
        )
    )
    code, _, err = _cli(tmp_path, "datasets", "rm", "base@1")
    assert code == 2 and "needed by derived@1" in err and err.count("\n") == 1
    with pytest.raises(StoreError, match="run r1"):
        rm(s, "base@2")
    assert gc(s, dry_run=True) == []  # base@1 and base@2 are named; base@3 and derived@1 are latest
    s.publish_frame("derived", "checked", table("sample"), _rows(["d2"]))  # derived@1 is no longer latest
    code, out, _ = _cli(tmp_path, "datasets", "gc")
    assert code == 0 and "removed 2 version(s): base@1, derived@1" in out  # base@1 freed once derived@1 went
    assert s.versions("base") == [2, 3] and s.versions("derived") == [2]
    assert rm(s, "base@2", force=True) == "base@2"
    assert s.connect().execute("select count(*) from datasets where name = 'base'").fetchone() == (1,)
    s.publish_frame("base", "checked", table("sample"), _rows(["new"]))
    assert s.versions("base") == [3, 4]  # numbers are never reused


def test_notebook_api_and_json_listings(tmp_path: Path) -> None:
    s = Store(tmp_path)
    df = _rows(["a", "b", "c"]).with_columns(
        accepted=pl.Series([True, False, False]),
        reject_reasons=pl.Series([[], ["math.wrong"], ["format.x", "math.wrong"]]),
    )
    s.publish_frame("chk", "checked", table("checked_sample"), df, funnel={"total": 3, "accepted": 1, "math.wrong": 2})
    ds = curate.open("chk@1", home=tmp_path)
    assert ds.to_polars().height == 3 and ds.to_arrow().num_rows == 3 and ds.manifest.kind == "checked"
    assert ds.funnel.total == 3 and ds.funnel.rows()[0].share == pytest.approx(2 / 3)  # share of the input
    assert sorted(ds.sample(5, reason="math.wrong")["sample_id"]) == ["b", "c"]
    assert ds.to_hf().num_rows == 3
    code, out, _ = _cli(tmp_path, "datasets", "list", "--json")
    body = json.loads(out)
    assert code == 0 and [(d["name"], d["version"]) for d in body["datasets"]] == [("chk", 1)]
    code, out, _ = _cli(tmp_path, "datasets", "show", "chk", "--json")
    assert code == 0 and json.loads(out)["funnel"]["math.wrong"] == 2


def test_the_dataset_folder_loads_one_version_with_hf_datasets(tmp_path: Path) -> None:
    from datasets import load_dataset

    s = Store(tmp_path)
    s.publish_frame("ds", "checked", table("sample"), _rows(["a", "b", "c"]))
    s.publish_frame("ds", "checked", table("sample"), _rows(["d", "e"]))
    assert load_dataset(str(tmp_path / "datasets" / "ds"))["train"]["sample_id"] == ["d", "e"]  # not all five
    cfg = next(c for c in load_dataset_configs(tmp_path / "datasets" / "ds") if c.startswith("v1-"))
    assert load_dataset(str(tmp_path / "datasets" / "ds"), cfg)["train"]["sample_id"] == ["a", "b", "c"]
    before = s.fingerprint()
    s.refresh_catalog()
    assert s.fingerprint() == before  # the folder card is derived: it never makes the catalog look stale


def load_dataset_configs(folder: Path) -> list[str]:
    import yaml

    header = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    return [c["config_name"] for c in header["configs"]]
