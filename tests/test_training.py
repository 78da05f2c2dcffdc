"""The trainer: configs, both protocols on tiny seeded problems, run folders, exact resume."""

import json

import pytest
import torch

from rnnlab import tasks
from rnnlab.training import EXPERIMENTS, RunDir, StopRule, evaluate, make_config, train
from rnnlab.training.runs import load_checkpoint


def test_config_validation():
    cfg = make_config("adding", model="gru", hidden=8)
    assert cfg.stop["kind"] == "recent" and cfg.version
    # typed and frozen: what a worker receives; JSON exactly round-trips it (config.json)
    from rnnlab.training.config import RunConfig

    assert RunConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    with pytest.raises(AttributeError):
        cfg.lr = 1.0
    with pytest.raises(ValueError, match="unknown run setting.*speed"):
        RunConfig.from_json({**cfg.to_json(), "speed": 3})
    for bad, match in [
        (dict(model="transformer"), "unknown model"),
        (dict(model_options={"peephole": True}, model="gru"), "model 'gru'"),
        (dict(task_params={"T": 0}), "T must be"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=-1), "lr"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(protocol="fast"), "protocol"),
        (dict(stop={"kind": "never"}), "stopping rule"),
        (dict(speed=3), "unknown training option"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_config("adding", **bad)
    with pytest.raises(ValueError, match="paper's experiments"):
        make_config("copy", protocol="paper")
    paper = make_config("adding-1997", protocol="paper", task_params={"T": 500})
    assert paper.experiment == "4-T500" and paper.lr == 0.5


def test_stop_rules_and_experiments_are_consistent():
    for exp in EXPERIMENTS.values():
        tasks.make(exp.task, **exp.task_params)
        assert exp.paper_sequences > 0 and exp.paper_cost > 0
    with pytest.raises(ValueError):
        StopRule(window=0)


def test_minibatch_learns_a_tiny_problem(tmp_path):
    cfg = make_config("binary-addition", task_params={"bits": 4}, model="lstm", hidden=12,
                      lr=2e-2, batch_size=32, max_sequences=20_000, test_size=500,
                      stop={"kind": "recent", "window": 256}, log_every=320)
    result = train(cfg, tmp_path / "run")
    assert result["solved"] and result["test"]["wrong"] <= 5, result
    run = RunDir(tmp_path / "run")
    assert run.config()["task"] == "binary-addition"
    assert run.result()["sequences_to_success"] == result["sequences_to_success"]
    lines = run.metrics()
    assert lines and lines[-1]["sequences"] == result["sequences"]
    tensors, meta = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert "model.core.weight_ih_l0" in tensors and meta["sequences"] == result["sequences"]
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg, tmp_path / "run")


