"""Prefect as curate's own commands use it: quiet by default, and a local API server that never outlives us.

- ``quiet()``: Prefect's telemetry heartbeat writes to the embedded API's SQLite database while flow runs
  write to it too, and prints ``sqlite3.OperationalError: database is locked`` tracebacks. Analytics are
  off in curate's commands unless the user's environment says otherwise (``setdefault``).
- ``local_api()``: the temporary API server ``curate serve`` needs, started by us, stopped by us on any
  exit (SIGINT and SIGTERM included, at any moment); the kernel also sends it SIGTERM if curate dies
  without a chance to clean up (``PR_SET_PDEATHSIG``), so no server is left running with PPID 1.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from curate.cli.interrupts import held, interrupt

QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the telemetry heartbeat: "database is locked" tracebacks
    "DO_NOT_TRACK": "1",
}
_PR_SET_PDEATHSIG = 1


def quiet() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C (``KeyboardInterrupt``) so every ``finally`` runs."""
    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def local_api(timeout: int = 180) -> Iterator[str]:
    """Start a temporary Prefect API server for this process; yield its URL; always stop it."""
    import subprocess

    with held():  # Prefect's import: a stop waits until it ends
        from prefect.server.api.server import SubprocessASGIServer

    class _Server(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            real: Any = subprocess.Popen

            def popen(*args: Any, **kwargs: Any) -> Any:
                return real(*args, preexec_fn=_die_with_parent, **kwargs)

            setattr(subprocess, "Popen", popen)  # noqa: B010 - only for the server's own Popen call
            try:
                proc: subprocess.Popen[Any] = super()._run_uvicorn_command()
                return proc
            finally:
                setattr(subprocess, "Popen", real)  # noqa: B010

    server = _Server()
    try:
        server.start(timeout=timeout)
        yield server.api_url
    finally:
        server.stop()


def serve_deployments(deployments: list[Any]) -> None:
    """``prefect.serve`` against our own local API (unless PREFECT_API_URL points at a real server)."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with stop_on_signals():
        try:
            if os.environ.get("PREFECT_API_URL"):
                serve(*deployments)
                return
            with local_api() as url, temporary_settings({PREFECT_API_URL: url}):
                serve(*deployments)
        except KeyboardInterrupt:
            print("curate: serve stopped", file=sys.stderr)


__all__ = ["QUIET_ENV", "local_api", "quiet", "serve_deployments", "stop_on_signals"]
