"""Prefills: text the response starts with that the model did not generate.

Two sources. Curate's template (``r1``) appends ``<think>\\n`` after the generation prompt; and a
checkpoint's own chat template may already end the generation prompt inside the reasoning (the
DeepSeek-R1 distills' templates end with ``<｜Assistant｜><think>\\n``), so completions start inside the
reasoning and never contain the opening tag. The engines put the *effective* prefill (both, without
writing ``<think>`` twice) back in front of the completion and record it per sample (``prefill``
column), so the format check and every later step see prefill + completion.
"""

from __future__ import annotations

from typing import Any

from curate.generate.engines.base import THINK_OPEN

_PROBE = "curate-prefill-probe"


def template_prefill(tokenizer: Any) -> str:
    """What the checkpoint's chat template writes after the assistant header when it opens the reasoning
    itself (``"<think>\\n"`` for R1 distills), else ``""``."""
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": _PROBE}], tokenize=False, add_generation_prompt=True
        )
    except Exception:  # no chat template, or one that needs other roles: nothing is prefilled
        return ""
    if not isinstance(text, str):
        return ""
    i = text.rfind(THINK_OPEN)
    if i < 0 or i < text.rfind(_PROBE):
        return ""
    tail = text[i:]
    return tail if tail.strip() == THINK_OPEN else ""


def merge_prefill(from_template: str, ours: str) -> tuple[str, str]:
    """``(text to append after the rendered generation prompt, effective prefill)``.

    ``ours`` (curate's template prefill) is not repeated where the chat template already wrote it.
    """
    if not from_template:
        return ours, ours
    if ours.startswith(from_template):
        return ours[len(from_template) :], ours
    if from_template.startswith(ours):  # e.g. ours "<think>", the template's "<think>\n"
        return "", from_template
    return ours, from_template + ours


def local_tokenizer(checkpoint: str, trust_remote_code: bool = False) -> Any | None:
    """The tokenizer of a local checkpoint directory (served model names that are paths), else None."""
    from pathlib import Path

    p = Path(checkpoint).expanduser()
    if not (p.is_dir() and any((p / f).exists() for f in ("tokenizer_config.json", "tokenizer.json"))):
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(p), trust_remote_code=trust_remote_code)
    except Exception:
        return None
