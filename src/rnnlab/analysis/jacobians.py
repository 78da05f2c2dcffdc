"""Step Jacobians of the cells, written from their equations, and what they tell: how a
perturbation of the state (or an error signal) grows or fades through time.

For a state s_t = F(s_{t-1}, x_t) the step Jacobian is J_t = ∂s_t/∂s_{t-1}; a perturbation at
step t reaches step T as J_T ⋯ J_{t+1}, and an error travels back through the transposes. For
each family (state order as the cells: RNN/GRU s = h, LSTM s = [h, c]):

    RNN   J = diag(φ'(a_t)) W_hh
    LSTM  ∂c_t/∂h = diag(c_{t-1} f') W_hf + diag(g i') W_hi + diag(i g') W_hg
          ∂c_t/∂c = diag(f_t)                          (+ peephole terms)
          ∂h_t/∂· = diag(o (1 − tanh²c_t)) ∂c_t/∂· + diag(tanh c_t o') ∂a_o/∂·
    GRU   J = diag(z) + diag(1 − z) ∂n/∂h + diag((h_{t-1} − n) z') W_hz

(f' = f(1 − f) for a gate f, g' = 1 − g²). ∂c_t/∂c_{t-1} = diag(f_t) is the carousel: with
f ≈ 1 it neither grows nor fades, which is why the LSTM's error does not vanish.

With zoneout (as in evaluation, s_t = z s_{t−1} + (1 − z) s̃_t) the step Jacobian is
diag(z) + diag(1 − z) J̃_t, J̃_t the cell's own, taken at its own new state s̃_t.

The largest Lyapunov exponents, lim (1/T) log of the growth of k-volumes under J_T ⋯ J_1, are
computed by the QR method (re-orthonormalise every ``reorth`` steps, after a transient).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from ..cells import GRUMath, LSTMMath, RNNMath
from ..cells.base import Tape
from ..cells.rnn import _derivative_from_output


def _rows(v: Tensor, W: Tensor) -> Tensor:
    """diag(v) W for a batch of vectors v (B, n) and one matrix W (n, m): (B, n, m)."""
    return v.unsqueeze(-1) * W


def step_jacobian(cell, params: dict, tape: Tape, t: int, x: Tensor | None = None) -> Tensor:
    """J_t = ∂s_t/∂s_{t-1} for every sequence of the batch: (B, S, S), the states concatenated
    in the cell's order. Written out for RNN, LSTM (the plain cell, no projection) and GRU (the
    plain cell); for other cells (the 1997 LSTM, projected, layer-normalised or variant LSTMs,
    the layer-normalised GRU) it is taken by autograd through one engine step, which needs the
    layer's input x (T, B, I)."""
    if not isinstance(cell, RNNMath) and type(cell) is not GRUMath and not (
            type(cell) is LSTMMath and params.get("weight_hr") is None):
        return _autograd_step_jacobian(cell, params, tape, t, x)
    J = _cell_jacobian(cell, params, tape, t)
    if not cell.masks.zoned:
        return J
    z = torch.cat([J.new_zeros(s.shape[-1]) if k >= len(cell.masks.zone) or
                   cell.masks.zone[k] is None else cell.masks.zone[k].reshape(-1)
                   for k, s in enumerate(tape.states)])
    return torch.diag_embed(z.expand(J.shape[:-1])) + (1 - z).unsqueeze(-1) * J


def _cell_jacobian(cell, params: dict, tape: Tape, t: int) -> Tensor:
    """J̃_t of the written-out families, at the cell's own new state."""
    W = params["weight_hh"]
    if isinstance(cell, RNNMath):
        h = tape.candidate(0)[t]
        return _rows(_derivative_from_output(h, cell.nonlinearity), W)
    if isinstance(cell, LSTMMath):
        i, f, g, o = (a[t] for a in tape.xw)
        c_prev, c = tape.states[1][t], tape.candidate(1)[t]
        tc = torch.tanh(c)
        W_i, W_f, W_g, W_o = W.chunk(4)
        di, df, dg, do = i * (1 - i), f * (1 - f), 1 - g * g, o * (1 - o)
        dc_dh = _rows(c_prev * df, W_f) + _rows(g * di, W_i) + _rows(i * dg, W_g)
        dc_dc = f.clone()
        dh_via_c = o * (1 - tc * tc)
        if cell.peephole:
            p_i, p_f, p_o = params["weight_peephole"].chunk(3)
            dc_dc = dc_dc + c_prev * df * p_f + g * di * p_i
            dh_via_c = dh_via_c + tc * do * p_o
        dh_dh = _rows(tc * do, W_o) + dh_via_c.unsqueeze(-1) * dc_dh
        dh_dc = torch.diag_embed(dh_via_c * dc_dc)
        top = torch.cat((dh_dh, dh_dc), dim=2)
        bottom = torch.cat((dc_dh, torch.diag_embed(dc_dc)), dim=2)
        return torch.cat((top, bottom), dim=1)
    if isinstance(cell, GRUMath):
        r, z, n = (a[t] for a in tape.xw)
        h_prev = tape.states[0][t]
        W_r, W_z, W_n = W.chunk(3)
        dr = _rows(r * (1 - r), W_r)  # ∂r/∂h
        if cell.reset_after:
            hw_n = tape.extra["hw_buf"][2][t]
            dn_pre = r.unsqueeze(-1) * W_n + hw_n.unsqueeze(-1) * dr
        else:
            dn_pre = torch.matmul(W_n, torch.diag_embed(r) + h_prev.unsqueeze(-1) * dr)
        dn = (1 - n * n).unsqueeze(-1) * dn_pre
        return (torch.diag_embed(z) + (1 - z).unsqueeze(-1) * dn
                + _rows((h_prev - n) * z * (1 - z), W_z))
    raise ValueError(f"no step Jacobian for {type(cell).__name__}")


