"""Reading a prompt pool (JSONL or Parquet, schemas/prompt.yaml) for generation.

Kept small on purpose: the generic reader with quarantine lives in ``curate.ingest``. Here a malformed
file is an error that names the line, since generating from a silently shortened pool is worse.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import xxhash

from curate.schema import table


class PromptFileError(ValueError):
    """The prompts file cannot be used (unreadable, missing ``prompt``, duplicate ids)."""


def derive_prompt_id(prompt: str) -> str:
    return xxhash.xxh3_64_hexdigest(prompt.encode())


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _normalize(rows: list[dict[str, Any]], where: str) -> pl.DataFrame:
    t = table("prompt")
    known = set(t.names)
    out = []
    for n, row in enumerate(rows, 1):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptFileError(f"{where}: row {n} has no 'prompt' text")
        rec = {k: v for k, v in row.items() if k in known and v is not None}
        if rec.get("prompt_id") is None:
            rec["prompt_id"] = derive_prompt_id(prompt)
        rec["prompt_id"] = str(rec["prompt_id"])
        unknown = {k: v for k, v in row.items() if k not in known}
        if unknown and "extra" not in rec:
            rec["extra"] = orjson.dumps(unknown, default=str).decode()
        out.append(rec)
    try:
        df = pl.DataFrame(out, schema=t.polars_schema(), strict=False)
        df = t.conform(df)
    except Exception as e:  # polars raises several kinds for bad values
        raise PromptFileError(f"{where}: {e}") from e
    dup = df.filter(pl.col("prompt_id").is_duplicated())["prompt_id"]
    if dup.len():
        raise PromptFileError(f"{where}: duplicate prompt_id {dup[0]!r} ({dup.n_unique()} ids repeated)")
    return df


def read_prompts(path: str | Path) -> pl.DataFrame:
    """The prompts in file order, conformed to the ``prompt`` table."""
    p = Path(path)
    if not p.is_file():
        raise PromptFileError(f"prompts file not found: {p}")
    if p.suffix == ".parquet":
        try:
            rows = pl.read_parquet(p).to_dicts()
        except Exception as e:
            raise PromptFileError(f"{p}: not a readable Parquet file: {e}") from e
        return _normalize(rows, str(p))
    rows = []
    with p.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise PromptFileError(f"{p}:{n}: invalid JSON: {e}") from e
            if not isinstance(obj, dict):
                raise PromptFileError(f"{p}:{n}: expected a JSON object")
            rows.append(obj)
    if not rows:
        raise PromptFileError(f"{p}: no prompts")
    return _normalize(rows, str(p))
