"""The LLM judge: a generative reward model for what the rules cannot decide.

``JudgeCheck`` is the ``judge`` check (corpus scope, last, off by default). Rubrics are versioned
templates; the sample is quoted between per-call random boundaries and the verdict must echo the
boundary nonce; verdicts are cached by (judge model, rubric@version, sample hash). ``run_probes`` is the
injection probe suite, ``agreement`` the calibration against the rule verifiers, ``usage_summary`` what
a run spent (for the manifest).
"""

from curate.judge.cache import VerdictCache, sample_hash
from curate.judge.calibration import Agreement, agreement, rescued_by_judge, rule_verdict
from curate.judge.check import UNDECIDED_CODES, JudgeCheck, JudgeConfig, build_engine, route
from curate.judge.probes import Probe, ProbeResult, probes_for, run_probes
from curate.judge.prompt import JudgePrompt, build_prompt, escape
from curate.judge.rubrics import BUILTIN_RUBRICS, QUALITY, READABILITY, REFERENCE, Rubric, load_rubric
from curate.judge.run import Item, JudgeParams, Outcome, judge_items
from curate.judge.usage import JudgeUsage, usage_summary
from curate.judge.verdict import Verdict, VerdictError, parse_verdict, verdict_schema

__all__ = [
    "BUILTIN_RUBRICS",
    "QUALITY",
    "READABILITY",
    "REFERENCE",
    "UNDECIDED_CODES",
    "Agreement",
    "Item",
    "JudgeCheck",
    "JudgeConfig",
    "JudgeParams",
    "JudgePrompt",
    "JudgeUsage",
    "Outcome",
    "Probe",
    "ProbeResult",
    "Rubric",
    "Verdict",
    "VerdictCache",
    "VerdictError",
    "agreement",
    "build_engine",
    "build_prompt",
    "escape",
    "judge_items",
    "load_rubric",
    "parse_verdict",
    "probes_for",
    "rescued_by_judge",
    "route",
    "rule_verdict",
    "run_probes",
    "sample_hash",
    "usage_summary",
    "verdict_schema",
]
