"""A checkpoint's fingerprint follows its content, every byte of it, wherever the folder lies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curate.generate import checkpoint as C
from curate.generate.checkpoint import checkpoint_fingerprint


def test_fingerprint_follows_content_not_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    a = tmp_path / "a"
    a.mkdir()
    (a / "config.json").write_text('{"hidden_size": 8}')
    big = bytes(range(256)) * (3 * C._CHUNK // 256 + 5)  # several read chunks
    (a / "model.safetensors").write_bytes(big)
    fp = checkpoint_fingerprint(str(a))
    assert fp.startswith("sha256:") and (tmp_path / "cache" / "curate" / "file-digests.json").exists()
    b = tmp_path / "deep" / "b"
    shutil.copytree(a, b)
    (b / "README.md").write_text("a model card edit")
    (b / ".cache").mkdir()
    (b / ".cache" / "x").write_text("tool state")
    (b / "training_args.bin").write_bytes(b"output_dir=/elsewhere")  # a trainer's files: not the model
    (b / "optimizer.pt").write_bytes(b"adam")
    assert checkpoint_fingerprint(str(b)) == fp  # moved, annotated: the same model

    # one flipped bit anywhere in the weights (a fine-tune of a few middle layers), or a config edit,
    # is another model - also when the digests of the old files are remembered
    for where in (0, len(big) // 2 + 7, len(big) - 1):
        w = bytearray(big)
        w[where] ^= 1
        (b / "model.safetensors").write_bytes(bytes(w))
        assert checkpoint_fingerprint(str(b)) != fp, where
    (b / "model.safetensors").write_bytes(big)
    assert checkpoint_fingerprint(str(b)) == fp
    (b / "config.json").write_text('{"hidden_size": 9}')
    assert checkpoint_fingerprint(str(b)) != fp


def test_remembered_digests_spare_the_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x" * 1000)
    cache = tmp_path / "digests.json"
    fp = checkpoint_fingerprint(str(tmp_path / "m"), cache=cache)
    read: list[Path] = []
    monkeypatch.setattr(C, "_digest", lambda p: read.append(p) or "")
    assert checkpoint_fingerprint(str(tmp_path / "m"), cache=cache) == fp and read == []
    cache.write_text("{not json")  # a damaged cache is only a cache: the files are read again
    monkeypatch.undo()
    assert checkpoint_fingerprint(str(tmp_path / "m"), cache=cache) == fp


def test_a_name_is_its_own_fingerprint(tmp_path: Path) -> None:
    assert checkpoint_fingerprint("Qwen/Qwen2.5-0.5B") == "name:Qwen/Qwen2.5-0.5B"
    assert checkpoint_fingerprint(str(tmp_path / "missing")) == f"name:{tmp_path / 'missing'}"
