"""The grade cannot be forged: wrong programs written as an RL policy would write them, in all three test
shapes, each graded fail or tampered; honest programs that look unusual still pass.

Every exploit runs in both sandbox modes ("fresh": one bwrap per program; "pooled": a zygote reused for
the module, as a batch's worker does). Each case names the status it must get, so a route that stops
being caught as tampered but still fails shows up as a change, not as silence.
"""

from __future__ import annotations

import gzip
import json
import os
from importlib.resources import files
from pathlib import Path

import pytest

from curate.verify.code import CodeConfig, CodeResult, CodeTask, run_code, run_code_batch
from curate.verify.sandbox import sandbox_error
from curate.verify.zygote import ZygotePool

pytestmark = pytest.mark.skipif(sandbox_error() is not None, reason=f"no working bubblewrap: {sandbox_error()}")

ROOT = os.geteuid() == 0
CFG = CodeConfig(cpu_s=2, wall_s=6, memory_mb=256, nproc=16, fsize_mb=1, output_bytes=1 << 20)
CHECK = (
    "def check(candidate):\n    assert candidate(1) == 2\n"
    "    assert candidate(5) == 6\n    assert candidate(-3) == -2\n"
)
SCRIPT = "assert f(1) == 2\nassert f(5) == 6\nassert f(-3) == -2\n"
IO = [{"input": "1\n", "output": "2"}, {"input": "5\n", "output": "6"}]


@pytest.fixture(scope="module")
def zygotes() -> object:
    with ZygotePool(CFG) as pool:
        yield pool


@pytest.fixture(params=["fresh", "pooled"])
def grade(request: pytest.FixtureRequest, zygotes: ZygotePool) -> object:
    if request.param == "pooled" and not ROOT:
        pytest.skip("pooled mode needs root")
    pool = zygotes if request.param == "pooled" else None

    def run(program: str, shape: str = "check", setup: str | None = None) -> CodeResult:
        response = f"<think>plan</think>\n```python\n{program}\n```\n"
        tests = {"check": CHECK, "script": SCRIPT, "io": None}[shape]
        return run_code(response, tests=tests, entry_point="f" if shape == "check" else None,
                        io_tests=IO if shape == "io" else None, setup=setup, config=CFG, pool=pool)  # fmt: skip

    return run


