"""Bad input raises ValueError / TypeError naming what was expected and what was given; where
torch.nn raises another class for the same mistake (RuntimeError for sizes, ValueError for a
dtype), the error is that class too, and carries torch.nn's words."""

import pytest
import torch

import rnnlab
from rnnlab._checks import DtypeError, TensorError


@pytest.fixture
def lstm():
    return rnnlab.LSTM(3, 4, num_layers=2)


@pytest.mark.parametrize(
    "make_input,error,match",
    [
        (lambda: torch.randn(5, 2, 3, 1), TensorError, "Expected input to be 2D or 3D, got 4D"),
        (lambda: torch.randn(5), TensorError, "2D or 3D, got 1D"),
        (lambda: torch.randn(5, 2, 7), TensorError,
         r"input.size\(-1\) must be equal to input_size. Expected 3, got 7"),
        (lambda: torch.randn(5, 2, 3, dtype=torch.float64), DtypeError,
         r"input dtype \(torch.float64\) does not match weight dtype \(torch.float32\)"),
        (lambda: torch.ones(5, 2, 3, dtype=torch.long), DtypeError, "torch.int64.*float32"),
        (lambda: torch.randn(0, 2, 3), TensorError, "larger than 0.*T = 0"),
        (lambda: [[1.0, 2.0, 3.0]], TypeError, "torch.Tensor.*list"),
    ],
)
def test_bad_input(lstm, make_input, error, match):
    with pytest.raises(error, match=match):
        lstm(make_input())


def test_the_error_classes_are_torch_nn_s_too():
    """`except RuntimeError` (sizes) and `except ValueError` (dtypes) written against torch.nn
    catch rnnlab's errors; rnnlab's own ValueError / TypeError still do."""
    assert issubclass(TensorError, ValueError) and issubclass(TensorError, RuntimeError)
    assert all(issubclass(DtypeError, c) for c in (TypeError, ValueError, RuntimeError))
    for make in (lambda: torch.randn(5, 2, 7), lambda: torch.randn(0, 2, 3)):
        for module in (rnnlab.LSTM(3, 4), torch.nn.LSTM(3, 4)):
            with pytest.raises(RuntimeError):
                module(make())
    for module in (rnnlab.GRU(3, 4), torch.nn.GRU(3, 4)):
        with pytest.raises(RuntimeError):  # a batch mismatch of h_0
            module(torch.randn(5, 2, 3), torch.zeros(1, 3, 4))
        with pytest.raises(ValueError):
            module(torch.randn(5, 2, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    "hx,error,match",
    [
        (lambda: torch.zeros(2, 2, 4), TypeError, r"tuple \(h_0, c_0\)"),
        (lambda: (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)), TensorError,
         r"Expected hidden\[0\] size \(2, 2, 4\), got \[1, 2, 4\]: h_0 must have shape"),
        (lambda: (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4)), TensorError,
         r"Expected hidden\[1\] size \(2, 2, 4\), got \[2, 3, 4\]: c_0 must have shape"),
        (lambda: (torch.zeros(2, 4), torch.zeros(2, 4)), TensorError,
         "For batched 3-D input, h_0 should also be 3-D but got 2-D"),
        (lambda: (torch.zeros(2, 2, 4, dtype=torch.float64), torch.zeros(2, 2, 4)), DtypeError,
         "h_0 has dtype torch.float64"),
    ],
)
def test_bad_hx(lstm, hx, error, match):
    with pytest.raises(error, match=match):
        lstm(torch.randn(5, 2, 3), hx())


def test_bad_hx_gru():
    gru = rnnlab.GRU(3, 4, bidirectional=True)
    with pytest.raises(TensorError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
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
         "Unknown nonlinearity 'softplus'. Select from 'tanh' or 'relu'.*'sigmoid'"),
        (lambda: rnnlab.RNNCell(3, 4, nonlinearity="gelu"), ValueError, "Unknown nonlinearity"),
        (lambda: rnnlab.LSTM(3, 0), ValueError, "hidden_size must be greater than zero, got 0"),
        (lambda: rnnlab.LSTM(3, 4, num_layers=0), ValueError,
         "num_layers must be greater than zero"),
        (lambda: rnnlab.LSTM(3.5, 4), TypeError, "input_size should be of type int, got: float"),
        (lambda: rnnlab.LSTM(3, 4, dropout=1.5), ValueError,
         r"dropout should be a number in range \[0, 1\].*1.5"),
        (lambda: rnnlab.LSTM(3, 4, proj_size=4), ValueError,
         r"proj_size has to be smaller than hidden_size: proj_size \(4\)"),
        (lambda: rnnlab.LSTM(3, 4, proj_size=-1), ValueError,
         "proj_size should be a positive integer or zero"),
        (lambda: rnnlab.GRU(3, 4, proj_size=2), ValueError,
         "proj_size argument is only supported for LSTM, not RNN or GRU"),
        (lambda: rnnlab.RNN(3, 4, proj_size=0), ValueError, "only supported for LSTM"),
    ],
)
def test_bad_constructor_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("name", ["bias", "batch_first"])
@pytest.mark.parametrize("cls", [rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU])
@pytest.mark.parametrize("bad", ["False", 0, 1, None])
def test_bias_and_batch_first_must_be_bools(cls, name, bad):
    """batch_first="False" must not silently mean True (a transposed layout): as torch.nn."""
    with pytest.raises(TypeError, match=f"{name} should be of type bool, got: "
                                        f"{type(bad).__name__}"):
        cls(3, 4, **{name: bad})


def test_bidirectional_takes_torch_nn_s_truth_values_but_not_a_string():
    assert rnnlab.LSTM(3, 4, bidirectional=1).bidirectional is True  # torch.nn takes 1
    with pytest.raises(TypeError, match="bidirectional must be true or false, got 'False'"):
        rnnlab.GRU(3, 4, bidirectional="False")


def test_a_cell_takes_any_bias_as_torch_nn_but_warns_of_a_non_bool():
    """torch.nn's cells take any truth value (its own tests pass RNNCell(10, 20, 'relu'),
    i.e. bias='relu'); rnnlab does too, and says what it took."""
    with pytest.warns(UserWarning, match="bias='relu' is not a bool; taken as True"):
        cell = rnnlab.RNNCell(10, 20, "relu")
    assert cell.bias is True and cell.nonlinearity == "tanh"


@pytest.mark.parametrize("cls", [rnnlab.RNNCell, rnnlab.GRUCell, rnnlab.LSTMCell])
def test_cells_of_zero_size_give_empty_states_as_torch_nn(cls):
    out = cls(10, 0)(torch.randn(3, 10))
    for s in (out if isinstance(out, tuple) else (out,)):
        assert s.shape == (3, 0)
    out = cls(0, 4)(torch.randn(3, 0))
    for s in (out if isinstance(out, tuple) else (out,)):
        assert s.shape == (3, 4)


def test_bad_cell_input():
    cell = rnnlab.GRUCell(3, 4)
    with pytest.raises(TensorError, match="input has inconsistent input_size: got 5 expected 3"):
        cell(torch.randn(2, 5))
    with pytest.raises(TensorError, match="Input batch size 2 doesn't match hidden0 batch size 3"):
        cell(torch.randn(2, 3), torch.zeros(3, 4))
    with pytest.raises(TensorError, match="hidden0 has inconsistent hidden_size: got 5, expected"):
        cell(torch.randn(2, 3), torch.zeros(2, 5))
    with pytest.raises(TensorError, match="GRUCell: Expected hidden to be 1D or 2D, got 3D"):
        cell(torch.randn(2, 3), torch.zeros(1, 2, 4))
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
