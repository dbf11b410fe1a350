"""The ``lang`` check and the language-consistency reward, on hand-labelled traces (real fastText model)."""

from __future__ import annotations

import json
from importlib.resources import files

import polars as pl
import pytest

from curate.checks.base import declared_columns, make_config
from curate.quality import LanguageCheck, LanguageConfig, language_consistency, language_consistency_batch
from curate.quality.language import language_segments
from curate.schema import check_decls

EN_MATH = (
    "<think>\nOkay, so I need to find all real $x$ with $x^2 - 5x + 6 = 0$. Let me factor the quadratic.\n\n"
    "We want two numbers that multiply to $6$ and add to $-5$: that's $-2$ and $-3$. So "
    "$(x-2)(x-3) = 0$.\n\nWait, let me double-check by expanding: $(x-2)(x-3) = x^2 - 3x - 2x + 6 = "
    "x^2 - 5x + 6$. Yes.\n\nHmm.\n\nSo the roots are $x = 2$ and $x = 3$, and their sum is $5$, which "
    "matches Vieta's formula $-b/a = 5$.\n</think>\n\nThe solutions are $x = 2$ and $x = 3$, so the "
    "answer is $\\boxed{2, 3}$."
)
EN_DENSE_MATH = (
    "<think>\nLet $f(x) = \\frac{3x+1}{x-2}$. Then \\[f^{-1}(y) = \\frac{2y+1}{y-3}\\] and "
    "\\(f(f^{-1}(y)) = y\\).\n\n\\begin{align*}\na_1 &= 3 \\\\\na_2 &= 7\n\\end{align*}\n"
    "$$\\sum_{k=1}^{n} k^2 = \\frac{n(n+1)(2n+1)}{6}$$\nSo $S_{10} = 385$.\n</think>\n$\\boxed{385}$"
)
EN_CODE = (
    "<think>\nI need a function that reverses a list. Let me write it with slicing.\n\n```python\n"
    "def reverse_list(xs):\n    # devuelve la lista invertida\n    return xs[::-1]\n```\n\n"
    "The helper `reverse_list` uses `xs[::-1]`, which is the idiomatic way in Python.\n</think>\n"
    "Use `xs[::-1]`."
)
EN_NAMES = (
    "<think>\nThe train leaves Zürich at 9:15 and reaches Genève at 12:03 😀. The café in São Paulo "
    "charges R$ 12, and the Straße is 3 km long. Let me compute the travel time: 2 hours 48 minutes.\n"
    "</think>\nThe trip takes 2 h 48 min."
)
EN_GSM8K = (
    "<think>\nNatalia sold 48 clips in April. In May she sold half as many, so 48/2 = 24 clips. "
    "Altogether that is 48 + 24 = 72 clips. Weng earns $12 an hour and worked 50 minutes, so she earned "
    "$12 * 50/60 = $10.\n</think>\nNatalia sold 72 clips."
)
ZH_IN_EN = (
    "<think>\nOkay, let me work out the total cost of the apples first. Each apple costs 3 dollars and "
    "there are 4 apples, 所以 the total is 12 dollars.\n</think>\nThe total is 12 dollars."
)
ZH_SENTENCE_IN_EN = (
    "<think>\nWe need the area of the rectangle with sides 3 and 4. 面积等于长乘以宽，所以面积是十二。 "
    "So the area is 12 square units.\n</think>\nThe area is 12."
)
FR_IN_EN = (
    "<think>\nLet me compute how many marbles each child gets when we share them equally between the "
    "children. Attendez, je dois vérifier ce calcul encore une fois avant de continuer. So each child "
    "gets 6 marbles because 24 divided by 4 is 6.\n</think>\nEach child gets 6 marbles."
)
ES_IN_EN = (
    "<think>\nThe rectangle has a perimeter of 20 and we want to maximise its area. Primero necesito "
    "calcular el área máxima del rectángulo con este perímetro. The maximum is at a square of side 5, "
    "so the area is 25.\n</think>\nThe maximum area is 25."
)
RU_IN_EN = (
    "<think>\nWe need the sum of the first ten positive integers. Сначала нужно сложить все числа от "
    "одного до десяти. Using the formula n(n+1)/2 with n = 10 we get 55, which is the answer.\n</think>\n55"
)
RU_WORD_IN_EN = (
    "<think>\nThe speed is the distance divided by the time, итого 60 kilometres per hour for the "
    "whole trip, which is what we expected.\n</think>\n60 km/h"
)
JA_IN_EN = (
    "<think>\nLet me find the number of ways to arrange the three books on the shelf. まず、最初の本を"
    "選びます。 Then there are 3 times 2 times 1 = 6 arrangements in total.\n</think>\n6"
)
ALL_FR = (
    "<think>\nJe dois trouver la valeur de x dans l'équation. Soustrayons trois des deux côtés, puis "
    "divisons par deux. Donc la valeur de x est égale à deux, ce qui vérifie bien l'équation de départ.\n"
    "</think>\nLa réponse est 2."
)
ALL_ES = (
    "<think>\nTenemos que encontrar el número total de manzanas. María tiene cinco manzanas y Juan tiene "
    "el doble, así que Juan tiene diez. En total tienen quince manzanas entre los dos.\n</think>\n"
    "La respuesta es 15."
)
ALL_ZH = (
    "<think>\n我们需要求出方程的解。首先，两边同时减去三，得到2x等于4。然后两边同时除以二，所以x等于二。"
    "让我再检查一下：把x等于二代入原方程，左边等于七，右边也等于七，所以答案正确。\n</think>\n答案是 $x=2$。"
)
ZH_WITH_TERMS = (
    "<think>\n我们可以用 Python 的 sorted 函数来排序，时间复杂度是 O(n log n)。然后用 for 循环遍历列表，"
    "找到最大值。这个方法很简单。\n</think>\n用 sorted 即可。"
)
EN_IN_ZH = (
    "<think>\n我们需要计算三角形的面积。底是六，高是四。Let me double check this calculation carefully with "
    "the formula for the area of a triangle. 所以面积是十二。\n</think>\n面积是12。"
)
ALL_RU = (
    "<think>\nНам нужно найти сумму всех чисел от одного до ста. Воспользуемся формулой суммы "
    "арифметической прогрессии: n(n+1)/2. Подставляем n = 100 и получаем 5050.\n</think>\nОтвет: 5050."
)
ALL_JA = (
    "<think>\nまず、方程式の両辺から3を引きます。次に、両辺を2で割ります。したがって、xは2になります。"
    "最後に、元の式に代入して確認します。\n</think>\n答えは2です。"
)
EN_ANSWER_IN_FR = (
    "<think>\nNous devons calculer le nombre total de billes dans les trois boîtes identiques. Chaque "
    "boîte contient huit billes, donc il y en a vingt-quatre au total.\n</think>\nThe answer is that "
    "there are twenty-four marbles in the three boxes altogether."
)

