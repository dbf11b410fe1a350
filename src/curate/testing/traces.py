"""Synthetic R1-style traces for benchmarks and calibration, built from MATH-500 reference solutions.

Not training data: the point is realistic text statistics (LaTeX, numbers, short paragraphs, asides)
at a chosen length, with a known share of defects so that every code path of the checks runs.
"""

from __future__ import annotations

import json
import random
from functools import cache
from importlib.resources import files

import polars as pl

OPENERS = (
    "Okay, so I need to solve this problem. Let me read it carefully.",
    "Alright, let me think about how to approach this.",
    "Hmm, let me start by understanding what the question is asking.",
)
ASIDES = (
    "Wait, let me double-check that step.",
    "Hmm.",
    "Let me verify this with a quick sanity check.",
    "So far so good. Now the next part.",
    "Actually, I think there is a simpler way to see this, but let me continue with this approach.",
    "Let me make sure I didn't make an arithmetic mistake here.",
)
CHINESE = ("所以答案是", "我们需要检查一下", "因此")
FRENCH = "Attendez, je dois vérifier ce calcul encore une fois avant de continuer."
LOOP = "Wait, let me recompute the total again to make sure the value is correct.\n"


@cache
def solutions() -> tuple[str, ...]:
    path = files("curate") / "data" / "benchmarks" / "math500.jsonl"
    with path.open(encoding="utf-8") as f:
        return tuple(json.loads(line)["solution"] for line in f if line.strip())


def make_trace(rng: random.Random, target_bytes: int = 8192, defect: str | None = None) -> str:
    sols = solutions()
    parts = [rng.choice(OPENERS)]
    size = len(parts[0])
    while size < target_bytes:
        sol = rng.choice(sols)
        for para in sol.split("\n\n"):
            parts.append(para)
            if rng.random() < 0.3:
                parts.append(rng.choice(ASIDES))
        size = sum(len(p) + 2 for p in parts)
    while sum(len(p) + 2 for p in parts) > target_bytes and len(parts) > 2:
        parts.pop()
    if defect == "chinese":
        i = rng.randrange(1, len(parts))
        parts[i] = parts[i] + " " + rng.choice(CHINESE) + " this is the key step."
    elif defect == "french":
        parts.insert(rng.randrange(1, len(parts)), FRENCH)
    elif defect == "loop":
        parts[len(parts) // 2 :] = [LOOP * (target_bytes // 2 // len(LOOP))]
    body = "\n\n".join(parts)
    return "<think>\n" + body + "\n</think>\n\nThe answer is $\\boxed{42}$, as computed above."


def make_traces(n: int, target_bytes: int = 8192, seed: int = 0) -> pl.DataFrame:
    """``n`` rows with sample_id, task, response, language; 5% Chinese, 2% French, 2% loop defects."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        u = rng.random()
        defect = "chinese" if u < 0.05 else "french" if u < 0.07 else "loop" if u < 0.09 else None
        rows.append(
            {
                "sample_id": f"s{i}",
                "task": "math",
                "response": make_trace(rng, target_bytes, defect),
                "language": "en",
                "defect": defect,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "sample_id": pl.String,
            "task": pl.String,
            "response": pl.String,
            "language": pl.String,
            "defect": pl.String,
        },
    )
