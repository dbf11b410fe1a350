"""The one error root.

``CurateError`` is what the library raises for anything the user can fix (a missing file, a bad option,
a wrong config, a name the store refuses); its ``exit_code`` is 2. ``RunFailed`` (exit code 1) is a run
that failed on its own terms (too many bad rows). The CLI turns both into one line on stderr in one
place (:func:`curate.cli.main`); anything else is a bug and keeps its traceback.

Subclasses live beside the code that raises them (``InputError`` in ``curate.io``, ``StoreError`` in
``curate.store``, ``ConfigError`` in ``curate.checks``, ...) and also derive from the builtin that
describes them (``ValueError``), so ``except ValueError`` in older callers keeps working.
"""

from __future__ import annotations

from typing import ClassVar


class CurateError(Exception):
    """A mistake the user can fix: printed as one line, exit code 2, never retried."""

    exit_code: ClassVar[int] = 2


class RunFailed(CurateError):
    """The run itself failed on its own terms (e.g. too many bad input rows): exit code 1."""

    exit_code: ClassVar[int] = 1


class UsageError(CurateError):
    """A bad combination of command-line options or paths, found before any work starts."""


__all__ = ["CurateError", "RunFailed", "UsageError"]
