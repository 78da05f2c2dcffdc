"""Naive per-step autograd versions of every cell, written from the equations.

Independent of the engine: one sequence at a time, a Python loop over time, torch autograd for
the gradients. The 1997 truncation is expressed by detaching what the gates see of the past.
"""

from __future__ import annotations

import torch
from torch import Tensor

ACT = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "linear": lambda a: a,
}


def _lin(W, x, b=None):
    y = x @ W.t()
    return y if b is None else y + b


def _drop(h, drop):
    """Recurrent dropout: what the recurrent product sees of h."""
    return h if drop is None else h * drop


def rnn_step(p, x, state, nonlinearity="tanh", drop=None):
    (h,) = state
    return (ACT[nonlinearity](_lin(p["weight_ih"], x, p.get("bias_ih"))
                              + _lin(p["weight_hh"], _drop(h, drop), p.get("bias_hh"))),)


def _ln(v, gamma, beta):
    """Layer norm over the last axis, written out (biased variance, ε = 1e-5)."""
    mu = v.mean(-1, keepdim=True)
    var = ((v - mu) ** 2).mean(-1, keepdim=True)
    return gamma * (v - mu) / torch.sqrt(var + 1e-5) + beta


def lstm_step(p, x, state, peephole=False, truncated=False, drop=None, layer_norm=False):
    h, c = state
    H = c.shape[-1]
    # the 1997 truncation: what the gates see of the past carries no gradient
    h_in = _drop(h.detach() if truncated else h, drop)
    c_in = c.detach() if truncated else c
    if layer_norm:  # Ba et al.: each product normalised over its gate vector, then the biases
        a = (_ln(_lin(p["weight_ih"], x), p["weight_ln_ih"], p["bias_ln_ih"])
             + _ln(_lin(p["weight_hh"], h_in), p["weight_ln_hh"], p["bias_ln_hh"]))
        if p.get("bias_ih") is not None:
            a = a + p["bias_ih"] + p["bias_hh"]
    else:
        a = _lin(p["weight_ih"], x, p.get("bias_ih")) + _lin(p["weight_hh"], h_in,
                                                              p.get("bias_hh"))
    a_i, a_f, a_g, a_o = a.split(H, dim=-1)
    if peephole:
        w = p["weight_peephole"]
        a_i = a_i + w[:H] * c_in
        a_f = a_f + w[H : 2 * H] * c_in
    i, f, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g)
    c_new = f * c + i * g
    if peephole:
        a_o = a_o + w[2 * H :] * (c_new.detach() if truncated else c_new)
    o = torch.sigmoid(a_o)
    m = o * torch.tanh(_ln(c_new, p["weight_ln_c"], p["bias_ln_c"]) if layer_norm else c_new)
    h_new = m @ p["weight_hr"].t() if p.get("weight_hr") is not None else m
    return h_new, c_new


def lstm_variant_step(p, x, state, variant, peephole=False, drop=None):
    """Greff et al.'s (2017) variants, from their definitions: a missing gate is its constant
    (i = 1, f = 1, o = 1; CIFG i = 1 − f), NIAF/NOAF replace tanh by the identity; FGR's
    state is (h, c, q), q the previous step's [i; f; o], which every gate sees through W_gr."""
    h, c = state[:2]
    H = c.shape[-1]
    names = {"NIG": "fgo", "NFG": "igo", "NOG": "ifg", "CIFG": "fgo"}.get(variant, "ifgo")
    a = _lin(p["weight_ih"], x, p.get("bias_ih")) + _lin(p["weight_hh"], _drop(h, drop),
                                                          p.get("bias_hh"))
    pre = dict(zip(names, a.split(H, dim=-1)))
    if variant == "FGR":
        W_i, W_f, W_o = p["weight_gr"].split(H)  # rows of the i, f and o gates
        pre["i"] = pre["i"] + _lin(W_i, state[2])
        pre["f"] = pre["f"] + _lin(W_f, state[2])
        pre["o"] = pre["o"] + _lin(W_o, state[2])
    peeps = dict(zip([g for g in "ifo" if g in names], p["weight_peephole"].split(H))) \
        if peephole else {}
    one = torch.ones_like(c)
    f = torch.sigmoid(pre["f"] + peeps.get("f", 0) * c) if "f" in pre else one
    i = torch.sigmoid(pre["i"] + peeps.get("i", 0) * c) if "i" in pre else one
    if variant == "CIFG":
        i = 1 - f
    g = pre["g"] if variant == "NIAF" else torch.tanh(pre["g"])
    c_new = f * c + i * g
    o = torch.sigmoid(pre["o"] + peeps.get("o", 0) * c_new) if "o" in pre else one
    m = o * (c_new if variant == "NOAF" else torch.tanh(c_new))
    h_new = m @ p["weight_hr"].t() if p.get("weight_hr") is not None else m
    if variant == "FGR":
        return h_new, c_new, torch.cat((i, f, o), dim=-1)
    return h_new, c_new


