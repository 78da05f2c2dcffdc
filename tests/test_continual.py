"""Gers, Schmidhuber & Cummins 2000: the continual embedded Reber grammar (CERG) protocol, its
network, its run folders and its table in `rnnlab reproduce`."""

import json

import numpy as np
import pytest
import torch

from rnnlab import kernels
from rnnlab.training import continual as ct
from rnnlab.training import reproduce as rp
from rnnlab.training.trainer import train

needs_kernels = pytest.mark.skipif(not kernels.usable(torch.zeros(1)),
                                   reason="thousands of streams need the compiled learner")


def test_the_papers_networks():
    """424 weights with forget gates (8·15 cells + 12·16 gates + 7·16 outputs), 360 without;
    gate biases by block as the paper gives them."""
    forget = ct.continual_learner(ct.CONTINUAL["cerg-forget"], torch.Generator().manual_seed(0))
    standard = ct.continual_learner(ct.CONTINUAL["cerg-reset"], torch.Generator().manual_seed(0))
    assert forget.mask.sum() + forget.V_mask.sum() == 424
    assert standard.mask.sum() + standard.V_mask.sum() == 360
    rows = forget.cell.row_slices()
    bias = forget.W[0, :, -1]
    assert bias[rows["in"]].tolist() == [-0.5, -1.0, -1.5, -2.0]
    assert bias[rows["out"]].tolist() == [-0.5, -1.0, -1.5, -2.0]
    assert bias[rows["forget"]].tolist() == [0.5, 1.0, 1.5, 2.0]
    assert (bias[rows["cell"]] == 0).all() and forget.W.abs().max() <= 2.0
    others = forget.W[0, :, :-1]
    assert others.abs().max() <= 0.2 and forget.V.abs().max() <= 0.2


@needs_kernels
def test_external_reset_learns_the_continual_grammar():
    """The standard LSTM reset before every string: a net of the paper's row 1 is a perfect
    solution (10 test streams of 100,000 symbols without an error) within 9,000 training
    streams (paper: 74 % of nets, after 7,441 on average)."""
    outcome = ct.run_trial(ct.CONTINUAL["cerg-reset"], seed=0, trial=0, max_streams=9_000)
    assert outcome["solved"] and outcome["class"] == "perfect"
    assert outcome["test_lengths"] == [100_000] * 10 and outcome["streams"] < 9_000


def test_a_stream_without_reset_is_lost_by_the_1997_cell():
    """No reset, no forget gate: after 300 streams the net's test streams end early (rest)."""
    outcome = ct.run_trial(ct.CONTINUAL["cerg-standard"], seed=0, trial=1, max_streams=300)
    assert not outcome["solved"] and outcome["class"] == "rest"
    assert outcome["streams"] == 300 and len(outcome["test_lengths"]) == 10
    assert max(outcome["test_lengths"]) < 1_000


def test_a_run_folder_of_trials_resumes_at_the_first_unfinished_trial(tmp_path, monkeypatch):
    monkeypatch.setattr(ct, "STREAM_SYMBOLS", 2_000)
    cfg = ct.continual_config("cerg-standard", trials=2, first_trial=3, max_streams=50)
    whole = train(cfg, tmp_path / "whole")
    assert [t["trial"] for t in whole["trials"]] == [3, 4] and whole["solved"] == 0
    # as if killed after trial 3: its record and checkpoint kept, no result
    cut = tmp_path / "cut"
    train(cfg, cut)
    (cut / "result.json").unlink()
    lines = (cut / "metrics.jsonl").read_text().splitlines()
    (cut / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][:20])  # a torn second line
    from rnnlab.training.runs import RunDir
    RunDir(cut).save({"trials_done": torch.tensor([1])}, {"experiment": "cerg-standard"})
    again = train(None, cut, resume=True)
    strip = [{k: v for k, v in t.items() if k != "seconds"} for t in again["trials"]]
    assert strip == [{k: v for k, v in t.items() if k != "seconds"} for t in whole["trials"]]
    with pytest.raises(ValueError, match="unknown continual experiment"):
        ct.continual_config("cerg-nothing", trials=1)


def test_reproduce_runs_the_continual_rows_when_named(tmp_path, monkeypatch):
    monkeypatch.setattr(ct, "MAX_STREAMS", 40)
    monkeypatch.setattr(ct, "STREAM_SYMBOLS", 2_000)
    rows = rp.reproduce(["cerg-standard", "6a"], out=tmp_path / "rep", trials=2, jobs=1,
                        budget=0.01, modern=0, echo=lambda *a: None, progress=False)
    assert {r["experiment"] for r in rows} == {"cerg-standard", "6a"}
    data = json.loads((tmp_path / "rep" / "reproduce.json").read_text())
    assert [r["experiment"] for r in data["rows"]] == ["6a"]
    (row,) = data["continual"]
    assert row["trials"] == 2 and row["perfect"] == 0 and row["rest"] == 100
    assert row["paper"]["rest"] == 99 and row["within_2x"]  # the paper solves none either
    md = (tmp_path / "rep" / "reproduce.md").read_text()
    assert "Gers, Schmidhuber & Cummins (2000), Table 2" in md and "| cerg-standard |" in md
    assert "| 6a |" in md
    from rnnlab.report.reproduce import report

    html = report(tmp_path / "rep").html()
    assert "Gers, Schmidhuber &amp; Cummins (2000), Table 2" in html and "cerg-standard" in html
    # without the 1997 rows, the second table alone; never part of the default or --full set
    only = rp.reproduce(["cerg-standard"], out=tmp_path / "only", trials=1, jobs=1,
                        echo=lambda *a: None, progress=False)
    assert only[0]["experiment"] == "cerg-standard"
    assert not any(e.key.startswith("cerg") for e in rp.rows(None, full=True))


def test_within_2x_of_the_paper():
    row = ct.CONTINUAL["cerg-forget"]  # 18 % perfect after 18,889 streams
    assert ct.within_2x(row, 20.0, 20_000) and ct.within_2x(row, 36.0, 9_445)
    assert not ct.within_2x(row, 75.0, 10_000) and not ct.within_2x(row, 20.0, 40_000)
    assert not ct.within_2x(row, 20.0, None)
    assert np.isclose(ct.table_row(row, [], 0.0)["perfect"], 0.0)
