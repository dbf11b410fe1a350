"""The one machine-readable line every benchmark prints for benchmarks/run_all.py."""

from __future__ import annotations

import json


def result(
    stage: str,
    workload: str,
    ours: float,
    baseline: float | None,
    unit: str,
    baseline_name: str,
    peak_rss_mb: float | None = None,
    **extra: object,
) -> None:
    print(
        "RESULT "
        + json.dumps(
            {
                "stage": stage,
                "workload": workload,
                "ours": ours,
                "baseline": baseline,
                "unit": unit,
                "baseline_name": baseline_name,
                "ratio": ours / baseline if baseline else None,
                "peak_rss_mb": peak_rss_mb,
                **extra,
            }
        ),
        flush=True,
    )
