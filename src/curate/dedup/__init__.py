"""Exact and MinHash near-duplicate detection, a cross-version index, and benchmark decontamination."""

from curate.dedup.check import DedupCheck
from curate.dedup.core import DedupConfig, dedup_frame, find_duplicates, sketch_frame
from curate.dedup.decontam import (
    BUILTIN_BENCHMARKS,
    Benchmark,
    DecontamCheck,
    DecontamConfig,
    parse_benchmark,
)
from curate.dedup.index import DedupIndex, IndexMismatch, IndexParams
from curate.dedup.lsh import candidate_pairs, components, optimal_bands
from curate.dedup.minhash import jaccard, signatures, sketch
from curate.dedup.normalize import exact_keys, normalize, token_hashes
from curate.dedup.spill import BandSpill, SpillResult, dedup_stream

__all__ = [
    "BUILTIN_BENCHMARKS",
    "BandSpill",
    "Benchmark",
    "DecontamCheck",
    "DecontamConfig",
    "DedupCheck",
    "DedupConfig",
    "DedupIndex",
    "IndexMismatch",
    "IndexParams",
    "SpillResult",
    "candidate_pairs",
    "components",
    "dedup_frame",
    "dedup_stream",
    "exact_keys",
    "find_duplicates",
    "jaccard",
    "normalize",
    "optimal_bands",
    "parse_benchmark",
    "signatures",
    "sketch",
    "sketch_frame",
    "token_hashes",
]
