"""Asking the judge: cache lookup, batched engine calls, one retry on an unparseable reply.

Items are sent in chunks so a failing engine costs at most one chunk (those rows get ``error``: cannot
decide, not cached) and every finished chunk is in the cache before the next starts: an interrupted run
resumes without paying twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from curate.generate.engines.base import Engine, EngineError, Rendered, Request, SamplingParams
from curate.judge.cache import Cached, VerdictCache, judge_scope, rubric_key, sample_hash
from curate.judge.prompt import build_prompt
from curate.judge.rubrics import Rubric
from curate.judge.verdict import VerdictError, parse_verdict

Status = Literal["ok", "unparseable", "error"]


@dataclass(frozen=True, slots=True)
class Item:
    rubric: Rubric
    prompt: str
    response: str
    reference: str | None = None

    @property
    def hash(self) -> str:
        return sample_hash(self.prompt, self.response, self.reference)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    score: float | None  # 0..1, set when status == "ok"
    rationale: str
    calls: int = 0  # engine calls made now (0: answered from the cache)
    tokens_in: int = 0  # tokens spent now
    tokens_out: int = 0
    cached: bool = False


@dataclass(frozen=True, slots=True)
class JudgeParams:
    model: str
    temperature: float = 0.0
    max_tokens: int = 2048
    retries: int = 1  # extra attempts on an unparseable reply
    max_chars: int = 60000  # per quoted field
    chunk_size: int = 256
    seed: int = 0
    endpoint: str = ""  # engine kind and server URL: part of the cache key

    @property
    def scope(self) -> str:
        """The verdict cache's key for these settings (see :func:`curate.judge.cache.judge_scope`)."""
        return judge_scope(
            self.model,
            endpoint=self.endpoint,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            max_chars=self.max_chars,
            seed=self.seed,
            retries=self.retries,
        )


def judge_items(
    items: Sequence[Item], engine: Engine | Callable[[], Engine], cache: VerdictCache, p: JudgeParams
) -> list[Outcome]:
    """One outcome per item, in order. ``engine`` may be a factory, called only if something is not cached.

    Identical items (same rubric and sample hash) are judged once; the copies count as cache hits.
    """
    out: list[Outcome | None] = [None] * len(items)
    keys = [(rubric_key(it.rubric), it.hash) for it in items]
    first: dict[tuple[str, str], int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    by_rubric: dict[str, list[str]] = {}
    for tag, h in first:
        by_rubric.setdefault(tag, []).append(h)
    hits = {(tag, h): c for tag, hs in by_rubric.items() for h, c in cache.get_many(p.scope, tag, hs).items()}
    todo = sorted(i for k, i in first.items() if k not in hits)
    eng: Engine | None = None
    for start in range(0, len(todo), max(1, p.chunk_size)):
        chunk = todo[start : start + p.chunk_size]
        if eng is None:
            eng = engine() if callable(engine) and not isinstance(engine, Engine) else engine
        assert eng is not None
        results = _judge_chunk([items[i] for i in chunk], eng, p)
        entries: dict[str, list[tuple[str, Cached]]] = {}
        for i, res in zip(chunk, results, strict=True):
            out[i] = res
            if res.status != "error":
                c = Cached(res.status, res.score, res.rationale, res.tokens_in, res.tokens_out)
                entries.setdefault(keys[i][0], []).append((keys[i][1], c))
        for tag, rows in entries.items():
            cache.put_many(p.scope, tag, rows)
    for i, k in enumerate(keys):
        if out[i] is not None:
            continue
        if k in hits:
            c = hits[k]
            out[i] = Outcome(c.status, c.score, c.rationale, cached=True)
        else:  # a copy of an item judged (or failed) just now
            o = out[first[k]]
            assert o is not None
            out[i] = Outcome(o.status, o.score, o.rationale, cached=o.status != "error")
    return [o for o in out if o is not None]


def _judge_chunk(items: Sequence[Item], engine: Engine, p: JudgeParams) -> list[Outcome]:
    n = len(items)
    calls, t_in, t_out = [0] * n, [0] * n, [0] * n
    done: list[Outcome | None] = [None] * n
    last_reply = [""] * n
    pending = list(range(n))
    for attempt in range(p.retries + 1):
        if not pending:
            break
        prompts = {
            i: build_prompt(
                items[i].rubric,
                items[i].prompt,
                items[i].response,
                items[i].reference,
                max_chars=p.max_chars,
                retry=attempt > 0,
            )
            for i in pending
        }
        requests = [
            Request(key=items[i].hash[:16], prompt=Rendered(messages=prompts[i].messages), seed=p.seed + attempt)
            for i in pending
        ]
        params = SamplingParams(
            n=1, temperature=p.temperature, top_p=1.0, max_tokens=p.max_tokens, seed=p.seed + attempt
        )
        try:
            replies = engine.generate(requests, params)
        except EngineError as e:
            for i in pending:
                done[i] = Outcome("error", None, _short(f"engine error: {e}"), calls[i] + 1, t_in[i], t_out[i])
            return [o for o in done if o is not None]
        retry: list[int] = []
        for i, comps in zip(pending, replies, strict=True):
            calls[i] += 1
            c = comps[0] if comps else None
            if c is None or c.finish_reason == "error":
                err = (c.meta.get("error") if c is not None else None) or "no completion"
                done[i] = Outcome("error", None, _short(f"engine error: {err}"), calls[i], t_in[i], t_out[i])
                continue
            t_in[i] += c.tokens_in or 0
            t_out[i] += c.tokens_out or 0
            last_reply[i] = c.text
            try:
                v = parse_verdict(c.text, items[i].rubric, prompts[i].nonce)
            except VerdictError as e:
                last_reply[i] = f"{e}; reply: {c.text}"
                retry.append(i)
                continue
            done[i] = Outcome("ok", v.score, v.rationale, calls[i], t_in[i], t_out[i])
        pending = retry
    for i in pending:
        done[i] = Outcome("unparseable", None, _short(f"unparseable: {last_reply[i]}"), calls[i], t_in[i], t_out[i])
    return [o for o in done if o is not None]


def _short(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]
