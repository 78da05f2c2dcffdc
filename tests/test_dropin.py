"""Code written against torch.nn's recurrent modules runs unchanged on rnnlab's: code that walks
the weights (``_flat_weights``, ``all_weights``: weight drop, pruning, weight norm), autocast,
and batched gradients (``is_grads_batched``, vectorised jacobians and hessians). Each is
compared with torch.nn doing the same thing on the same weights."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

import rnnlab

PAIRS = [(rnnlab.RNN, nn.RNN), (rnnlab.LSTM, nn.LSTM), (rnnlab.GRU, nn.GRU)]


def _pair(ours, theirs, *args, **kwargs):
    """rnnlab's module and torch.nn's, with the same weights."""
    a = ours(*args, **kwargs)
    b = theirs(*args, **kwargs)
    b.load_state_dict(a.state_dict())
    return a, b


def _states(h):
    return h if isinstance(h, tuple) else (h,)


@pytest.mark.parametrize("ours,theirs", PAIRS)
def test_flat_weights_and_all_weights_are_torch_nn_s(ours, theirs):
    a, b = _pair(ours, theirs, 3, 4, num_layers=2, bidirectional=True)
    assert a._flat_weights_names == b._flat_weights_names
    assert a._all_weights == b._all_weights
    assert [w.shape for w in a._flat_weights] == [w.shape for w in b._flat_weights]
    assert all(w is getattr(a, n) for w, n in zip(a._flat_weights, a._flat_weights_names))
    assert [[w.shape for w in ws] for ws in a.all_weights] == \
           [[w.shape for w in ws] for ws in b.all_weights]
    a.double()  # .to() replaces the parameters: the list follows
    assert all(w.dtype == torch.float64 for w in a._flat_weights)


class WeightDrop(nn.Module):
    """DropConnect on recurrent weights, written the way AWD-LSTM writes it (Merity et al.
    2017): the parameter leaves the wrapped module's ``_parameters`` and lives on as
    ``<name>_raw``; before each forward a dropped copy is set in its place as a plain tensor."""

    def __init__(self, module, weights, dropout):
        super().__init__()
        self.module, self.weights, self.dropout = module, weights, dropout
        self.module.flatten_parameters = lambda *a, **k: None  # as AWD-LSTM does for cuDNN
        for name in weights:
            w = getattr(module, name)
            del module._parameters[name]
            module.register_parameter(name + "_raw", nn.Parameter(w.data))

    def forward(self, *args):
        for name in self.weights:
            raw = getattr(self.module, name + "_raw")
            setattr(self.module, name, F.dropout(raw, p=self.dropout, training=self.training))
        return self.module(*args)


@pytest.mark.parametrize("ours,theirs", PAIRS)
def test_awd_lstm_weight_drop_runs_as_on_torch_nn(ours, theirs):
    a, b = _pair(ours, theirs, 3, 5, num_layers=2)
    wa, wb = WeightDrop(a, ["weight_hh_l0", "weight_hh_l1"], 0.5), \
        WeightDrop(b, ["weight_hh_l0", "weight_hh_l1"], 0.5)
    x = torch.randn(6, 2, 3)
    torch.manual_seed(1)
    out_a, h_a = wa(x)
    torch.manual_seed(1)
    out_b, h_b = wb(x)
    torch.testing.assert_close(out_a, out_b)
    # the dropped weight is the one listed and the one used; the raw one gets the gradient
    assert a._flat_weights[1] is a.weight_hh_l0 and not isinstance(a.weight_hh_l0, nn.Parameter)
    (out_a.sum() + sum(s.sum() for s in _states(h_a))).backward()
    (out_b.sum() + sum(s.sum() for s in _states(h_b))).backward()
    torch.testing.assert_close(a.weight_hh_l0_raw.grad, b.weight_hh_l0_raw.grad)
    assert int((a.weight_hh_l0 == 0).sum()) > 0  # the mask really dropped weights


def test_pruning_keeps_the_flat_weights_as_torch_nn():
    """torch's own pruning test of an LSTM, on rnnlab's."""
    for cls in (rnnlab.LSTM, nn.LSTM):
        m = cls(8, 8)
        prune.l1_unstructured(m, "weight_ih_l0", 0.5)
        assert sum(isinstance(p, nn.Parameter) for p in m._flat_weights) == 3
        assert m._flat_weights[0] is m.weight_ih_l0
        assert int((m.weight_ih_l0 == 0).sum()) == 4 * 8 * 8 // 2
        prune.remove(m, "weight_ih_l0")
        assert sum(isinstance(p, nn.Parameter) for p in m._flat_weights) == 4
        assert "weight_ih_l0" in m._parameters and "weight_ih_l0_orig" not in m._parameters


@pytest.mark.parametrize("ours,theirs", PAIRS)
def test_weight_norm_both_forms_as_torch_nn(ours, theirs):
    x = torch.randn(4, 2, 3)
    for apply in (nn.utils.weight_norm, nn.utils.parametrizations.weight_norm):
        a, b = _pair(ours, theirs, 3, 5)
        with pytest.warns(FutureWarning) if apply is nn.utils.weight_norm else _nothing():
            apply(a, "weight_hh_l0")
            apply(b, "weight_hh_l0")
        torch.testing.assert_close(a(x)[0], b(x)[0])
        a(x)[0].sum().backward()
        b(x)[0].sum().backward()
        g = [n for n, _ in a.named_parameters() if "weight_hh_l0" in n]
        assert len(g) == 2  # magnitude and direction
        for n in g:
            torch.testing.assert_close(dict(a.named_parameters())[n].grad,
                                       dict(b.named_parameters())[n].grad)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("ours,theirs", PAIRS + [(rnnlab.LSTM, None)])
def test_autocast_runs_in_the_autocast_dtype(ours, theirs):
    """Under CPU autocast (bfloat16) the layer computes in bfloat16 and returns bfloat16
    outputs and states, as torch.nn's LSTM and RNN; the gradients reach the float32
    parameters; a bfloat16 module takes float32 input (autocast casts it), as torch.nn."""
    kwargs = {"proj_size": 2} if theirs is None else {}
    a = ours(3, 4, num_layers=2, **kwargs)
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h = a(x)
    assert out.dtype == torch.bfloat16 and all(s.dtype == torch.bfloat16 for s in _states(h))
    out.float().sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in a.parameters())
    # the same numbers as the module cast to bfloat16 by hand
    b16 = ours(3, 4, num_layers=2, **kwargs)
    b16.load_state_dict(a.state_dict())
    b16 = b16.to(torch.bfloat16)
    torch.testing.assert_close(out, b16(x.to(torch.bfloat16))[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert b16(x)[0].dtype == torch.bfloat16  # float32 input, bfloat16 module
    with pytest.raises(ValueError, match="does not match weight dtype"):
        b16(x)  # without autocast: the dtype error torch.nn raises
    if theirs is nn.LSTM or theirs is nn.RNN:  # torch.nn agrees (its GRU stays float32)
        b = theirs(3, 4, num_layers=2)
        b.load_state_dict(a.state_dict())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_b, _ = b(x)
        assert out_b.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), out_b.float(), atol=0.05, rtol=0.05)


def test_autocast_leaves_float64_alone_and_covers_the_cells():
    m = rnnlab.LSTM(3, 4).double()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert m(torch.randn(5, 2, 3, dtype=torch.float64))[0].dtype == torch.float64
    for cls in (rnnlab.RNNCell, rnnlab.LSTMCell, rnnlab.GRUCell):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = cls(3, 4)(torch.randn(2, 3))
        assert all(s.dtype == torch.bfloat16 for s in _states(out))


@pytest.mark.parametrize("cls", [rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU])
def test_batched_gradients_equal_one_backward_per_row(cls):
    """autograd.grad(..., is_grads_batched=True) runs the backward under vmap; the layer's
    backward then takes the differentiable path. Checked row by row against plain backward."""
    m = cls(3, 4, num_layers=2, bidirectional=True).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    out, _ = m(x)
    v = torch.randn(7, *out.shape, dtype=torch.float64)
    params = list(m.parameters())
    batched = torch.autograd.grad(out, [x, *params], v, is_grads_batched=True,
                                  retain_graph=True)
    for k in range(v.shape[0]):
        rows = torch.autograd.grad(out, [x, *params], v[k], retain_graph=True)
        for got, want in zip(batched, rows):
            torch.testing.assert_close(got[k], want)


def test_vectorised_jacobian_and_hessian_equal_torch_nn_s():
    a, b = _pair(rnnlab.LSTM, nn.LSTM, 2, 3)
    a, b = a.double(), b.double()
    x = torch.randn(4, 1, 2, dtype=torch.float64)
    for fn in (torch.autograd.functional.jacobian, torch.autograd.functional.hessian):
        f = (lambda m: (lambda x: m(x)[0])) if fn is torch.autograd.functional.jacobian \
            else (lambda m: (lambda x: m(x)[0].pow(2).sum()))
        torch.testing.assert_close(fn(f(a), x, vectorize=True), fn(f(b), x))


def test_a_bfloat16_lstm_with_float32_states_runs_under_autocast_only():
    """torch's own autocast test of an LSTM (test_autocast.py), on rnnlab's."""
    m = rnnlab.LSTM(1, 1, 2).to(torch.bfloat16)
    x, hx, cx = torch.randn(1, 2, 1), torch.randn(2, 2, 1), torch.randn(2, 2, 1)
    with pytest.raises(ValueError, match="does not match weight dtype"):
        m(x, (hx, cx))
    with torch.autocast("cpu"):
        out, (h, c) = m(x, (hx, cx))
    assert out.dtype == h.dtype == c.dtype == torch.bfloat16
