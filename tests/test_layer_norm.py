"""layer_norm=True (rnnlab.cells.lstm_ln, gru_ln): the naive per-step oracle (layer norm
written out) with peepholes, projection, lengths, both directions, layers and the regularisers;
gradcheck; torch.func and double backward; the cell modules; parameters, initialisation and
errors."""

import functools

import naive
import pytest
import torch

import rnnlab
from rnnlab import options as opt

pytestmark = pytest.mark.usefixtures("engine_path")

leaves, loss_of = naive.leaves, naive.loss_of

CONFIGS = [
    ("ln", {}),
    ("ln-peephole-proj", {"peephole": True, "proj_size": 2}),
    ("ln-no-bias", {"bias": False}),
]
REGULARISERS = [
    ("none", {}),
    ("drop", {"recurrent_dropout": 0.4}),
    ("zone", {"zoneout": (0.3, 0.4)}),
]


def make(options, H=4, layers=2, bidirectional=True, cls=rnnlab.LSTM):
    m = cls(3, H, num_layers=layers, bidirectional=bidirectional, dtype=torch.float64,
            layer_norm=True, **options)
    with torch.no_grad():  # move γ, β and the peepholes off their starting values
        for name, p in m.named_parameters():
            if "_ln_" in name or "peephole" in name:
                p.add_(torch.rand_like(p) - 0.5)
    return m


def inputs(m, T=6, B=3, lengths=True):
    LD = m.num_layers * (2 if m.bidirectional else 1)
    x = torch.randn(T, B, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(LD, B, m.proj_size or m.hidden_size, dtype=torch.float64,
                     requires_grad=True)
    lens = torch.tensor([T, 2, 4][:B]) if lengths else None
    if not m._has_cell_state:
        return x, h0, lens
    c0 = torch.randn(LD, B, m.hidden_size, dtype=torch.float64, requires_grad=True)
    return x, (h0, c0), lens


def oracle(m, x, hx, lens, masks=None):
    if isinstance(m, rnnlab.GRU):
        step = functools.partial(naive.gru_step, layer_norm=True)
        hx = (hx,)
    else:
        step = functools.partial(naive.lstm_step, peephole=m.peephole, layer_norm=True)
    return naive.run(step, naive.module_params(m, m.num_layers, m.bidirectional), x, hx, lens,
                     m.num_layers, m.bidirectional, masks=masks)


@pytest.mark.parametrize("name,options", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("reg_name,reg", REGULARISERS, ids=[r[0] for r in REGULARISERS])
@pytest.mark.parametrize("with_lengths", [True, False], ids=["lengths", "full"])
def test_matches_naive_oracle(name, options, reg_name, reg, with_lengths):
    assert_matches_oracle(make({**options, **reg}), with_lengths)


def assert_matches_oracle(m, with_lengths):
    """The module (training mode, one seed for its masks and the oracle's) against the oracle."""
    x, hx, lens = inputs(m, lengths=with_lengths)
    torch.manual_seed(7)
    out, finals = m(x, hx, lengths=lens)
    torch.manual_seed(7)
    masks = opt.sample_masks(4, x.shape[0], x.shape[1], m._state_sizes(),
                             drop=m.recurrent_dropout, zone=m._zone, training=True, like=x)
    ref_out, ref_finals = oracle(m, x, hx, lens, masks)
    naive.assert_matches(out, finals, ref_out, ref_finals, leaves(x, hx, m))


def test_one_layer_one_direction_and_evaluation():
    m = make({"zoneout": 0.25}, layers=1, bidirectional=False).eval()
    x, hx, _ = inputs(m, lengths=False)
    masks = opt.sample_masks(1, x.shape[0], x.shape[1], m._state_sizes(), drop=0.0,
                             zone=m._zone, training=False, like=x)
    out, finals = m(x, hx)
    ref_out, ref_finals = oracle(m, x, hx, None, masks)
    naive.assert_matches(out, finals, ref_out, ref_finals, leaves(x, hx, m))


@pytest.mark.parametrize("name,options", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_gradcheck(name, options):
    m = make(options, H=3, layers=1)  # (layers and both paths: the oracle test above)
    assert naive.gradcheck_module(m, *inputs(m, T=4))


def test_torch_func_and_double_backward():
    m = make({"peephole": True, "zoneout": 0.3})
    g_graph = naive.assert_func_and_double_backward(m, *inputs(m))
    sum((g ** 2).sum() for g in g_graph).backward()  # a gradient penalty through the norms
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_lstm_cell_is_one_step_of_the_oracle():
    cell = rnnlab.LSTMCell(3, 4, dtype=torch.float64, layer_norm=True, peephole=True)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(torch.rand_like(p) - 0.5)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    state = (torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64))
    h, c = cell(x, state)
    params = dict(cell.named_parameters())
    ref_h, ref_c = naive.lstm_step(params, x, state, peephole=True, layer_norm=True)
    torch.testing.assert_close(h, ref_h, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c, ref_c, rtol=1e-10, atol=1e-12)
    got = torch.autograd.grad((h * c).sum(), [x, *params.values()])
    want = torch.autograd.grad((ref_h * ref_c).sum(), [x, *params.values()])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)


def test_parameters_their_names_and_initialisation():
    m = rnnlab.LSTM(3, 5, num_layers=2, bidirectional=True, layer_norm=True)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    for sfx in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        for side, size in (("ih", 20), ("hh", 20), ("c", 5)):
            assert shapes[f"weight_ln_{side}{sfx}"] == (size,)
            assert torch.equal(getattr(m, f"weight_ln_{side}{sfx}"), torch.ones(size))
            assert torch.equal(getattr(m, f"bias_ln_{side}{sfx}"), torch.zeros(size))
    assert "layer_norm=True" in repr(m) and "layer_norm=True" in repr(
        rnnlab.LSTMCell(2, 3, layer_norm=True))
    plain = rnnlab.LSTM(3, 5)
    assert not any("_ln_" in n for n, _ in plain.named_parameters())


def test_bad_values_are_clear_errors():
    with pytest.raises(ValueError, match="layer_norm and truncated"):
        rnnlab.LSTM(2, 3, layer_norm=True, truncated=True)
    with pytest.raises(TypeError, match="layer_norm"):
        rnnlab.LSTMCell(2, 3, layer_norm="yes please")


def test_analysis_step_jacobian_is_autograds():
    from rnnlab.analysis import jacobians
    from rnnlab.analysis.models import layer_trajectories

    m = make({}, layers=1, bidirectional=False).eval()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    (tr,) = layer_trajectories(m, x)
    torch.testing.assert_close(tr["tape"].states[0][1:], m(x)[0])
    J = jacobians.jacobian_sequence(tr["cell"], tr["params"], tr["tape"], x)
    assert J.shape == (4, 2, 8, 8) and torch.isfinite(J).all()


# -- the GRU (rnnlab.cells.gru_ln) ---------------------------------------------------------

GRU_CONFIGS = [("gru-ln", {}), ("gru-ln-no-bias", {"bias": False})]
GRU_REGULARISERS = REGULARISERS[:2] + [("zone", {"zoneout": 0.3})]


@pytest.mark.parametrize("name,options", GRU_CONFIGS, ids=[c[0] for c in GRU_CONFIGS])
@pytest.mark.parametrize("reg_name,reg", GRU_REGULARISERS, ids=[r[0] for r in GRU_REGULARISERS])
@pytest.mark.parametrize("with_lengths", [True, False], ids=["lengths", "full"])
def test_gru_matches_naive_oracle(name, options, reg_name, reg, with_lengths):
    assert_matches_oracle(make({**options, **reg}, cls=rnnlab.GRU), with_lengths)


def test_gru_evaluation_mode_and_one_direction():
    m = make({"zoneout": 0.25, "recurrent_dropout": 0.3}, layers=1, bidirectional=False,
             cls=rnnlab.GRU).eval()
    x, h0, _ = inputs(m, lengths=False)
    masks = opt.sample_masks(1, x.shape[0], x.shape[1], m._state_sizes(), drop=0.0,
                             zone=m._zone, training=False, like=x)
    out, h_n = m(x, h0)
    ref_out, ref_finals = oracle(m, x, h0, None, masks)
    naive.assert_matches(out, h_n, ref_out, ref_finals, leaves(x, h0, m))


def test_gru_gradcheck_torch_func_and_double_backward():
    m = make({}, H=3, layers=1, bidirectional=False, cls=rnnlab.GRU)
    assert naive.gradcheck_module(m, *inputs(m, T=4))
    m = make({"zoneout": 0.3}, cls=rnnlab.GRU)
    g_graph = naive.assert_func_and_double_backward(m, *inputs(m))
    sum((g ** 2).sum() for g in g_graph).backward()  # a gradient penalty through the norms
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_gru_cell_is_one_step_of_the_oracle():
    cell = rnnlab.GRUCell(3, 4, dtype=torch.float64, layer_norm=True)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(torch.rand_like(p) - 0.5)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    h = cell(x, h0)
    params = dict(cell.named_parameters())
    (ref_h,) = naive.gru_step(params, x, (h0,), layer_norm=True)
    torch.testing.assert_close(h, ref_h, rtol=1e-10, atol=1e-12)
    got = torch.autograd.grad((h ** 3).sum(), [x, h0, *params.values()])
    want = torch.autograd.grad((ref_h ** 3).sum(), [x, h0, *params.values()])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)


