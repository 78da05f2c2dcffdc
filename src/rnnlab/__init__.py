"""rnnlab: a lab for recurrent neural networks with hand-written backpropagation through time."""

from ._checks import DtypeError, TensorError
from .layers import GRU, LSTM, LSTM1997, RNN, GRUCell, LSTMCell, RNNCell
from .online import OnlineLSTM1997

__version__ = "0.1.0"

__all__ = [
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "LSTM1997", "OnlineLSTM1997",
    "TensorError", "DtypeError", "__version__",
]
