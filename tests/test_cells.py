"""Each cell against the naive per-step autograd oracle (tests/naive.py) and gradcheck.

Covers every option, including those torch.nn does not have (peephole, truncated, sigmoid and
linear RNNs, reset_after=False, projection), with 2 layers, both directions, variable lengths
and a given initial state.
"""

import functools

import naive
import pytest
import torch

import rnnlab

# every test here runs on the compiled kernels and on the reference path
pytestmark = pytest.mark.usefixtures("engine_path")

CONFIGS = [
    ("rnn-tanh", rnnlab.RNN, {"nonlinearity": "tanh"}),
    ("rnn-relu", rnnlab.RNN, {"nonlinearity": "relu"}),
    ("rnn-sigmoid", rnnlab.RNN, {"nonlinearity": "sigmoid"}),
    ("rnn-linear", rnnlab.RNN, {"nonlinearity": "linear"}),
    ("lstm", rnnlab.LSTM, {}),
    ("lstm-peephole", rnnlab.LSTM, {"peephole": True}),
    ("lstm-truncated", rnnlab.LSTM, {"truncated": True}),
    ("lstm-peephole-truncated", rnnlab.LSTM, {"peephole": True, "truncated": True}),
    ("lstm-proj", rnnlab.LSTM, {"proj_size": 2}),
    ("lstm-proj-peephole-truncated", rnnlab.LSTM,
     {"proj_size": 2, "peephole": True, "truncated": True}),
    ("gru", rnnlab.GRU, {}),
    ("gru-reset-before", rnnlab.GRU, {"reset_after": False}),
    ("gru-nobias", rnnlab.GRU, {"bias": False}),
    ("lstm-nobias-peephole", rnnlab.LSTM, {"bias": False, "peephole": True}),
]
IDS = [c[0] for c in CONFIGS]


def naive_step(module):
    if isinstance(module, rnnlab.LSTM):
        return functools.partial(naive.lstm_step, peephole=module.peephole,
                                 truncated=module.truncated)
    if isinstance(module, rnnlab.GRU):
        return functools.partial(naive.gru_step, reset_after=module.reset_after)
    return functools.partial(naive.rnn_step, nonlinearity=module.nonlinearity)


def make(cls, options, *, I=3, H=4, layers=2, bidirectional=True, dtype=torch.float64):
    m = cls(I, H, num_layers=layers, bidirectional=bidirectional, dtype=dtype, **options)
    if getattr(m, "peephole", False):  # peepholes start at zero-ish scale; make them matter
        with torch.no_grad():
            for name, p in m.named_parameters():
                if "peephole" in name:
                    p.uniform_(-1, 1)
    return m


def inputs(m, T=5, B=3, lengths=True, dtype=torch.float64):
    x = torch.randn(T, B, m.input_size, dtype=dtype, requires_grad=True)
    LD = m.num_layers * (2 if m.bidirectional else 1)
    out = m.proj_size or m.hidden_size if isinstance(m, rnnlab.LSTM) else m.hidden_size
    h0 = torch.randn(LD, B, out, dtype=dtype, requires_grad=True)
    hx = h0
    if isinstance(m, rnnlab.LSTM):
        c0 = torch.randn(LD, B, m.hidden_size, dtype=dtype, requires_grad=True)
        hx = (h0, c0)
    lens = torch.tensor([T, 2, 4][:B]) if lengths else None
    return x, hx, lens


leaves, loss_of = naive.leaves, naive.loss_of


@pytest.mark.parametrize("name,cls,options", CONFIGS, ids=IDS)
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_matches_naive_oracle(name, cls, options, with_lengths):
    m = make(cls, options)
    x, hx, lens = inputs(m, lengths=with_lengths)
    out, finals = m(x, hx, lengths=lens)
    ref_out, ref_finals = naive.run(
        naive_step(m), naive.module_params(m, 2, True), x,
        hx if isinstance(hx, tuple) else (hx,), lens, 2, True,
    )
    naive.assert_matches(out, finals, ref_out, ref_finals, leaves(x, hx, m))


# the truncated gradient is, by design, not the derivative of the forward pass, so numerical
# differentiation cannot check it; the naive oracle (which detaches what the gates see of the
# past) does, above
EXACT = [c for c in CONFIGS if not c[2].get("truncated")]


@pytest.mark.parametrize("name,cls,options", EXACT, ids=[c[0] for c in EXACT])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_gradcheck(name, cls, options, with_lengths):
    m = make(cls, options, H=3)
    x, hx, lens = inputs(m, T=4, B=3, lengths=with_lengths)
    names = [n for n, _ in m.named_parameters()]
    n_states = 2 if isinstance(hx, tuple) else 1

    def f(x, *rest):
        states, params = rest[:n_states], dict(zip(names, rest[n_states:]))
        hx_ = tuple(states) if n_states == 2 else states[0]
        out, finals = torch.func.functional_call(m, params, (x, hx_), {"lengths": lens})
        finals = finals if isinstance(finals, tuple) else (finals,)
        return (out, *finals)

    args = tuple(t.detach().requires_grad_() for t in leaves(x, hx, m))
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_truncated_error_reaches_the_past_only_through_c():
    m = make(rnnlab.LSTM, {"truncated": True}, layers=1, bidirectional=False)
    full = make(rnnlab.LSTM, {}, layers=1, bidirectional=False)
    full.load_state_dict(m.state_dict())
    x, (h0, c0), _ = inputs(m, T=6, lengths=False)
    out, _ = m(x, (h0, c0))
    dh0, dc0, dW = torch.autograd.grad(out[-1].sum(), (h0, c0, m.weight_hh_l0))
    assert torch.count_nonzero(dh0) == 0  # h_0 feeds only the gates: truncated
    assert dc0.abs().min() > 0  # c_0 reaches the end along the carousel
    out_f, _ = full(x, (h0, c0))
    torch.testing.assert_close(out_f, out)  # forward unchanged
    dh0_f, dc0_f, dW_f = torch.autograd.grad(out_f[-1].sum(), (h0, c0, full.weight_hh_l0))
    assert dh0_f.abs().min() > 0
    assert not torch.allclose(dc0, dc0_f)
    assert not torch.allclose(dW, dW_f)


def test_truncated_peephole_error_flows_only_along_the_carousel():
    """With peepholes too, only c carries error back: the gradient of c_0 is f_1 ⊙ ... ⊙ f_T
    times the error at c_T, the constant error carousel (here checked for T = 1)."""
    m = make(rnnlab.LSTM, {"truncated": True, "peephole": True}, layers=1, bidirectional=False)
    x, (h0, c0), _ = inputs(m, T=1, lengths=False)
    _, (_, c1) = m(x, (h0, c0))
    (dc0,) = torch.autograd.grad(c1.sum(), (c0,))
    _, H = c0.shape[1:]
    a = x[0] @ m.weight_ih_l0.t() + m.bias_ih_l0 + h0[0] @ m.weight_hh_l0.t() + m.bias_hh_l0
    f = torch.sigmoid(a[:, H : 2 * H] + m.weight_peephole_l0[H : 2 * H] * c0[0])
    torch.testing.assert_close(dc0[0], f.detach())
