"""The options torch.nn refuses (rnnlab.options): recurrent dropout and zoneout against the
naive per-step oracle with the same masks, gradcheck, torch.func and double backward through
them, reproducibility, the forget-gate initialisations and the errors."""

import functools
import math

import naive
import pytest
import torch

import rnnlab
from rnnlab import options as opt

pytestmark = pytest.mark.usefixtures("engine_path")

MASKED = [
    ("rnn-tanh", rnnlab.RNN, {}),
    ("rnn-relu", rnnlab.RNN, {"nonlinearity": "relu"}),
    ("lstm", rnnlab.LSTM, {}),
    ("lstm-peephole-proj", rnnlab.LSTM, {"peephole": True, "proj_size": 2}),
    ("lstm-truncated-peephole", rnnlab.LSTM, {"truncated": True, "peephole": True}),
    ("gru", rnnlab.GRU, {}),
    ("gru-reset-before", rnnlab.GRU, {"reset_after": False}),
]
REGULARISERS = [
    ("drop", {"recurrent_dropout": 0.4}),
    ("zone", {"zoneout": 0.35}),
    ("both", {"recurrent_dropout": 0.3, "zoneout": 0.4}),
]


def naive_step(m):
    if isinstance(m, rnnlab.LSTM):
        return functools.partial(naive.lstm_step, peephole=m.peephole, truncated=m.truncated)
    if isinstance(m, rnnlab.GRU):
        return functools.partial(naive.gru_step, reset_after=m.reset_after)
    return functools.partial(naive.rnn_step, nonlinearity=m.nonlinearity)


def make(cls, options, H=4):
    return naive.make_module(cls, H, **options)


inputs = naive.module_inputs


def the_masks(m, x, seed):
    """The masks the module draws first thing in forward under ``seed``."""
    torch.manual_seed(seed)
    T, B = x.shape[:2]
    return opt.sample_masks(4, T, B, m._state_sizes(), drop=m.recurrent_dropout, zone=m._zone,
                            training=m.training, like=x)


leaves, loss_of = naive.leaves, naive.loss_of


@pytest.mark.parametrize("name,cls,options", MASKED, ids=[c[0] for c in MASKED])
@pytest.mark.parametrize("reg_name,reg", REGULARISERS, ids=[r[0] for r in REGULARISERS])
@pytest.mark.parametrize("mode", ["train-lengths", "train-full", "eval"])
def test_matches_naive_oracle_with_the_same_masks(name, cls, options, reg_name, reg, mode):
    m = make(cls, {**options, **reg})
    m.train(mode != "eval")
    x, hx, lens = inputs(m, lengths=mode == "train-lengths")
    torch.manual_seed(11)
    out, finals = m(x, hx, lengths=lens)
    masks = the_masks(m, x, 11)
    if mode == "eval" and reg_name == "drop":
        assert masks is None  # recurrent dropout is off in evaluation
    ref_out, ref_finals = naive.run(naive_step(m), naive.module_params(m, 2, True), x,
                                    hx if isinstance(hx, tuple) else (hx,), lens, 2, True,
                                    masks=masks)
    naive.assert_matches(out, finals, ref_out, ref_finals, leaves(x, hx, m))


EXACT = [c for c in MASKED if not c[2].get("truncated")]


@pytest.mark.parametrize("name,cls,options", EXACT, ids=[c[0] for c in EXACT])
def test_gradcheck(name, cls, options):
    # in training, where the masks are drawn (evaluation's deterministic mix: the oracle test)
    m = make(cls, {**options, "recurrent_dropout": 0.3, "zoneout": 0.4}, H=3)
    x, hx, lens = inputs(m, T=4)
    assert naive.gradcheck_module(m, x, hx, lens)


@pytest.mark.parametrize("cls", [rnnlab.LSTM, rnnlab.GRU, rnnlab.RNN])
def test_torch_func_and_double_backward_see_the_same_masks(cls):
    m = make(cls, {"recurrent_dropout": 0.3, "zoneout": 0.3})
    naive.assert_func_and_double_backward(m, *inputs(m))


@pytest.mark.parametrize("cls", [rnnlab.LSTM, rnnlab.GRU, rnnlab.RNN])
def test_reproducible_under_the_seed_and_deterministic_in_evaluation(cls):
    m = make(cls, {"recurrent_dropout": 0.5, "zoneout": 0.5})
    plain = make(cls, {})
    plain.load_state_dict(m.state_dict())
    x, hx, _ = inputs(m, lengths=False)
    torch.manual_seed(1)
    a, _ = m(x, hx)
    torch.manual_seed(1)
    b, _ = m(x, hx)
    c, _ = m(x, hx)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)  # fresh masks at the next call
    m.eval()
    e1, _ = m(x, hx)
    e2, _ = m(x, hx)
    torch.testing.assert_close(e1, e2, rtol=0, atol=0)
    assert not torch.allclose(e1, plain(x, hx)[0])  # zoneout's expectation in evaluation
    m.zoneout, m._zone = 0.0, (0.0,) * len(m._zone)
    torch.testing.assert_close(m(x, hx)[0], plain(x, hx)[0], rtol=0, atol=0)


