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

import collections
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
    # "pooled": batches reuse one sandbox per worker, emptied and checked between programs (see
    # curate.verify.zygote); "fresh": one bwrap per program. Single calls and non-root are always fresh.
    mode: str = "pooled"


@dataclass(frozen=True, slots=True)
class SandboxRun:
    status: str  # one of STATUSES
    detail: str
    stdout: str
    stderr: str
    duration_s: float


class _Slots:
    """Distinct uids for concurrent runs, so RLIMIT_NPROC counts one run's processes only. First in,
    first out: a uid comes back as late as possible, after a killed sandbox's processes are reaped."""

    def __init__(self, n: int = 1024) -> None:
        self._free = collections.deque(range(n))
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            return self._free.popleft() if self._free else secrets.randbelow(1024)

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


def payload_for(
    code: str, tests: str | None, entry_point: str | None, io_tests: list[tuple[str, str]],
    config: SandboxConfig, plain_returns: bool, uid: int | None,
) -> dict[str, Any]:  # fmt: skip
    """What the harness reads on stdin: the program, its tests and the limits of its processes."""
    return {
        "code": code, "tests": tests, "entry_point": entry_point, "io": io_tests,
        "plain_returns": plain_returns, "cpu": int(config.cpu_s), "memory": config.memory_mb << 20,
        "fsize": config.fsize_mb << 20, "nofile": config.nofile, "nproc": config.nproc, "uid": uid,
    }  # fmt: skip


def slot_uid(config: SandboxConfig, slot: int) -> int:
    return config.uid_base + (os.getpid() % 1000) * 1024 + slot


def run_sandboxed(
    code: str,
    *,
    tests: str | None,
    entry_point: str | None,
    io_tests: list[tuple[str, str]],
    config: SandboxConfig = SandboxConfig(),
    plain_returns: bool = True,
) -> SandboxRun:
    """Run ``code`` against ``tests`` (HumanEval ``check`` or an assert script) and/or stdin/stdout cases,
    in a sandbox of its own (one bwrap per call; ``curate.verify.zygote`` reuses sandboxes)."""
    t0 = time.perf_counter()
    root = os.geteuid() == 0
    slot = _SLOTS.take()
    payload = payload_for(code, tests, entry_point, io_tests, config, plain_returns,
                          slot_uid(config, slot) if root else None)  # fmt: skip
    try:
        return _run(payload, config, root, t0)
    finally:
        _SLOTS.give(slot)


@dataclass
class Exchange:
    """What came back from one program: tails of stdout/stderr, the result pipe, the control line."""

    out: bytearray
    err: bytearray
    result: bytearray
    ctl: bytearray
    flood: bool = False
    timed_out: bool = False


def pump(
    cfg: SandboxConfig, deadline: float, data: bytes, stdin_fd: int, out_fd: int, err_fd: int, res_fd: int,
    ctl_fd: int | None = None,
) -> Exchange:  # fmt: skip
    """Feed ``data`` to stdin_fd and read the other pipes until EOF on all (the control socket: until
    one line), the deadline, or more than ``output_bytes`` of output. Closes every fd but ``ctl_fd``."""
    io = Exchange(bytearray(), bytearray(), bytearray(), bytearray())
    total = 0  # stdout + stderr bytes read (the buffers keep tails only)
    view = memoryview(data)
    sel = selectors.DefaultSelector()
    owned = [stdin_fd, out_fd, err_fd, res_fd]
    try:
        os.set_blocking(stdin_fd, False)
        sel.register(stdin_fd, selectors.EVENT_WRITE)
        bufs = {out_fd: io.out, err_fd: io.err, res_fd: io.result}
        if ctl_fd is not None:
            bufs[ctl_fd] = io.ctl
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and not io.flood:
            left = deadline - time.perf_counter()
            if left <= 0:
                io.timed_out = True
                break
            for key, _ in sel.select(left):
                fd = key.fd
                if fd == stdin_fd:
                    try:
                        view = view[os.write(fd, view[: 1 << 16]) :]
                    except BrokenPipeError:
                        view = view[:0]
                    if not view:
                        sel.unregister(fd)
                        os.close(fd)
                        owned.remove(fd)
                    continue
                chunk = os.read(fd, 1 << 16)
                buf = bufs[fd]
                buf += chunk
                if not chunk or (fd == ctl_fd and buf.endswith(b"\n")):
                    sel.unregister(fd)
                elif fd in (res_fd, ctl_fd):
                    del buf[4096:]
                else:
                    total += len(chunk)
                    if total > cfg.output_bytes:
                        io.flood = True
                    elif len(buf) > 8 * cfg.tail_chars:
                        del buf[: len(buf) - 4 * cfg.tail_chars]  # keep a tail only
    finally:
        sel.close()
        for fd in owned:
            os.close(fd)
    return io


