"""LSTM cell with forget gate (torch's gate order i, f, g, o), optional peepholes,
projection and the 1997 truncated gradient.

Forward, one step (σ logistic, ⊙ elementwise; p_i, p_f, p_o peephole weights, 0 unless
``peephole``; W_hr the projection, identity unless ``proj_size``):

    [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    i_t = σ(a_i + p_i ⊙ c_{t-1})           input gate
    f_t = σ(a_f + p_f ⊙ c_{t-1})           forget gate
    g_t = tanh(a_g)                        candidate C̃
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t        cell state
    o_t = σ(a_o + p_o ⊙ c_t)               output gate (peeps at the new state)
    m_t = o_t ⊙ tanh(c_t)
    h_t = W_hr m_t                         (h_t = m_t without projection)

Backward, δh_t = ∂L/∂h_t and δc_t = ∂L/∂c_t as carried in from step t+1:

    δm_t   = W_hrᵀ δh_t                                 undoes h_t = W_hr m_t
    δa_o   = δm_t ⊙ tanh(c_t) ⊙ o_t(1 − o_t)            undoes m_t = o_t tanh(c_t), o_t = σ(.)
    δc_t  += δm_t ⊙ o_t (1 − tanh²c_t) + p_o ⊙ δa_o     ... through tanh(c_t) and the o peephole
    δa_i   = δc_t ⊙ g_t ⊙ i_t(1 − i_t)                  undoes c_t += i_t g_t
    δa_g   = δc_t ⊙ i_t ⊙ (1 − g_t²)
    δa_f   = δc_t ⊙ c_{t-1} ⊙ f_t(1 − f_t)              undoes c_t = f_t c_{t-1}
    δc_{t-1} = δc_t ⊙ f_t + p_i ⊙ δa_i + p_f ⊙ δa_f     the constant error carousel (f_t = 1)
    δh_{t-1} = W_hhᵀ δa                                 undoes the recurrent product

Recurrent dropout (`rnnlab.cells.base.Masks`): h_{t-1} ⊙ drop in place of h_{t-1} in the
recurrent product, so δh_{t-1} = (W_hhᵀ δa) ⊙ drop and ∂L/∂W_hh reads h_{t-1} ⊙ drop. With
zoneout (the engine's, around this step) o peeps at the cell's own c̃_t, which ∂L/∂p_o reads.

``truncated=True`` is Hochreiter & Schmidhuber's (1997) rule: error that reaches a gate's or
the candidate's net input is not sent back in time, so δh_{t-1} = 0 from this step and the
peephole terms are dropped; error flows back only along c (the carousel). The forward pass is
unchanged; the weight gradients use the same δa.
"""

from __future__ import annotations

import torch

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


