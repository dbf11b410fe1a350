"""Benchmark decontamination: flag prompts (and optionally responses) that contain evaluation items.

Three signals per row, against every item of every registered benchmark:

* exact: the normalized row text equals the normalized item text;
* n-gram containment: the share of the item's word ``ngram``-grams (8 by default; 8-13 is usual) that
  occur in the row - catches a benchmark problem pasted inside a longer prompt;
* MinHash: estimated Jaccard of 5-gram sets >= ``threshold`` - catches light edits that break long n-grams.

The benchmark index is built once per check instance, so ``run`` is pure and cheap. Built-in sets ship
in ``curate/data/benchmarks`` (licenses beside them); users add a JSONL/Parquet file + text field + name.
"""

from __future__ import annotations

import gzip
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate.checks.base import Check, ConfigError, add_reasons
from curate.dedup.lsh import band_hashes, band_table, optimal_bands
from curate.dedup.minhash import is_empty, shingle_hashes, signatures_from_tokens
from curate.dedup.normalize import exact_keys_from_tokens, token_hashes
from curate.io.jsonl import read_ndjson

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "benchmarks"


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One evaluation set: a JSONL(.gz) or Parquet file, the field holding the text, an optional id field."""

    name: str
    path: str
    text_field: str
    id_field: str | None = None
    builtin: bool = False


BUILTIN_BENCHMARKS: dict[str, Benchmark] = {
    "math500": Benchmark("math500", str(DATA_DIR / "math500.jsonl"), "problem", "unique_id", True),
    "aime24": Benchmark("aime24", str(DATA_DIR / "aime24.jsonl"), "problem", "id", True),
    "amc23": Benchmark("amc23", str(DATA_DIR / "amc23.jsonl"), "problem", "id", True),
    "gsm8k": Benchmark("gsm8k", str(DATA_DIR / "gsm8k_test.jsonl"), "question", None, True),
    "humaneval": Benchmark("humaneval", str(DATA_DIR / "humaneval.jsonl.gz"), "prompt", "task_id", True),
}


def parse_benchmark(spec: str) -> Benchmark:
    """``name=path:text_field[:id_field]`` (the CLI and config form of a user benchmark)."""
    name, eq, rest = spec.partition("=")
    parts = rest.rsplit(":", 2) if rest.count(":") >= 2 else rest.rsplit(":", 1)
    if not eq or len(parts) < 2 or not name:
        raise ConfigError(f"benchmark spec {spec!r}: expected name=path:text_field[:id_field]")
    if len(parts) == 3 and not Path(parts[0]).suffix and Path(parts[0] + ":" + parts[1]).suffix:
        parts = [parts[0] + ":" + parts[1], parts[2]]  # a path with a colon, no id field
    return Benchmark(name, parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def load_benchmark(b: Benchmark) -> pl.DataFrame:
    """(bench, item_id, text) rows of one benchmark file."""
    path = Path(b.path)
    if not path.exists():
        raise ConfigError(f"benchmark {b.name}: no file {path}")
    if path.suffix == ".parquet":
        df = pl.read_parquet(path)
    else:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        df = read_ndjson(raw)  # every line decides the schema
    if b.text_field not in df.columns:
        raise ConfigError(f"benchmark {b.name}: no field {b.text_field!r} in {path} (has {df.columns})")
    ids = (
        df[b.id_field].cast(pl.String)
        if b.id_field and b.id_field in df.columns
        else pl.Series([str(i) for i in range(df.height)])
    )
    return pl.DataFrame({"bench": [b.name] * df.height, "item_id": ids, "text": df[b.text_field].cast(pl.String)})


@dataclass(frozen=True, slots=True)
class DecontamConfig:
    benchmarks: tuple[str, ...] = tuple(BUILTIN_BENCHMARKS)  # built-in sets to check against
    extra: tuple[str, ...] = ()  # user sets: "name=path:text_field[:id_field]"; reason decontam.custom
    columns: tuple[str, ...] = ("prompt",)  # add "response" to check completions too
    ngram: int = 8  # words per n-gram for containment
    min_overlap: float = 0.5  # share of an item's n-grams found in the row that flags it
    threshold: float = 0.8  # MinHash Jaccard (5-grams) that flags a row
    num_perm: int = 128
    minhash_ngram: int = 5
    seed: int = 1


@dataclass(slots=True)
class _Index:
    items: pl.DataFrame  # bench, item_id, text, n_grams
    grams: pl.DataFrame  # gram, item (unique pairs)
    bands: pl.DataFrame  # band_id, band_hash, item
    sig: np.ndarray
    exact: pl.DataFrame  # key, item
    br: tuple[int, int] = field(default=(1, 1))


class DecontamCheck(Check[DecontamConfig]):
    name = "decontam"
    cost = 25
    Config = DecontamConfig
    reads = ("prompt", "response")
    concurrent = True

    def __init__(self, config: DecontamConfig | None = None) -> None:
        self.config = cfg = config or DecontamConfig()
        unknown = sorted(set(cfg.benchmarks) - set(BUILTIN_BENCHMARKS))
        if unknown:
            raise ConfigError(f"decontam: unknown benchmark(s) {unknown}; built in: {list(BUILTIN_BENCHMARKS)}")
        specs = [BUILTIN_BENCHMARKS[n] for n in cfg.benchmarks] + [parse_benchmark(s) for s in cfg.extra]
        items = (
            pl.concat([load_benchmark(b) for b in specs])
            if specs
            else pl.DataFrame(schema={"bench": pl.String, "item_id": pl.String, "text": pl.String})
        )
        self.builtin = {b.name for b in specs if b.builtin}
        # Built in a thread (mostly numpy and Polars, GIL-free) while the command goes on planning and
        # reading its first shard: 0.06-0.15 s off every check's start. A bad benchmark file has already
        # been refused above, before any long work.
        self._items: pl.DataFrame | None = items
        self._index: _Index | None = None
        self._pid = os.getpid()
        pool = ThreadPoolExecutor(1, thread_name_prefix="decontam-index")
        self._pending: Future[_Index] | None = pool.submit(self._build, items)
        pool.shutdown(wait=False)  # the thread ends with the build

    @property
    def index(self) -> _Index:
        if self._index is None:
            pending, items = self._pending, self._items
            if pending is not None and (pending.done() or os.getpid() == self._pid):
                self._index = pending.result()
            else:  # a process forked before the build finished: its thread stayed in the parent
                assert items is not None
                self._index = self._build(items)
            self._pending = self._items = None
        return self._index

    def __getstate__(self) -> dict[str, Any]:  # sent to worker processes: the built index, not the thread
        return {**self.__dict__, "_index": self.index, "_pending": None, "_items": None}

    def _build(self, items: pl.DataFrame) -> _Index:
        cfg = self.config
        tokens, counts = token_hashes(items["text"])
        grams, n_g = shingle_hashes(tokens, counts, cfg.ngram)
        # Items shorter than ngram words have only a whole-text shingle: left to the exact and MinHash paths.
        n_g = np.where(counts >= cfg.ngram, n_g, 0)
        keep = np.repeat(counts >= cfg.ngram, np.where(counts > 0, np.maximum(counts - cfg.ngram + 1, 1), 0))
        gdf = pl.DataFrame(
            {
                "gram": grams[keep].view(np.int64),
                "item": np.repeat(np.arange(items.height, dtype=np.int32), n_g),
            }
        ).unique()
        sig = signatures_from_tokens(tokens, counts, num_perm=cfg.num_perm, ngram=cfg.minhash_ngram, seed=cfg.seed)
        br = optimal_bands(cfg.threshold, cfg.num_perm, 0.1, 0.9)  # verified: favour recall
        live = np.flatnonzero(~is_empty(sig))
        bands = band_table(band_hashes(sig[live], *br), live).rename({"doc": "item"})
        exact = pl.DataFrame(
            {
                "key": exact_keys_from_tokens(tokens, counts).view(np.int64),
                "item": np.arange(items.height, dtype=np.int64),
            }
        ).filter(pl.Series(counts > 0))
        items = items.with_columns(pl.Series("n_grams", n_g, pl.Int64))
        return _Index(items, gdf, bands, sig, exact, br)

    def match(self, texts: pl.Series) -> pl.DataFrame:
        """Best match per text: (row, item, overlap, hit) for rows with any signal; ``hit`` rows come
        first, then the highest overlap (n-gram containment, MinHash Jaccard or 1.0 for exact)."""
        cfg, ix = self.config, self.index
        tokens, counts = token_hashes(texts.cast(pl.String))
        grams, n_g = shingle_hashes(tokens, counts, cfg.ngram)
        rows = pl.DataFrame(
            {"gram": grams.view(np.int64), "row": np.repeat(np.arange(len(texts), dtype=np.int64), n_g)}
        ).unique()
        ng = (
            rows.join(ix.grams, on="gram")
            .group_by("row", "item")
            .len()
            .join(ix.items.with_row_index("item").select(pl.col("item").cast(pl.Int32), "n_grams"), on="item")
            .select("row", pl.col("item").cast(pl.Int64), (pl.col("len") / pl.col("n_grams")).alias("overlap"))
            .with_columns((pl.col("overlap") >= cfg.min_overlap).alias("hit"))
        )
        sig = signatures_from_tokens(tokens, counts, num_perm=cfg.num_perm, ngram=cfg.minhash_ngram, seed=cfg.seed)
        live = np.flatnonzero(~is_empty(sig))
        cand = (
            band_table(band_hashes(sig[live], *ix.br), live)
            .rename({"doc": "row"})
            .join(ix.bands, on=["band_id", "band_hash"])
            .select("row", "item")
            .unique()
        )
        r, i = cand["row"].to_numpy(), cand["item"].to_numpy()
        mh = pl.DataFrame(
            {"row": r, "item": i, "overlap": (sig[r] == ix.sig[i]).mean(axis=1) if len(r) else []},
            schema={"row": pl.Int64, "item": pl.Int64, "overlap": pl.Float64},
        )
        mh = mh.filter(pl.col("overlap") >= cfg.threshold).with_columns(pl.lit(True).alias("hit"))
        ex = (
            pl.DataFrame(
                {
                    "key": exact_keys_from_tokens(tokens, counts).view(np.int64),
                    "row": np.arange(len(texts), dtype=np.int64),
                }
            )
            .filter(pl.Series(counts > 0))
            .join(ix.exact, on="key")
            .select("row", "item", pl.lit(1.0).alias("overlap"), pl.lit(True).alias("hit"))
        )
        allm = pl.concat([ng, mh, ex])
        return allm.sort("row", "hit", "overlap", "item", descending=[False, True, True, False]).unique(
            "row", keep="first", maintain_order=True
        )

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        cfg, items = self.config, self.index.items
        n = df.height
        best, hit = np.zeros(n), np.zeros(n, dtype=bool)
        bench: list[str | None] = [None] * n
        match_id: list[str | None] = [None] * n
        b_names, b_ids = items["bench"].to_list(), items["item_id"].to_list()
        for col in cfg.columns:
            if col not in df.columns:
                raise ConfigError(f"decontam: no column {col!r} in the input")
            m = self.match(df[col])
            for r, it, o, h in zip(*(m[c].to_list() for c in ("row", "item", "overlap", "hit")), strict=True):
                if (h, o) > (hit[r], best[r]):  # a flagging match beats a higher non-flagging overlap
                    best[r], hit[r], bench[r], match_id[r] = o, h, b_names[it], b_ids[it]
        out = df.with_columns(
            pl.Series("decontam_benchmark", [b if h else None for b, h in zip(bench, hit, strict=True)], pl.String),
            pl.Series("decontam_match_id", [m if h else None for m, h in zip(match_id, hit, strict=True)], pl.String),
            pl.Series("decontam_overlap", best, pl.Float64),
        )
        names = sorted({b for b, h in zip(bench, hit, strict=True) if h and b})
        codes = {f"decontam.{b}": pl.col("decontam_benchmark") == b for b in names if b in self.builtin}
        custom = [b for b in names if b not in self.builtin]
        if custom:
            codes["decontam.custom"] = pl.col("decontam_benchmark").is_in(custom)
        return add_reasons(out, codes)