def test_gru_parameters_errors_and_analysis():
    from rnnlab.analysis import jacobians
    from rnnlab.analysis.models import layer_trajectories

    m = rnnlab.GRU(3, 5, num_layers=2, bidirectional=True, layer_norm=True)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    for sfx in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        for side in ("ih", "hh"):
            assert shapes[f"weight_ln_{side}{sfx}"] == (15,)
            assert torch.equal(getattr(m, f"weight_ln_{side}{sfx}"), torch.ones(15))
            assert torch.equal(getattr(m, f"bias_ln_{side}{sfx}"), torch.zeros(15))
    assert "layer_norm=True" in repr(m) and "layer_norm=True" in repr(
        rnnlab.GRUCell(2, 3, layer_norm=True))
    for cls in (rnnlab.GRU, rnnlab.GRUCell):
        with pytest.raises(ValueError, match="layer_norm needs reset_after=True"):
            cls(2, 3, layer_norm=True, reset_after=False)
    with pytest.raises(TypeError, match="layer_norm"):
        rnnlab.GRU(2, 3, layer_norm="yes")
    m = make({}, layers=1, bidirectional=False, cls=rnnlab.GRU).eval()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    (tr,) = layer_trajectories(m, x)
    torch.testing.assert_close(tr["tape"].states[0][1:], m(x)[0])
    J = jacobians.jacobian_sequence(tr["cell"], tr["params"], tr["tape"], x)
    # the autograd Jacobian of one step against the oracle's, at step 2
    params = {k: v for k, v in naive.module_params(m, 1, False)[0].items()}
    h1 = tr["tape"].states[0][2].clone()
    Jt = torch.autograd.functional.jacobian(
        lambda h: naive.gru_step(params, x[2], (h,), layer_norm=True)[0], h1)
    torch.testing.assert_close(J[2], torch.diagonal(Jt, dim1=0, dim2=2).permute(2, 0, 1))
