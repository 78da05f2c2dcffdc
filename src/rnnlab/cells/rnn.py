"""Elman RNN cell.

Forward, one step:

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    h_t = φ(a_t),        φ ∈ {tanh, relu, sigmoid, linear}

Backward, with δh_t = ∂L/∂h_t (error from the output at t plus the error carried from t+1):

    δa_t      = φ'(a_t) ⊙ δh_t           φ' read off h_t: tanh 1 − h², sigmoid h(1 − h),
                                          relu [h > 0], linear 1
    δh_{t-1}  = W_hhᵀ δa_t               (carried to step t − 1)
    ∂L/∂W_hh  = Σ_t δa_t h_{t-1}ᵀ,   ∂L/∂b_hh = Σ_t δa_t     (after the loop)

Recurrent dropout (`rnnlab.cells.base.Masks`): h_{t-1} ⊙ drop in place of h_{t-1} in the
product, so δh_{t-1} = (W_hhᵀ δa_t) ⊙ drop and ∂L/∂W_hh reads h_{t-1} ⊙ drop. With zoneout,
φ' is read off the cell's own h̃_t (the engine mixes h_t after the step).

sigmoid and linear are not in torch.nn.RNN; they are here because the stability analysis of
the lecture studies exactly these recursions (h(t) = σ(w h(t-1) + c x(t)), h(t) = W h(t-1) + C x).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import CellMath, Tape, grad_buffer, kernel_sizes, state_buffer, weight_grad

NONLINEARITIES = ("tanh", "relu", "sigmoid", "linear")


def _derivative_from_output(h: Tensor, nonlinearity: str) -> Tensor:
    if nonlinearity == "tanh":
        return 1 - h * h
    if nonlinearity == "sigmoid":
        return h * (1 - h)
    if nonlinearity == "relu":
        return (h > 0).to(h.dtype)
    return torch.ones_like(h)


#: φ as out-of-place ops, for `autograd_step`
_ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "linear": lambda a: a}


class RNNMath(CellMath):
    n_gates = 1

    def __init__(self, nonlinearity: str = "tanh"):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"unknown nonlinearity {nonlinearity!r}; expected one of {NONLINEARITIES}"
            )
        self.nonlinearity = nonlinearity
        # in-place φ, applied to the pre-activation already written into h_t's slot
        self._act = {
            "tanh": torch.Tensor.tanh_,
            "relu": torch.Tensor.relu_,
            "sigmoid": torch.Tensor.sigmoid_,
            "linear": lambda a: a,
        }[nonlinearity]

    def allocate(self, xw, inits, params, batch_sizes):
        (h0,) = inits
        Hs = state_buffer(h0, xw.shape[1], batch_sizes is not None)
        return Tape(xw=xw, states=(Hs,), params=params, batch_sizes=batch_sizes)

    def begin(self, xw, inits, params, batch_sizes):
        tape = self.allocate(xw, inits, params, batch_sizes)
        (Hs,) = tape.states
        tape.extra.update(
            a=tape.steps(xw[0]), h_prev=tape.steps(Hs[:-1]), h=tape.steps(Hs[1:]),
            W_hh_t=params["weight_hh"].t(),
        )
        tape.extra.update(self.drop_views(tape))  # h_{t−1} ⊙ drop, the product's input
        return tape

    def step(self, tape, t):
        ex = tape.extra
        h = ex["h"][t]  # a_t = xw_t + W_hh h_{t-1}:
        torch.addmm(ex["a"][t], self.product_input(ex, t), ex["W_hh_t"], out=h)
        self._act(h)  # h_t = φ(a_t)

    def begin_backward(self, tape):
        bk = tape.back = dict(tape.extra)  # forward views + what only backward needs
        dphi = _derivative_from_output(tape.candidate(0), self.nonlinearity)
        tape.dG = grad_buffer(tape.xw, tape.padded)
        bk.update(dphi=tape.steps(dphi), dA=tape.steps(tape.dG[0]))

    def step_back(self, tape, t, carry):
        ex = tape.back
        dh, dA = carry[0], ex["dA"][t]
        torch.mul(dh, ex["dphi"][t], out=dA)  # undoes h_t = φ(a_t)
        torch.mm(dA, tape.params["weight_hh"], out=dh)  # undoes a_t += W_hh h_{t-1}
        if "drop" in ex:
            dh.mul_(ex["drop"][t])

    def autograd_step(self, a, states, params):
        (h,) = states
        if params["weight_hh"] is not None:
            a = a + self.dropped(h) @ params["weight_hh"].t()
        return (_ACT[self.nonlinearity](a),)

    def kernel_forward(self, tape, threads):
        torch.ops.rnnlab.rnn_forward(tape.xw, tape.states[0],
                                     tape.params["weight_hh"].contiguous(), kernel_sizes(tape),
                                     self.masks.kernel_args(tape),
                                     NONLINEARITIES.index(self.nonlinearity), threads)

    def kernel_backward(self, tape, d_out, d_finals, threads):
        tape.dG = grad_buffer(tape.xw, tape.padded)
        dh0 = torch.empty_like(d_finals[0])
        torch.ops.rnnlab.rnn_backward(tape.xw, tape.states[0],
                                      tape.params["weight_hh"].contiguous(), kernel_sizes(tape),
                                      self.masks.kernel_args(tape),
                                      NONLINEARITIES.index(self.nonlinearity), d_out,
                                      d_finals[0], tape.dG, dh0, threads)
        return [dh0]

    def recurrent_grads(self, tape, db):
        return {"weight_hh": weight_grad(tape.dG, self.dropped(tape.states[0][:-1])),
                "bias_hh": db}
