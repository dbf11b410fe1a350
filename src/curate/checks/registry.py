"""Which checks exist, how they are configured, and in what order they run.

Built-in checks are listed below by import path and loaded lazily (the code check needs bubblewrap,
the judge an engine: nothing is imported that the run does not use). Third-party checks plug in through
the ``curate.checks`` entry-point group as subclasses of the same base (``curate.checks.base.Check``),
with their reason codes declared on the class (``declared``); the CLI never changes.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from curate.checks.base import Check, ConfigError, make_config
from curate.schema import check_decls

BUILTIN: dict[str, str] = {
    "format": "curate.checks.format:FormatCheck",
    "readability": "curate.quality.readability:ReadabilityCheck",
    "lang": "curate.quality.language:LanguageCheck",
    "math": "curate.verify.math:MathCheck",
    "code": "curate.verify.code:CodeCheck",
    "decontam": "curate.dedup.decontam:DecontamCheck",
    "dedup": "curate.dedup.check:DedupCheck",
    "judge": "curate.judge.check:JudgeCheck",
}


def available() -> dict[str, str]:
    """Check name -> ``module:Class`` for every built-in and installed plug-in check."""
    out = dict(BUILTIN)
    for name, value in _plugins():
        out.setdefault(name, value)
    return out


@functools.cache
def _plugins() -> tuple[tuple[str, str], ...]:
    """The ``curate.checks`` entry points, read once per process: each read walks the metadata of every
    installed distribution (6-9 ms here), and building the default checks asked ten times."""
    return tuple((ep.name, ep.value) for ep in entry_points(group="curate.checks"))


def load_class(name: str) -> type[Check[Any]]:
    """The check class registered as ``name``; a plug-in must subclass :class:`Check` (the typed contract)."""
    spec = available().get(name)
    if spec is None:
        raise ConfigError(f"unknown check {name!r}; available: {', '.join(available())}")
    module, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Check)):
        raise ConfigError(f"check {name!r} ({spec}) does not subclass curate.checks.base.Check")
    if cls.name != name:
        raise ConfigError(f"check {name!r} ({spec}) declares the name {cls.name!r}")
    return cls


def build_checks(config: Mapping[str, Any] | None = None, only: Iterable[str] | None = None) -> list[Check[Any]]:
    """Instantiate the checks to run, cheapest first.

    ``config`` is the ``checks:`` section of a config file: ``{name: {option: value}}``; a check whose
    section says ``enabled: false`` is skipped, and one that is off by default (the judge) runs when its
    section says ``enabled: true``. ``only`` restricts to the named checks.
    """
    config = dict(config or {})
    unknown = sorted(set(config) - set(available()))
    if unknown:
        raise ConfigError(f"config names unknown check(s) {', '.join(unknown)}; available: {', '.join(available())}")
    names = list(only) if only is not None else list(available())
    checks: list[Check[Any]] = []
    for name in names:
        section = dict(config.get(name) or {})
        enabled = section.pop("enabled", None)
        decl = check_decls().get(name)
        if only is None and not enabled and decl is not None and not decl.enabled:
            continue  # off by default, as declared: not imported (the judge's modules cost ~40 ms)
        cls = load_class(name)
        if only is None and not (enabled if enabled is not None else cls.default_enabled):
            continue
        cfg = make_config(cls.Config, section, f"checks.{name}")
        checks.append(cls(cfg))
    return sorted(checks, key=lambda c: c.cost)
