"""The on-line (truncated RTRL) learner of the 1997 LSTM."""

import types
from pathlib import Path

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.online import _stack_rows

# every test here runs on the compiled kernels and on the reference path
pytestmark = pytest.mark.usefixtures("engine_path")

CONFIGS = [
    ("adding-net", dict(input_size=2, num_blocks=2, block_size=2), {}),
    ("reber-net", dict(input_size=7, num_blocks=3, block_size=2, bias=("in", "out")),
     {"output_bias": False}),
    ("task-2a", dict(input_size=5, num_blocks=1, output_gate=False, recurrent=False, bias=False,
                     g="logistic", h="identity"), {"output_bias": False, "shortcut": True}),
    ("no-gate-recurrence", dict(input_size=3, num_blocks=2, block_size=1, gate_recurrence=False),
     {}),
    # Gers et al. 2000: forget gates, the CERG net's connectivity (outputs see the inputs)
    ("forget-gate-cerg", dict(input_size=7, num_blocks=2, block_size=2, gate_recurrence=False,
                              forget_gate=True, bias=("in", "out", "forget"),
                              forget_gate_bias=[0.5, 1.0]), {"shortcut": True}),
    ("forget-gate-recurrent-gates", dict(input_size=3, num_blocks=2, forget_gate=True), {}),
]


def _module_pair(spec, readout_opts, outputs=3):
    torch.manual_seed(1)
    spec = dict(spec)
    I = spec.pop("input_size")
    K = spec.pop("num_blocks")
    S = spec.pop("block_size", 1)
    lstm = rnnlab.LSTM1997(I, K, S, init_range=0.5, dtype=torch.float64, **spec)
    z = lstm.num_cells + (I if readout_opts.get("shortcut") else 0)
    readout = nn.Linear(z, outputs, bias=readout_opts.get("output_bias", True),
                        dtype=torch.float64)
    return lstm, readout


def _bptt_gradient(lstm, readout, x, targets, mask, shortcut):
    """½ Σ (σ(readout) − target)² at the masked steps, differentiated by the engine."""
    y, _ = lstm(x)
    z = torch.cat((y, x), dim=-1) if shortcut else y
    out = torch.sigmoid(readout(z))
    E = 0.5 * (((out - targets) ** 2) * mask.view(-1, 1, 1)).sum()
    params = list(lstm.parameters()) + list(readout.parameters())
    grads = dict(zip([n for n, _ in lstm.named_parameters()] +
                     ["readout." + n for n, _ in readout.named_parameters()],
                     torch.autograd.grad(E, params)))
    return out, grads


