"""The options torch.nn refuses, timed: what each costs on rnnlab, and what users pay today.

    python -m benchmarks.wishlist [--reps 7] [--threads 2]

One training step (forward, backward of the summed output), float32, training mode, medians
of interleaved repetitions in one process. Per option and regime:

    plain      rnnlab.LSTM / GRU without the option (the compiled kernels)
    option     the same module with it (layer_norm, recurrent_dropout 0.25, zoneout 0.1)
    loop       what a torch user writes today: a Python loop over torch.nn.LSTMCell / GRUCell
               with the same regulariser, or for layer_norm the cell written out with
               torch.nn.LayerNorm modules per step (three for the LSTM, as PyTorch's own
               fastrnns LayerNormLSTMCell; two for the GRU); autograd for the gradient
    torch.nn   torch.nn.LSTM / GRU without it (it has no such option)

and the ratios option / plain (the option's cost), option / loop and option / torch.nn.
Then Greff et al.'s LSTM variants at the char-LM regime: compiled, on the reference path
(RNNLAB_KERNELS=0), and their ratios to the plain compiled LSTM and to torch.nn.LSTM.
"""

from __future__ import annotations

import argparse

import torch

import rnnlab
from benchmarks.engine import medians, on_path
from rnnlab import kernels
from rnnlab.cells.lstm_variants import VARIANT_GATES

REGIMES = [  # name, batch, input, hidden, T
    ("char-LM", 64, 64, 256, 100),
    ("LM step", 32, 64, 512, 50),
]
OPTIONS = [("layer_norm", True), ("recurrent_dropout", 0.25), ("zoneout", 0.1)]


def step(module, x):
    def run():
        out, _ = module(x)
        out.sum().backward()
    return run


def cell_loop(cell, x, option: str, p: float):
    """A torch.nn cell over time with the regulariser written out, as users do today."""
    lstm = isinstance(cell, torch.nn.LSTMCell)

    def run():
        T, B, _ = x.shape
        h = x.new_zeros(B, cell.hidden_size)
        c = x.new_zeros(B, cell.hidden_size)
        drop = (torch.empty_like(h).bernoulli_(1 - p) / (1 - p)) if option == \
            "recurrent_dropout" else None
        outs = []
        for t in range(T):
            h_in = h * drop if drop is not None else h
            if lstm:
                h_new, c_new = cell(x[t], (h_in, c))
            else:  # (GRUCell's interpolation then sees h ⊙ drop too: same cost)
                h_new, c_new = cell(x[t], h_in), c
            if option == "zoneout":
                keep = torch.empty_like(h).bernoulli_(p)
                h_new = torch.lerp(h_new, h, keep)
                if lstm:
                    c_new = torch.lerp(c_new, c, torch.empty_like(c).bernoulli_(p))
            h, c = h_new, c_new
            outs.append(h)
        torch.stack(outs).sum().backward()
    return run


def layer_norm_loop(I, H, x):
    """Ba et al.'s LSTM as users write it: weights, three nn.LayerNorm, a loop over time."""
    lstm = torch.nn.LSTMCell(I, H)  # for its weights and biases
    norms = [torch.nn.LayerNorm(4 * H), torch.nn.LayerNorm(4 * H), torch.nn.LayerNorm(H)]

    def run():
        T, B, _ = x.shape
        h, c = x.new_zeros(B, H), x.new_zeros(B, H)
        outs = []
        for t in range(T):
            a = (norms[0](x[t] @ lstm.weight_ih.t()) + norms[1](h @ lstm.weight_hh.t())
                 + lstm.bias_ih + lstm.bias_hh)
            i, f, g, o = a.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(norms[2](c))
            outs.append(h)
        torch.stack(outs).sum().backward()
    return run