def gru_step(p, x, state, reset_after=True, drop=None, layer_norm=False):
    (h_self,) = state
    h = _drop(h_self, drop)  # what the products see; the interpolation sees h_self
    H = h.shape[-1]
    W_hh, b_hh = p["weight_hh"], p.get("bias_hh")
    if layer_norm:  # Ba et al., torch's form: each product normalised over 3H, then the biases
        xi = _ln(_lin(p["weight_ih"], x), p["weight_ln_ih"], p["bias_ln_ih"])
        hh = _ln(_lin(W_hh, h), p["weight_ln_hh"], p["bias_ln_hh"])
        if p.get("bias_ih") is not None:
            xi, hh = xi + p["bias_ih"], hh + b_hh
        x_r, x_z, x_n = xi.split(H, dim=-1)
        h_r, h_z, h_n = hh.split(H, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return ((1 - z) * n + z * h_self,)
    xi = _lin(p["weight_ih"], x, p.get("bias_ih"))
    x_r, x_z, x_n = xi.split(H, dim=-1)
    W_hr, W_hz, W_hn = W_hh.split(H)
    b_hr, b_hz, b_hn = (None, None, None) if b_hh is None else b_hh.split(H)
    r = torch.sigmoid(x_r + _lin(W_hr, h, b_hr))
    z = torch.sigmoid(x_z + _lin(W_hz, h, b_hz))
    if reset_after:
        n = torch.tanh(x_n + r * _lin(W_hn, h, b_hn))
    else:
        n = torch.tanh(x_n + _lin(W_hn, r * h, b_hn))
    return ((1 - z) * n + z * h_self,)


def run(step, layer_params, x, inits, lengths, num_layers, bidirectional, masks=None):
    """Stacked, optionally bidirectional network; one sequence at a time, own length each.

    layer_params[k] are the parameters of layer-direction k; inits[j] (L·D, B, size).
    masks[k] (optional) are layer-direction k's recurrent-dropout and zoneout masks
    (rnnlab.cells.base.Masks, batch in input order, zoneout masks indexed by time): the step
    gets ``drop=`` its row, and each state is then s = z s_prev + (1 − z) s_new.
    Returns output (T, B, D·H) zero past each length, and finals (L·D, B, size) per state.
    """
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    outputs, finals = [], [[[None] * B for _ in range(num_layers * D)] for _ in inits]
    for b in range(B):
        L = int(lengths[b]) if lengths is not None else T
        seq = x[:L, b]
        for layer in range(num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                state = tuple(s[k, b] for s in inits)
                order = range(L - 1, -1, -1) if d == 1 else range(L)
                ys = [None] * L
                for t in order:
                    if masks is None:
                        state = step(layer_params[k], seq[t], state)
                    else:
                        state = _masked_step(step, layer_params[k], seq[t], state, masks[k],
                                             t, b)
                    ys[t] = state[0]
                outs.append(torch.stack(ys))
                for j, s in enumerate(state):
                    finals[j][k][b] = s
            seq = torch.cat(outs, dim=-1)
        pad = seq.new_zeros(T - L, seq.shape[-1])
        outputs.append(torch.cat((seq, pad)))
    out = torch.stack(outputs, dim=1)
    return out, tuple(torch.stack([torch.stack(f) for f in fs]) for fs in finals)


def _masked_step(step, p, x, state, masks, t, b):
    drop = None if masks.drop is None else masks.drop[b]
    new = step(p, x, state, drop=drop) if drop is not None else step(p, x, state)
    out = []
    for s_prev, s_new, z in zip(state, new, masks.zone + (None,) * len(state)):
        if z is not None:
            z = z[t if z.shape[0] > 1 else 0, b if z.shape[1] > 1 else 0]
            s_new = z * s_prev + (1 - z) * s_new
        out.append(s_new)
    return tuple(out)


MATH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_peephole",
              "weight_ln_ih", "bias_ln_ih", "weight_ln_hh", "bias_ln_hh", "weight_ln_c",
              "bias_ln_c", "weight_gr")


def module_params(module, num_layers, bidirectional) -> list[dict[str, Tensor]]:
    """Parameters of each layer-direction under their math names (weight_ih, ...)."""
    D = 2 if bidirectional else 1
    out = []
    for layer in range(num_layers):
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            named = dict(module.named_parameters())
            out.append({n: named[n + sfx] for n in MATH_NAMES if n + sfx in named})
    return out


SQUASH = {
    "g2": lambda a: 4 * torch.sigmoid(a) - 2,
    "h1": lambda a: 2 * torch.sigmoid(a) - 1,
    "logistic": torch.sigmoid,
    "tanh": torch.tanh,
    "identity": lambda a: a,
}


def lstm1997_step(p, x, state, *, K, S, output_gate=True, gate_recurrence=True, g="g2",
                  h="h1", truncated=True, forget_gate=False):
    """One step of the 1997 LSTM from App. A.1, one unit type at a time (``forget_gate``:
    Gers et al. 2000's, s_c = y^φ s_c(t-1) + y^in g(net_c))."""
    y, s = state
    C = K * S
    src = y.detach() if truncated else y  # truncation: net inputs carry no error back in time

    def net(rows, bias_name):
        a = x @ p["weight_ih"][rows].t()
        if p.get("weight_hh") is not None:
            a = a + src @ p["weight_hh"][rows].t()
        if p.get(bias_name) is not None:
            a = a + p[bias_name]
        return a

    gK = (1 + output_gate + forget_gate) * K
    y_in = torch.sigmoid(net(slice(0, K), "bias_in"))
    y_out = torch.sigmoid(net(slice(K, 2 * K), "bias_out")) if output_gate else None
    y_f = torch.sigmoid(net(slice(gK - K, gK), "bias_forget")) if forget_gate else None
    g_c = SQUASH[g](net(slice(gK, gK + C), "bias_cell"))
    kept = s * y_f.repeat_interleave(S, dim=-1) if forget_gate else s
    s_new = kept + y_in.repeat_interleave(S, dim=-1) * g_c  # the carousel
    y_c = SQUASH[h](s_new)
    if output_gate:
        y_c = y_out.repeat_interleave(S, dim=-1) * y_c
    parts = [y_c]
    if gate_recurrence:
        parts += [y_in] + ([y_out] if output_gate else []) + ([y_f] if forget_gate else [])
    return torch.cat(parts, dim=-1), s_new


def leaves(x, hx, m) -> list[Tensor]:
    """What a module's gradient is taken with respect to: input, initial states, parameters."""
    return [x, *(hx if isinstance(hx, tuple) else (hx,)), *m.parameters()]


def loss_of(out, finals) -> Tensor:
    """A loss that weights every output and final state differently (all paths exercised)."""
    finals = finals if isinstance(finals, tuple) else (finals,)
    w = torch.linspace(-1, 2, out.numel(), dtype=out.dtype).view_as(out)
    total = (out * w).sum() + (out ** 2).sum() * 0.1
    for k, f in enumerate(finals):
        total = total + (f * (k + 1.5)).sum() + (f ** 3).sum()
    return total


def assert_matches(out, finals, ref_out, ref_finals, wrt) -> None:
    """A module's outputs, final states and gradients (of `loss_of`, w.r.t. ``wrt``) equal the
    oracle's (float64: 1e-10 forward, 1e-9 gradients)."""
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    for a, b in zip(finals if isinstance(finals, tuple) else (finals,), ref_finals):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    got = torch.autograd.grad(loss_of(out, finals), wrt, allow_unused=True)
    ref = tuple(ref_finals) if len(ref_finals) > 1 else ref_finals[0]
    want = torch.autograd.grad(loss_of(ref_out, ref), wrt, allow_unused=True)
    for g, w, leaf in zip(got, want, wrt):
        g = torch.zeros_like(leaf) if g is None else g
        w = torch.zeros_like(leaf) if w is None else w
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)


