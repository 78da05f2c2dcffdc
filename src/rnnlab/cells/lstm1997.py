"""The LSTM of Hochreiter & Schmidhuber (1997): memory cell blocks, no forget gate (or, as an
option, Gers, Schmidhuber & Cummins's 2000 forget gate).

K blocks of S cells (C = K·S cells). Each block j has one input gate and one output gate that
its S cells share. With y(t-1) the vector of everything the units see from the previous step —
the outputs of all cells and (``gate_recurrence``) the activations of all gates — and f the
logistic function:

    net_in_j(t)  = W_in,j · [x(t), y(t-1)] + b_in_j         y^in_j(t)  = f(net_in_j(t))
    net_out_j(t) = W_out,j · [x(t), y(t-1)] + b_out_j       y^out_j(t) = f(net_out_j(t))
    net_c(t)     = W_c · [x(t), y(t-1)] + b_c               (cell c of block j)
    s_c(t)       = s_c(t-1) + y^in_j(t) g(net_c(t))         the constant error carousel, weight 1.0
    y^c(t)       = y^out_j(t) h(s_c(t))

with s_c(0) = 0 unless an initial state is given. With ``forget_gate`` (Gers et al. 2000) each
block has a third gate that scales the carousel's memory:

    net_φ_j(t)   = W_φ,j · [x(t), y(t-1)] + b_φ_j           y^φ_j(t)   = f(net_φ_j(t))
    s_c(t)       = y^φ_j(t) s_c(t-1) + y^in_j(t) g(net_c(t))
 The paper's squashers are g(x) = 4σ(x) − 2 in
[−2, 2] and h(x) = 2σ(x) − 1 in [−1, 1] (App. A.1; the legend of its Table 10 swaps them). Task
2a uses g logistic, h identity and no output gate (then y^c = h(s_c)).

Backward, with δy^c, δs_c the errors at step t (from the output and from step t+1):

    δy^out_j = Σ_{c∈j} δy^c h(s_c)                     undoes y^c = y^out h(s_c)
    δs_c    += δy^c y^out_j h'(s_c)
    δnet_c   = δs_c y^in_j g'(net_c)                   undoes s_c += y^in g(net_c)
    δy^in_j  = Σ_{c∈j} δs_c g(net_c)
    δnet_in  = δy^in f'(net_in),  δnet_out = δy^out f'(net_out)      undo the gate squashing
    δs_c(t-1) = δs_c(t)                                the carousel carries error unchanged
    (forget gate: δy^φ_j = Σ_{c∈j} δs_c s_c(t-1), then δs_c(t-1) = δs_c(t) y^φ_j)
    δy(t-1)  = W_recᵀ δnet                             only if not ``truncated``

``truncated=True`` is the paper's learning rule (§4, App. A.1): error reaching net_in, net_out
or net_c is not propagated back in time; only the carousel carries error backwards.

Layout for the engine: the unit rows are one block, [in (K), out (K, if any), forget (K, if any),
cells (C)], and the recurrent state is y = [y^c (C), the gates' activations in that order], so
W_hh has one column per source unit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import kernels
from .base import (
    EMPTY,
    CellMath,
    Tape,
    fused_buffers,
    grad_buffer,
    kernel_arg,
    kernel_sizes,
    state_buffer,
    weight_grad,
)


def _scaled_logistic(scale: float, shift: float):
    """x ↦ scale·σ(x) − shift, and its derivative read off the output y: scale·s(1 − s)."""

    def fn(a: Tensor) -> Tensor:  # out of place: autograd_step differentiates it as well
        return torch.sigmoid(a) * scale - shift

    def derivative(y: Tensor) -> Tensor:
        s = (y + shift) / scale
        return s * (1 - s) * scale

    return fn, derivative


SQUASHERS = {
    "g2": _scaled_logistic(4.0, 2.0),  # g(x) = 4σ(x) − 2 ∈ [−2, 2], the paper's cell input
    "h1": _scaled_logistic(2.0, 1.0),  # h(x) = 2σ(x) − 1 ∈ [−1, 1], the paper's cell output
    "logistic": _scaled_logistic(1.0, 0.0),
    "tanh": (torch.tanh, lambda y: 1 - y * y),
    "identity": (lambda a: a.clone(), torch.ones_like),
}


class LSTM1997Math(CellMath):
    n_gates = 1  # the unit rows [in, out, cells] form one block of unequal parts
    param_names = ("weight_ih", "weight_hh", "bias_ih", "bias_in", "bias_out", "bias_forget",
                   "bias_cell")
    state_names = ("y", "s")

    def __init__(self, num_blocks: int, block_size: int, *, output_gate: bool = True,
                 gate_recurrence: bool = True, g: str = "g2", h: str = "h1",
                 truncated: bool = True, forget_gate: bool = False):
        for name, value in (("g", g), ("h", h)):
            if value not in SQUASHERS:
                raise ValueError(f"unknown squasher {name}={value!r}; expected one of "
                                 f"{tuple(SQUASHERS)}")
        self.K, self.S, self.C = num_blocks, block_size, num_blocks * block_size
        self.output_gate = output_gate
        self.forget_gate = forget_gate
        if forget_gate:  # not in the compiled kernels: the engine's loops in torch operations
            self.kernel_forward = None
            self.fusable = False
        self.gate_recurrence = gate_recurrence
        self.g_name, self.h_name = g, h
        self.g, self.g_prime = SQUASHERS[g]
        self.h, self.h_prime = SQUASHERS[h]
        self.truncated = truncated

    @property
    def gates(self) -> int:
        """Gate units per block: input gate, and output and forget gates if any."""
        return 1 + self.output_gate + self.forget_gate

    def row_slices(self) -> dict[str, slice]:
        """The rows of each unit type: "in", "out", "forget" (those there are), "cell"."""
        K, rows, at = self.K, {"in": slice(0, self.K)}, self.K
        for kind, present in (("out", self.output_gate), ("forget", self.forget_gate)):
            if present:
                rows[kind], at = slice(at, at + K), at + K
        rows["cell"] = slice(at, at + self.C)
        return rows

    @property
    def rows(self) -> int:
        return self.gates * self.K + self.C

    @property
    def state_size(self) -> int:
        """Units in y: all cells, then (gate_recurrence) all gates."""
        return self.C + (self.gates * self.K if self.gate_recurrence else 0)

    def input_bias(self, params):
        kinds = self.row_slices()
        parts = [params.get("bias_" + kind) for kind in kinds]
        if all(p is None for p in parts):
            return None
        sizes = [r.stop - r.start for r in kinds.values()]
        ref = next(p for p in parts if p is not None)
        return torch.cat([p if p is not None else ref.new_zeros(n)
                          for p, n in zip(parts, sizes)])

    def allocate(self, xw, inits, params, batch_sizes):
        y0, s0 = inits
        _, T, B, _ = xw.shape
        padded = batch_sizes is not None
        Ys, Ss = state_buffer(y0, T, padded), state_buffer(s0, T, padded)
        tape = Tape(xw=xw, states=(Ys, Ss), params=params, batch_sizes=batch_sizes)
        tape.extra.update(g_buf=kernels.buffer((T, B, self.C), xw),  # g(net_c)
                          h_buf=kernels.buffer((T, B, self.C), xw),  # h(s_c)
                          gK=self.gates * self.K)
        return tape

    def begin(self, xw, inits, params, batch_sizes):
        tape = self.allocate(xw, inits, params, batch_sizes)
        (Ys, Ss), ex, st = tape.states, tape.extra, tape.steps
        W = params["weight_hh"]
        ex.update(
            a=st(xw[0]), y_prev=st(Ys[:-1]), y=st(Ys[1:]), s_prev=st(Ss[:-1]), s=st(Ss[1:]),
            g=st(ex["g_buf"]), h=st(ex["h_buf"]), W_hh_t=None if W is None else W.t(),
        )
        return tape

    def autograd_step(self, a, states, params):
        y, s = states
        K, S, gK = self.K, self.S, self.gates * self.K
        if params["weight_hh"] is not None:  # truncation: net inputs carry no error back
            a = a + (y.detach() if self.truncated else y) @ params["weight_hh"].t()
        gates = torch.sigmoid(a[:, :gK])
        y_in = gates[:, :K].repeat_interleave(S, dim=-1)
        if self.forget_gate:  # the carousel, its memory scaled by y^φ
            s = gates[:, gK - K : gK].repeat_interleave(S, dim=-1) * s
        s_new = s + y_in * self.g(a[:, gK:])  # the carousel, weight 1.0
        y_c = self.h(s_new)
        if self.output_gate:
            y_c = gates[:, K : 2 * K].repeat_interleave(S, dim=-1) * y_c
        return (torch.cat((y_c, gates), -1) if self.gate_recurrence else y_c), s_new

    def kernel_forward(self, tape, threads):
        ex = tape.extra
        torch.ops.rnnlab.lstm1997_forward(
            tape.xw, *tape.states, ex["g_buf"], ex["h_buf"],
            kernel_arg(tape.params["weight_hh"]), kernel_sizes(tape), *self._kernel_options(),
            threads)

    def kernel_backward(self, tape, d_out, d_finals, threads, fuse=None):
        ex, p = tape.extra, tape.params
        carry = [torch.empty_like(d) for d in d_finals]
        grads = fused_buffers(tape, fuse, p["weight_hh"])
        if grads is None:  # δa for the products after the loop
            tape.dG = grad_buffer(tape.xw, tape.padded)
            extra = [EMPTY] * 6
        else:  # the weight gradients themselves, summed in the loop
            tape.dG = EMPTY
            extra = [fuse[0], p["weight_ih"].contiguous(), grads["input"], grads["weight_ih"],
                     grads["bias_ih"], grads["weight_hh"]]
        torch.ops.rnnlab.lstm1997_backward(
            tape.xw, *tape.states, ex["g_buf"], ex["h_buf"], kernel_arg(p["weight_hh"]),
            kernel_sizes(tape), *self._kernel_options(), self.truncated, d_out, *d_finals,
            tape.dG, *carry, *extra, threads)
        return carry

    fusable = True

    def fused_grads(self, tape):
        grads = dict(tape.fused)
        db = grads.pop("bias_ih")
        grads.update({"bias_" + kind: db[rows] for kind, rows in self.row_slices().items()})
        return grads

    def _kernel_options(self):
        names = list(SQUASHERS)
        return (self.K, self.S, self.output_gate, self.gate_recurrence,
                names.index(self.g_name), names.index(self.h_name))

    def _blocks(self, v: Tensor) -> Tensor:
        """(n, C) -> (n, K, S): the cells of each block side by side."""
        return v.view(v.shape[0], self.K, self.S)

    def step(self, tape, t):
        ex = tape.extra
        K, C, gK = self.K, self.C, ex["gK"]
        a, y_prev, y = ex["a"][t], ex["y_prev"][t], ex["y"][t]
        if ex["W_hh_t"] is not None:
            a.addmm_(y_prev, ex["W_hh_t"])  # net = W_x x(t) + W_rec y(t-1) + b
        gates = a[:, :gK].sigmoid_()  # y^in, y^out
        y_in = gates[:, :K].unsqueeze(2)
        g = ex["g"][t]
        g.copy_(self.g(a[:, gK:]))
        kept = ex["s_prev"][t].view_as(self._blocks(g))
        if self.forget_gate:  # y^φ s_c(t-1)
            kept = kept * gates[:, gK - K :].unsqueeze(2)
        s = torch.addcmul(kept, y_in, self._blocks(g),
                          out=ex["s"][t].view_as(self._blocks(g)))  # s_c += y^in g(net_c)
        h = ex["h"][t]
        h.copy_(self.h(s.view_as(g)))
        y_c = y[:, :C]
        if self.output_gate:
            torch.mul(gates[:, K : 2 * K].unsqueeze(2), self._blocks(h), out=self._blocks(y_c))
        else:
            y_c.copy_(h)
        if self.gate_recurrence:
            y[:, C:].copy_(gates)

    def begin_backward(self, tape):
        bk = tape.back = dict(tape.extra)
        st = tape.steps
        gK = bk["gK"]
        act = tape.xw[0]  # (T, B, rows): gate activations, then net_c
        gates = act[..., :gK]
        tape.dG = dG = grad_buffer(tape.xw, tape.padded)
        bk.update(
            dgate=st(gates * (1 - gates)),  # f'(net) from the gate outputs
            dg=st(self.g_prime(bk["g_buf"])), dh=st(self.h_prime(bk["h_buf"])),
            gates=st(gates), dA=st(dG[0]),
        )

    def step_back(self, tape, t, carry):
        ex = tape.back
        K, C, gK = self.K, self.C, ex["gK"]
        dy, ds = carry
        dA = ex["dA"][t]
        gates, h, g = ex["gates"][t], ex["h"][t], ex["g"][t]
        dyc = self._blocks(dy[:, :C])
        dgate = dA[:, :gK]
        if self.output_gate:
            # undoes y^c = y^out h(s_c): δy^out = Σ_cells δy^c h(s_c), δs_c += δy^c y^out h'(s_c)
            torch.sum(dyc * self._blocks(h), 2, out=dgate[:, K : 2 * K])
            ds.view_as(dyc).addcmul_(dyc * gates[:, K : 2 * K].unsqueeze(2),
                                     self._blocks(ex["dh"][t]))
        else:  # undoes y^c = h(s_c)
            ds.view_as(dyc).addcmul_(dyc, self._blocks(ex["dh"][t]))
        ds_b = ds.view_as(dyc)
        # undoes s_c += y^in g(net_c): δnet_c = δs_c y^in g'(net_c), δy^in = Σ_cells δs_c g
        y_in = gates[:, :K].unsqueeze(2)
        torch.mul(ds_b * y_in, self._blocks(ex["dg"][t]), out=self._blocks(dA[:, gK:]))
        torch.sum(ds_b * self._blocks(g), 2, out=dgate[:, :K])
        if self.forget_gate:  # undoes s_c = y^φ s_c(t-1) + …: δy^φ = Σ_cells δs_c s_c(t-1)
            torch.sum(ds_b * ex["s_prev"][t].view_as(dyc), 2, out=dgate[:, gK - K :])
        if self.gate_recurrence:
            dgate.add_(dy[:, C:])  # error that reached the gates as sources of step t+1
        if self.forget_gate:  # δs_c(t-1) = δs_c(t) y^φ (before dgate becomes δnet below)
            ds_b.mul_(gates[:, gK - K :].unsqueeze(2))
        dgate.mul_(ex["dgate"][t])  # undoes the gates' squashing
        # δs_c(t-1) = δs_c(t) (y^φ): nothing more to do
        if self.truncated or ex["W_hh_t"] is None:
            dy.zero_()  # the 1997 truncation: no error flows back through net_*
        else:
            torch.mm(dA, tape.params["weight_hh"], out=dy)  # undoes net += W_rec y(t-1)

    def recurrent_grads(self, tape, db):
        grads = {"bias_" + kind: db[rows] for kind, rows in self.row_slices().items()}
        if tape.params["weight_hh"] is not None:
            grads["weight_hh"] = weight_grad(tape.dG, tape.states[0][:-1])
        return grads
