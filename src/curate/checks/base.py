"""The check protocol and the helpers every check shares.

A check is pure: it takes a Polars DataFrame and returns one of the same height with its declared
columns (``schemas/checks/<name>.yaml``) added and its reason codes appended to ``reject_reasons``.
It never drops rows, never does I/O and never imports Prefect. Row-scope checks see one batch at a
time; corpus-scope checks (dedup, the judge) see every row of the run at once, after the row checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import polars as pl

from curate.checks.funnel import REASONS
from curate.errors import CurateError
from curate.schema import check_decls

Scope = Literal["row", "corpus"]


class ConfigError(CurateError, ValueError):
    """A check or recipe configuration is invalid."""


@runtime_checkable
class Check(Protocol):
    """What the runner needs of a check. ``config`` is a frozen dataclass instance."""

    name: ClassVar[str]
    scope: ClassVar[Scope]
    cost: ClassVar[int]  # run order: cheapest first; the judge is last
    tasks: ClassVar[frozenset[str] | None]  # tasks it applies to (None: all)

    def run(self, df: pl.DataFrame) -> pl.DataFrame: ...


def ensure_reasons(df: pl.DataFrame) -> pl.DataFrame:
    """Add an empty ``reject_reasons`` list column when the frame has none."""
    if REASONS in df.columns:
        return df
    return df.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(REASONS))


def add_reasons(df: pl.DataFrame, codes: Mapping[str, pl.Expr | pl.Series]) -> pl.DataFrame:
    """Append each code to ``reject_reasons`` where its boolean mask is true (nulls = false).

    Masks are expressions over ``df`` or precomputed boolean Series of its height. Rows with no new code
    are left untouched, so the common all-pass case costs one pass over the masks.
    """
    df = ensure_reasons(df)
    if not codes:
        return df
    masks = df.select([(m if isinstance(m, pl.Expr) else pl.lit(m)).fill_null(False).alias(f"_m{i}")
                       for i, m in enumerate(codes.values())])
    if not masks.select(pl.any_horizontal(pl.all()).any()).item():
        return df
    parts = [pl.when(pl.col(f"_m{i}")).then(pl.lit(code)).otherwise(None) for i, code in enumerate(codes)]
    new = masks.select(pl.concat_list(parts).list.drop_nulls().alias("_new")).to_series()
    return df.with_columns(pl.concat_list(pl.col(REASONS), pl.lit(new)).alias(REASONS))


def has_reason_prefix(prefix: str) -> pl.Expr:
    """True where any reason starts with ``prefix`` (e.g. ``"format."``)."""
    return pl.col(REASONS).list.eval(pl.element().str.starts_with(prefix)).list.any()


def finalize(df: pl.DataFrame) -> pl.DataFrame:
    """Set ``accepted`` from ``reject_reasons`` (call after the last check)."""
    df = ensure_reasons(df)
    return df.with_columns((pl.col(REASONS).list.len() == 0).alias("accepted"))


def declared_columns(name: str) -> tuple[str, ...]:
    return tuple(c.name for c in check_decls()[name].columns)


def make_config(cls: type[Any], raw: Mapping[str, Any] | None, where: str) -> Any:
    """Build a frozen config dataclass from a mapping; unknown keys are an error, not ignored."""
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    for k, v in list(raw.items()):
        default = fields[k].default
        if isinstance(default, tuple) and isinstance(v, list):
            raw[k] = tuple(v)
        elif isinstance(default, frozenset) and isinstance(v, list):
            raw[k] = frozenset(v)
    try:
        return cls(**raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e
