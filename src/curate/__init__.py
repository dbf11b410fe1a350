"""curate: data curation and rejection sampling for reasoning-model post-training.

The flow, one package per step: ``generate`` → ``checks`` (``verify``, ``quality``, ``dedup``,
``judge``) → ``recipes`` (selection) → ``store`` → ``launch``; ``pipeline`` strings the steps together
for flows and the demo, ``io`` reads and writes rows, ``cli`` is the command line, ``testing`` holds
public test helpers.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType


class _SourceTreeFinder(importlib.abc.MetaPathFinder):
    """Resolves ``curate.flows`` and ``curate.schemas`` to the repository's top-level folders.

    The layout card puts ``flows/`` and ``schemas/`` at the top of the repository and they stay the
    only copy. A wheel carries them inside the package (pyproject maps ``curate.flows`` → ``flows``
    and ``curate.schemas`` → ``schemas``), and so does setuptools' editable finder. A source checkout
    run with ``PYTHONPATH=src`` (or a path-style editable install) has neither: this finder, installed
    only when the package folder lacks them and the checkout has them, fills that gap.
    """

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        root = self.roots.get(fullname)
        if root is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, root / "__init__.py", submodule_search_locations=[str(root)]
        )


def _install_source_tree_finder() -> None:
    here = Path(__file__).resolve().parent
    checkout = here.parent.parent
    roots = {
        f"curate.{name}": checkout / name
        for name in ("flows", "schemas")
        if not (here / name / "__init__.py").exists() and (checkout / name / "__init__.py").exists()
    }
    if roots and not any(isinstance(f, _SourceTreeFinder) for f in sys.meta_path):
        # First, not last: another checkout's editable install may also map these names, and the folders
        # beside the package actually imported are the ones that belong to it.
        sys.meta_path.insert(0, _SourceTreeFinder(roots))


_install_source_tree_finder()

try:
    __version__ = version("curate")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

from curate.checks.funnel import Funnel  # noqa: E402
from curate.errors import CurateError, RunFailed  # noqa: E402
from curate.schema import Table, reason_codes, table  # noqa: E402
from curate.store import DatasetVersion, Manifest, Store, StoreError  # noqa: E402
from curate.store.handle import Dataset  # noqa: E402
from curate.store.handle import open_dataset as open  # noqa: E402, A001, F401  (not in __all__: see below)

# ``curate.open("rs_sft@3")`` is public but stays out of ``__all__``: ``from curate import *`` must not
# hide the builtin ``open``.
__all__ = [
    "CurateError",
    "Dataset",
    "DatasetVersion",
    "Funnel",
    "Manifest",
    "RunFailed",
    "Store",
    "StoreError",
    "Table",
    "__version__",
    "reason_codes",
    "table",
]
