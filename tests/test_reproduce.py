"""`rnnlab reproduce` as resumable jobs: shards of trials in run folders, worker processes,
tables written as rows finish, a killed or interrupted reproduction continued."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rnnlab.training import reproduce as rp
from rnnlab.training.jobs import STOPPING


def _tables(out):
    return json.loads((out / "reproduce.json").read_text()), (out / "reproduce.md").read_text()


def test_rows_run_as_shards_and_the_tables_follow(tmp_path, monkeypatch):
    monkeypatch.setattr(rp, "SHARD_TRIALS", 2)
    out = tmp_path / "rep"
    rows = rp.reproduce(["3a-T100-N3", "6a"], out=out, trials=3, jobs=2, budget=0.01,
                        echo=lambda *a: None, progress=False)
    assert [r["experiment"] for r in rows] == ["3a-T100-N3", "6a"]
    for r in rows:
        assert r["trials"] == 3 and len(r["test_wrong"]) == 3 and r["paper_sequences"] > 0
        assert r["budget"] == max(1, int(0.01 * r["paper_sequences"]))
    shards = sorted(p.name for p in (out / "runs" / "6a").iterdir())
    assert shards == ["modern-seed-0", "trials-0-1", "trials-2-2"]
    for r in rows:  # the modern LSTM beside each row, on the same budget and rule
        assert r["modern"]["runs"] == 1 and r["modern"]["budget"] == r["budget"]
        assert len(r["modern"]["test_wrong"]) == 1
    data, md = _tables(out)
    assert {r["experiment"] for r in data["rows"]} == {"3a-T100-N3", "6a"}
    assert "| 6a | Table 9 |" in md and "](curves.png)" in md
    png = (out / "curves.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 10_000
    # trial 2 ran in its own shard: the same run as trial 2 of a one-shard row
    monkeypatch.setattr(rp, "SHARD_TRIALS", 5)
    again = rp.reproduce(["6a"], out=tmp_path / "one-shard", trials=3, jobs=1, budget=0.01,
                         modern=0, echo=lambda *a: None, progress=False)
    assert again[0]["test_wrong"] == rows[1]["test_wrong"]
    assert again[0]["trial_sequences"] == rows[1]["trial_sequences"]


def test_shards_hold_up_to_a_register_of_trials_as_equal_as_possible():
    assert rp.SHARD_TRIALS == 16  # the learner's float lanes
    assert rp.split_trials(10) == [[0, 10]]
    assert rp.split_trials(16) == [[0, 16]]
    assert rp.split_trials(18) == [[0, 9], [9, 9]]
    assert rp.split_trials(30) == [[0, 15], [15, 15]]  # not 16 + 14
    assert rp.split_trials(40) == [[0, 14], [14, 13], [27, 13]]
    # at least as many shards as workers, never an empty one
    assert rp.split_trials(10, parts=2) == [[0, 5], [5, 5]]
    assert rp.split_trials(3, parts=2) == [[0, 2], [2, 1]]
    assert rp.split_trials(1, parts=4) == [[0, 1]]
    for n in range(1, 70):
        for parts in (1, 2, 3, 8):
            shards = rp.split_trials(n, parts)
            assert [f for f, _ in shards] == [sum(c for _, c in shards[:i])
                                            for i in range(len(shards))]
            assert sum(c for _, c in shards) == n
            assert max(c for _, c in shards) - min(c for _, c in shards) <= 1
            assert max(c for _, c in shards) <= rp.SHARD_TRIALS


def test_one_row_on_two_workers_is_split_between_them(tmp_path):
    out = tmp_path / "rep"
    rp.reproduce(["6a"], out=out, trials=4, jobs=2, budget=0.002, modern=0,
                 echo=lambda *a: None, progress=False)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["rows"][0]["shards"] == [[0, 2], [2, 2]]
    assert sorted(p.name for p in (out / "runs" / "6a").iterdir()) == ["trials-0-1",
                                                                        "trials-2-3"]


def test_a_killed_reproduction_continues_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(rp, "SHARD_TRIALS", 1)
    out = tmp_path / "rep"
    rp.reproduce(["3b-T100-N3"], out=out, trials=2, jobs=1, budget=0.01, modern=0,
                 echo=lambda *a: None, progress=False)
    done = out / "runs" / "3b-T100-N3" / "trials-0-0" / "result.json"
    lost = out / "runs" / "3b-T100-N3" / "trials-1-1" / "result.json"
    stamp = done.stat().st_mtime_ns
    lost.unlink()  # as if the reproduction had been killed before this shard finished
    messages = []
    rows = rp.reproduce(None, out=out, jobs=1, echo=messages.append, progress=False)
    assert any("continuing" in m for m in messages)
    assert any("1 shard(s)" in m for m in messages)
    assert done.stat().st_mtime_ns == stamp and lost.exists()
    assert rows[0]["trials"] == 2


def test_one_reproduction_per_folder(tmp_path):
    import fcntl

    out = tmp_path / "rep"
    out.mkdir()
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ValueError, match="another `rnnlab reproduce`"):
            rp.reproduce(["6a"], out=out, trials=1, budget=0.01, echo=lambda *a: None,
                         progress=False)


def test_ctrl_c_checkpoints_the_shards_and_the_same_command_continues(tmp_path):
    out = tmp_path / "rep"
    # two shards on one worker: the second waits in the pool's queue when Ctrl-C comes, and
    # must not start (it would keep the reproduction running to its end)
    cmd = [sys.executable, "-m", "rnnlab.cli", "reproduce", "4-T100", "6a", "--trials", "2",
           "--jobs", "1", "--budget", "0.6", "--modern", "0", "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    metrics = out / "runs" / "4-T100" / "trials-0-1" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, text
    assert "continue with `rnnlab reproduce --out" in text
    checkpoint = metrics.parent / "checkpoint.safetensors"
    assert checkpoint.exists() and not (metrics.parent / "result.json").exists()
    assert not (out / "runs" / "6a").exists() and not (out / STOPPING).exists()
    data, md = _tables(out)  # the tables say how far each row got
    assert data["rows"] == [] and [u["experiment"] for u in data["unfinished"]] == ["4-T100", "6a"]
    assert "- 4-T100: 0 of 2 trials finished, " in md and "the running trials at " in md
    assert "- 6a: 0 of 2 trials finished, 0 solved so far; not started" in md
    again = subprocess.run(cmd[:4] + ["--out", str(out)], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "continuing" in again.stdout
    data, _ = _tables(out)
    assert [(r["experiment"], r["trials"]) for r in data["rows"]] == [("4-T100", 2), ("6a", 2)]


def test_rows_run_with_their_found_setup_unless_as_read(tmp_path, monkeypatch):
    import dataclasses

    from rnnlab.training import experiments

    exp = dataclasses.replace(experiments.EXPERIMENTS["6a"], setup={"error": "cross-entropy"})
    monkeypatch.setitem(experiments.EXPERIMENTS, "6a", exp)
    for as_read, options in [(False, {"error": "cross-entropy", "lr": 0.25}),
                             (True, {"lr": 0.25})]:
        out = tmp_path / f"rep-{as_read}"
        rows = rp.reproduce(["6a"], out=out, trials=1, jobs=1, budget=0.01, modern=0,
                            options={"lr": 0.25}, as_read=as_read, echo=lambda *a: None,
                            progress=False)
        assert rows[0]["options"] == options
        config = json.loads((out / "runs" / "6a" / "trials-0-0" / "config.json").read_text())
        assert config["experiment_options"] == options and config["lr"] == 0.25
        assert rp.setup_text(options) in _tables(out)[1]
    assert rp.setup_text({"lstm": {"h": "g2", "g": "h1"}, "lr": 1.0}) == \
        "lr=1.0, lstm.g=h1, lstm.h=g2"
    assert rp.setup_text({}) == "paper"


def test_full_added_to_a_continued_reproduction_runs_the_expensive_rows(tmp_path, monkeypatch):
    table = {k: rp.EXPERIMENTS[k] for k in ("6a", "3a-T100-N3")}
    monkeypatch.setattr(rp, "EXPERIMENTS", table)
    cheap, dear = sorted(table.values(), key=rp.row_cost)
    monkeypatch.setattr(rp, "CHEAP_COST", rp.row_cost(cheap))
    out = tmp_path / "rep"
    kw = dict(out=out, trials=1, jobs=1, budget=0.01, modern=0, echo=lambda *a: None,
              progress=False)
    assert [r["experiment"] for r in rp.reproduce(None, **kw)] == [cheap.key]
    assert [r["experiment"] for r in rp.reproduce(None, **kw)] == [cheap.key]  # continued
    rows = rp.reproduce(None, full=True, **kw)
    assert [r["experiment"] for r in rows] == [cheap.key, dear.key]
    assert (out / "runs" / cheap.key / "trials-0-0" / "result.json").exists()


def test_every_row_carries_its_as_read_result(tmp_path, monkeypatch):
    """A row run with the paper's settings is its own as-read result; a row with a found
    set-up takes the same row of a reproduction run --as-read (--as-read-from)."""
    import dataclasses

    from rnnlab.training import experiments

    exp = dataclasses.replace(experiments.EXPERIMENTS["6a"], setup={"lr": 0.25})
    monkeypatch.setitem(experiments.EXPERIMENTS, "6a", exp)
    kw = dict(trials=2, jobs=1, budget=0.01, modern=0, echo=lambda *a: None, progress=False)
    as_read = rp.reproduce(["6a", "3a-T100-N3"], out=tmp_path / "as-read", as_read=True, **kw)
    for r in as_read:  # run as read: every row is its own
        assert r["as_read"] == rp.summary(r) | {"source": "the same runs"}
    found = rp.reproduce(["6a", "3a-T100-N3"], out=tmp_path / "found",
                         as_read_from=tmp_path / "as-read", **kw)
    by_key = {r["experiment"]: r for r in found}
    assert by_key["6a"]["options"] == {"lr": 0.25}
    theirs = next(r for r in as_read if r["experiment"] == "6a")
    assert by_key["6a"]["as_read"] == rp.summary(theirs) | {
        "source": "a separate as-read run", "wall_seconds": theirs["wall_seconds"]}
    assert by_key["3a-T100-N3"]["as_read"]["source"] == "the same runs"
    data, md = _tables(tmp_path / "found")
    assert all(r["as_read"] for r in data["rows"])
    assert rp.as_read_text(by_key["6a"]) in md and "as read" in md.split("|---")[0]
    assert rp.counts_line(found) in md
    # continuing the folder keeps the link (plan.json) without naming it again
    assert rp.reproduce(["6a"], out=tmp_path / "found", **kw)[0]["as_read"]["source"] == \
        "a separate as-read run"
    # without one, a row with a set-up says so
    alone = dict(by_key["6a"], as_read=None)
    assert rp.as_read_text(alone) == "—"
    assert "not run as read" in rp.counts_line([alone, by_key["3a-T100-N3"]])
    with pytest.raises(ValueError, match="not a reproduction folder"):
        rp.reproduce(["6a"], out=tmp_path / "x", as_read_from=tmp_path / "nowhere", **kw)


def test_fair_modern_column_tunes_recipes_on_another_seed(tmp_path, monkeypatch):
    """--fair-modern: forget-bias-1 and chrono, each at every rate of the grid on the tuning
    seed; the winner then runs on the table's seed, beside the plain recipe."""
    from rnnlab.training import modern

    monkeypatch.setattr(modern, "LRS", (3e-3, 1e-2))
    out = tmp_path / "rep"
    rows = rp.reproduce(["6a"], out=out, trials=1, jobs=1, budget=0.01, modern=1,
                        fair_modern=True, echo=lambda *a: None, progress=False)
    runs = out / "runs" / "6a"
    tuned = sorted(p.name for p in runs.glob("modern-tune-*"))
    assert tuned == ["modern-tune-chrono-lr0.003", "modern-tune-chrono-lr0.01",
                     "modern-tune-forget-bias-1-lr0.003", "modern-tune-forget-bias-1-lr0.01"]
    config = json.loads((runs / "modern-tune-chrono-lr0.01" / "config.json").read_text())
    mean_length = rp.EXPERIMENTS["6a"].mean_length
    assert config["seed"] == modern.TUNE_SEED and config["lr"] == 0.01
    assert config["model_options"] == {"chrono_init": float(max(3, round(mean_length)))}
    points = [(r, lr) for r in modern.RECIPES for lr in modern.LRS]  # in the order tried
    recipe, lr = modern.best({(r, lr): json.loads(
        (runs / f"modern-tune-{r}-lr{lr:g}" / "result.json").read_text()) for r, lr in points})
    final = runs / f"modern-{recipe}-lr{lr:g}-seed-0"
    assert json.loads((final / "config.json").read_text())["seed"] == 0
    fair = rows[0]["modern"]["fair"]
    assert (fair["recipe"], fair["lr"], fair["runs"]) == (recipe, lr, 1)
    assert len(fair["tuning"]) == 4 and fair["tune_seed"] == modern.TUNE_SEED
    assert rows[0]["modern"]["runs"] == 1  # the plain recipe, for contrast
    assert rp.modern_text(rows[0]["modern"]) in _tables(out)[1]
    assert "bias 0:" in rp.modern_text(rows[0]["modern"])
    with pytest.raises(ValueError, match="unknown modern recipe"):
        modern.recipe_options("bias-7", 10)
