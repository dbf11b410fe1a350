"""The verifiers as GRPO reward functions (TRL and verl signatures): the same code as the checks.

TRL calls ``reward(completions, **columns)`` with the dataset's columns as keyword lists and accepts
``None`` for "no reward applies here" (GRPO then ignores that function for the sample). Completions are
strings or, for conversational datasets, lists of chat messages. verl calls
``compute_score(data_source, solution_str, ground_truth, extra_info)`` for one sample and needs a number:
there an undecided verdict scores 0.0 and says so in ``decided``.

    from curate.launch.rewards import format_reward, math_reward
    GRPOTrainer(..., reward_funcs=[format_reward, math_reward])
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import polars as pl

from curate.checks.format import FormatCheck, FormatConfig
from curate.checks.text import split_response
from curate.verify.math import MathConfig, verify_math

RewardFunc = Callable[..., list[float | None]]
_REFERENCE_COLUMNS = ("reference", "answer", "solution", "ground_truth")
_CODE_SOURCES = ("code", "humaneval", "mbpp", "apps", "livecodebench", "taco", "leetcode")


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of a completion: a string as is, or the assistant messages of a chat completion joined."""
    if isinstance(completion, str):
        return completion
    parts = [m.get("content") or "" for m in completion if m.get("role", "assistant") == "assistant"]
    return "".join(p if isinstance(p, str) else "" for p in parts)


def _column(kwargs: dict[str, Any], names: Sequence[str], n: int) -> list[Any]:
    for name in names:
        if kwargs.get(name) is not None:
            return list(kwargs[name])
    return [None] * n


def _applies(kwargs: dict[str, Any], task: str, n: int) -> list[bool]:
    tasks = kwargs.get("task")
    return [True] * n if tasks is None else [t is None or t == task for t in tasks]


def finish_reasons(n: int, kwargs: dict[str, Any], stop_ids: Collection[int] | None = None) -> list[str | None]:
    """Why each completion ended: ``finish_reason`` as given (vLLM, the ledger), else ``truncated`` flags,
    else TRL's rule on ``completion_ids``: a completion whose last token is no stop token (EOS or pad) was
    cut at ``max_completion_length``. ``None`` where nothing tells."""
    if kwargs.get("finish_reason") is not None:
        return list(kwargs["finish_reason"])
    if kwargs.get("truncated") is not None:
        return [None if t is None else ("length" if t else "stop") for t in kwargs["truncated"]]
    ids = kwargs.get("completion_ids")
    if ids is not None and stop_ids:
        return [("length" if not seq or int(seq[-1]) not in stop_ids else "stop") for seq in ids]
    return [None] * n


def make_format_reward(template: str = "r1", stop_ids: Collection[int] | None = None) -> RewardFunc:
    """Format reward: 1.0 when FormatCheck finds nothing wrong, else 0.0 (the check's ``format_score``).

    A truncated completion (see :func:`finish_reasons`; ``stop_ids`` are the tokenizer's EOS and pad ids)
    gets no format credit, however well-formed its visible part looks."""
    check = FormatCheck(FormatConfig(template=template))  # type: ignore[arg-type]
    stops = frozenset(int(i) for i in stop_ids) if stop_ids else None

    def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        texts = [completion_text(c) for c in completions]
        data: dict[str, Any] = {"response": texts}
        data["finish_reason"] = finish_reasons(len(texts), kwargs, stops)
        out = check.run(pl.DataFrame(data, schema_overrides={"response": pl.String, "finish_reason": pl.String}))
        return [float(x) for x in out["format_score"].to_list()]

    format_reward.__name__ = "format_reward" if template == "r1" else f"format_reward_{template}"
    return format_reward


