"""One atomic write and one content hash, used by every step that writes a file readers may see.

``atomic_path`` yields a temporary path beside the destination; when the block succeeds the file is
fsynced, renamed over the destination and the directory fsynced, so after a crash (``kill -9``, power
loss) the destination is the old file or the whole new one, never a torn one. On failure the
temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

TMP_MARK = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (some filesystems refuse directory fds: the rename still holds)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def commit_file(tmp: str | Path, dest: str | Path) -> None:
    """Make a finished temporary file durable and rename it over ``dest`` (same filesystem)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    fsync_dir(Path(dest).parent)


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success fsync it and rename it over ``dest``."""
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}{TMP_MARK}{socket.gethostname()}-{os.getpid()}")
    try:
        yield tmp
        commit_file(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def sweep_tmp_beside(dest: str | Path) -> list[Path]:
    """Remove temporary files that a write of ``dest`` left when its process was killed (``kill -9``):
    ``.<name>.tmp-<host>-<pid>`` (:func:`atomic_path`) and ``.<name>.<pid>.tmp|pass1|shards|tmp.dedup``
    (``curate check``: output and staging files, scratch pieces without a cache, the staged dedup's work
    folder, as large as the input's texts) whose process is gone on this host. Returns what was removed."""
    import re
    import shutil

    dest = Path(dest)
    host = re.escape(socket.gethostname())
    pid_part = r"\.(\d+)\.(?:tmp|pass1|shards|tmp\.dedup)"
    pattern = re.compile(rf"^\.{re.escape(dest.name)}(?:{re.escape(TMP_MARK)}{host}-(\d+)|{pid_part})$")
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for p in dest.parent.iterdir():
            m = pattern.match(p.name)
            if not m:
                continue
            pid = int(m.group(1) or m.group(2))
            if pid != os.getpid() and not _alive(pid):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes_atomic(data: bytes, dest: str | Path) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_parquet_atomic(table: pa.Table, dest: str | Path) -> None:
    import pyarrow.parquet as pq

    with atomic_path(dest) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "TMP_MARK",
    "atomic_path",
    "fsync_dir",
    "sha256_bytes",
    "sha256_file",
    "sweep_tmp_beside",
    "write_bytes_atomic",
    "write_parquet_atomic",
]
