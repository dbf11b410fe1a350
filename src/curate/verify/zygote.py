"""Pre-started sandboxes: one bwrap + harness per worker thread, reused for many programs.

Starting bubblewrap and an interpreter costs more than most HumanEval programs take to run. A zygote
is one sandbox (``sandbox.bwrap_argv``, its own uids and cgroup) whose harness stays up: per program the
host sends fresh pipes over a control socket, the harness forks a runner, a driver and the candidate
processes (``curate.verify.harness.server``), then kills every process of the two uids, empties /tmp and
removes SysV IPC objects, and answers ``ok`` only once it checked nothing is left. The harness's parent
process never reads a payload or runs candidate code, so each program forks from the same pristine one.

Anything unusual throws the whole sandbox away (killing bwrap's process group, as a fresh run's end
does): a timeout, an output flood, a cleanup that failed or found leftovers, a harness that died. A
verdict is still accepted only with the run's token. A zygote that cannot start makes the pool fall
back to one-program sandboxes, which report their own ``sandbox_error``.

bwrap's ``--die-with-parent`` is tied to the *thread* that started it, so zygotes are per thread: a
pool is used by a fixed set of threads (``run_code_batch``'s) and closed when they are done.
"""

from __future__ import annotations

import marshal
import os
import socket
import subprocess
import threading
import time

from curate.verify import cgroup
from curate.verify.sandbox import (
    SLOTS,
    SandboxConfig,
    SandboxRun,
    bwrap_argv,
    kill_sandbox,
    limits_text,
    payloads,
    pump,
    run_sandboxed,
    slot_uids,
    uid_block,
    verdict,
)

HARNESS_MB = 96  # the harness's own processes (server, runner, driver), inside the program's cgroup
HARNESS_TASKS = 8


class ZygoteError(Exception):
    """The sandbox could not start, or could not take a program (nothing of the program ran)."""


class Zygote:
    """One sandbox; ``run`` one program at a time from the thread that created it (``once``: one only)."""

    def __init__(self, cfg: SandboxConfig, once: bool = False) -> None:
        root = os.geteuid() == 0
        if not (root or once):
            raise ZygoteError("not root: no per-program uid to clean up after")
        self.cfg, self.once, self.healthy = cfg, once, False
        self.slot = SLOTS.take()
        self.uids = slot_uids(cfg, self.slot)
        self.group: cgroup.SandboxCgroup | None = None
        why = cgroup.available() if cfg.use_cgroup else "cgroups off"
        if why is None:
            self.group = cgroup.SandboxCgroup.create(
                f"curate-{uid_block()}-{self.slot}", (cfg.memory_mb + HARNESS_MB) << 20, cfg.nproc + HARNESS_TASKS
            )
            why = None if self.group else "cgroup creation failed"
        self.limits = limits_text(cfg, self.group, why)
        argv = [*bwrap_argv(cfg.bwrap, cfg.python, cfg.extra_ro_binds, cfg.tmpfs_mb, root)]
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv += [str(theirs.fileno()), str(self.uids[0]), str(self.uids[1]), "once" if once else "many"]
        if self.group is not None:
            argv = self.group.wrap(argv)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                pass_fds=(theirs.fileno(),), start_new_session=True, env={},
            )  # fmt: skip
        except OSError as e:
            self.sock.close()
            self._release()
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
            err = self.proc.stderr.read(500).decode("utf-8", "replace").strip() if self.proc.stderr else ""
            raise ZygoteError(f"sandbox did not start: {hello.decode('utf-8', 'replace').strip()!r} {err}".strip())
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        self.sock.settimeout(None)
        self.healthy = True

    def run(
        self, code: str, tests: str | None, entry_point: str | None, io_tests: list[tuple[str, str]],
        setup: str | None, t0: float,
    ) -> SandboxRun:  # fmt: skip
        """One program. Leaves ``healthy`` False when this sandbox must not take another one."""
        cfg = self.cfg
        public, secret = payloads(code, tests, entry_point, io_tests, setup, cfg, self.group is not None)
        oom_before = self.group.oom_kills() if self.group else 0
        (pub_r, pub_w), (sec_r, sec_w) = os.pipe(), os.pipe()
        (out_r, out_w), (err_r, err_w), (res_r, res_w) = os.pipe(), os.pipe(), os.pipe()
        theirs = (pub_r, sec_r, out_w, err_w, res_w)
        try:
            socket.send_fds(self.sock, [b"run\n"], list(theirs))
        except OSError as e:
            self.healthy = False
            for fd in (pub_w, sec_w, out_r, err_r, res_r):
                os.close(fd)
            raise ZygoteError(f"sandbox gone: {e}") from e
        finally:
            for fd in theirs:
                os.close(fd)
        writes = [(pub_w, marshal.dumps(public)), (sec_w, marshal.dumps(secret))]
        io = pump(cfg, t0 + cfg.wall_s, writes, out_r, err_r, res_r, self.sock.fileno())
        ended_well = not (io.timed_out or io.flood)
        self.healthy = not self.once and bytes(io.ctl) == b"ok\n" and ended_well
        if not self.healthy:
            self.close(wait=self.once and ended_well)
        why = bytes(io.ctl).decode("utf-8", "replace").strip() or f"exit {self.proc.returncode}"
        run = verdict(io, str(secret["token"]), cfg, t0, f"no verdict from the harness ({why})", self.limits)
        if (
            self.group
            and run.status in ("error", "incomplete", "sandbox_error")
            and self.group.oom_kills() > oom_before
        ):
            return SandboxRun("memory", f"the kernel killed a process at the program's memory limit ({run.detail})",
                              run.stdout, run.stderr, run.duration_s, run.limits)  # fmt: skip
        return run

    def close(self, wait: bool = False) -> None:
        """End the sandbox; ``wait``: it is exiting on its own (a one-program sandbox that answered)."""
        self.healthy = False
        if self.sock.fileno() != -1:
            self.sock.close()  # the harness reads EOF and exits; kill_sandbox makes sure
            kill_sandbox(self.proc, wait=wait)
            self._release()

    def _release(self) -> None:
        if self.group is not None:
            self.group.remove()
        SLOTS.give(self.slot)


class ZygotePool:
    """Zygotes for the threads that call ``run`` (one each, started on first use); a context manager.

    ``run`` has ``run_sandboxed``'s signature and verdicts. Without root (no per-program uid to kill
    and clean up after) or after a zygote failed to start, it runs one-program sandboxes instead.
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
        setup: str | None = None,
    ) -> SandboxRun:  # fmt: skip
        cfg = self.config
        t0 = time.perf_counter()
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
                return z.run(code, tests, entry_point, io_tests, setup, t0)
            except ZygoteError:
                continue
        return run_sandboxed(code, tests=tests, entry_point=entry_point, io_tests=io_tests, setup=setup, config=cfg)

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
