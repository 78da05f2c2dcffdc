"""forward(ids, embedding=E): symbol inputs projected once per symbol (engine.Embedded).

The oracle is the same module on F.embedding(ids, E): outputs, final states and every
gradient (E's included) must agree, on both engine paths, in every arrangement the door
takes (layers, directions, batch_first, unbatched, padded lengths, dropout), and where the
fold does not pay (V ≥ T·B) or cannot run (double backward, torch.func), the dense path it
falls back to must give the same numbers too.
"""

import pytest
import torch
import torch.nn.functional as F

import rnnlab
from rnnlab import engine

pytestmark = pytest.mark.usefixtures("engine_path")

D = torch.float64


def _run(module, ids, E, folded, **kw):
    out, state = module(ids, embedding=E, **kw) if folded else module(F.embedding(ids, E), **kw)
    h = state[0] if isinstance(state, tuple) else state
    return out, h


def _grads(module, ids, E, folded, seed=1, **kw):
    torch.manual_seed(seed)  # the same dropout masks on both sides
    out, h = _run(module, ids, E, folded, **kw)
    w = torch.linspace(-1, 1, out.numel(), dtype=D).view_as(out)  # a loss that sees every unit
    loss = (out * w).sum() + h.pow(2).sum()
    return [out, h, *torch.autograd.grad(loss, [E, *module.parameters()])]


CASES = [
    ("lstm", rnnlab.LSTM, {}),
    ("lstm-2-layers-bidirectional", rnnlab.LSTM, {"num_layers": 2, "bidirectional": True}),
    ("lstm-proj-dropout", rnnlab.LSTM, {"num_layers": 2, "proj_size": 3, "dropout": 0.3}),
    ("lstm-peephole", rnnlab.LSTM, {"peephole": True}),
    ("gru", rnnlab.GRU, {"num_layers": 2}),
    ("gru-bidirectional", rnnlab.GRU, {"bidirectional": True}),
    ("rnn", rnnlab.RNN, {"nonlinearity": "relu"}),
]


@pytest.mark.parametrize("name,cls,options", CASES, ids=[c[0] for c in CASES])
def test_symbols_equal_their_embedded_vectors(name, cls, options):
    m = cls(5, 4, **options).to(D).train()
    E = torch.randn(6, 5, dtype=D, requires_grad=True)
    ids = torch.randint(0, 6, (7, 3))  # V = 6 < T·B = 21: folded
    assert engine.Embedded(ids, E).folds()
    for a, b in zip(_grads(m, ids, E, True), _grads(m, ids, E, False)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layout", ["batch_first", "unbatched", "lengths"])
def test_symbols_in_every_layout(layout):
    m = rnnlab.LSTM(5, 4, num_layers=2, bidirectional=True,
                    batch_first=layout == "batch_first").to(D)
    E = torch.randn(3, 5, dtype=D, requires_grad=True)
    kw = {}
    if layout == "unbatched":
        ids = torch.randint(0, 3, (9,))
    else:
        ids = torch.randint(0, 3, (4, 9) if layout == "batch_first" else (9, 4))
    if layout == "lengths":
        kw["lengths"] = torch.tensor([9, 4, 7, 1])
    for a, b in zip(_grads(m, ids, E, True, **kw), _grads(m, ids, E, False, **kw)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_a_large_vocabulary_is_not_folded_and_agrees():
    m = rnnlab.GRU(5, 4).to(D)
    E = torch.randn(50, 5, dtype=D, requires_grad=True)
    ids = torch.randint(0, 50, (3, 2))  # V = 50 ≥ T·B = 6: projected step by step
    assert not engine.Embedded(ids, E).folds()
    for a, b in zip(_grads(m, ids, E, True), _grads(m, ids, E, False)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_folded_gradients_pass_gradcheck():
    m = rnnlab.LSTM(3, 2, num_layers=2).to(D)
    ids = torch.tensor([[0, 1], [1, 1], [2, 0], [1, 2]])

    def f(E, *weights):
        params = dict(zip([n for n, _ in m.named_parameters()], weights))
        out, (h, c) = torch.func.functional_call(m, params, (ids,), {"embedding": E})
        return out, c

    E = torch.randn(3, 3, dtype=D, requires_grad=True)
    weights = [p.detach().clone().requires_grad_() for p in m.parameters()]
    # functional_call keeps ordinary tensors (no torch.func transform): the engine's path
    assert torch.autograd.gradcheck(f, (E, *weights))


def test_double_backward_through_the_fold():
    """A gradient penalty on E: the differentiable path recomputes from F.embedding."""
    m = rnnlab.LSTM(5, 4).to(D)
    ids = torch.randint(0, 3, (6, 4))
    E = torch.randn(3, 5, dtype=D, requires_grad=True)

    def penalty(folded):
        out, _ = m(ids, embedding=E) if folded else m(F.embedding(ids, E))
        (g,) = torch.autograd.grad(out.pow(2).sum(), E, create_graph=True)
        return torch.autograd.grad(g.pow(2).sum(), [E, *m.parameters()])

    for a, b in zip(penalty(True), penalty(False)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_torch_func_grad_through_the_fold():
    m = rnnlab.GRU(5, 4).to(D)
    ids = torch.randint(0, 3, (6, 4))
    E = torch.randn(3, 5, dtype=D)

    def loss(table, folded):
        out, _ = m(ids, embedding=table) if folded else m(F.embedding(ids, table))
        return out.pow(2).sum()

    torch.testing.assert_close(torch.func.grad(loss)(E, True), torch.func.grad(loss)(E, False))


@pytest.mark.parametrize("ids,table,message", [
    (torch.zeros(4, 2, dtype=torch.long), torch.randn(3, 4), r"embedding.size\(1\) must be equal"),
    (torch.zeros(4, 2), torch.randn(3, 5), "symbol ids"),
    (torch.tensor([[0, 3]]), torch.randn(3, 5), r"symbol ids must lie in \[0, 3\)"),
    (torch.tensor([[-1, 0]]), torch.randn(3, 5), r"symbol ids must lie in \[0, 3\)"),
    (torch.zeros(2, 2, 2, dtype=torch.long), torch.randn(3, 5), "must be 1-D or 2-D"),
    (torch.zeros(4, 2, dtype=torch.long), torch.randn(3, 5, 1), "embedding must be 2-D"),
    (torch.zeros(4, 2, dtype=torch.long), torch.zeros(3, 5, dtype=torch.long),
     "floating-point"),
])
def test_bad_symbols_are_refused_at_the_door(ids, table, message):
    with pytest.raises((ValueError, TypeError), match=message):
        rnnlab.LSTM(5, 4)(ids, embedding=table)


def test_a_packed_sequence_of_ids_is_refused():
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.zeros(3, 2, dtype=torch.long),
                                                     torch.tensor([3, 2]))
    with pytest.raises(ValueError, match="not a PackedSequence"):
        rnnlab.GRU(5, 4)(packed, embedding=torch.randn(4, 5))


def test_ids_changed_in_place_before_backward_are_caught():
    m = rnnlab.LSTM(5, 4)
    ids = torch.randint(0, 3, (6, 4))
    out, _ = m(ids, embedding=torch.randn(3, 5, requires_grad=True))
    ids.add_(1)
    with pytest.raises(RuntimeError, match="modified in place"):
        out.sum().backward()
