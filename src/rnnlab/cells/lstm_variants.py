"""The LSTM variants of Greff et al. (2017), "LSTM: A Search Space Odyssey": the vanilla LSTM
(`rnnlab.cells.lstm`, with or without peepholes — "NP" is ``peephole=False``) with one piece
taken away or changed.

    NIG   no input gate          i_t = 1
    NFG   no forget gate         f_t = 1            (the 1997 cell's carousel, never reset)
    NOG   no output gate         o_t = 1
    NIAF  no input activation    g_t = a_g          (identity for the candidate's tanh)
    NOAF  no output activation   m_t = o_t ⊙ c_t    (identity for tanh(c_t))
    CIFG  coupled gates          i_t = 1 − f_t      (one gate decides what to forget and write)
    FGR   full gate recurrence   [a_i; a_f; a_o] += W_gr q_{t-1},  q_t = [i_t; f_t; o_t]
                                 (every gate sees every gate's previous activation)

Everything else is `rnnlab.cells.lstm`'s step:

    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t,   m_t = o_t ⊙ s(c_t),   h_t = W_hr m_t (or m_t)

with i, f, o = σ(a + p ⊙ c) where the gate exists (i and f peep at c_{t-1}, o at c_t),
g = tanh(a_g) (a_g for NIAF), s = tanh (identity for NOAF).

Parameters follow torch's naming with the gates that exist, in torch's order (i, f, g, o) with
the missing one left out: NIG and CIFG have gate blocks (f, g, o), NFG (i, g, o), NOG (i, f, g),
so ``weight_ih`` is (3·H, I), ``weight_hh`` (3·H, P), the biases (3·H,); the others keep four.
``weight_peephole`` has one H-block per sigmoid gate that exists, in the order (i, f, o). FGR
adds ``weight_gr`` (3·H, 3·H), rows and columns in the order (i, f, o), and carries q_t as a
third state the engine keeps beside h and c (zero at each sequence's start; the modules return
h and c only, so a single-step LSTMCell cannot carry it and refuses FGR).

Backward (δm_t from δh_t as in the plain cell; a gate that does not exist has no δa and its
constant in place of its value):

    δa_o = δm ⊙ s(c_t) ⊙ o(1 − o);        δc_t += δm ⊙ o ⊙ s'(c_t) + p_o ⊙ δa_o
    δi = δc_t ⊙ g,  δf = δc_t ⊙ c_{t-1},  δg = δc_t ⊙ i
    CIFG: δf −= δi  (i = 1 − f)
    δa_i = δi ⊙ i(1 − i),  δa_f = δf ⊙ f(1 − f),  δa_g = δg ⊙ g'(a_g)
    δc_{t-1} = δc_t ⊙ f + p_i ⊙ δa_i + p_f ⊙ δa_f,    δh_{t-1} = W_hhᵀ δa

FGR: δq_t (carried in from step t+1) adds to δi, δf and δo before their σ', and
δq_{t-1} = W_grᵀ [δa_i; δa_f; δa_o].

The compiled kernel (lstm.cpp) runs every variant, its loops templated on the variant; the
weight gradients are products after the loop, as for the layer norms.
"""

from __future__ import annotations

import torch

from .base import grad_buffer, state_buffer, weight_grad
from .lstm import LSTMMath

#: variant -> its gate blocks, in torch's order with the missing gate left out
VARIANT_GATES = {
    "NIG": ("f", "g", "o"), "NFG": ("i", "g", "o"), "NOG": ("i", "f", "g"),
    "NIAF": ("i", "f", "g", "o"), "NOAF": ("i", "f", "g", "o"), "CIFG": ("f", "g", "o"),
    "FGR": ("i", "f", "g", "o"),
}
#: the kernels' number of each variant (LSTMVariant in kernels/csrc/lstm.h; 0 the plain cell)
KERNEL_VARIANT = {name: k + 1 for k, name in enumerate(VARIANT_GATES)}


def check_variant(variant) -> str | None:
    """None, or one of `VARIANT_GATES` (case-insensitive); anything else is a clear error."""
    if variant is None:
        return None
    if not isinstance(variant, str) or variant.upper() not in VARIANT_GATES:
        known = ", ".join(VARIANT_GATES)
        raise ValueError(f"variant must be one of {known} (Greff et al. 2017; 'NP' is "
                         f"peephole=False), got {variant!r}")
    return variant.upper()


def peephole_gates(variant: str | None) -> tuple[str, ...]:
    """The sigmoid gates that exist, each with one block of peephole weights, in (i, f, o)."""
    gates = VARIANT_GATES.get(variant, ("i", "f", "g", "o"))
    return tuple(g for g in ("i", "f", "o") if g in gates)