def verdict(io: Exchange, nonce: bytes, cfg: SandboxConfig, t0: float, no_verdict: str) -> SandboxRun:
    """The harness's verdict if it carries this run's nonce; else what the host observed."""
    so, se = _tail(io.out, cfg.tail_chars), _tail(io.err, cfg.tail_chars)
    dt = time.perf_counter() - t0
    head, _, detail = bytes(io.result).decode("utf-8", "replace").partition("\n")
    tok, _, status = head.partition(" ")
    if tok == nonce.decode() and status in STATUSES:
        return SandboxRun(status, detail, so, se, dt)
    if io.flood:
        return SandboxRun("output_limit", f"more than {cfg.output_bytes} bytes of output", so, se, dt)
    if io.timed_out:
        return SandboxRun("timeout", f"wall clock limit of {cfg.wall_s:g}s", so, se, dt)
    return SandboxRun("sandbox_error", no_verdict, so, se, dt)


def _run(payload: dict[str, Any], cfg: SandboxConfig, root: bool, t0: float) -> SandboxRun:
    if not os.access(cfg.bwrap, os.X_OK):
        return SandboxRun("sandbox_error", f"bubblewrap not found at {cfg.bwrap}", "", "", 0.0)
    argv = _argv(cfg.bwrap, cfg.python, cfg.extra_ro_binds, cfg.tmpfs_mb, root)
    nonce = secrets.token_hex(16).encode()
    (in_r, in_w), (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe(), os.pipe()
    (res_r, res_w), (non_r, non_w) = os.pipe(), os.pipe()
    theirs = (in_r, out_w, err_w, res_w, non_r)
    try:
        proc = subprocess.Popen(
            [*argv, str(res_w), str(non_r)], stdin=in_r, stdout=out_w, stderr=err_w,
            pass_fds=(res_w, non_r), start_new_session=True, env={},
        )  # fmt: skip
    except OSError as e:
        for fd in (*theirs, in_w, out_r, err_r, res_r, non_w):
            os.close(fd)
        return SandboxRun("sandbox_error", f"cannot start bubblewrap: {e}", "", "", time.perf_counter() - t0)
    for fd in theirs:
        os.close(fd)
    os.write(non_w, nonce)  # 32 bytes: fits the pipe buffer, never blocks
    os.close(non_w)
    io = pump(cfg, t0 + cfg.wall_s, marshal.dumps(payload), in_w, out_r, err_r, res_r)
    kill_sandbox(proc, wait=not (io.timed_out or io.flood))
    return verdict(io, nonce, cfg, t0, f"no verdict from the harness (exit {proc.returncode})")


def kill_sandbox(proc: subprocess.Popen[bytes], wait: bool) -> None:
    """Kill bwrap's process group; --die-with-parent then ends the sandbox's pid namespace."""
    if wait and proc.poll() is None:  # everything closed its pipes: bwrap is exiting on its own
        try:
            proc.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
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
