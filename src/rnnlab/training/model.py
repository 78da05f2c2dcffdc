"""A recurrent core and a readout: the model the trainer fits to a task."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers import GRU, LSTM, LSTM1997, RNN
from ..tasks import Task

CORES = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "lstm1997": LSTM1997}


def build_core(kind: str, input_size: int, hidden: int, options: dict) -> nn.Module:
    """``hidden`` is the hidden size, or for lstm1997 the number of blocks."""
    if kind not in CORES:
        raise ValueError(f"unknown model {kind!r}; expected one of {', '.join(CORES)}")
    try:
        return CORES[kind](input_size, hidden, **options)
    except TypeError as e:  # an option the core does not take
        raise ValueError(f"model {kind!r}: {e}") from e


class SequenceModel(nn.Module):
    """core → readout (→ the task's output activation), applied at every step.

    ``shortcut``: the readout also sees the input (the 1997 task 2a's output units do).
    """

    def __init__(self, core: nn.Module, output_size: int, output: str, *,
                 readout_bias: bool = True, shortcut: bool = False) -> None:
        super().__init__()
        self.core, self.output, self.shortcut = core, output, shortcut
        width = core.num_cells if isinstance(core, LSTM1997) else (
            (core.proj_size or core.hidden_size) * (2 if core.bidirectional else 1))
        if shortcut:
            width += core.input_size
        p = next(core.parameters())
        self.readout = nn.Linear(width, output_size, bias=readout_bias, dtype=p.dtype,
                                 device=p.device)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (T, B, input) -> (T, B, output), after the task's activation (logits for
        softmax tasks, whose loss applies the softmax).

        x may instead hold symbols, (T, B) integers: the active unit of a one-hot input, −1
        where none is (a task's `Batch.symbols`). The result is the same as for the one-hot
        x, but the core projects each of its input_size symbols once rather than every step
        (`forward(ids, embedding=...)`): task 2c at p = 1000 has 1,004 inputs."""
        if not x.is_floating_point():
            x, table = _one_hot_rows(x, self.core)
            h, _ = self.core(x, lengths=lengths, embedding=table)
            if self.shortcut:
                x = table[x]  # the readout sees the dense input
        else:
            h, _ = self.core(x, lengths=lengths)
        if self.shortcut:
            h = torch.cat((h, x), dim=-1)
        z = self.readout(h)
        return torch.sigmoid(z) if self.output == "sigmoid" else z


def _one_hot_rows(symbols: Tensor, core: nn.Module) -> tuple[Tensor, Tensor]:
    """Symbols (−1: no input) as ids into a one-hot table: the identity, and a row of zeros
    (id n) for −1."""
    n = core.input_size
    if symbols.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"a model's input is float (one-hot or any x) or integer symbols, got "
                        f"dtype {symbols.dtype}")
    if symbols.numel() and not (-1 <= int(symbols.min()) and int(symbols.max()) < n):
        raise ValueError(f"symbols must lie in [-1, {n}) (-1: no input), got "
                         f"[{int(symbols.min())}, {int(symbols.max())}]")
    p = next(core.parameters())
    table = torch.cat((torch.eye(n, dtype=p.dtype, device=p.device),
                       p.new_zeros(1, n)))
    ids = symbols.to(p.device)
    return torch.where(ids < 0, n, ids), table


def make_model(task: Task, kind: str, hidden: int, options: dict | None = None, *,
               readout_bias: bool = True, shortcut: bool = False) -> SequenceModel:
    core = build_core(kind, task.input_size, hidden, dict(options or {}))
    return SequenceModel(core, task.output_size, task.output, readout_bias=readout_bias,
                         shortcut=shortcut)
