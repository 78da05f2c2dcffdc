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

Recurrent dropout (`rnnlab.cells.base.Masks`): the products see ĥ = h_{t-1} ⊙ drop in place
of h_{t-1} (r_t ⊙ ĥ for reset_after=False), the interpolation z_t ⊙ h_{t-1} the state itself;
so every term of δh_{t-1} that came back through a product is multiplied by drop, and
∂L/∂W_hh reads ĥ. Zoneout is the engine's (`Masks`), around this step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import kernels
from .base import (
    EMPTY,
    CellMath,
    Tape,
    gate_major,
    gate_rows,
    grad_buffer,
    kernel_arg,
    kernel_sizes,
    state_buffer,
    weight_grad,
)


class GRUMath(CellMath):
    n_gates = 3

    def __init__(self, *, reset_after: bool = True):
        self.reset_after = reset_after

    def input_bias(self, params):
        # with reset_after the whole b_hh sits inside the recurrent product (b_hn is gated by r)
        if self.reset_after:
            return params["bias_ih"]
        return super().input_bias(params)

    def allocate(self, xw, inits, params, batch_sizes):
        (h0,) = inits
        T = xw.shape[1]
        Hs = state_buffer(h0, T, batch_sizes is not None)
        tape = Tape(xw=xw, states=(Hs,), params=params, batch_sizes=batch_sizes)
        if self.reset_after:
            tape.extra["hw_buf"] = kernels.buffer(xw.shape, xw)  # W_hh h + b_hh, kept for δa_r
        else:  # r_t ⊙ h_{t-1}, read by ∂L/∂W_hn
            tape.extra["rh_buf"] = grad_buffer(Hs[1:], tape.padded)
        return tape

    def begin(self, xw, inits, params, batch_sizes):
        tape = self.allocate(xw, inits, params, batch_sizes)
        (Hs,), H = tape.states, xw.shape[3]
        ex, st, W = tape.extra, tape.steps, params["weight_hh"]
        ex.update(
            rz=st(xw[:2], 1), r=st(xw[0]), z=st(xw[1]), n=st(xw[2]),
            h_prev=st(Hs[:-1]), h=st(Hs[1:]),
        )
        if self.reset_after:
            hw, b = ex["hw_buf"], params["bias_hh"]
            ex.update(
                hw=st(hw, 1), hw_rz=st(hw[:2], 1), hw_n=st(hw[2]),
                W_hh_g=gate_major(W, 3), b_hh=None if b is None else b.view(3, 1, H),
            )
        else:
            ex.update(rh=st(ex["rh_buf"]), W_hrz_g=gate_major(W[: 2 * H], 2),
                      W_hn_t=W[2 * H :].t())
        ex.update(self.drop_views(tape))  # h_{t−1} ⊙ drop, the recurrent products' input
        return tape

    def step(self, tape, t):
        ex = tape.extra
        h_prev, r, z, n = ex["h_prev"][t], ex["r"][t], ex["z"][t], ex["n"][t]
        hd = self.product_input(ex, t)  # what the products see
        if self.reset_after:
            self.recurrent_side(ex, t, hd)
            ex["rz"][t].add_(ex["hw_rz"][t]).sigmoid_()
            n.addcmul_(r, ex["hw_n"][t]).tanh_()  # n = tanh(a_n + r (W_hn h + b_hn))
        else:
            ex["rz"][t].baddbmm_(hd.expand(2, *hd.shape), ex["W_hrz_g"]).sigmoid_()
            rh = torch.mul(r, hd, out=ex["rh"][t])
            n.addmm_(rh, ex["W_hn_t"]).tanh_()  # n = tanh(a_n + W_hn (r h))
        torch.lerp(n, h_prev, z, out=ex["h"][t])  # h_t = (1 − z) n + z h_{t-1}

    def recurrent_side(self, ex: dict, t: int, hd: torch.Tensor) -> None:
        """reset_after: the recurrent side of the gates, W_hh (h_{t−1} ⊙ drop) + b_hh, into
        hw[t] (gate-major (3, n, H)), kept for the backward pass."""
        h3 = hd.expand(3, *hd.shape)
        if ex["b_hh"] is None:
            torch.bmm(h3, ex["W_hh_g"], out=ex["hw"][t])
        else:
            torch.baddbmm(ex["b_hh"], h3, ex["W_hh_g"], out=ex["hw"][t])

    def recurrent_back(self, ex: dict, t: int, dhw: torch.Tensor) -> torch.Tensor:
        """reset_after: δh_{t−1}'s part through the recurrent side, W_hhᵀ δ(W_hh h + b_hh)."""
        return torch.bmm(dhw, ex["W_hh_gt"]).sum(0)

    def begin_backward(self, tape):
        bk = tape.back = dict(tape.extra)  # forward views + what only backward needs
        ex, st = tape.extra, tape.steps
        r, z, n = tape.xw  # activations, (T, B, H) each
        h_prev = tape.states[0][:-1]
        dan = (1 - z) * (1 - n * n)  # ∂h/∂a_n
        daz = (h_prev - n) * z * (1 - z)  # ∂h/∂a_z
        tape.dG = dG = grad_buffer(tape.xw, tape.padded)
        bk.update(dA=st(dG, 1))
        if self.reset_after:
            dar = dan * ex["hw_buf"][2] * r * (1 - r)  # ∂h/∂a_r
            dhw = grad_buffer(tape.xw, tape.padded)  # δ(W_hh h + b_hh)
            bk.update(
                dh_da=st(torch.stack((dar, daz, dan)), 1),
                dh_dhw=st(torch.stack((dar, daz, dan * r)), 1),
                dhw_buf=dhw, dhw=st(dhw, 1), W_hh_gt=gate_rows(tape.params["weight_hh"], 3),
            )
        else:
            H = dan.shape[-1]
            W = tape.params["weight_hh"]
            bk.update(
                dh_dazn=st(torch.stack((daz, dan)), 1),
                drh_dar=st(self.dropped(h_prev) * r * (1 - r)),
                dA_zn=st(dG[1:], 1), dA_rz=st(dG[:2], 1), dA_r=st(dG[0]), dA_n=st(dG[2]),
                W_hn=W[2 * H :], W_hrz_gt=gate_rows(W[: 2 * H], 2),
            )

    def step_back(self, tape, t, carry):
        ex = tape.back
        dh = carry[0]
        if self.reset_after:
            dhw = ex["dhw"][t]
            torch.mul(ex["dh_da"][t], dh, out=ex["dA"][t])  # undoes the gates (input side)
            torch.mul(ex["dh_dhw"][t], dh, out=dhw)  # ... and their recurrent side
            rec = self.recurrent_back(ex, t, dhw)  # undoes W_hh h_{t-1}
            if "drop" in ex:
                rec.mul_(ex["drop"][t])
            dh.mul_(ex["z"][t]).add_(rec)  # + z δh through h_t = ... + z h_{t-1}
        else:
            torch.mul(ex["dh_dazn"][t], dh, out=ex["dA_zn"][t])  # undoes z and n
            drh = ex["dA_n"][t] @ ex["W_hn"]  # undoes a_n += W_hn (r ⊙ h)
            torch.mul(drh, ex["drh_dar"][t], out=ex["dA_r"][t])  # ... through r
            rec = torch.bmm(ex["dA_rz"][t], ex["W_hrz_gt"]).sum(0)  # undoes W_h{r,z} h_{t-1}
            rec.addcmul_(drh, ex["r"][t])  # ... and r ⊙ h_{t-1}
            if "drop" in ex:
                rec.mul_(ex["drop"][t])
            dh.mul_(ex["z"][t]).add_(rec)

    def autograd_step(self, a, states, params):
        # as few ops as the equations allow: each is a node of the graph that double backward
        # and torch.func differentiate (r and z share one add and one σ, n one addcmul)
        (h,) = states
        hd = self.dropped(h)  # what the products see
        H = h.shape[-1]
        a_rz, a_n = self.autograd_input_side(a, params).split([2 * H, H], dim=-1)
        if self.reset_after:  # b_hh stays inside the recurrent product
            hw_rz, hw_n = self.autograd_recurrent_side(hd, params).split([2 * H, H], dim=-1)
            r, z = torch.sigmoid(a_rz + hw_rz).chunk(2, dim=-1)
            n = torch.tanh(torch.addcmul(a_n, r, hw_n))
        else:  # b_hh was folded into the input projection (`input_bias`)
            W_rz, W_n = params["weight_hh"].split([2 * H, H])
            r, z = torch.sigmoid(a_rz + F.linear(hd, W_rz)).chunk(2, dim=-1)
            n = torch.tanh(a_n + F.linear(r * hd, W_n))
        return (torch.lerp(n, h, z),)  # (1 − z) n + z h

    @staticmethod
    def autograd_input_side(a, params):
        """The gates' input side from a = x W_ihᵀ + `input_bias`: a itself here."""
        return a

    @staticmethod
    def autograd_recurrent_side(hd, params):
        """reset_after: the gates' recurrent side, W_hh (h ⊙ drop) + b_hh (`recurrent_side`)."""
        return F.linear(hd, params["weight_hh"], params["bias_hh"])

    def kernel_forward(self, tape, threads):
        ex, p = tape.extra, tape.params
        torch.ops.rnnlab.gru_forward(
            tape.xw, tape.states[0], ex.get("hw_buf", EMPTY), ex.get("rh_buf", EMPTY),
            p["weight_hh"].contiguous(), self._recurrent_bias(p), kernel_sizes(tape),
            self.masks.kernel_args(tape), self._norm_args(tape), threads)

    def kernel_backward(self, tape, d_out, d_finals, threads):
        ex, p = tape.extra, tape.params
        tape.dG = grad_buffer(tape.xw, tape.padded)
        dhw = grad_buffer(tape.xw, tape.padded) if self.reset_after else EMPTY
        tape.back = {"dhw_buf": dhw, "rh_buf": ex.get("rh_buf"), **self._kernel_back_buffers(tape)}
        dh0 = torch.empty_like(d_finals[0])
        torch.ops.rnnlab.gru_backward(
            tape.xw, tape.states[0], ex.get("hw_buf", EMPTY), ex.get("rh_buf", EMPTY),
            p["weight_hh"].contiguous(), self._recurrent_bias(p), kernel_sizes(tape),
            self.masks.kernel_args(tape), self._norm_args(tape), d_out, d_finals[0], tape.dG,
            dhw, dh0, threads)
        return [dh0]

    def _recurrent_bias(self, p) -> torch.Tensor:
        """The kernels' b_hh: the constant of the recurrent side (reset_after; else folded)."""
        return kernel_arg(p["bias_hh"] if self.reset_after else None)

    def _norm_args(self, tape) -> list:
        """The kernels' layer-norm tensors (`rnnlab.cells.gru_ln`); none for this cell."""
        return []

    def _kernel_back_buffers(self, tape) -> dict:
        """Buffers the backward kernel fills beyond δa and δ(W_hh h + b_hh) (tape.back)."""
        return {}

    def recurrent_grads(self, tape, db):
        h_prev = self.dropped(tape.states[0][:-1])  # as the products saw it
        if self.reset_after:
            dhw = tape.back["dhw_buf"]
            return {
                "weight_hh": weight_grad(dhw, h_prev),
                "bias_hh": dhw.sum((1, 2)).flatten(),
            }
        dG = tape.dG
        return {
            "weight_hh": torch.cat(
                (weight_grad(dG[:2], h_prev), weight_grad(dG[2:], tape.back["rh_buf"]))
            ),
            "bias_hh": db,
        }
