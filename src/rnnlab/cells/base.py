"""The contract between a cell (the math) and the engine (the time loop).

A cell is a pair of step functions plus the bookkeeping of what they need. The engine owns
the loop; a cell never loops over time. Tensors are time-major and the batch is sorted by
length, longest first, so that the sequences still running at step t are the rows ``[:n]``
with ``n = batch_sizes[t]``; a step touches only those rows.

Gate pre-activations are stored gate-major, (G, T, B, H): each gate of each step is one
contiguous (B, H) block, so the pointwise math never walks strided columns (for small H that
halves the cost of a step), and each gate's input projection is one plain matrix product
written straight into its block.

Life of one layer-direction:

    xw = x W_ihᵀ + input_bias                      engine: one matrix product for all T steps
    tape = cell.begin(xw, inits, params, sizes)    cell: allocate buffers, per-step views
    for t: cell.step(tape, t)                      cell: recurrent product + pointwise math
    cell.begin_backward(tape)                      cell: pointwise derivative factors, all T at once
    for t reversed: cell.step_back(tape, t, carry)
        carry holds ∂L/∂state_t on entry (rows [:n]) and ∂L/∂state_{t-1} on exit; the cell
        writes ∂L/∂(pre-activation of the input projection) into tape.dG[t]
    dW_ih = dGᵀ x, dx = dG W_ih                    engine: one matrix product per gate
    cell.recurrent_grads(tape, dG, db)             cell: weight gradients, likewise

State buffers are (T + 1, B, size) with slot 0 the initial state, so slot t is h_{t-1} for
step t and slots 1..T are the outputs. When the batch is padded, buffers that are read past a
sequence's end are zero-filled so outputs and gradients there stay zero.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .. import kernels


@dataclass(frozen=True)
class Masks:
    """The constants recurrent dropout and zoneout put into one layer-direction's loop.

    ``drop`` (B, P): Gal & Ghahramani's (2016) variational dropout, one mask per sequence,
    entries 0 or 1/(1 − p); h_{t−1} enters the recurrent product as h_{t−1} ⊙ drop (and only
    there: a GRU's interpolation z h_{t−1} sees the state itself).

    ``zone``, one entry per state (None: no zoneout on it): Krueger et al.'s (2017) zoneout,

        s_t = z_t ⊙ s_{t−1} + (1 − z_t) ⊙ s̃_t,     s̃_t the cell's own new state,

    the cell computing `s̃_t` from the zoned `s_{t−1}`. In training z_t is (T, B, size), 1 where a
    unit keeps its value; in evaluation (1, 1, size) filled with the probability z.
    """

    drop: Tensor | None = None
    zone: tuple[Tensor | None, ...] = ()

    @property
    def zoned(self) -> bool:
        return any(z is not None for z in self.zone)

    def steps(self, k: int, batch_sizes: list[int] | None, T: int) -> list[Tensor]:
        """Per-step views of state k's zoneout mask, rows [:n_t] (broadcast ones repeat)."""
        z = self.zone[k]
        views = [z[0]] * T if z.shape[0] == 1 else list(z.unbind(0))
        if batch_sizes is None or z.shape[1] == 1:
            return views
        return [v.narrow(0, 0, n) for v, n in zip(views, batch_sizes)]

    def kernel_args(self, tape: Tape) -> list[Tensor]:
        """[drop, zone_h, cand_h, zone_c, cand_c] for the kernels (EMPTY where off)."""
        args = [kernel_arg(self.drop)]
        for k in range(2):
            on = k < len(self.zone) and self.zone[k] is not None
            args += [self.zone[k].contiguous(), tape.cands[k]] if on else [EMPTY, EMPTY]
        return args


NO_MASKS = Masks()


@dataclass
class Tape:
    """Buffers of one forward pass, kept for the backward pass."""

    xw: Tensor  # (G, T, B, H) input projection; cells overwrite it with gate activations
    states: tuple[Tensor, ...]  # each (T + 1, B, size)
    params: dict[str, Tensor | None]
    batch_sizes: list[int] | None = None  # rows running at each step; None: all, all along
    compiled: bool = False  # the loops ran in the compiled kernel (rnnlab.kernels)
    fused: dict | None = None  # gradients the compiled backward summed in its loop
    extra: dict = field(default_factory=dict)  # per-step views and buffers of the forward pass
    back: dict | None = None  # extra + what only the backward pass needs; dropped after it
    dG: Tensor | None = None  # (G, T, B, H) gradient w.r.t. xw, filled by step_back
    #: with zoneout, per state: (T, B, size) the cell's own new states s̃_t (else None)
    cands: tuple[Tensor | None, ...] = ()

    def candidate(self, k: int) -> Tensor:
        """s̃_t of state k for t = 1..T: the cell's own new state (before zoneout mixes it)."""
        if k < len(self.cands) and self.cands[k] is not None:
            return self.cands[k]
        return self.states[k][1:]

    @property
    def padded(self) -> bool:
        """Some sequence ends before T: what is read past its end must be zero."""
        return self.batch_sizes is not None

    def steps(self, buf: Tensor, dim: int = 0) -> list[Tensor]:
        """Per-step views of a buffer whose time axis is ``dim`` and batch axis is −2, rows
        [:n_t]: built once, then indexed in the loop (a view costs as much as a small op)."""
        views = buf.unbind(dim)
        if self.batch_sizes is None:
            return list(views)
        return [v.narrow(-2, 0, n) for v, n in zip(views, self.batch_sizes)]


class CellMath:
    """Base class: subclasses fill in the math. See the module docstring for the contract."""

    #: number of gate blocks stacked in W_ih / W_hh (rows = n_gates · hidden_size)
    n_gates: int = 1
    #: parameter names of one layer-direction, in torch's registration order, then extras
    param_names: tuple[str, ...] = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    #: names of the state tensors; the first is the output h
    state_names: tuple[str, ...] = ("h",)
    #: recurrent dropout and zoneout (`Masks`) of this layer-direction
    masks: Masks = NO_MASKS

    def dropped(self, h: Tensor) -> Tensor:
        """h as the recurrent product sees it: h ⊙ drop (rows [:n] of the mask for n rows;
        h (…, B, P) of any leading shape), or h itself without recurrent dropout."""
        d = self.masks.drop
        return h if d is None else h * d[: h.shape[-2]]

    def drop_views(self, tape: Tape) -> dict:
        """For the Python steps: the dropout mask's rows [:n_t] per step ("drop") and a scratch
        for h_{t−1} ⊙ drop ("hd"); nothing without recurrent dropout."""
        d = self.masks.drop
        if d is None:
            return {}
        T = tape.xw.shape[1]
        rows = [d] * T if tape.batch_sizes is None else [d[:n] for n in tape.batch_sizes]
        return {"drop": rows, "hd": torch.empty_like(tape.states[0][0])}

    @staticmethod
    def product_input(ex: dict, t: int) -> Tensor:
        """h_{t−1} as step t's recurrent product sees it: h_{t−1} ⊙ drop (in the scratch of
        `drop_views`), or h_{t−1} itself."""
        h_prev = ex["h_prev"][t]
        if "drop" not in ex:
            return h_prev
        return torch.mul(h_prev, ex["drop"][t], out=ex["hd"][: h_prev.shape[0]])

    def with_masks(self, masks: Masks) -> CellMath:
        """This cell with the masks of one layer-direction (a shallow copy)."""
        if masks is NO_MASKS:
            return self
        cell = copy.copy(self)
        cell.masks = masks
        return cell

    def input_bias(self, params: dict[str, Tensor | None]) -> Tensor | None:
        """The bias added to the hoisted input projection (biases that can be folded in)."""
        b_ih, b_hh = params["bias_ih"], params["bias_hh"]
        if b_ih is None:
            return None
        return b_ih + b_hh

    def allocate(self, xw: Tensor, inits: tuple[Tensor, ...], params: dict,
                 batch_sizes: list[int] | None) -> Tape:
        """The tape's whole-sequence buffers (no per-step views): what the kernel fills."""
        raise NotImplementedError

    def begin(self, xw: Tensor, inits: tuple[Tensor, ...], params: dict,
              batch_sizes: list[int] | None) -> Tape:
        """`allocate`, plus the per-step views the Python steps index."""
        raise NotImplementedError

    def step(self, tape: Tape, t: int) -> None:
        raise NotImplementedError

    def begin_backward(self, tape: Tape) -> None:
        raise NotImplementedError

    def step_back(self, tape: Tape, t: int, carry: list[Tensor]) -> None:
        raise NotImplementedError

    def autograd_step(self, a: Tensor, states: tuple[Tensor, ...],
                      params: dict) -> tuple[Tensor, ...]:
        """The same step as out-of-place torch ops, for autograd to trace: ``a`` (B, G·H) is
        this step's input projection (x_t W_ihᵀ + `input_bias`), ``states`` the previous states.
        The engine's differentiable path (double backward, torch.func) loops over it."""
        raise NotImplementedError

    # The compiled twins of the loops (rnnlab/kernels/csrc): same buffers, same math.
    # kernel_forward(tape, threads) runs every step of a tape from `allocate`;
    # kernel_backward(tape, d_out, d_finals, threads) fills tape.dG (and what
    # recurrent_grads reads from tape.back) and returns ∂L/∂(initial states).
    kernel_forward = None
    kernel_backward = None
    #: kernel_backward(..., fuse=(x, want_dx)) can sum the weight gradients in its loop
    #: (`fused_buffers`); the engine asks for that when the layer is small (`FUSE_LIMIT`)
    fusable = False

    def fused_grads(self, tape: Tape) -> dict:
        """Name -> gradient, from what a fused backward kernel summed (tape.fused)."""
        return dict(tape.fused)

    def input_grad(self, tape: Tape) -> Tensor:
        """∂L/∂(x W_ihᵀ), gate-major (G, T, B, H), for ∂L/∂W_ih and ∂L/∂x: δa itself, unless
        the cell transforms the product before its steps (a layer norm)."""
        return tape.dG

    def recurrent_grads(self, tape: Tape, db: Tensor) -> dict:
        """Gradients of every parameter except weight_ih / bias_ih (the engine's); ``db`` is
        ∂L/∂b_ih, which equals ∂L/∂b_hh wherever b_hh was folded into the input bias."""
        raise NotImplementedError


def state_buffer(init: Tensor, T: int, padded: bool) -> Tensor:
    """(T + 1, B, size) buffer with slot 0 = init; zero-filled when the batch is padded."""
    B, size = init.shape
    buf = kernels.buffer((T + 1, B, size), init, zero=padded)
    buf[0] = init
    return buf


def gate_rows(W: Tensor, G: int) -> Tensor:
    """W (G·H, K) as (G, H, K): per-gate blocks, for δh = Σ_g δa_g W_g as one batched product."""
    return W.view(G, -1, W.shape[1])


def gate_major(W: Tensor, G: int) -> Tensor:
    """W (G·H, K) as (G, K, H): the right factor of a batched product h W_gᵀ per gate."""
    return gate_rows(W, G).transpose(1, 2)


def at_b(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """aᵀ b for tall a (N, m), b (N, k): the weight-gradient product Σ_rows a_rowᵀ b_row
    (`kernels.mm`); for a (G, N, m), the G products a[g]ᵀ b in one call, which packs b once
    for all of them.

    BLAS is slow on aᵀ b when b is very narrow (k of a few input features); bᵀ a is then
    several times faster, so the narrow side goes first.
    """
    if b.shape[1] < 32 <= a.shape[-1]:
        product = (b.t() @ a).transpose(-2, -1)
        return product if out is None else out.copy_(product)
    return kernels.mm(a.transpose(-2, -1), b, out=out)


def weight_grad(dG: Tensor, inp: Tensor) -> Tensor:
    """∂L/∂W for gate-major δ (G, T, B, H) and the input rows the weight saw (T, B, K):
    Σ_{t,b} δ_{g,t,b}ᵀ inp_{t,b}, returned as (G·H, K), the layout of torch's weights. (Any
    row shape will do: δ (G, N, H) with rows (N, K) too.) Every gate in one product."""
    G, H = dG.shape[0], dG.shape[-1]
    rows = flat(inp)
    out = kernels.buffer((G * H, rows.shape[1]), dG)
    at_b(dG.view(G, -1, H), rows, out=out.view(G, H, -1))
    return out


def grad_buffer(like: Tensor, padded: bool) -> Tensor:
    """Gradient buffer shaped like ``like``; rows past a sequence's end must read as zero."""
    return kernels.buffer(like.shape, like, zero=padded)


def flat(x: Tensor) -> Tensor:
    """(T, B, k) -> (T·B, k), the shape of the after-the-loop weight-gradient products."""
    return x.reshape(-1, x.shape[-1])


#: an absent optional tensor, for the kernels' arguments
EMPTY = torch.empty(0)


def kernel_arg(t: Tensor | None) -> Tensor:
    """An optional parameter as a kernel argument: contiguous, or EMPTY when absent."""
    return EMPTY if t is None else t.contiguous()


def kernel_sizes(tape: Tape) -> Tensor:
    """The rows running at each step as an int64 tensor (EMPTY for a full batch)."""
    if tape.batch_sizes is None:
        return EMPTY
    if "batch_sizes_tensor" not in tape.extra:
        tape.extra["batch_sizes_tensor"] = torch.tensor(tape.batch_sizes, dtype=torch.int64)
    return tape.extra["batch_sizes_tensor"]


def fused_buffers(tape: Tape, fuse, weight_hh: Tensor | None) -> dict | None:
    """For a backward kernel asked to sum the weight gradients in its loop (``fuse`` =
    (x, want_dx), else None): zero-filled ∂L/∂W_ih, ∂L/∂b, ∂L/∂W_hh and the ∂L/∂x buffer,
    also kept as tape.fused, the gradients the engine then returns as they are."""
    if fuse is None:
        tape.fused = None
        return None
    x, want_dx = fuse
    W_ih = tape.params["weight_ih"]
    db = W_ih.new_zeros(W_ih.shape[0])
    tape.fused = {
        "weight_ih": torch.zeros_like(W_ih), "bias_ih": db,
        "weight_hh": EMPTY if weight_hh is None else torch.zeros_like(weight_hh),
        "input": kernels.buffer(x.shape, x, zero=tape.padded) if want_dx else EMPTY,
    }
    return tape.fused
