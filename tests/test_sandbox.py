"""The hostile suite: real programs try to escape or fake a pass; the host checks nothing happened."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest

from curate.verify.code import CodeConfig, CodeResult, run_code
from curate.verify.sandbox import SandboxConfig, run_sandboxed, sandbox_error

pytestmark = pytest.mark.skipif(
    sandbox_error() is not None, reason=f"no working bubblewrap: {sandbox_error()}"
)

LOW = CodeConfig(cpu_s=1, wall_s=2.5, memory_mb=256, nproc=16, fsize_mb=1, output_bytes=1 << 20)
FAILING_CHECK = "def check(candidate):\n    assert candidate(1) == 2\n"


def run(
    program: str,
    tests: str | None = FAILING_CHECK,
    io: list[dict[str, str]] | None = None,
    config: CodeConfig = LOW,
) -> CodeResult:
    response = f"<think>plan</think>\n```python\n{program}\n```\n"
    return run_code(response, tests=tests, entry_point="f" if tests else None, io_tests=io, config=config)


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


def test_fork_bomb_is_contained() -> None:
    t0 = time.perf_counter()
    r = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    assert r.passed is False and r.status in {"timeout", "error"}
    assert time.perf_counter() - t0 < LOW.wall_s + 3


@pytest.mark.parametrize("program", [
    "x = bytearray(10**10)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))",
])  # fmt: skip
def test_memory_bomb(program: str) -> None:
    r = run(program)
    assert (r.passed, r.reason) == (False, "code.memory")


@pytest.mark.parametrize("program", ["while True:\n    pass", "import time\ntime.sleep(60)"])
def test_infinite_loops_time_out(program: str) -> None:
    t0 = time.perf_counter()
    r = run(program)
    assert (r.passed, r.reason) == (False, "code.timeout")
    assert time.perf_counter() - t0 < LOW.wall_s + 2


def test_no_network_to_host_loopback() -> None:
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


def test_host_files_are_neither_read_nor_written(tmp_path: Path) -> None:
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


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
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
def test_killing_the_parent_only_kills_the_program(program: str) -> None:
    r = run(program)
    assert r.passed is False and r.reason == "code.error"  # never sandbox_error: the harness survives


def test_detached_children_do_not_survive() -> None:
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


def test_output_floods() -> None:
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
def test_early_exits_and_forged_verdicts_fail(program: str) -> None:
    r = run(program)
    assert r.passed is False, r


def test_patched_builtins_do_not_reach_the_tests() -> None:
    tests = "def check(candidate):\n    assert abs(candidate(1) - 2) < 1e-9\n    assert len([1]) == 1\n"
    prog = "import builtins\nbuiltins.abs = lambda x: 0\nlen = lambda x: 1\ndef f(x):\n    return 100"
    assert run(prog, tests=tests).passed is False
    assert run("def f(x):\n    return x + 1", tests=tests).passed is True


def test_cpu_limit_is_per_process_and_honest_programs_pass() -> None:
    r = run("def f(x):\n    return x + 1")
    assert (r.passed, r.reason, r.status) == (True, None, "pass")


def test_missing_bwrap_is_a_sandbox_error_never_a_verdict() -> None:
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
