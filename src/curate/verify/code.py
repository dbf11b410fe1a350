"""Code verification: extract the answer's last Python block and run it against the row's tests.

Three test shapes, all run in the bubblewrap sandbox (``curate.verify.sandbox``): HumanEval style
(``tests`` defines ``check(candidate)``, ``entry_point`` names the function), a plain assert script
(``tests`` without ``check``), and stdin/stdout cases (``io_tests``: ``[{input, output}, ...]``).
A pass is what the harness observed after every test ran, never the program's exit status.
``passed`` is None when nothing can be decided (no tests, sandbox failure): that is not a score of 0.
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
    "memory": (False, "code.memory"),
    "timeout": (False, "code.timeout"),
    "output_limit": (False, "code.output_limit"),
    "no_tests": (None, "code.no_tests"),
    "sandbox_error": (None, "code.sandbox_error"),
}


@dataclass(frozen=True, slots=True)
class CodeConfig(SandboxConfig):
    """Sandbox limits (see ``SandboxConfig``) plus how answers are read and run."""

    require_think: bool = True  # code only counts after </think>; no closing tag = no code
    untagged_fallback: bool = True  # use a bare ``` block when no ```python block exists
    plain_returns: bool = True  # the entry point must return plain data (defeats __eq__ hacks)
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


def _result(status: str, detail: str = "", stdout: str = "", stderr: str = "", dt: float = 0.0) -> CodeResult:
    passed, reason = _OUTCOME[status]
    return CodeResult(passed, reason, status, detail, stdout, stderr, dt)


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
    config: CodeConfig | None = None,
    pool: ZygotePool | None = None,
) -> CodeResult:
    """Verify one response; also usable as a GRPO reward (``result.score``, None = cannot decide).
    With ``pool`` (built with the same config) the program runs in one of its pre-started sandboxes."""
    cfg = config or CodeConfig()
    prep = _prepare(response, tests, io_tests, cfg)
    if isinstance(prep, CodeResult):
        return prep
    code, tests, cases = prep
    run: SandboxRun
    if pool is not None:
        run = pool.run(code, tests=tests, entry_point=entry_point or None, io_tests=cases,
                       plain_returns=cfg.plain_returns)  # fmt: skip
    else:
        run = run_sandboxed(code, tests=tests, entry_point=entry_point or None, io_tests=cases, config=cfg,
                            plain_returns=cfg.plain_returns)  # fmt: skip
    return _result(run.status, run.detail, run.stdout, run.stderr, run.duration_s)


def default_workers() -> int:
    return 2 * len(os.sched_getaffinity(0))


def run_code_batch(tasks: Sequence[CodeTask], config: CodeConfig | None = None) -> list[CodeResult]:
    """``run_code`` over many tasks, ``config.workers`` sandboxes at a time (results in input order).
    ``config.mode == "pooled"``: each worker keeps one sandbox for the whole batch (see ``zygote``)."""
    cfg = config or CodeConfig()
    if not tasks:
        return []
    if cfg.mode not in ("pooled", "fresh"):
        raise ValueError(f"mode must be 'pooled' or 'fresh', not {cfg.mode!r}")
    zygotes = ZygotePool(cfg) if cfg.mode == "pooled" else None

    def one(t: CodeTask) -> CodeResult:
        return run_code(t.response, tests=t.tests, entry_point=t.entry_point, io_tests=t.io_tests, config=cfg,
                        pool=zygotes)  # fmt: skip

    try:
        with ThreadPoolExecutor(max_workers=min(cfg.workers or default_workers(), len(tasks))) as pool:
            return list(pool.map(one, tasks))
    finally:
        if zygotes is not None:
            zygotes.close()


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
        names = ("task", "response", "tests", "entry_point", "io_tests")
        col = {c: df.get_column(c).to_list() if c in df.columns else [None] * n for c in names}
        tasks = {
            i: CodeTask(col["response"][i] or "", col["tests"][i], col["entry_point"][i], col["io_tests"][i])
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
        )  # fmt: skip
        codes = {reason: pl.col("code_status") == s for s, (_, reason) in _OUTCOME.items() if reason}
        return add_reasons(df, codes)
