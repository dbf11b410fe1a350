"""Run untrusted Python under bubblewrap, with rlimits, a wall clock and output caps.

Layout of one run: ``bwrap`` (no network, new pid/ipc/uts namespaces, private tmpfs ``/tmp``, a
read-only view of ``/usr`` and the interpreter's prefix only, empty environment) starts the harness
(``_harness.py``), which forks one confined child per test run. The host side here feeds the payload
on stdin, reads stdout/stderr (keeping tails, killing the run past ``output_bytes``), enforces
``wall_s`` by killing bwrap's process group (``--die-with-parent`` then takes the whole pid namespace
down, detached grandchildren included) and accepts a verdict only from the result pipe, prefixed by a
per-run nonce that no candidate process ever saw. Anything that prevents a verdict and is not the
candidate's doing is ``sandbox_error`` (retryable), never a pass or a fail.

Running as root (CI, this project's machines), bwrap keeps only CAP_SETUID/CAP_SETGID so the harness
can move each child to its own unprivileged uid: RLIMIT_NPROC then bounds fork bombs (the kernel
ignores it for root) and the child cannot signal the harness or read its descriptors. Without root,
bwrap needs a user namespace and children keep the caller's uid (weaker, best effort).
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HARNESS_SOURCE = (Path(__file__).with_name("_harness.py")).read_text(encoding="utf-8")
STATUSES = ("pass", "tests_failed", "error", "memory", "timeout", "output_limit", "sandbox_error")


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Limits of one sandboxed run; CPU, memory and file limits apply to every child process."""

    cpu_s: int = 5  # CPU seconds per test process (the tests, or one stdin/stdout case)
    wall_s: float = 20.0  # wall clock for the whole run, sandbox start included
    memory_mb: int = 1024  # address space per process (RLIMIT_AS)
    nproc: int = 32  # processes + threads of the run's uid (RLIMIT_NPROC)
    fsize_mb: int = 16  # largest file a process may write, stdin/stdout case output included
    nofile: int = 128  # open descriptors per process
    tmpfs_mb: int = 64  # size of the private /tmp
    output_bytes: int = 8 << 20  # stdout+stderr the host reads before killing the run
    tail_chars: int = 2000  # stdout/stderr kept in the result
    bwrap: str = "/usr/bin/bwrap"
    python: str = ""  # interpreter inside the sandbox; "" = the running one
    extra_ro_binds: tuple[str, ...] = ()  # more host paths to show read-only (same path inside)
    uid_base: int = 200_000  # children run as uid_base + per-process offset + slot (root only)


@dataclass(frozen=True, slots=True)
class SandboxRun:
    status: str  # one of STATUSES
    detail: str
    stdout: str
    stderr: str
    duration_s: float


class _Slots:
    """Distinct uids for concurrent runs, so RLIMIT_NPROC counts one run's processes only."""

    def __init__(self, n: int = 1024) -> None:
        self._free = list(range(n))
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            return self._free.pop() if self._free else secrets.randbelow(1024)

    def give(self, slot: int) -> None:
        with self._lock:
            if slot not in self._free:
                self._free.append(slot)


_SLOTS = _Slots()


@functools.lru_cache(maxsize=16)
def _argv(bwrap: str, python: str, binds: tuple[str, ...], tmpfs_mb: int, root: bool) -> tuple[str, ...]:
    py = os.path.realpath(python or sys.executable)
    args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if root:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]
    args += ["--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for d in ("bin", "sbin", "lib", "lib64", "lib32"):  # merged-/usr symlinks, or real dirs
        host = Path("/" + d)
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), "/" + d]
        elif host.is_dir():
            args += ["--ro-bind", "/" + d, "/" + d]
    prefix = os.path.realpath(sys.base_prefix) if not python else str(Path(py).parent.parent)
    for path in (prefix, *binds):
        if path != "/usr" and not path.startswith("/usr/"):
            # bwrap copies a parent's host mode (/root is 0700): open the way for the child's uid.
            for parent in reversed(Path(path).parents[:-1]):
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", path, path]
    # No /proc: nothing to learn about the harness or bwrap, and one mount less to set up.
    args += ["--dev", "/dev", "--perms", "1777", "--size", str(tmpfs_mb << 20), "--tmpfs", "/tmp"]
    args += ["--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp"]
    args += ["--setenv", "LANG", "C.UTF-8", "--hostname", "sandbox", "--chdir", "/tmp"]
    args += ["--", py, "-I", "-S", "-B", "-X", "utf8", "-c", HARNESS_SOURCE]
    return tuple(args)


def _tail(buf: bytearray, n: int) -> str:
    return bytes(buf[-4 * n :]).decode("utf-8", "replace")[-n:]


