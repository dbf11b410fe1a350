"""The pipeline's steps as plain library calls: what flows, the demo and the CLI call, one per task.

generate (``plan_generation``, ``generate_shards``) → check (``row_checks``, or fanned out:
``plan_row_checks``, ``check_shard`` per shard, ``write_row_checks``; then ``corpus_check``) →
publish (``publish_checked_file``) → select (``build_recipe``). Nothing here imports Prefect.
"""

from curate.pipeline.steps import (
    GenerationPlan,
    PipelineResult,
    build_recipe,
    check_cache,
    check_shard,
    corpus_check,
    funnel_of_file,
    generate_shards,
    ledger_dir,
    ledger_parts,
    plan_generation,
    plan_row_checks,
    publish_checked_file,
    row_checks,
    write_row_checks,
)

__all__ = [
    "GenerationPlan",
    "PipelineResult",
    "build_recipe",
    "check_cache",
    "check_shard",
    "corpus_check",
    "funnel_of_file",
    "generate_shards",
    "ledger_dir",
    "ledger_parts",
    "plan_generation",
    "plan_row_checks",
    "publish_checked_file",
    "row_checks",
    "write_row_checks",
]
