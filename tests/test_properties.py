"""Property-based: random configurations against torch.nn, forward and gradients.

Hypothesis draws the family, layers, directions, batch_first, proj_size, bias, sizes, lengths
(a PackedSequence for torch.nn; the same PackedSequence and, separately, ``lengths=`` for
rnnlab), dtype, and whether hx is given. Derandomised, so CI sees the same examples each run.
"""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab

pytestmark = pytest.mark.usefixtures("engine_path")

FAMILIES = {
    "rnn-tanh": (rnnlab.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn-relu": (rnnlab.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnlab.LSTM, torch.nn.LSTM, {}),
    "gru": (rnnlab.GRU, torch.nn.GRU, {}),
}
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}


@st.composite
def configs(draw):
    family = draw(st.sampled_from(sorted(FAMILIES)))
    hidden = draw(st.integers(1, 5))
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    return dict(
        family=family, input=draw(st.integers(1, 4)), hidden=hidden,
        layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()), bias=draw(st.booleans()),
        proj=draw(st.integers(0, hidden - 1)) if family == "lstm" else 0,
        T=T, B=B, dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        lengths=draw(st.none() | st.lists(st.integers(1, T), min_size=B, max_size=B)),
        hx=draw(st.booleans()),
    )


def _build(c):
    ours, theirs, kw = FAMILIES[c["family"]]
    kw = dict(kw, num_layers=c["layers"], bidirectional=c["bidirectional"],
              batch_first=c["batch_first"], bias=c["bias"])
    if c["proj"]:
        kw["proj_size"] = c["proj"]
    a = ours(c["input"], c["hidden"], **kw).to(c["dtype"])
    b = theirs(c["input"], c["hidden"], **kw).to(c["dtype"])
    b.load_state_dict(a.state_dict())
    return a, b


def _inputs(c):
    D = 2 if c["bidirectional"] else 1
    shape = (c["B"], c["T"], c["input"]) if c["batch_first"] else (c["T"], c["B"], c["input"])
    x = torch.randn(shape, dtype=c["dtype"])
    hx = None
    if c["hx"]:
        out = c["proj"] or c["hidden"]
        h = torch.randn(c["layers"] * D, c["B"], out, dtype=c["dtype"])
        hx = (h, torch.randn(c["layers"] * D, c["B"], c["hidden"], dtype=c["dtype"])) \
            if c["family"] == "lstm" else h
    return x, hx


def _flat(finals):
    return list(finals) if isinstance(finals, tuple) else [finals]


def _run(module, x, hx, c, how):
    """Output (padded), finals, and the gradients of a fixed random functional of both."""
    x = x.clone().requires_grad_()
    leaves = [x]
    if hx is not None:
        hx = tuple(h.clone().requires_grad_() for h in _flat(hx))
        leaves += list(hx)
        hx = hx if c["family"] == "lstm" else hx[0]
    lengths = None if c["lengths"] is None else torch.tensor(c["lengths"])
    if how == "lengths=":
        out, finals = module(x, hx, lengths=lengths)
    elif lengths is not None:
        packed = pack_padded_sequence(x, lengths, batch_first=c["batch_first"],
                                      enforce_sorted=False)
        out, finals = module(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=c["batch_first"],
                                     total_length=c["T"])
    else:
        out, finals = module(x, hx)
    results = [out, *_flat(finals)]
    g = torch.Generator().manual_seed(1)
    loss = sum((r * torch.randn(r.shape, generator=g, dtype=r.dtype)).sum() for r in results)
    grads = torch.autograd.grad(loss, leaves + list(module.parameters()))
    return [r.detach() for r in results], list(grads)


def _close(a, b, tol):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert (a - b).abs().max().item() <= tol * (1 + b.abs().max().item())


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=configs())
def test_random_configurations_match_torch_nn(c):
    ours, theirs = _build(c)
    x, hx = _inputs(c)
    want, want_grads = _run(theirs, x, hx, c, "packed")
    ways = ["packed"] + (["lengths="] if c["lengths"] is not None else [])
    for how in ways:
        got, got_grads = _run(ours, x, hx, c, how)
        for a, b in zip(got + got_grads, want + want_grads):
            _close(a, b, TOL[c["dtype"]])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_lengths_all_shorter_than_the_input(family):
    """No sequence reaches the last steps (found by the property above: a step with no rows)."""
    c = dict(family=family, input=2, hidden=3, layers=2, bidirectional=True, batch_first=False,
             bias=True, proj=0, T=5, B=2, dtype=torch.float64, lengths=[3, 1], hx=False)
    ours, theirs = _build(c)
    x, hx = _inputs(c)
    want, want_grads = _run(theirs, x, hx, c, "packed")
    for how in ("packed", "lengths="):
        got, got_grads = _run(ours, x, hx, c, how)
        for a, b in zip(got + got_grads, want + want_grads):
            _close(a, b, 1e-10)
