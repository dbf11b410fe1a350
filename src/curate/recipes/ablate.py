"""Filter ablation on checked samples: the verdicts as if one check (a reason-code prefix) had not run.

Pure functions over a ``checked_sample`` frame. A *filter* is a reason-code prefix (``format``, ``math``,
``lang``, ...; ``correctness`` stands for ``math`` and ``code`` together). Switching a filter off drops
its codes from ``reject_reasons`` and recomputes ``accepted``: a row whose only reasons were that
filter's becomes accepted again; a row that another check also rejected stays rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from curate.checks.base import ConfigError
from curate.checks.funnel import REASONS

# Run order of the built-in checks (cheapest first): the order variants are listed in.
ORDER: tuple[str, ...] = ("format", "lang", "readability", "math", "code", "decontam", "dedup", "judge")
ALIASES: dict[str, tuple[str, ...]] = {"correctness": ("math", "code")}


def prefix(code: str) -> str:
    """``"math.incorrect"`` -> ``"math"``."""
    return code.split(".", 1)[0]


def _order_key(name: str) -> tuple[int, str]:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def rejecting_filters(checked: pl.DataFrame) -> list[str]:
    """Prefixes of every reason code present in ``checked`` (each rejected at least one row), in run order."""
    require_checked(checked)
    codes = checked.select(pl.col(REASONS).explode().drop_nulls().unique()).to_series().to_list()
    return sorted({prefix(c) for c in codes}, key=_order_key)


def prefixes_of(name: str) -> tuple[str, ...]:
    """The reason-code prefixes a filter name stands for."""
    return ALIASES.get(name, (name,))


def resolve_filters(requested: Sequence[str] | None, checked: pl.DataFrame, known: Iterable[str]) -> list[str]:
    """The filters to ablate: ``requested`` (validated against ``known`` prefixes and aliases), else every
    filter that rejected at least one row of ``checked``. A :class:`ConfigError` for an unknown name."""
    if not requested:
        found = rejecting_filters(checked)
        if not found:
            raise ConfigError("no check rejected any row of the checked set: there is no filter to ablate")
        return found
    known_set = set(known) | set(ALIASES)
    unknown = [f for f in requested if f not in known_set]
    if unknown:
        raise ConfigError(
            f"unknown filter(s) {', '.join(unknown)}; choose from {', '.join(sorted(known_set, key=_order_key))}"
        )
    if len(set(requested)) != len(requested):
        raise ConfigError(f"filters named twice: {', '.join(requested)}")
    return list(requested)


def require_checked(df: pl.DataFrame) -> None:
    missing = [c for c in (REASONS, "accepted") if c not in df.columns]
    if missing:
        raise ConfigError(
            f"not a checked set (no {', '.join(missing)} column): pass a *_checked version from curate check/run"
        )


def without_filter(checked: pl.DataFrame, off: str | Iterable[str]) -> pl.DataFrame:
    """``checked`` with the reason codes of the filter(s) ``off`` dropped and ``accepted`` recomputed.

    Rows with no reason keep their ``accepted``; every other column is unchanged, height and order too."""
    require_checked(checked)
    names = [off] if isinstance(off, str) else list(off)
    prefixes = [p for name in names for p in prefixes_of(name)]
    if not prefixes:
        return checked
    ignored = pl.any_horizontal([pl.element().str.starts_with(f"{p}.") for p in prefixes])
    kept = pl.col(REASONS).list.eval(pl.element().filter(~ignored))
    had = pl.col(REASONS).list.len().fill_null(0) > 0
    accepted = pl.when(had).then(kept.list.len() == 0).otherwise(pl.col("accepted"))
    return checked.with_columns(kept.alias(REASONS), accepted.alias("accepted"))


def readmitted(checked: pl.DataFrame, off: str | Iterable[str]) -> int:
    """Rows that switching ``off`` accepts again (rejected only by that filter)."""
    after = without_filter(checked, off)
    return int((after["accepted"] & ~checked["accepted"].fill_null(False)).sum())
