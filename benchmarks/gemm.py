"""Which GEMM for which product: rnnlab's own register-tiled GEMM against ATen's (torch.mm,
i.e. MKL/oneDNN), for every shape the engine calls, per regime.

    python -m benchmarks.gemm [--reps 15]

The engine calls two kinds of product per layer and direction (N = T·B rows, G gates of H
units, K inputs):

    hoisted   before / after the time loop: one per gate for the input projection
              xw = x W_gᵀ + b (N×K · K×H) and the input gradient dx = Σ_g δa_g W_g
              (N×H · H×K); one call for every gate's weight gradient δa_gᵀ x (H×N · N×K)
              and δa_gᵀ h_{t−1} (H×N · N×H), which packs x (h) once for all gates
    per step  inside the compiled loop: h_{t−1} W_hhᵀ (B×H · H×G·H) and δa W_hh; the weights
              are packed once per sequence and each thread multiplies its rows of the batch

Hoisted products are timed as the engine issues them (both sides on this machine's threads);
the per-step product as the loop runs it (own: `torch.ops.rnnlab.step_products`, packed once,
rows split across threads; ATen: one torch.mm per step on the whole batch). Medians of
interleaved repetitions; GFLOP/s = 2·m·n·k / time; ratio = own / ATen (lower: own wins).
"""

from __future__ import annotations

import argparse

import torch

from rnnlab import kernels

from .engine import medians

REGIMES = [  # name, batch, input, hidden, T (layers of the LM step: input 64, then hidden)
    ("paper LSTM", 128, 2, 16, 1000),
    ("char-LM (engine)", 64, 64, 256, 100),
    ("large (engine)", 64, 512, 512, 100),
    ("LM step 2×256, layer 1", 32, 64, 256, 50),
    ("LM step 2×256, layer 2", 32, 256, 256, 50),
    ("LM step 2×512, layer 1", 32, 64, 512, 50),
    ("LM step 2×512, layer 2", 32, 512, 512, 50),
]
G = 4  # LSTM gates


def own(a, b, out, beta=0.0, bias=None):
    kernels.own_mm(a, b, out, beta=beta, bias=bias)


def aten(a, b, out, beta=0.0, bias=None):
    if a.dim() == 3:  # products sharing b, as kernels.mm's ATen branch runs them
        torch.matmul(a, b, out=out)
    elif bias is not None:
        torch.addmm(bias, a, b, out=out)
    elif beta:
        out.addmm_(a, b)
    else:
        torch.mm(a, b, out=out)


def products(B: int, K: int, H: int, T: int):
    """(name, flops, fn(mm)) of each product kind the engine issues for one layer-direction."""
    N = T * B
    x, W, b = torch.randn(N, K), torch.randn(G, H, K), torch.randn(G, H)
    dG, h = torch.randn(G, N, H), torch.randn(N, H)
    xw, dx, dW, dWh = torch.empty(G, N, H), torch.empty(N, K), torch.empty(G, H, K), \
        torch.empty(G, H, H)

    def input_projection(mm):
        for g in range(G):
            mm(x, W[g].t(), xw[g], bias=b[g])

    def input_gradient(mm):
        for g in range(G):
            mm(dG[g], W[g], dx, beta=1.0 if g else 0.0)

    def weight_gradient_ih(mm):  # every gate in one call (cells.base.weight_grad)
        mm(dG.transpose(1, 2), x, dW)

    def weight_gradient_hh(mm):
        mm(dG.transpose(1, 2), h, dWh)

    flops = 2 * N * K * G * H
    return [("xw = x W_ihᵀ + b", flops, input_projection),
            ("dx = δa W_ih", flops, input_gradient),
            ("dW_ih = δaᵀ x", flops, weight_gradient_ih),
            ("dW_hh = δaᵀ h", 2 * N * H * G * H, weight_gradient_hh)]


def step_product(B: int, H: int, T: int):
    """The loop's h_{t−1} W_hhᵀ over T steps: own (packed once, rows per thread) and ATen."""
    A, W, out = torch.randn(T, B, H), torch.randn(G * H, H), torch.empty(T, B, G * H)
    Wt = W.t()

    def by_own():
        torch.ops.rnnlab.step_products(A, W, out, kernels.threads())

    def by_aten():
        for s in range(T):
            torch.mm(A[s], Wt, out=out[s])
    return 2 * T * B * H * G * H, by_own, by_aten


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not kernels.load():
        raise SystemExit("the compiled kernels are unavailable: nothing to compare")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of "
          f"{args.reps}, interleaved; ratio = own / ATen")
    print(f"{'regime':24} {'product':18} {'own ms':>8} {'GF/s':>5} {'ATen ms':>8} {'GF/s':>5} "
          f"{'ratio':>6}")
    for name, B, K, H, T in REGIMES:
        rows = [(label, flops, lambda f=fn: f(own), lambda f=fn: f(aten))
                for label, flops, fn in products(B, K, H, T)]
        flops, a, b = step_product(B, H, T)
        rows.append(("per step h W_hhᵀ", flops, a, b))
        for label, flops, a, b in rows:
            ta, tb = medians([a, b], args.reps)
            print(f"{name:24} {label:18} {ta * 1e3:8.2f} {flops / ta / 1e9:5.0f} "
                  f"{tb * 1e3:8.2f} {flops / tb / 1e9:5.0f} {ta / tb:6.2f}")
            name = ""
    from rnnlab.kernels.calibrate import hoisted_gemm

    print(f"\nthis machine's choice for the hoisted products (kernels.calibrate, measured once "
          f"and kept; RNNLAB_GEMM overrides): {hoisted_gemm()}")


if __name__ == "__main__":
    main()
