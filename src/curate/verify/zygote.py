"""Pre-started sandboxes: one bwrap + harness per worker thread, reused for many programs.

Starting bubblewrap and an interpreter costs more than most HumanEval programs take to run. A zygote
is the same sandbox as ``run_sandboxed`` builds (same bwrap argv, uid, limits, nonce) whose harness
stays up: per program the host sends fresh pipes over a control socket, the zygote forks a runner
that does exactly what a one-program harness does, then kills every process of the candidates' uid,
empties /tmp and removes SysV IPC objects, and answers ``ok`` only once it checked nothing is left
(``_harness.serve``). The zygote itself never reads a payload or runs candidate code, so each program
forks from the same pristine parent.

Anything unusual throws the whole sandbox away (killing bwrap's process group, as a fresh run's
end does): a timeout, an output flood, a cleanup that failed or found leftovers, a zygote that died.
A verdict is still accepted only with the run's nonce. A zygote that cannot start makes the pool fall
back to fresh sandboxes, which report their own ``sandbox_error``.

bwrap's ``--die-with-parent`` is tied to the *thread* that started it, so zygotes are per thread: a
pool is used by a fixed set of threads (``run_code_batch``'s) and closed when they are done.
"""

from __future__ import annotations

import marshal
import os
import secrets
import socket
import subprocess
import threading
import time

from curate.verify.sandbox import (
    _SLOTS,
    SandboxConfig,
    SandboxRun,
    _argv,
    kill_sandbox,
    payload_for,
    pump,
    run_sandboxed,
    slot_uid,
    verdict,
)


class ZygoteError(Exception):
    """The zygote could not start, or could not take a program (nothing of the program ran)."""


class Zygote:
    """One long-lived sandbox; ``run`` one program at a time from the thread that created it."""

    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.slot = _SLOTS.take()
        self.uid = slot_uid(cfg, self.slot)
        self.healthy = False
        argv = _argv(cfg.bwrap, cfg.python, cfg.extra_ro_binds, cfg.tmpfs_mb, True)
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [*argv, "zygote", str(theirs.fileno()), str(self.uid)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                start_new_session=True, env={},
            )  # fmt: skip
        except OSError as e:
            self.sock.close()
            _SLOTS.give(self.slot)
            raise ZygoteError(f"cannot start bubblewrap: {e}") from e
        finally:
            theirs.close()
        self.sock.settimeout(cfg.wall_s)
        try:
            hello = self.sock.recv(4096)
        except OSError as e:
            hello = str(e).encode()
        if hello != b"ready\n":
            self.close()
            raise ZygoteError(f"zygote did not start: {hello.decode('utf-8', 'replace').strip()!r}")
        self.sock.settimeout(None)
        self.healthy = True

    def run(self, payload: dict[str, object], t0: float) -> SandboxRun:
        """One program. Leaves ``healthy`` False when this sandbox must not take another one."""
        cfg = self.cfg
        nonce = secrets.token_hex(16).encode()
        (in_r, in_w), (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe(), os.pipe()
        (res_r, res_w), (non_r, non_w) = os.pipe(), os.pipe()
        os.write(non_w, nonce)
        os.close(non_w)
        theirs = (in_r, out_w, err_w, res_w, non_r)
        try:
            socket.send_fds(self.sock, [b"run\n"], list(theirs))
        except OSError as e:
            self.healthy = False
            for fd in (in_w, out_r, err_r, res_r):
                os.close(fd)
            raise ZygoteError(f"zygote gone: {e}") from e
        finally:
            for fd in theirs:
                os.close(fd)
        payload = {**payload, "uid": self.uid}
        io = pump(cfg, t0 + cfg.wall_s, marshal.dumps(payload), in_w, out_r, err_r, res_r, self.sock.fileno())
        self.healthy = bytes(io.ctl) == b"ok\n" and not (io.timed_out or io.flood)
        if not self.healthy:
            self.close()
        why = bytes(io.ctl).decode("utf-8", "replace").strip() or f"exit {self.proc.returncode}"
        return verdict(io, nonce, cfg, t0, f"no verdict from the harness (zygote: {why})")

    def close(self) -> None:
        self.healthy = False
        if self.sock.fileno() != -1:
            self.sock.close()  # the zygote reads EOF and exits; kill_sandbox makes sure
            kill_sandbox(self.proc, wait=False)
            _SLOTS.give(self.slot)


class ZygotePool:
    """Zygotes for the threads that call ``run`` (one each, started on first use); a context manager.

    ``run`` has ``run_sandboxed``'s signature and verdicts. Without root (no per-program uid to kill
    and clean up after) or after a zygote failed to start, it runs fresh sandboxes instead.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._local = threading.local()
        self._all: list[Zygote] = []
        self._lock = threading.Lock()
        self.broken: str | None = None if os.geteuid() == 0 else "not root: no per-program uid"
        self.started = 0  # zygotes started, for tests and benchmarks

    def run(
        self, code: str, *, tests: str | None, entry_point: str | None, io_tests: list[tuple[str, str]],
        plain_returns: bool = True,
    ) -> SandboxRun:  # fmt: skip
        cfg = self.config
        t0 = time.perf_counter()
        payload = payload_for(code, tests, entry_point, io_tests, cfg, plain_returns, None)
        for _ in range(2):  # a zygote that died while idle is replaced once; nothing had run yet
            if self.broken is not None:
                break
            z: Zygote | None = getattr(self._local, "zygote", None)
            if z is None or not z.healthy or z.proc.poll() is not None:
                if z is not None:
                    z.close()
                try:
                    z = self._start()
                except ZygoteError as e:
                    self.broken = str(e)
                    break
            try:
                return z.run(payload, t0)
            except ZygoteError:
                continue
        return run_sandboxed(code, tests=tests, entry_point=entry_point, io_tests=io_tests, config=cfg,
                             plain_returns=plain_returns)  # fmt: skip

    def _start(self) -> Zygote:
        z = Zygote(self.config)
        self._local.zygote = z
        with self._lock:
            self._all.append(z)
            self.started += 1
        return z

    def close(self) -> None:
        with self._lock:
            zs, self._all = self._all, []
        for z in zs:
            z.close()

    def __enter__(self) -> ZygotePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
