"""Nonlinear recursions h(t) = f(w h(t−1) + c x(t)): where the linear picture bends.

Bounded squashers (sigmoid, tanh) cannot blow up: they saturate, and a saturated unit passes
almost no gradient (f' → 0). relu is linear for positive values, so it blows up like w^t when
w > 1 and dies (stays at 0) from a negative start. `classify` names what a trajectory does and
at which step.
"""

from __future__ import annotations

import torch
from torch import Tensor

FUNCTIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
             "linear": lambda a: a}


def recursion(f: str, w, c: float = 1.0, h0=0.0, x: Tensor | None = None,
              steps: int = 50) -> Tensor:
    """h(0..steps) of h(t) = f(w h(t−1) + c x(t)); scalar w (and h0), or a matrix w with a
    vector h0. x (steps,) or (steps, n), default no input. Returns (steps + 1, ...)."""
    if f not in FUNCTIONS:
        raise ValueError(f"unknown function {f!r}; expected one of {tuple(FUNCTIONS)}")
    fn = FUNCTIONS[f]
    w = torch.as_tensor(w, dtype=torch.float64)
    h = torch.as_tensor(h0, dtype=torch.float64).clone()
    out = [h]
    for t in range(steps):
        drive = 0.0 if x is None else c * torch.as_tensor(x[t], dtype=torch.float64)
        a = w @ h if w.dim() == 2 else w * h
        h = fn(a + drive)
        out.append(h)
    return torch.stack(out)


def classify(trajectory: Tensor, *, blowup: float = 1e6, tol: float = 1e-3) -> dict:
    """What a (steps + 1, ...) trajectory does and when: 'blows up' (|h| > blowup), 'dies'
    (h = 0 and stays), 'saturates' (a squasher pinned within tol of a bound, or a fixed
    point reached), or 'oscillates' / 'moving' otherwise."""
    h = trajectory.reshape(trajectory.shape[0], -1).abs().amax(1) if trajectory.dim() > 1 \
        else trajectory.abs()
    big = torch.nonzero(h > blowup)
    if len(big):
        return {"behaviour": "blows up", "step": int(big[0])}
    zero = torch.nonzero(h == 0)
    if len(zero) and bool((h[int(zero[0]) :] == 0).all()) and int(zero[0]) > 0:
        return {"behaviour": "dies", "step": int(zero[0])}
    diffs = (trajectory[1:] - trajectory[:-1]).reshape(trajectory.shape[0] - 1, -1)
    settled = diffs.abs().amax(1) < tol
    for t in range(len(settled)):
        if bool(settled[t:].all()):
            return {"behaviour": "saturates", "step": t + 1,
                    "value": trajectory[t + 1].tolist()}
    signs = torch.sign(diffs[:, 0])
    flips = int((signs[1:] * signs[:-1] < 0).sum())
    return {"behaviour": "oscillates" if flips > len(signs) // 2 else "moving", "step": None}


def sweep(f: str, ws, h0s=(-1.0, 1.0), steps: int = 50) -> list[dict]:
    """The scalar recursion for every w in ws and start in h0s, classified."""
    rows = []
    for w in ws:
        for h0 in h0s:
            traj = recursion(f, float(w), h0=float(h0), steps=steps)
            rows.append({"f": f, "w": float(w), "h0": float(h0), "trajectory": traj,
                         **classify(traj)})
    return rows
