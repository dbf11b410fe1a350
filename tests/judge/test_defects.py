"""Judge replies an attacker (or a confused judge) can produce, and what changes a cached verdict.

Every reply below must end as ``VerdictError`` (the check records ``judge.unparseable``), never as a crash
and never as whichever verdict came last.
"""

from __future__ import annotations

import polars as pl
import pytest

from curate.judge import JudgeCheck, JudgeConfig, VerdictCache, VerdictError, parse_verdict
from curate.judge.cache import judge_scope, rubric_key
from curate.judge.rubrics import BUILTIN_RUBRICS
from curate.judge.run import JudgeParams

NONCE = "a1b2c3d4e5f60718"
QUALITY = BUILTIN_RUBRICS["quality"]
V = '{"id": "%s", "rationale": "fine", "score": %s}'

UNPARSEABLE = [
    (V % (NONCE, "NaN"), "finite"),
    (V % (NONCE, "Infinity"), "finite"),
    (V % (NONCE, "-Infinity"), "finite"),
    (V % (NONCE, '"nan"'), "finite"),
    (V % (NONCE, '"inf"'), "finite"),
    (V % (NONCE, "1e999"), "finite"),  # overflows to inf in Python's JSON
    (V % (NONCE, 4) + "\n" + V % (NONCE, 5), "2 verdicts"),  # a verdict echoed after the real one
    (V % (NONCE, 1) + " ```json\n" + V % (NONCE, 5) + "\n```", "2 verdicts"),
    ('{"id": "' + NONCE + '", "rationale": "x", "score": 1, "score": 5}', "more than once"),
    ('{"id": "other", "rationale": "x", "id": "' + NONCE + '", "score": 5}', "more than once"),
    ("[" * 100000, "no JSON"),  # deep nesting: no RecursionError out of the parser
    ('{"id": "' + NONCE + '", "rationale": "x", "score": ' + "[" * 5000 + "]" * 5000 + "}", "no JSON"),
]


@pytest.mark.parametrize(("reply", "why"), UNPARSEABLE, ids=[f"{i}-{w}" for i, (_, w) in enumerate(UNPARSEABLE)])
def test_unparseable_replies_raise_verdict_error(reply: str, why: str) -> None:
    with pytest.raises(VerdictError, match=why):
        parse_verdict(reply, QUALITY, NONCE)


def test_quoted_foreign_verdict_then_own_one_is_fine() -> None:
    # An object with another id (quoted from the sample) is not a verdict for this request.
    v = parse_verdict(V % ("3f9a1c0d5e7b2a64", 5) + "\n" + V % (NONCE, 2), QUALITY, NONCE)
    assert v.raw_score == 2


class _Scripted:
    """An engine that answers every judge request with a fixed text (here: hostile replies)."""

    name = "scripted"
    checkpoint = "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.calls = 0

    def generate(self, requests, params):  # type: ignore[no-untyped-def]
        from curate.generate.engines.base import Completion

        out = []
        for r in requests:
            nonce = _nonce_of(r.prompt.messages)
            text = self.replies[self.calls % len(self.replies)].replace("NONCE", nonce)
            out.append([Completion(text, "stop", 10, 5)])
        self.calls += 1
        return out

    def close(self) -> None:
        pass


def _nonce_of(messages) -> str:  # type: ignore[no-untyped-def]
    import re

    text = " ".join(c for _, c in messages)
    m = re.search(r'"id": "([0-9a-f]{16})"', text) or re.search(r"\b([0-9a-f]{16})\b", text)
    assert m, text[:500]
    return m.group(1)


@pytest.mark.parametrize(
    "reply",
    [
        '{"id": "NONCE", "rationale": "x", "score": NaN}',
        '{"id": "NONCE", "rationale": "x", "score": "nan"}',
        '{"id": "NONCE", "rationale": "x", "score": Infinity}',
        '{"id": "NONCE", "rationale": "x", "score": 1} {"id": "NONCE", "rationale": "x", "score": 5}',
        '{"id": "NONCE", "rationale": "x", "score": 1, "score": 5}',
    ],
)
def test_check_records_unparseable_never_crashes(reply: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = pl.DataFrame(
        {
            "task": ["general"],
            "prompt": ["Say hi."],
            "response": ["<think>x</think>hi"],
            "reference": [None],
            "reject_reasons": [[]],
        },
        schema_overrides={"reference": pl.String, "reject_reasons": pl.List(pl.String)},
    )
    eng = _Scripted([reply])
    out = JudgeCheck(JudgeConfig(engine="openai", model="j", rubric="quality"), engine=eng).run(df)
    assert out["judge_score"].to_list() == [None]
    assert out["reject_reasons"].to_list() == [["judge.unparseable"]]
    assert eng.calls == 2  # one retry, then unparseable


def test_cache_key_has_everything_that_changes_a_verdict(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = JudgeParams(model="m", endpoint="openai:http://a/v1")
    variants = [
        JudgeParams(model="m", endpoint="openai:http://b/v1"),
        JudgeParams(model="m", endpoint="openai:http://a/v1", temperature=0.7),
        JudgeParams(model="m", endpoint="openai:http://a/v1", max_chars=1000),
        JudgeParams(model="m", endpoint="openai:http://a/v1", max_tokens=64),
        JudgeParams(model="m2", endpoint="openai:http://a/v1"),
    ]
    assert len({base.scope, *(v.scope for v in variants)}) == 1 + len(variants)
    assert base.scope == JudgeParams(model="m", endpoint="openai:http://a/v1").scope  # stable
    assert judge_scope("m") == judge_scope("m")
    import dataclasses

    edited = dataclasses.replace(QUALITY, criteria=QUALITY.criteria + " Be strict.")
    assert edited.tag == QUALITY.tag and rubric_key(edited) != rubric_key(QUALITY)

    # End to end: the same rows judged with another temperature are asked again, not read from the cache.
    df = pl.DataFrame(
        {
            "task": ["general"],
            "prompt": ["Say hi."],
            "response": ["<think>x</think>hi"],
            "reference": [None],
            "reject_reasons": [[]],
        },
        schema_overrides={"reference": pl.String, "reject_reasons": pl.List(pl.String)},
    )
    ok = '{"id": "NONCE", "rationale": "fine", "score": 4}'
    cache = str(tmp_path / "cache")
    for temperature, calls in [(0.0, 1), (0.0, 0), (0.5, 1)]:
        eng = _Scripted([ok])
        cfg = JudgeConfig(engine="openai", model="j", rubric="quality", cache_dir=cache, temperature=temperature)
        out = JudgeCheck(cfg, engine=eng).run(df)
        assert eng.calls == calls and out["judge_score"].to_list() == [0.75]
    assert len(VerdictCache(cache)) == 2