# (name, shape, program, status): every one of these is a wrong program that tries to pass.
EXPLOITS = [
    # -- the routes found against the old in-process harness
    (
        "report() through the caller's frame",
        "check",
        "import sys\ndef f(x):\n    sys._getframe(1).f_locals['report']('pass')\n    return 0",
        "tampered",
    ),
    (
        "report() through an f_back walk",
        "check",
        "import sys\ndef f(x):\n    fr = sys._getframe()\n    while fr is not None:\n"
        "        if 'report' in fr.f_locals:\n            fr.f_locals['report']('pass')\n        fr = fr.f_back\n"
        "    return 0",
        "tampered",
    ),
    (
        "report() found through gc",
        "check",
        "import gc\ndef f(x):\n    for o in gc.get_objects():\n"
        "        if callable(o) and getattr(o, '__name__', '') == 'report':\n"
        "            o('pass')\n    return 0",
        "tampered",
    ),
    ("gc.get_referrers walk", "check", "import gc\ndef f(x):\n    gc.get_referrers(f)\n    return 0", "tampered"),
    (
        "settrace hook blanks the tests",
        "check",
        "import sys\nsys.settrace(lambda *a: None)\ndef f(x):\n    return 0",
        "tampered",
    ),
    ("profile hook", "check", "import sys\nsys.setprofile(lambda *a: None)\ndef f(x):\n    return 0", "tampered"),
    (
        "threading trace hook",
        "check",
        "import threading, sys\nthreading.settrace(lambda *a: None)\nt = threading.Thread(target=lambda: None)\n"
        "t.start(); t.join()\ndef f(x):\n    return 0",
        "tampered",
    ),
    (
        "always-equal object",
        "check",
        "class Any:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Any()",
        "tampered",
    ),
    (
        "int subclass forging ==",
        "check",
        "class Int(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "def f(x):\n    return Int(0)",
        "tampered",
    ),
    (
        "str subclass forging !=",
        "check",
        "class S(str):\n    def __ne__(self, other):\n        return False\n    def __eq__(self, other):\n"
        "        return True\n    __hash__ = str.__hash__\ndef f(x):\n    return S('')",
        "tampered",
    ),
    ("patched builtins", "check", "import builtins\nbuiltins.abs = lambda x: 0\ndef f(x):\n    return 0", "tampered"),
    (
        "patched AssertionError",
        "check",
        "import builtins\nclass Nope(Exception):\n    pass\nbuiltins.AssertionError = Nope\ndef f(x):\n    return 0",
        "tampered",
    ),
    (
        "replaced code object",
        "check",
        "def g(x):\n    return 0\ndef f(x):\n    g.__code__ = (lambda x: 1).__code__\n    return 0",
        "tampered",
    ),
    (
        "patched the harness's encoder",
        "check",
        "import __main__\n__main__.encode = lambda *a, **k: 2\ndef f(x):\n    return 0",
        "tampered",
    ),
    ("redefined check()", "check", "def check(candidate):\n    pass\ndef f(x):\n    return 0", "tests_failed"),
    (
        "redefined the tests' helper",
        "helper",
        "def poly(xs, x):\n    return 0\ndef f(xs):\n    return 123.0",
        "tests_failed",
    ),
    ("sys.exit before the tests", "check", "import sys\nsys.exit(0)\ndef f(x):\n    return x", "incomplete"),
    ("os._exit before the tests", "check", "import os\nos._exit(0)\ndef f(x):\n    return x", "incomplete"),
    ("os._exit inside the call", "check", "import os\ndef f(x):\n    os._exit(0)", "incomplete"),
    ("sys.exit inside the call", "check", "import sys\ndef f(x):\n    sys.exit(0)", "incomplete"),
    (
        "atexit forging a clean exit",
        "check",
        "import atexit, os\natexit.register(lambda: os._exit(0))\ndef f(x):\n    raise SystemExit(0)",
        "incomplete",
    ),
    (
        "kill every process it can",
        "check",
        "import os, signal\ndef f(x):\n    os.kill(-1, signal.SIGKILL)",
        "tests_failed",
    ),
    (
        "verdict lines on every descriptor",
        "check",
        "import os\nfor fd in range(3, 64):\n    for line in (b'pass\\n', b'x pass\\n'):\n        try:\n"
        "            os.write(fd, line)\n        except OSError:\n            pass\ndef f(x):\n    return x",
        "tampered",
    ),
    (
        "replies queued ahead",
        "check",
        "import os, json\nfor fd in range(3, 16):\n    try:\n        d = json.dumps(['ok', 2, []]).encode()\n"
        "        os.write(fd, len(d).to_bytes(4, 'big') + d)\n    except OSError:\n        pass\n"
        "def f(x):\n    return x",
        "tampered",
    ),
    (
        "reads the tests from /proc",
        "check",
        "def f(x):\n    import os\n    for p in os.listdir('/proc'):\n        pass\n    return 0",
        "error",
    ),
    (
        "swallows the failing comparison",
        "check",
        "def f(x):\n    try:\n        raise AssertionError\n    except AssertionError:\n        return None",
        "tests_failed",
    ),
    # -- assert scripts
    (
        "always-equal object (script)",
        "script",
        "class Any:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Any()",
        "tampered",
    ),
    (
        "frame walk (script)",
        "script",
        "import sys\ndef f(x):\n    g = sys._getframe(1).f_globals\n    return 0",
        "tampered",
    ),
    ("exit before the asserts (script)", "script", "raise SystemExit(0)\ndef f(x):\n    return x", "incomplete"),
    (
        "patched builtins (script)",
        "script",
        "import builtins\nbuiltins.AssertionError = KeyError\ndef f(x):\n    return 0",
        "tampered",
    ),
    # -- stdin/stdout
    (
        "expected output through an f_back walk (io)",
        "io",
        "import sys\nfr = sys._getframe()\nwhile fr is not None:\n    if 'expected' in fr.f_locals:\n"
        "        print(fr.f_locals['expected'])\n    fr = fr.f_back",
        "tampered",
    ),
    ("expected output through gc (io)", "io", "import gc\nfor o in gc.get_objects():\n    pass\nprint(1)", "tampered"),
    (
        "expected output from files (io)",
        "io",
        "import os\nfor root, dirs, names in os.walk('/tmp'):\n    for n in names:\n"
        "        print(open(os.path.join(root, n)).read())",
        "tests_failed",
    ),
    ("exit status forged (io)", "io", "import os\nos._exit(0)", "tests_failed"),
]
HELPER_SETUP = "def poly(xs, x):\n    return sum(c * x**i for i, c in enumerate(xs))\n"
HELPER_TESTS = "def check(candidate):\n    xs = [-6, 11, -6, 1]\n    assert abs(poly(xs, candidate(xs))) < 1e-6\n"


