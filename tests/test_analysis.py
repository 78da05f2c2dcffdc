"""Stability analysis against closed forms and torch autograd."""

import functools
import json

import naive
import numpy as np
import pytest
import torch

import rnnlab
from rnnlab import analysis
from rnnlab.engine import trajectory


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_linear_response_is_W_to_the_t_C_x():
    W = torch.tensor([[0.9, -0.4], [0.4, 0.9]])  # complex pair: a damped rotation
    C = torch.tensor([[1.0, 0.5], [0.0, 2.0]])
    x0 = torch.tensor([1.0, -1.0])
    h = analysis.linear_response(W, C, x0, steps=30)
    for t in (0, 1, 7, 30):
        torch.testing.assert_close(h[t], torch.linalg.matrix_power(W, t) @ C @ x0)
    s = analysis.spectrum(W)
    assert s["spectral_radius"] == pytest.approx(abs(complex(0.9, 0.4)))
    assert s["stable"]
    # the envelope follows ρ^t
    assert h[30].norm() / h[0].norm() == pytest.approx(s["spectral_radius"] ** 30, rel=0.5)


def test_multitap_roots_and_response():
    taps = {1: 0.5, 5: 0.25}  # h(t) = 0.5 h(t−1) + 0.25 h(t−5) + x(t)
    roots = analysis.multitap_roots(taps)
    want = np.roots([1, -0.5, 0, 0, 0, -0.25])
    np.testing.assert_allclose(np.sort_complex(roots), np.sort_complex(want))
    h = analysis.multitap_response(taps, steps=60)
    # the same recursion in companion form
    A = np.zeros((5, 5))
    A[0, 0], A[0, 4] = 0.5, 0.25
    A[1:, :-1] = np.eye(4)
    state = np.zeros(5)
    state[0] = 1.0
    for t in range(1, 61):
        state = A @ state
        assert h[t] == pytest.approx(state[0])
    # it decays like the largest root
    assert abs(roots[0]) < 1 and h[60] < h[40]


def test_scalar_recursions_saturate_blow_up_and_die():
    assert analysis.classify(analysis.recursion("relu", 1.5, h0=1.0, steps=60))["behaviour"] \
        == "blows up"
    assert analysis.classify(analysis.recursion("relu", 1.5, h0=-1.0, steps=20))["behaviour"] \
        == "dies"
    r = analysis.classify(analysis.recursion("tanh", 3.0, h0=0.1, steps=60))
    assert r["behaviour"] == "saturates" and r["value"] == pytest.approx(0.995, abs=0.01)
    rows = analysis.sweep("sigmoid", [-4, 0.5, 4], steps=80)
    assert all(row["behaviour"] == "saturates" for row in rows)
    vec = analysis.recursion("tanh", torch.eye(3) * 2, h0=torch.ones(3) * 0.1, steps=40)
    assert vec.shape == (41, 3)


def _step_fn(module):
    if isinstance(module, rnnlab.LSTM):
        return functools.partial(naive.lstm_step, peephole=module.peephole)
    if isinstance(module, rnnlab.GRU):
        return functools.partial(naive.gru_step, reset_after=module.reset_after)
    return functools.partial(naive.rnn_step, nonlinearity=module.nonlinearity)


@pytest.mark.parametrize("module", [
    rnnlab.RNN(3, 4, nonlinearity="tanh"), rnnlab.RNN(3, 4, nonlinearity="sigmoid"),
    rnnlab.RNN(3, 4, nonlinearity="relu"), rnnlab.LSTM(3, 4), rnnlab.LSTM(3, 4, peephole=True),
    rnnlab.GRU(3, 4), rnnlab.GRU(3, 4, reset_after=False),
], ids=["tanh", "sigmoid", "relu", "lstm", "lstm-peephole", "gru", "gru-reset-before"])
def test_step_jacobians_equal_autograd(module):
    module = module.double()
    if getattr(module, "peephole", False):
        with torch.no_grad():
            module.weight_peephole_l0.uniform_(-1, 1)
    tr = analysis.layer_trajectories(module, torch.randn(6, 2, 3))[0]
    params, tape = tr["params"], tr["tape"]
    step = _step_fn(module)
    H = module.hidden_size
    for t in (0, 3, 5):
        J = analysis.step_jacobian(tr["cell"], params, tape, t)
        for b in range(2):
            x_t = tr["input"][t, b]
            state = torch.cat([s[t, b] for s in tape.states])

            def f(s, x_t=x_t):
                parts = (s[:H], s[H:]) if isinstance(module, rnnlab.LSTM) else (s,)
                return torch.cat(step(params, x_t, parts))

            torch.testing.assert_close(J[b], torch.autograd.functional.jacobian(f, state))


