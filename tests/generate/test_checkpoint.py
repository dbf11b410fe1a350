"""A checkpoint's fingerprint follows its content, wherever the folder lies."""

from __future__ import annotations

import shutil
from pathlib import Path

from curate.generate import checkpoint as C
from curate.generate.checkpoint import checkpoint_fingerprint


def test_fingerprint_follows_content_not_path(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "config.json").write_text('{"hidden_size": 8}')
    big = bytearray(range(256)) * ((C.WHOLE_BYTES + 3 * C.SAMPLE_BYTES) // 256)
    (a / "model.safetensors").write_bytes(bytes(big))
    fp = checkpoint_fingerprint(str(a))
    assert fp.startswith("sha256:")
    b = tmp_path / "deep" / "b"
    shutil.copytree(a, b)
    (b / "README.md").write_text("a model card edit")
    (b / ".cache").mkdir()
    (b / ".cache" / "x").write_text("tool state")
    assert checkpoint_fingerprint(str(b)) == fp  # moved, annotated: the same model

    # a change in any sampled slice of the weights, or in a small file, is another model
    for where in (0, (len(big) - C.SAMPLE_BYTES) // (C.SAMPLES - 1) + 7, len(big) - 1):
        c = tmp_path / f"c{where}"
        shutil.copytree(a, c)
        w = bytearray(big)
        w[where] ^= 1
        (c / "model.safetensors").write_bytes(bytes(w))
        assert checkpoint_fingerprint(str(c)) != fp, where
    (b / "config.json").write_text('{"hidden_size": 9}')
    assert checkpoint_fingerprint(str(b)) != fp


def test_a_name_is_its_own_fingerprint(tmp_path: Path) -> None:
    assert checkpoint_fingerprint("Qwen/Qwen2.5-0.5B") == "name:Qwen/Qwen2.5-0.5B"
    assert checkpoint_fingerprint(str(tmp_path / "missing")) == f"name:{tmp_path / 'missing'}"
