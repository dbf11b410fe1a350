"""The funnel: how many rows went in, how many were accepted, and how many carry each reason code.

One type for the runner, the recipes, the flows, the CLI and the plots. A row can carry several reasons,
so the counts per reason add up to more than the rejected rows. In a manifest (and in JSON) a funnel is
the flat mapping ``{"total": N, "accepted": A, "<reason>": n, ...}`` it always was; :meth:`Funnel.to_dict`
and :meth:`Funnel.from_dict` convert, so nothing outside this module filters out ``total`` by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import polars as pl

REASONS = "reject_reasons"
TOTALS = ("total", "accepted")


def _frozen(counts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType({k: int(v) for k, v in counts.items() if v})


@dataclass(frozen=True, slots=True)
class FunnelRow:
    reason: str
    rows: int
    share: float  # of all rows

    @property
    def check(self) -> str:
        return self.reason.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Funnel:
    total: int = 0
    accepted: int = 0
    reasons: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", _frozen(self.reasons))

    @property
    def rejected(self) -> int:
        return self.total - self.accepted

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def from_frame(cls, df: pl.DataFrame | pl.LazyFrame) -> Funnel:
        """Count a checked frame (``accepted`` and ``reject_reasons``)."""
        lf = df.lazy()
        names = lf.collect_schema().names()
        total = int(lf.select(pl.len()).collect().item())
        accepted = int(lf.select(pl.col("accepted").sum()).collect().item() or 0) if "accepted" in names else 0
        counts: Counter[str] = Counter()
        if REASONS in names:
            exploded = lf.select(pl.col(REASONS).explode().drop_nulls()).collect()
            counts.update(dict(exploded.group_by(REASONS).len().iter_rows()))
        return cls(total, accepted, counts)

    @classmethod
    def from_parquet(cls, path: str | Path) -> Funnel:
        return cls.from_frame(pl.scan_parquet(path))

    @classmethod
    def from_dict(cls, d: Mapping[str, int]) -> Funnel:
        """The flat manifest/JSON form back into a funnel."""
        return cls(
            int(d.get("total", 0)), int(d.get("accepted", 0)), {k: int(v) for k, v in d.items() if k not in TOTALS}
        )

    def merge(self, other: Funnel) -> Funnel:
        """Two disjoint sets of rows counted together (batches, files)."""
        return Funnel(
            self.total + other.total, self.accepted + other.accepted, Counter(self.reasons) + Counter(other.reasons)
        )

    __add__ = merge

    def with_reasons(self, counts: Mapping[str, int]) -> Funnel:
        """The same rows with more reason counts (e.g. a later stage's selection outcomes)."""
        return Funnel(self.total, self.accepted, {**self.reasons, **counts})

    @classmethod
    def sum(cls, funnels: Iterable[Funnel]) -> Funnel:
        out = cls()
        for f in funnels:
            out = out.merge(f)
        return out

    # -- reading ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, int]:
        """The flat form stored in manifests and printed as JSON."""
        return {"total": self.total, "accepted": self.accepted, **dict(self.reasons)}

    def rows(self) -> list[FunnelRow]:
        """One row per reason, most frequent first (ties by code)."""
        n = self.total
        return [
            FunnelRow(r, c, c / n if n else 0.0)
            for r, c in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    def __iter__(self) -> Iterator[FunnelRow]:
        return iter(self.rows())

    def frame(self, meanings: Mapping[str, str] | None = None) -> pl.DataFrame:
        """reason, check, rows, share, meaning: most frequent first."""
        rows = self.rows()
        return pl.DataFrame(
            {
                "reason": [r.reason for r in rows],
                "check": [r.check for r in rows],
                "rows": pl.Series([r.rows for r in rows], dtype=pl.UInt32),
                "share": pl.Series([r.share for r in rows], dtype=pl.Float64),
                "meaning": [(meanings or {}).get(r.reason, "") for r in rows],
            }
        )


__all__ = ["REASONS", "Funnel", "FunnelRow"]