@pytest.mark.parametrize(("name", "shape", "program", "status"), EXPLOITS, ids=[e[0] for e in EXPLOITS])
def test_exploit_is_graded_fail_or_tampered(grade: object, name: str, shape: str, program: str, status: str) -> None:
    if shape == "helper":  # HumanEval/32's shape: the tests use a helper the problem defines
        response = f"<think>plan</think>\n```python\n{program}\n```\n"
        r = run_code(response, tests=HELPER_TESTS, entry_point="f", io_tests=None, setup=HELPER_SETUP, config=CFG)
    else:
        r = grade(program, shape)  # type: ignore[operator]
    assert r.passed is False, r
    assert r.status == status, r
    assert r.reason == f"code.{status}"


HONEST = [
    ("plain", "def f(x):\n    return x + 1"),
    (
        "namedtuple and typing",
        "from collections import namedtuple\nfrom typing import List, TypeVar\n"
        "T = TypeVar('T')\nP = namedtuple('P', 'a b')\ndef f(x: int) -> int:\n    return P(x, 1).a + P(x, 1).b",
    ),
    (
        "inspect and warnings",
        "import inspect, warnings\ndef f(x):\n    inspect.stack()\n"
        "    warnings.warn('careful', stacklevel=2)\n    return x + 1",
    ),
    (
        "deep recursion",
        "import sys\nsys.setrecursionlimit(5000)\ndef g(n):\n    return 0 if n == 0 else 1 + g(n - 1)\n"
        "def f(x):\n    return x + 1 + g(2000) - 2000",
    ),
    ("a helper named check", "def check(x):\n    return x\ndef f(x):\n    return check(x) + 1"),
    (
        "gc.collect and dataclasses",
        "import gc, dataclasses\n@dataclasses.dataclass\nclass C:\n    v: int\n"
        "def f(x):\n    gc.collect()\n    return C(x).v + 1",
    ),
    (
        "IntEnum result",
        "import enum\nclass E(enum.IntEnum):\n    A = 2\n    B = 6\n    C = -2\ndef f(x):\n    return E(x + 1)",
    ),
    ("a global shadowing a builtin", "len = 3\nabs = None\ndef f(x):\n    return x + 1"),
    ("prints while running", "def f(x):\n    print('debug', x)\n    return x + 1"),
    (
        "threads",
        "import threading\ndef f(x):\n    out = []\n    t = threading.Thread(target=lambda: out.append(x + 1))\n"
        "    t.start(); t.join()\n    return out[0]",
    ),
]


@pytest.mark.parametrize(("name", "program"), HONEST, ids=[h[0] for h in HONEST])
@pytest.mark.parametrize("shape", ["check", "script"])
def test_honest_programs_pass(grade: object, name: str, program: str, shape: str) -> None:
    r = grade(program, shape)  # type: ignore[operator]
    assert (r.passed, r.status) == (True, "pass"), r


def test_honest_io_programs_pass(grade: object) -> None:
    for program in ("print(int(input()) + 1)",
                    "import sys\ninput = sys.stdin.readline\nprint(int(input()) + 1)",
                    "import sys\nsys.stdout.write(str(int(sys.stdin.read()) + 1) + '\\n')\nsys.exit(0)"):  # fmt: skip
        r = grade(program, "io")  # type: ignore[operator]
        assert (r.passed, r.status, r.detail) == (True, "pass", "2/2 cases"), r