def layer_norm_gru_loop(I, H, x):
    """The layer-normalised GRU (haste's form) as users write it: weights, two nn.LayerNorm
    over the 3H products, a loop over time."""
    gru = torch.nn.GRUCell(I, H)  # for its weights and biases
    norms = [torch.nn.LayerNorm(3 * H), torch.nn.LayerNorm(3 * H)]

    def run():
        T, B, _ = x.shape
        h = x.new_zeros(B, H)
        outs = []
        for t in range(T):
            a_r, a_z, a_n = (norms[0](x[t] @ gru.weight_ih.t()) + gru.bias_ih).chunk(3, 1)
            w_r, w_z, w_n = (norms[1](h @ gru.weight_hh.t()) + gru.bias_hh).chunk(3, 1)
            r, z = torch.sigmoid(a_r + w_r), torch.sigmoid(a_z + w_z)
            n = torch.tanh(a_n + r * w_n)
            h = torch.lerp(n, h, z)
            outs.append(h)
        torch.stack(outs).sum().backward()
    return run


def rows(name, B, I, H, T, reps):
    x = torch.randn(T, B, I, requires_grad=True)
    out = []
    for kind, ours_cls, cell_cls, torch_cls in (
            ("LSTM", rnnlab.LSTM, torch.nn.LSTMCell, torch.nn.LSTM),
            ("GRU", rnnlab.GRU, torch.nn.GRUCell, torch.nn.GRU)):
        plain, theirs = ours_cls(I, H), torch_cls(I, H)
        for option, p in OPTIONS:
            ours = ours_cls(I, H, **{option: p})
            if option == "layer_norm":
                loop = (layer_norm_loop if kind == "LSTM" else layer_norm_gru_loop)(I, H, x)
            else:
                loop = cell_loop(cell_cls(I, H), x, option, p)
            a, b, c, d = medians([step(plain, x), step(ours, x), loop, step(theirs, x)], reps)
            out.append((name, kind, f"{option}={p}", a, b, c, d))
            name = ""
    return out


def variant_rows(B, I, H, T, reps):
    x = torch.randn(T, B, I, requires_grad=True)
    plain, theirs = step(rnnlab.LSTM(I, H), x), step(torch.nn.LSTM(I, H), x)
    for variant in VARIANT_GATES:
        ours = step(rnnlab.LSTM(I, H, variant=variant), x)
        a, b, c, d = medians([plain, ours, on_path(ours, compiled=False), theirs], reps)
        yield variant, a, b, c, d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, training "
          f"step, median of {args.reps}, interleaved\nkernels: {kernels.status()}\n")
    head = (f"{'regime':8} {'model':5} {'option':23} {'plain ms':>9} {'option ms':>9} "
            f"{'loop ms':>8} {'torch.nn ms':>11} {'option/plain':>12} {'option/loop':>11} "
            f"{'option/torch.nn':>15}")
    print(head)
    print("-" * len(head))
    for name, B, I, H, T in REGIMES:
        for regime, kind, label, a, b, c, d in rows(name, B, I, H, T, args.reps):
            print(f"{regime:8} {kind:5} {label:23} {a * 1e3:9.1f} {b * 1e3:9.1f} "
                  f"{c * 1e3:8.1f} {d * 1e3:11.1f} {b / a:12.2f} {b / c:11.2f} {b / d:15.2f}")
    print("\nplain and torch.nn: without the option; loop: torch.nn's cell in a Python loop "
          "with it (regimes: batch, input, hidden, T = 64, 64, 256, 100 and 32, 64, 512, 50)")
    name, B, I, H, T = REGIMES[0]
    head = (f"\n{'variant':8} {'plain ms':>9} {'compiled ms':>11} {'reference ms':>12} "
            f"{'torch.nn ms':>11} {'compiled/plain':>14} {'compiled/torch.nn':>17} "
            f"{'speed-up':>8}")
    print(head)
    print("-" * len(head))
    for variant, a, b, c, d in variant_rows(B, I, H, T, args.reps):
        print(f"{variant:8} {a * 1e3:9.1f} {b * 1e3:11.1f} {c * 1e3:12.1f} {d * 1e3:11.1f} "
              f"{b / a:14.2f} {b / d:17.2f} {c / b:7.2f}×")
    print(f"\n({name} regime; plain: rnnlab.LSTM without a variant, compiled; speed-up: "
          f"reference / compiled)")


if __name__ == "__main__":
    main()
