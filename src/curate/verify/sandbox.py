"""Run untrusted Python under bubblewrap, and grade it so that the grade cannot be forged from inside.

One sandbox is ``bwrap`` (no network, new pid/ipc/uts namespaces, private tmpfs ``/tmp``, read-only
``/usr`` and the interpreter's prefix, empty environment, its own cgroup where the kernel allows) around
the harness (``curate.verify.harness``). Inside, three kinds of process never share an interpreter,
memory, a descriptor or a secret:

- the *runner*, forked per program from a pristine parent, reads only the program and stdin inputs;
- the *driver*, forked from the runner at its own uid before any candidate process exists, alone reads
  the tests, the expected outputs and the token, alone holds the result pipe, and runs the tests;
- the *candidate* processes, forked from the runner at another uid, run the program; the driver calls
  the program's functions over a pipe and gets plain data back, which it compares itself.

So a candidate can neither reach the verdict (no descriptor, no memory, no uid in common, no /proc) nor
send the driver anything but data it could have computed. What the candidate does to itself (patched
builtins, trace hooks, frame and ``gc`` walks, objects equal to everything) is seen as a tamper sign
and graded ``tampered``. The host here feeds the two payloads, reads stdout/stderr tails (killing the run
past ``output_bytes``), enforces ``wall_s`` by killing bwrap's process group, and accepts a verdict only
from the result pipe with the run's token. Anything that prevents a verdict and is not the program's
doing is ``sandbox_error`` (retryable), never a pass or a fail.

As root (CI, this project's machines) bwrap keeps only CAP_SETUID/CAP_SETGID so the harness can move
the driver and the candidates to their own uids, claimed per curate process (``uid_block``) so two
processes never share one. Without root, bwrap needs a user namespace: one uid for all, the driver
made non-dumpable; weaker against a hostile program, not against a forged grade.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from curate.verify import cgroup
from curate.verify.harness import SOURCE as HARNESS_SOURCE

STATUSES = (
    "pass", "tests_failed", "error", "incomplete", "tampered", "memory", "timeout", "output_limit",
    "bad_tests", "sandbox_error",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Limits of one sandboxed program (all its processes together where a cgroup is in force)."""

    cpu_s: int = 5  # CPU seconds per process (the candidate, the driver, each stdin/stdout case)
    wall_s: float = 20.0  # wall clock for the whole run, sandbox start included
    memory_mb: int = 1024  # memory of the program: its cgroup's limit, and RLIMIT_AS of each process
    nproc: int = 32  # processes + threads of the program
    fallback_procs: int = 4  # without a cgroup: at most this many processes of memory_mb / this each
    fsize_mb: int = 16  # largest file a process may write, stdin/stdout case output included
    nofile: int = 128  # open descriptors per process
    tmpfs_mb: int = 64  # size of the private /tmp
    output_bytes: int = 8 << 20  # stdout+stderr the host reads before killing the run
    tail_chars: int = 2000  # stdout/stderr kept in the result
    bwrap: str = "/usr/bin/bwrap"
    python: str = ""  # interpreter inside the sandbox; "" = the running one
    extra_ro_binds: tuple[str, ...] = ()  # more host paths to show read-only (same path inside)
    uid_base: int = 200_000  # sandbox uids: uid_base + 2048 * (this process's block) + 2 * slot (+1)
    use_cgroup: bool = True  # a cgroup per sandbox where the kernel offers one
    # "pooled": batches reuse one sandbox per worker, emptied and checked between programs (see
    # curate.verify.zygote); "fresh": one bwrap per program. Non-root is always fresh.
    mode: str = "pooled"


@dataclass(frozen=True, slots=True)
class SandboxRun:
    status: str  # one of STATUSES
    detail: str
    stdout: str
    stderr: str
    duration_s: float
    limits: str = ""  # which memory/process limits were in force


# ---- uids: a block per curate process, claimed with a lock that dies with the process --------------

_BLOCK: list[tuple[int, int, int]] = []  # [(pid, block, lock fd)]
BLOCKS = 1000


