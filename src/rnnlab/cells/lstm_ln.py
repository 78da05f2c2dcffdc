"""Layer-normalised LSTM (Ba, Kiros & Hinton 2016), in the form of haste's LayerNormLSTM and
PyTorch's own fastrnns reference: each product is normalised over its whole gate vector.

Forward, one step (LN(v; γ, β) = γ ⊙ (v − mean v) / √(var v + ε) + β over the vector's
entries, ε = 1e-5 as torch.nn.LayerNorm; gate order i, f, g, o as torch; peepholes p and the
projection W_hr as in `rnnlab.cells.lstm`):

    u_t = W_ih x_t,              n^x_t = (u_t − μ(u_t)) r^x_t,   r = 1/√(var + ε)   (4H entries)
    v_t = W_hh h_{t-1},          n^h_t = (v_t − μ(v_t)) r^h_t                        (4H entries)
    [a_i, a_f, a_g, a_o] = γ_x n^x_t + β_x + γ_h n^h_t + β_h + b_ih + b_hh
    i, f = σ(a_i + p_i c_{t-1}), σ(a_f + p_f c_{t-1});   g = tanh(a_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g                            carried un-normalised
    o = σ(a_o + p_o c_t)
    n^c_t = (c_t − μ(c_t)) r^c_t,  y_t = γ_c n^c_t + β_c                             (H entries)
    h_t = W_hr (o ⊙ tanh y_t)                            (no W_hr without a projection)

γ start at 1 and β at 0. The input side does not depend on the past: the reference path
normalises it for all steps at once before the loop, the compiled kernel row by row in its
loop (with the rest of the step). Both keep n and r of every normalisation for the backward
pass.

Backward: for n = (v − μ) r and δn = γ ⊙ δ(γ n + β), the layer norm's own rule

    δv = r ⊙ (δn − mean(δn) − n ⊙ mean(δn ⊙ n)),     δγ = Σ δ(γn + β) ⊙ n,  δβ = Σ δ(γn + β)

undoes each normalisation: y_t's gives δc_t its extra term (before the carousel), v_t's gives
δv_t = δ(W_hh h_{t−1}), whence δh_{t−1} = W_hhᵀ δv_t and ∂L/∂W_hh = Σ δv_t h_{t−1}ᵀ; the input
side's, applied after the loop to δa, gives δu_t for ∂L/∂W_ih and ∂L/∂x (`input_grad`). The rest
is the plain LSTM's backward with y_t in place of c_t inside tanh.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import kernels
from .base import grad_buffer
from .layer_norm import (
    EPS,
    gate_norm_buffers,
    input_norm_back,
    norm_back,
    normalise_input,
    normalise_product,
    normalise_rows,
)
from .lstm import LSTMMath

#: the normalisations' parameters, in registration order after the LSTM's own
LN_PARAMS = ("weight_ln_ih", "bias_ln_ih", "weight_ln_hh", "bias_ln_hh", "weight_ln_c",
             "bias_ln_c")


class LayerNormLSTMMath(LSTMMath):
    fusable = False  # the fused weight-gradient sums read δa; W_hh's gradient needs δv
    param_names = LSTMMath.param_names + LN_PARAMS

    def input_bias(self, params):
        return None  # every bias is added after the normalisation

    @staticmethod
    def _beta(params):
        """β_x + β_h + b_ih + b_hh: every constant added to the gates' net input."""
        beta = params["bias_ln_ih"] + params["bias_ln_hh"]
        if params["bias_ih"] is not None:
            beta = beta + params["bias_ih"] + params["bias_hh"]
        return beta

    def allocate(self, xw, inits, params, batch_sizes):
        """The plain cell's buffers (tanh_c_buf holds tanh(y)) and the normalisations' n, r;
        xw holds u = W_ih x on entry (the kernel normalises it row by row as it goes)."""
        tape = super().allocate(xw, inits, params, batch_sizes)
        _, T, B, H = xw.shape
        padded = tape.padded
        ex = tape.extra
        ex.update(gate_norm_buffers(xw, padded))  # zero-filled when padded: read by ∂L/∂γ
        ex["n_c_buf"] = kernels.buffer((T, B, H), xw, zero=padded)
        ex["r_c_buf"] = kernels.buffer((T, B, 1), xw, zero=padded)
        return tape

    def begin(self, xw, inits, params, batch_sizes):
        tape = super().begin(xw, inits, params, batch_sizes)
        ex, st, H = tape.extra, tape.steps, xw.shape[3]
        # the input side for every step at once; xw then holds γ_x n^x + β
        normalise_input(xw, ex, params["weight_ln_ih"], self._beta(params))
        ex.update(n_h=st(ex["n_h_buf"], 1), r_h=st(ex["r_h_buf"]), n_c=st(ex["n_c_buf"]),
                  r_c=st(ex["r_c_buf"]), g_h=params["weight_ln_hh"].view(4, 1, H),
                  g_c=params["weight_ln_c"], b_c=params["bias_ln_c"])
        return tape

    def add_recurrent(self, ex, t):
        """a_t += γ_h n^h_t, n^h_t = the normalised W_hh h_{t-1}."""
        hw = self.recurrent_product(ex, t)  # v_t
        n_h = ex["n_h"][t]  # (4, n, H)
        normalise_product(hw, n_h, ex["r_h"][t])
        ex["a"][t].addcmul_(n_h, ex["g_h"])

    def squash_cell(self, ex, t):
        """tanh(y_t), y_t = γ_c n^c_t + β_c, kept in tanh_c."""
        n_c = ex["n_c"][t]
        normalise_rows(ex["c"][t], 1, n_c, ex["r_c"][t])
        return torch.tanh(torch.addcmul(ex["b_c"], n_c, ex["g_c"]), out=ex["tanh_c"][t])

    def begin_backward(self, tape):
        super().begin_backward(tape)  # dm_dc there is ∂m/∂y: tanh_c holds tanh(y)
        bk, st = tape.back, tape.steps
        bk["dY_buf"] = grad_buffer(tape.extra["tanh_c_buf"], tape.padded)  # δy_t
        bk["dV_buf"] = grad_buffer(tape.xw, tape.padded)  # δv_t, gate-major
        bk.update(dY=st(bk["dY_buf"]), dV=st(bk["dV_buf"], 1))

    def step_back(self, tape, t, carry):
        ex, p = tape.back, tape.params
        dh, dc = carry
        dm = self.output_grad(ex, p, dh, t)
        dA_o = ex["dA_o"][t]
        torch.mul(dm, ex["dm_dao"][t], out=dA_o)
        dy = torch.mul(dm, ex["dm_dc"][t], out=ex["dY"][t])  # δy_t
        dc.add_(norm_back(dy * ex["g_c"], ex["n_c"][t], ex["r_c"][t], 1))  # undoes y = LN(c)
        if self.peephole:
            dc.addcmul_(dA_o, ex["p_o"])
        torch.mul(ex["dc_daifg"][t], dc, out=ex["dA_ifg"][t])
        dc.mul_(ex["f"][t])  # the carousel
        if self.peephole:
            dc.addcmul_(ex["dA_i"][t], ex["p_i"])
            dc.addcmul_(ex["dA_f"][t], ex["p_f"])
        # undoes a += γ_h n^h, n^h = LN(v): δv over each row's 4H entries (gate-major)
        dv = ex["dV"][t]
        dv.copy_(norm_back(ex["dA"][t] * ex["g_h"], ex["n_h"][t], ex["r_h"][t].unsqueeze(0),
                           (0, 2)))
        n = dh.shape[0]
        flat_dv = ex["hw"][:n]
        flat_dv.view(n, 4, -1).copy_(dv.transpose(0, 1))
        torch.mm(flat_dv, p["weight_hh"], out=dh)  # δh_{t-1} = W_hhᵀ δv
        if "drop" in ex:
            dh.mul_(ex["drop"][t])

    def _recurrent_delta(self, tape):
        return tape.back["dV_buf"]  # δv_t

    def input_grad(self, tape):
        """δu = ∂L/∂(W_ih x) from δa, through the input side's normalisation (the kernel
        computes it in its loop)."""
        return input_norm_back(tape, tape.params["weight_ln_ih"])

    def recurrent_grads(self, tape, db):
        grads = super().recurrent_grads(tape, db)  # W_hh's from δv (`_recurrent_delta`)
        ex, bk, dG = tape.extra, tape.back, tape.dG
        grads.update(bias_ln_ih=db, bias_ln_hh=db)
        if tape.compiled:  # the kernel summed them in its loop
            grads.update(zip(("weight_ln_ih", "weight_ln_hh", "weight_ln_c", "bias_ln_c"),
                             bk["sums"].split([dG.shape[0] * dG.shape[3]] * 2
                                              + [dG.shape[3]] * 2)))
            return grads
        dY = bk["dY_buf"]
        grads.update(
            weight_ln_ih=(dG * ex["n_x_buf"]).sum((1, 2)).flatten(),
            weight_ln_hh=(dG * ex["n_h_buf"]).sum((1, 2)).flatten(),
            weight_ln_c=(dY * ex["n_c_buf"]).sum((0, 1)), bias_ln_c=dY.sum((0, 1)),
        )
        return grads

    def autograd_step(self, a, states, params):
        h, c = states
        G = a.shape[-1]
        H = G // 4
        a = F.layer_norm(a, (G,), params["weight_ln_ih"], params["bias_ln_ih"], EPS)
        if params["bias_ih"] is not None:
            a = a + params["bias_ih"] + params["bias_hh"]
        v = self.dropped(h) @ params["weight_hh"].t()
        a = a + F.layer_norm(v, (G,), params["weight_ln_hh"], params["bias_ln_hh"], EPS)
        a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
        if self.peephole:
            p_i, p_f, p_o = params["weight_peephole"].chunk(3)
            a_i, a_f = a_i + p_i * c, a_f + p_f * c
        c_new = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
        if self.peephole:
            a_o = a_o + p_o * c_new
        y = F.layer_norm(c_new, (H,), params["weight_ln_c"], params["bias_ln_c"], EPS)
        m = torch.sigmoid(a_o) * torch.tanh(y)
        W_hr = params["weight_hr"]
        return (m if W_hr is None else m @ W_hr.t()), c_new

    def _kernel_back_buffers(self, tape):
        H = tape.xw.shape[3]
        return {"dV_buf": grad_buffer(tape.xw, tape.padded),  # δv_t, gate-major
                "dU_buf": grad_buffer(tape.xw, tape.padded),  # δu_t
                "sums": tape.xw.new_zeros(10 * H)}  # ∂L/∂γ_x, γ_h, γ_c, β_c

    def _norm_args(self, tape):
        ex, p = tape.extra, tape.params
        args = [p["weight_ln_ih"].contiguous(), self._beta(p).contiguous(),
                p["weight_ln_hh"].contiguous(), p["weight_ln_c"].contiguous(),
                p["bias_ln_c"].contiguous(), ex["n_x_buf"], ex["r_x_buf"], ex["n_h_buf"],
                ex["r_h_buf"], ex["n_c_buf"], ex["r_c_buf"]]
        if tape.back is not None and "sums" in tape.back:  # the backward pass
            args += [tape.back["dV_buf"], tape.back["dU_buf"], tape.back["sums"]]
        return args
