"""Math answer verification: one implementation for curation (``MathCheck``) and RL rewards.

``verify_math`` takes responses and gold references and returns one ``MathResult`` per row. The answer
comes only from the part after ``</think>``, found per row (box, ``<answer>`` tag, anchor, bare value or
final math span: see ``answer_extract``); what was taken and how are kept, so a funnel tells "no answer"
from "wrong answer". Equivalence is math-verify + sympy with our guards (see ``math_equiv``). Pairs the
fast path settles are decided in this process; the rest are deduplicated and decided in-process for
small batches on the main thread, else in the worker pool.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import polars as pl

from curate.checks.base import Check, Scope, add_reasons
from curate.verify.answer_extract import Method, Template, extract_answer, gold_answer
from curate.verify.math_equiv import candidates_for, decide, fast_compare

# status -> score: None where the verifier cannot decide (never a silent 0 or pass).
SCORES: dict[str, float | None] = {
    "correct": 1.0,
    "incorrect": 0.0,
    "no_answer": 0.0,
    "conflicting_answers": 0.0,
    "answer_unparseable": 0.0,
    "gold_unparseable": None,
    "timeout": None,
}
MathStatus = Literal[
    "correct",
    "incorrect",
    "no_answer",
    "conflicting_answers",
    "answer_unparseable",
    "gold_unparseable",
    "timeout",
]


@dataclass(frozen=True, slots=True)
class MathConfig:
    # r1: every answer form, decided per row (box, <answer> tag, anchor, bare value, final math span);
    # r1_zero: the strict R1-Zero rule reward, only an <answer>...</answer> tag counts.
    template: Template = "r1"
    timeout_s: float = 5.0  # per item (extraction of both sides + comparison)
    workers: int = 0  # worker processes; 0: one per available core
    # Fewer items than this (after the fast path) are decided in this process: no pool start-up for a
    # small batch. Only on the main thread (the signal timer needs it), and only while no pool is running
    # (a started pool is faster: all cores, sympy already imported); elsewhere the pool is used.
    in_process_below: int = 200
    bare_max_chars: int = 60  # an unboxed answer part this short (and not prose) is taken as the answer


@dataclass(frozen=True, slots=True)
class MathResult:
    status: MathStatus
    extracted: str | None
    method: Method = "none"  # how the answer was found (answer_extract)

    @property
    def score(self) -> float | None:
        return SCORES[self.status]


def verify_math(
    responses: Sequence[str | None], references: Sequence[str | None], config: MathConfig | None = None
) -> list[MathResult]:
    """Verdict per (response, reference) pair, in order."""
    cfg = config or MathConfig()
    if len(responses) != len(references):
        raise ValueError(f"{len(responses)} responses but {len(references)} references")
    statuses: list[str | None] = [None] * len(responses)
    extracted: list[str | None] = [None] * len(responses)
    methods: list[Method] = ["none"] * len(responses)
    todo: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for i, (resp, ref) in enumerate(zip(responses, references, strict=True)):
        ext = extract_answer(resp, cfg.template, cfg.bare_max_chars)
        gold = gold_answer(ref)
        cands = candidates_for(gold, ext.candidates) if gold is not None else ext.candidates
        extracted[i], methods[i] = (cands[-1] if cands else None), ext.source
        if ext.answer is None:
            statuses[i] = "no_answer"
        elif gold is None:
            statuses[i] = "gold_unparseable"
        elif len(cands) == 1 and (fast := fast_compare(gold, cands[0])) is not None:
            statuses[i] = "correct" if fast else "incorrect"
        else:
            todo.setdefault((gold, cands), []).append(i)
    if todo:
        keys = list(todo)
        verdicts = _decide_many(keys, cfg)
        for key, verdict in zip(keys, verdicts, strict=True):
            for i in todo[key]:
                statuses[i] = verdict
    return [
        MathResult(s, e, m)  # type: ignore[arg-type]
        for s, e, m in zip(statuses, extracted, methods, strict=True)
    ]


def _decide_many(items: list[tuple[str, tuple[str, ...]]], cfg: MathConfig) -> list[str]:
    from curate.verify.pool import get_pool, pool_running

    on_main = threading.current_thread() is threading.main_thread()
    if on_main and len(items) < cfg.in_process_below and not pool_running(cfg.workers):
        return [decide(g, c, cfg.timeout_s) for g, c in items]

    return get_pool(cfg.workers).run(items, cfg.timeout_s)


class MathCheck(Check[MathConfig]):
    """Rows whose task is ``math``: is the final answer equivalent to ``reference``?"""

    name: ClassVar[str] = "math"
    scope: ClassVar[Scope] = "row"
    cost: ClassVar[int] = 30
    tasks: ClassVar[frozenset[str] | None] = frozenset({"math"})
    default_enabled: ClassVar[bool] = True
    Config: ClassVar[type] = MathConfig
    reads: ClassVar[tuple[str, ...]] = ("task", "response", "reference")

    def __init__(self, config: MathConfig | None = None) -> None:
        self.config = config or MathConfig()

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        n = df.height
        is_math = (df["task"] == "math").fill_null(False) if "task" in df.columns else pl.Series([False] * n)
        idx = [i for i, m in enumerate(is_math.to_list()) if m]
        responses = df["response"].to_list()
        refs = df["reference"].to_list() if "reference" in df.columns else [None] * n
        results = verify_math([responses[i] for i in idx], [refs[i] for i in idx], self.config)
        status: list[str | None] = [None] * n
        answer: list[str | None] = [None] * n
        method: list[str | None] = [None] * n
        score: list[float | None] = [None] * n
        for i, r in zip(idx, results, strict=True):
            status[i], answer[i], method[i], score[i] = r.status, r.extracted, r.method, r.score
        df = df.with_columns(
            pl.Series("math_score", score, dtype=pl.Float64),
            pl.Series("math_extracted", answer, dtype=pl.String),
            pl.Series("math_extract_method", method, dtype=pl.String),
            pl.Series("math_status", status, dtype=pl.String),
        )
        st = pl.col("math_status")
        codes = {f"math.{s}": st == s for s in SCORES if s != "correct"}
        return add_reasons(df, codes)
