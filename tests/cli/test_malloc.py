"""The command line caps glibc's malloc arenas (worker threads' freed numpy memory stayed in per-thread
arenas: +200 MB at 1M rows); the environment's MALLOC_ARENA_MAX wins, and a library import changes nothing."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from curate.cli._malloc import limit_arenas

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt(M_ARENA_MAX) is glibc's")
def test_capped_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limit_arenas() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_arenas() is False


def test_a_library_import_leaves_malloc_alone() -> None:
    probe = (
        "import sys, curate.checks.runner, curate.dedup, curate.store, curate.quality\n"
        "assert 'curate.cli._malloc' not in sys.modules, 'a library import loaded the command line'\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=120)


def test_the_command_line_puts_arrow_on_the_system_allocator() -> None:
    """Arrow's mimalloc pool gave freed pages back at once (page faults: a fifth of a check's CPU); the
    command line switches to glibc unless ARROW_DEFAULT_MEMORY_POOL says otherwise."""
    probe = "import curate.cli, pyarrow as pa\nprint(pa.default_memory_pool().backend_name)\n"
    out = subprocess.run([sys.executable, "-c", probe], check=True, timeout=120, capture_output=True, text=True)
    assert out.stdout.strip() == "system"
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, timeout=120, capture_output=True, text=True, env=env
    )
    assert out.stdout.strip() == "mimalloc"
    library = "import curate.checks.runner, pyarrow as pa\nprint(pa.default_memory_pool().backend_name)\n"
    out = subprocess.run([sys.executable, "-c", library], check=True, timeout=120, capture_output=True, text=True)
    assert out.stdout.strip() != "system"  # a library import leaves a notebook's allocator alone
