"""Public helpers for tests of curate and of code built on it (like ``polars.testing``).

- :mod:`curate.testing.fake_server`: an OpenAI-compatible HTTP server with scripted replies and faults.
- :mod:`curate.testing.tiny`: a tiny random-weight Llama checkpoint built locally in seconds.
- :mod:`curate.testing.traces`: synthetic R1-style reasoning traces (clean, looping, mixed-language).
- :mod:`curate.testing.example_store`: a small realistic example store for notebooks, docs and tests.
- :mod:`curate.testing.faults`: a real ``kill -9`` at a chosen call of a function.

Nothing in the product imports this package; the modules load their heavy dependencies lazily.
"""
