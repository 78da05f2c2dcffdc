"""The documentation site: `mkdocs build --strict` (a broken link, a missing anchor or an API
reference that does not resolve fails), then the home page and API pages in a real headless
browser."""

import os
import re
import subprocess
import sys
from pathlib import Path

import browser
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_every_guide_and_api_page_is_built(site):
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = re.findall(r":\s+([\w/.-]+\.md)\s*$", nav, re.M)
    assert len(pages) >= 20 and "api/cells.md" in pages
    for page in pages:  # a/b.md is served as a/b/index.html, index.md as index.html
        built = site / (page[: -len("index.md")] if page.endswith("index.md") else page[:-3])
        assert (built / "index.html").exists(), page
    html = (site / "api" / "cells" / "index.html").read_text()
    # the equations come from the docstrings: the carousel's backward line, the layer norm's
    assert "the constant error carousel" in html and "δc_{t-1} = δc_t ⊙ f" in html
    assert "LN(v; γ, β)" in html


def test_home_and_api_pages_in_a_real_browser(site):
    exe = browser.chromium()
    home = browser.run(exe, "--dump-dom", (site / "index.html").as_uri()).stdout
    assert "Thirty seconds: a drop-in replacement" in home
    assert "gradient_flow.png" in home  # the carousel picture
    assert "num_layers" in home and "Where to read on" in home
    api = browser.run(exe, "--dump-dom", (site / "api" / "modules" / "index.html").as_uri())
    dom = api.stdout
    for name in ("rnnlab.LSTM", "rnnlab.GRU", "rnnlab.OnlineLSTM1997"):
        assert f'id="{name}"' in dom, name
    assert "peephole" in dom and "layer_norm" in dom