def make_math_reward(config: MathConfig | None = None) -> RewardFunc:
    """Accuracy reward: 1.0 equivalent to the reference, 0.0 not, None where it cannot decide or the
    row is not math. The reference comes from the first present column of reference/answer/solution/
    ground_truth (a worked solution's last \\boxed{} is used)."""
    cfg = config or MathConfig()

    def math_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        refs = _column(kwargs, _REFERENCE_COLUMNS, n)
        keep = [i for i, ok in enumerate(_applies(kwargs, "math", n)) if ok]
        results = verify_math([completion_text(completions[i]) for i in keep], [refs[i] for i in keep], cfg)
        out: list[float | None] = [None] * n
        for i, r in zip(keep, results, strict=True):
            out[i] = r.score
        return out

    math_reward.__name__ = "math_reward"
    return math_reward


def code_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """1.0 when the code passes its tests, 0.0 when not, None when it cannot be decided (no tests, tests
    that fail the row's reference solution, sandbox failure). The same grading as ``curate check``:
    ``run_code_batch``, pooled sandboxes, the gold gate, tamper signs (a tampered program scores 0.0)."""
    from curate.verify.code import CodeTask, run_code_batch  # lazy: the sandbox is only needed for code rows

    n = len(completions)
    tests, entry = _column(kwargs, ("tests",), n), _column(kwargs, ("entry_point",), n)
    io_tests, setup = _column(kwargs, ("io_tests",), n), _column(kwargs, ("test_setup",), n)
    refs = _column(kwargs, _REFERENCE_COLUMNS, n)
    todo = {
        i: CodeTask(completion_text(completions[i]), tests[i], entry[i], io_tests[i], setup[i], refs[i])
        for i, ok in enumerate(_applies(kwargs, "code", n))
        if ok and (tests[i] is not None or io_tests[i])
    }
    out: list[float | None] = [None] * n
    for i, res in zip(todo, run_code_batch(list(todo.values())), strict=True):
        out[i] = res.score
    return out


def language_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """R1's language-consistency reward: share of the chain of thought in the target language."""
    from curate.quality.language import language_consistency  # lazy: loads the fastText model

    n = len(completions)
    targets = _column(kwargs, ("language",), n)
    out: list[float | None] = []
    for c, target in zip(completions, targets, strict=True):
        text = completion_text(c)
        reasoning, _ = split_response(text)
        out.append(float(language_consistency(reasoning if reasoning is not None else text, target or "en")))
    return out


format_reward = make_format_reward("r1")
format_reward_r1_zero = make_format_reward("r1_zero")
math_reward = make_math_reward()


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """verl's custom reward entry point: ``{"score": float, "decided": bool, "status": str}``.

    The task comes from ``extra_info["task"]``, else from ``data_source`` (code benchmarks by name, math
    otherwise). Code tests come from ``extra_info`` (tests/entry_point/io_tests), else ``ground_truth``.
    """
    info = dict(extra_info or {})
    source = (data_source or "").lower()
    task = info.get("task") or ("code" if any(k in source for k in _CODE_SOURCES) else "math")
    if task == "code":
        tests = info.get("tests") or (ground_truth if isinstance(ground_truth, str) else None)
        io_tests = info.get("io_tests") or (ground_truth if isinstance(ground_truth, list) else None)
        score = code_reward(
            [solution_str],
            tests=[tests],
            entry_point=[info.get("entry_point")],
            io_tests=[io_tests],
            test_setup=[info.get("test_setup")],
            reference=[info.get("reference")],
        )[0]
        status = "undecided" if score is None else ("passed" if score else "failed")
    else:
        result = verify_math(
            [solution_str],
            [None if ground_truth is None else str(ground_truth)],
            MathConfig(template=info.get("template", "r1")),
        )[0]
        score, status = result.score, result.status
    return {"score": 0.0 if score is None else score, "decided": score is not None, "status": status}


__all__ = [
    "code_reward",
    "completion_text",
    "compute_score",
    "finish_reasons",
    "format_reward",
    "format_reward_r1_zero",
    "language_reward",
    "make_format_reward",
    "make_math_reward",
    "math_reward",
]
