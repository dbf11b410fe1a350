"""The check protocol and the helpers every check shares.

A check is pure: it takes a Polars DataFrame and returns one of the same height with its declared
columns (``schemas/checks/<name>.yaml``) added and its reason codes appended to ``reject_reasons``.
It never drops rows, never does I/O and never imports Prefect. Row-scope checks see one batch at a
time; corpus-scope checks run after the row checks, once per run: dedup sees every row of the run at
once, a ``streams`` check (the judge) its rows batch by batch through ``run_stream``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

import polars as pl

from curate.checks.funnel import REASONS as REASONS
from curate.errors import CurateError
from curate.schema import CheckDecl, check_decls

Scope = Literal["row", "corpus"]
C = TypeVar("C")


class ConfigError(CurateError, ValueError):
    """A check or recipe configuration is invalid."""


class Check(Generic[C]):
    """The base of every check, built in or plugged in: a small class that declares its contract.

    A subclass sets ``name``, ``scope``, ``cost`` (run order: cheapest first; the judge is last),
    ``tasks`` (``None``: all), ``Config`` (a frozen dataclass) and ``reads`` (the columns it looks at),
    and writes :meth:`run`. What it writes (score columns) and the reason codes it may emit come from
    ``schemas/checks/<name>.yaml``; a plug-in check outside this repository sets ``declared`` instead.
    The declaration is checked when the class is defined, so a check cannot exist undeclared.
    """

    name: ClassVar[str]
    scope: ClassVar[Scope] = "row"
    cost: ClassVar[int]
    tasks: ClassVar[frozenset[str] | None] = None
    default_enabled: ClassVar[bool] = True
    Config: ClassVar[type[Any]]
    reads: ClassVar[tuple[str, ...]] = ("response",)
    declared: ClassVar[CheckDecl | None] = None
    # ``run`` may run in a thread beside other checks: it keeps no state between calls, needs no main
    # thread (signals) and starts no pools, and its heavy work releases the GIL (Polars, numpy, zlib).
    concurrent: ClassVar[bool] = False
    # A corpus check whose rows do not depend on each other (the judge: corpus scope so that it runs
    # last, once per run, its model loaded once): the runner feeds it the run's rows batch by batch
    # through ``run_stream``, so it never holds them all.
    streams: ClassVar[bool] = False

    config: C

    def __init__(self, config: C | None = None) -> None:
        self.config = config if config is not None else self.Config()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [a for a in ("name", "cost", "Config") if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"{cls.__qualname__}: a check declares {', '.join(missing)}")
        if cls.scope not in ("row", "corpus"):
            raise TypeError(f"{cls.__qualname__}: scope must be 'row' or 'corpus', not {cls.scope!r}")
        if not dataclasses.is_dataclass(cls.Config):
            raise TypeError(f"{cls.__qualname__}: Config must be a dataclass")
        if cls.declared is None and cls.decl().enabled != cls.default_enabled:  # schemas/checks/<name>.yaml
            raise TypeError(f"{cls.__qualname__}: default_enabled disagrees with its declaration's `enabled`")

    @classmethod
    def decl(cls) -> CheckDecl:
        """The check's declared columns and reason codes."""
        if cls.declared is not None:
            return cls.declared
        decl = check_decls().get(cls.name)
        if decl is None:
            raise TypeError(f"{cls.__qualname__}: no schemas/checks/{cls.name}.yaml declares check {cls.name!r}")
        return decl

    @classmethod
    def writes(cls) -> tuple[str, ...]:
        """Columns the check adds (besides appending to ``reject_reasons``)."""
        return tuple(c.name for c in cls.decl().columns)

    @classmethod
    def reasons(cls) -> Mapping[str, str]:
        """Reason codes the check may emit, with their meanings."""
        return cls.decl().reasons

    def needs(self) -> tuple[str, ...]:
        """Columns the corpus runner loads for this check (configurable columns included)."""
        return self.reads

    def run(self, df: pl.DataFrame) -> pl.DataFrame:
        raise NotImplementedError

    def run_stream(self, frames: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """``run`` over consecutive batches of one run's rows (a ``streams`` check may keep what it
        loaded across them)."""
        for df in frames:
            yield self.run(df)


def contract_violations(check: Check[Any], before: pl.DataFrame, after: pl.DataFrame) -> list[str]:
    """What ``check`` did to ``before`` that its declaration does not allow (tests assert it is empty):
    a changed height, an undeclared column, an undeclared reason code."""
    problems = []
    if after.height != before.height:
        problems.append(f"{check.name}: {before.height} rows in, {after.height} out")
    allowed = {*check.writes(), REASONS, *before.columns}
    problems += [f"{check.name}: wrote undeclared column {c!r}" for c in after.columns if c not in allowed]
    if REASONS in after.columns:
        emitted = set(after.select(pl.col(REASONS).explode().drop_nulls()).to_series().to_list())
        if REASONS in before.columns:
            emitted -= set(before.select(pl.col(REASONS).explode().drop_nulls()).to_series().to_list())
        problems += [f"{check.name}: emitted undeclared reason {r!r}" for r in sorted(emitted - set(check.reasons()))]
    return problems


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
    masks = df.select(
        [
            (m if isinstance(m, pl.Expr) else pl.lit(m)).fill_null(False).alias(f"_m{i}")
            for i, m in enumerate(codes.values())
        ]
    )
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


def make_config(cls: type[C], raw: Mapping[str, Any] | None, where: str) -> C:
    """Build a frozen config dataclass from a mapping; unknown keys are an error, not ignored."""
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls))}
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
