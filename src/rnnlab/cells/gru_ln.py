"""Layer-normalised GRU (Ba, Kiros & Hinton 2016), torch's reset-after form, each product
normalised over its whole gate vector as haste's LayerNormGRU does (Ba et al.'s own code
normalises the gates' 2H and the candidate's H separately; one normalisation per product is
the form that matches `rnnlab.cells.lstm_ln`).

Forward, one step (LN as in `rnnlab.cells.layer_norm`; gate order r, z, n as torch):

    u_t = W_ih x_t,               n^x_t = (u_t − μ(u_t)) r^x_t                     (3H entries)
    v_t = W_hh h_{t-1},           n^h_t = (v_t − μ(v_t)) r^h_t                     (3H entries)
    [a_r, a_z, a_n] = γ_x n^x_t + β_x + b_ih                 the input side
    [w_r, w_z, w_n] = γ_h n^h_t + β_h + b_hh                 the recurrent side
    r = σ(a_r + w_r),  z = σ(a_z + w_z),  n = tanh(a_n + r ⊙ w_n)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

γ start at 1 and β at 0. The recurrent side is the plain cell's W_hh h_{t-1} + b_hh with the
normalised product in its place, so the gates' math and their backward are `GRUMath`'s.

Backward: the plain cell gives δa (the input side, tape.dG) and δw (the recurrent side, kept
as dhw). The layer norm's rule turns δw into δv_t = δ(W_hh h_{t-1}), whence
δh_{t−1} = z ⊙ δh_t + W_hhᵀ δv_t and ∂L/∂W_hh = Σ δv_t h_{t−1}ᵀ; applied after the loop to δa
it gives δu_t for ∂L/∂W_ih and ∂L/∂x (`input_grad`). ∂L/∂γ_h = Σ δw ⊙ n^h, ∂L/∂β_h = Σ δw,
∂L/∂γ_x = Σ δa ⊙ n^x, ∂L/∂β_x = Σ δa. Recurrent dropout and zoneout enter as in `GRUMath`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import grad_buffer, weight_grad
from .gru import GRUMath
from .layer_norm import (
    EPS,
    gate_norm_buffers,
    input_norm_back,
    norm_back,
    normalise_input,
    normalise_product,
)

#: the normalisations' parameters, in registration order after the GRU's own
LN_PARAMS = ("weight_ln_ih", "bias_ln_ih", "weight_ln_hh", "bias_ln_hh")


class LayerNormGRUMath(GRUMath):
    param_names = GRUMath.param_names + LN_PARAMS

    def __init__(self):
        super().__init__(reset_after=True)

    def input_bias(self, params):
        return None  # every bias is added after the normalisation

    @staticmethod
    def _side_bias(params, side: str) -> torch.Tensor:
        """β + b of one side (``"ih"`` or ``"hh"``): the constant added after its norm."""
        beta = params[f"bias_ln_{side}"]
        b = params[f"bias_{side}"]
        return beta if b is None else beta + b

    def allocate(self, xw, inits, params, batch_sizes):
        """The plain cell's buffers (hw_buf holds γ_h n^h + β_h + b_hh) and the normalisations'
        n, r; xw holds u = W_ih x on entry (the kernel normalises it row by row as it goes)."""
        tape = super().allocate(xw, inits, params, batch_sizes)
        tape.extra.update(gate_norm_buffers(xw, tape.padded))
        return tape

    def begin(self, xw, inits, params, batch_sizes):
        tape = super().begin(xw, inits, params, batch_sizes)
        ex, st, H = tape.extra, tape.steps, xw.shape[3]
        # the input side for every step at once; xw then holds γ_x n^x + β_x + b_ih
        normalise_input(xw, ex, params["weight_ln_ih"], self._side_bias(params, "ih"))
        ex.update(n_h=st(ex["n_h_buf"], 1), r_h=st(ex["r_h_buf"]),
                  g_h=params["weight_ln_hh"].view(3, 1, H),
                  b_h=self._side_bias(params, "hh").view(3, 1, H),
                  W_hh_t=params["weight_hh"].t(), v=xw.new_empty(xw.shape[2], 3 * H))
        return tape

    def recurrent_side(self, ex, t, hd):
        """w = γ_h n^h + β_h + b_hh, n^h the normalised v = W_hh (h_{t−1} ⊙ drop)."""
        v = torch.mm(hd, ex["W_hh_t"], out=ex["v"][: hd.shape[0]])  # token-major (n, 3H)
        n_h = ex["n_h"][t]
        normalise_product(v, n_h, ex["r_h"][t])
        torch.addcmul(ex["b_h"], n_h, ex["g_h"], out=ex["hw"][t])

    def begin_backward(self, tape):
        super().begin_backward(tape)
        bk = tape.back
        bk["dV_buf"] = grad_buffer(tape.xw, tape.padded)  # δv_t, gate-major
        bk["dV"] = tape.steps(bk["dV_buf"], 1)

    def recurrent_back(self, ex, t, dhw):
        """W_hhᵀ δv, δv from δw through the recurrent side's normalisation (kept in dV)."""
        dv = ex["dV"][t]
        dv.copy_(norm_back(dhw * ex["g_h"], ex["n_h"][t], ex["r_h"][t].unsqueeze(0), (0, 2)))
        return super().recurrent_back(ex, t, dv)

    def input_grad(self, tape):
        """δu = ∂L/∂(W_ih x) from δa, through the input side's normalisation."""
        return input_norm_back(tape, tape.params["weight_ln_ih"])

    def recurrent_grads(self, tape, db):
        ex, bk, dG = tape.extra, tape.back, tape.dG
        dhw = bk["dhw_buf"]
        dw_sum = dhw.sum((1, 2)).flatten()
        grads = {"weight_hh": weight_grad(bk["dV_buf"], self.dropped(tape.states[0][:-1])),
                 "bias_hh": dw_sum, "bias_ln_hh": dw_sum, "bias_ln_ih": db}
        if tape.compiled:  # the kernel summed them in its loop
            grads.update(zip(("weight_ln_ih", "weight_ln_hh"), bk["sums"].chunk(2)))
        else:
            grads.update(weight_ln_ih=(dG * ex["n_x_buf"]).sum((1, 2)).flatten(),
                         weight_ln_hh=(dhw * ex["n_h_buf"]).sum((1, 2)).flatten())
        return grads

    @staticmethod
    def autograd_input_side(a, params):
        """γ_x LN(a) + β_x + b_ih, a = W_ih x (no bias folded in: `input_bias`)."""
        a = F.layer_norm(a, (a.shape[-1],), params["weight_ln_ih"], params["bias_ln_ih"], EPS)
        return a if params["bias_ih"] is None else a + params["bias_ih"]

    @staticmethod
    def autograd_recurrent_side(hd, params):
        """γ_h LN(W_hh (h ⊙ drop)) + β_h + b_hh."""
        v = F.linear(hd, params["weight_hh"])
        w = F.layer_norm(v, (v.shape[-1],), params["weight_ln_hh"], params["bias_ln_hh"], EPS)
        return w if params["bias_hh"] is None else w + params["bias_hh"]

    # the compiled loops (gru.cpp with layer_norm.h): b_hh there is β_h + b_hh
    def _recurrent_bias(self, p):
        return self._side_bias(p, "hh").contiguous()

    def _kernel_back_buffers(self, tape):
        H = tape.xw.shape[3]
        return {"dV_buf": grad_buffer(tape.xw, tape.padded),  # δv_t, gate-major
                "dU_buf": grad_buffer(tape.xw, tape.padded),  # δu_t
                "sums": tape.xw.new_zeros(6 * H)}  # ∂L/∂γ_x, ∂L/∂γ_h

    def _norm_args(self, tape):
        ex, p = tape.extra, tape.params
        args = [p["weight_ln_ih"].contiguous(), self._side_bias(p, "ih").contiguous(),
                p["weight_ln_hh"].contiguous(), ex["n_x_buf"], ex["r_x_buf"], ex["n_h_buf"],
                ex["r_h_buf"]]
        if tape.back is not None and "sums" in tape.back:  # the backward pass
            args += [tape.back["dV_buf"], tape.back["dU_buf"], tape.back["sums"]]
        return args
