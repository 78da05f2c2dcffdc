"""Linear recursions, the lecture's starting point.

    h(t) = W h(t−1) + C x(t)

With one input at t = 0 the response is h(t) = W^t C x(0): along each eigenvector it grows or
decays like λ^t, so the recursion is BIBO-stable iff the spectral radius max|λ| < 1; complex
eigenvalues λ = ρ e^{±iθ} make it oscillate with period 2π/θ while the envelope follows ρ^t.

A scalar multi-tap recursion h(t) = Σ_k a_k h(t−k) + x(t) is the same thing in companion form:
its modes are the roots z of z^K − a_1 z^{K−1} − … − a_K = 0, and it is stable iff all |z| < 1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def spectrum(W: Tensor) -> dict:
    """Eigenvalues (complex, by decreasing modulus), spectral radius and singular values."""
    W = torch.as_tensor(W, dtype=torch.float64)
    if W.dim() != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be a square matrix, got shape {tuple(W.shape)}")
    eig = torch.linalg.eigvals(W)
    eig = eig[torch.argsort(eig.abs(), descending=True)]
    sv = torch.linalg.svdvals(W)
    return {"eigenvalues": eig, "spectral_radius": float(eig.abs().max()),
            "singular_values": sv, "stable": bool(eig.abs().max() < 1)}


def linear_response(W: Tensor, C: Tensor | None = None, x0: Tensor | None = None,
                    steps: int = 50) -> Tensor:
    """h(t) for t = 0..steps, with h(0) = C x(0) and no input afterwards: (steps + 1, n)."""
    W = torch.as_tensor(W, dtype=torch.float64)
    n = W.shape[0]
    C = torch.eye(n, dtype=torch.float64) if C is None else torch.as_tensor(C, dtype=torch.float64)
    x0 = torch.ones(C.shape[1], dtype=torch.float64) if x0 is None else torch.as_tensor(
        x0, dtype=torch.float64)
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    out = torch.empty(steps + 1, n, dtype=torch.float64)
    out[0] = C @ x0
    for t in range(1, steps + 1):
        out[t] = W @ out[t - 1]
    return out


def _taps(coeffs) -> np.ndarray:
    """{lag: a} or [a_1, a_2, ...] -> the dense vector a_1..a_K."""
    if isinstance(coeffs, dict):
        if not coeffs or min(coeffs) < 1:
            raise ValueError(f"lags must be ≥ 1, got {sorted(coeffs)}")
        a = np.zeros(max(coeffs))
        for lag, value in coeffs.items():
            a[lag - 1] = value
        return a
    a = np.asarray(coeffs, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError("coefficients must be a non-empty list a_1..a_K or a {lag: a} dict")
    return a


def multitap_roots(coeffs) -> np.ndarray:
    """Modes of h(t) = Σ_k a_k h(t−k) + x(t): roots of z^K − a_1 z^{K−1} − … − a_K,
    by decreasing modulus."""
    a = _taps(coeffs)
    roots = np.roots(np.concatenate(([1.0], -a)))
    return roots[np.argsort(-np.abs(roots))]


def multitap_response(coeffs, steps: int = 50, x: np.ndarray | None = None) -> np.ndarray:
    """h(0..steps) driven by x (default: a unit impulse at t = 0), zero before t = 0."""
    a = _taps(coeffs)
    if x is None:
        x = np.zeros(steps + 1)
        x[0] = 1.0
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < steps + 1:
        raise ValueError(f"x must have at least steps + 1 = {steps + 1} values")
    h = np.zeros(steps + 1)
    for t in range(steps + 1):
        past = sum(a[k] * h[t - k - 1] for k in range(len(a)) if t - k - 1 >= 0)
        h[t] = past + x[t]
    return h
