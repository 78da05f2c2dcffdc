"""Bad input raises ValueError / TypeError naming what was expected and what was given."""

import pytest
import torch

import rnnlab


@pytest.fixture
def lstm():
    return rnnlab.LSTM(3, 4, num_layers=2)


@pytest.mark.parametrize(
    "make_input,error,match",
    [
        (lambda: torch.randn(5, 2, 3, 1), ValueError, "2-D or 3-D.*4-D"),
        (lambda: torch.randn(5), ValueError, "2-D or 3-D.*1-D"),
        (lambda: torch.randn(5, 2, 7), ValueError, "7 features.*input_size = 3"),
        (lambda: torch.randn(5, 2, 3, dtype=torch.float64), TypeError, "float64.*float32"),
        (lambda: torch.ones(5, 2, 3, dtype=torch.long), TypeError, "floating-point"),
        (lambda: torch.randn(0, 2, 3), ValueError, "T = 0"),
        (lambda: [[1.0, 2.0, 3.0]], TypeError, "torch.Tensor.*list"),
    ],
)
def test_bad_input(lstm, make_input, error, match):
    with pytest.raises(error, match=match):
        lstm(make_input())


@pytest.mark.parametrize(
    "hx,error,match",
    [
        (lambda: torch.zeros(2, 2, 4), TypeError, r"tuple \(h_0, c_0\)"),
        (lambda: (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)), ValueError,
         r"h_0 must have shape \(2, 2, 4\), got \(1, 2, 4\)"),
        (lambda: (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4)), ValueError,
         r"c_0 must have shape \(2, 2, 4\), got \(2, 3, 4\)"),
        (lambda: (torch.zeros(2, 4), torch.zeros(2, 4)), ValueError, "3-D.*2-D"),
        (lambda: (torch.zeros(2, 2, 4, dtype=torch.float64), torch.zeros(2, 2, 4)), TypeError,
         "h_0 has dtype torch.float64"),
    ],
)
def test_bad_hx(lstm, hx, error, match):
    with pytest.raises(error, match=match):
        lstm(torch.randn(5, 2, 3), hx())


def test_bad_hx_gru():
    gru = rnnlab.GRU(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match=r"hx must have shape \(2, 2, 4\), got \(1, 2, 4\)"):
        gru(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))


@pytest.mark.parametrize(
    "lengths,error,match",
    [
        (torch.tensor([5, 4, 3]), ValueError, r"one entry per sequence \(batch size 2\).*\(3,\)"),
        (torch.tensor([[5, 4]]), ValueError, "1-D"),
        (torch.tensor([5, 0]), ValueError, "at least 1, got 0"),
        (torch.tensor([6, 2]), ValueError, r"\(6\) exceeds.*\(5\)"),
        (torch.tensor([5.0, 2.0]), TypeError, "integer tensor.*float32"),
        ("five", TypeError, "integer"),
    ],
)
def test_bad_lengths(lstm, lengths, error, match):
    with pytest.raises(error, match=match):
        lstm(torch.randn(5, 2, 3), lengths=lengths)


def test_lengths_as_list_is_accepted(lstm):
    out, _ = lstm(torch.randn(5, 2, 3), lengths=[5, 2])
    assert torch.count_nonzero(out[2:, 1]) == 0


def test_lengths_with_packed_input_is_rejected(lstm):
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(5, 2, 3), [5, 2])
    with pytest.raises(ValueError, match="PackedSequence"):
        lstm(packed, lengths=torch.tensor([5, 2]))


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: rnnlab.RNN(3, 4, nonlinearity="softplus"), ValueError,
         "unknown nonlinearity 'softplus'.*tanh"),
        (lambda: rnnlab.RNNCell(3, 4, nonlinearity="gelu"), ValueError, "unknown nonlinearity"),
        (lambda: rnnlab.LSTM(3, 0), ValueError, "hidden_size must be positive, got 0"),
        (lambda: rnnlab.LSTM(3, 4, num_layers=0), ValueError, "num_layers must be positive"),
        (lambda: rnnlab.LSTM(3.5, 4), TypeError, "input_size must be an int, got float"),
        (lambda: rnnlab.LSTM(3, 4, dropout=1.5), ValueError, r"dropout.*\[0, 1\].*1.5"),
        (lambda: rnnlab.LSTM(3, 4, proj_size=4), ValueError, "proj_size .4. must be smaller"),
        (lambda: rnnlab.LSTM(3, 4, proj_size=-1), ValueError, "non-negative"),
    ],
)
def test_bad_constructor_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_cell_input():
    cell = rnnlab.GRUCell(3, 4)
    with pytest.raises(ValueError, match="5 features.*input_size = 3"):
        cell(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"hx must have shape \(2, 4\), got \(3, 4\)"):
        cell(torch.randn(2, 3), torch.zeros(3, 4))
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        rnnlab.LSTMCell(3, 4)(torch.randn(2, 3), torch.zeros(2, 4))


def test_factory_arguments():
    """device= and dtype= as torch.nn (meta is a device every machine has)."""
    m = rnnlab.GRU(3, 4, device="meta")
    assert m.weight_hh_l0.device.type == "meta"
    assert rnnlab.LSTM(3, 4, dtype=torch.float64).weight_ih_l0.dtype == torch.float64


@pytest.mark.parametrize("make", [
    lambda: rnnlab.LSTM(3, 4, peephole="maybe"),
    lambda: rnnlab.LSTM(3, 4, truncated="no"),
    lambda: rnnlab.LSTMCell(3, 4, peephole=2),
    lambda: rnnlab.GRU(3, 4, reset_after="perhaps"),
    lambda: rnnlab.GRUCell(3, 4, reset_after=None),
    lambda: rnnlab.LSTM1997(3, 2, 2, output_gate="yes"),
    lambda: rnnlab.LSTM1997(3, 2, 2, truncated=[]),
])
def test_a_keyword_only_option_of_the_wrong_type_is_a_type_error_naming_it(make):
    with pytest.raises(TypeError, match=r"(peephole|truncated|reset_after|output_gate) must be "
                                        r"true or false"):
        make()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, 1.5])
def test_dropout_must_be_finite_and_in_range(bad):
    with pytest.raises(ValueError, match="dropout"):
        rnnlab.LSTM(3, 4, num_layers=2, dropout=bad)


@pytest.mark.parametrize("name", ["lr", "clip"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0, -1])
def test_training_numbers_are_finite_and_positive(name, bad):
    from rnnlab.training import make_config

    with pytest.raises(ValueError, match=f"{name} must be a finite positive number"):
        make_config("adding", **{name: bad})
