"""Is a version what its manifest says? Cheap checks on every read, full checksums in ``verify``.

- :func:`quick_problems`: sizes and Parquet footers (a stat and 8 bytes per part), run on every read.
- :func:`full_problems`: the manifest's digest, every part's sha256 and row count, stray files.
- :func:`sweep`: staging folders and temp files left by a killed process (``kill -9``), removed on the
  next run; folders of a live process on this host are left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from pathlib import Path

import pyarrow.parquet as pq

from curate.io.files import sha256_file
from curate.store.manifest import MANIFEST, Manifest

STALE_AFTER_S = 24 * 3600  # a staging folder from another host is swept after a day
HOST = socket.gethostname()


def owner_tag() -> str:
    """``host-pid``: put in every staging or temp name so a sweep can tell a dead writer from a live one."""
    return f"{HOST}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(name: str, path: Path, now: float | None = None) -> bool:
    """A leftover whose writer is gone: its pid is dead on this host, or it is older than a day."""
    for host_pid in _owner_candidates(name):
        host, _, pid = host_pid.rpartition("-")
        if host == HOST and pid.isdigit():
            return int(pid) != os.getpid() and not _alive(int(pid))
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_AFTER_S


def _owner_candidates(name: str) -> list[str]:
    # names are "<prefix>--<host>-<pid>--<random>[.suffix]"
    parts = name.split("--")
    return [parts[1]] if len(parts) >= 3 else []


def sweep(home: Path) -> list[Path]:
    """Remove what killed writers left in ``home``: ``.staging/*``, ``.trash/*``, catalog temp files."""
    removed: list[Path] = []
    for folder in (home / ".staging", home / ".trash"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if folder.name == ".trash" or is_stale(p.name, p):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                removed.append(p)
    if home.is_dir():
        for p in home.glob(".catalog--*"):
            if is_stale(p.name, p):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                removed.append(p)
    return removed


def read_manifest(folder: Path) -> Manifest:
    return Manifest.from_json((folder / MANIFEST).read_bytes())


def quick_problems(folder: Path, m: Manifest) -> list[str]:
    """Cheap: the manifest's digest holds, every listed part is there, has the recorded size and ends in
    a Parquet footer. A same-size change inside a part is left to :func:`full_problems` (checksums)."""
    problems = []
    if m.digest and m.digest != m.computed_digest():
        problems.append("_manifest.json was edited after publication (digest mismatch)")
    for f in m.files:
        p = folder / f.path
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            problems.append(f"{f.path} is missing")
            continue
        if size != f.bytes:
            problems.append(f"{f.path} is {size:,} B, the manifest recorded {f.bytes:,} B")
            continue
        with p.open("rb") as fh:
            fh.seek(max(size - 4, 0))
            if fh.read(4) != b"PAR1":
                problems.append(f"{f.path} has no Parquet footer")
    if sum(f.rows for f in m.files) != m.rows:
        problems.append(f"manifest rows {m.rows:,} != the sum over its files")
    return problems


def full_problems(folder: Path, m: Manifest) -> list[str]:
    """Everything: the manifest's digest, checksums and row counts of the parts, files not listed."""
    problems = []
    if folder.name != f"v{m.version}" or folder.parent.name != m.name:
        problems.append(f"_manifest.json names {m.ref}, but lies in {folder.parent.name}/{folder.name}")
    problems += quick_problems(folder, m)
    for f in m.files:
        p = folder / f.path
        if not p.exists():
            continue
        if sha256_file(p) != f.sha256:
            problems.append(f"{f.path}: checksum mismatch (contents changed after publication)")
            continue
        try:
            rows = pq.ParquetFile(p).metadata.num_rows
        except Exception as e:  # noqa: BLE001 - any unreadable footer is damage to report
            problems.append(f"{f.path}: unreadable Parquet ({e})")
            continue
        if rows != f.rows:
            problems.append(f"{f.path}: {rows:,} rows, the manifest recorded {f.rows:,}")
    listed = {f.path for f in m.files} | {MANIFEST}
    problems += [f"{p.name}: not listed in the manifest" for p in sorted(folder.iterdir()) if p.name not in listed]
    return problems
