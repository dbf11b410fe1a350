"""The YAML declarations in schemas/ and the code agree: manifest fields, catalog DDL, reason codes,
and the package list in pyproject.toml."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import duckdb
import yaml

import curate
from curate.schema import catalog_tables, reason_codes
from curate.store import Manifest, Store
from curate.store.catalog import ddl

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "curate"


def _yaml(name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "schemas" / name).read_text(encoding="utf-8"))


def test_manifest_fields_match_the_declaration() -> None:
    assert [f.name for f in dataclasses.fields(Manifest)] == list(_yaml("manifest.yaml")["fields"])


def test_catalog_tables_are_built_from_the_declaration(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.refresh_catalog()
    con = duckdb.connect(str(store.catalog_path), read_only=True)
    try:
        for name, table in catalog_tables().items():
            cols = [r[0] for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
            assert cols == list(table.names), name
            assert ddl(name, table).startswith(f'CREATE OR REPLACE TABLE "{name}"')
    finally:
        con.close()
    assert set(catalog_tables()) == {"datasets", "runs"}


def test_every_select_code_in_the_code_is_declared() -> None:
    declared = set(_yaml("selection.yaml")["reasons"])
    used = set()
    for path in (SRC / "recipes").glob("*.py"):
        used |= set(re.findall(r'"(select\.[a-z_]+)"', path.read_text(encoding="utf-8")))
    assert used and used <= declared
    assert declared <= set(reason_codes())  # `curate reasons` lists them


def test_every_input_code_in_the_code_is_declared() -> None:
    declared = set(_yaml("quarantine.yaml")["reasons"])
    used = set()
    for path in list((SRC / "io").glob("*.py")) + [SRC / "checks" / "runner.py", SRC / "generate" / "prompts.py"]:
        used |= set(re.findall(r'"(input\.[a-z_0-9]+)"', path.read_text(encoding="utf-8")))
    assert used and used <= declared


def test_pyproject_lists_every_package() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {".".join(p.relative_to(SRC.parent).parent.parts) for p in SRC.rglob("__init__.py")}
    mapped = set(conf["package-dir"]) - {""}
    assert set(conf["packages"]) == found | mapped
    for pkg in mapped:
        assert (ROOT / conf["package-dir"][pkg] / "__init__.py").exists()


def test_package_root_holds_only_the_face() -> None:
    loose = sorted(p.name for p in SRC.glob("*.py"))
    # text.py waits for the math-verification branch (it imports curate.text) before it moves
    assert loose == ["__init__.py", "__main__.py", "errors.py", "text.py"]
    assert not any(p.is_symlink() for p in SRC.iterdir())


def test_version_comes_from_package_metadata() -> None:
    from importlib.metadata import version

    assert curate.__version__ == version("curate")
