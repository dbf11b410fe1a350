"""Generation: engines (vLLM, OpenAI-compatible HTTP, transformers), prompt templates, and the
crash-safe, resumable sample ledger behind ``curate generate``.

Importing this package is cheap: torch, transformers and vllm load only when an engine is built.
"""

from curate.generate.engines import ENGINES, make_engine
from curate.generate.engines.base import (
    Completion,
    Engine,
    EngineError,
    Rendered,
    Request,
    SamplingParams,
    prompt_seed,
    sample_id,
    sample_seed,
)
from curate.generate.ledger import Ledger, LedgerMismatch, RunManifest
from curate.generate.prompts import PromptFileError, read_prompts
from curate.generate.runner import RunResult, build_manifest, generate_ledger, params_hash
from curate.generate.templates import R1_ZERO_TEMPLATE, TEMPLATES, PromptTemplate
from curate.io.files import write_parquet_atomic

__all__ = [
    "ENGINES",
    "R1_ZERO_TEMPLATE",
    "TEMPLATES",
    "Completion",
    "Engine",
    "EngineError",
    "Ledger",
    "LedgerMismatch",
    "PromptFileError",
    "PromptTemplate",
    "Rendered",
    "Request",
    "RunManifest",
    "RunResult",
    "SamplingParams",
    "build_manifest",
    "generate_ledger",
    "make_engine",
    "params_hash",
    "prompt_seed",
    "read_prompts",
    "sample_id",
    "sample_seed",
    "write_parquet_atomic",
]
