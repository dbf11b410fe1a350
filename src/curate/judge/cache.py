"""A persistent verdict cache: (judge scope, rubric key, sample hash) -> verdict.

The key holds everything that changes a verdict: the judge scope is the model plus a hash of the endpoint
(engine kind and server URL), temperature, max_tokens, max_chars, seed and retries (:func:`judge_scope`);
the rubric key is ``name@version`` plus a hash of the rubric's full text (:func:`rubric_key`), so an
edited rubric that kept its version is a new rubric, not a cache hit.

SQLite (standard library, one file, safe for several processes with WAL and a busy timeout). Parsed
verdicts and unparseable replies are cached, since both were paid for; engine failures are not (they are
infrastructure, worth retrying). Scores are stored normalized, so a changed threshold needs no new calls.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from curate.generate.engines.base import stable_hash

FILENAME = "judge_cache.sqlite"
Status = Literal["ok", "unparseable"]

_DDL = """
CREATE TABLE IF NOT EXISTS verdicts (
    model TEXT NOT NULL, rubric TEXT NOT NULL, sample_hash TEXT NOT NULL,
    status TEXT NOT NULL, score REAL, rationale TEXT,
    tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (model, rubric, sample_hash)
)"""


def judge_scope(
    model: str,
    *,
    endpoint: str = "",
    temperature: float = 0.0,
    max_tokens: int = 0,
    max_chars: int = 0,
    seed: int = 0,
    retries: int = 0,
) -> str:
    """The cache's ``model`` column: the judge model plus a hash of every setting that changes a verdict."""
    knobs = {
        "endpoint": endpoint,
        "temperature": float(temperature),
        "max_tokens": max_tokens,
        "max_chars": max_chars,
        "seed": seed,
        "retries": retries,
    }
    return f"{model}#{stable_hash(knobs)[:16]}"


def rubric_key(rubric: Any) -> str:
    """``name@version#hash of its content``: a rubric edited in place is not answered from the cache."""
    import dataclasses

    is_instance = dataclasses.is_dataclass(rubric) and not isinstance(rubric, type)
    content = dataclasses.asdict(rubric) if is_instance else repr(rubric)
    return f"{rubric.tag}#{stable_hash(content)[:16]}"


def sample_hash(prompt: str, response: str, reference: str | None) -> str:
    """Hash of what a judge sees of a sample (the same text always hits the same entry)."""
    return stable_hash([prompt, response, reference])


@dataclass(frozen=True, slots=True)
class Cached:
    status: Status
    score: float | None
    rationale: str
    tokens_in: int
    tokens_out: int


class VerdictCache:
    """Verdicts under ``cache_dir``; ``VerdictCache(None)`` is an always-empty, write-nothing cache."""

    def __init__(self, cache_dir: str | Path | None) -> None:
        self.path = Path(cache_dir) / FILENAME if cache_dir else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute(_DDL)

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        return sqlite3.connect(self.path, timeout=60)

    def get_many(self, model: str, rubric: str, hashes: Iterable[str]) -> dict[str, Cached]:
        keys = list(dict.fromkeys(hashes))
        if self.path is None or not keys:
            return {}
        out: dict[str, Cached] = {}
        con = self._connect()
        try:
            for i in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
                part = keys[i : i + 500]
                rows = con.execute(
                    "SELECT sample_hash, status, score, rationale, tokens_in, tokens_out FROM verdicts "
                    f"WHERE model = ? AND rubric = ? AND sample_hash IN ({','.join('?' * len(part))})",
                    [model, rubric, *part],
                ).fetchall()
                for h, status, score, rationale, t_in, t_out in rows:
                    out[h] = Cached(status, score, rationale or "", int(t_in), int(t_out))
        finally:
            con.close()
        return out

    def put_many(self, model: str, rubric: str, entries: Sequence[tuple[str, Cached]]) -> None:
        if self.path is None or not entries:
            return
        now = time.time()
        con = self._connect()
        try:
            with con:
                con.executemany(
                    "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (model, rubric, h, c.status, c.score, c.rationale, c.tokens_in, c.tokens_out, now)
                        for h, c in entries
                    ],
                )
        finally:
            con.close()

    def __len__(self) -> int:
        if self.path is None:
            return 0
        con = self._connect()
        try:
            return int(con.execute("SELECT count(*) FROM verdicts").fetchone()[0])
        finally:
            con.close()
