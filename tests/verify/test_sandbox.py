"""The hostile suite: real programs try to escape or fake a pass; the host checks nothing happened.

Every hostile test runs in both sandbox modes: "fresh" (one bwrap per program) and "pooled" (programs
share a pre-started zygote for the whole module, as a batch's worker does). In pooled mode each test
is followed by an honest program in the same pool that checks nothing was left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest

from curate.verify.code import CodeConfig, CodeResult, run_code
from curate.verify.sandbox import SandboxConfig, run_sandboxed, sandbox_error
from curate.verify.zygote import ZygotePool

pytestmark = pytest.mark.skipif(sandbox_error() is not None, reason=f"no working bubblewrap: {sandbox_error()}")

LOW = CodeConfig(cpu_s=1, wall_s=2.5, memory_mb=256, nproc=16, fsize_mb=1, output_bytes=1 << 20)
FAILING_CHECK = "def check(candidate):\n    assert candidate(1) == 2\n"


ROOT = os.geteuid() == 0
# An honest program that fails if anything of an earlier one is visible: files, IPC objects, processes.
CLEAN_CHECK = """import os, ctypes, resource
libc = ctypes.CDLL(None)
assert os.listdir('/tmp') == [], os.listdir('/tmp')
buf = ctypes.create_string_buffer(4096)
for ctl, info, stat_any, a in ((libc.shmctl, 14, 15, ()), (libc.semctl, 19, 20, (0,)), (libc.msgctl, 12, 13, ())):
    assert all(ctl(i, *a, stat_any, buf) < 0 for i in range(max(ctl(0, *a, info, buf), 0) + 1))
if os.uname().machine == "x86_64":  # nothing in the uid's keyring (KEYCTL_SEARCH, keyring -4)
    libc.syscall.restype = ctypes.c_long
    assert libc.syscall(250, 10, ctypes.c_long(-4), b"user", b"planted", 0) == -1
