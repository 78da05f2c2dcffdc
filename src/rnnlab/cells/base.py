"""The contract between a cell (the math) and the engine (the time loop).

A cell is a pair of step functions plus the bookkeeping of what they need. The engine owns
the loop; a cell never loops over time. Tensors are time-major, (T, B, ...), and the batch is
sorted by length, longest first, so that the sequences still running at step t are the rows
``[:n]`` with ``n = batch_sizes[t]``; a step touches only those rows.

Life of one layer-direction:

    xw = x W_ihᵀ + input_bias                      engine: one matrix product for all T steps
    tape = cell.begin(xw, inits, params, padded)   cell: allocate every buffer once
    for t: cell.step(tape, t, n)                   cell: recurrent product + pointwise math
    cell.begin_backward(tape)                      cell: pointwise derivative factors, all T at once
    for t reversed: cell.step_back(tape, t, n, carry)
        carry holds ∂L/∂state_t on entry (rows [:n]) and ∂L/∂state_{t-1} on exit; the cell
        writes ∂L/∂(pre-activation of the input projection) into tape.dG[t, :n]
    dW_ih = dGᵀ x, dx = dG W_ih                    engine: one matrix product each
    cell.recurrent_grads(tape, dG, db)             cell: weight gradients, one product each

State buffers are (T + 1, B, size) with slot 0 the initial state, so slot t is h_{t-1} for
step t and slots 1..T are the outputs. When the batch is padded, buffers that are read past a
sequence's end are zero-filled so outputs and gradients there stay zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Tape:
    """Buffers of one forward pass, kept for the backward pass."""

    xw: Tensor  # (T, B, G·H) input projection; cells overwrite it with gate activations
    states: tuple[Tensor, ...]  # each (T + 1, B, size)
    params: dict[str, Tensor | None]
    padded: bool = False  # some sequences end before T: zero-fill what is read past the end
    extra: dict[str, Tensor] = field(default_factory=dict)
    dG: Tensor | None = None  # (T, B, G·H) gradient w.r.t. xw, filled by step_back


class CellMath:
    """Base class: subclasses fill in the math. See the module docstring for the contract."""

    #: number of gate blocks stacked in W_ih / W_hh (rows = n_gates · hidden_size)
    n_gates: int = 1
    #: parameter names of one layer-direction, in torch's registration order, then extras
    param_names: tuple[str, ...] = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    #: names of the state tensors; the first is the output h
    state_names: tuple[str, ...] = ("h",)

    def input_bias(self, params: dict[str, Tensor | None]) -> Tensor | None:
        """The bias added to the hoisted input projection (biases that can be folded in)."""
        b_ih, b_hh = params["bias_ih"], params["bias_hh"]
        if b_ih is None:
            return None
        return b_ih + b_hh

    def begin(self, xw: Tensor, inits: tuple[Tensor, ...], params: dict, padded: bool) -> Tape:
        raise NotImplementedError

    def step(self, tape: Tape, t: int, n: int) -> None:
        raise NotImplementedError

    def begin_backward(self, tape: Tape) -> None:
        raise NotImplementedError

    def step_back(self, tape: Tape, t: int, n: int, carry: list[Tensor]) -> None:
        raise NotImplementedError

    def recurrent_grads(self, tape: Tape, dG: Tensor, db: Tensor | None) -> dict[str, Tensor]:
        """Gradients of every parameter except weight_ih / bias_ih (the engine's)."""
        raise NotImplementedError


def state_buffer(init: Tensor, T: int, padded: bool) -> Tensor:
    """(T + 1, B, size) buffer with slot 0 = init; zero-filled when the batch is padded."""
    B, size = init.shape
    alloc = torch.zeros if padded else torch.empty
    buf = alloc(T + 1, B, size, dtype=init.dtype, device=init.device)
    buf[0] = init
    return buf


def grad_buffer(like: Tensor, padded: bool) -> Tensor:
    """Gradient buffer shaped like ``like``; rows past a sequence's end must read as zero."""
    return torch.zeros_like(like) if padded else torch.empty_like(like)


def flat(x: Tensor) -> Tensor:
    """(T, B, k) -> (T·B, k), the shape of the after-the-loop weight-gradient products."""
    return x.reshape(-1, x.shape[-1])
