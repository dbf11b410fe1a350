"""The check contract: every check declares what it reads, writes and may emit, and does only that.

Emitting a reason code that ``schemas/checks/<name>.yaml`` does not declare, writing an undeclared
column or changing the height is an error here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest

from curate.checks.base import Check, contract_violations, ensure_reasons
from curate.checks.registry import BUILTIN, build_checks, load_class
from curate.errors import CurateError
from curate.io.rows import fill_ids
from curate.schema import CheckDecl, check_decls

ROWS = [
    ("math", "What is 2 + 2?", "<think>2 + 2 = 4</think> The answer is \\boxed{4}.", "4"),
    ("math", "What is 3 * 3?", "<think>3 * 3 = 10</think> \\boxed{10}", "9"),
    ("math", "What is 1 + 1?", "no think block at all", "2"),
    ("math", "What is 5 - 3?", "<think>" + "five minus three " * 400 + "</think> 2", "x^"),
    ("general", "Say hi.", "<think>greet</think> 你好，我很高兴见到你，今天天气很好。", None),
    ("general", "Say hi.", "<think>greet</think> Hello there!<|im_end|>", None),
    ("code", "Write f returning 1.", "<think>easy</think>\n```python\ndef f():\n    return 1\n```", None),
]


def _frame() -> pl.DataFrame:
    df = pl.DataFrame(
        [{"task": t, "prompt": p, "response": r, "reference": ref} for t, p, r, ref in ROWS],
        schema={"task": pl.String, "prompt": pl.String, "response": pl.String, "reference": pl.String},
    )
    df = df.with_columns(
        pl.lit("en").alias("language"),
        pl.lit("stop").alias("finish_reason"),
        pl.lit("def check(f):\n    assert f() == 1\n").alias("tests"),
        pl.lit("f").alias("entry_point"),
        pl.lit(True).alias("accepted"),
    )
    return ensure_reasons(fill_ids(df))


CHEAP = ["format", "readability", "lang", "math", "decontam", "dedup"]


@pytest.mark.parametrize("name", CHEAP + ["code"])
def test_builtin_check_keeps_its_contract(name: str) -> None:
    if name == "code" and shutil.which("bwrap") is None:
        pytest.skip("the code check needs bubblewrap")
    (check,) = build_checks({}, only=[name])
    before = _frame()
    after = check.run(before)
    assert contract_violations(check, before, after) == []
    assert set(check.reads) <= set(before.columns) | {"io_tests"}


def test_every_declared_check_has_a_class_and_the_other_way_round() -> None:
    assert set(check_decls()) == set(BUILTIN)
    for name in BUILTIN:
        cls = load_class(name)
        assert issubclass(cls, Check) and cls.name == name
        assert set(cls.reasons()) == set(check_decls()[name].reasons)
        assert all(code.startswith(name + ".") for code in cls.reasons())


@dataclass(frozen=True)
class _Cfg:
    x: int = 1


def test_the_registry_knows_which_builtins_are_off_without_importing_them() -> None:
    # build_checks skips a check declared off unimported: the declarations must say what the classes say.
    assert {n for n in BUILTIN if not load_class(n).default_enabled} == {
        n for n, d in check_decls().items() if not d.enabled
    }
    assert "judge" not in {c.name for c in build_checks()}
    with pytest.raises(CurateError, match="engine"):  # enabled, it is built (and wants its engine)
        build_checks({"judge": {"enabled": True}})


def test_a_check_whose_default_disagrees_with_its_declaration_cannot_be_defined() -> None:
    with pytest.raises(TypeError, match="default_enabled"):

        class Quiet(Check[_Cfg]):  # schemas/checks/lang.yaml does not say `enabled: false`
            name = "lang"
            cost = 1
            Config = _Cfg
            default_enabled = False


def test_an_undeclared_check_cannot_be_defined() -> None:
    with pytest.raises(TypeError, match="no schemas/checks/nope.yaml"):

        class Nope(Check[_Cfg]):  # noqa: F841
            name = "nope"
            cost = 1
            Config = _Cfg


def test_a_plugin_declares_its_codes_on_the_class_and_is_held_to_them() -> None:
    class Shouty(Check[_Cfg]):
        name = "shouty"
        cost = 5
        Config = _Cfg
        declared = CheckDecl("shouty", "all caps", (), {"shouty.caps": "The answer is all capitals"})

        def run(self, df: pl.DataFrame) -> pl.DataFrame:
            return df.with_columns(pl.lit(["shouty.caps", "shouty.other"]).alias("reject_reasons"))

    before = _frame()
    problems = contract_violations(Shouty(), before, Shouty().run(before))
    assert problems == ["shouty: emitted undeclared reason 'shouty.other'"]


def test_registry_refuses_a_plugin_that_is_not_a_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import curate.checks.registry as registry

    monkeypatch.setitem(registry.BUILTIN, "bogus", "collections:OrderedDict")
    with pytest.raises(CurateError, match="does not subclass"):
        registry.load_class("bogus")


def test_make_config_is_typed_and_strict() -> None:
    from curate.checks.base import ConfigError, make_config

    cfg: Any = make_config(_Cfg, {"x": 3}, "t")
    assert cfg == _Cfg(3)
    with pytest.raises(ConfigError, match="unknown option"):
        make_config(_Cfg, {"y": 1}, "t")
