"""Greff et al.'s (2017) LSTM variants (rnnlab.cells.lstm_variants): the naive per-step oracle
written from their definitions, with peepholes, projection, lengths, both directions, layers
and the regularisers; gradcheck; torch.func and double backward; the cell module; parameter
shapes, forget-gate initialisation and errors."""

import functools

import naive
import pytest
import torch

import rnnlab
from rnnlab import options as opt

# The oracle test runs on both engine paths (the compiled kernel and the reference path); the
# others on the default one (compiled where it builds): test_kernels holds the two paths equal.

leaves, loss_of = naive.leaves, naive.loss_of
VARIANTS = ["NIG", "NFG", "NOG", "NIAF", "NOAF", "CIFG", "FGR"]
EXTRAS = [
    ("plain", {}),
    ("peephole-proj", {"peephole": True, "proj_size": 2}),
    ("peephole-regularised", {"peephole": True, "recurrent_dropout": 0.3, "zoneout": (0.3, 0.4)}),
]


def make(variant, options, H=4):
    return naive.make_module(rnnlab.LSTM, H, variant=variant, **options)


inputs = naive.module_inputs


@pytest.mark.usefixtures("engine_path")
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name,options", EXTRAS, ids=[e[0] for e in EXTRAS])
def test_matches_naive_oracle(variant, name, options):
    m = make(variant, options)
    x, hx, lens = inputs(m)
    torch.manual_seed(4)
    out, finals = m(x, hx, lengths=lens)
    torch.manual_seed(4)
    masks = opt.sample_masks(4, x.shape[0], x.shape[1], m._state_sizes(),
                             drop=m.recurrent_dropout, zone=m._zone, training=True, like=x)
    step = functools.partial(naive.lstm_variant_step, variant=variant, peephole=m.peephole)
    inits = hx + ((torch.zeros(4, 3, 12, dtype=torch.float64),) if variant == "FGR" else ())
    ref_out, ref_finals = naive.run(step, naive.module_params(m, 2, True), x, inits, lens, 2,
                                    True, masks=masks)
    naive.assert_matches(out, finals, ref_out, ref_finals[:2], leaves(x, hx, m))


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcheck(variant):
    m = make(variant, {"peephole": True}, H=3)
    assert naive.gradcheck_module(m, *inputs(m, T=4))


@pytest.mark.parametrize("variant", ["CIFG", "NOAF", "FGR"])
def test_torch_func_and_double_backward(variant):
    m = make(variant, {"peephole": True, "zoneout": 0.3})
    naive.assert_func_and_double_backward(m, *inputs(m))


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "FGR"])
def test_lstm_cell_is_one_step_of_the_oracle(variant):
    cell = rnnlab.LSTMCell(3, 4, dtype=torch.float64, variant=variant, peephole=True)
    x = torch.randn(2, 3, dtype=torch.float64)
    state = (torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64))
    h, c = cell(x, state)
    ref_h, ref_c = naive.lstm_variant_step(dict(cell.named_parameters()), x, state, variant,
                                           peephole=True)
    torch.testing.assert_close(h, ref_h, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c, ref_c, rtol=1e-10, atol=1e-12)


def test_parameter_shapes_follow_the_gates_that_exist():
    for variant, gates, peeps in [("NIG", 3, 2), ("NFG", 3, 2), ("NOG", 3, 2), ("CIFG", 3, 2),
                                  ("NIAF", 4, 3), ("NOAF", 4, 3), ("FGR", 4, 3)]:
        m = rnnlab.LSTM(2, 5, variant=variant, peephole=True, proj_size=3)
        assert m.weight_ih_l0.shape == (gates * 5, 2)
        assert m.weight_hh_l0.shape == (gates * 5, 3)
        assert m.bias_ih_l0.shape == (gates * 5,)
        assert m.weight_peephole_l0.shape == (peeps * 5,)
        assert f"variant={variant!r}" in repr(m)
    assert rnnlab.LSTM(2, 5, variant="cifg").variant == "CIFG"
    assert rnnlab.LSTM(2, 5, variant="FGR").weight_gr_l0.shape == (15, 15)  # rows, columns i, f, o
    assert not hasattr(rnnlab.LSTM(2, 5, variant="NIG"), "weight_gr_l0")