def gradcheck_module(m, x, hx, lengths, seed: int = 3) -> bool:
    """torch.autograd.gradcheck of a recurrent module's outputs and final states w.r.t. its
    input, initial states and parameters (the module reseeded before each evaluation, so
    recurrent dropout and zoneout draw the same masks every time)."""
    names = [n for n, _ in m.named_parameters()]
    n_states = 2 if isinstance(hx, tuple) else 1

    def f(x, *rest):
        torch.manual_seed(seed)
        states, params = rest[:n_states], dict(zip(names, rest[n_states:]))
        out, finals = torch.func.functional_call(
            m, params, (x, tuple(states) if n_states == 2 else states[0]), {"lengths": lengths})
        return (out, *(finals if isinstance(finals, tuple) else (finals,)))

    args = tuple(t.detach().requires_grad_() for t in leaves(x, hx, m))
    return torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-5, rtol=1e-4)


def assert_func_and_double_backward(m, x, hx, lengths, seed: int = 5) -> list[Tensor]:
    """torch.func.grad, the hand-written backward and a differentiable (create_graph) backward
    give the same parameter gradients (the same masks: reseeded before each); returns the
    differentiable ones."""
    params = dict(m.named_parameters())

    def loss(params):
        torch.manual_seed(seed)
        out, finals = torch.func.functional_call(m, params, (x.detach(), hx),
                                                 {"lengths": lengths})
        return loss_of(out, finals)

    g_func = torch.func.grad(loss)(params)
    g_hand = torch.autograd.grad(loss(params), list(params.values()))
    torch.manual_seed(seed)
    out, finals = m(x, hx, lengths=lengths)
    g_graph = torch.autograd.grad(loss_of(out, finals), list(params.values()), create_graph=True)
    for a, b, c in zip(g_func.values(), g_hand, g_graph):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(c, b, rtol=1e-9, atol=1e-11)
    assert g_graph[0].requires_grad  # a gradient penalty can be differentiated
    return list(g_graph)


def make_module(cls, H=4, **options):
    """A 2-layer bidirectional float64 module of input size 3, peepholes (which start near 0)
    spread over [−1, 1] so that they matter."""
    m = cls(3, H, num_layers=2, bidirectional=True, dtype=torch.float64, **options)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "peephole" in name:
                p.uniform_(-1, 1)
    return m


def module_inputs(m, T=6, B=3, lengths=True):
    """x (T, B, 3), initial states for `make_module`'s modules, and lengths (or None)."""
    x = torch.randn(T, B, 3, dtype=torch.float64, requires_grad=True)
    out = getattr(m, "proj_size", 0) or m.hidden_size
    h0 = torch.randn(4, B, out, dtype=torch.float64, requires_grad=True)
    hx = h0
    if m._has_cell_state:
        hx = (h0, torch.randn(4, B, m.hidden_size, dtype=torch.float64, requires_grad=True))
    return x, hx, (torch.tensor([T, 2, 4][:B]) if lengths else None)
