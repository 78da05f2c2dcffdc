"""Cells: the per-step math of each recurrent family, forward and backward, by hand."""

from .base import CellMath, Tape
from .gru import GRUMath
from .gru_ln import LayerNormGRUMath
from .lstm import LSTMMath
from .lstm1997 import SQUASHERS, LSTM1997Math
from .lstm_ln import LayerNormLSTMMath
from .rnn import NONLINEARITIES, RNNMath

__all__ = [
    "CellMath", "Tape", "RNNMath", "LSTMMath", "LayerNormLSTMMath", "GRUMath",
    "LayerNormGRUMath", "LSTM1997Math",
    "NONLINEARITIES", "SQUASHERS",
]
