"""A small, realistic example store built in seconds without a model, for notebooks, docs and tests.

Forty prompts (GSM8K test and MATH-500 problems shipped with the package) times eight synthetic
R1-style samples from two checkpoints: ``ckpt-a`` (weaker: fewer correct answers, more truncated,
mixed-language, looping and think-less samples) and ``ckpt-b`` (stronger, longer reasoning). The
reasoning is built from each problem's reference solution, so the text statistics are those of real
math traces. The samples then go through the real pipeline: the format, readability, language and
math checks (:func:`curate.checks.runner.check_files`), one ``checked`` version per checkpoint, and the
``rs_sft`` and ``rl_prompts`` recipes. Everything is seeded: the same call builds the same rows.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq
import xxhash

from curate.schema import table
from curate.store import Store, StoreError
from curate.testing.traces import ASIDES, CHINESE, LOOP, OPENERS

CHECKS = ("format", "readability", "lang", "math")
MAX_TOKENS = 2048
CHARS_PER_TOKEN = 4  # rough, for tokens_out: the store has no tokenizer to count with


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How one synthetic checkpoint behaves: skill and defect rates per sample."""

    name: str
    skill: float  # P(correct) for a prompt of difficulty 0; falls with difficulty
    truncated: float
    chinese: float
    loop: float
    no_think: float
    wall: float  # the whole reasoning in one paragraph (readability.long_paragraph)
    no_answer: float
    two_boxes: float  # several boxed values: the reward hack math.conflicting_answers
    verbosity: float  # mean extra self-checks per trace


CHECKPOINTS = (
    Checkpoint(
        "ckpt-a",
        skill=0.80,
        truncated=0.08,
        chinese=0.10,
        loop=0.05,
        no_think=0.05,
        wall=0.03,
        no_answer=0.04,
        two_boxes=0.02,
        verbosity=4.0,
    ),
    Checkpoint(
        "ckpt-b",
        skill=1.10,
        truncated=0.03,
        chinese=0.03,
        loop=0.01,
        no_think=0.01,
        wall=0.01,
        no_answer=0.01,
        two_boxes=0.01,
        verbosity=8.0,
    ),
)


@dataclass(frozen=True, slots=True)
class Problem:
    prompt_id: str
    prompt: str
    reference: str
    steps: tuple[str, ...]  # reference solution, one paragraph per step
    difficulty: float  # 0 (easy) .. 1 (hard)


def _jsonl(*parts: str) -> list[dict[str, str]]:
    with (files("curate") / "data").joinpath(*parts).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def problems(n_gsm8k: int = 20, n_math: int = 20, seed: int = 0) -> list[Problem]:
    """Problems with short, verifiable answers; the MATH ones without Asymptote figures."""
    rng = random.Random(seed)
    out: list[Problem] = []
    for i, row in enumerate(rng.sample(_jsonl("benchmarks", "gsm8k_test.jsonl"), n_gsm8k)):
        body, _, ans = row["answer"].rpartition("####")
        steps = tuple(re.sub(r"<<[^>]*>>", "", s).strip() for s in body.strip().splitlines() if s.strip())
        out.append(
            Problem(f"gsm8k-{i:03d}", row["question"], ans.strip().replace(",", ""), steps, min(1.0, 0.1 * len(steps)))
        )
    pool = [
        r
        for r in _jsonl("benchmarks", "math500.jsonl")
        if len(r["answer"]) <= 12 and "[asy]" not in r["solution"] and len(r["solution"]) < 1500
    ]
    for row in rng.sample(pool, n_math):
        steps = tuple(p.strip() for p in row["solution"].split("\n\n") if p.strip())
        out.append(
            Problem(
                f"math500-{row['unique_id'].split('/')[-1].removesuffix('.json')}-{row['subject'][:4]}",
                row["problem"],
                row["answer"],
                steps,
                0.2 * int(row["level"]),
            )
        )
    return out


def _wrong(p: Problem, rng: random.Random, others: list[Problem]) -> str:
    try:
        v = float(p.reference)
        delta = rng.choice((-2, -1, 1, 2, 10))
        return str(int(v) + delta) if v.is_integer() else f"{v + delta / 10:g}"
    except ValueError:
        return rng.choice([o.reference for o in others if o.reference != p.reference])


CHECK_LINES = (
    "Let me double-check: {a} + {b} = {s}, so that part holds.",
    "Wait, should that be {a} times {b}? That would be {p}, which is not what the question asks.",
    "Hmm, let me recompute. {a} minus {b} is {d}. Okay, the earlier step is consistent.",
    "Let me re-read the question to make sure I am using {a} correctly.",
    "Actually, what if I combined {a} and {b} first? I'd get {s}; no, the order above is right.",
    "Is {p} reasonable? It is {a} groups of {b}, so yes.",
    "Going back to {b}: I used it once already, so I shouldn't count it again.",
)


