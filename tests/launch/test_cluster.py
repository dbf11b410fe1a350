"""Every printed cluster command is parsed by its trainer's own parser or config schema.

- TRL 1.16 (installed): ``trl.scripts.sft``'s own ``TrlParser`` over (ScriptArguments, SFTConfig, ModelConfig,
  DatasetMixtureConfig), strict about unknown arguments; the launchers by accelerate's and torchrun's parsers.
- verl 0.9.1 and OpenRLHF 0.11.2 do not install beside curate (their transformers pins, flash-attn): their
  schemas are recorded from the released packages in ``tests/data/trainers`` (see ``record.py`` there):
  verl's composed Hydra config (an override's key must exist, its value must fit the default's type) and
  OpenRLHF's argparse parsers, rebuilt here and handed the printed arguments, plus the checks each CLI
  makes right after parsing.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from curate.launch.cluster import (
    CHECKED_AGAINST,
    ClusterPaths,
    Command,
    accelerate_sft,
    openrlhf_grpo,
    openrlhf_sft,
    torchrun_sft,
    verl_grpo,
)
from curate.store import Store
from curate.testing.example_store import build_example_store

DATA = Path(__file__).parents[1] / "data" / "trainers"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, str]]:
    home = tmp_path_factory.mktemp("cluster") / "store"
    refs = build_example_store(home)
    return Store(home), refs


def _roundtrip(cmd: Command) -> list[str]:
    """What the shell hands the trainer: the printed line split again."""
    words = shlex.split(cmd.shell())
    assert tuple(words) == cmd.argv
    return words[cmd.launcher :]


# -- TRL ------------------------------------------------------------------------------------------------


def _trl_parse(args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    import transformers.training_args as ta
    from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser

    monkeypatch.setattr(ta, "is_torch_bf16_gpu_available", lambda: True)  # the cluster's GPUs do bf16
    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig, DatasetMixtureConfig))
    return parser.parse_args_into_dataclasses(args=args, return_remaining_strings=False)


@pytest.mark.parametrize("make", [accelerate_sft, torchrun_sft])
def test_trl_sft_parses_with_trl_parser(
    example: tuple[Store, dict[str, str]], make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, refs = example
    dv = store.get(refs["rs_sft_b"])
    cmd = make(dv, ClusterPaths(store.home, "/mnt/curate"), "/models/base", "/ckpt/out", max_length=12345)
    script, sft, model, _mix = _trl_parse(_roundtrip(cmd), monkeypatch)
    assert script.dataset_name == f"/mnt/curate/datasets/{dv.manifest.name}/v{dv.manifest.version}"
    assert sft.max_length == 12345 and sft.bf16 and sft.output_dir == "/ckpt/out"
    assert model.model_name_or_path == "/models/base"
    launcher = cmd.argv[: cmd.launcher]
    if launcher[0] == "accelerate":
        from accelerate.commands.launch import launch_command_parser

        ns = launch_command_parser().parse_args(list(cmd.argv[2:]))
        assert ns.module and ns.training_script == "trl.scripts.sft" and ns.num_processes == 8
    else:
        from torch.distributed.run import get_args_parser

        ns = get_args_parser().parse_args(list(cmd.argv[1:]))
        assert ns.module and ns.training_script == "trl.scripts.sft"


def test_trl_dataset_folder_loads_as_the_cluster_will(
    example: tuple[Store, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative to the store (no --remote-root), run from the store root: ``load_dataset`` reads the version."""
    from datasets import load_dataset

    store, refs = example
    dv = store.get(refs["rs_sft_b"])
    cmd = accelerate_sft(dv, ClusterPaths(store.home), "m", "out")
    script = _trl_parse(_roundtrip(cmd), monkeypatch)[0]
    assert not Path(script.dataset_name).is_absolute()
    monkeypatch.chdir(store.home)
    ds = load_dataset(script.dataset_name, split=script.dataset_train_split)
    assert len(ds) == dv.manifest.rows and "messages" in ds.column_names


# -- verl -----------------------------------------------------------------------------------------------


