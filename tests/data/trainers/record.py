"""Record verl's and OpenRLHF's argument schemas for tests/launch/test_cluster.py.

Neither trainer installs into curate's environment: verl 0.9 pins ``transformers<5.11`` and OpenRLHF 0.11
pins ``transformers==5.15.0``, ``flash-attn`` (a CUDA build) and ``deepspeed`` (checked 2026-12-02 in a
throwaway venv). So their schemas are recorded here, from the released packages, with their versions:

- verl: Hydra composes ``verl/trainer/config/ppo_trainer.yaml`` (what ``python -m verl.trainer.main_ppo``
  loads); every leaf key is written with the type of its default. Hydra refuses an override whose key is
  not in that tree (without ``+``), so the key set plus types is the schema that matters.
- OpenRLHF: ``openrlhf/cli/train_sft.py`` and ``train_ppo_ray.py`` build a plain ``argparse`` parser under
  ``if __name__ == "__main__"``; the ``add_argument`` calls are replayed here (no OpenRLHF import needed)
  and every action is written down, so the test rebuilds the same parser and parses the printed command.

Run in a venv that has ``verl==0.9.*`` (``--no-deps`` is enough) and ``hydra-core``, with the OpenRLHF
wheel unpacked or installed ``--no-deps``::

    python tests/data/trainers/record.py verl     > tests/data/trainers/verl-<version>.json
    python tests/data/trainers/record.py openrlhf > tests/data/trainers/openrlhf-<version>.json
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import sys
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any


def _flatten(node: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        if not node and prefix:
            out[prefix] = "dict"
        for k, v in node.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = type(node).__name__ if node is not None else "null"
        if isinstance(node, str) and node.startswith("${"):
            out[prefix] = "interpolation"


def record_verl() -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    spec = find_spec("verl")
    assert spec is not None and spec.origin is not None
    config_dir = Path(spec.origin).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose(config_name="ppo_trainer")
    keys: dict[str, str] = {}
    _flatten(OmegaConf.to_container(cfg, resolve=False), "", keys)
    return {
        "trainer": "verl",
        "version": version("verl"),
        "entry": "verl.trainer.main_ppo",
        "config": "verl/trainer/config/ppo_trainer.yaml",
        "keys": keys,
    }


def _parser_actions(source: str) -> list[dict[str, Any]]:
    tree = ast.parse(source)
    main = next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
    body = []
    for stmt in main.body:
        if "parse_args" in ast.unparse(stmt):
            break
        body.append(stmt)
    ns: dict[str, Any] = {"argparse": argparse, "datetime": datetime.datetime, "float": float, "int": int}
    exec(compile(ast.Module(body=body, type_ignores=[]), "<openrlhf parser>", "exec"), ns)  # noqa: S102
    parser: argparse.ArgumentParser = ns["parser"]
    out = []
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        kind = type(a).__name__
        out.append(
            {
                "flags": list(a.option_strings),
                "dest": a.dest,
                "action": kind,
                "type": getattr(a.type, "__name__", None),
                "nargs": a.nargs,
                "choices": list(a.choices) if a.choices else None,
                "const": a.const if kind.startswith("_StoreConst") else None,
            }
        )
    return out


def record_openrlhf() -> dict[str, Any]:
    spec = find_spec("openrlhf")
    assert spec is not None and spec.origin is not None
    cli = Path(spec.origin).parent / "cli"
    return {
        "trainer": "openrlhf",
        "version": version("openrlhf"),
        "parsers": {m: _parser_actions((cli / f"{m}.py").read_text()) for m in ("train_sft", "train_ppo_ray")},
    }


def compose_verl(args_file: str) -> None:
    """Hand a printed command's overrides (a JSON list) to Hydra with verl's own config: the real check."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    spec = find_spec("verl")
    assert spec is not None and spec.origin is not None
    with initialize_config_dir(config_dir=str(Path(spec.origin).parent / "trainer" / "config"), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=json.loads(Path(args_file).read_text()))
    print(OmegaConf.to_yaml(cfg.data))


if __name__ == "__main__":
    which = sys.argv[1]
    if which == "verl-compose":
        compose_verl(sys.argv[2])
        sys.exit(0)
    data = record_verl() if which == "verl" else record_openrlhf()
    json.dump(data, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
