"""The command line caps glibc's malloc arenas (worker threads' freed numpy memory stayed in per-thread
arenas: +200 MB at 1M rows); the environment's MALLOC_ARENA_MAX wins, and a library import changes nothing."""

from __future__ import annotations

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
