"""One control group per sandbox, so that memory and process limits hold for a program, not a process.

RLIMIT_AS bounds one process; a program that forks 32 children could take 32 times its memory. Where
the kernel lets this process create cgroups (root, cgroup v2 with the memory controller delegated, or
v1 ``memory`` and ``pids`` hierarchies, as on this project's machines), each sandbox gets its own group
with ``memory.max``/``memory.limit_in_bytes`` and ``pids.max``; the sandbox is started inside it
(``wrap``). Elsewhere ``available()`` says why not and the sandbox sizes rlimits together instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
# sh writes its own pid into each cgroup.procs given, then becomes bwrap: everything below starts inside.
_ENTER = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@"'
ENTER_FAILED = 97


def _own(controller: str) -> Path | None:
    """This process's cgroup folder for ``controller`` (v1) or the unified one (``controller`` = "")."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if (controller == "" and names == "") or controller in names.split(","):
            base = ROOT / controller if controller else (ROOT / "unified" if (ROOT / "unified").is_dir() else ROOT)
            return base / path.lstrip("/")
    return None


@functools.lru_cache(maxsize=1)
def _layout() -> tuple[str, tuple[Path, ...]] | str:
    """("v2", (parent,)) or ("v1", (memory parent, pids parent)), or why neither is usable."""
    if os.geteuid() != 0:
        return "not root"
    v2 = _own("")
    if v2 is not None and (v2 / "cgroup.controllers").exists():
        ctrl = (v2 / "cgroup.controllers").read_text().split()
        if {"memory", "pids"} <= set(ctrl):
            probe = v2 / f"curate-probe-{os.getpid()}"
            try:
                (v2 / "cgroup.subtree_control").write_text("+memory +pids")
                probe.mkdir()
                probe.rmdir()
                return "v2", (v2,)
            except OSError:
                pass
    mem, pids = _own("memory"), _own("pids")
    if mem is not None and pids is not None:
        probe_dirs = [mem / f"curate-probe-{os.getpid()}", pids / f"curate-probe-{os.getpid()}"]
        try:
            for d in probe_dirs:
                d.mkdir()
            return "v1", (mem, pids)
        except OSError as e:
            why = f"cgroup v1 not writable ({e.strerror})"
        finally:
            for d in probe_dirs:
                with contextlib.suppress(OSError):
                    d.rmdir()
        return why
    return "no cgroup memory controller"


def available() -> str | None:
    """None when per-sandbox cgroups work here, else why not."""
    layout = _layout()
    return layout if isinstance(layout, str) else None


@dataclass
class SandboxCgroup:
    """A sandbox's group(s): create, enter (through ``wrap``), read OOM kills, remove."""

    version: str
    dirs: tuple[Path, ...]
    memory_bytes: int
    pids: int

    @classmethod
    def create(cls, name: str, memory_bytes: int, pids: int) -> SandboxCgroup | None:
        layout = _layout()
        if isinstance(layout, str):
            return None
        version, parents = layout
        dirs = tuple(p / name for p in parents)
        try:
            for d in dirs:
                if d.exists():  # left by a killed run of this uid block: empty, so it can go
                    _rmdir(d)
                d.mkdir()
            if version == "v2":
                (dirs[0] / "memory.max").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):
                    (dirs[0] / "memory.swap.max").write_text("0")
                (dirs[0] / "pids.max").write_text(str(pids))
            else:
                (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):  # no swap accounting on some kernels
                    (dirs[0] / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                (dirs[1] / "pids.max").write_text(str(pids))
        except OSError:
            for d in dirs:
                _rmdir(d)
            return None
        return cls(version, dirs, memory_bytes, pids)

    def wrap(self, argv: list[str]) -> list[str]:
        procs = [str(d / "cgroup.procs") for d in self.dirs]
        return ["/bin/sh", "-c", _ENTER, "sh", str(len(procs)), *procs, *argv]

    def oom_kills(self) -> int:
        """Processes the kernel killed for this group's memory limit so far."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        try:
            for line in (self.dirs[0] / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except OSError:
            pass
        return 0

    def describe(self) -> str:
        return f"cgroup {self.version}: memory {self.memory_bytes >> 20} MB, {self.pids} tasks per program"

    def remove(self) -> None:
        for d in self.dirs:
            _rmdir(d)


def _rmdir(d: Path) -> None:
    for _ in range(50):  # the last killed tasks may take a moment to leave the group
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)