# (name, trace, target language, expected lang.* codes)
CASES: list[tuple[str, str, str, set[str]]] = [
    ("english math", EN_MATH, "en", set()),
    ("dense latex", EN_DENSE_MATH, "en", set()),
    ("code with a spanish comment", EN_CODE, "en", set()),
    ("proper nouns, emoji", EN_NAMES, "en", set()),
    ("gsm8k currency", EN_GSM8K, "en", set()),
    ("chinese word in english", ZH_IN_EN, "en", {"lang.mixed"}),
    ("chinese sentence in english", ZH_SENTENCE_IN_EN, "en", {"lang.mixed"}),
    ("french sentence in english", FR_IN_EN, "en", {"lang.mixed"}),
    ("spanish sentence in english", ES_IN_EN, "en", {"lang.mixed"}),
    ("russian sentence in english", RU_IN_EN, "en", {"lang.mixed"}),
    ("russian word in english", RU_WORD_IN_EN, "en", {"lang.mixed"}),
    ("japanese sentence in english", JA_IN_EN, "en", {"lang.mixed"}),
    ("all french, english target", ALL_FR, "en", {"lang.wrong_language"}),
    ("all spanish, english target", ALL_ES, "en", {"lang.wrong_language"}),
    ("all chinese, english target", ALL_ZH, "en", {"lang.wrong_language"}),
    ("all french, french target", ALL_FR, "fr", set()),
    ("all spanish, spanish target", ALL_ES, "es", set()),
    ("pure chinese target", ALL_ZH, "zh", set()),
    ("chinese with english terms", ZH_WITH_TERMS, "zh", set()),
    ("region tag zh-CN", ALL_ZH, "zh-CN", set()),
    ("english sentence in chinese", EN_IN_ZH, "zh", {"lang.mixed"}),
    ("russian target", ALL_RU, "ru", set()),
    ("russian, english target", ALL_RU, "en", {"lang.wrong_language"}),
    ("japanese target", ALL_JA, "ja", set()),
    ("japanese, chinese target", ALL_JA, "zh", {"lang.wrong_language"}),
    ("english answer after french reasoning", EN_ANSWER_IN_FR, "fr", {"lang.mixed"}),
]


@pytest.fixture(scope="module")
def checked() -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "sample_id": [c[0] for c in CASES],
            "response": [c[1] for c in CASES],
            "language": [c[2] for c in CASES],
        }
    )
    return LanguageCheck().run(df)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_table(checked: pl.DataFrame, i: int) -> None:
    row = checked.row(i, named=True)
    got = {r for r in row["reject_reasons"] if r.startswith("lang.")}
    assert got == CASES[i][3], (CASES[i][0], row)


