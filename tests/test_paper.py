"""The paper protocol: chunks of sequences per compiled call, yet every trial stops exactly
where a one-sequence-at-a-time loop would, with the same weights."""

import pytest
import torch

from rnnlab import tasks
from rnnlab.training import EXPERIMENTS, StopRule, make_config, train
from rnnlab.training import paper as paper_mod
from rnnlab.training.experiments import with_options
from rnnlab.training.paper import TrialData, paper_learner, stack_trials, trial_outputs
from rnnlab.training.stopping import RecentWindow
from rnnlab.training.trainer import sequence_errors

CASES = [  # task, parameters, learning rate, a stopping rule met early, at varied points
    ("adding-1997", {"T": 24}, None, {"kind": "recent", "window": 12, "max_wrong": 9}),
    ("longlag-2c", {"p": 3, "q": 4}, 1.0,
     {"kind": "recent", "window": 6, "max_wrong": 6, "beta": 0.24}),
]


@pytest.mark.parametrize("task_name,params,lr,stop", CASES, ids=[c[0] for c in CASES])
def test_chunked_training_stops_where_one_at_a_time_would(tmp_path, monkeypatch, task_name,
                                                           params, lr, stop):
    drawn: dict[int, list] = {}
    original = TrialData.draw

    def recording_draw(self, n):
        batch = original(self, n)
        drawn.setdefault(id(self), []).append(batch)
        return batch

    monkeypatch.setattr(TrialData, "draw", recording_draw)
    monkeypatch.setattr(paper_mod, "CHUNK_STEPS", 300)  # chunks of ~30 sequences
    # as read: the test is about chunks, and the found set-ups learn tiny 2c more slowly
    cfg = make_config(task_name, protocol="paper", task_params=params, trials=4, lr=lr,
                      max_sequences=400, log_every=200, test_size=50, stop=stop,
                      as_read=task_name == "longlag-2c")
    result = train(cfg, tmp_path / "run")
    stops = [t["sequences"] for t in result["trials"] if t["solved"]]
    task = tasks.make(cfg.task, **cfg.task_params)
    chunk = max(5, int(300 // task.mean_length))
    assert len(set(stops)) >= 2 and any(s % chunk for s in stops), result  # inside chunks

    # the oracle: the same initial weights and the same sequences, one at a time
    exp = with_options(EXPERIMENTS[cfg.experiment], cfg.experiment_options)
    learner = paper_learner(exp, task, list(range(4)), cfg.seed)
    rule = StopRule(**stop)
    chunks = list(drawn.values())  # per trial, in the order the trials were created
    for k, trial_chunks in enumerate(chunks):
        one = learner.subset([k])
        window, seen, solved = RecentWindow(rule.window), 0, None
        for batch in trial_chunks:
            for j in range(batch.size):
                b = _one(batch, j)
                x, y, mask, lengths = stack_trials([b])
                out, _ = one.run(x, y, mask, lengths=lengths, lr=cfg.lr, outputs_at="targets")
                o = trial_outputs(out, 0, b)
                window.add(task.correct(o, b).numpy(), sequence_errors(task, o, b).numpy())
                seen += 1
                if window.satisfies(rule):
                    solved = seen
                    break
            if solved is not None:
                break
        assert result["trials"][k]["sequences"] == solved, k
        final = train_W(tmp_path / "run")[k]
        torch.testing.assert_close(one.W[0], final, rtol=0, atol=0)


def _one(batch, j):
    """Sequence j of a batch as a batch of one."""
    T, one = int(batch.lengths[j]), slice(j, j + 1)
    extra = {k: v[one] for k, v in batch.extra.items()}
    if batch.symbols is None:
        return tasks.Batch(batch.x[:T, one], batch.y[:T, one], batch.mask[:T, one],
                           batch.lengths[one], extra)
    return tasks.Batch(None, batch.y[:T, one], batch.mask[:T, one], batch.lengths[one], extra,
                       symbols=batch.symbols[:T, one], input_size=batch.input_size)


def train_W(folder):
    from rnnlab.training.runs import load_checkpoint

    tensors, _ = load_checkpoint(folder / "checkpoint.safetensors")
    return tensors["W"]


def test_trials_are_the_same_alone_or_together(tmp_path):
    """Trial 2 of a 3-trial run equals trial 2 run alone (first_trial=2, trials=1)."""
    base = dict(protocol="paper", task_params={"p": 3, "q": 4}, max_sequences=120,
                log_every=60, test_size=40, stop={"kind": "recent", "window": 500})
    together = train(make_config("longlag-2c", trials=3, **base), tmp_path / "together")
    alone = train(make_config("longlag-2c", trials=1, first_trial=2, **base), tmp_path / "alone")
    assert alone["trials"][0]["trial"] == 2
    assert alone["trials"][0]["test"] == together["trials"][2]["test"]
    torch.testing.assert_close(train_W(tmp_path / "alone")[0], train_W(tmp_path / "together")[2],
                               rtol=0, atol=0)


def test_sequential_construction_adds_the_blocks_once_the_error_stops_falling(tmp_path):
    """Exp. 2a's remedy: the cell and its gate are cut off at first (no weights, outputs blind
    to them); when the trial's error plateaus they are added, and the run resumes exactly."""
    from rnnlab.training.experiments import Experiment

    base = dict(protocol="paper", task_params={"p": 6}, trials=2, max_sequences=3000,
                log_every=500, test_size=50, experiment_options={"sequential": True})
    cfg = make_config("longlag-2a", **base)
    result = train(cfg, tmp_path / "run")
    added = [t["blocks_added_at"] for t in result["trials"]]
    assert all(a is not None and a >= 2 * Experiment.plateau for a in added), added
    assert all(a % 100 == 0 for a in added)  # decided at the end of a chunk
    W = train_W(tmp_path / "run")
    assert W.abs().sum() > 0  # the blocks learned after they were added
    # before the plateau, nothing of the blocks exists
    cut = make_config("longlag-2a", **{**base, "max_sequences": 500})
    train(cut, tmp_path / "early")
    from rnnlab.training.runs import load_checkpoint

    tensors, meta = load_checkpoint(tmp_path / "early" / "checkpoint.safetensors")
    assert tensors["mask"].sum() == 0 and tensors["W"].abs().sum() == 0
    assert tensors["V_mask"][..., :1].sum() == 0  # the outputs do not see the cell
    assert meta["construction"]["added_at"] == [None, None]


def test_with_options_changes_settings_and_names_bad_ones():
    from rnnlab.training.experiments import with_options

    exp = EXPERIMENTS["4-T100"]
    changed = with_options(exp, {"lstm": {"g": "h1", "h": "g2"}, "error": "cross-entropy",
                                 "lr": 1.0})
    assert changed.lstm["input_gate_bias"] == [-3, -6] and changed.lstm["h"] == "g2"
    assert changed.error == "cross-entropy" and changed.lr == 1.0 and exp.lr == 0.5
    for bad, match in [({"speed": 2}, "unknown experiment option"),
                       ({"error": "hinge"}, "error must be"),
                       ({"sequential": "yes"}, "true or false"),
                       ({"lstm": 3}, "mapping"),
                       ({"lstm": {"truncated": False}}, "truncated RTRL"),
                       ({"lstm": {"g": "cubic"}}, "unknown squasher"),
                       ({"lstm": {"input_gate_bias": [-1, -2, -3]}}, "input_gate_bias")]:
        with pytest.raises(ValueError, match=match):
            with_options(exp, bad)
    with pytest.raises(ValueError, match="--protocol paper"):
        make_config("adding", experiment_options={"lr": 1.0})


def test_found_setups_apply_by_default_and_as_read_leaves_them_out(monkeypatch):
    """A run uses the experiment's found set-up with --set on top; --as-read drops it."""
    import dataclasses

    from rnnlab.training import experiments

    exp = dataclasses.replace(EXPERIMENTS["4-T100"], setup={
        "error": "cross-entropy", "lr": 1.0, "lstm": {"g": "h1", "h": "g2"}})
    monkeypatch.setitem(experiments.EXPERIMENTS, "4-T100", exp)
    assert experiments.run_options(exp, {"lstm": {"g": "g2"}, "lr": 0.25}) == {
        "error": "cross-entropy", "lr": 0.25, "lstm": {"g": "g2", "h": "g2"}}
    assert experiments.run_options(exp, {"lr": 0.25}, as_read=True) == {"lr": 0.25}

    found = make_config("adding-1997", protocol="paper", experiment="4-T100")
    assert found.experiment_options == exp.setup and found.lr == 1.0
    again = make_config("adding-1997", protocol="paper", experiment="4-T100",
                        experiment_options=found.experiment_options)
    assert again.experiment_options == found.experiment_options  # idempotent
    read = make_config("adding-1997", protocol="paper", experiment="4-T100", as_read=True)
    assert read.experiment_options == {} and read.lr == 0.5
    with pytest.raises(ValueError, match="--protocol paper"):
        make_config("adding", as_read=True)


def test_the_2c_setup_learns_the_lag_the_paper_as_read_does_not(tmp_path):
    """Task 2c at q = p = 100, two trials: with the found set-up (input- and output-gate
    biases −3 and −2, lr 0.5) both solve the paper's ABS(0.2) rule well inside the paper's
    31,000 sequences; as read (no biases, lr 0.01) neither does in as many sequences."""
    base = dict(protocol="paper", experiment="2c-q100-p100", task_params={"p": 100, "q": 100},
                trials=2, max_sequences=31_000, log_every=1000, test_size=2000,
                stop={"kind": "test", "n": 2000, "every": 100, "max_wrong": 0, "beta": None})
    found = train(make_config("longlag-2c", **base), tmp_path / "found")
    assert [t["solved"] for t in found["trials"]] == [True, True]
    assert all(t["test"]["wrong"] == 0 for t in found["trials"])
    read = train(make_config("longlag-2c", as_read=True, **base), tmp_path / "read")
    assert not any(t["solved"] for t in read["trials"])


@pytest.mark.parametrize("key, read_at_least, shrink",
                         [("3b-T1000-N1", 4.0, 2), ("4-T500", 0.5, 5)])
def test_the_drift_setups_keep_the_cell_states_small(key, read_at_least, shrink):
    """State drift, measured at initialisation as the mean |s| at the end of a sequence.
    3b at T = 1000 as read: the cell-input bias, let through by the open first input gate,
    drifts the states to |s| ≈ 6 (h saturated); without it they stay at a quarter of that.
    Adding at T = 500 as read: ≈ 0.75, from the cell-input bias and the output gates'
    activations (≈ 0.5) fed back into the cells; without the bias and with the output-gate
    biases −2, −4 ≈ 0.07. The input-gate biases are the paper's in both."""
    exp = EXPERIMENTS[key]
    found = with_options(exp, exp.setup)
    assert found.lstm["bias"] == ["in", "out"]
    assert found.lstm["input_gate_bias"] == exp.lstm["input_gate_bias"]
    task = tasks.make(exp.task, **exp.task_params)
    batch = task.sample(20, torch.Generator().manual_seed(0))

    def mean_end_state(e):
        states = []
        for k in range(6):
            lstm, _ = paper_learner(e, task, [k], 0).to_modules(0)
            with torch.no_grad():
                _, (_, s) = lstm(batch.x)
            states.append(s.abs().mean().item())
        return sum(states) / len(states)

    read, fixed = mean_end_state(exp), mean_end_state(found)
    assert read > read_at_least and fixed < read / shrink


def test_the_plateau_rule_of_the_sequential_construction_is_an_option(tmp_path):
    """plateau and gain (the paper gives no numbers): a shorter plateau and a stricter gain
    add the blocks sooner; bad values are refused before anything runs."""
    options = {"sequential": True, "plateau": 100, "gain": 0.9}
    cfg = make_config("longlag-2a", protocol="paper", task_params={"p": 6}, trials=2,
                      max_sequences=600, log_every=100, test_size=50,
                      experiment_options=options)
    added = [t["blocks_added_at"] for t in train(cfg, tmp_path / "run")["trials"]]
    assert all(a is not None and 200 <= a < 2 * 500 for a in added), added
    exp = EXPERIMENTS["2a-p100"]
    for bad in ({"plateau": 0}, {"plateau": 2.5}, {"gain": 0}, {"gain": 1.5}):
        with pytest.raises((ValueError, TypeError), match="plateau|gain"):
            with_options(exp, bad)
