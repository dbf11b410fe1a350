"""Code verification: extract the answer's last Python block and grade it against the row's tests.

Three test shapes, all run in the bubblewrap sandbox (``curate.verify.sandbox``): HumanEval style
(``tests`` defines ``check(candidate)``, ``entry_point`` names the function), a plain assert script
(``tests`` without ``check``), and stdin/stdout cases (``io_tests``: ``[{input, output}, ...]``). The
tests run in a driver process the program cannot reach; the program's functions answer over a pipe with
plain data (see ``sandbox``), so a pass is what the driver counted, never what the program says.
``test_setup`` is trusted code the tests may use (a problem's helpers: HumanEval's prompt code); it
runs in the driver, so a program cannot redefine a helper the tests rely on.
A row with a reference solution (``reference`` holding code) is checked first: tests that fail their
own reference are ``code.bad_tests`` for every sample of the row's prompt, undecided, not failed.
``passed`` is None when nothing can be decided (no tests, bad tests, sandbox failure): not a score of 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from curate.checks.base import Check, Scope, add_reasons
from curate.verify.sandbox import SandboxConfig, SandboxRun, run_sandboxed, sandbox_error
from curate.verify.zygote import ZygotePool

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)
_PY_TAGS = frozenset({"python", "py", "python3", "py3"})
# status -> (passed, reason); "pass" has no reason.
_OUTCOME: dict[str, tuple[bool | None, str | None]] = {
    "pass": (True, None),
    "no_code": (False, "code.no_code"),
    "tests_failed": (False, "code.tests_failed"),
    "error": (False, "code.error"),
    "incomplete": (False, "code.incomplete"),
    "tampered": (False, "code.tampered"),
    "memory": (False, "code.memory"),
    "timeout": (False, "code.timeout"),
    "output_limit": (False, "code.output_limit"),
    "no_tests": (None, "code.no_tests"),
    "bad_tests": (None, "code.bad_tests"),
    "sandbox_error": (None, "code.sandbox_error"),
}


@dataclass(frozen=True, slots=True)
class CodeConfig(SandboxConfig):
    """Sandbox limits (see ``SandboxConfig``) plus how answers are read and run."""

    require_think: bool = True  # code only counts after </think>; no closing tag = no code
    untagged_fallback: bool = True  # use a bare ``` block when no ```python block exists
    gold_gate: bool = True  # run a row's reference solution first; tests it fails are code.bad_tests
    workers: int = 0  # parallel sandboxes for batches; 0 = 2 x CPUs


@dataclass(frozen=True, slots=True)
class CodeResult:
    passed: bool | None  # None: cannot decide (no tests, sandbox failure)
    reason: str | None  # reason code, e.g. "code.tests_failed"; None when passed
    status: str  # pass | no_code | no_tests | tests_failed | error | memory | timeout | ...
    detail: str = ""
    stdout: str = ""  # tails
    stderr: str = ""
    duration_s: float = 0.0
    limits: str = ""  # memory/process limits in force (cgroup or rlimits)

    @property
    def score(self) -> float | None:
        return None if self.passed is None else float(self.passed)


@dataclass(frozen=True, slots=True)
class CodeTask:
    """One item of a batch: the same arguments as ``run_code``."""

    response: str
    tests: str | None = None
    entry_point: str | None = None
    io_tests: Sequence[Mapping[str, Any]] | None = None
    setup: str | None = None  # trusted helpers for the tests (``test_setup``)
    reference: str | None = None  # a reference solution, for the gold gate


def extract_code(response: str, *, require_think: bool = True, untagged_fallback: bool = True) -> str | None:
    """The last ```python block of the answer (after the last ``</think>``), or None."""
    _, sep, answer = response.rpartition("</think>")  # no tag: answer is the whole response
    if not sep and require_think:
        return None
    blocks = _FENCE.findall(answer)
    tagged = [body for tag, body in blocks if tag.lower() in _PY_TAGS]
    if not tagged and untagged_fallback:
        tagged = [body for tag, body in blocks if not tag]
    return tagged[-1] if tagged and tagged[-1].strip() else None


def _result(status: str, detail: str = "", stdout: str = "", stderr: str = "", dt: float = 0.0,
            limits: str = "") -> CodeResult:  # fmt: skip
    passed, reason = _OUTCOME[status]
    return CodeResult(passed, reason, status, detail, stdout, stderr, dt, limits)


def reference_program(reference: str | None, entry_point: str | None) -> str | None:
    """The code of a reference solution, or None when ``reference`` is not one (a plain answer)."""
    if not reference or not reference.strip():
        return None
    code = extract_code(reference, require_think=False) or reference
    if entry_point and not re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", code):
        return None
    if not re.search(r"\bdef\s|\bprint\s*\(|\binput\s*\(|sys\.stdin", code):
        return None
    try:
        compile(code, "<reference>", "exec")  # compiled only, never run here
    except (SyntaxError, ValueError):
        return None
    return code


def _prepare(
    response: str, tests: str | None, io_tests: Sequence[Mapping[str, Any]] | None, cfg: CodeConfig
) -> CodeResult | tuple[str, str | None, list[tuple[str, str]]]:
    """Decide what needs no sandbox (no tests, no code); else the program, tests and cases."""
    tests = tests if tests and tests.strip() else None
    cases = [(str(c.get("input") or ""), str(c.get("output") or "")) for c in io_tests or ()]
    if tests is None and not cases:
        return _result("no_tests", "the row has neither tests nor io_tests")
    code = extract_code(response, require_think=cfg.require_think, untagged_fallback=cfg.untagged_fallback)
    if code is None:
        return _result("no_code", "no ```python block after </think>")
    return code, tests, cases