def _verl_schema() -> dict[str, Any]:
    data = json.loads((DATA / f"verl-{CHECKED_AGAINST['verl']}.json").read_text())
    assert data["version"] == CHECKED_AGAINST["verl"]
    return data


def _hydra_value(raw: str) -> Any:
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1].strip()
        return [] if not inner else [_hydra_value(x.strip()) for x in inner.split(",")]
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None}.get(raw, raw)


def verl_check(args: list[str]) -> dict[str, Any]:
    """Hydra's rule for plain overrides (the key exists in the composed ppo_trainer config) and the type of
    each numeric, boolean or list default (checked by verl's dataclass configs once composed). A ``str`` or
    ``null`` default takes any value, as Hydra lets ``data.train_files`` become a list."""
    keys = _verl_schema()["keys"]
    out: dict[str, Any] = {}
    for arg in args:
        key, sep, raw = arg.partition("=")
        assert sep and not key.startswith(("+", "~")), arg
        assert key in keys, f"verl {CHECKED_AGAINST['verl']} has no config key {key!r}"
        value, want = _hydra_value(raw), keys[key]
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "list": isinstance(value, list),
        }.get(want, True)
        assert ok, f"{key}: {raw!r} does not fit verl's {want}"
        out[key] = value
    return out


def test_verl_grpo_matches_verl_config(example: tuple[Store, dict[str, str]]) -> None:
    store, refs = example
    dv = store.get(refs["rl_prompts"])
    cmd = verl_grpo(dv, ClusterPaths(store.home, "/mnt/curate"), "/models/sft", "/ckpt/grpo")
    assert cmd.argv[: cmd.launcher] == ("python3", "-m", "verl.trainer.main_ppo")
    cfg = verl_check(_roundtrip(cmd))
    assert cfg["algorithm.adv_estimator"] == "grpo"
    assert cfg["data.train_files"] == [f"/mnt/curate/datasets/rl_prompts/v1/{p.name}" for p in dv.parts]
    assert cfg["data.val_files"]  # verl loads a validation set before training
    path = cfg["reward.custom_reward_function.path"]
    assert path == "/mnt/curate/launch/verl_reward.py"
    shim = store.home / "launch" / "verl_reward.py"
    ns: dict[str, Any] = {}
    exec(compile(shim.read_text(), str(shim), "exec"), ns)  # what verl does with the file
    score = ns[cfg["reward.custom_reward_function.name"]]("curate/math", "<think>2+2</think>\\boxed{4}", "4", {})
    assert score["score"] == 1.0


def test_verl_check_refuses_unknown_keys() -> None:
    with pytest.raises(AssertionError, match="no config key"):
        verl_check(["custom_reward_function.paht=/x.py"])
    with pytest.raises(AssertionError, match="does not fit"):
        verl_check(["actor_rollout_ref.rollout.n=sixteen"])


# -- OpenRLHF -------------------------------------------------------------------------------------------


def openrlhf_parser(module: str) -> argparse.ArgumentParser:
    data = json.loads((DATA / f"openrlhf-{CHECKED_AGAINST['openrlhf']}.json").read_text())
    assert data["version"] == CHECKED_AGAINST["openrlhf"]
    parser = argparse.ArgumentParser(prog=module, allow_abbrev=False, exit_on_error=False)
    types = {"int": int, "float": float, "str": str, None: None}
    for a in data["parsers"][module]:
        kind = a["action"]
        if kind == "_StoreTrueAction":
            parser.add_argument(*a["flags"], dest=a["dest"], action="store_true")
        elif kind == "_StoreFalseAction":
            parser.add_argument(*a["flags"], dest=a["dest"], action="store_false")
        else:
            assert kind == "_StoreAction", a
            kw: dict[str, Any] = {"dest": a["dest"], "type": types[a["type"]]}
            if a["nargs"] is not None:
                kw["nargs"] = a["nargs"]
            if a["choices"]:
                kw["choices"] = a["choices"]
            parser.add_argument(*a["flags"], **kw)
    return parser


