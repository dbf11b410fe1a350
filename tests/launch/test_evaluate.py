"""Evaluation of a checkpoint on held-out prompts: sampling on the fast toy, scoring by curate's checks."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.demo import ExperimentConfig, build_toy_model, make_problems
from curate.errors import CurateError
from curate.launch.evaluate import EvalConfig, EvalError, evaluate, score, summarize


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_model(tmp_path_factory.mktemp("toy") / "base", ExperimentConfig.fast().toy)


def _prompts(n: int = 3) -> pl.DataFrame:
    return pl.DataFrame([p.row() for p in make_problems(0, n, start=500)])


def test_evaluate_samples_n_per_prompt_and_is_seeded(toy: Path) -> None:
    settings = EvalConfig(n=2, max_tokens=32, batch_size=4)
    rep = evaluate(toy, _prompts(), settings)
    assert (rep.n_prompts, rep.n_samples) == (3, 6)
    assert 0.0 <= rep.pass_at_1 <= 1.0 and 0.0 <= rep.format_ok_rate <= 1.0
    assert rep.mean_length > 0 and 0 < rep.mean_tokens <= 32
    assert sum(v for k, v in rep.reasons.items() if k.startswith("math.")) <= rep.n_samples
    d = rep.to_dict()
    assert {"pass_at_1", "mean_length", "lang_mix_rate", "format_ok_rate", "n_prompts", "n_samples", "reasons"} <= set(
        d
    )
    again = evaluate(toy, _prompts(), settings)
    assert (again.pass_at_1, again.mean_length, again.reasons) == (rep.pass_at_1, rep.mean_length, rep.reasons)


def _frame(responses: list[str], refs: list[str], pids: list[str], lang: str = "en") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "prompt_id": pids,
            "prompt": ["q"] * len(pids),
            "task": ["math"] * len(pids),
            "reference": refs,
            "language": [lang] * len(pids),
            "response": responses,
            "finish_reason": ["stop"] * len(pids),
            "tokens_out": [10] * len(pids),
        }
    )


def test_scoring_uses_the_verifier_format_and_language_checks() -> None:
    ok = "<think>\nTwo plus two makes four, so the answer is four.\n</think>\nThe answer is \\boxed{4}."
    wrong = "<think>\nTwo plus two makes five, so the answer is five.\n</think>\nThe answer is \\boxed{5}."
    unclosed = "<think>\nTwo plus two"
    mixed = "<think>\nTwo plus two makes four. 二加二等于四，所以答案是四。\n</think>\nThe answer is \\boxed{4}."
    df = _frame([ok, wrong, unclosed, mixed], ["4"] * 4, ["a", "a", "b", "b"])
    rep = summarize(score(df))
    assert rep.n_prompts == 2 and rep.n_samples == 4
    assert rep.pass_at_1 == pytest.approx((0.5 + 0.5) / 2)
    assert rep.format_ok_rate == pytest.approx(0.75)
    assert rep.lang_mix_rate == pytest.approx(0.25)
    assert rep.reasons["math.incorrect"] == 1 and rep.reasons["format.truncated"] == 1
    assert rep.per_task == {"math": pytest.approx(0.5)}


def test_bad_inputs_are_user_errors(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="prompt_id"):
        evaluate(toy, pl.DataFrame({"prompt": ["x"]}))
    with pytest.raises(EvalError, match="no evaluation prompts"):
        evaluate(toy, _prompts().head(0))
    with pytest.raises(EvalError, match="reference"):
        evaluate(toy, _prompts().drop("reference"))
    with pytest.raises(EvalError, match="checkpoint"):
        evaluate(tmp_path / "nope", _prompts())
    with pytest.raises(CurateError, match="unknown evaluation check"):
        EvalConfig(checks=("format", "judge"))
