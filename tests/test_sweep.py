"""`rnnlab sweep`: the grid's syntax, the points' results against the same runs made alone,
resumption, Ctrl-C, one sweep per folder, the report, the command's one-line errors."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rnnlab.training import make_config, train
from rnnlab.training.jobs import STOPPING
from rnnlab.training.sweep import merge, nest, parse_grid, points, split_values, sweep

QUIET = dict(echo=lambda *a: None, progress=False)


def test_grid_syntax():
    assert split_values('0.1,[-1,-2],{"a": 1, "b": 2},"x,y",z') == \
        ["0.1", "[-1,-2]", '{"a": 1, "b": 2}', '"x,y"', "z"]
    grid = parse_grid(["lr=0.1,0.5", "lstm.input_gate_bias=-1,[-2,-4]", "sequential=yes,no"])
    assert grid == {"lr": [0.1, 0.5], "lstm.input_gate_bias": [-1, [-2, -4]],
                    "sequential": [True, False]}
    assert len(points(grid)) == 8 and points(grid)[1] == {
        "lr": 0.1, "lstm.input_gate_bias": -1, "sequential": False}  # the last key fastest
    assert nest({"lr": 1, "lstm.bias": ["in"], "lstm.g": "h1"}) == \
        {"lr": 1, "lstm": {"bias": ["in"], "g": "h1"}}
    assert merge({"lstm": {"bias": False, "g": "g2"}}, {"lstm": {"g": "h1"}}) == \
        {"lstm": {"bias": False, "g": "h1"}}
    for bad in (["lr"], ["lr="], ["=1,2"], ["lr=1,,2"], ["lr=1", "lr=2"]):
        with pytest.raises(ValueError):
            parse_grid(bad)
    with pytest.raises(ValueError, match="at least one"):
        parse_grid([])


def _paper_trials(folder):
    result = json.loads((folder / "result.json").read_text())
    return [(t["solved"], t["sequences"], t["test"]["wrong"]) for t in result["trials"]]


def test_a_row_sweep_equals_its_runs_made_alone_and_continues(tmp_path):
    """Each point's trials are the runs `rnnlab train --protocol paper` makes alone with the
    point's options (same seeds at every point; shards split as the workers need)."""
    grid = {"lr": [0.5, 1.0], "lstm.input_gate_bias": [[-1, -2], [-3, -6]]}
    out = tmp_path / "sweep"
    data = sweep("4-T100", grid, out=out, trials=3, jobs=2, budget=0.02, **QUIET)
    assert len(data["points"]) == 4 and data["unfinished"] == []
    assert data["kind"] == "row" and data["paper_sequences"] == 74_000
    plan = json.loads((out / "sweep-plan.json").read_text())
    for point in plan["points"]:
        line = next(p for p in data["points"] if p["id"] == point["id"])
        options = nest(point["options"])
        alone = make_config("adding-1997", protocol="paper", experiment="4-T100", trials=3,
                            max_sequences=plan["max_sequences"], seed=0,
                            log_every=max(100, int(round(plan["max_sequences"] / 100, -2))),
                            experiment_options=point["run_options"])
        assert point["run_options"]["lr"] == options["lr"]
        assert point["run_options"]["lstm"]["input_gate_bias"] == \
            options["lstm"]["input_gate_bias"]
        train(alone, tmp_path / point["id"])
        want = _paper_trials(tmp_path / point["id"])
        got = [t for f in sorted((out / "runs" / point["id"]).iterdir())
               for t in _paper_trials(f)]
        assert got == want
        assert line["trials"] == 3 and line["solved"] == sum(s for s, _, _ in want)
        assert line["mean_test_wrong"] == pytest.approx(sum(w for *_, w in want) / 3)
    md = (out / "sweep.md").read_text()
    assert md.count("| p0") == 4 and "74,000" in md
    # the same call again: nothing runs, the same tables
    before = {p.name: p.stat().st_mtime for p in (out / "runs").glob("*/*/result.json")}
    assert sweep("4-T100", grid, out=out, trials=3, jobs=2, budget=0.02, **QUIET) == data
    assert before == {p.name: p.stat().st_mtime for p in (out / "runs").glob("*/*/result.json")}
    with pytest.raises(ValueError, match="holds another sweep.*grid"):
        sweep("4-T100", {"lr": [0.5]}, out=out, trials=3, budget=0.02, **QUIET)