def test_lyapunov_of_a_linear_map_is_log_of_its_eigenvalues():
    Q = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(0)))[0]
    lam = torch.tensor([1.3, 1.0, 0.8, 0.5, 0.2])
    W = Q @ torch.diag(lam) @ Q.t()  # symmetric: no transient growth
    m = rnnlab.RNN(1, 5, nonlinearity="linear", bias=False).double()
    with torch.no_grad():
        m.weight_hh_l0.copy_(W)
    x = torch.zeros(200, 1, 1)
    out = analysis.lyapunov_spectrum(m, x, k=5, reorth=3, transient=20)
    torch.testing.assert_close(out["exponents"][0], lam.log(), rtol=1e-6, atol=1e-8)
    assert out["largest_brute_force"][0] == pytest.approx(float(lam.log()[0]), abs=1e-3)


def test_jacobian_norms_of_a_tiny_tanh_rnn_decay_like_the_derivatives():
    m = rnnlab.RNN(1, 3, nonlinearity="tanh").double()
    w = 0.05
    with torch.no_grad():
        m.weight_hh_l0.copy_(torch.eye(3) * w)  # tiny, diagonal recurrent weights
    x = torch.randn(12, 1, 1)
    norms = analysis.jacobian_norms(m, x)  # (T + 1, B), lag 0..T
    h = analysis.layer_trajectories(m, x)[0]["tape"].states[0][1:, 0]  # (T, 3)
    d = (1 - h ** 2) * w
    for lag in (1, 4, 12):
        want = d[-lag:].prod(0).abs().max()  # the product of the derivatives
        assert float(norms[lag, 0]) == pytest.approx(float(want), rel=1e-10)
    assert norms[12, 0] < 1e-12  # vanishing


def test_gradients_through_time_agree_with_autograd():
    m = rnnlab.LSTM(2, 3).double()
    x = torch.randn(9, 2, 2)

    def loss(out):
        return (out[-1] ** 2).sum() + out[2].sum()

    g = analysis.gradient_norms(m, x, loss)
    # autograd: ∂L/∂(h_t, c_t) by making the state after step t a leaf
    for t in (0, 2, 5, 9):
        if t == 0:
            h0 = torch.zeros(1, 2, 3, requires_grad=True)
            c0 = torch.zeros(1, 2, 3, requires_grad=True)
            out, _ = m(x, (h0, c0))
            dh, dc = torch.autograd.grad(loss(out), (h0, c0))
        else:
            first, (h_t, c_t) = m(x[:t])
            h_t = h_t.detach().requires_grad_()
            c_t = c_t.detach().requires_grad_()
            rest = m(x[t:], (h_t, c_t))[0] if t < 9 else first[:0]
            out = torch.cat((first[:-1].detach(), h_t, rest))
            dh, dc = torch.autograd.grad(loss(out), (h_t, c_t), allow_unused=True)
            dc = torch.zeros_like(c_t) if dc is None else dc  # c_T has no future
        assert float(g["h"][t]) == pytest.approx(float(dh[0].norm(dim=1).mean()), rel=1e-9)
        assert float(g["c"][t]) == pytest.approx(float(dc[0].norm(dim=1).mean()), rel=1e-9)


def test_torch_modules_spectra_saturation_memory():
    ref = torch.nn.GRU(2, 4, num_layers=2).double()
    rows = analysis.recurrent_spectra(ref)
    assert [r["gate"] for r in rows] == ["r", "z", "n"] * 2
    torch.testing.assert_close(
        rows[5]["singular_values"], torch.linalg.svdvals(ref.weight_hh_l1[8:].detach()))
    x = torch.randn(20, 3, 2)
    sat = analysis.gate_saturation(ref, x)
    assert set(sat) == {"r", "z", "n"} and all(0 <= v <= 1 for v in sat.values())
    mem = analysis.memory_response(ref, x, t0=5)
    assert mem.shape == (20,) and float(mem[:5].abs().max()) == 0 and mem[5] > 0
    with pytest.raises(ValueError, match="cannot analyse"):
        analysis.recurrent_spectra(torch.nn.Linear(2, 2))


def test_trajectory_matches_the_module():
    m = rnnlab.GRU(3, 4).double()
    x = torch.randn(7, 2, 3)
    params = {n: p for n, p in m.named_parameters()}
    params = {k.removesuffix("_l0"): v for k, v in params.items()}
    tape = trajectory(m._make_cell(), x, (torch.zeros(2, 4),), params)
    out, _ = m(x)
    torch.testing.assert_close(tape.states[0][1:], out)


def test_sigmoid_gradients_vanish_through_depth():
    from rnnlab.analysis.depth import vanishing_through_depth

    r = vanishing_through_depth(("sigmoid", "tanh"), depth=8, width=64, instances=2)
    sig, tanh = r["sigmoid"]["batch"], r["tanh"]["batch"]
    assert len(sig) == 9  # 8 hidden layers and the output layer
    assert sig[0]["median"] < 1e-4 * sig[-2]["median"]  # orders of magnitude on the way down
    assert sig[0]["median"] / sig[-2]["median"] < tanh[0]["median"] / tanh[-2]["median"]
    assert len(r["tanh"]["single"]) == 9