def run_sandboxed(
    code: str,
    *,
    tests: str | None,
    entry_point: str | None,
    io_tests: list[tuple[str, str]],
    config: SandboxConfig = SandboxConfig(),
    plain_returns: bool = True,
) -> SandboxRun:
    """Run ``code`` against ``tests`` (HumanEval ``check`` or an assert script) and/or stdin/stdout cases."""
    t0 = time.perf_counter()
    root = os.geteuid() == 0
    slot = _SLOTS.take()
    payload: dict[str, Any] = {
        "code": code, "tests": tests, "entry_point": entry_point, "io": io_tests,
        "plain_returns": plain_returns, "cpu": int(config.cpu_s), "memory": config.memory_mb << 20,
        "fsize": config.fsize_mb << 20, "nofile": config.nofile, "nproc": config.nproc,
        "uid": config.uid_base + (os.getpid() % 1000) * 1024 + slot if root else None,
    }  # fmt: skip
    try:
        return _run(payload, config, root, t0)
    finally:
        _SLOTS.give(slot)


def _run(payload: dict[str, Any], cfg: SandboxConfig, root: bool, t0: float) -> SandboxRun:
    def infra(detail: str, err: str = "") -> SandboxRun:
        return SandboxRun("sandbox_error", detail, "", err, time.perf_counter() - t0)

    if not os.access(cfg.bwrap, os.X_OK):
        return infra(f"bubblewrap not found at {cfg.bwrap}")
    argv = _argv(cfg.bwrap, cfg.python, cfg.extra_ro_binds, cfg.tmpfs_mb, root)
    nonce = secrets.token_hex(16).encode()
    res_r, res_w = os.pipe()
    non_r, non_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [*argv, str(res_w), str(non_r)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(res_w, non_r), start_new_session=True, env={},
        )  # fmt: skip
    except OSError as e:
        for fd in (res_r, res_w, non_r, non_w):
            os.close(fd)
        return infra(f"cannot start bubblewrap: {e}")
    os.close(res_w)
    os.close(non_r)
    os.write(non_w, nonce)  # 32 bytes: fits the pipe buffer, never blocks
    os.close(non_w)
    out, err, result = bytearray(), bytearray(), bytearray()
    flood = timed_out = False
    total = 0  # stdout + stderr bytes read (the buffers keep tails only)
    assert proc.stdin and proc.stdout and proc.stderr
    data = memoryview(marshal.dumps(payload))
    sel = selectors.DefaultSelector()
    try:
        stdin_fd = proc.stdin.fileno()
        os.set_blocking(stdin_fd, False)
        sel.register(stdin_fd, selectors.EVENT_WRITE)
        bufs = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, res_r: result}
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        deadline = t0 + cfg.wall_s
        while sel.get_map() and not flood:
            left = deadline - time.perf_counter()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(left):
                fd = key.fd
                if fd == stdin_fd:
                    try:
                        data = data[os.write(fd, data[: 1 << 16]) :]
                    except BrokenPipeError:
                        data = data[:0]
                    if not data:
                        sel.unregister(fd)
                        proc.stdin.close()
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    sel.unregister(fd)
                    continue
                buf = bufs[fd]
                buf += chunk
                if fd == res_r:
                    del buf[4096:]
                    continue
                total += len(chunk)
                if total > cfg.output_bytes:
                    flood = True
                elif len(buf) > 8 * cfg.tail_chars:
                    del buf[: len(buf) - 4 * cfg.tail_chars]  # keep a tail only
    finally:
        sel.close()
        if timed_out or flood or proc.poll() is None:
            _kill(proc, wait=not (timed_out or flood))
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f and not f.closed:
                f.close()
        os.close(res_r)
    so, se = _tail(out, cfg.tail_chars), _tail(err, cfg.tail_chars)
    dt = time.perf_counter() - t0
    head, _, detail = bytes(result).decode("utf-8", "replace").partition("\n")
    tok, _, verdict = head.partition(" ")
    if tok == nonce.decode() and verdict in STATUSES:
        return SandboxRun(verdict, detail, so, se, dt)
    if flood:
        return SandboxRun("output_limit", f"more than {cfg.output_bytes} bytes of output", so, se, dt)
    if timed_out:
        return SandboxRun("timeout", f"wall clock limit of {cfg.wall_s:g}s", so, se, dt)
    return SandboxRun("sandbox_error", f"no verdict from the harness (exit {proc.returncode})", so, se, dt)


def _kill(proc: subprocess.Popen[bytes], wait: bool) -> None:
    """Kill bwrap's process group; --die-with-parent then ends the sandbox's pid namespace."""
    if wait:  # everything closed its pipes: bwrap is exiting on its own
        try:
            proc.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


_WORKING: set[SandboxConfig] = set()


def sandbox_error(config: SandboxConfig = SandboxConfig()) -> str | None:
    """Why the sandbox cannot run here (None when a trivial program passes). Successes are cached;
    a failure is probed again next time (it may be transient)."""
    if config in _WORKING:
        return None
    if shutil.which(config.bwrap) is None:
        return f"bubblewrap not found at {config.bwrap}"
    run = run_sandboxed("x = 1", tests="assert x == 1", entry_point=None, io_tests=[], config=config)
    if run.status == "pass":
        _WORKING.add(config)
        return None
    return f"{run.status}: {run.detail} {run.stderr[-300:]}".strip()