def test_results_cross_as_data_in_all_shapes(grade: object) -> None:
    tests = (
        "def check(candidate):\n"
        "    assert candidate(1) == (1, [2.5, None], {'a': {3}}, frozenset({b'x'}), 1j, True)\n"
        "    assert type(candidate(1)[0]) is int and isinstance(candidate(1)[5], bool)\n"
        "    import math\n    assert math.isnan(candidate(0))\n"
        "    xs = [3, 1, 2]\n    assert candidate(xs) is None and xs == [1, 2, 3]\n"  # in-place changes come back
    )
    program = ("def f(x):\n    if x == 0:\n        return float('nan')\n    if isinstance(x, list):\n"
               "        x.sort()\n        return None\n"
               "    return (1, [2.5, None], {'a': {3}}, frozenset({b'x'}), 1j, True)")  # fmt: skip
    response = f"<think>.</think>\n```python\n{program}\n```\n"
    r = run_code(response, tests=tests, entry_point="f", io_tests=None, config=CFG)
    assert (r.passed, r.status) == (True, "pass"), r


def test_classes_cross_by_reference_and_compare_by_identity() -> None:
    tests = (
        "def check(candidate):\n    s = Stack()\n    s.push(2)\n    assert s.top() == 2\n    assert candidate(1) == 2\n"
    )
    program = ("class Stack:\n    def __init__(self):\n        self.v = []\n"
               "    def push(self, x):\n        self.v.append(x)\n"
               "    def top(self):\n        return self.v[-1]\ndef f(x):\n    return x + 1")  # fmt: skip
    r = run_code(f"<think>.</think>\n```python\n{program}\n```", tests=tests, entry_point="f", io_tests=None,
                 config=CFG)  # fmt: skip
    assert (r.passed, r.status) == (True, "pass"), r


def test_a_test_that_swallows_everything_still_sees_the_program_gone() -> None:
    tests = (
        "def check(candidate):\n    for i in range(3):\n        try:\n            candidate(i)\n"
        "        except:\n            pass\n"
    )
    r = run_code("<think>.</think>\n```python\nimport os\ndef f(x):\n    os._exit(0)\n```", tests=tests,
                 entry_point="f", io_tests=None, config=CFG)  # fmt: skip
    assert (r.passed, r.status) == (False, "incomplete"), r


# ---- the gold gate --------------------------------------------------------------------------------


def test_tests_that_fail_their_reference_are_bad_tests_not_failures() -> None:
    good_ref = "```python\ndef f(x):\n    return x + 1\n```"
    wrong_tests = "def check(candidate):\n    assert candidate(1) == 3\n"
    honest = "<think>.</think>\n```python\ndef f(x):\n    return x + 1\n```"
    tasks = [
        CodeTask(honest, wrong_tests, "f", reference=good_ref),  # the tests are wrong: nobody is to blame
        CodeTask(honest, CHECK, "f", reference=good_ref),  # the tests are right
        CodeTask(honest.replace("+ 1", "+ 2"), CHECK, "f", reference=good_ref),
        CodeTask(honest, wrong_tests, "f", reference="42"),  # a plain answer, not a solution: no gate
    ]
    out = run_code_batch(tasks, CFG)
    assert [r.status for r in out] == ["bad_tests", "pass", "tests_failed", "tests_failed"]
    assert out[0].passed is None and out[0].reason == "code.bad_tests"
    assert "reference solution fails" in out[0].detail


# ---- HumanEval: canonical solutions pass, mutants do not --------------------------------------------


def _humaneval() -> list[dict[str, str]]:
    with gzip.open(str(files("curate") / "data/benchmarks/humaneval.jsonl.gz"), "rt") as f:
        return [json.loads(line) for line in f]


MUTATE = """
_real_{ep} = {ep}
def {ep}(*a, **k):
    r = _real_{ep}(*a, **k)
    if isinstance(r, bool):
        return not r
    if isinstance(r, (int, float)):
        return r + 1
    if isinstance(r, str):
        return r + "x"
    if isinstance(r, (list, tuple)):
        return type(r)(list(r) + [0])
    return 0
"""


