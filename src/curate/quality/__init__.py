"""Quality checks on the chain of thought: readability and language consistency (R1 rejection sampling)."""

from curate.quality.language import (
    LanguageCheck,
    LanguageConfig,
    language_consistency,
    language_consistency_batch,
    language_segments,
    language_stats,
)
from curate.quality.readability import ReadabilityCheck, ReadabilityConfig, compression_ratios

__all__ = [
    "LanguageCheck",
    "LanguageConfig",
    "ReadabilityCheck",
    "ReadabilityConfig",
    "compression_ratios",
    "language_consistency",
    "language_consistency_batch",
    "language_segments",
    "language_stats",
]
