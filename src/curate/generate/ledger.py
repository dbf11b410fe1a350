"""The sample ledger: one directory per generation run, one Parquet part per shard.

Layout::

    LEDGER/manifest.json        run identity: model, engine, template, params and their hash,
                                shard size, sha256 of the prompts file
    LEDGER/part-00007.parquet   samples of shard 7; its existence is the "done" marker

    LEDGER/.lease/run.lock      held shared by every live run; taken exclusively while a run opens
    LEDGER/.lease/part-00007.lock   held by the one process generating shard 7

A part is written to a temporary file in the same directory, fsynced, ``os.replace``d into place and the
directory fsynced, so after a crash (``kill -9``, power loss) a part is either whole or absent and no
separate marker can disagree with it. Leftover temporary files are removed when the ledger is opened.

Leases are ``flock`` locks, which the kernel drops when their process dies (``kill -9`` included), so a
lease never outlives its writer and never needs a timeout. One writer per shard: a run skips a shard
another live process holds, and at the end waits for it (taking it over if that process died), so two
identical runs share the work and both end with a complete ledger. A run whose parameters differ from
the manifest is refused; while another run is live, even on a ledger with no part written yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.io.files import TMP_MARK, write_bytes_atomic, write_parquet_atomic

MANIFEST = "manifest.json"
PART_RE = re.compile(r"^part-(\d{5,})\.parquet$")
LEASE_DIR = ".lease"
# What makes two runs the same run: restarting with any of these changed is an error.
IDENTITY = ("model", "engine", "template", "params_hash", "shard_size", "prompts_sha256", "n_prompts")


class LedgerMismatch(CurateError, ValueError):
    """The ledger directory belongs to a run with other parameters (a user's choice to fix: exit 2, one line,
    from every command that opens a ledger, not only ``curate generate``)."""


@dataclass(frozen=True, slots=True)
class RunManifest:
    model: str
    engine: str
    template: str
    params: Mapping[str, Any]  # sampling params + template description, as hashed
    params_hash: str
    shard_size: int
    n_prompts: int
    n_shards: int
    prompts_file: str
    prompts_sha256: str
    schema: str = "sample@1"
    created_at: str = ""
    code_version: str = ""
    # the model's content (curate.generate.checkpoint): where both manifests have one, it decides whether
    # the model is the same, not the path, so a copied or moved store resumes; older ledgers compare paths
    model_fingerprint: str = ""

    def differs(self, other: RunManifest, key: str) -> bool:
        if key == "model" and self.model_fingerprint and other.model_fingerprint:
            return self.model_fingerprint != other.model_fingerprint
        return bool(getattr(self, key) != getattr(other, key))

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes) -> RunManifest:
        raw = orjson.loads(data)
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


class ShardLease:
    """An exclusive ``flock`` on one shard's lock file; released by :meth:`release` or by process death."""

    def __init__(self, fd: int, shard: int) -> None:
        self.fd, self.shard = fd, shard

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ShardLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Ledger:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._run_fd = -1

    def _lock_file(self, name: str) -> int:
        d = self.root / LEASE_DIR
        d.mkdir(parents=True, exist_ok=True)
        return os.open(d / name, os.O_RDWR | os.O_CREAT, 0o644)

    def claim(self, shard: int, *, wait: bool = False) -> ShardLease | None:
        """The lease on ``shard``, or None when another live process holds it (``wait``: block until it is
        free, e.g. its holder finished or died)."""
        fd = self._lock_file(f"part-{shard:05d}.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return ShardLease(fd, shard)

    def is_done(self, shard: int) -> bool:
        try:
            pq.read_metadata(self.part_path(shard))
        except (OSError, pa.ArrowInvalid):
            return False
        return True

    def close(self) -> None:
        """Release this run's lease on the ledger (also released when the process exits)."""
        if self._run_fd >= 0:
            os.close(self._run_fd)
            self._run_fd = -1

    def __del__(self) -> None:  # a Ledger dropped without close() (library callers) frees its lease
        with contextlib.suppress(Exception):
            self.close()

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def part_path(self, shard: int) -> Path:
        return self.root / f"part-{shard:05d}.parquet"

    def manifest(self) -> RunManifest | None:
        try:
            return RunManifest.from_json(self.manifest_path.read_bytes())
        except FileNotFoundError:
            return None

    def open(self, manifest: RunManifest) -> RunManifest:
        """Create the ledger or check that it belongs to the same run; clean temp files; return the
        manifest in force (the stored one when resuming). Holds a shared lease on the ledger until
        :meth:`close` or process exit, so a run with other parameters is refused while this one lives."""
        self.root.mkdir(parents=True, exist_ok=True)
        gate = self._lock_file("open.lock")  # one opener at a time: read, compare, write the manifest
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)
            if self._run_fd < 0:
                self._run_fd = self._lock_file("run.lock")
            try:
                fcntl.flock(self._run_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            try:
                return self._open(manifest, alone)
            finally:  # keep a shared lease: others may join with the same run, none may change it
                fcntl.flock(self._run_fd, fcntl.LOCK_SH)
        except BaseException:
            self.close()
            raise
        finally:
            os.close(gate)

    def _open(self, manifest: RunManifest, alone: bool) -> RunManifest:
        for tmp in self.root.glob(f"*{TMP_MARK}*"):
            if _abandoned(tmp):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        stored = self.manifest()
        if stored is None:
            if any(self.done_shards()):
                raise LedgerMismatch(f"{self.root} holds parts but no {MANIFEST}; use an empty directory")
            write_bytes_atomic(manifest.to_json(), self.manifest_path)
            return manifest
        diff = [k for k in IDENTITY if stored.differs(manifest, k)]
        if diff and not alone:
            detail = "; ".join(_describe(k, stored, manifest) for k in diff)
            raise LedgerMismatch(
                f"{self.root} is being written by another live run with other parameters ({detail}); "
                "use another --out or the same parameters"
            )
        if diff and not self.done_shards():
            # Nothing generated yet (e.g. the engine failed to start): no samples can mix, start over.
            write_bytes_atomic(manifest.to_json(), self.manifest_path)
            return manifest
        if diff:
            detail = "; ".join(_describe(k, stored, manifest) for k in diff)
            raise LedgerMismatch(
                f"{self.root} was written by a different run ({detail}); use another --out or the original parameters"
            )
        return stored

    def done_shards(self) -> set[int]:
        """Shards whose part file exists and has a readable footer (a torn file cannot exist, but a
        hand-copied one can)."""
        done: set[int] = set()
        if not self.root.is_dir():
            return done
        for entry in os.scandir(self.root):
            m = PART_RE.match(entry.name)
            if not m:
                continue
            try:
                pq.read_metadata(entry.path)
            except (OSError, pa.ArrowInvalid):
                continue
            done.add(int(m.group(1)))
        return done

    def write_shard(self, shard: int, table: pa.Table) -> Path:
        dest = self.part_path(shard)
        write_parquet_atomic(table, dest)
        return dest

    def parts(self) -> list[Path]:
        return sorted(p for p in self.root.glob("part-*.parquet") if PART_RE.match(p.name))

    def scan(self) -> pl.LazyFrame:
        """All samples written so far."""
        from curate.schema import table

        parts = self.parts()
        if not parts:
            return table("sample").empty().lazy()
        return pl.scan_parquet(parts)


def _describe(key: str, stored: RunManifest, run: RunManifest) -> str:
    if key == "params_hash":
        a, b = dict(stored.params), dict(run.params)
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        return "; ".join(f"{k}: ledger has {a.get(k)!r}, run has {b.get(k)!r}" for k in keys)
    if key == "model" and stored.model_fingerprint and run.model_fingerprint:
        return (
            f"model: ledger has {stored.model!r} ({stored.model_fingerprint}), "
            f"run has {run.model!r} ({run.model_fingerprint}): other weights or files"
        )
    return f"{key}: ledger has {getattr(stored, key)!r}, run has {getattr(run, key)!r}"


def _abandoned(tmp: Path) -> bool:
    """A temp file whose writer is gone. Data-parallel workers share the directory, so a live writer's
    file must survive another worker's start: same host and a dead pid, or a day old from elsewhere."""
    host, _, pid = tmp.name.rpartition(TMP_MARK)[2].rpartition("-")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return True
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    try:
        return time.time() - tmp.stat().st_mtime > 86400
    except FileNotFoundError:
        return False
