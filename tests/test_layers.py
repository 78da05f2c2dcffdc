"""The modules as drop-in replacements for torch.nn: same parameters, same numbers."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab

# every test here runs on the compiled kernels and on the reference path
pytestmark = pytest.mark.usefixtures("engine_path")

PAIRS = {
    "rnn": (rnnlab.RNN, torch.nn.RNN),
    "lstm": (rnnlab.LSTM, torch.nn.LSTM),
    "gru": (rnnlab.GRU, torch.nn.GRU),
}
TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-6}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}

OPTIONS = [
    {},
    {"num_layers": 2},
    {"bidirectional": True},
    {"num_layers": 3, "bidirectional": True, "batch_first": True},
    {"bias": False, "num_layers": 2},
    {"nonlinearity": "relu", "num_layers": 2},
    {"proj_size": 3, "num_layers": 2, "bidirectional": True},
]


def _pairs_for(options):
    for kind, (ours, theirs) in PAIRS.items():
        if "nonlinearity" in options and kind != "rnn":
            continue
        if "proj_size" in options and kind != "lstm":
            continue
        yield kind, ours, theirs


def _twin(ours, theirs, options, dtype, I=4, H=5):
    ref = theirs(I, H, dtype=dtype, **options)
    mod = ours(I, H, dtype=dtype, **options)
    mod.load_state_dict(ref.state_dict())
    return mod, ref


def _hx(ref, B, dtype, batched=True):
    LD = ref.num_layers * (2 if ref.bidirectional else 1)
    shape = (LD, B) if batched else (LD,)
    h = torch.randn(*shape, getattr(ref, "proj_size", 0) or ref.hidden_size, dtype=dtype)
    if isinstance(ref, torch.nn.LSTM):
        return (h, torch.randn(*shape, ref.hidden_size, dtype=dtype))
    return h


def _flat(out, finals):
    finals = finals if isinstance(finals, tuple) else (finals,)
    return [out, *finals]


def _compare(mod, ref, x_ours, x_ref, hx, dtype, grads=True):
    out, fin = mod(x_ours, hx)
    ref_out, ref_fin = ref(x_ref, hx)
    got, want = _flat(out, fin), _flat(ref_out, ref_fin)
    if isinstance(out, torch.nn.utils.rnn.PackedSequence):
        got[0], want[0] = out.data, ref_out.data
        assert torch.equal(out.batch_sizes, ref_out.batch_sizes)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[dtype])
    if not grads:
        return
    weights = [torch.randn_like(t) for t in want]
    loss = sum((a * w).sum() for a, w in zip(got, weights))
    ref_loss = sum((b * w).sum() for b, w in zip(want, weights))
    g = torch.autograd.grad(loss, list(mod.parameters()))
    rg = torch.autograd.grad(ref_loss, list(ref.parameters()))
    for (name, _), a, b in zip(mod.named_parameters(), g, rg):
        torch.testing.assert_close(a, b, **TOL[dtype], msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_equals_torch(options, dtype):
    for _, ours, theirs in _pairs_for(options):
        mod, ref = _twin(ours, theirs, options, dtype)
        B, T = 3, 6
        shape = (B, T, 4) if options.get("batch_first") else (T, B, 4)
        x = torch.randn(*shape, dtype=dtype, requires_grad=True)
        _compare(mod, ref, x, x, _hx(ref, B, dtype), dtype)
        # input gradient too
        out, _ = mod(x)
        ref_out, _ = ref(x)
        w = torch.randn_like(ref_out)
        (gx,) = torch.autograd.grad((out * w).sum(), x)
        (rgx,) = torch.autograd.grad((ref_out * w).sum(), x)
        torch.testing.assert_close(gx, rgx, **TOL[dtype])


@pytest.mark.parametrize("kind", list(PAIRS))
def test_unbatched_input(kind):
    ours, theirs = PAIRS[kind]
    mod, ref = _twin(ours, theirs, {"num_layers": 2, "bidirectional": True}, torch.float64)
    x = torch.randn(7, 4, dtype=torch.float64)
    _compare(mod, ref, x, x, _hx(ref, None, torch.float64, batched=False), torch.float64)
    out, _ = mod(x)
    assert out.shape == (7, 10)


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_sequence(kind, enforce_sorted):
    ours, theirs = PAIRS[kind]
    options = {"num_layers": 2, "bidirectional": True}
    mod, ref = _twin(ours, theirs, options, torch.float64)
    lengths = torch.tensor([6, 4, 4, 1]) if enforce_sorted else torch.tensor([2, 6, 1, 4])
    x = torch.randn(6, 4, 4, dtype=torch.float64)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    _compare(mod, ref, packed, packed, _hx(ref, 4, torch.float64), torch.float64)
    out, _ = mod(packed)
    ref_out, _ = ref(packed)
    assert torch.equal(out.sorted_indices if out.sorted_indices is not None else torch.tensor(0),
                       ref_out.sorted_indices if ref_out.sorted_indices is not None
                       else torch.tensor(0))


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("batch_first", [False, True])
def test_lengths_equal_packed_torch(kind, batch_first):
    """lengths= on a padded batch == torch with pack_padded_sequence(enforce_sorted=False)."""
    ours, theirs = PAIRS[kind]
    options = {"num_layers": 2, "bidirectional": True, "batch_first": batch_first}
    mod, ref = _twin(ours, theirs, options, torch.float64)
    lengths = torch.tensor([3, 7, 1, 7, 5])
    T, B = 7, 5
    x = torch.randn(*((B, T) if batch_first else (T, B)), 4, dtype=torch.float64,
                    requires_grad=True)
    hx = _hx(ref, B, torch.float64)
    out, fin = mod(x, hx, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    ref_packed, ref_fin = ref(packed, hx)
    ref_out, _ = pad_packed_sequence(ref_packed, batch_first=batch_first, total_length=T)
    for a, b in zip(_flat(out, fin), _flat(ref_out, ref_fin)):
        torch.testing.assert_close(a, b, **TOL[torch.float64])
    w = torch.randn_like(out)
    g = torch.autograd.grad((out * w).sum() + sum(f.sum() for f in _flat(out, fin)[1:]),
                            [x, *mod.parameters()])
    ref_loss = (ref_out * w).sum() + sum(f.sum() for f in _flat(ref_out, ref_fin)[1:])
    rg = torch.autograd.grad(ref_loss, [x, *ref.parameters()])
    for a, b in zip(g, rg):
        torch.testing.assert_close(a, b, **TOL[torch.float64])
    # outputs past each sequence's end are exactly zero
    steps = torch.arange(T).unsqueeze(1 if not batch_first else 0)
    pad = (steps >= lengths.unsqueeze(0 if not batch_first else 1))
    assert torch.count_nonzero(out[pad]) == 0


@pytest.mark.parametrize("kind", list(PAIRS))
def test_same_seed_same_initial_weights(kind):
    ours, theirs = PAIRS[kind]
    torch.manual_seed(7)
    ref = theirs(3, 4, num_layers=2, bidirectional=True)
    torch.manual_seed(7)
    mod = ours(3, 4, num_layers=2, bidirectional=True)
    ref_sd, sd = ref.state_dict(), mod.state_dict()
    assert list(sd) == list(ref_sd)
    for k in sd:
        assert torch.equal(sd[k], ref_sd[k]), k


def test_torch_loads_our_state_dict():
    mod = rnnlab.LSTM(3, 4, num_layers=2, proj_size=2)
    ref = torch.nn.LSTM(3, 4, num_layers=2, proj_size=2)
    ref.load_state_dict(mod.state_dict())


CELLS = {
    "rnn": (rnnlab.RNNCell, torch.nn.RNNCell),
    "lstm": (rnnlab.LSTMCell, torch.nn.LSTMCell),
    "gru": (rnnlab.GRUCell, torch.nn.GRUCell),
}


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_equal_torch(kind, bias, batched):
    ours, theirs = CELLS[kind]
    ref = theirs(4, 5, bias=bias, dtype=torch.float64)
    mod = ours(4, 5, bias=bias, dtype=torch.float64)
    mod.load_state_dict(ref.state_dict())
    x = torch.randn(*((3,) if batched else ()), 4, dtype=torch.float64)
    h = torch.randn(*((3,) if batched else ()), 5, dtype=torch.float64)
    hx = (h, torch.randn_like(h)) if kind == "lstm" else h
    for state in (None, hx):
        got, want = mod(x, state), ref(x, state)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        loss = sum((g * (k + 1)).sum() for k, g in enumerate(got))
        ref_loss = sum((w * (k + 1)).sum() for k, w in enumerate(want))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, **TOL[torch.float64])
        ga = torch.autograd.grad(loss, list(mod.parameters()))
        gb = torch.autograd.grad(ref_loss, list(ref.parameters()))
        for a, b in zip(ga, gb):
            torch.testing.assert_close(a, b, **TOL[torch.float64])


def test_cell_options():
    cell = rnnlab.LSTMCell(3, 4, peephole=True)
    assert cell.weight_peephole.shape == (12,)
    h, c = cell(torch.randn(2, 3))
    assert h.shape == c.shape == (2, 4)
    gru = rnnlab.GRUCell(3, 4, reset_after=False)
    assert gru(torch.randn(3)).shape == (4,)
    rnn = rnnlab.RNNCell(3, 4, nonlinearity="sigmoid")
    assert (rnn(torch.randn(2, 3)) > 0).all()


def test_peephole_parameter_names():
    m = rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True, peephole=True)
    names = [n for n, _ in m.named_parameters() if "peephole" in n]
    assert names == ["weight_peephole_l0", "weight_peephole_l0_reverse",
                     "weight_peephole_l1", "weight_peephole_l1_reverse"]
    assert all(p.shape == (12,) for n, p in m.named_parameters() if "peephole" in n)


def test_dropout_between_layers():
    mod, ref = _twin(rnnlab.LSTM, torch.nn.LSTM, {"num_layers": 2, "dropout": 0.5},
                     torch.float64)
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    mod.eval()
    ref.eval()
    torch.testing.assert_close(mod(x)[0], ref(x)[0])
    mod.train()
    torch.manual_seed(1)
    a, _ = mod(x)
    torch.manual_seed(1)
    b, _ = mod(x)
    torch.manual_seed(2)
    c, _ = mod(x)
    torch.testing.assert_close(a, b)  # dropout follows torch's RNG
    assert not torch.allclose(a, c)


def test_repr_and_options():
    assert "peephole=True" in repr(rnnlab.LSTM(2, 3, peephole=True))
    assert "reset_after=False" in repr(rnnlab.GRU(2, 3, reset_after=False))
    assert "nonlinearity='linear'" in repr(rnnlab.RNN(2, 3, nonlinearity="linear"))
    with pytest.raises(TypeError):
        rnnlab.LSTM(2, 3, 1, True, False, 0.0, False, 0, None, None, True)  # keyword-only


def test_backward_twice_with_retain_graph():
    mod = rnnlab.LSTM(3, 4)
    x = torch.randn(5, 2, 3, requires_grad=True)
    out, _ = mod(x)
    (g1,) = torch.autograd.grad(out.sum(), x, retain_graph=True)
    (g2,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(g1, g2)