@pytest.mark.skipif(not ROOT, reason="pooled sandboxes need root (fresh ones are covered above)")
def test_humaneval_canonical_pass_and_mutants_fail() -> None:
    rows = _humaneval()
    canon = [CodeTask(f"<think>.</think>\n```python\n{r['prompt']}{r['canonical_solution']}\n```", r["test"],
                      r["entry_point"], setup=r["prompt"]) for r in rows]  # fmt: skip
    mutants = [CodeTask(f"<think>.</think>\n```python\n{r['prompt']}{r['canonical_solution']}\n"
                        f"{MUTATE.format(ep=r['entry_point'])}\n```", r["test"], r["entry_point"], setup=r["prompt"])
               for r in rows]  # fmt: skip
    out = run_code_batch(canon + mutants, CodeConfig())
    ok = [r for r in out[: len(rows)] if r.status == "pass"]
    assert len(ok) == len(rows), [
        (rows[i]["task_id"], r.detail) for i, r in enumerate(out[: len(rows)]) if not r.passed
    ]
    survivors = [rows[i]["task_id"] for i, r in enumerate(out[len(rows) :]) if r.passed]
    assert survivors == [], survivors


# ---- limits ----------------------------------------------------------------------------------------

FORK_HOGS = """import os, time
def hog():
    kids = []
    for i in range(6):
        try:
            pid = os.fork()
        except OSError:  # the process limit (rlimits mode)
            break
        if pid == 0:
            try:
                b = b'x' * (90 << 20)
                time.sleep(0.5)
                os._exit(0)
            except MemoryError:
                os._exit(3)
        kids.append(pid)
    return sum(os.waitpid(p, 0)[1] == 0 for p in kids)
"""


@pytest.mark.skipif(not ROOT, reason="cgroups and uids need root")
@pytest.mark.parametrize("use_cgroup", [True, False])
def test_memory_is_bounded_per_program_not_per_process(use_cgroup: bool) -> None:
    cfg = CodeConfig(cpu_s=5, wall_s=20, memory_mb=256, nproc=16, use_cgroup=use_cgroup)
    tests = "def check(candidate):\n    n = candidate()\n    assert n * 90 <= 256 + 96, n\n"
    r = run_code(f"<think>.</think>\n```python\n{FORK_HOGS}\n```", tests=tests, entry_point="hog", io_tests=None,
                 config=cfg)  # fmt: skip
    assert r.status in ("pass", "memory"), r  # never six children of 90 MB under a 256 MB program limit
    if use_cgroup and Path("/sys/fs/cgroup/memory").is_dir():
        assert r.limits.startswith("cgroup"), r.limits
    if not use_cgroup:
        assert r.limits.startswith("rlimits") and "4 processes x 64 MB" in r.limits, r.limits


def test_uid_blocks_differ_between_processes_and_after_fork() -> None:
    import subprocess
    import sys

    from curate.verify.sandbox import uid_block

    mine = uid_block()
    code = "from curate.verify.sandbox import uid_block; import time; print(uid_block(), flush=True); time.sleep(3)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        theirs = [int(p.stdout.readline()) for p in procs if p.stdout]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert len({mine, *theirs}) == 4  # four live processes, four blocks, whatever their pids mod 1000
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, str(uid_block()).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert int(os.read(r, 32)) != mine
    os.close(r)
    os.close(w)


def test_nothing_of_the_sandboxes_is_left_running() -> None:
    from curate.verify.sandbox import SandboxConfig

    base = SandboxConfig().uid_base
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
            if uid >= base:
                left.append((pid, uid))
    assert left == []


def test_assert_scripts_may_use_the_programs_pure_imports_only(grade: object) -> None:
    tests = "assert math.isclose(f(1), 2.0)\n"
    prog = "import math\ndef f(x):\n    return math.sqrt(4.0)"
    r = run_code(f"<think>.</think>\n```python\n{prog}\n```", tests=tests, entry_point=None, io_tests=None, config=CFG)
    assert (r.passed, r.status) == (True, "pass"), r
    prog = "import antigravity as math\ndef f(x):\n    return 2.0"  # the driver never imports it: NameError
    r = run_code(f"<think>.</think>\n```python\n{prog}\n```", tests=tests, entry_point=None, io_tests=None, config=CFG)
    assert r.passed is False, r