def test_a_task_sweep_runs_one_minibatch_run_per_trial(tmp_path):
    base = {"model": "gru", "hidden": 8, "task_params": {"L": 4}, "test_size": 64}
    data = sweep("parity", {"lr": [0.003, 0.03]}, out=tmp_path / "s", trials=2, jobs=2,
                 max_sequences=640, base=base, **QUIET)
    assert data["kind"] == "task" and "ratio" not in data["points"][0]
    for point in data["points"]:
        for k in range(2):
            config = json.loads((tmp_path / "s" / "runs" / point["id"] / f"trial-{k}"
                                 / "config.json").read_text())
            assert config["seed"] == k and config["model"] == "gru"
            assert config["lr"] == point["options"]["lr"] and config["task_params"]["L"] == 4
    with pytest.raises(ValueError, match="unknown training option"):
        sweep("parity", {"learning_rate": [0.1]}, out=tmp_path / "bad", trials=1, **QUIET)
    with pytest.raises(ValueError, match="unknown sweep target"):
        sweep("nope", {"lr": [0.1]}, out=tmp_path / "bad2", trials=1, **QUIET)
    with pytest.raises(ValueError, match="unknown experiment option"):
        sweep("6a", {"speed": [1]}, out=tmp_path / "bad3", trials=1, **QUIET)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad3").exists()


def test_ctrl_c_checkpoints_and_the_same_command_continues(tmp_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "rnnlab.cli", "sweep", "6a", "--grid", "lr=0.5,1.0",
           "--trials", "2", "--jobs", "1", "--budget", "0.5", "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.time() + 120
    metrics = list((out / "runs").glob("*/*/metrics.jsonl")) if (out / "runs").exists() else []
    while time.time() < deadline and not any(m.read_text().strip() for m in metrics):
        time.sleep(0.2)
        metrics = list((out / "runs").glob("*/*/metrics.jsonl")) if (out / "runs").exists() \
            else []
    os.killpg(proc.pid, signal.SIGINT)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, text
    assert "run the same command to continue" in text
    assert list((out / "runs").glob("*/*/checkpoint.safetensors"))
    assert not (out / STOPPING).exists()
    assert json.loads((out / "sweep.json").read_text())["unfinished"] == ["p00", "p01"]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "continuing the sweep" in again.stdout
    data = json.loads((out / "sweep.json").read_text())
    assert data["unfinished"] == [] and [p["trials"] for p in data["points"]] == [2, 2]


@pytest.mark.parametrize("args,message", [
    (["6a", "--grid", "lr", "--trials", "1"], "--grid must look like KEY=V1,V2"),
    (["nope", "--grid", "lr=1", "--trials", "1"], "unknown sweep target 'nope'"),
    (["6a", "--grid", "lr=1", "--trials", "0"], "--trials must be ≥ 1"),
    (["6a", "--grid", "lr=-1", "--trials", "1"], "lr must be a finite positive number"),
    (["6a", "--grid", "lr=1", "--trials", "1", "--budget", "0"], "--budget must be"),
])
def test_bad_sweeps_are_one_line_errors(tmp_path, args, message):
    run = subprocess.run([sys.executable, "-m", "rnnlab.cli", "sweep", *args, "--out",
                          str(tmp_path / "s")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s" / "runs").exists()


def test_the_report_of_a_sweep(tmp_path):
    from rnnlab.report import kind, render

    out = tmp_path / "s"
    sweep("parity", {"lr": [0.003, 0.03]}, out=out, trials=1, jobs=1, max_sequences=320,
          base={"hidden": 4, "task_params": {"L": 3}, "test_size": 32}, **QUIET)
    assert kind(out) == "sweep"
    html = render(out).read_text()
    for text in ("The points, best first", "lr=0.003", "lr=0.03", "Learning curves",
                 "data:image/png;base64,"):
        assert text in html
