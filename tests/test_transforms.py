"""torch.func transforms, double backward and empty batches, against torch.nn.

The engine's hand-written backward cannot be traced by torch.func nor differentiated again;
those cases run the differentiable path (engine.autograd_layer). These tests check that path
where a user meets it: through the modules, against torch.nn where it overlaps and against the
engine's own (verified) gradients where it does not.
"""

import pytest
import torch
from torch.func import functional_call, grad, jacrev, jvp, vmap
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab

pytestmark = pytest.mark.usefixtures("engine_path")

D = torch.float64
PAIRS = {
    "LSTM": (rnnlab.LSTM, torch.nn.LSTM, {}),
    "LSTM-proj": (rnnlab.LSTM, torch.nn.LSTM, {"proj_size": 2}),
    "GRU": (rnnlab.GRU, torch.nn.GRU, {}),
    "RNN-relu": (rnnlab.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
}
# options torch.nn lacks: compared with the engine's own gradients
OURS = {
    "LSTM-peephole": lambda: rnnlab.LSTM(3, 4, peephole=True),
    "LSTM-truncated": lambda: rnnlab.LSTM(3, 4, truncated=True, peephole=True),
    "GRU-Cho": lambda: rnnlab.GRU(3, 4, reset_after=False),
    "RNN-sigmoid": lambda: rnnlab.RNN(3, 4, nonlinearity="sigmoid"),
    "LSTM1997": lambda: rnnlab.LSTM1997(3, 2, 2),
    "LSTM1997-full": lambda: rnnlab.LSTM1997(3, 2, 2, truncated=False),
}


def _pair(name, **extra):
    ours, theirs, kw = PAIRS[name]
    kw = {"num_layers": 2, "bidirectional": True, **kw, **extra}
    a = ours(3, 4, **kw).to(D)
    b = theirs(3, 4, **kw).to(D)
    b.load_state_dict(a.state_dict())
    return a, b


def _close(a, b, tol=1e-10):
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= tol * (1 + b.abs().max().item())


def _out(module, x):
    return module(x)[0]


@pytest.mark.parametrize("name", PAIRS)
def test_func_grad_over_parameters_matches_torch_nn(name):
    ours, theirs = _pair(name)
    x = torch.randn(6, 3, 3, dtype=D)

    def loss(module):
        def f(params):
            return functional_call(module, params, (x,))[0].pow(2).sum()
        return grad(f)({k: v.detach() for k, v in module.named_parameters()})

    g_ours, g_theirs = loss(ours), loss(theirs)
    assert g_ours.keys() == g_theirs.keys()
    for k in g_ours:
        _close(g_ours[k], g_theirs[k])


@pytest.mark.parametrize("name", PAIRS)
def test_jacrev_and_jvp_match_torch_nn(name):
    ours, theirs = _pair(name)
    x, v = torch.randn(4, 2, 3, dtype=D), torch.randn(4, 2, 3, dtype=D)
    _close(jacrev(lambda x: _out(ours, x))(x), jacrev(lambda x: _out(theirs, x))(x))
    _close(jvp(lambda x: _out(ours, x), (x,), (v,))[1],
           jvp(lambda x: _out(theirs, x), (x,), (v,))[1])


def test_forward_mode_dual_tensors_match_torch_nn():
    ours, theirs = _pair("LSTM")
    x, v = torch.randn(4, 2, 3, dtype=D), torch.randn(4, 2, 3, dtype=D)
    fwad = torch.autograd.forward_ad
    with fwad.dual_level():
        t_ours = fwad.unpack_dual(_out(ours, fwad.make_dual(x, v))).tangent
        t_theirs = fwad.unpack_dual(_out(theirs, fwad.make_dual(x, v))).tangent
    _close(t_ours, t_theirs)


@pytest.mark.parametrize("name", [*PAIRS, *OURS])
def test_vmap_equals_a_loop(name):
    # torch.nn has no batching rule for its recurrent ops; the oracle is a Python loop
    m = _pair(name)[0] if name in PAIRS else OURS[name]().to(D)
    xs = torch.randn(5, 4, 2, 3, dtype=D)
    lengths = torch.tensor([4, 2])
    _close(vmap(lambda x: m(x, lengths=lengths)[0])(xs),
           torch.stack([m(x, lengths=lengths)[0] for x in xs]))


@pytest.mark.parametrize("name", OURS)
def test_func_grad_per_example_equals_backward(name):
    """Per-example gradients (vmap over grad): each equals the engine's own backward."""
    m = OURS[name]().to(D)
    x = torch.randn(5, 3, 3, dtype=D)
    params = {k: v.detach() for k, v in m.named_parameters()}

    def loss(p, xi):
        return functional_call(m, p, (xi.unsqueeze(1),))[0].pow(2).sum()

    per_example = vmap(grad(loss), in_dims=(None, 1))(params, x)
    for b in range(x.shape[1]):
        m.zero_grad()
        m(x[:, b : b + 1])[0].pow(2).sum().backward()
        for k, p in m.named_parameters():
            _close(per_example[k][b], p.grad)


def _gradient_penalty(module, x, lengths):
    """‖∂L/∂x‖² through a packed batch, then backward: a double backward."""
    module.zero_grad()
    x = x.clone().requires_grad_()
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, _ = pad_packed_sequence(module(packed)[0])
    (g,) = torch.autograd.grad(out.tanh().pow(2).sum(), x, create_graph=True)
    g.pow(2).sum().backward()
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("name", PAIRS)
def test_double_backward_matches_torch_nn(name):
    ours, theirs = _pair(name)
    x, lengths = torch.randn(5, 3, 3, dtype=D), torch.tensor([3, 5, 2])
    for a, b in zip(_gradient_penalty(ours, x, lengths), _gradient_penalty(theirs, x, lengths)):
        _close(a, b)


@pytest.mark.parametrize("name", ["LSTM-peephole", "GRU-Cho", "RNN-sigmoid", "LSTM1997-full"])
def test_gradgradcheck(name):
    m = OURS[name]().to(D)
    x = torch.randn(4, 2, 3, dtype=D, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: m(x, lengths=torch.tensor([4, 3]))[0], (x,))


def test_a_gradient_penalty_recomputes_only_the_gradients_asked_for(monkeypatch):
    """grad(out, x, create_graph=True) needs x's gradient alone: the layers' recomputation on
    the differentiable path leaves the weight gradients out (as autograd does for torch.nn),
    and a later backward through the penalty still reaches every weight."""
    from rnnlab import engine

    asked = []
    needs = engine._engine_needs
    monkeypatch.setattr(engine, "_engine_needs", lambda t: asked.append(needs(t)) or asked[-1])
    m = rnnlab.GRU(3, 4, num_layers=2).to(D)
    x = torch.randn(5, 2, 3, dtype=D, requires_grad=True)
    (g,) = torch.autograd.grad(m(x)[0].pow(2).sum(), x, create_graph=True)
    assert True in asked and asked.count(False) == 8  # 2 layers × (h0 absent) 4 weights each
    asked.clear()
    g.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_first_backward_unchanged_when_graph_is_kept():
    """create_graph=True recomputes on the differentiable path; first derivatives agree."""
    m = OURS["LSTM1997"]().to(D)
    x = torch.randn(5, 2, 3, dtype=D, requires_grad=True)
    plain = torch.autograd.grad(m(x)[0].pow(2).sum(), [x, *m.parameters()])
    kept = torch.autograd.grad(m(x)[0].pow(2).sum(), [x, *m.parameters()], create_graph=True)
    for a, b in zip(plain, kept):
        _close(b.detach(), a)


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_empty_batch_as_torch_nn(name, batch_first):
    ours, theirs = _pair(name, batch_first=batch_first)
    shape = (0, 5, 3) if batch_first else (5, 0, 3)
    results = []
    for m in (ours, theirs):
        x = torch.zeros(shape, dtype=D, requires_grad=True)
        out, finals = m(x)
        finals = finals if isinstance(finals, tuple) else (finals,)
        (out.sum() + sum(f.sum() for f in finals)).backward()
        results.append((out, finals, x.grad, [p.grad for p in m.parameters()]))
    (o1, f1, gx1, gp1), (o2, f2, gx2, gp2) = results
    assert o1.shape == o2.shape and o1.dtype == o2.dtype
    assert [f.shape for f in f1] == [f.shape for f in f2]
    assert gx1.shape == gx2.shape
    for a, b in zip(gp1, gp2):
        assert a is not None and a.shape == b.shape and not a.any()


def test_empty_batch_cells_and_lstm1997():
    for cell, ref in ((rnnlab.LSTMCell(3, 4), torch.nn.LSTMCell(3, 4)),
                      (rnnlab.GRUCell(3, 4), torch.nn.GRUCell(3, 4)),
                      (rnnlab.RNNCell(3, 4), torch.nn.RNNCell(3, 4))):
        a, b = cell(torch.zeros(0, 3)), ref(torch.zeros(0, 3))
        a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
        assert a.shape == b.shape == (0, 4)
    y, (h, s) = rnnlab.LSTM1997(3, 2, 2)(torch.zeros(5, 0, 3), lengths=torch.zeros(0).long())
    assert y.shape[:2] == (5, 0) and s.shape == (1, 0, 4)