def test_forget_bias_finds_the_forget_gate():
    m = rnnlab.LSTM(2, 3, variant="NIG", forget_bias=2.0)  # blocks (f, g, o)
    assert torch.equal(m.bias_ih_l0[:3], torch.full((3,), 2.0))
    m = rnnlab.LSTM(2, 3, variant="CIFG", chrono_init=10)  # no input gate: f's only
    assert (m.bias_ih_l0[:3] >= 0).all() and torch.equal(m.bias_hh_l0[:3], torch.zeros(3))


def test_variants_differ_from_the_plain_cell_and_from_each_other():
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    outs = {}
    for variant in [None, "NIAF", "NOAF"]:  # same parameter shapes: same weights
        torch.manual_seed(0)
        outs[variant] = rnnlab.LSTM(3, 4, dtype=torch.float64, variant=variant)(x)[0]
    assert not torch.allclose(outs[None], outs["NIAF"])
    assert not torch.allclose(outs[None], outs["NOAF"])


@pytest.mark.parametrize("kwargs,message", [
    ({"variant": "NP"}, "peephole=False"),
    ({"variant": "LSTM"}, "variant must be one of"),
    ({"variant": 3}, "variant must be one of"),
    ({"variant": "CIFG", "layer_norm": True}, "not with layer_norm"),
    ({"variant": "NIG", "truncated": True}, "not with layer_norm or truncated"),
    ({"variant": "NFG", "forget_bias": 1.0}, "no forget gate"),
    ({"variant": "NFG", "chrono_init": 10}, "no forget gate"),
])
def test_bad_values_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rnnlab.LSTM(2, 3, **kwargs)


def test_fgr_needs_the_layer_module():
    with pytest.raises(ValueError, match="use rnnlab.LSTM"):
        rnnlab.LSTMCell(2, 3, variant="FGR")


def test_fgr_gates_see_the_previous_gates():
    """W_gr = 0 is the plain cell (same weights); W_gr ≠ 0 changes the output from step 2 on."""
    torch.manual_seed(0)
    fgr = rnnlab.LSTM(3, 4, dtype=torch.float64, variant="FGR")
    plain = rnnlab.LSTM(3, 4, dtype=torch.float64)
    plain.load_state_dict({k: v for k, v in fgr.state_dict().items() if "weight_gr" not in k})
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        fgr.weight_gr_l0.zero_()
        torch.testing.assert_close(fgr(x)[0], plain(x)[0], rtol=0, atol=1e-15)
        fgr.weight_gr_l0.normal_()
        out = fgr(x)[0]
    torch.testing.assert_close(out[0], plain(x)[0][0], rtol=0, atol=1e-15)
    assert not torch.allclose(out[1:], plain(x)[0][1:])


@pytest.mark.parametrize("variant,size", [("CIFG", 8), ("FGR", 20)])  # FGR: h, c and q
def test_analysis_step_jacobian_is_autograds(variant, size):
    from rnnlab.analysis import jacobians
    from rnnlab.analysis.models import layer_trajectories

    m = rnnlab.LSTM(3, 4, dtype=torch.float64, variant=variant).eval()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    (tr,) = layer_trajectories(m, x)
    torch.testing.assert_close(tr["tape"].states[0][1:], m(x)[0])
    J = jacobians.jacobian_sequence(tr["cell"], tr["params"], tr["tape"], x)
    assert J.shape == (4, 2, size, size) and torch.isfinite(J).all()


def test_analysis_names_the_gates_that_exist():
    from rnnlab.analysis.models import gate_saturation, recurrent_spectra

    m = rnnlab.LSTM(3, 4, variant="NIG")
    assert [r["gate"] for r in recurrent_spectra(m)] == ["f", "g", "o"]
    assert set(gate_saturation(m, torch.randn(5, 2, 3))) == {"f", "g", "o"}
