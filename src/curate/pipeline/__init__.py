"""The pipeline's steps as plain library calls: what flows, the demo and the CLI call, one per task.

generate (``plan_generation``, ``generate_shards``) → check (``row_checks``, ``corpus_check``) →
publish (``publish_checked_file``) → select (``build_recipe``). Nothing here imports Prefect.
"""

from curate.pipeline.steps import (
    GenerationPlan,
    PipelineResult,
    build_recipe,
    corpus_check,
    funnel_of_file,
    generate_shards,
    ledger_dir,
    ledger_parts,
    plan_generation,
    publish_checked_file,
    row_checks,
)

__all__ = [
    "GenerationPlan",
    "PipelineResult",
    "build_recipe",
    "corpus_check",
    "funnel_of_file",
    "generate_shards",
    "ledger_dir",
    "ledger_parts",
    "plan_generation",
    "publish_checked_file",
    "row_checks",
]
