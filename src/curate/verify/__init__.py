"""Rule-based verifiers: math answers (math-verify + sympy) and code run under bubblewrap."""

from curate.verify.answer_extract import Extraction, boxed_contents, extract_answer, gold_answer
from curate.verify.code import CodeCheck, CodeConfig, CodeResult, CodeTask, extract_code, run_code, run_code_batch
from curate.verify.math import MathCheck, MathConfig, MathResult, verify_math
from curate.verify.sandbox import SandboxConfig, SandboxRun, run_sandboxed, sandbox_error
from curate.verify.zygote import ZygotePool

__all__ = [
    "CodeCheck",
    "CodeConfig",
    "CodeResult",
    "CodeTask",
    "Extraction",
    "MathCheck",
    "MathConfig",
    "MathResult",
    "SandboxConfig",
    "SandboxRun",
    "ZygotePool",
    "boxed_contents",
    "extract_answer",
    "extract_code",
    "gold_answer",
    "run_code",
    "run_code_batch",
    "run_sandboxed",
    "sandbox_error",
    "verify_math",
]
