"""Checks: the base contract (``base``), the registry of built-in and entry-point checks
(``registry``), the runner that streams rows through them (``runner``), and the format check.

The other checks live with their domain: ``curate.verify`` (math, code), ``curate.quality``
(readability, language), ``curate.dedup``, ``curate.judge``.
"""
