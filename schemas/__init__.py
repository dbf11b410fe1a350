"""Declarative table schemas and reason codes for curate.

This folder is the single definition of every table the project writes (YAML files here) and of every
reason code (``checks/<check>.yaml``). It is imported as ``curate.schemas``: a wheel carries it inside
the package (pyproject maps ``curate.schemas`` to this folder), an editable install maps it with
setuptools' finder, and a bare source checkout is served by the finder in ``curate/__init__.py``;
``curate.schema`` turns the declarations into Arrow, Polars, validation and DuckDB forms.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
