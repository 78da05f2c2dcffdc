"""`rnnlab figures`: the lecture's stability figures, regenerated from scratch, with captions.

Each figure function draws one PNG and returns its caption; `make_all` writes them all and a
figures.md that shows each with its caption.
"""

from __future__ import annotations

import math
from pathlib import Path

from .._plotting import headless

headless()
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .. import layers  # noqa: E402
from .depth import vanishing_through_depth  # noqa: E402
from .linear import linear_response, multitap_response, multitap_roots  # noqa: E402
from .models import gradient_norms  # noqa: E402
from .scalar import recursion  # noqa: E402


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rotation(rho: float, theta: float) -> torch.Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return rho * torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def linear_responses(path: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for lam in (0.8, 0.95, 1.0, 1.05):
        h = linear_response(torch.diag(torch.tensor([lam, 0.5])), steps=80)
        ax.plot(h.norm(dim=1), label=f"real eigenvalues {lam}, 0.5")
    h = linear_response(_rotation(0.95, 0.4), steps=80)
    ax.plot(h.norm(dim=1), "--", label="complex pair 0.95·e^{±0.4i}")
    ax.set_yscale("log")
    ax.set_xlabel("t (steps after the input)")
    ax.set_ylabel("|h(t)|")
    ax.set_title("h(t) = W h(t−1) + C x(t), one input at t = 0")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)
    return ("Linear recursions: the response to one input decays or grows like λ_max^t — "
            "below 1 it fades (the net forgets), above 1 it explodes, at exactly 1 it is kept. "
            "A complex pair decays with its modulus as the envelope.")


def complex_oscillation(path: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for rho, theta in ((0.97, 0.3), (1.0, 0.3), (1.02, 0.3)):
        h = linear_response(_rotation(rho, theta), x0=torch.tensor([1.0, 0.0]), steps=80)
        ax.plot(h[:, 0], label=f"ρ = {rho}, θ = {theta}")
    ax.set_xlabel("t")
    ax.set_ylabel("h₁(t)")
    ax.set_title("complex eigenvalues ρ e^{±iθ}: oscillation with period 2π/θ ≈ 21 steps")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)
    return ("Complex eigenvalues make the state rotate: the first component oscillates with "
            "period 2π/θ, damped for ρ < 1, steady at ρ = 1, growing for ρ > 1.")


def scalar_recursions(path: Path) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for ax, f in zip(axes, ("sigmoid", "tanh", "relu")):
        for w in (0.5, 1.0, 2.0, 4.0):
            for h0, style in ((1.0, "-"), (-1.0, "--")):
                traj = recursion(f, w, h0=h0, steps=30)
                ax.plot(traj, style, label=f"w={w}, h0={h0:+.0f}" if f == "sigmoid" or
                        style == "-" else None)
        ax.set_title(f"h(t) = {f}(w h(t−1))")
        ax.set_xlabel("t")
        if f == "relu":
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_yticks([0, 1, 1e3, 1e6, 1e9, 1e12, 1e15, 1e18])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("h(t)")
    axes[0].legend(fontsize=7, ncol=2)
    axes[2].legend(fontsize=7)
    _save(fig, path)
    return ("Nonlinear scalar recursions from positive (solid) and negative (dashed) starts: "
            "sigmoid and tanh cannot blow up — they settle on a fixed point, saturated for "
            "large w (where f' ≈ 0 and no gradient passes); relu grows like w^t for w > 1 "
            "and dies at 0 from a negative start.")


def vector_recursions(path: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    gen = torch.Generator().manual_seed(0)
    Q = torch.linalg.qr(torch.randn(8, 8, generator=gen, dtype=torch.float64))[0]
    h0 = torch.randn(8, generator=gen, dtype=torch.float64) * 0.1
    for radius in (0.5, 0.9, 1.5, 3.0):
        W = radius * Q
        for f, style in (("tanh", "-"), ("relu", ":")):
            traj = recursion(f, W, h0=h0, steps=40)
            ax.plot(traj.norm(dim=1), style, label=f"{f}, ‖W‖ = {radius}")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("‖h(t)‖")
    ax.set_title("vector recursions h(t) = f(W h(t−1)), W = radius · orthogonal")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)
    return ("Vector recursions with W a scaled orthogonal matrix: below radius 1 the state "
            "dies out for both tanh and relu. Above it tanh saturates at a bounded norm; relu "
            "zeroes the negative part of the state at every step, so it grows only once the "
            "radius outweighs that loss (3.0 here) — and then without bound.")


