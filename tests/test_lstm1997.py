"""The 1997 LSTM: against a naive per-step version of App. A.1, gradcheck, the paper's
weight counts, and the constant error carousel."""

import functools
import os

import naive
import pytest
import torch

import rnnlab

# every test here runs on the compiled kernels and on the reference path
pytestmark = pytest.mark.usefixtures("engine_path")

CONFIGS = [
    ("paper", {}),
    ("blocks-of-2", {"block_size": 2}),
    ("no-output-gate-2a", {"output_gate": False, "recurrent": False, "bias": False,
                           "g": "logistic", "h": "identity"}),
    ("no-gate-recurrence", {"gate_recurrence": False, "block_size": 2}),
    ("gate-biases-only", {"bias": ("in", "out"), "block_size": 2}),
    ("tanh-squashers", {"g": "tanh", "h": "tanh"}),
    ("forget-gate-2000", {"forget_gate": True, "forget_gate_bias": [0.5, 1.0], "block_size": 2,
                          "gate_recurrence": False}),
    ("forget-gate-no-output-gate", {"forget_gate": True, "output_gate": False}),
]


def make(options, truncated, I=3, K=2):
    if options.get("forget_gate") and os.environ.get("RNNLAB_KERNELS") == "1":
        pytest.skip("no compiled forget gate: the reference path's run covers it")
    torch.manual_seed(0)
    options = dict(options)
    S = options.pop("block_size", 1)
    return rnnlab.LSTM1997(I, K, S, truncated=truncated, init_range=0.5, dtype=torch.float64,
                           **options)


def oracle(m):
    return functools.partial(
        naive.lstm1997_step, K=m.num_blocks, S=m.block_size, output_gate=m.output_gate,
        gate_recurrence=m.gate_recurrence, g=m.g, h=m.h, truncated=m.truncated,
        forget_gate=m.forget_gate,
    )


def inputs(m, T=6, B=3, lengths=False):
    x = torch.randn(T, B, m.input_size, dtype=torch.float64, requires_grad=True)
    y_size, C = m._state_sizes()
    y0 = torch.randn(1, B, y_size, dtype=torch.float64, requires_grad=True)
    s0 = torch.randn(1, B, C, dtype=torch.float64, requires_grad=True)
    return x, (y0, s0), (torch.tensor([T, 2, 5][:B]) if lengths else None)


