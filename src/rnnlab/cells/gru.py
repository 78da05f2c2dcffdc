"""GRU cell, torch's gate order (r, z, n), in two forms.

``reset_after=True`` (torch / cuDNN):

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

``reset_after=False`` (Cho et al. 2014, the lecture's form): the reset gate acts before the
recurrent product, n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn).

Backward, δh_t = ∂L/∂h_t (output error + error carried from t+1); a_* are pre-activations:

    δa_n = δh_t ⊙ (1 − z_t) ⊙ (1 − n_t²)                    undoes h_t = (1−z)n + z h, n = tanh
    δa_z = δh_t ⊙ (h_{t-1} − n_t) ⊙ z_t(1 − z_t)
    reset_after=True:   δa_r = δa_n ⊙ (W_hn h_{t-1} + b_hn) ⊙ r_t(1 − r_t)
                        δh_{t-1} = z_t ⊙ δh_t + W_hhᵀ [δa_r, δa_z, r_t ⊙ δa_n]
    reset_after=False:  δ(r⊙h) = W_hnᵀ δa_n
                        δa_r = δ(r⊙h) ⊙ h_{t-1} ⊙ r_t(1 − r_t)
                        δh_{t-1} = z_t ⊙ δh_t + r_t ⊙ δ(r⊙h) + W_h{r,z}ᵀ [δa_r, δa_z]
"""

from __future__ import annotations

import torch

from .base import CellMath, Tape, flat, grad_buffer, state_buffer


class GRUMath(CellMath):
    n_gates = 3

    def __init__(self, *, reset_after: bool = True):
        self.reset_after = reset_after

    def input_bias(self, params):
        # with reset_after the whole b_hh sits inside the recurrent product (b_hn is gated by r)
        if self.reset_after:
            return params["bias_ih"]
        return super().input_bias(params)

    def begin(self, xw, inits, params, padded):
        (h0,) = inits
        T, B, H3 = xw.shape
        Hs = state_buffer(h0, T, padded)
        tape = Tape(xw=xw, states=(Hs,), params=params, padded=padded)
        W = params["weight_hh"]
        H = H3 // 3
        if self.reset_after:
            tape.extra["W_hh_t"] = W.t()
            tape.extra["hw"] = torch.empty_like(xw)  # W_hh h_{t-1} + b_hh, for δa_r
        else:
            tape.extra["W_hrz_t"] = W[: 2 * H].t()
            tape.extra["W_hn_t"] = W[2 * H :].t()
            tape.extra["rh"] = grad_buffer(Hs[1:], padded)  # r_t ⊙ h_{t-1}, for ∂L/∂W_hn
        return tape

    def step(self, tape, t, n):
        Hs, ex = tape.states[0], tape.extra
        a = tape.xw[t, :n]  # (n, 3H): becomes [r, z, n]
        H = a.shape[1] // 3
        h_prev = Hs[t, :n]
        rz, r, z, nt = a[:, : 2 * H], a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        if self.reset_after:
            hw = ex["hw"][t, :n]
            b_hh = tape.params["bias_hh"]
            if b_hh is None:
                torch.mm(h_prev, ex["W_hh_t"], out=hw)
            else:
                torch.addmm(b_hh, h_prev, ex["W_hh_t"], out=hw)
            rz.add_(hw[:, : 2 * H]).sigmoid_()
            nt.addcmul_(r, hw[:, 2 * H :]).tanh_()
        else:
            rz.addmm_(h_prev, ex["W_hrz_t"]).sigmoid_()
            rh = torch.mul(r, h_prev, out=ex["rh"][t, :n])
            nt.addmm_(rh, ex["W_hn_t"]).tanh_()
        torch.lerp(nt, h_prev, z, out=Hs[t + 1, :n])  # (1 − z) n + z h_{t-1}

    def begin_backward(self, tape):
        T, B, H3 = tape.xw.shape
        H = H3 // 3
        r, z, nt = tape.xw.view(T, B, 3, H).unbind(2)
        h_prev = tape.states[0][:-1]
        ex = tape.extra
        dan = (1 - z) * (1 - nt * nt)  # ∂h/∂a_n
        daz = (h_prev - nt) * z * (1 - z)  # ∂h/∂a_z
        ex["z"], ex["r"] = z, r
        if self.reset_after:
            dar = dan * ex["hw"][..., 2 * H :] * r * (1 - r)  # ∂h/∂a_r
            ex["dh_da"] = torch.stack((dar, daz, dan), dim=2)  # factors for δa (input side)
            ex["dh_dhw"] = torch.stack((dar, daz, dan * r), dim=2)  # ... recurrent side
            ex["dhw"] = grad_buffer(tape.xw, tape.padded)
        else:
            ex["dh_dazn"] = torch.stack((daz, dan), dim=2)
            ex["drh_dar"] = h_prev * r * (1 - r)
        tape.dG = grad_buffer(tape.xw, tape.padded)

    def step_back(self, tape, t, n, carry):
        ex = tape.extra
        dh = carry[0][:n]
        dA = tape.dG[t, :n]
        dA3 = dA.view(n, 3, -1)
        W = tape.params["weight_hh"]
        if self.reset_after:
            dhw = ex["dhw"][t, :n]
            torch.mul(ex["dh_da"][t, :n], dh.unsqueeze(1), out=dA3)
            torch.mul(ex["dh_dhw"][t, :n], dh.unsqueeze(1), out=dhw.view(n, 3, -1))
            dh.mul_(ex["z"][t, :n]).addmm_(dhw, W)  # z ⊙ δh + W_hhᵀ δ(W_hh h + b_hh)
        else:
            H = dA3.shape[2]
            torch.mul(ex["dh_dazn"][t, :n], dh.unsqueeze(1), out=dA3[:, 1:])
            drh = dA3[:, 2] @ W[2 * H :]  # undoes a_n += W_hn (r ⊙ h)
            torch.mul(drh, ex["drh_dar"][t, :n], out=dA3[:, 0])  # ... through r
            dh.mul_(ex["z"][t, :n]).addcmul_(drh, ex["r"][t, :n])  # ... and through h
            dh.addmm_(dA[:, : 2 * H], W[: 2 * H])  # undoes a_{r,z} += W_h{r,z} h_{t-1}

    def recurrent_grads(self, tape, dG, db):
        h_prev = flat(tape.states[0][:-1])
        if self.reset_after:
            dhw = flat(tape.extra["dhw"])
            return {
                "weight_hh": dhw.t() @ h_prev,
                "bias_hh": None if db is None else dhw.sum(0),
            }
        H = dG.shape[-1] // 3
        d = flat(dG)
        return {
            "weight_hh": torch.cat(
                (d[:, : 2 * H].t() @ h_prev, d[:, 2 * H :].t() @ flat(tape.extra["rh"]))
            ),
            "bias_hh": db,
        }
