"""The format check, table-driven: R1 form, one closed <think> block, then a non-empty answer."""

from __future__ import annotations

import polars as pl
import pytest

from curate.checks.base import finalize
from curate.checks.format import FormatCheck, FormatConfig

R1_CASES = [
    ("<think>\n2+2=4\n</think>\nThe answer is \\boxed{4}.", "stop", []),
    ("2+2=4\n</think>\n\\boxed{4}", "stop", []),  # chat template pre-filled <think>
    ("  <think>x</think> ok", None, []),
    ("<think>\n2+2=4 and then", "stop", ["format.truncated"]),
    ("<think>x</think>\\boxed{4}", "length", ["format.truncated"]),
    ("The answer is 4.", "stop", ["format.missing_think"]),
    ("Sure! <think>x</think> 4", "stop", ["format.missing_think"]),
    ("<think>a</think>\n   \n", "stop", ["format.empty_answer"]),
    ("<think>a</think>b<think>c</think>d", "stop", ["format.multiple_think"]),
    ("<think>a</think>4<|im_end|>", "stop", ["format.special_token"]),
    ("<think>a<|endoftext|></think>4", "stop", ["format.special_token"]),
    ("<think>a</think>4<｜end▁of▁sentence｜>", "stop", ["format.special_token"]),
    ("<think>a\x00b</think>4", "stop", ["format.control_chars"]),  # a NUL from a diverging model
    ("<think>a</think>4 \ufffd", "stop", ["format.control_chars"]),  # bytes the tokenizer could not decode
    ("<think>a\tb\r\n</think>4", "stop", []),  # tab, CR and newline are text
    ("<think>| a | b |\n|---|---|</think>4", "stop", []),  # markdown tables are not tokens
    ("<think>所以答案是所以答案是</think>\n\nThe answer is 4.", "stop", []),  # multi-byte reasoning
]


@pytest.mark.parametrize(("response", "finish", "codes"), R1_CASES)
def test_r1_format(response: str, finish: str | None, codes: list[str]) -> None:
    df = pl.DataFrame(
        {"response": [response], "finish_reason": [finish]}, schema_overrides={"finish_reason": pl.String}
    )
    out = finalize(FormatCheck().run(df))
    assert out["reject_reasons"].to_list() == [codes]
    assert out["format_score"].to_list() == [0.0 if codes else 1.0]
    assert out["accepted"].to_list() == [not codes]


def test_r1_zero_template_needs_answer_tags() -> None:
    check = FormatCheck(FormatConfig(template="r1_zero"))
    df = pl.DataFrame(
        {
            "response": [
                "<think>x</think> <answer>4</answer>",
                "<think>x</think> 4",
                "<think>x</think><answer> </answer>",
            ]
        }
    )
    out = check.run(df)
    assert out["reject_reasons"].to_list() == [[], ["format.missing_answer_tag"], ["format.missing_answer_tag"]]


def test_keeps_height_and_other_columns() -> None:
    df = pl.DataFrame({"response": [c[0] for c in R1_CASES], "keep": list(range(len(R1_CASES)))})
    out = FormatCheck().run(df)
    assert out.height == df.height and out["keep"].to_list() == df["keep"].to_list()