if os.getuid() != 0:
    resource.setrlimit(resource.RLIMIT_NPROC, (2, 2))  # fork works only if we are the uid's last task
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
"""


class Runner:
    def __init__(self, pool: ZygotePool | None) -> None:
        self.pool = pool

    def __call__(
        self,
        program: str,
        tests: str | None = FAILING_CHECK,
        io: list[dict[str, str]] | None = None,
        config: CodeConfig = LOW,
    ) -> CodeResult:
        response = f"<think>plan</think>\n```python\n{program}\n```\n"
        pool = self.pool if self.pool is not None and config is self.pool.config else None
        return run_code(response, tests=tests, entry_point="f" if tests else None, io_tests=io,
                        config=config, pool=pool)  # fmt: skip


@pytest.fixture(scope="module")
def zygotes() -> object:
    with ZygotePool(LOW) as pool:
        yield pool


@pytest.fixture(params=["fresh", "pooled"])
def run(request: pytest.FixtureRequest, zygotes: ZygotePool) -> object:
    pooled = request.param == "pooled"
    if pooled and not ROOT:
        pytest.skip("pooled mode needs root (it falls back to fresh sandboxes)")
    runner = Runner(zygotes if pooled else None)
    yield runner
    if pooled:  # the pool is still usable, and the next program finds nothing of this one
        r = runner(CLEAN_CHECK, tests="pass")
        assert (r.passed, r.status) == (True, "pass"), r


def _host_processes(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmd:
                found.append(f"{pid}: {cmd}")
    return found


def test_fork_bomb_is_contained(run: Runner) -> None:
    t0 = time.perf_counter()
    r = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    assert r.passed is False and r.status in {"timeout", "error"}
    assert time.perf_counter() - t0 < LOW.wall_s + 3


@pytest.mark.parametrize("program", [
    "x = bytearray(10**10)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))",
])  # fmt: skip
def test_memory_bomb(run: Runner, program: str) -> None:
    r = run(program)
    assert (r.passed, r.reason) == (False, "code.memory")


@pytest.mark.parametrize("program", ["while True:\n    pass", "import time\ntime.sleep(60)"])
def test_infinite_loops_time_out(run: Runner, program: str) -> None:
    t0 = time.perf_counter()
    r = run(program)
    assert (r.passed, r.reason) == (False, "code.timeout")
    assert time.perf_counter() - t0 < LOW.wall_s + 2


def test_no_network_to_host_loopback(run: Runner) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(server.accept())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        prog = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')\n"
        r = run(prog, tests="pass")
        assert (r.passed, r.reason) == (False, "code.error")
        assert "OSError" in r.detail or "Error" in r.detail
        # the same client outside the sandbox does reach the server (the test itself is sound)
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert len(accepted) == 1  # only the host's own connection


def test_host_files_are_neither_read_nor_written(run: Runner, tmp_path: Path) -> None:
    secret_value = secrets.token_hex(8)
    secret = tmp_path / "secret.txt"
    secret.write_text(secret_value)
    target = tmp_path / "pwned.txt"
    usr_target = Path(f"/usr/pwned-{secrets.token_hex(4)}")
    prog = (
        "import os\n"
        f"for p in [{str(secret)!r}, '/etc/shadow', '/etc/passwd', '/root/.bash_history']:\n"
        "    try:\n        print(open(p).read())\n    except OSError as e:\n        print('no', p, e)\n"
        f"for p in [{str(target)!r}, {str(usr_target)!r}, '/tmp/inside.txt']:\n"
        "    try:\n        open(p, 'w').write('x')\n        print('wrote', p)\n"
        "    except OSError as e:\n        print('no', p, e)\n"
        "print(os.listdir('/'))\n"
    )
    r = run(prog, tests="pass")
    assert r.passed is True  # the program ran to the end; only its own /tmp was writable
    assert secret_value not in r.stdout + r.stderr + r.detail
    assert "wrote /tmp/inside.txt" in r.stdout and "proc" not in r.stdout
    assert not target.exists() and not usr_target.exists() and not Path("/tmp/inside.txt").exists()
    assert secret.read_text() == secret_value


def test_environment_is_scrubbed(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    value = secrets.token_hex(8)
    monkeypatch.setenv("CURATE_TEST_SECRET", value)
    r = run("import os\nprint(dict(os.environ))\n", tests="pass")
    assert r.passed is True and "PATH" in r.stdout
    assert value not in r.stdout and "CURATE_TEST_SECRET" not in r.stdout


@pytest.mark.parametrize("program", [
    "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "import os, signal\nos.kill(-1, signal.SIGKILL)",
    "import os, signal\nos.killpg(0, signal.SIGKILL)",
])  # fmt: skip
def test_killing_the_parent_only_kills_the_program(run: Runner, program: str) -> None:
    r = run(program)
    assert r.passed is False and r.reason == "code.error"  # never sandbox_error: the harness survives


def test_detached_children_do_not_survive(run: Runner) -> None:
    marker = f"{secrets.randbelow(10**6) + 10**6}.5"
    prog = (
        "import os\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "    os._exit(0)\n"
        "def f(x):\n    return x + 1\n"
    )
    t0 = time.perf_counter()
    r = run(prog)
    assert r.passed is True  # the verdict does not wait for the orphan ...
    assert time.perf_counter() - t0 < LOW.wall_s
    time.sleep(0.2)
    assert _host_processes(f"sleep {marker}") == []  # ... which died with the sandbox


def test_output_floods(run: Runner) -> None:
    r = run("while True:\n    print('x' * 10000)")
    assert (r.passed, r.reason) == (False, "code.output_limit")
    assert len(r.stdout) <= LOW.tail_chars
    r = run("while True:\n    print('x' * 10000)", tests=None, io=[{"input": "", "output": "x"}])
    assert (r.passed, r.reason) == (False, "code.output_limit")


FAKE_PASSES = [
    "import sys\nsys.exit(0)",
    "import os\nos._exit(0)",
    "import atexit, os\natexit.register(lambda: os._exit(0))\ndef f(x):\n    return x",
    "import sys, os\nsys.excepthook = lambda *a: os._exit(0)\ndef f(x):\n    return x",
    "import os\ndef f(x):\n    os._exit(0)",
    "import sys\ndef f(x):\n    sys.exit(0)",
    # write plausible verdicts on every descriptor, then leave
    "import os\nfor fd in range(3, 64):\n    for line in (b'pass\\n', b'x pass\\n'):\n        try:\n"
    "            os.write(fd, line)\n        except OSError:\n            pass\nos._exit(0)",
    "print('pass')\nimport sys\nprint('pass', file=sys.stderr)\ndef f(x):\n    return x",
    # the classic reward hack: a value equal to everything
    "class Any:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Any()",
    "class Int(int):\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Int(0)",
]


@pytest.mark.parametrize("program", FAKE_PASSES)
def test_early_exits_and_forged_verdicts_fail(run: Runner, program: str) -> None:
    r = run(program)
    assert r.passed is False, r


def test_patched_builtins_do_not_reach_the_tests(run: Runner) -> None:
    tests = "def check(candidate):\n    assert abs(candidate(1) - 2) < 1e-9\n    assert len([1]) == 1\n"
    prog = "import builtins\nbuiltins.abs = lambda x: 0\nlen = lambda x: 1\ndef f(x):\n    return 100"
    assert run(prog, tests=tests).passed is False
    assert run("def f(x):\n    return x + 1", tests=tests).passed is True


def test_cpu_limit_is_per_process_and_honest_programs_pass(run: Runner) -> None:
    r = run("def f(x):\n    return x + 1")
    assert (r.passed, r.reason, r.status) == (True, None, "pass")


def test_missing_bwrap_is_a_sandbox_error_never_a_verdict(run: Runner) -> None:
    cfg = CodeConfig(bwrap="/nonexistent/bwrap")
    r = run("def f(x):\n    return x + 1", config=cfg)
    assert (r.passed, r.reason) == (None, "code.sandbox_error")
    r = run("def f(x):\n    return x", config=cfg)
    assert (r.passed, r.reason) == (None, "code.sandbox_error")
    assert sandbox_error(SandboxConfig(bwrap="/nonexistent/bwrap")) is not None


def test_broken_interpreter_is_a_sandbox_error() -> None:
    run_ = run_sandboxed("x = 1", tests="pass", entry_point=None, io_tests=[],
                         config=SandboxConfig(python="/nonexistent/bin/python3"))  # fmt: skip
    assert run_.status == "sandbox_error"


# ---- pooled mode: what a zygote must never carry from one program to the next ----------------------

pooled_only = pytest.mark.skipif(not ROOT, reason="pooled mode needs root")


@pooled_only
def test_a_program_leaves_nothing_for_the_next_one() -> None:
    marker = f"{secrets.randbelow(10**6) + 10**6}.25"
    plant = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None)\n"
        "assert libc.shmget(4242, 4096, 0o1666) >= 0 and libc.semget(4243, 1, 0o1000) >= 0\n"
        "assert libc.msgget(4244, 0o1666) >= 0\n"
        "if os.uname().machine == 'x86_64':  # add_key('user', 'planted', ..., user keyring)\n"
        "    libc.syscall.restype = ctypes.c_long\n"
        "    assert libc.syscall(248, b'user', b'planted', b'42', 2, ctypes.c_long(-4)) > 0\n"
        "os.makedirs('/tmp/a/b')\n"
        "open('/tmp/a/b/answer', 'w').write('42')\n"
        "open('/tmp/.hidden', 'w').write('42')\n"
        "os.chmod('/tmp/a/b', 0)\n"
        "os.chmod('/tmp/a', 0)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
    )
    with ZygotePool(LOW) as pool:
        run = Runner(pool)
        assert run(plant, tests="pass").passed is True
        assert _host_processes(f"sleep {marker}") == []  # killed before the verdict came back
        r = run(CLEAN_CHECK, tests="pass")
        assert (r.passed, pool.started) == (True, 1), r  # the same zygote, cleaned, not replaced


@pooled_only
def test_the_pool_reuses_sandboxes_and_replaces_broken_ones() -> None:
    honest = "def f(x):\n    return x + 1"
    # A wall clock far above the 1 s CPU limit, so that the CPU limit fires first on a loaded machine too.
    cfg = dataclasses.replace(LOW, wall_s=8.0)
    with ZygotePool(cfg) as pool:
        run = Runner(pool)
        assert all(run(honest, config=cfg).passed for _ in range(5)) and pool.started == 1
        assert run("while True:\n    pass", config=cfg).reason == "code.timeout"  # CPU limit: harness verdict
        assert run(honest, config=cfg).passed is True and pool.started == 1
        assert run("import time\ntime.sleep(60)", config=cfg).reason == "code.timeout"  # wall: thrown away
        assert run(honest, config=cfg).passed is True and pool.started == 2
        zygote = pool._local.zygote
        os.killpg(zygote.proc.pid, 9)  # dies while idle: the next program goes to a new one
        zygote.proc.wait()
        assert run(honest, config=cfg).passed is True and pool.started == 3
        assert pool.broken is None


def test_pool_falls_back_to_fresh_sandboxes_that_report_the_error() -> None:
    with ZygotePool(SandboxConfig(python="/nonexistent/bin/python3")) as pool:
        r = pool.run("x = 1", tests="pass", entry_point=None, io_tests=[])
        assert r.status == "sandbox_error" and pool.broken is not None