def run_code(
    response: str,
    *,
    tests: str | None,
    entry_point: str | None,
    io_tests: Sequence[Mapping[str, Any]] | None,
    setup: str | None = None,
    config: CodeConfig | None = None,
    pool: ZygotePool | None = None,
) -> CodeResult:
    """Verify one response (no gold gate: see ``run_code_batch``). With ``pool`` (built with the same
    config) the program runs in one of its pre-started sandboxes."""
    cfg = config or CodeConfig()
    prep = _prepare(response, tests, io_tests, cfg)
    if isinstance(prep, CodeResult):
        return prep
    return _execute(prep, entry_point, setup, cfg, pool)


def _execute(
    prep: tuple[str, str | None, list[tuple[str, str]]], entry_point: str | None, setup: str | None,
    cfg: CodeConfig, pool: ZygotePool | None,
) -> CodeResult:  # fmt: skip
    code, tests, cases = prep
    ep, setup = entry_point or None, setup or None
    run: SandboxRun
    if pool is not None:
        run = pool.run(code, tests=tests, entry_point=ep, io_tests=cases, setup=setup)
    else:
        run = run_sandboxed(code, tests=tests, entry_point=ep, io_tests=cases, setup=setup, config=cfg)
    return _result(run.status, run.detail, run.stdout, run.stderr, run.duration_s, run.limits)


def default_workers() -> int:
    return 2 * len(os.sched_getaffinity(0))