def _openrlhf_parse(cmd: Command) -> dict[str, Any]:
    module = cmd.entry.rsplit(".", 1)[1]
    ns = openrlhf_parser(module).parse_args(_roundtrip(cmd))
    return vars(ns)


def test_openrlhf_sft_parses(example: tuple[Store, dict[str, str]]) -> None:
    store, refs = example
    dv = store.get(refs["rs_sft_b"])
    cmd = openrlhf_sft(dv, ClusterPaths(store.home), "/models/base", "/ckpt/sft", max_length=9000)
    assert cmd.argv[: cmd.launcher] == ("deepspeed", "--num_gpus=8", "--module", "openrlhf.cli.train_sft")
    a = _openrlhf_parse(cmd)
    assert a["data.input_key"] == "messages" and a["data.apply_chat_template"] and a["data.max_len"] == 9000
    assert not a["data.multiturn"] or a["data.apply_chat_template"]  # train_sft's own assertion
    assert a["data.dataset"].split(",") == [f"datasets/rs_sft/v2/{p.name}" for p in dv.parts]
    assert all(p.endswith(".parquet") for p in a["data.dataset"].split(","))  # OpenRLHF loads by extension


def test_openrlhf_sft_prompt_completion_keys(tmp_path: Path) -> None:
    import polars as pl

    from curate.recipes import recipe_from_dict, run_recipe
    from curate.schema import table

    store = Store(tmp_path / "s")
    rows = [
        {
            "sample_id": f"s{i}",
            "prompt_id": f"p{i}",
            "task": "math",
            "prompt": "1+1?",
            "response": "<think>ok</think>\\boxed{2}",
            "reference": "2",
            "accepted": True,
            "reject_reasons": [],
        }
        for i in range(3)
    ]
    checked = store.publish_frame("c", "checked", table("checked_sample"), pl.DataFrame(rows))
    pub = run_recipe(
        recipe_from_dict(
            {"recipe": "distill", "name": "d", "inputs": [checked.manifest.ref], "format": "prompt_completion"}
        ),
        store,
    )
    a = _openrlhf_parse(openrlhf_sft(pub.dataset, ClusterPaths(store.home), "m", "o"))
    assert (a["data.input_key"], a["data.output_key"]) == ("prompt", "completion")
    cols = pl.read_parquet(pub.dataset.parts[0]).columns
    assert {"prompt", "completion"} <= set(cols)


def test_openrlhf_grpo_parses_and_passes_its_checks(example: tuple[Store, dict[str, str]]) -> None:
    store, refs = example
    dv = store.get(refs["rl_prompts"])
    cmd = openrlhf_grpo(dv, ClusterPaths(store.home, "/mnt/curate"), "/models/sft", "/ckpt/grpo", n=8)
    a = _openrlhf_parse(cmd)
    # the checks train_ppo_ray.py makes right after parsing
    assert a["algo.advantage.estimator"] == "group_norm" and a["rollout.n_samples_per_prompt"] > 1
    assert not a["vllm.enable_sleep"] or a["train.colocate_all"]
    assert a["rollout.n_samples_per_prompt"] * 1024 // 1 >= a["actor.num_gpus_per_node"]
    assert a["reward.remote_url"] == "/mnt/curate/launch/openrlhf_reward.py"
    assert (a["data.input_key"], a["data.label_key"]) == ("prompt", "reward_model")
    import polars as pl

    cols = pl.read_parquet(dv.parts[0]).columns
    assert {"prompt", "reward_model"} <= set(cols)
    assert a["data.max_len"] > a["rollout.max_new_tokens"]


def test_openrlhf_parser_refuses_the_old_flags() -> None:
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        openrlhf_parser("train_sft").parse_args(["--pretrain", "m", "--input_key", "messages"])


def test_paths_outside_the_store_are_refused(tmp_path: Path) -> None:
    from curate.errors import CurateError

    with pytest.raises(CurateError, match="not inside the store"):
        ClusterPaths(tmp_path / "store").of(tmp_path / "elsewhere.parquet")