@pytest.mark.parametrize("ref", [
    torch.nn.LSTM(3, 5, num_layers=2, proj_size=2), torch.nn.GRU(3, 4, bidirectional=True),
    torch.nn.RNN(3, 4, bias=False), rnnlab.LSTM(3, 4, peephole=True),
    rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True, layer_norm=True),
    rnnlab.GRU(3, 4, num_layers=2, layer_norm=True), rnnlab.LSTM(3, 4, variant="FGR"),
], ids=["lstm-proj", "gru-bidir", "rnn-nobias", "rnnlab-peephole", "lstm-ln", "gru-ln", "fgr"])
def test_architecture_is_read_off_a_state_dict(ref):
    from rnnlab.analysis.report import infer_module

    module = infer_module({k: v.double() for k, v in ref.state_dict().items()})
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(module(x)[0], ref.double()(x)[0])


def test_analyze_and_figures_commands(tmp_path, monkeypatch, capsys):
    import sys

    from safetensors.torch import save_file

    from rnnlab import cli

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["rnnlab", *args])
        try:
            cli.main()
        except SystemExit as e:
            return e.code or 0, capsys.readouterr()
        return 0, capsys.readouterr()

    save_file(torch.nn.LSTM(2, 4).state_dict(), tmp_path / "m.safetensors")
    code, out = run("analyze", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "a"),
                    "--steps", "30", "--batch", "4")
    assert code == 0, out.err
    report = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert {"spectrum", "jacobian_norms", "gradient_norms", "lyapunov", "memory_response",
            "gate_saturation"} <= set(report)
    assert len(report["jacobian_norms"]) == 31 and (tmp_path / "a" / "gradients.png").exists()
    torch.save({"weight": torch.zeros(2)}, tmp_path / "bad.pt")
    code, out = run("analyze", str(tmp_path / "bad.pt"))
    assert code == 2 and "not a recurrent state_dict" in out.err
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    code, out = run("analyze", str(tmp_path / "junk.safetensors"))
    assert code == 2 and "not a readable safetensors file" in out.err
    code, out = run("analyze", str(tmp_path / "m.safetensors"), "--what", "vibes")
    assert code == 2 and "unknown analysis vibes" in out.err
    code, out = run("figures", "--out", str(tmp_path / "f"), "--only", "linear_responses",
                    "--only", "multitap")
    assert code == 0, out.err
    assert (tmp_path / "f" / "multitap.png").stat().st_size > 10_000
    assert "multitap.png" in (tmp_path / "f" / "figures.md").read_text()


def test_the_1997_lstm_is_analysed_through_autograd_jacobians():
    m = rnnlab.LSTM1997(2, 2, 2, truncated=False, init_range=0.5).double()
    x = torch.randn(8, 3, 2)
    tr = analysis.layer_trajectories(m, x)[0]
    J = analysis.step_jacobian(tr["cell"], tr["params"], tr["tape"], 4, tr["input"])
    S = sum(s.shape[-1] for s in tr["tape"].states)
    assert J.shape == (3, S, S)
    # the carousel: ∂s_c(t)/∂s_c(t−1) = 1 exactly
    C = m.num_cells
    torch.testing.assert_close(torch.diagonal(J[:, -C:, -C:], dim1=1, dim2=2),
                               torch.ones(3, C))
    g = analysis.gradient_norms(m, x, lambda o: o[-1].sum())
    h0 = torch.zeros(1, 3, tr["tape"].states[0].shape[-1], requires_grad=True)
    s0 = torch.zeros(1, 3, C, requires_grad=True)
    out, _ = m(x, (h0, s0))
    dh0, ds0 = torch.autograd.grad(out[-1].sum(), (h0, s0))
    assert float(g["c"][0]) == pytest.approx(float(ds0[0].norm(dim=1).mean()), rel=1e-9)
    assert analysis.lyapunov_spectrum(m, x, k=3)["exponents"].shape == (3, 3)
    assert set(analysis.gate_saturation(m, x)) == {"in", "out"}


def test_analyze_a_char_lm_run_drives_its_core_with_its_own_text(tmp_path):
    """A run folder of `rnnlab lm train` (a layer-normalised GRU here): the core is analysed on
    windows of the run's text as its embedding feeds them."""
    from rnnlab import lm
    from rnnlab.analysis.report import analyze

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat; the dog ran off. " * 40)
    cfg = lm.make_config(text, model="gru", hidden=8, layers=1, embedding=4, steps=4,
                         val_every=4, batch=4, seq_len=20, options={"layer_norm": True})
    lm.train(cfg, tmp_path / "run")
    report = analyze(tmp_path / "run", tmp_path / "a", ("spectrum", "jacobian"), steps=20,
                     batch=3, echo=lambda _: None)
    assert report["inputs"] == "3 sequences of its task, windows of 20 symbols of text.txt"
    assert "layer_norm=True" in report["model"] and len(report["jacobian_norms"]) == 21
    assert [r["gate"] for r in report["spectrum"]] == ["r", "z", "n"]
