"""What identifies a checkpoint across copies and moves: its content, not its path.

A ledger's run identity names the model. A path is the wrong name for a local checkpoint: a store copied
to another machine, a checkpoint moved to faster disk, or the same folder reached by a relative path all
change it, and resuming was then refused although every sample would be the same. The fingerprint hashes
the folder's files, every byte (xxh3-128, several GB/s): a fine-tune that touched only a few layers, saved
to the same path, is another model, and sampling it into the old ledger would mix two models' samples.
Reading a large checkpoint once costs about what the engine pays to load it, so each file's digest is
remembered by (real path, size, mtime, inode) in the user's cache folder: later runs on that machine
stat the files and read nothing. Anything that is not a local folder (a hub id, a served model's name)
is its own fingerprint.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import orjson
import xxhash

_CHUNK = 8 << 20
_SKIP_SUFFIXES = (".md", ".lock")  # a model card edit does not change what the model samples
# What a trainer leaves beside the model: its arguments (which hold the output path, so a checkpoint
# trained again into a copied store would differ by them alone), its state and optimizer, its logs.
_TRAINER_FILES = {"training_args.bin", "trainer_state.json", "optimizer.pt", "scheduler.pt", "scaler.pt"}
_TRAINER_DIRS = {"runs", "logs"}


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "curate" / "file-digests.json"


def _files(root: Path) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or p.suffix.lower() in _SKIP_SUFFIXES:
            continue  # .cache/, .git/, editor and lock files
        if rel.parts[0] in _TRAINER_DIRS or p.name in _TRAINER_FILES or p.name.startswith("rng_state"):
            continue
        if p.is_file():
            out.append(p)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _digest(path: Path) -> str:
    h = xxhash.xxh3_128()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_fingerprint(model: str, *, cache: Path | None = None) -> str:
    """``sha256:…`` of a local checkpoint folder's content (names, sizes, bytes); ``name:<model>`` else."""
    root = Path(model)
    if not root.is_dir():
        return f"name:{model}"
    cache = cache or _cache_file()
    try:
        known: dict[str, str] = orjson.loads(cache.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        known = {}
    h, learned = hashlib.sha256(), False
    for f in _files(root):
        st = f.stat()
        key = f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
        if key not in known:
            known[key], learned = _digest(f), True
        h.update(f"{f.relative_to(root).as_posix()}\0{st.st_size}\0{known[key]}\0".encode())
    if learned:
        known = {k: v for k, v in known.items() if os.path.exists(k.split("|", 1)[0])}  # files gone: forgotten
        with contextlib.suppress(OSError):  # a read-only home only costs the next run a re-read
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            tmp.write_bytes(orjson.dumps(known))
            os.replace(tmp, cache)
    return f"sha256:{h.hexdigest()[:32]}"


__all__ = ["checkpoint_fingerprint"]
