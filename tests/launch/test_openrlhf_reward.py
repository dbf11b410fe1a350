"""OpenRLHF's ``reward_func(queries, prompts, labels)`` on curate's verifiers, called as OpenRLHF 0.11 does:
the shim file loaded by path, one query at a time, labels taken from the rows' ``reward_model`` column."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl

from curate.launch.cluster import ClusterPaths
from curate.launch.openrlhf_reward import response_of, reward_func

PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"


def test_right_wrong_and_truth_forms() -> None:
    good = PROMPT + "<think>2 plus 2 is 4.</think>The answer is \\boxed{4}.<|im_end|>"
    bad = PROMPT + "<think>2 plus 2 is 5.</think>The answer is \\boxed{5}.<|im_end|>"
    out = reward_func(
        [good, bad, good],
        [PROMPT] * 3,
        [{"style": "rule", "ground_truth": "4"}, {"style": "rule", "ground_truth": "4"}, "4"],
    )
    assert out["rewards"].tolist() == [1.0, 0.0, 1.0]
    assert out["scores"].tolist() == [1.0, 0.0, 1.0]
    assert out["extra_logs"]["format"] == 1.0 and out["extra_logs"]["undecided"] == 0.0


def test_undecided_scores_zero_and_is_counted() -> None:
    q = PROMPT + "<think>hmm</think>\\boxed{4}"
    out = reward_func([q], [PROMPT], [{"style": "rule", "ground_truth": ""}])
    assert out["rewards"].tolist() == [0.0] and out["extra_logs"]["undecided"] == 1.0


def test_response_is_cut_from_the_query() -> None:
    assert response_of(PROMPT + "<think>a</think>b<|im_end|>", PROMPT) == "<think>a</think>b"
    assert response_of("no prompt here</s>", PROMPT) == "no prompt here"


def test_shim_loads_like_openrlhf_and_labels_come_from_the_rows(tmp_path: Path) -> None:
    from curate.store import Store
    from curate.testing.example_store import build_example_store

    refs = build_example_store(tmp_path / "store")
    store = Store(tmp_path / "store")
    paths = ClusterPaths(store.home)
    rel = paths.shim("openrlhf")
    spec = importlib.util.spec_from_file_location("reward_func", store.home / rel)  # as SingleTurnAgentExecutor
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = pl.read_parquet(store.get(refs["rl_prompts"]).parts[0]).row(0, named=True)
    label = row["reward_model"]  # --data.label_key reward_model
    truth = label["ground_truth"]
    q = PROMPT + f"<think>work it out</think>So \\boxed{{{truth}}}<|im_end|>"
    assert module.reward_func([q], [PROMPT], [label])["rewards"].tolist() == [1.0]
