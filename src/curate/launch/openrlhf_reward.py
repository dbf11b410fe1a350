"""OpenRLHF's custom reward function, ``reward_func(queries, prompts, labels)``, on curate's verifiers.

OpenRLHF (0.11) loads it from the ``.py`` file given as ``--reward.remote_url`` and calls it with the
decoded prompt+response (``queries``, special tokens kept), the chat-templated prompts and the rows'
``--data.label_key`` values. With ``rl_prompts`` versions the label is the ``reward_model`` struct
(``{"style": "rule", "ground_truth": ...}``); a plain string (``curate export``'s JSONL) is the ground
truth itself; a label that carries ``tests`` (and ``entry_point``) is a code row.

It returns ``{"rewards", "scores", "extra_logs"}`` as OpenRLHF expects: ``rewards`` is the accuracy from
:func:`curate.launch.rewards.compute_score` (an undecided verdict scores 0.0 and is counted in
``extra_logs["undecided"]``), ``extra_logs["format"]`` is the R1 format score of the same completion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import orjson

# End-of-turn markers a decoded query may end with; the verifiers see the completion without them.
_END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>", "<｜end▁of▁sentence｜>", "<|end|>")


def response_of(query: str, prompt: str) -> str:
    """The completion inside OpenRLHF's query (prompt + response as decoded, special tokens kept)."""
    text = query[len(prompt) :] if prompt and query.startswith(prompt) else query
    stripped = text.rstrip()
    changed = True
    while changed:
        changed = False
        for m in _END_MARKERS:
            if stripped.endswith(m):
                stripped = stripped[: -len(m)].rstrip()
                changed = True
    return stripped


def _label(label: Any) -> tuple[Any, dict[str, Any]]:
    """(ground truth, extra info) from a ``reward_model`` struct, a JSON object string or a plain string."""
    if isinstance(label, str) and label.startswith("{"):
        with contextlib.suppress(orjson.JSONDecodeError):
            label = orjson.loads(label)
    if isinstance(label, dict):
        info = {k: v for k, v in label.items() if k not in ("ground_truth", "style") and v is not None}
        if "ability" in info and "task" not in info:
            info["task"] = info["ability"]
        return label.get("ground_truth"), info
    return label, {}


def score_one(query: str, prompt: str, label: Any) -> dict[str, Any]:
    """One completion's accuracy (``compute_score``) and format score, with the verdict's status."""
    from curate.launch.rewards import compute_score, format_reward

    response = response_of(query, prompt)
    truth, info = _label(label)
    source = "curate/code" if info.get("tests") or info.get("io_tests") else f"curate/{info.get('task', 'math')}"
    res = compute_score(source, response, truth, info)
    fmt = format_reward([response])[0]
    return {**res, "format": 0.0 if fmt is None else float(fmt)}


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any]) -> dict[str, Any]:
    import torch

    results = [score_one(q, p, lab) for q, p, lab in zip(queries, prompts, labels, strict=True)]
    rewards = torch.tensor([r["score"] for r in results], dtype=torch.float32)
    n = max(len(results), 1)
    logs = {
        "format": sum(r["format"] for r in results) / n,
        "undecided": sum(0.0 if r["decided"] else 1.0 for r in results) / n,
    }
    return {"rewards": rewards, "scores": rewards.clone(), "extra_logs": logs}


__all__ = ["response_of", "reward_func", "score_one"]