class LSTMVariantMath(LSTMMath):
    param_names = LSTMMath.param_names + ("weight_gr",)
    fusable = False  # the weight gradients: products after the loop

    def __init__(self, variant: str, *, peephole: bool = False):
        super().__init__(peephole=peephole, truncated=False)
        self.variant = variant
        self.gates = VARIANT_GATES[variant]
        self.n_gates = len(self.gates)
        if variant == "FGR":  # q_t = [i_t; f_t; o_t], the gates' activations, is state
            self.state_names = ("h", "c", "q")

    def allocate(self, xw, inits, params, batch_sizes):
        tape = super().allocate(xw, inits[:2], params, batch_sizes)
        if len(inits) > 2:
            tape.states += (state_buffer(inits[2], xw.shape[1], tape.padded),)
        return tape

    def begin(self, xw, inits, params, batch_sizes):
        tape = self.allocate(xw, inits, params, batch_sizes)
        (Hs, Cs), H = tape.states[:2], xw.shape[3]
        ex, st = tape.extra, tape.steps
        ex.update({name: st(xw[k]) for k, name in enumerate(self.gates)})
        ex.update(a=st(xw, 1), h_prev=st(Hs[:-1]), h=st(Hs[1:]), c_prev=st(Cs[:-1]),
                  c=st(Cs[1:]), s=st(ex["tanh_c_buf"]), W_hh_t=params["weight_hh"].t(),
                  hw=xw.new_empty(xw.shape[2], self.n_gates * H))
        if "m_buf" in ex:
            ex.update(m=st(ex["m_buf"]), W_hr_t=params["weight_hr"].t())
        ex.update(self.drop_views(tape))
        if self.peephole:
            p = params["weight_peephole"].view(-1, H)
            ex.update({f"p_{g}": p[k] for k, g in enumerate(peephole_gates(self.variant))})
        if self.variant == "FGR":
            Q = tape.states[2]
            ex.update(q_prev=st(Q[:-1]), q=st(Q[1:]), W_gr_t=params["weight_gr"].t(),
                      a_ifo=[st(xw[k], 0) for k in (0, 1, 3)])
        return tape

    def step(self, tape, t):
        ex, v = tape.extra, self.variant
        a, c_prev, c = ex["a"][t], ex["c_prev"][t], ex["c"][t]
        hw = self.recurrent_product(ex, t)
        a.add_(hw.view(hw.shape[0], self.n_gates, -1).transpose(0, 1))
        if v == "FGR":  # [a_i; a_f; a_o] += W_gr q_{t-1}
            gq = (ex["q_prev"][t] @ ex["W_gr_t"]).chunk(3, dim=1)
            for a_k, add in zip(ex["a_ifo"], gq):
                a_k[t].add_(add)
        for name in ("i", "f"):
            if name in self.gates:
                if self.peephole:
                    ex[name][t].addcmul_(c_prev, ex[f"p_{name}"])
                ex[name][t].sigmoid_()
        g = ex["g"][t]
        if v != "NIAF":
            g.tanh_()
        f = ex["f"][t] if "f" in self.gates else None
        i = ex["i"][t] if "i" in self.gates else None
        if v == "CIFG":
            i = 1 - f
        if f is None:
            c.copy_(c_prev)
        else:
            torch.mul(c_prev, f, out=c)
        if i is None:
            c.add_(g)
        else:
            c.addcmul_(i, g)  # c_t = f c_{t-1} + i g
        s = ex["s"][t]
        if v == "NOAF":
            s.copy_(c)
        else:
            torch.tanh(c, out=s)
        m = ex["m"][t] if "m" in ex else ex["h"][t]
        if "o" in self.gates:
            o = ex["o"][t]
            if self.peephole:
                o.addcmul_(c, ex["p_o"])
            o.sigmoid_()
            torch.mul(o, s, out=m)
        else:
            m.copy_(s)
        if "m" in ex:
            torch.mm(m, ex["W_hr_t"], out=ex["h"][t])
        if v == "FGR":
            torch.cat((ex["i"][t], ex["f"][t], ex["o"][t]), dim=1, out=ex["q"][t])

    def begin_backward(self, tape):
        bk = tape.back = dict(tape.extra)
        st = tape.steps
        tape.dG = dG = grad_buffer(tape.xw, tape.padded)
        bk.update(dA=st(dG, 1), **{f"dA_{name}": st(dG[k]) for k, name in enumerate(self.gates)})
        if "m" in bk:
            bk["dh_buf"] = dh = grad_buffer(tape.states[0][1:], tape.padded)
            bk["dh"] = st(dh)

    def step_back(self, tape, t, carry):
        ex, p, v = tape.back, tape.params, self.variant
        dh, dc = carry[:2]
        dq = carry[2].chunk(3, dim=1) if v == "FGR" else (0, 0, 0)  # δq_t: δi, δf, δo
        dm = self.output_grad(ex, p, dh, t)
        s = ex["s"][t]
        ds = 1 if v == "NOAF" else 1 - s * s  # s'(c_t)
        if "o" in self.gates:
            o = ex["o"][t]
            torch.mul(dm * s + dq[2], o - o * o, out=ex["dA_o"][t])
            dc.add_(dm * o * ds)
            if self.peephole:
                dc.addcmul_(ex["dA_o"][t], ex["p_o"])
        else:
            dc.add_(dm * ds)
        c_prev, g = ex["c_prev"][t], ex["g"][t]
        f = ex["f"][t] if "f" in self.gates else None
        i = 1 - f if v == "CIFG" else (ex["i"][t] if "i" in self.gates else None)
        d_i = dc * g + dq[0]  # ∂L/∂i
        d_f = dc * c_prev + dq[1]  # ∂L/∂f
        if v == "CIFG":
            d_f = d_f - d_i  # i = 1 − f
        dA_g = ex["dA_g"][t]
        if i is None:
            dA_g.copy_(dc)
        else:
            torch.mul(dc, i, out=dA_g)
        if v != "NIAF":
            dA_g.mul_(1 - g * g)
        if "i" in self.gates:
            torch.mul(d_i, i - i * i, out=ex["dA_i"][t])
        if f is not None:
            torch.mul(d_f, f - f * f, out=ex["dA_f"][t])
            dc.mul_(f)  # the carousel (f = 1 without a forget gate)
        if self.peephole:
            for name in ("i", "f"):
                if name in self.gates:
                    dc.addcmul_(ex[f"dA_{name}"][t], ex[f"p_{name}"])
        n = dh.shape[0]
        da = ex["hw"][:n]
        da.view(n, self.n_gates, -1).copy_(ex["dA"][t].transpose(0, 1))
        torch.mm(da, p["weight_hh"], out=dh)
        if "drop" in ex:
            dh.mul_(ex["drop"][t])
        if v == "FGR":  # δq_{t-1} = W_grᵀ [δa_i; δa_f; δa_o]
            dA = ex["dA"][t]
            torch.mm(torch.cat((dA[0], dA[1], dA[3]), dim=1), p["weight_gr"], out=carry[2])

    def _variant_args(self, tape):
        fgr = []
        if self.variant == "FGR":
            fgr = [tape.params["weight_gr"].contiguous(), tape.states[2]]
        return KERNEL_VARIANT[self.variant], fgr

    def recurrent_grads(self, tape, db):
        Hs, Cs = tape.states[:2]
        dG = tape.dG
        grads = {"weight_hh": weight_grad(dG, self.dropped(Hs[:-1])), "bias_hh": db}
        if tape.params["weight_hr"] is not None:
            grads["weight_hr"] = weight_grad(tape.back["dh_buf"].unsqueeze(0),
                                             tape.extra["m_buf"])
        if self.variant == "FGR":  # Σ_t [δa_i; δa_f; δa_o]_t q_{t-1}ᵀ
            grads["weight_gr"] = weight_grad(dG[[0, 1, 3]], tape.states[2][:-1])
        if self.peephole:  # i and f peep at c_{t−1}, o at c̃_t
            seen = {"i": Cs[:-1], "f": Cs[:-1], "o": tape.candidate(1)}
            grads["weight_peephole"] = torch.cat([
                (dG[self.gates.index(g)] * seen[g]).sum((0, 1))
                for g in peephole_gates(self.variant)])
        return grads

    def autograd_step(self, a, states, params):
        h, c = states[:2]
        v = self.variant
        a = a + self.dropped(h) @ params["weight_hh"].t()
        pre = dict(zip(self.gates, a.chunk(self.n_gates, dim=-1)))
        if v == "FGR":  # every gate sees every gate's previous activation
            for name, add in zip("ifo", (states[2] @ params["weight_gr"].t()).chunk(3, -1)):
                pre[name] = pre[name] + add
        peep = {}
        if self.peephole:
            H = c.shape[-1]
            peep = dict(zip(peephole_gates(v), params["weight_peephole"].split(H)))
        act = {name: torch.sigmoid(pre[name] + (peep[name] * c if name in peep else 0))
               for name in ("i", "f") if name in pre}
        g = pre["g"] if v == "NIAF" else torch.tanh(pre["g"])
        f = act.get("f")
        i = 1 - f if v == "CIFG" else act.get("i")
        c_new = (c if f is None else f * c) + (g if i is None else i * g)
        s = c_new if v == "NOAF" else torch.tanh(c_new)
        if "o" in pre:
            o = torch.sigmoid(pre["o"] + (peep["o"] * c_new if "o" in peep else 0))
            m = o * s
        else:
            m = s
        W_hr = params["weight_hr"]
        h_new = m if W_hr is None else m @ W_hr.t()
        if v == "FGR":
            return h_new, c_new, torch.cat((act["i"], act["f"], o), dim=-1)
        return h_new, c_new