def test_options_off_are_the_plain_module():
    m = make(rnnlab.LSTM, {"recurrent_dropout": 0.0, "zoneout": 0.0})
    plain = make(rnnlab.LSTM, {})
    plain.load_state_dict(m.state_dict())
    x, hx, lens = inputs(m)
    torch.testing.assert_close(m(x, hx, lengths=lens)[0], plain(x, hx, lengths=lens)[0],
                               rtol=0, atol=0)


def test_zoneout_in_training_keeps_units_with_its_probability():
    m = rnnlab.LSTM(2, 64, zoneout=(0.25, 0.6), dtype=torch.float64)
    x = torch.randn(40, 16, 2, dtype=torch.float64)
    out, _ = m(x)
    kept = (out[1:] == out[:-1]).double().mean().item()  # h_t = h_{t−1} exactly where kept
    assert abs(kept - 0.25) < 0.02


def test_recurrent_dropout_uses_one_mask_per_sequence():
    """With W_ih = 0 and no bias, h_1 = φ(W_hh (h_0 ⊙ drop)): a unit dropped for a sequence
    has no effect on any of its steps, so perturbing it changes nothing."""
    m = rnnlab.RNN(1, 8, bias=False, recurrent_dropout=0.5, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.zero_()
    x = torch.zeros(5, 1, 1, dtype=torch.float64)
    h0 = torch.randn(1, 1, 8, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(2)
    out, _ = m(x, h0)
    (g,) = torch.autograd.grad(out[-1].sum(), h0)
    mask = the_masks(m.train(), x, 2)[0].drop[0]  # the module's own draw (layer 0)
    assert torch.equal(g[0, 0] == 0, mask == 0)
    assert 0 < int((mask == 0).sum()) < 8


@pytest.mark.parametrize("cls", [rnnlab.LSTMCell, rnnlab.GRUCell, rnnlab.RNNCell])
def test_cells_keep_their_dropout_mask_until_reset(cls):
    cell = cls(3, 16, recurrent_dropout=0.5, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    hx = torch.randn(4, 16, dtype=torch.float64)
    hx = (hx, hx.clone()) if cls is rnnlab.LSTMCell else hx
    a, b = cell(x, hx), cell(x, hx)
    first = lambda r: r[0] if isinstance(r, tuple) else r  # noqa: E731
    torch.testing.assert_close(first(a), first(b), rtol=0, atol=0)
    cell.reset_dropout_mask()
    assert not torch.allclose(first(cell(x, hx)), first(a))
    cell.eval()
    plain = cls(3, 16, dtype=torch.float64)
    plain.load_state_dict(cell.state_dict())
    torch.testing.assert_close(first(cell(x, hx)), first(plain(x, hx)), rtol=0, atol=0)


def test_lstm_cell_zoneout_in_evaluation_is_the_expectation():
    cell = rnnlab.LSTMCell(3, 5, zoneout=(0.2, 0.7), dtype=torch.float64).eval()
    plain = rnnlab.LSTMCell(3, 5, dtype=torch.float64)
    plain.load_state_dict(cell.state_dict())
    x = torch.randn(2, 3, dtype=torch.float64)
    h, c = torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    h1, c1 = cell(x, (h, c))
    h_, c_ = plain(x, (h, c))
    torch.testing.assert_close(h1, 0.2 * h + 0.8 * h_)
    torch.testing.assert_close(c1, 0.7 * c + 0.3 * c_)


# -- forget-gate initialisations ------------------------------------------------------------

@pytest.mark.parametrize("cls", [rnnlab.LSTM, rnnlab.LSTMCell])
def test_forget_bias_sets_the_forget_slice_and_nothing_else(cls):
    torch.manual_seed(4)
    m = cls(3, 6, forget_bias=1.0)
    torch.manual_seed(4)
    ref = (torch.nn.LSTM if cls is rnnlab.LSTM else torch.nn.LSTMCell)(3, 6)
    for (name, p), q in zip(m.named_parameters(), ref.parameters()):
        if name.startswith("bias_ih"):
            assert torch.equal(p[6:12], torch.ones(6))
            assert torch.equal(p[:6], q[:6]) and torch.equal(p[12:], q[12:])
        elif name.startswith("bias_hh"):
            assert torch.equal(p[6:12], torch.zeros(6))
            assert torch.equal(p[:6], q[:6])
        else:
            assert torch.equal(p, q)  # the same draws as torch.nn under one seed


def test_chrono_init():
    m = rnnlab.LSTM(3, 500, num_layers=2, chrono_init=100)
    for layer in range(2):
        b_ih, b_hh = getattr(m, f"bias_ih_l{layer}"), getattr(m, f"bias_hh_l{layer}")
        b_f, b_i = b_ih[500:1000].detach(), b_ih[:500].detach()
        assert float(b_f.min()) >= 0 and float(b_f.max()) <= math.log(99) + 1e-6
        assert float(b_f.max()) > math.log(99) - 0.2  # spread over the whole range
        torch.testing.assert_close(b_i, -b_f)
        assert not b_hh[:1000].any()
    m.reset_parameters()  # re-initialising keeps the rule
    assert float(m.bias_ih_l0[500:1000].detach().min()) >= 0


@pytest.mark.parametrize("make_it,message", [
    (lambda: rnnlab.LSTM(2, 3, recurrent_dropout=1.0), "recurrent_dropout must be in"),
    (lambda: rnnlab.GRU(2, 3, recurrent_dropout=-0.1), "recurrent_dropout must be in"),
    (lambda: rnnlab.RNN(2, 3, zoneout="0.1"), "zoneout must be a finite number"),
    (lambda: rnnlab.GRU(2, 3, zoneout=(0.1, 0.2)), "GRU has no cell state c"),
    (lambda: rnnlab.GRUCell(2, 3, zoneout=(0.1, 0.2)), "GRUCell has no cell state c"),
    (lambda: rnnlab.LSTM(2, 3, zoneout=(0.1, 0.2, 0.3)), "one probability or one per state"),
    (lambda: rnnlab.LSTM(2, 3, zoneout=(0.1, 1.0)), r"zoneout \(c\) must be in"),
    (lambda: rnnlab.LSTM(2, 3, forget_bias=1, chrono_init=10), "give one of them"),
    (lambda: rnnlab.LSTM(2, 3, bias=False, forget_bias=1.0), "need bias=True"),
    (lambda: rnnlab.LSTM(2, 3, chrono_init=2), "chrono_init must be in"),
    (lambda: rnnlab.LSTM(2, 3, forget_bias=float("nan")), "forget_bias must be a finite"),
])
def test_bad_values_are_clear_errors(make_it, message):
    with pytest.raises(ValueError, match=message):
        make_it()


def test_gru_has_no_forget_bias():
    with pytest.raises(TypeError, match="forget_bias"):
        rnnlab.GRU(2, 3, forget_bias=1.0)


def test_repr_names_the_options():
    r = repr(rnnlab.LSTM(2, 3, recurrent_dropout=0.25, zoneout=(0.1, 0.05), forget_bias=1.0))
    assert "recurrent_dropout=0.25" in r and "zoneout=(0.1, 0.05)" in r and "forget_bias=1.0" in r


@pytest.mark.parametrize("cls,options", [(rnnlab.LSTM, {"peephole": True}), (rnnlab.GRU, {}),
                                         (rnnlab.RNN, {})], ids=["lstm", "gru", "rnn"])
def test_analysis_sees_zoneout_as_in_evaluation(cls, options):
    """The written-out step Jacobian with zoneout, diag(z) + diag(1 − z) J̃, equals autograd's
    through one engine step; the trajectory is the module's own in evaluation."""
    from rnnlab.analysis import jacobians
    from rnnlab.analysis.models import layer_trajectories

    m = cls(3, 4, zoneout=0.3, dtype=torch.float64, **options).eval()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    (tr,) = layer_trajectories(m, x)
    torch.testing.assert_close(tr["tape"].states[0][1:], m(x)[0])
    for t in range(5):
        J = jacobians.step_jacobian(tr["cell"], tr["params"], tr["tape"], t)
        ref = jacobians._autograd_step_jacobian(tr["cell"], tr["params"], tr["tape"], t, x)
        torch.testing.assert_close(J, ref, rtol=1e-9, atol=1e-12)


def test_masks_are_the_same_bits_with_and_without_the_kernels(monkeypatch):
    """The counter-based generator: the compiled op and torch's integer arithmetic agree bit
    for bit, and the draws have the asked probability."""
    like = torch.zeros(1, dtype=torch.float64)
    for seed in (0, 12345, 2**63 - 1, 2**62 + 7):
        monkeypatch.setenv("RNNLAB_KERNELS", "1")
        a = opt.bernoulli_mask((50, 40, 30), 0.3, 2.5, like, seed=seed)
        monkeypatch.setenv("RNNLAB_KERNELS", "0")
        b = opt.bernoulli_mask((50, 40, 30), 0.3, 2.5, like, seed=seed)
        assert torch.equal(a, b)
        assert set(a.unique().tolist()) == {0.0, 2.5}
        assert abs(float((a > 0).double().mean()) - 0.3) < 0.005
    c = opt.bernoulli_mask((1000,), 0.5, 1.0, like, seed=1)
    assert not torch.equal(c, opt.bernoulli_mask((1000,), 0.5, 1.0, like, seed=2))