@pytest.mark.parametrize("truncated", [True, False], ids=["truncated", "full"])
@pytest.mark.parametrize("lengths", [False, True], ids=["full-length", "lengths"])
@pytest.mark.parametrize("name,options", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_matches_naive_oracle(name, options, truncated, lengths):
    m = make(options, truncated)
    x, hx, lens = inputs(m, lengths=lengths)
    out, (yT, sT) = m(x, hx, lengths=lens)
    params = {n: p for n, p in m.named_parameters()}
    ref_y, (ref_yT, ref_sT) = naive.run(oracle(m), [params], x, hx, lens, 1, False)
    C = m.num_cells
    torch.testing.assert_close(out, ref_y[..., :C], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(yT, ref_yT, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(sT, ref_sT, rtol=1e-10, atol=1e-12)
    wrt = [x, *hx, *m.parameters()]
    w = torch.randn_like(out)

    def loss(o, s):
        return (o * w).sum() + (s ** 2).sum()

    got = torch.autograd.grad(loss(out, sT), wrt, allow_unused=True)
    want = torch.autograd.grad(loss(ref_y[..., :C], ref_sT), wrt, allow_unused=True)
    for g, v, leaf in zip(got, want, wrt):
        g = torch.zeros_like(leaf) if g is None else g
        v = torch.zeros_like(leaf) if v is None else v
        torch.testing.assert_close(g, v, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name,options", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_gradcheck_full_bptt(name, options):
    m = make(options, truncated=False, K=2)
    x, hx, lens = inputs(m, T=4, B=2, lengths=True)
    names = [n for n, _ in m.named_parameters()]

    def f(x, y0, s0, *params):
        out, (yT, sT) = torch.func.functional_call(
            m, dict(zip(names, params)), (x, (y0, s0)), {"lengths": lens})
        return out, yT, sT

    args = tuple(t.detach().requires_grad_() for t in (x, *hx, *m.parameters()))
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_carousel_carries_error_unchanged():
    """Truncated: ∂s_c(T)/∂s_c(0) = 1 exactly, whatever T; and nothing reaches y(0)."""
    m = make({}, truncated=True)
    x, (y0, s0), _ = inputs(m, T=50)
    _, (_, sT) = m(x, (y0, s0))
    dy0, ds0 = torch.autograd.grad(sT.sum(), (y0, s0))
    assert torch.count_nonzero(dy0) == 0
    torch.testing.assert_close(ds0, torch.ones_like(ds0))


def _count(m, outputs, output_bias, output_sees_input=False):
    """The paper's "# weights": the recurrent module plus output units that see the cells
    (and, in task 2a, the inputs), with or without a bias each."""
    fan_in = m.num_cells + (m.input_size if output_sees_input else 0)
    return sum(p.numel() for p in m.parameters()) + outputs * (fan_in + int(output_bias))


@pytest.mark.parametrize(
    "experiment,build,outputs,output_bias,shortcut,paper",
    [
        ("1, 4 blocks x 1", lambda: rnnlab.LSTM1997(7, 4, 1, bias=("in", "out")), 7, False,
         False, 264),
        ("1, 3 blocks x 2", lambda: rnnlab.LSTM1997(7, 3, 2, bias=("in", "out")), 7, False,
         False, 276),
        ("2a, p = 100", lambda: rnnlab.LSTM1997(101, 1, 1, output_gate=False, recurrent=False,
                                                bias=False, g="logistic", h="identity"),
         101, False, True, 10504),
        ("2c, p = 50", lambda: rnnlab.LSTM1997(54, 2, 1, bias=False), 2, False, False, 364),
        ("2c, p = 1000", lambda: rnnlab.LSTM1997(1004, 2, 1, bias=False), 2, False, False,
         6064),
        ("3a", lambda: rnnlab.LSTM1997(1, 3, 1, input_gate_bias=[-1, -3, -5],
                                       output_gate_bias=[-2, -4, -6]), 1, False, False, 102),
        ("4, adding", lambda: rnnlab.LSTM1997(2, 2, 2, input_gate_bias=[-3, -6]), 1, True,
         False, 93),
        ("6a", lambda: rnnlab.LSTM1997(8, 2, 2), 4, True, False, 156),
        ("6b", lambda: rnnlab.LSTM1997(8, 3, 2), 8, True, False, 308),
        # Gers, Schmidhuber & Cummins 2000, the continual embedded Reber grammar
        ("CERG", lambda: rnnlab.LSTM1997(7, 4, 2, forget_gate=True, gate_recurrence=False,
                                         bias=("in", "out", "forget")), 7, True, True, 424),
    ],
)
def test_weight_counts_match_the_paper(experiment, build, outputs, output_bias, shortcut, paper):
    assert _count(build(), outputs, output_bias, shortcut) == paper


def test_initialisation():
    m = rnnlab.LSTM1997(2, 2, 2, init_range=0.1, input_gate_bias=[-3, -6],
                        output_gate_bias=-1.5)
    assert m.bias_in.tolist() == [-3, -6]
    assert m.bias_out.tolist() == [-1.5, -1.5]
    assert m.weight_hh.abs().max() <= 0.1 and m.weight_ih.abs().max() <= 0.1
    y, (yT, sT) = m(torch.randn(5, 3, 2))
    assert y.shape == (5, 3, 4) and yT.shape == (1, 3, 8) and sT.shape == (1, 3, 4)
    assert y.abs().max() <= 1  # y^c = y^out h(s), h ∈ [−1, 1]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"g": "relu"}, "unknown squasher g='relu'"),
        ({"bias": ("in", "forget")}, "subset"),
        ({"input_gate_bias": [-1, -2, -3]}, r"one per block \(2\), got 3"),
        ({"bias": False, "input_gate_bias": -1}, "no bias"),
        ({"init_range": -0.1}, "non-negative"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rnnlab.LSTM1997(2, 2, **kwargs)