def _autograd_step_jacobian(cell, params, tape, t, x) -> Tensor:
    """J_t by autograd through one step of the engine, with the cell's exact (untruncated)
    backward pass: the true derivative, whatever learning rule the model was trained with."""
    from ..engine import run_layer

    if x is None:
        raise ValueError(f"the step Jacobian of {type(cell).__name__} needs the layer's input")
    exact = copy.copy(cell)
    if hasattr(exact, "truncated"):
        exact.truncated = False
    sizes = [s.shape[-1] for s in tape.states]
    prev = torch.cat([s[t] for s in tape.states], dim=-1)  # (B, S)
    full = {n: params.get(n) for n in cell.param_names}

    def step(state, x_t):
        inits = tuple(p.unsqueeze(0) for p in state.split(sizes))
        _, finals = run_layer(exact, x_t.view(1, 1, -1), inits, full)
        return torch.cat([f[0] for f in finals])

    return torch.stack([
        torch.autograd.functional.jacobian(lambda s, x_t=x[t, b]: step(s, x_t), prev[b])
        for b in range(prev.shape[0])])


def jacobian_sequence(cell, params: dict, tape: Tape, x: Tensor | None = None) -> Tensor:
    """Every step Jacobian of a trajectory: (T, B, S, S)."""
    T = tape.states[0].shape[0] - 1
    return torch.stack([step_jacobian(cell, params, tape, t, x) for t in range(T)])


def product_norms(J: Tensor, block: int | None = None) -> Tensor:
    """‖∂s_T/∂s_t‖₂ (the largest singular value) for t = T … 0 from step Jacobians J (T, B, S, S):
    (T + 1, B), entry k the norm at lag k. ``block`` keeps only the first ``block`` rows and
    columns (∂h_T/∂h_t for an LSTM's [h, c] state)."""
    T, B, S, _ = J.shape
    M = torch.eye(S, dtype=J.dtype).expand(B, S, S)
    norms = []
    for k in range(T + 1):
        part = M if block is None else M[:, :block, :block]
        norms.append(torch.linalg.matrix_norm(part, ord=2))
        if k < T:
            M = M @ J[T - 1 - k]  # ∂s_T/∂s_{T-k-1} = ∂s_T/∂s_{T-k} J_{T-k}
    return torch.stack(norms)


def lyapunov(J: Tensor, k: int | None = None, *, transient: int = 0, reorth: int = 1,
             generator: torch.Generator | None = None) -> Tensor:
    """The k largest Lyapunov exponents (per step, natural log) of the products of J (T, B, S,
    S), by the QR method: (B, k), decreasing."""
    T, B, S, _ = J.shape
    k = S if k is None else k
    if not 1 <= k <= S:
        raise ValueError(f"k must be in 1..{S}, got {k}")
    if transient >= T:
        raise ValueError(f"transient ({transient}) must be shorter than the trajectory ({T})")
    gen = generator or torch.Generator().manual_seed(0)
    Q = torch.linalg.qr(torch.randn(S, k, generator=gen, dtype=J.dtype))[0].expand(B, S, k)
    for t in range(transient):  # let Q align with the most expanding directions first
        Q = torch.linalg.qr(J[t] @ Q)[0]
    total = torch.zeros(B, k, dtype=J.dtype)
    for start in range(transient, T, reorth):
        for t in range(start, min(start + reorth, T)):
            Q = J[t] @ Q
        Q, R = torch.linalg.qr(Q)
        total += torch.log(torch.diagonal(R, dim1=1, dim2=2).abs().clamp_min(1e-300))
    return (total / (T - transient)).sort(dim=1, descending=True).values


def largest_lyapunov_brute_force(J: Tensor, *, transient: int = 0,
                                 generator: torch.Generator | None = None) -> Tensor:
    """The largest exponent by following one random vector (renormalised every step): (B,)."""
    T, B, S, _ = J.shape
    gen = generator or torch.Generator().manual_seed(1)
    v = torch.randn(B, S, 1, generator=gen, dtype=J.dtype)
    v = v / v.norm(dim=1, keepdim=True)
    total = torch.zeros(B, dtype=J.dtype)
    for t in range(T):
        v = J[t] @ v
        n = v.norm(dim=1, keepdim=True)
        if t >= transient:
            total += torch.log(n.squeeze(-1).squeeze(-1).clamp_min(1e-300))
        v = v / n
    return total / (T - transient)