def run_code_batch(tasks: Sequence[CodeTask], config: CodeConfig | None = None) -> list[CodeResult]:
    """Grade many tasks, ``config.workers`` sandboxes at a time (results in input order). This is the
    one grading path: ``curate check``, the flows and the GRPO/verl/OpenRLHF code rewards all use it.

    Gold gate: each distinct (reference, tests, entry point, cases, setup) runs its reference solution
    once first; when the reference does not pass, every task of that key is ``bad_tests`` (undecided)
    and is not run. ``config.mode == "pooled"``: each worker keeps one sandbox for the whole batch."""
    cfg = config or CodeConfig()
    if not tasks:
        return []
    if cfg.mode not in ("pooled", "fresh"):
        raise ValueError(f"mode must be 'pooled' or 'fresh', not {cfg.mode!r}")
    results: list[CodeResult | None] = [None] * len(tasks)
    jobs: list[tuple[int, tuple[str, str | None, list[tuple[str, str]]], CodeTask]] = []
    golds: dict[tuple[Any, ...], tuple[str, str | None, list[tuple[str, str]]]] = {}
    keys: dict[int, tuple[Any, ...]] = {}
    for i, t in enumerate(tasks):
        prep = _prepare(t.response, t.tests, t.io_tests, cfg)
        if isinstance(prep, CodeResult):
            results[i] = prep
            continue
        jobs.append((i, prep, t))
        ref = reference_program(t.reference, t.entry_point) if cfg.gold_gate else None
        if ref is not None:
            key = (ref, prep[1], t.entry_point, tuple(prep[2]), t.setup)
            golds.setdefault(key, (ref, prep[1], prep[2]))
            keys[i] = key
    zygotes = ZygotePool(cfg) if cfg.mode == "pooled" else None
    workers = cfg.workers or default_workers()
    try:
        if golds:
            gold_keys = list(golds)
            with ThreadPoolExecutor(max_workers=min(workers, len(gold_keys))) as ex:
                gold = dict(zip(gold_keys, ex.map(lambda k: _execute(golds[k], k[2], k[4], cfg, zygotes),
                                                  gold_keys), strict=True))  # fmt: skip
            todo = []
            for i, prep, t in jobs:
                g = gold.get(keys[i]) if i in keys else None
                if g is not None and g.status not in ("pass", "sandbox_error"):
                    results[i] = _result("bad_tests", f"the reference solution fails these tests: {g.status}: "
                                         f"{g.detail}"[:500], dt=0.0, limits=g.limits)  # fmt: skip
                else:
                    todo.append((i, prep, t))
            jobs = todo
        if jobs:
            with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as ex:
                done = ex.map(lambda j: _execute(j[1], j[2].entry_point, j[2].setup, cfg, zygotes), jobs)
                for (i, _, _), r in zip(jobs, done, strict=True):
                    results[i] = r
    finally:
        if zygotes is not None:
            zygotes.close()
    return [r if r is not None else _result("sandbox_error", "not run") for r in results]


class CodeCheck(Check[CodeConfig]):
    """Runs ``task == "code"`` rows in the sandbox; other rows get null columns and no reasons."""

    name: ClassVar[str] = "code"
    scope: ClassVar[Scope] = "row"
    cost: ClassVar[int] = 40
    tasks: ClassVar[frozenset[str] | None] = frozenset({"code"})
    default_enabled: ClassVar[bool] = True
    Config: ClassVar[type] = CodeConfig
    reads: ClassVar[tuple[str, ...]] = ("task", "response", "tests", "entry_point", "io_tests")

    def __init__(self, config: CodeConfig | None = None) -> None:
        self.config = config or CodeConfig()

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        n = df.height
        names = ("task", "response", "tests", "entry_point", "io_tests", "test_setup", "reference")
        col = {c: df.get_column(c).to_list() if c in df.columns else [None] * n for c in names}
        tasks = {
            i: CodeTask(
                col["response"][i] or "",
                col["tests"][i],
                col["entry_point"][i],
                col["io_tests"][i],
                col["test_setup"][i],
                col["reference"][i],
            )  # fmt: skip
            for i in range(n)
            if col["task"][i] == "code"
        }
        results: list[CodeResult | None] = [None] * n
        broken = sandbox_error(self.config) if tasks else None
        if broken is not None:  # no sandbox: cannot decide, unless no sandbox was needed
            for i, t in tasks.items():
                prep = _prepare(t.response, t.tests, t.io_tests, self.config)
                results[i] = prep if isinstance(prep, CodeResult) else _result("sandbox_error", broken)
        else:
            for i, r in zip(tasks, run_code_batch(list(tasks.values()), self.config), strict=True):
                results[i] = r
        status = [r.status if r else None for r in results]
        df = df.with_columns(
            pl.Series("code_score", [r.score if r else None for r in results], dtype=pl.Float64),
            pl.Series("code_status", status, dtype=pl.String),
            pl.Series("code_duration_s", [r.duration_s if r else None for r in results], dtype=pl.Float64),
            pl.Series("code_detail", [(r.detail or r.stderr)[-500:] if r else None for r in results],
                      dtype=pl.String),
            pl.Series("code_limits", [r.limits or None if r else None for r in results], dtype=pl.String),
        )  # fmt: skip
        codes = {reason: pl.col("code_status") == s for s, (_, reason) in _OUTCOME.items() if reason}
        return add_reasons(df, codes)