@pytest.mark.parametrize("name,spec,readout_opts", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_one_sequence_gradient_equals_truncated_bptt(name, spec, readout_opts):
    lstm, readout = _module_pair(spec, readout_opts)
    shortcut = readout_opts.get("shortcut", False)
    learner = rnnlab.OnlineLSTM1997.from_modules(lstm, readout, output_sees_input=shortcut)
    T, B = 9, 2
    x = torch.randn(T, B, lstm.input_size, dtype=torch.float64)
    targets = torch.rand(T, B, 3, dtype=torch.float64)
    mask = torch.tensor([0, 1, 0, 0, 1, 1, 0, 0, 1], dtype=torch.bool)
    outputs, grads = learner.run(x.unsqueeze(1), targets.unsqueeze(1), mask, update="none")
    ref_out, ref = _bptt_gradient(lstm, readout, x, targets, mask, shortcut)
    torch.testing.assert_close(outputs[:, 0], ref_out, rtol=1e-12, atol=1e-12)
    as_module = types.SimpleNamespace(
        input_size=lstm.input_size, recurrent=lstm.recurrent, bias_units=lstm.bias_units,
        **{n: ref[n] for n in ref if not n.startswith("readout.")},
    )
    want_W = _stack_rows(as_module, learner.cell, learner.M)
    torch.testing.assert_close(grads["W"][0], want_W, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(grads["V"][0, :, :-1], ref["readout.weight"], rtol=1e-10,
                               atol=1e-13)
    if readout.bias is not None:
        torch.testing.assert_close(grads["V"][0, :, -1], ref["readout.bias"], rtol=1e-10,
                                   atol=1e-13)


@pytest.mark.parametrize("kind", ["cross-entropy", "linear"])
def test_other_output_errors_gradient_equals_bptt(kind):
    """error="cross-entropy": the gradient of Σ BCE(σ(readout), target); output="linear":
    y = readout(cells) and the gradient of ½ Σ (y − t)² (δ = y − t in both)."""
    lstm, readout = _module_pair(dict(input_size=2, num_blocks=2, block_size=2), {})
    learner = rnnlab.OnlineLSTM1997.from_modules(lstm, readout)
    x = torch.randn(7, 1, 2, dtype=torch.float64)
    targets = torch.rand(7, 1, 3, dtype=torch.float64)
    mask = torch.tensor([0, 1, 0, 0, 1, 0, 1], dtype=torch.bool)
    y, _ = lstm(x)
    net = readout(y)
    if kind == "cross-entropy":
        learner.error = "cross-entropy"
        want_out = torch.sigmoid(net)
        E = torch.nn.functional.binary_cross_entropy_with_logits(net, targets, reduction="none")
    else:
        learner.output = "linear"
        want_out, E = net, 0.5 * (net - targets) ** 2
    E = (E * mask.view(-1, 1, 1)).sum()
    out, grads = learner.run(x.unsqueeze(1), targets.unsqueeze(1), mask, update="none")
    torch.testing.assert_close(out[:, 0], want_out, rtol=1e-12, atol=1e-12)
    names = [n for n, _ in lstm.named_parameters()]
    g = torch.autograd.grad(E, [*lstm.parameters(), readout.weight])
    torch.testing.assert_close(grads["V"][0, :, :-1], g[-1], rtol=1e-10, atol=1e-13)
    as_module = types.SimpleNamespace(input_size=2, recurrent=True,
                                      bias_units=lstm.bias_units, **dict(zip(names, g)))
    want_W = _stack_rows(as_module, learner.cell, learner.M)
    torch.testing.assert_close(grads["W"][0], want_W, rtol=1e-10, atol=1e-13)


def test_output_and_error_are_checked():
    with pytest.raises(ValueError, match="squared error"):
        rnnlab.OnlineLSTM1997(2, 2, output="linear", error="cross-entropy")
    with pytest.raises(ValueError, match="output must be"):
        rnnlab.OnlineLSTM1997(2, 2, output="tanh")


def test_round_trip_through_modules():
    learner = rnnlab.OnlineLSTM1997(2, 2, 2, trials=3, input_gate_bias=[-3, -6],
                                    generator=torch.Generator().manual_seed(0))
    lstm, readout = learner.to_modules(trial=2)
    assert lstm.bias_in.tolist() == [-3, -6]
    again = rnnlab.OnlineLSTM1997.from_modules(lstm, readout)
    torch.testing.assert_close(again.W[0], learner.W[2])
    torch.testing.assert_close(again.V[0], learner.V[2])
    assert sum(p.numel() for p in lstm.parameters()) + readout.weight.numel() + 1 == 93


def test_trials_in_lockstep_equal_separate_runs():
    gen = torch.Generator().manual_seed(3)
    batch = rnnlab.OnlineLSTM1997(2, 2, 2, trials=4, generator=gen, dtype=torch.float64)
    singles = []
    for k in range(4):
        lstm, readout = batch.to_modules(k)
        singles.append(rnnlab.OnlineLSTM1997.from_modules(lstm, readout))
    T = 12
    x = torch.randn(T, 4, 1, 2, dtype=torch.float64)
    targets = torch.rand(T, 4, 1, 1, dtype=torch.float64)
    mask = torch.zeros(T, dtype=torch.bool)
    mask[[3, 7, 11]] = True
    out, _ = batch.run(x, targets, mask, lr=0.5, update="step")
    for k, single in enumerate(singles):
        o, _ = single.run(x[:, k : k + 1], targets[:, k : k + 1], mask, lr=0.5, update="step")
        torch.testing.assert_close(out[:, k], o[:, 0])
        torch.testing.assert_close(batch.W[k], single.W[0])


def test_learning_reduces_the_error():
    """A seeded, tiny problem: remember the sign of the first input for 10 steps."""
    gen = torch.Generator().manual_seed(0)
    learner = rnnlab.OnlineLSTM1997(1, 2, 1, trials=2, generator=gen, input_gate_bias=-1.0)
    data = torch.Generator().manual_seed(1)

    def batch(n=8):
        x = torch.zeros(10, 2, n, 1)
        sign = torch.randint(0, 2, (2, n, 1), generator=data).float()
        x[0] = sign * 2 - 1
        targets = sign.expand(10, 2, n, 1)
        return x, targets

    mask = torch.zeros(10, dtype=torch.bool)
    mask[-1] = True

    def error():
        x, t = batch(256)
        out, _ = learner.run(x, t, mask, update="none")
        return (out[-1] - t[-1]).abs().mean().item()

    before = error()
    for _ in range(150):
        x, t = batch()
        learner.run(x, t, mask, lr=1.0, update="sequence")
    after = error()
    assert after < 0.5 * before, (before, after)


def _peak_rss_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise OSError


def test_memory_does_not_grow_with_T(engine_path):
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
        _peak_rss_kib()
    except OSError:
        pytest.skip("peak RSS cannot be measured here")
    learner = rnnlab.OnlineLSTM1997(2, 4, 2, trials=4)
    mask = torch.zeros(1, dtype=torch.bool)  # no targets: the forward traces alone

    def peak_growth(T):
        x = torch.randn(T, 4, 16, 2)
        mask_T = mask.expand(T)
        Path("/proc/self/clear_refs").write_text("5")
        base = _peak_rss_kib()
        learner.run(x, torch.zeros(T, 4, 16, 1), mask_T, update="none")
        return _peak_rss_kib() - base

    # the reference path steps in Python (~4 ms a step): a shorter series says the same
    long = 10_000 if engine_path == "compiled" else 5_000
    small, large = peak_growth(long // 10), peak_growth(long)
    # per step, BPTT would keep 64 sequences × ~60 values (≈ 15 kB): 75 MB for T = 5,000.
    # the learner keeps only its inputs, targets and outputs (≈ 3 MB) beyond fixed traces.
    assert large - small < 30_000, (small, large)


def _learner(trials=3, dtype=torch.float64, **kw):
    return rnnlab.OnlineLSTM1997(4, 2, 2, 2, trials=trials, dtype=dtype, init_range=0.5,
                                 generator=torch.Generator().manual_seed(5), **kw)


def test_symbols_are_one_hot_inputs():
    sym = torch.randint(-1, 4, (9, 3, 2))
    dense = torch.nn.functional.one_hot(sym.clamp_min(0), 4).double() * (sym >= 0).unsqueeze(-1)
    targets = torch.rand(9, 3, 2, 2, dtype=torch.float64)
    a, b = _learner(output_sees_input=True), _learner(output_sees_input=True)
    out_a, _ = a.run(sym, targets, lr=0.3)
    out_b, _ = b.run(dense, targets, lr=0.3)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(a.W, b.W)


def test_a_series_equals_one_call_per_batch():
    x = torch.randn(4, 7, 3, 2, 4, dtype=torch.float64)
    targets = torch.rand(4, 7, 3, 2, 2, dtype=torch.float64)
    mask = torch.rand(4, 7, 3, 2) < 0.5
    for update in ("step", "sequence"):
        a, b = _learner(), _learner()
        out_a, g_a = a.run(x, targets, mask, lr=0.4, update=update)
        outs, g_W = [], torch.zeros_like(b.W)
        for s in range(4):
            o, g = b.run(x[s], targets[s], mask[s], lr=0.4, update=update)
            outs.append(o)
            g_W += g["W"]
        torch.testing.assert_close(out_a, torch.stack(outs))
        torch.testing.assert_close(a.W, b.W)
        torch.testing.assert_close(g_a["W"], g_W)


def test_lengths_end_sequences_early():
    """Steps past a sequence's length are not run: the same weights as running the shorter
    sequence alone, and no output there."""
    x = torch.randn(10, 1, 1, 4, dtype=torch.float64)
    targets = torch.rand(10, 1, 1, 2, dtype=torch.float64)
    a, b = _learner(trials=1), _learner(trials=1)
    out_a, _ = a.run(x, targets, lengths=torch.tensor([[6]]), lr=0.5)
    out_b, _ = b.run(x[:6], targets[:6], lr=0.5)
    assert out_a[6:].isnan().all()
    torch.testing.assert_close(out_a[:6], out_b)
    torch.testing.assert_close(a.W, b.W)


def test_per_trial_generators_make_trials_independent_of_their_neighbours():
    gens = lambda ks: [torch.Generator().manual_seed(100 + k) for k in ks]  # noqa: E731
    three = rnnlab.OnlineLSTM1997(2, 2, 2, trials=3, generator=gens([0, 1, 2]))
    alone = rnnlab.OnlineLSTM1997(2, 2, 2, trials=1, generator=gens([2]))
    torch.testing.assert_close(three.W[2:], alone.W)
    part = three.subset([2, 0])
    part.W += 1
    three.assign([2, 0], part)
    torch.testing.assert_close(three.W[2:], alone.W + 1)


def test_bad_arguments_are_named():
    """The same errors on both paths (the compiled one checks values inside its op)."""
    learner = _learner()
    x = torch.randn(5, 3, 2, 4)
    with pytest.raises(ValueError, match="x must be"):
        learner.run(torch.randn(5, 2, 2, 4))
    with pytest.raises(ValueError, match="targets must be"):
        learner.run(x, torch.rand(5, 3, 2, 3))
    with pytest.raises(ValueError, match="symbols must lie"):
        learner.run(torch.full((5, 3, 2), 4))
    with pytest.raises(ValueError, match="lengths must"):
        learner.run(x, lengths=torch.full((3, 2), 6))
    with pytest.raises(ValueError, match="needs gradient"):
        learner.run(x, gradient=False)
    with pytest.raises(ValueError, match="lr must"):
        learner.run(x, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="lengths must be"):
        learner.run(x, lengths=torch.full((2, 3), 5))
    with pytest.raises(ValueError, match="mask must be"):
        learner.run(x, torch.rand(5, 3, 2, 2), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="symbols must lie"):
        learner.run(torch.full((5, 3, 2), -2))


def test_the_online_learner_refuses_full_gradients():
    """truncated=False would be silently the truncated rule: the learner says so instead."""
    with pytest.raises(ValueError, match="truncated RTRL"):
        rnnlab.OnlineLSTM1997(2, 2, 1, truncated=False)
    with pytest.raises(TypeError, match="truncated must be true or false"):
        rnnlab.OnlineLSTM1997(2, 2, 1, truncated="maybe")
    assert rnnlab.OnlineLSTM1997(2, 2, 1, truncated=True).trials == 1


# -- continual streams (Gers, Schmidhuber & Cummins 2000) ------------------------------------

def _stream_learner(forget_gate=True, trials=4, seed=0):
    """A small CERG-like net: forget gates, outputs that see the inputs, float64."""
    return rnnlab.OnlineLSTM1997(
        5, 2, 2, 5, trials=trials, output_sees_input=True, gate_recurrence=False,
        forget_gate=forget_gate, bias=("in", "out", "forget") if forget_gate else ("in", "out"),
        init_range=0.3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed),
        **({"forget_gate_bias": [0.5, 1.0]} if forget_gate else {}))


def _stream_data(T=40, N=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    symbols = torch.randint(-1, 5, (T, N), generator=g)
    targets = (torch.rand(T, N, 5, generator=g, dtype=torch.float64) > 0.6).double()
    return symbols, targets


def _copy(learner):
    return learner.subset(list(range(learner.trials)))


@pytest.mark.parametrize("forget_gate", [True, False], ids=["forget-gate", "1997"])
def test_a_stream_is_one_long_sequence_learned_at_every_step(forget_gate):
    """stream(…) = run(…, update="step") on one sequence per trial (B = 1)."""
    a = _stream_learner(forget_gate)
    b = _copy(a)
    symbols, targets = _stream_data()
    got = a.stream(symbols, targets, lr=0.3)
    out, _ = b.run(symbols.unsqueeze(-1), targets.unsqueeze(2), lr=0.3, update="step")
    torch.testing.assert_close(got.outputs, out[:, :, 0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.W, b.W, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.V, b.V, rtol=1e-12, atol=1e-12)
    assert got.steps.tolist() == [40] * 4 and not got.erred.any()


def test_a_stream_fed_in_pieces_equals_one_call():
    a = _stream_learner()
    b = _copy(a)
    symbols, targets = _stream_data()
    whole = a.stream(symbols, targets, lr=0.3, lr_decay=0.99)
    first = b.stream(symbols[:17], targets[:17], lr=0.3, lr_decay=0.99)
    rest = b.stream(symbols[17:], targets[17:], lr=0.3 * 0.99 ** 17, lr_decay=0.99,
                    state=first.state)
    torch.testing.assert_close(torch.cat((first.outputs, rest.outputs)), whole.outputs)
    for x, y in zip((*whole.state, a.W, a.V), (*rest.state, b.W, b.V)):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_the_learning_rate_decays_at_every_step():
    """lr_decay d: step t learns at lr·d^t (Gers et al.'s α decay), as one-step calls do."""
    a = _stream_learner()
    b = _copy(a)
    symbols, targets = _stream_data(T=12)
    a.stream(symbols, targets, lr=0.5, lr_decay=0.9)
    state = None
    for t in range(12):
        state = b.stream(symbols[t : t + 1], targets[t : t + 1], lr=0.5 * 0.9 ** t,
                         state=state).state
    torch.testing.assert_close(a.W, b.W, rtol=1e-12, atol=1e-12)


def test_a_stream_ends_at_its_first_wrong_prediction():
    a = _stream_learner()
    symbols, targets = _stream_data(T=60)
    frozen = _copy(a).stream(symbols, targets, learn=False)  # no learning: outputs only
    wrong = ((frozen.outputs - targets).abs() >= 0.49).any(-1)  # (T, N)
    first = [int(torch.nonzero(wrong[:, n])[0]) if wrong[:, n].any() else None
             for n in range(4)]
    assert any(f is not None and f < 59 for f in first)
    got = _copy(a).stream(symbols, targets, learn=False, stop_error=0.49)
    for n, f in enumerate(first):
        assert got.steps[n] == (60 if f is None else f + 1)
        assert bool(got.erred[n]) == (f is not None)
        assert torch.isnan(got.outputs[got.steps[n]:, n]).all()
        ran = int(got.steps[n])
        torch.testing.assert_close(got.outputs[:ran, n], frozen.outputs[:ran, n])
    # learning: the stream ends where its own (learning) prediction is first wrong; the weights
    # are those of a run of that many steps, the wrong step learned from
    b, c = _copy(a), _copy(a)
    learned = b.stream(symbols, targets, lr=0.3, stop_error=0.49)
    assert learned.erred.any()
    _, _ = c.run(symbols.unsqueeze(-1), targets.unsqueeze(2), lr=0.3, update="step",
                 lengths=learned.steps.view(4, 1))
    torch.testing.assert_close(b.W, c.W, rtol=1e-12, atol=1e-12)


def test_an_external_reset_starts_the_stream_afresh():
    """resets[t]: before step t activations, states and traces are zero: the same as a new
    stream from stream_state(); the weights carry over."""
    a = _stream_learner()
    b = _copy(a)
    symbols, targets = _stream_data(T=30)
    resets = torch.zeros(30, 4, dtype=torch.bool)
    resets[11] = True
    whole = a.stream(symbols, targets, lr=0.3, resets=resets)
    b.stream(symbols[:11], targets[:11], lr=0.3)
    second = b.stream(symbols[11:], targets[11:], lr=0.3)
    torch.testing.assert_close(whole.outputs[11:], second.outputs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.W, b.W, rtol=1e-12, atol=1e-12)


def test_stream_arguments_are_checked():
    a = _stream_learner()
    symbols, targets = _stream_data(T=5)
    with pytest.raises(ValueError, match="symbols must be"):
        a.stream(symbols.double(), targets)
    with pytest.raises(ValueError, match="targets must be"):
        a.stream(symbols, targets[:, :2])
    with pytest.raises(ValueError, match="symbols must lie"):
        a.stream(symbols + 5, targets)
    with pytest.raises(ValueError, match="lr_decay"):
        a.stream(symbols, targets, lr_decay=1.5)
    with pytest.raises(ValueError, match="state must be"):
        a.stream(symbols, targets, state=_stream_learner(trials=2).stream_state())


def test_compiled_stream_equals_the_reference_path(monkeypatch, engine_path):
    """Both paths, every option at once (forget gates, resets, decay, a stop): the same
    outputs, steps, stops, final state and weights (float64)."""
    if engine_path != "compiled":
        pytest.skip("compares the two paths itself")
    runs = []
    for flag in ("1", "0"):
        monkeypatch.setenv("RNNLAB_KERNELS", flag)
        a = _stream_learner(trials=5)
        symbols, targets = _stream_data(T=50, N=5, seed=3)
        resets = torch.zeros(50, 5, dtype=torch.bool)
        resets[20, :3] = True
        first = a.stream(symbols[:25], targets[:25], lr=0.4, lr_decay=0.98, resets=resets[:25])
        got = a.stream(symbols[25:], targets[25:], lr=0.2, lr_decay=0.98, stop_error=0.66,
                       resets=resets[25:], state=first.state)
        runs.append((first.outputs, got, a.W, a.V))
    (o1, g1, W1, V1), (o2, g2, W2, V2) = runs
    assert g1.erred.any() and not g1.erred.all()
    torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g1.outputs, g2.outputs, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert g1.steps.tolist() == g2.steps.tolist() and g1.erred.tolist() == g2.erred.tolist()
    for x, y in zip((*g1.state, W1, V1), (*g2.state, W2, V2)):
        torch.testing.assert_close(x, y, rtol=1e-11, atol=1e-12)