def _interrupt_after(monkeypatch, task_cls, n_calls):
    calls = {"n": 0}
    original = task_cls._sample

    def sample(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > n_calls:
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(task_cls, "_sample", sample)
    return lambda: monkeypatch.setattr(task_cls, "_sample", original)


def test_ctrl_c_leaves_a_checkpoint_and_resume_continues_exactly(tmp_path, monkeypatch):
    cfg = make_config("adding", task_params={"T": 12}, model="lstm", hidden=6,
                      model_options={"dropout": 0.0}, batch_size=16, max_sequences=640,
                      test_size=64, log_every=160)
    straight = train(cfg, tmp_path / "straight")
    undo = _interrupt_after(monkeypatch, tasks.TASKS["adding"], 17)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut")
    undo()
    _, meta = load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")
    assert meta["sequences"] == 17 * 16
    resumed = train(None, tmp_path / "cut", resume=True)
    a, _ = load_checkpoint(tmp_path / "straight" / "checkpoint.safetensors")
    b, _ = load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")
    for k in a:
        if k.startswith(("model.", "optim.")):
            assert torch.equal(a[k], b[k]), k
    assert resumed["test"] == straight["test"]
    assert [m["sequences"] for m in RunDir(tmp_path / "cut").metrics()] == \
        [m["sequences"] for m in RunDir(tmp_path / "straight").metrics()]


def test_paper_protocol_trials_in_lockstep(tmp_path):
    cfg = make_config("longlag-2c", protocol="paper", task_params={"p": 3, "q": 4}, trials=3,
                      max_sequences=400, log_every=100, test_size=500,
                      stop={"kind": "recent", "window": 50, "max_wrong": 0})
    result = train(cfg, tmp_path / "paper")
    assert result["n_trials"] == 3 and len(result["trials"]) == 3
    assert result["experiment"] == "2c-q50-p50" and result["budget"] == 400
    for t in result["trials"]:
        assert t["test"]["n"] == 500
        assert t["solved"] == (t["sequences"] is not None)
    tensors, meta = load_checkpoint(tmp_path / "paper" / "checkpoint.safetensors")
    assert tensors["W"].shape[0] == 3 and meta["sequences"] <= result["budget"]


def test_evaluate_counts_wrong_sequences():
    task = tasks.make("adding-1997", T=30)
    batch = task.sample(100, torch.Generator().manual_seed(0))
    perfect = evaluate(lambda b: b.y, task, 0, batches=(batch,))
    assert perfect["wrong"] == 0 and perfect["mse"] == 0
    half = evaluate(lambda b: b.y + 0.5, task, 0, batches=(batch,))
    assert half["wrong"] == 100 and half["mean_abs_error"] == pytest.approx(0.5)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a valid rnnlab checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.safetensors")


def test_demo_runs_and_draws(tmp_path, capsys):
    from rnnlab import demo

    rows = demo.main(budget=96, T=24, out=tmp_path / "demo", batch_size=32)
    assert len(rows) == 3
    out = capsys.readouterr().out
    assert "solved" in out and "tanh RNN" in out and "LSTM 1997" in out
    solved = [r["label"] for r in rows if r["result"]["solved"]]
    assert (f"Solved within 96 sequences: {', '.join(solved)}." in out if solved
            else "No model solved it within 96 sequences." in out)
    png = tmp_path / "demo" / "learning_curves.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_paper_protocol_resumes_exactly(tmp_path, monkeypatch):
    cfg = make_config("longlag-2c", protocol="paper", task_params={"p": 3, "q": 4}, trials=2,
                      max_sequences=120, log_every=40, test_size=100,
                      stop={"kind": "recent", "window": 500})
    train(cfg, tmp_path / "straight")
    undo = _interrupt_after(monkeypatch, tasks.TASKS["longlag-2c"], 3)  # in the 2nd chunk
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut")
    undo()
    train(None, tmp_path / "cut", resume=True)
    a, _ = load_checkpoint(tmp_path / "straight" / "checkpoint.safetensors")
    b, meta = load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")
    assert meta["sequences"] == 120
    assert torch.equal(a["W"], b["W"]) and torch.equal(a["V"], b["V"])


@pytest.mark.parametrize("task,params,kind,shortcut", [
    ("longlag-2c", dict(p=50, q=20), "lstm", False),   # every step one symbol
    ("reber", {}, "gru", False),                       # strings padded with −1 (no input)
    ("longlag-2a", dict(p=20), "lstm", True),          # the readout sees the input too
    ("order-6a", {}, "lstm1997", False),
])
def test_a_model_reads_symbols_as_it_reads_their_one_hot_input(task, params, kind, shortcut,
                                                              engine_path):
    """The trainer feeds one-hot tasks as symbols (`Batch.inputs`): the core then projects
    each symbol once. Same outputs and gradients as the dense one-hot x (float64)."""
    from rnnlab.training.model import make_model

    t = tasks.make(task, **params)
    batch = t.sample(6, torch.Generator().manual_seed(3))
    assert batch.symbols is not None and batch.inputs is batch.symbols
    if task == "reber":
        assert (batch.symbols < 0).any()  # padding past a string's end
    torch.manual_seed(0)
    model = make_model(t, kind, 3 if kind == "lstm1997" else 8, shortcut=shortcut).double()
    results = []
    for x in (batch.x.double(), batch.symbols):
        out = model(x, batch.lengths)
        results.append((out, torch.autograd.grad(out.square().sum(), list(model.parameters()))))
    (dense, d_grads), (sym, s_grads) = results
    torch.testing.assert_close(sym, dense, rtol=0, atol=1e-12)
    for a, b in zip(s_grads, d_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_a_model_refuses_symbols_it_cannot_read():
    from rnnlab.training.model import make_model

    t = tasks.make("order-6a")
    model = make_model(t, "lstm", 4)
    with pytest.raises(ValueError, match=r"symbols must lie in \[-1, 8\)"):
        model(torch.tensor([[8]]))
    with pytest.raises(ValueError, match="symbols must lie"):
        model(torch.tensor([[-2]]))
    with pytest.raises(TypeError, match="integer symbols"):
        model(torch.ones(3, 1, dtype=torch.bool))