def _check_line(rng: random.Random, p: Problem) -> str:
    """A self-check over numbers of the problem, like the re-verification R1 traces are full of."""
    nums = [int(x) for x in re.findall(r"\d+", " ".join(p.steps)) if 1 < len(x) < 5] or [12, 7]
    a, b = rng.choice(nums), rng.choice(nums)
    return rng.choice(CHECK_LINES).format(a=a, b=b, s=a + b, p=a * b, d=a - b)


def make_response(p: Problem, ck: Checkpoint, rng: random.Random, others: list[Problem]) -> tuple[str, str]:
    """One synthetic completion for ``p``; returns (response, finish_reason)."""
    correct = rng.random() < max(0.0, min(1.0, ck.skill - 0.7 * p.difficulty))
    paras = [rng.choice(OPENERS)]
    for step in p.steps:
        paras.append(step)
        if rng.random() < 0.35:
            paras.append(rng.choice(ASIDES))
    for _ in range(int(rng.expovariate(1 / ck.verbosity)) + (0 if correct else 6)):
        line = _check_line(rng, p)
        if line not in paras:  # a verbatim repeat is a loop, which is a defect of its own below
            paras.insert(rng.randrange(1, len(paras) + 1), line)
    u = rng.random
    if u() < ck.chinese:
        i = rng.randrange(1, len(paras))
        paras[i] += f" {rng.choice(CHINESE)}这一步很关键，我们再检查一遍。"
    if u() < ck.loop:
        paras += [LOOP.strip()] * rng.randint(20, 60)
    if u() < ck.truncated:  # ran out of tokens mid-thought: no </think>, stopped at the limit
        while sum(map(len, paras)) < MAX_TOKENS * CHARS_PER_TOKEN:  # wandering off into other problems
            paras.append(rng.choice(rng.choice(others).steps) if u() < 0.7 else _check_line(rng, p))
        text = "<think>\n" + "\n\n".join(paras)
        return text[: MAX_TOKENS * CHARS_PER_TOKEN], "length"
    sep = " " if u() < ck.wall else "\n\n"
    reasoning = sep.join(paras)
    answer = p.reference if correct else _wrong(p, rng, others)
    if u() < ck.no_answer:
        summary = "So that settles the computation above."
    elif u() < ck.two_boxes:
        summary = f"The answer is $\\boxed{{{answer}}}$ or possibly $\\boxed{{{_wrong(p, rng, others)}}}$."
    else:
        summary = f"Putting the steps together, the final answer is $\\boxed{{{answer}}}$."
    if u() < ck.no_think:
        return f"{reasoning}\n\n{summary}", "stop"
    return f"<think>\n{reasoning}\n</think>\n\n{summary}", "stop"


