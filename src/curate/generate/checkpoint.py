"""What identifies a checkpoint across copies and moves: its content, not its path.

A ledger's run identity names the model. A path is the wrong name for a local checkpoint: a store copied
to another machine, a checkpoint moved to faster disk, or the same folder reached by a relative path all
change it, and resuming was then refused although every sample would be the same. The fingerprint hashes
the folder's files: their relative names and sizes, small files (config, tokenizer, chat template) whole,
and large ones (weights) by ``SAMPLES`` slices spread over the file, so a 140 GB checkpoint is read for a
few MB. Two trainings of one architecture differ in every slice of their weights; the same weights copied
anywhere give the same fingerprint. Anything that is not a local folder (a hub id, a served model's name)
is its own fingerprint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

WHOLE_BYTES = 4 << 20  # files up to this size are hashed whole
SAMPLES = 4  # slices of a larger file: its first and last bytes and ones evenly between
SAMPLE_BYTES = 256 << 10
_SKIP_SUFFIXES = (".md", ".lock")  # a model card edit does not change what the model samples


def _files(root: Path) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or p.suffix.lower() in _SKIP_SUFFIXES:
            continue  # .cache/, .git/, editor and lock files
        if p.is_file():
            out.append(p)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def checkpoint_fingerprint(model: str) -> str:
    """``sha256:…`` of a local checkpoint folder's content; ``name:<model>`` for anything else."""
    root = Path(model)
    if not root.is_dir():
        return f"name:{model}"
    h = hashlib.sha256()
    for f in _files(root):
        size = f.stat().st_size
        h.update(f"{f.relative_to(root).as_posix()}\0{size}\0".encode())
        with f.open("rb") as fh:
            if size <= WHOLE_BYTES:
                h.update(fh.read())
                continue
            for i in range(SAMPLES):
                fh.seek((size - SAMPLE_BYTES) * i // (SAMPLES - 1))
                h.update(fh.read(SAMPLE_BYTES))
    return f"sha256:{h.hexdigest()[:32]}"


__all__ = ["checkpoint_fingerprint"]
