"""A version's life after publication: tags, ``verify``, ``diff``, ``rm`` and ``gc``.

Nothing here edits a published version: a tag is a small file under ``datasets/<name>/.tags/``;
``rm`` makes a version disappear at once for every reader (a local folder is renamed into ``.trash/``,
on object storage the manifest, its commit marker, goes first) and then deletes its files.
A version that another version or a training run names as its parent, or that a tag points to, is
kept unless the caller forces it. Version numbers are never reused (their claims stay).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from curate.store import integrity
from curate.store.manifest import MANIFEST, ManifestError
from curate.store.versions import TAG_RE, Store, StoreError, split_ref


# -- tags --------------------------------------------------------------------------------------------
def set_tag(store: Store, ref: str, tag: str) -> str:
    """Point ``name@tag`` at the version ``ref`` names (moving it if it pointed elsewhere)."""
    if not TAG_RE.match(tag) or re.fullmatch(r"v?\d+", tag) or tag == "latest":
        raise StoreError(
            f"bad tag {tag!r}: letters, digits, '_', '.', '-', starting with a letter; "
            f"not a version number and not 'latest'"
        )
    name, version = store.resolve(ref)
    store.set_tag(name, version, tag)
    store.refresh_catalog(quiet=True)
    return f"{name}@{version}"


def remove_tag(store: Store, name_tag: str) -> None:
    name, tag = split_ref(name_tag)
    if not tag or tag not in store.tags(name):
        raise StoreError(f"no tag {name_tag!r} (tags of {name}: {', '.join(store.tags(name)) or 'none'})")
    store.remove_tag(name, tag)
    store.refresh_catalog(quiet=True)


# -- verify ------------------------------------------------------------------------------------------
def verify(store: Store, refs: Iterable[str] = ()) -> dict[str, list[str]]:
    """``{name@version: problems}`` for the given refs or names (all versions when empty); [] is intact."""
    if not isinstance(store.home, Path):
        return _verify_remote(store, refs)
    targets: list[tuple[str, Path]] = []
    wanted = list(refs)
    names = sorted({split_ref(r)[0] for r in wanted}) if wanted else _all_names(store)
    for name in names:
        d = store.datasets_dir / name
        if not d.is_dir():
            raise StoreError(f"no dataset named {name!r} in {store.home}")
        for p in sorted(d.iterdir(), key=lambda p: (len(p.name), p.name)):
            if re.fullmatch(r"v\d+", p.name):
                targets.append((f"{name}@{p.name[1:]}", p))
    if wanted:
        exact = {f"{n}@{v}" for n, v in (store.resolve(r) for r in wanted if split_ref(r)[1])}
        plain = {r for r in wanted if not split_ref(r)[1]}
        targets = [(r, p) for r, p in targets if r in exact or r.split("@")[0] in plain]
    out: dict[str, list[str]] = {}
    for ref, path in targets:
        if not (path / MANIFEST).exists():
            out[ref] = ["_manifest.json is missing (an incomplete or hand-made folder)"]
            continue
        try:
            m = integrity.read_manifest(path)
        except ManifestError as e:
            out[ref] = [f"_manifest.json {e}"]
            continue
        out[ref] = integrity.full_problems(path, m)
    return out


def _verify_remote(store: Store, refs: Iterable[str]) -> dict[str, list[str]]:
    import hashlib

    from curate.store.versions import DamagedVersion

    out: dict[str, list[str]] = {}
    wanted = list(refs) or store.names()
    for ref in wanted:
        name, sel = split_ref(ref)
        versions = [store.resolve(ref)[1]] if sel else store.versions(name)
        for v in versions:
            try:
                dv = store.get(f"{name}@{v}")
                dv.check()
            except DamagedVersion as e:
                out[f"{name}@{v}"] = [str(e)]
                continue
            problems = []
            for f, url in zip(dv.manifest.files, dv.parts, strict=True):
                if hashlib.sha256(dv.fs.cat_file(url)).hexdigest() != f.sha256:  # type: ignore[attr-defined]
                    problems.append(f"{f.path}: checksum mismatch (contents changed after publication)")
            out[f"{name}@{v}"] = problems
    return out


def _all_names(store: Store) -> list[str]:
    d = store.datasets_dir
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d.is_dir() else []


# -- who needs a version -----------------------------------------------------------------------------
def dependents(store: Store, excluding: frozenset[str] | set[str] = frozenset()) -> dict[str, list[str]]:
    """``{ref: [who names it]}``: parents of every version not in ``excluding``, runs' datasets, tags."""
    needs: dict[str, list[str]] = {}
    for dv in store.all_versions(skip_damaged=True):
        if dv.manifest.ref in excluding:
            continue
        for parent in dv.manifest.parents:
            needs.setdefault(parent, []).append(dv.manifest.ref)
    for run in store.run_records():
        try:
            ds = orjson.loads(run.read_bytes()).get("dataset")
        except (OSError, orjson.JSONDecodeError):
            continue
        if ds:
            try:
                ref = "{}@{}".format(*store.resolve(ds))
            except StoreError:
                ref = ds
            needs.setdefault(ref, []).append(f"run {run.parent.name}")
    for name in store.names():
        for tag, v in store.tags(name).items():
            needs.setdefault(f"{name}@{v}", []).append(f"tag {name}@{tag}")
    return needs


