"""Declarative table schemas and reason codes for curate.

This folder is the single definition of every table the project writes (YAML files here) and of every
reason code (``checks/<check>.yaml``). It is installed as the package ``curate_schemas`` so that the
library finds it in an installed wheel as well as in a source checkout; ``curate.schema`` turns the
declarations into Arrow, Polars, validation and DuckDB forms.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