def uid_block() -> int:
    """This process's block of 2048 sandbox uids; ``flock`` keeps two live processes off the same one
    (a killed process's lock goes with it). A forked child claims its own."""
    pid = os.getpid()
    if _BLOCK and _BLOCK[0][0] == pid:
        return _BLOCK[0][1]
    folder = Path(tempfile.gettempdir()) / "curate-sandbox-uids"
    folder.mkdir(mode=0o755, exist_ok=True)
    start = pid % BLOCKS
    for i in range(BLOCKS):
        block = (start + i) % BLOCKS
        fd = os.open(folder / f"{block}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _BLOCK[:] = [(pid, block, fd)]
        return block
    raise RuntimeError(f"all {BLOCKS} sandbox uid blocks are taken by live curate processes")


class _Slots:
    """Slots (uid pairs, cgroup names) for this process's concurrent sandboxes; first in, first out, so
    a slot comes back as late as possible, after a killed sandbox's processes are reaped."""

    def __init__(self, n: int = 1024) -> None:
        import collections
        import threading

        self._free = collections.deque(range(n))
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            if not self._free:
                raise RuntimeError("more than 1024 concurrent sandboxes in one process")
            return self._free.popleft()

    def give(self, slot: int) -> None:
        with self._lock:
            if slot not in self._free:
                self._free.append(slot)


SLOTS = _Slots()


def slot_uids(config: SandboxConfig, slot: int) -> tuple[int, int]:
    """(candidate uid, driver uid) of a slot; (-1, -1) without root."""
    if os.geteuid() != 0:
        return -1, -1
    uid = config.uid_base + 2048 * uid_block() + 2 * slot
    return uid, uid + 1


@functools.lru_cache(maxsize=16)
def bwrap_argv(bwrap: str, python: str, binds: tuple[str, ...], tmpfs_mb: int, root: bool) -> tuple[str, ...]:
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
            # bwrap copies a parent's host mode (/root is 0700): open the way for the children's uids.
            for parent in reversed(Path(path).parents[:-1]):
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", path, path]
    # No /proc: nothing to learn about the harness or bwrap, and one mount less to set up.
    args += ["--dev", "/dev", "--perms", "1777", "--size", str(tmpfs_mb << 20), "--tmpfs", "/tmp"]
    args += ["--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp"]
    args += ["--setenv", "LANG", "C.UTF-8", "--hostname", "sandbox", "--chdir", "/tmp"]
    args += ["--", py, "-I", "-S", "-B", "-X", "utf8", "-c", HARNESS_SOURCE]
    return tuple(args)


def payloads(
    code: str, tests: str | None, entry_point: str | None, io_tests: list[tuple[str, str]],
    setup: str | None, config: SandboxConfig, with_cgroup: bool,
) -> tuple[dict[str, object], dict[str, object]]:  # fmt: skip
    """(public, secret): what the runner may read, and what only the driver reads."""
    procs = config.nproc if with_cgroup else max(1, config.fallback_procs)
    memory = config.memory_mb << 20 if with_cgroup else (config.memory_mb << 20) // procs
    public: dict[str, object] = {
        "code": code, "inputs": [i for i, _ in io_tests], "has_tests": tests is not None,
        "cpu": int(config.cpu_s), "memory": memory, "fsize": config.fsize_mb << 20, "nofile": config.nofile,
        "nproc": procs, "reply_limit": config.fsize_mb << 20,
    }  # fmt: skip
    secret: dict[str, object] = {
        "tests": tests, "setup": setup, "entry_point": entry_point, "outputs": [o for _, o in io_tests],
        "token": secrets.token_hex(16),
    }  # fmt: skip
    return public, secret


def limits_text(config: SandboxConfig, group: cgroup.SandboxCgroup | None, why: str | None) -> str:
    if group is not None:
        return group.describe()
    procs = max(1, config.fallback_procs)
    return f"rlimits ({why or 'cgroups off'}): {procs} processes x {config.memory_mb // procs} MB"


def _tail(buf: bytearray, n: int) -> str:
    return bytes(buf[-4 * n :]).decode("utf-8", "replace")[-n:]


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
    cfg: SandboxConfig, deadline: float, writes: list[tuple[int, bytes]], out_fd: int, err_fd: int,
    res_fd: int, ctl_fd: int | None = None,
) -> Exchange:  # fmt: skip
    """Feed each ``(fd, data)`` and read the other pipes until EOF on all (the control socket: until one
    line), the deadline, or more than ``output_bytes`` of output. Closes every fd but ``ctl_fd``."""
    io = Exchange(bytearray(), bytearray(), bytearray(), bytearray())
    total = 0  # stdout + stderr bytes read (the buffers keep tails only)
    pending = {fd: memoryview(data) for fd, data in writes}
    sel = selectors.DefaultSelector()
    owned = [*pending, out_fd, err_fd, res_fd]
    try:
        for fd in pending:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_WRITE)
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
                if fd in pending:
                    view = pending[fd]
                    try:
                        view = view[os.write(fd, view[: 1 << 16]) :]
                    except BrokenPipeError:
                        view = view[:0]
                    pending[fd] = view
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


def verdict(io: Exchange, token: str, cfg: SandboxConfig, t0: float, no_verdict: str, limits: str) -> SandboxRun:
    """The driver's verdict if it carries this run's token; else what the host observed."""
    so, se = _tail(io.out, cfg.tail_chars), _tail(io.err, cfg.tail_chars)
    dt = time.perf_counter() - t0
    head, _, detail = bytes(io.result).decode("utf-8", "replace").partition("\n")
    tok, _, status = head.partition(" ")
    if tok == token and status in STATUSES:
        return SandboxRun(status, detail, so, se, dt, limits)
    if io.flood:
        return SandboxRun("output_limit", f"more than {cfg.output_bytes} bytes of output", so, se, dt, limits)
    if io.timed_out:
        return SandboxRun("timeout", f"wall clock limit of {cfg.wall_s:g}s", so, se, dt, limits)
    return SandboxRun("sandbox_error", no_verdict, so, se, dt, limits)


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


def run_sandboxed(
    code: str,
    *,
    tests: str | None,
    entry_point: str | None,
    io_tests: list[tuple[str, str]],
    setup: str | None = None,
    config: SandboxConfig = SandboxConfig(),
) -> SandboxRun:
    """Run ``code`` against ``tests`` (HumanEval ``check`` or an assert script, after the trusted
    ``setup``) and/or stdin/stdout cases, in a sandbox of its own (``curate.verify.zygote`` reuses them)."""
    from curate.verify.zygote import Zygote, ZygoteError

    t0 = time.perf_counter()
    if not os.access(config.bwrap, os.X_OK):
        return SandboxRun("sandbox_error", f"bubblewrap not found at {config.bwrap}", "", "", 0.0)
    try:
        z = Zygote(config, once=True)
    except ZygoteError as e:
        return SandboxRun("sandbox_error", str(e), "", "", time.perf_counter() - t0)
    try:
        return z.run(code, tests, entry_point, io_tests, setup, t0)
    except ZygoteError as e:
        return SandboxRun("sandbox_error", str(e), "", "", time.perf_counter() - t0)
    finally:
        z.close()


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