def rm(store: Store, ref: str, force: bool = False) -> str:
    """Remove one version; refused while another version, a run or a tag names it, unless ``force``."""
    name, version = store.resolve(ref)
    full = f"{name}@{version}"
    who = dependents(store, excluding={full}).get(full, [])
    if who and not force:
        raise StoreError(f"{full} is still needed by {', '.join(who)}; remove those first or pass --force")
    for tag, v in store.tags(name).items():
        if v == version:
            store.remove_tag(name, tag)
    store.remove_version(name, version)
    store.refresh_catalog(quiet=True)
    return full


def gc(store: Store, keep: int = 1, dry_run: bool = False) -> list[str]:
    """Remove old versions: all but the newest ``keep`` of each name, keeping tagged versions and every
    version a kept version or a run names as parent. Also sweeps what killed writers left behind."""
    if keep < 1:
        raise StoreError("--keep must be at least 1 (the latest version of a dataset is never collected)")
    candidates = {f"{n}@{v}" for n in store.names() for v in store.versions(n)[:-keep]}
    while True:
        needed = dependents(store, excluding=candidates)
        protected = {ref for ref in candidates if ref in needed}
        if not protected:
            break
        candidates -= protected
    removed = sorted(candidates, key=lambda r: (r.split("@")[0], int(r.split("@")[1])))
    if not dry_run:
        for ref in removed:
            name, v = ref.split("@")
            store.remove_version(name, int(v))
        store.sweep()
        store.refresh_catalog(quiet=True)
    return removed


# -- diff --------------------------------------------------------------------------------------------
@dataclass
class Diff:
    a: str
    b: str
    key: str
    rows_a: int
    rows_b: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    funnel: dict[str, tuple[int, int]] = field(default_factory=dict)
    config: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    header: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "key": self.key,
            "rows": [self.rows_a, self.rows_b],
            "added": len(self.added),
            "removed": len(self.removed),
            "added_sample": self.added[:20],
            "removed_sample": self.removed[:20],
            "funnel": {k: list(v) for k, v in self.funnel.items()},
            "config": {k: list(v) for k, v in self.config.items()},
            "header": {k: list(v) for k, v in self.header.items()},
        }


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def _changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _keys(df: pl.DataFrame, key: str) -> set[str]:
    if key == "row":
        return set(df.hash_rows().cast(pl.String).to_list())
    return set(df.get_column(key).cast(pl.String).to_list())


def diff(store: Store, ref_a: str, ref_b: str) -> Diff:
    """Rows in and out (by ``sample_id``, else ``prompt_id``, else whole rows), funnel and config deltas."""
    a, b = store.get(ref_a), store.get(ref_b)
    da, db = a.scan().collect(), b.scan().collect()
    key = next((k for k in ("sample_id", "prompt_id") if k in da.columns and k in db.columns), "row")
    ka, kb = _keys(da, key), _keys(db, key)
    ma, mb = a.manifest, b.manifest
    header = _changed(
        {"kind": ma.kind, "schema": ma.schema, "parents": list(ma.parents), "source": ma.source},
        {"kind": mb.kind, "schema": mb.schema, "parents": list(mb.parents), "source": mb.source},
    )
    return Diff(
        ma.ref,
        mb.ref,
        key,
        ma.rows,
        mb.rows,
        sorted(kb - ka),
        sorted(ka - kb),
        {k: (int(v[0] or 0), int(v[1] or 0)) for k, v in _changed(ma.funnel, mb.funnel).items()},
        _changed(_flat(ma.config), _flat(mb.config)),
        header,
    )
