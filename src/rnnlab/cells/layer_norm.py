"""The layer norm's forward and backward, shared by the layer-normalised cells (lstm_ln, gru_ln).

LN(v; γ, β) = γ ⊙ n + β,  n = (v − μ(v)) r,  r = 1/√(var v + ε)  over a row's entries
(biased variance, ε = 1e-5 as torch.nn.LayerNorm). Backward, for δn = γ ⊙ δ(γ n + β):

    δv = r ⊙ (δn − mean(δn) − n ⊙ mean(δn ⊙ n)),   δγ = Σ δ(γ n + β) ⊙ n,   δβ = Σ δ(γ n + β)

A gate vector's product is stored gate-major, (G, T, B, H): "a row" is then the G blocks of
one (t, b), and the moments run over axes (0, 3) of the whole buffer or (0, 2) of one step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import kernels

#: as torch.nn.LayerNorm
EPS = 1e-5


def normalise_rows(v: Tensor, dims, n_out: Tensor, r_out: Tensor) -> None:
    """n = (v − μ) r, r = 1/√(var + ε), the moments over ``dims`` (a row's entries)."""
    var, mu = torch.var_mean(v, dims, correction=0, keepdim=True)
    torch.rsqrt(var.add_(EPS), out=r_out)
    torch.mul(v - mu, r_out, out=n_out)


def normalise_product(v: Tensor, n_out: Tensor, r_out: Tensor) -> None:
    """n (gate-major (G, n, H)) and r (n, 1) of a token-major product v (n, G·H); v is
    overwritten."""
    G, rows = n_out.shape[0], v.shape[0]
    var, mu = torch.var_mean(v, 1, correction=0, keepdim=True)
    torch.rsqrt(var.add_(EPS), out=r_out)
    n_out.copy_(v.sub_(mu).mul_(r_out).view(rows, G, -1).transpose(0, 1))


def norm_back(dn: Tensor, n: Tensor, r: Tensor, dims) -> Tensor:
    """δv from δn for n = (v − μ) r: r (δn − mean δn − n mean(δn n)), means over ``dims``."""
    return r * (dn - dn.mean(dims, keepdim=True) - n * (dn * n).mean(dims, keepdim=True))


def gate_norm_buffers(xw: Tensor, padded: bool) -> dict:
    """n and r of both products' normalisations, u = W_ih x (n_x, r_x) and v = W_hh h (n_h,
    r_h), for every step; zero-filled when padded (the weight gradients read every row)."""
    G, T, B, H = xw.shape
    return {
        "n_x_buf": kernels.buffer((G, T, B, H), xw, zero=padded),
        "r_x_buf": kernels.buffer((T, B, 1), xw, zero=padded),
        "n_h_buf": kernels.buffer((G, T, B, H), xw, zero=padded),
        "r_h_buf": kernels.buffer((T, B, 1), xw, zero=padded),
    }


def normalise_input(xw: Tensor, ex: dict, gamma: Tensor, beta: Tensor) -> None:
    """u = W_ih x (xw, every step) -> γ_x n^x + β in place, keeping n^x, r^x in ``ex``."""
    G, H = xw.shape[0], xw.shape[3]
    normalise_rows(xw, (0, 3), ex["n_x_buf"], ex["r_x_buf"].unsqueeze(0))
    torch.addcmul(beta.view(G, 1, 1, H), ex["n_x_buf"], gamma.view(G, 1, 1, H), out=xw)


def input_norm_back(tape, gamma: Tensor) -> Tensor:
    """δu = ∂L/∂(W_ih x) from δ(γ_x n^x + β) = tape.dG (the kernel computes it in its loop)."""
    if tape.compiled:
        return tape.back["dU_buf"]
    ex, G = tape.extra, tape.xw.shape[0]
    return norm_back(tape.dG * gamma.view(G, 1, 1, -1), ex["n_x_buf"],
                     ex["r_x_buf"].unsqueeze(0), (0, 3))
