"""The fast readability and lang checks give exactly what they gave before the speed work: every
column and every reason code, on R1-style traces and on hostile ones (CJK, mixed scripts, code blocks,
loops, empty and whitespace-only texts, huge lines, several or no ``</think>``). The reference is a
frozen copy of the old modules (``_reference/``), run side by side on the same frames."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from curate.checks.base import ensure_reasons
from curate.quality import LanguageCheck, LanguageConfig, ReadabilityCheck, ReadabilityConfig, language_segments
from curate.testing.traces import make_trace

REF = Path(__file__).parent / "_reference"


def _load(name: str) -> ModuleType:
    mod_name = f"_curate_ref_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, REF / f"{name}_ref.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _hostile() -> list[tuple[str | None, str | None, str | None]]:
    """(response, task, language) triples that exercise every branch."""
    rng = random.Random(7)
    lines = [
        "Wait, let me recompute the total again to make sure the value is correct.",
        "So 3 times 4 is 12, and 12 plus 3 is 15.",
    ]
    zh = "所以答案是十二。我们需要检查一下这个步骤，因此结果正确。"
    ja = "まず、問題を読みます。答えはカタカナでテストです。"
    ko = "먼저 문제를 읽어 보겠습니다. 답은 열두 개입니다."
    ru = "Подождите, мне нужно ещё раз проверить это вычисление, прежде чем продолжить."
    ar = "انتظر، يجب أن أتحقق من هذا الحساب مرة أخرى قبل المتابعة."
    fr = "Attendez, je dois vérifier ce calcul encore une fois avant de continuer avec la suite."
    blob = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkr" * 2
    texts: list[str | None] = [
        "",
        " ",
        "\n\n\n",
        "</think>",
        "   </think>  answer only",
        "<think></think>",
        "<think>\n</think>\n",
        "no think tags at all, just a plain sentence with enough words to count here.",
        "<think>never closed " + "and it goes on " * 50,
        "<think>a</think>b</think>c</think>the end",
        "<think>\n" + "\n".join(lines * 40) + "\n</think>\n15",
        "<think>\n" + " ".join(lines * 60) + "\n</think>\n15",
        "<think>\n" + "x" * 200_000 + "\n</think>\nhuge line",
        "<think>\n" + ("word " * 20_000) + "\n</think>\nhuge paragraph",
        "<think>\nLet me think.\n" + "!" * 80 + "\n" + "…" * 40 + "\n" + "。" * 33 + "\n</think>\n3",
        f"<think>\nThe key is {blob}\nand 1234567890" * 3 + "1" * 120 + "\n</think>\nok",
        "<think>\nLet me code it.\n```python\nprint(sum(range(101)))\n```\n```\nunclosed\n</think>\n5050",
        f"<think>\n{zh}\n{zh}\n</think>\n{zh}",
        f"<think>\nThe answer is 12. {zh} this is the key step.\n</think>\n12",
        f"<think>\n{ja}\n{ja}\n</think>\n{ja}",
        f"<think>\n{ko} and then {ko}\n</think>\n{ko}",
        f"<think>\n{ru}\n{ar}\nSo we continue in English with the computation of the sum.\n</think>\n{ru}",
        f"<think>\n{fr}\n{fr}\n</think>\nLa réponse est 12.",
        f"<think>\nMixed: {zh} {ru} {ja} {ko} {ar} {fr}\n</think>\n{zh}{ko}",
        "<think>\n$$x^2$$ \\[y\\] \\(z\\) \\begin{align}a\\end{align} $5 and $10 <<2*3=6>>"
        " http://x.y/z `c`\n</think>\n",
        "<think>\n" + "中" * 3000 + "\n</think>\n" + "文" * 10,
        "<think>\n\t  leading tabs and spaces  \n\n   \n</think>",
        None,
    ]
    for defect in (None, "chinese", "french", "loop", None, None):
        for size in (300, 2500, 8192):
            texts.append(make_trace(rng, size, defect))  # type: ignore[arg-type]
    tasks = ["math", "code", "general", None]
    langs = ["en", "zh", None, "fr", "ja", "ru"]
    return [(t, tasks[i % len(tasks)], langs[i % len(langs)]) for i, t in enumerate(texts)]


def _frame() -> pl.DataFrame:
    rows = _hostile()
    df = pl.DataFrame(
        {
            "response": [r for r, _, _ in rows],
            "task": [t for _, t, _ in rows],
            "language": [lang for _, _, lang in rows],
        },
        schema={"response": pl.String, "task": pl.String, "language": pl.String},
    )
    return ensure_reasons(df)


READABILITY_CONFIGS = [
    ReadabilityConfig(),
    ReadabilityConfig(ngram_n=1, repeat_min_line_chars=0, compression_window=0, min_answer_words=3),
    ReadabilityConfig(ngram_n=3, max_ngram_repeat_frac=0.0, max_repeat_line_frac=0.0, cjk_chars_per_word=2.0),
]
LANGUAGE_CONFIGS = [
    LanguageConfig(),
    LanguageConfig(default_language="zh", min_words=1, min_chars=1, foreign_min_words=1),
    LanguageConfig(max_foreign_segments=2, en_gate_min_hits=100),
]


@pytest.mark.parametrize("cfg", READABILITY_CONFIGS, ids=range(len(READABILITY_CONFIGS)))
def test_readability_same_as_reference(cfg: ReadabilityConfig) -> None:
    ref = _load("readability")
    df = _frame()
    for part in (df, df.slice(3, 1), df.filter(pl.col("response").is_not_null())):
        want = ref.ReadabilityCheck(ref.ReadabilityConfig(**_fields(cfg))).run(part)
        assert_frame_equal(ReadabilityCheck(cfg).run(part), want)


@pytest.mark.parametrize("cfg", LANGUAGE_CONFIGS, ids=range(len(LANGUAGE_CONFIGS)))
def test_language_same_as_reference(cfg: LanguageConfig) -> None:
    ref = _load("language")
    df = _frame().filter(pl.col("response").is_not_null())
    ref_cfg = ref.LanguageConfig(**_fields(cfg))
    for part in (df, df.slice(5, 2)):
        assert_frame_equal(LanguageCheck(cfg).run(part), ref.LanguageCheck(ref_cfg).run(part))
    texts, targets = df["response"], df["language"].fill_null("en")
    assert_frame_equal(language_segments(texts, targets, cfg), ref.language_segments(texts, targets, ref_cfg))


def test_bench_traces_same_as_reference() -> None:
    """The benchmark's own traces (clean 8 KB R1-style), in a batch as large as a shard's."""
    rng = random.Random(0)
    df = ensure_reasons(pl.DataFrame({"response": [make_trace(rng, 8192) for _ in range(600)], "task": ["math"] * 600}))
    ref_r, ref_l = _load("readability"), _load("language")
    assert_frame_equal(ReadabilityCheck().run(df), ref_r.ReadabilityCheck().run(df))
    assert_frame_equal(LanguageCheck().run(df), ref_l.LanguageCheck().run(df))


def _fields(cfg: Any) -> dict[str, Any]:
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}