def multitap(path: Path) -> str:
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    cases = {"0.5 h(t−1) + 0.25 h(t−5)": {1: 0.5, 5: 0.25},
             "1.6 h(t−1) − 0.8 h(t−2)": {1: 1.6, 2: -0.8},
             "0.5 h(t−1) + 0.6 h(t−3)": {1: 0.5, 3: 0.6}}
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    ax2.plot(circle.real, circle.imag, color="grey", linewidth=0.8)
    for label, taps in cases.items():
        ax.plot(multitap_response(taps, steps=60), label=label)
        roots = multitap_roots(taps)
        ax2.scatter(roots.real, roots.imag, label=label, s=25)
    ax.set_ylim(-2, 6)
    ax.set_xlabel("t")
    ax.set_ylabel("h(t) (impulse response)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax2.set_aspect("equal")
    ax2.set_title("modes: roots of z^K − Σ a_k z^{K−k}")
    ax2.set_xlabel("Re z")
    ax2.set_ylabel("Im z")
    ax2.grid(alpha=0.3)
    _save(fig, path)
    return ("Multi-tap scalar recursions h(t) = Σ a_k h(t−k) + x(t): the impulse response is "
            "a mix of modes z^t, the roots of the characteristic polynomial. It is stable iff "
            "every root lies inside the unit circle: the first decays, the second (a complex "
            "pair of modulus 0.89) rings while it decays, the third has a root at 1.05 and "
            "grows.")


def depth_gradients(path: Path, depth: int = 19, width: int = 1024) -> str:
    results = vanishing_through_depth(depth=depth, width=width)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.8), sharey=True)
    for ax, (act, res) in zip(axes, results.items()):
        for kind, style in (("batch", "-o"), ("single", "--s")):
            med = [max(r["median"], 1e-30) for r in res[kind]]
            ax.plot(range(1, len(med) + 1), med, style, markersize=3, label=f"{kind} gradient")
        ax.set_yscale("log")
        ax.set_title(act)
        ax.set_xlabel("layer (1 = first hidden)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("median ‖∂L/∂W_l[j,:]‖ over neurons j")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{depth} layers × {width}, at initialisation, scikit-learn digits")
    _save(fig, path)
    return (f"Vanishing gradients through depth: a {depth}-layer × {width} MLP at "
            "initialisation on scikit-learn's digits; per layer, the median over neurons of "
            "the gradient norm of their incoming weights, for the whole batch and for single "
            "instances (layer 20 is the output layer). With sigmoid the error shrinks by orders "
            "of magnitude on its way down (f' ≤ 1/4 at every layer); tanh and elu keep it "
            "nearly level; relu keeps it level where units are alive, but at some layers most "
            "units are dead for the data (median 0, drawn at the bottom).")


def gradient_flow(path: Path, T: int = 100) -> str:
    from .. import tasks

    torch.manual_seed(0)
    batch = tasks.make("adding-1997", T=T).sample(16, torch.Generator().manual_seed(0))
    x = batch.x[:T].double()  # every sequence is at least T long

    def loss(out):
        return out[-1].sum()

    rnn = layers.RNN(2, 32, dtype=torch.float64)
    lstm = layers.LSTM(2, 32, dtype=torch.float64)
    carousel = layers.LSTM(2, 32, dtype=torch.float64)
    with torch.no_grad():
        carousel.bias_ih_l0[32:64] = 5.0  # forget gate ≈ 1: the constant error carousel
    fig, ax = plt.subplots(figsize=(6.4, 4))
    g = gradient_norms(rnn, x, loss)
    ax.plot(g["h"], label="tanh RNN: ‖∂L/∂h_t‖")
    # c_T itself does not reach the loss (h_T does): its gradient is 0, left off the log plot
    g = gradient_norms(lstm, x, loss)
    ax.plot(g["c"][:-1], label="LSTM, default init: ‖∂L/∂c_t‖")
    g = gradient_norms(carousel, x, loss)
    ax.plot(g["c"][:-1], label="LSTM, forget bias +5: ‖∂L/∂c_t‖")
    ax.set_yscale("log")
    ax.set_xlabel("t (error injected at t = T)")
    ax.set_ylabel("gradient norm")
    ax.set_title(f"error from step T back through time: 1997 adding problem, T = {T}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)
    return ("Gradient flow through time at initialisation, driven by the 1997 adding problem's "
            "inputs (T = 100, loss on the last output): the tanh RNN's error fades "
            "geometrically; the LSTM's error along its cell "
            "state fades only as fast as its forget gates close it, and with f ≈ 1 (the 1997 "
            "constant error carousel) it reaches the first step almost intact.")


FIGURES = {
    "linear_responses": linear_responses,
    "complex_oscillation": complex_oscillation,
    "scalar_recursions": scalar_recursions,
    "vector_recursions": vector_recursions,
    "multitap": multitap,
    "depth_gradients": depth_gradients,
    "gradient_flow": gradient_flow,
}


def make_all(out: Path, only: list[str] | None = None, echo=print) -> dict[str, str]:
    """Write every figure (or ``only`` those) into ``out`` and a figures.md with captions."""
    names = only or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(FIGURES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    captions = {}
    for name in names:
        captions[name] = FIGURES[name](out / f"{name}.png")
        echo(f"{out / (name + '.png')}: {captions[name]}")
    md = "\n".join(f"![{n}]({n}.png)\n\n{c}\n" for n, c in captions.items())
    (out / "figures.md").write_text("# rnnlab figures\n\n" + md)
    return captions
