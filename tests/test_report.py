"""`rnnlab report`: each kind of run folder rendered as one self-contained page, checked as
HTML (sections, size, nothing fetched) and in a real headless browser (Debian's chromium,
which `make test` installs when missing): a screenshot that is not blank, and a DOM that
holds the expected sections."""

import re

import browser
import pytest
import torch

from rnnlab import lm
from rnnlab.report import kind, render
from rnnlab.training import make_config, train
from rnnlab.training import reproduce as rp

SECTIONS = {
    "task": ["result", "curves", "analysis", "carousel", "configuration", "environment"],
    "paper": ["result", "curves", "analysis", "carousel", "configuration", "environment"],
    "lm": ["result", "curves", "samples", "cells", "loss", "configuration", "environment"],
    "reproduce": ["table", "curves", "configuration", "environment"],
    "runs": ["summary", "lstm1997-result", "lstm1997-carousel", "rnn-result"],
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    small = dict(task_params={"T": 30}, max_sequences=320, batch_size=16, test_size=32,
                 log_every=64)
    train(make_config("adding-1997", model="lstm1997", hidden=2,
                      model_options={"block_size": 2}, **small), root / "task")
    train(make_config("adding-1997", protocol="paper", trials=2, task_params={"T": 30},
                      max_sequences=60, log_every=20, test_size=32), root / "paper")
    for model in ("lstm1997", "rnn"):  # a folder of runs, as the demo writes
        options = {"block_size": 2} if model == "lstm1997" else {}
        train(make_config("adding-1997", model=model, hidden=2, model_options=options,
                          **small), root / "runs" / model)
    text = root / "text.txt"
    text.write_text('he said "go (now)" and she ran off to see it\n' * 60)
    lm.train(lm.make_config(text, hidden=16, layers=1, embedding=4, steps=20, val_every=10,
                            batch=4, seq_len=16), root / "lm")
    rp.reproduce(["6a"], out=root / "reproduce", trials=2, jobs=1, budget=0.005,
                 echo=lambda *a: None, progress=False)
    return {k: root / k for k in SECTIONS}


@pytest.mark.parametrize("what", list(SECTIONS))
def test_each_kind_renders_one_self_contained_page(folders, what):
    assert kind(folders[what]) == ("task" if what == "paper" else what)
    path = render(folders[what])
    assert path == folders[what] / "report.html"
    page = path.read_text(encoding="utf-8")
    for key in SECTIONS[what]:
        assert f'id="{key}"' in page, key
    assert path.stat().st_size < 5_000_000
    assert "default-src 'none'" in page  # the browser may fetch nothing at all
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page)
    assert links and all(u.startswith(("data:image/png;base64,", "#")) for u in links)
    assert not re.search(r"url\(|@import|<script|<link|<iframe", page, re.I)


def test_bad_input_is_a_clear_error(folders, tmp_path):
    with pytest.raises(ValueError, match="no run folder"):
        render(tmp_path / "nothing")
    with pytest.raises(ValueError, match="holds no run"):
        render(tmp_path)
    with pytest.raises(ValueError, match="--cells colours a char-LM"):
        render(folders["task"], cells=[1])
    with pytest.raises(ValueError, match="unit 99 does not exist"):
        render(folders["lm"], tmp_path / "x.html", cells=[99])
    with pytest.raises(ValueError, match="ending in .html"):
        render(folders["task"], tmp_path / "report.txt")
    assert not list(tmp_path.iterdir())


def test_lm_cells_asked_for_are_shown(folders, tmp_path):
    page = render(folders["lm"], tmp_path / "r.html", cells=[2, 5]).read_text()
    assert "unit 2: asked for" in page and "unit 5: asked for" in page
    assert "follows inside quotes" in page or "follows bracket depth" in page


@pytest.mark.parametrize("what", list(SECTIONS))
def test_each_report_in_a_real_browser(folders, what, tmp_path):
    exe = browser.chromium()
    page = render(folders[what])
    url = page.resolve().as_uri()
    dom = browser.run(exe, "--dump-dom", url).stdout
    for key in SECTIONS[what]:
        assert f'id="{key}"' in dom, key
    assert dom.count("<img") >= 1
    shot = tmp_path / "shot.png"
    browser.run(exe, f"--screenshot={shot}", "--window-size=1200,1600", url)
    import matplotlib.image

    pixels = torch.from_numpy(matplotlib.image.imread(str(shot)))[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    ink = (pixels < 0.9).any(-1).float().mean()
    assert 0.02 < ink < 0.9  # text and figures drawn, not a blank (or black) page


def test_the_command_writes_the_page_and_prints_its_path(folders, tmp_path, monkeypatch, capsys):
    import sys

    from rnnlab import cli

    out = tmp_path / "page.html"
    monkeypatch.setattr(sys, "argv", ["rnnlab", "report", str(folders["lm"]), "--out", str(out),
                                      "--cells", "1"])
    cli.main()
    assert capsys.readouterr().out.strip() == str(out)
    assert "unit 1: asked for" in out.read_text()
