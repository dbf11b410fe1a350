"""``curate view``: the API on its own, then the page in a real headless browser (Debian's chromium).

Without chromium the browser tests skip with a reason; CI sets ``CURATE_REQUIRE_BROWSER=1`` (and installs
chromium), which turns that skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from curate.errors import CurateError
from curate.report.viewer import Samples, serving
from curate.store import Store
from curate.testing.example_store import build_example_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    home = tmp_path_factory.mktemp("view") / "store"
    build_example_store(home)
    return Store(home)


@pytest.fixture(scope="module")
def url(store: Store) -> Iterator[str]:
    with serving(store, "checked@2") as u:
        yield u


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return str(r.read().decode())


def test_filters(url: str) -> None:
    every = json.loads(_get(url + "api/samples?limit=1000"))
    assert every["total"] == 320
    lang = json.loads(_get(url + "api/samples?reason=lang.mixed"))
    assert lang["total"] > 0 and all("lang.mixed" in r["reasons"] for r in lang["rows"])
    hard = json.loads(_get(url + "api/samples?status=accepted&max_pass=0.5&min_len=200&limit=1000"))
    assert hard["rows"] and all(r["accepted"] and r["pass_rate"] <= 0.5 and r["length"] >= 200 for r in hard["rows"])
    prompt = every["rows"][0]["prompt_id"]
    one = json.loads(_get(url + f"api/samples?prompt={prompt}"))
    assert one["total"] == 8 and {r["prompt_id"] for r in one["rows"]} == {prompt}
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(url + "api/samples?min_pass=high")
    assert e.value.code == 400


def test_full_trace_with_flagged_spans_and_compare(url: str) -> None:
    lang = json.loads(_get(url + "api/samples?reason=lang.mixed"))["rows"][0]
    page = _get(url + f"api/sample/{lang['sample_id']}")
    assert "data-reason='lang.mixed'" in page and "<details open>" in page
    facets = json.loads(_get(url + "api/facets"))
    both = next(p for p in facets["prompts"] if 0 < p["accepted"] < p["n"])
    cmp = _get(url + f"api/compare?prompt={both['prompt_id']}")
    assert cmp.count("class='trace'") == 2 and "accepted" in cmp and "rejected" in cmp


def test_refuses_a_version_without_samples(store: Store) -> None:
    rates = next(n for n in store.names() if n.endswith("pass_rates"))  # a recipe's <name>_pass_rates
    with pytest.raises(CurateError, match="no samples to view"):
        Samples.load(store, rates)


# -- a real browser -------------------------------------------------------------------------------------


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CURATE_REQUIRE_BROWSER") == "1":
            pytest.fail("CURATE_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install -y chromium)")
        pytest.skip("no chromium on PATH (apt-get install -y chromium); CI requires it")
    return exe


def _browser(args: list[str], tmp_path: Path) -> str:
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        *args,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def _rows(dom: str) -> list[dict[str, str]]:
    body = dom[: dom.index("<script")]  # the rendered rows, not the template in the script
    return [dict(re.findall(r'data-(\w+)="([^"]*)"', m)) for m in re.findall(r'<tr class="row[^"]*"([^>]*)>', body)]


def test_page_filters_in_the_browser(url: str, tmp_path: Path) -> None:
    dom = _browser(["--dump-dom", url + "?reason=lang.mixed&status=rejected"], tmp_path)
    assert 'data-ready="1"' in dom  # the page's script ran to the end
    rows = _rows(dom)
    assert rows and all("lang.mixed" in r["reasons"] and r["accepted"] == "false" for r in rows)
    assert re.search(rf">{len(rows)} samples<", dom)
    dom = _browser(["--dump-dom", url + "?min_pass=0.9&min_len=300"], tmp_path)
    rows = _rows(dom)
    assert rows and all(float(r["pass"]) >= 0.9 and int(r["length"]) >= 300 for r in rows)


def test_trace_and_compare_in_the_browser(url: str, tmp_path: Path) -> None:
    lang = json.loads(_get(url + "api/samples?reason=lang.mixed"))["rows"][0]
    dom = _browser(["--dump-dom", url + f"?reason=lang.mixed&sample={lang['sample_id']}"], tmp_path)
    assert 'class="row sel"' in dom and 'data-reason="lang.mixed"' in dom  # the detail pane, spans marked
    dom = _browser(["--dump-dom", url + f"?reason=lang.mixed&prompt={lang['prompt_id']}&compare=1"], tmp_path)
    detail = dom[dom.index('id="detail"') :]
    assert detail.count('class="trace"') == 2  # the prompt has both kinds; the rejected one is a lang.mixed one
    assert detail.index(">accepted<") < detail.index(">rejected<") and "lang.mixed" in detail


def test_screenshot_shows_the_list_and_the_highlighted_trace(url: str, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    lang = json.loads(_get(url + "api/samples?reason=lang.mixed"))["rows"][0]
    shot = tmp_path / "view.png"
    _browser(
        [f"--screenshot={shot}", "--window-size=1400,900", url + f"?reason=lang.mixed&sample={lang['sample_id']}"],
        tmp_path,
    )
    img = mpimg.imread(shot)
    assert img.shape[:2] == (900, 1400)
    rgb = (img[..., :3] * 255).round().astype(int)
    colours = pl.DataFrame({"r": rgb[..., 0].ravel(), "g": rgb[..., 1].ravel(), "b": rgb[..., 2].ravel()})
    counts = colours.group_by("r", "g", "b").len()
    assert counts.height > 50  # text, a header bar, a table: not a blank page
    header = rgb[5, 5]
    assert tuple(header) == (0x24, 0x29, 0x2F)  # the dark header bar
    lang_mark = counts.filter((pl.col("r") == 0xFF) & (pl.col("g") == 0xD8) & (pl.col("b") == 0xB5))
    assert lang_mark.height == 1 and lang_mark["len"][0] > 200  # the language highlight is on screen