def make_samples(ck: Checkpoint, probs: list[Problem], n: int = 8, seed: int = 0) -> pl.DataFrame:
    """``n`` samples per problem from checkpoint ``ck``, in the ``sample`` table's columns."""
    params = {"n": n, "temperature": 0.6, "top_p": 0.95, "max_tokens": MAX_TOKENS, "seed": seed}
    params_json = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    params_hash = xxhash.xxh3_128_hexdigest(params_json)
    t0 = datetime(2025, 1, 20, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    for p in probs:
        rng = random.Random(f"{seed}/{ck.name}/{p.prompt_id}")
        for i in range(n):
            response, finish = make_response(p, ck, rng, probs)
            rows.append(
                {
                    "sample_id": xxhash.xxh3_128_hexdigest(
                        f"{p.prompt_id}\x1f{ck.name}\x1f{params_hash}\x1f{i}".encode()
                    ),
                    "prompt_id": p.prompt_id,
                    "task": "math",
                    "prompt": p.prompt,
                    "response": response,
                    "reference": p.reference,
                    "language": "en",
                    "finish_reason": finish,
                    "sample_index": i,
                    "checkpoint": ck.name,
                    "engine": "synthetic",
                    "params_hash": params_hash,
                    "sampling_params": params_json.decode(),
                    "tokens_in": len(p.prompt) // CHARS_PER_TOKEN,
                    "tokens_out": min(MAX_TOKENS, len(response) // CHARS_PER_TOKEN),
                    "latency_s": round(0.002 * len(response) / CHARS_PER_TOKEN, 3),
                    "shard": 0,
                    "created_at": t0 + timedelta(seconds=len(rows)),
                }
            )
    return table("sample").conform(pl.DataFrame(rows))


RS_SFT = {"recipe": "rs_sft", "name": "rs_sft", "select": {"k": 4, "policy": "shortest"}, "format": "messages"}
RL_PROMPTS = {
    "recipe": "rl_prompts",
    "name": "rl_prompts",
    "select": {"min_pass_rate": 0.05, "max_pass_rate": 0.95},
    "drop_uniform_groups": True,
}


def build_example_store(home: str | Path, *, n_prompts: int = 40, n_samples: int = 8, seed: int = 0) -> dict[str, str]:
    """Build the example store under ``home``; return the refs it published.

    Keys: ``home``, ``checked_a``/``checked_b`` (``checked@1``/``checked@2``, one per checkpoint),
    ``rs_sft_a``/``rs_sft_b`` (rejection-sampling SFT from each), ``selection`` (the decisions behind
    ``rs_sft_b``), ``rl_prompts`` (from ckpt-b) and ``pass_rates`` (latest). Takes a few seconds.
    The prompts are benchmark items, so the decontamination check is left out: it would flag them all.
    """
    from curate.checks.registry import build_checks
    from curate.checks.runner import check_files, publish_checked
    from curate.recipes import recipe_from_dict, run_recipe

    store = Store(home)
    probs = problems(n_prompts // 2, n_prompts - n_prompts // 2, seed)
    checks = build_checks(only=list(CHECKS))
    refs: dict[str, str] = {"home": str(store.home)}
    for ck in CHECKPOINTS:
        tag = ck.name[-1]
        src = store.home / "samples" / f"{ck.name}.parquet"
        src.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table("sample").to_arrow(make_samples(ck, probs, n_samples, seed)), src)
        out = store.home / "checked" / f"{ck.name}.parquet"
        report = check_files([src], out, checks)
        dv = publish_checked(store, "checked", out, report, config={"example_seed": seed}, checks=list(CHECKS))
        refs[f"checked_{tag}"] = dv.manifest.ref
        rs = recipe_from_dict({**RS_SFT, "inputs": [dv.manifest.ref]})
        pub = run_recipe(rs, store)
        refs[f"rs_sft_{tag}"], refs["selection"] = pub.dataset.manifest.ref, pub.selection.manifest.ref
    rl = run_recipe(recipe_from_dict({**RL_PROMPTS, "inputs": [refs["checked_b"]]}), store)
    refs["rl_prompts"] = rl.dataset.manifest.ref
    refs["pass_rates"] = rl.pass_rates.manifest.ref
    return refs


def open_store(env: str = "CURATE_HOME", home: str | Path | None = None) -> tuple[Store, dict[str, str]]:
    """The store at ``home`` (a notebook's parameter), else the one named by ``$CURATE_HOME`` when it has
    checked data, else a fresh example store.

    For notebooks: they run top to bottom on a fresh checkout, and on a real store (e.g. the demo's)
    when pointed at one. Refs for a real store are its two latest ``checked`` versions and latest
    recipe outputs, so the same cells work on both.
    """
    import os
    import tempfile

    if home is not None and not Store(home).names():
        raise StoreError(f"{home}: no datasets in this store")
    home = home or os.environ.get(env)
    if home and Store(home).names():
        store = Store(home)
        refs = discover_refs(store)
        if "checked_b" not in refs:
            raise StoreError(f"{env}={home} has no dataset of kind 'checked' to inspect")
        return store, refs
    tmp = tempfile.mkdtemp(prefix="curate-example-")
    refs = build_example_store(tmp)
    return Store(tmp), refs


def discover_refs(store: Store) -> dict[str, str]:
    """Refs in an existing store in the shape :func:`build_example_store` returns."""
    by_kind: dict[str, list[str]] = {}
    for dv in sorted(store.all_versions(), key=lambda v: (v.manifest.created_at, v.manifest.version)):
        by_kind.setdefault(dv.manifest.kind, []).append(dv.manifest.ref)
    refs = {"home": str(store.home)}
    checked = by_kind.get("checked", [])
    if checked:
        refs["checked_b"] = checked[-1]
        refs["checked_a"] = checked[-2] if len(checked) > 1 else checked[-1]
    for kind, key in (("rs_sft", "rs_sft_b"), ("rl_prompts", "rl_prompts"), ("pass_rates", "pass_rates")):
        if by_kind.get(kind):
            refs[key] = by_kind[kind][-1]
    if "rs_sft" in by_kind:
        refs["rs_sft_a"] = by_kind["rs_sft"][-2] if len(by_kind["rs_sft"]) > 1 else by_kind["rs_sft"][-1]
    if by_kind.get("selection"):  # the decisions behind the latest rs_sft version when there is one
        behind = {str(store.get(r).manifest.extra.get("for")): r for r in by_kind["selection"]}
        refs["selection"] = behind.get(refs.get("rs_sft_b", ""), by_kind["selection"][-1])
    return refs
