"""Prefect flows: thin wiring of curate's library calls (installed as ``curate.flows``).

Every @task wraps exactly one library call; resume rests on the ledger's shard files, so tasks do not
use Prefect's result cache (its default key includes the flow run id and would collapse identical inputs).
"""

from typing import Any

from curate.flows.launch_training import launch_training
from curate.flows.recipes_flows import cold_start, distill, rl_prompts
from curate.flows.rejection_sampling import rejection_sampling

FLOWS: dict[str, Any] = {
    "rejection_sampling": rejection_sampling,
    "cold_start": cold_start,
    "distill": distill,
    "rl_prompts": rl_prompts,
    "launch_training": launch_training,
}

__all__ = ["FLOWS", "cold_start", "distill", "launch_training", "rejection_sampling", "rl_prompts"]