def test_columns_declared_and_typed(checked: pl.DataFrame) -> None:
    decl = check_decls()["lang"]
    assert set(declared_columns("lang")) <= set(checked.columns)
    assert set(decl.reasons) == {"lang.mixed", "lang.wrong_language"}
    assert checked.schema["lang_target_share"] == pl.Float64
    assert checked.schema["lang_foreign_segments"] == pl.Int32
    assert checked.height == len(CASES)
    assert checked["sample_id"].to_list() == [c[0] for c in CASES]  # order kept


def test_detected_language(checked: pl.DataFrame) -> None:
    by_name = {r["sample_id"]: r for r in checked.iter_rows(named=True)}
    assert by_name["english math"]["lang_detected"] == "en"
    assert by_name["all french, english target"]["lang_detected"] == "fr"
    assert by_name["pure chinese target"]["lang_detected"] == "zh"
    assert by_name["russian target"]["lang_detected"] == "ru"
    assert by_name["japanese target"]["lang_detected"] == "ja"
    assert by_name["chinese word in english"]["lang_foreign_segments"] == 1


def test_consistency_reward() -> None:
    assert language_consistency(EN_MATH) == 1.0
    assert language_consistency(ALL_ZH, "zh") == 1.0
    assert language_consistency(ALL_FR) == 0.0
    mixed = language_consistency(ZH_IN_EN)
    assert 0.8 < mixed < 1.0  # one two-character word among ~30 English words
    assert language_consistency("$x = 3$", "en") == 1.0  # nothing to identify: no penalty
    assert language_consistency_batch([EN_MATH, ALL_FR, ALL_FR], ["en", "en", "fr"]) == [1.0, 0.0, 1.0]
    assert language_consistency_batch([], "en") == []


def test_no_think_block_and_null_language() -> None:
    df = pl.DataFrame(
        {"response": [ALL_FR.replace("</think>", ""), EN_MATH], "language": [None, None]},
        schema={"response": pl.String, "language": pl.String},
    )
    out = LanguageCheck().run(df)
    assert out["reject_reasons"].to_list() == [["lang.wrong_language"], []]
    # No language column at all: the default target applies.
    out = LanguageCheck(LanguageConfig(default_language="fr")).run(df.drop("language"))
    assert out["reject_reasons"].to_list() == [[], ["lang.wrong_language"]]


def test_existing_reasons_are_kept() -> None:
    df = pl.DataFrame({"response": [ALL_FR], "reject_reasons": [["format.truncated"]]})
    out = LanguageCheck().run(df)
    assert out["reject_reasons"].to_list() == [["format.truncated", "lang.wrong_language"]]


def test_config_thresholds() -> None:
    df = pl.DataFrame({"response": [ZH_IN_EN]})
    assert LanguageCheck(LanguageConfig(max_foreign_segments=1)).run(df)["reject_reasons"].to_list() == [[]]
    cfg = make_config(LanguageConfig, {"wrong_language_below": 0.99, "min_counted_words": 1}, "t")
    assert LanguageCheck(cfg).run(df)["reject_reasons"].to_list() == [["lang.wrong_language"]]


def test_segments_explain_the_score() -> None:
    segs = language_segments(pl.Series([ZH_IN_EN]), pl.Series(["en"]))
    foreign = segs.filter(~pl.col("is_target"))
    assert foreign["label"].to_list() == ["zh"]
    assert foreign["words"].to_list() == pytest.approx([2 / 1.5])


def test_langdetect_second_backend() -> None:
    # fastText hesitates on this English sentence (top label "it", but "en" too probable to call it
    # foreign): alone it is left uncounted; langdetect, when enabled, settles it as English.
    text = pl.Series(["Karen earns money per hour"])
    plain = language_segments(text, pl.Series(["en"]))
    assert plain.height == 0
    second = language_segments(text, pl.Series(["en"]), LanguageConfig(short_backend="langdetect"))
    assert second["label"].to_list() == ["en"] and second["is_target"].to_list() == [True]


def test_false_positive_rate_on_english_solutions() -> None:
    """Hand-written English solutions (MATH-500, shipped) must almost never be flagged."""
    path = files("curate") / "data" / "benchmarks" / "math500.jsonl"
    with path.open(encoding="utf-8") as f:
        sols = [json.loads(line)["solution"] for line in f if line.strip()]
    out = LanguageCheck().run(pl.DataFrame({"response": sols}))
    flagged = out.filter(pl.col("reject_reasons").list.len() > 0)
    assert flagged.height <= 2, flagged["response"].to_list()
    assert out["lang_target_share"].mean() > 0.999  # type: ignore[operator]


def test_empty_frame() -> None:
    out = LanguageCheck().run(pl.DataFrame({"response": []}, schema={"response": pl.String}))
    assert out.height == 0 and "lang_target_share" in out.columns