class LSTMMath(CellMath):
    n_gates = 4
    param_names = (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_peephole",
    )
    state_names = ("h", "c")

    def __init__(self, *, peephole: bool = False, truncated: bool = False):
        self.peephole = peephole
        self.truncated = truncated

    def allocate(self, xw, inits, params, batch_sizes):
        h0, c0 = inits
        _, T, B, H = xw.shape
        padded = batch_sizes is not None
        Hs, Cs = state_buffer(h0, T, padded), state_buffer(c0, T, padded)
        tape = Tape(xw=xw, states=(Hs, Cs), params=params, batch_sizes=batch_sizes)
        tape.extra["tanh_c_buf"] = kernels.buffer((T, B, H), xw)
        if params["weight_hr"] is not None:
            tape.extra["m_buf"] = grad_buffer(tape.extra["tanh_c_buf"], padded)  # for ∂L/∂W_hr
        return tape

    def begin(self, xw, inits, params, batch_sizes):
        tape = self.allocate(xw, inits, params, batch_sizes)
        (Hs, Cs), H = tape.states, xw.shape[3]
        ex, st = tape.extra, tape.steps
        ex.update(
            a=st(xw, 1), i_f=st(xw[:2], 1), i=st(xw[0]), f=st(xw[1]), g=st(xw[2]), o=st(xw[3]),
            h_prev=st(Hs[:-1]), h=st(Hs[1:]), c_prev=st(Cs[:-1]), c=st(Cs[1:]),
            tanh_c=st(ex["tanh_c_buf"]), W_hh_t=params["weight_hh"].t(),
            hw=xw.new_empty(xw.shape[2], 4 * H),  # scratch, token-major: one product's layout
        )
        if "m_buf" in ex:
            ex.update(m=st(ex["m_buf"]), W_hr_t=params["weight_hr"].t())
        ex.update(self.drop_views(tape))  # h_{t−1} ⊙ drop, the recurrent product's input
        if self.peephole:
            p = params["weight_peephole"].view(3, H)
            ex.update(p_if=p[:2].unsqueeze(1), p_i=p[0], p_f=p[1], p_o=p[2])
        return tape

    def recurrent_product(self, ex: dict, t: int) -> torch.Tensor:
        """W_hh (h_{t−1} ⊙ drop), token-major (n, G·H): one product, into the scratch."""
        h_in = self.product_input(ex, t)
        return torch.mm(h_in, ex["W_hh_t"], out=ex["hw"][: h_in.shape[0]])

    @staticmethod
    def output_grad(ex: dict, params: dict, dh: torch.Tensor, t: int) -> torch.Tensor:
        """δm_t from δh_t: undoes h_t = W_hr m_t (keeping δh_t for ∂L/∂W_hr), or δh_t itself."""
        if "m" not in ex:
            return dh
        ex["dh"][t].copy_(dh)
        return dh @ params["weight_hr"]

    def add_recurrent(self, ex: dict, t: int) -> None:
        """a_t += W_hh h_{t-1}: one product, into the four gate blocks."""
        hw = self.recurrent_product(ex, t)
        ex["a"][t].add_(hw.view(hw.shape[0], 4, -1).transpose(0, 1))

    def squash_cell(self, ex: dict, t: int) -> torch.Tensor:
        """tanh(c_t), kept in tanh_c (what m_t = o_t ⊙ tanh(c_t) reads)."""
        return torch.tanh(ex["c"][t], out=ex["tanh_c"][t])

    def step(self, tape, t):
        ex = tape.extra
        c_prev, c = ex["c_prev"][t], ex["c"][t]
        i, f, g, o, i_f = ex["i"][t], ex["f"][t], ex["g"][t], ex["o"][t], ex["i_f"][t]
        self.add_recurrent(ex, t)
        if self.peephole:
            i_f.addcmul_(c_prev, ex["p_if"])
        i_f.sigmoid_()
        g.tanh_()
        torch.mul(f, c_prev, out=c)
        c.addcmul_(i, g)  # c_t = f c_{t-1} + i g
        if self.peephole:
            o.addcmul_(c, ex["p_o"])
        o.sigmoid_()
        tc = self.squash_cell(ex, t)
        if "m" in ex:
            torch.mm(torch.mul(o, tc, out=ex["m"][t]), ex["W_hr_t"], out=ex["h"][t])
        else:
            torch.mul(o, tc, out=ex["h"][t])  # h_t = o tanh(c_t)

    def begin_backward(self, tape):
        bk = tape.back = dict(tape.extra)  # forward views + what only backward needs
        ex, st = tape.extra, tape.steps
        i, f, g, o = tape.xw  # activations, (T, B, H) each
        tc, c_prev = ex["tanh_c_buf"], tape.states[1][:-1]
        # pointwise derivative factors for all steps at once; the loop only multiplies by δ.
        # σ' = σ − σ² and tanh' = 1 − tanh², each one fused op
        dc_daifg = torch.empty((3,) + i.shape, dtype=i.dtype, device=i.device)
        torch.mul(torch.addcmul(i, i, i, value=-1), g, out=dc_daifg[0])  # ∂c/∂a_i
        torch.mul(torch.addcmul(f, f, f, value=-1), c_prev, out=dc_daifg[1])  # ∂c/∂a_f
        torch.mul(torch.addcmul(torch.ones_like(g), g, g, value=-1), i, out=dc_daifg[2])
        dm_dc = torch.addcmul(torch.ones_like(tc), tc, tc, value=-1).mul_(o)  # ∂m/∂c
        dm_dao = torch.addcmul(o, o, o, value=-1).mul_(tc)  # ∂m/∂a_o
        tape.dG = dG = grad_buffer(tape.xw, tape.padded)
        bk.update(
            dm_dc=st(dm_dc), dm_dao=st(dm_dao), dc_daifg=st(dc_daifg, 1),
            dA=st(dG, 1), dA_ifg=st(dG[:3], 1), dA_i=st(dG[0]), dA_f=st(dG[1]), dA_o=st(dG[3]),
        )
        if "m" in ex:
            bk["dh_buf"] = dh = grad_buffer(tape.states[0][1:], tape.padded)
            bk["dh"] = st(dh)  # δh_t, read by ∂L/∂W_hr

    def step_back(self, tape, t, carry):
        ex = tape.back
        dh, dc = carry
        dm = self.output_grad(ex, tape.params, dh, t)  # undoes h_t = W_hr m_t
        dA_o = ex["dA_o"][t]
        torch.mul(dm, ex["dm_dao"][t], out=dA_o)  # undoes m_t = o_t tanh c_t (o side)
        dc.addcmul_(dm, ex["dm_dc"][t])  # ... and the tanh(c_t) side
        peep = self.peephole and not self.truncated
        if peep:
            dc.addcmul_(dA_o, ex["p_o"])  # undoes o's peephole on c_t
        torch.mul(ex["dc_daifg"][t], dc, out=ex["dA_ifg"][t])  # undoes c_t = f c + i g
        dc.mul_(ex["f"][t])  # the carousel: δc_{t-1} = f_t δc_t
        if peep:  # undoes the i and f peepholes on c_{t-1}
            dc.addcmul_(ex["dA_i"][t], ex["p_i"])
            dc.addcmul_(ex["dA_f"][t], ex["p_f"])
        if self.truncated:
            dh.zero_()  # the 1997 truncation: no error into h_{t-1} through the gates
        else:  # undoes a += W_hh h_{t-1}: δh_{t-1} = W_hhᵀ δa, one product
            n = dh.shape[0]
            da = ex["hw"][:n]
            da.view(n, 4, -1).copy_(ex["dA"][t].transpose(0, 1))
            torch.mm(da, tape.params["weight_hh"], out=dh)
            if "drop" in ex:
                dh.mul_(ex["drop"][t])

    def autograd_step(self, a, states, params):
        h, c = states
        # the 1997 truncation: what the gates see of the past carries no error back
        h_in, c_in = (h.detach(), c.detach()) if self.truncated else (h, c)
        a_i, a_f, a_g, a_o = (a + self.dropped(h_in) @ params["weight_hh"].t()).chunk(4, dim=-1)
        if self.peephole:
            p_i, p_f, p_o = params["weight_peephole"].chunk(3)
            a_i, a_f = a_i + p_i * c_in, a_f + p_f * c_in
        c_new = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
        if self.peephole:
            a_o = a_o + p_o * (c_new.detach() if self.truncated else c_new)
        m = torch.sigmoid(a_o) * torch.tanh(c_new)
        W_hr = params["weight_hr"]
        return (m if W_hr is None else m @ W_hr.t()), c_new

    def kernel_forward(self, tape, threads):
        ex, p = tape.extra, tape.params
        torch.ops.rnnlab.lstm_forward(
            tape.xw, *tape.states[:2], ex["tanh_c_buf"], ex.get("m_buf", EMPTY),
            *self._weights(p), kernel_sizes(tape), self.masks.kernel_args(tape),
            self._norm_args(tape), *self._variant_args(tape), threads)

    def kernel_backward(self, tape, d_out, d_finals, threads, fuse=None):
        ex, p = tape.extra, tape.params
        carry = [torch.empty_like(d) for d in d_finals]
        variant, fgr = self._variant_args(tape)
        if fgr:  # FGR's third state, q: its final gradient in, its initial one out
            fgr += [d_finals[2].contiguous(), carry[2]]
        grads = fused_buffers(tape, fuse, p["weight_hh"])
        if grads is None:  # δa for the products after the loop
            tape.dG = grad_buffer(tape.xw, tape.padded)
            dh_buf = grad_buffer(tape.states[0][1:], tape.padded) if "m_buf" in ex else EMPTY
            tape.back = {"dh_buf": dh_buf, **self._kernel_back_buffers(tape)}
            extra = [EMPTY] * 8
        else:  # the weight gradients themselves, summed in the loop
            if self.peephole:
                grads["weight_peephole"] = torch.zeros_like(p["weight_peephole"])
            if p["weight_hr"] is not None:
                grads["weight_hr"] = torch.zeros_like(p["weight_hr"])
            dG = dh_buf = EMPTY
            extra = [fuse[0], p["weight_ih"].contiguous(), grads["input"], grads["weight_ih"],
                     grads["bias_ih"], grads["weight_hh"], grads.get("weight_peephole", EMPTY),
                     grads.get("weight_hr", EMPTY)]
            tape.dG = None
        torch.ops.rnnlab.lstm_backward(
            tape.xw, *tape.states[:2], ex["tanh_c_buf"], ex.get("m_buf", EMPTY),
            *self._weights(p), kernel_sizes(tape), self.masks.kernel_args(tape),
            self._norm_args(tape), variant, fgr, self.truncated, d_out, *d_finals[:2],
            tape.dG if grads is None else dG, dh_buf, *carry[:2], *extra, threads)
        return carry

    fusable = True

    def fused_grads(self, tape):
        grads = dict(tape.fused)
        grads["bias_hh"] = grads["bias_ih"].clone()  # b_hh sits beside b_ih in every gate
        return grads

    def _variant_args(self, tape) -> tuple[int, list]:
        """The kernels' variant number and FGR tensors (`rnnlab.cells.lstm_variants`): the
        plain cell, none."""
        return 0, []

    def _norm_args(self, tape) -> list:
        """The kernels' layer-norm tensors (`rnnlab.cells.lstm_ln`); none for this cell."""
        return []

    def _recurrent_delta(self, tape):
        """δ of the recurrent product W_hh h_{t−1}, gate-major: δa itself here."""
        return tape.dG

    def _kernel_back_buffers(self, tape) -> dict:
        """Buffers the backward kernel fills beyond δa, for `recurrent_grads` (tape.back)."""
        return {}

    def _weights(self, p):
        peephole = p["weight_peephole"] if self.peephole else None
        return p["weight_hh"].contiguous(), kernel_arg(p["weight_hr"]), kernel_arg(peephole)

    def recurrent_grads(self, tape, db):
        Hs, Cs = tape.states
        ex, dG = tape.back, tape.dG
        grads = {"weight_hh": weight_grad(self._recurrent_delta(tape), self.dropped(Hs[:-1])),
                 "bias_hh": db}
        if tape.params["weight_hr"] is not None:
            grads["weight_hr"] = weight_grad(ex["dh_buf"].unsqueeze(0), tape.extra["m_buf"])
        if self.peephole:
            grads["weight_peephole"] = torch.cat((
                (dG[0] * Cs[:-1]).sum((0, 1)),
                (dG[1] * Cs[:-1]).sum((0, 1)),
                (dG[3] * tape.candidate(1)).sum((0, 1)),  # o peeps at c̃_t
            ))
        return grads
