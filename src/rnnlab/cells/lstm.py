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

``truncated=True`` is Hochreiter & Schmidhuber's (1997) rule: error that reaches a gate's or
the candidate's net input is not sent back in time, so δh_{t-1} = 0 from this step and the
peephole terms are dropped; error flows back only along c (the carousel). The forward pass is
unchanged; the weight gradients use the same δa.
"""

from __future__ import annotations

import torch

from .base import CellMath, Tape, flat, grad_buffer, state_buffer


class LSTMMath(CellMath):
    n_gates = 4
    param_names = (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_peephole",
    )
    state_names = ("h", "c")

    def __init__(self, *, peephole: bool = False, truncated: bool = False):
        self.peephole = peephole
        self.truncated = truncated

    def begin(self, xw, inits, params, padded):
        h0, c0 = inits
        T, B, H4 = xw.shape
        Hs = state_buffer(h0, T, padded)
        Cs = state_buffer(c0, T, padded)
        tape = Tape(xw=xw, states=(Hs, Cs), params=params, padded=padded)
        ex = tape.extra
        ex["W_hh_t"] = params["weight_hh"].t()
        ex["tanh_c"] = torch.empty(T, B, H4 // 4, dtype=xw.dtype, device=xw.device)
        if params["weight_hr"] is not None:
            ex["W_hr_t"] = params["weight_hr"].t()
            ex["m"] = grad_buffer(ex["tanh_c"], padded)  # m_t, read by ∂L/∂W_hr
        return tape

    def step(self, tape, t, n):
        Hs, Cs = tape.states
        ex, p = tape.extra, tape.params
        a = tape.xw[t, :n]  # (n, 4H): becomes [i, f, g, o]
        H = a.shape[1] // 4
        a.addmm_(Hs[t, :n], ex["W_hh_t"])
        c_prev, c = Cs[t, :n], Cs[t + 1, :n]
        if self.peephole:
            a.view(n, 4, H)[:, :2].addcmul_(c_prev.unsqueeze(1), p["weight_peephole"][: 2 * H].view(2, H))
        a[:, : 2 * H].sigmoid_()
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        g.tanh_()
        torch.mul(f, c_prev, out=c)
        c.addcmul_(i, g)
        if self.peephole:
            o.addcmul_(c, p["weight_peephole"][2 * H :])
        o.sigmoid_()
        tc = torch.tanh(c, out=ex["tanh_c"][t, :n])
        if "m" in ex:
            m = torch.mul(o, tc, out=ex["m"][t, :n])
            torch.mm(m, ex["W_hr_t"], out=Hs[t + 1, :n])
        else:
            torch.mul(o, tc, out=Hs[t + 1, :n])

    def begin_backward(self, tape):
        T, B, H4 = tape.xw.shape
        H = H4 // 4
        i, f, g, o = tape.xw.view(T, B, 4, H).unbind(2)
        tc = tape.extra["tanh_c"]
        c_prev = tape.states[1][:-1]
        ex = tape.extra
        # pointwise derivative factors for all steps at once; the loop only multiplies by δ
        ex["f"] = f
        ex["dm_dc"] = o * (1 - tc * tc)  # ∂m/∂c
        ex["dm_dao"] = tc * o * (1 - o)  # ∂m/∂a_o
        ex["dc_daifg"] = torch.stack(  # ∂c/∂a_i, ∂c/∂a_f, ∂c/∂a_g
            (g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)), dim=2
        )
        if "m" in ex:
            ex["dh"] = grad_buffer(tape.states[0][1:], tape.padded)  # δh_t, read by ∂L/∂W_hr
        tape.dG = grad_buffer(tape.xw, tape.padded)

    def step_back(self, tape, t, n, carry):
        ex, p = tape.extra, tape.params
        dh, dc = carry[0][:n], carry[1][:n]
        dA = tape.dG[t, :n].view(n, 4, -1)
        H = dA.shape[2]
        if "m" in ex:
            ex["dh"][t, :n] = dh
            dm = dh @ p["weight_hr"]  # undoes h_t = W_hr m_t
        else:
            dm = dh
        torch.mul(dm, ex["dm_dao"][t, :n], out=dA[:, 3])  # undoes m_t = o_t tanh c_t (o side)
        dc.addcmul_(dm, ex["dm_dc"][t, :n])  # ... and the tanh(c_t) side
        peep = self.peephole and not self.truncated
        if peep:
            dc.addcmul_(dA[:, 3], p["weight_peephole"][2 * H :])  # undoes o's peephole on c_t
        torch.mul(ex["dc_daifg"][t, :n], dc.unsqueeze(1), out=dA[:, :3])  # undoes c_t = f c + i g
        dc.mul_(ex["f"][t, :n])  # the carousel: δc_{t-1} = f_t δc_t
        if peep:  # undoes the i and f peepholes on c_{t-1}
            dc.addcmul_(dA[:, 0], p["weight_peephole"][:H])
            dc.addcmul_(dA[:, 1], p["weight_peephole"][H : 2 * H])
        if self.truncated:
            dh.zero_()  # the 1997 truncation: no error into h_{t-1} through the gates
        else:
            torch.mm(tape.dG[t, :n], p["weight_hh"], out=dh)  # undoes a += W_hh h_{t-1}

    def recurrent_grads(self, tape, dG, db):
        Hs, Cs = tape.states
        ex = tape.extra
        grads = {"weight_hh": flat(dG).t() @ flat(Hs[:-1]), "bias_hh": db}
        if "m" in ex:
            grads["weight_hr"] = flat(ex["dh"]).t() @ flat(ex["m"])
        if self.peephole:
            T, B, H4 = dG.shape
            dA = dG.view(T, B, 4, H4 // 4)
            grads["weight_peephole"] = torch.cat((
                (dA[:, :, 0] * Cs[:-1]).sum((0, 1)),
                (dA[:, :, 1] * Cs[:-1]).sum((0, 1)),
                (dA[:, :, 3] * Cs[1:]).sum((0, 1)),
            ))
        return grads
