"""Engine speed: rnnlab's compiled kernels and its reference path beside torch.nn, one process.

    python -m benchmarks.engine [--reps 7] [--threads 2] [--keep-pages]

One training step — forward, then backward of the summed output — in float32, median of
``--reps`` repetitions after warm-up, every contender's repetitions interleaved (so all see the
same state of a shared machine). Three regimes (batch, input, hidden, T):

    paper     128,   2,  16, 1000   the 1997 experiments' tiny nets over long lags
    char-LM    64,  64, 256,  100   a character language model
    large      64, 512, 512,  100

Rows: LSTM and GRU against torch.nn (on the CPU torch.nn.LSTM is oneDNN's fused kernel;
torch.nn.GRU has none); the peephole LSTM and the LSTM1997 (16 cells, truncated and full
gradient) against their own reference path (they have no torch.nn twin). Columns: compiled
(the default), reference (RNNLAB_KERNELS=0, today's Python loop), torch.nn, and the ratios.

--keep-pages: glibc's malloc keeps freed blocks mapped (`keep_pages`), so no side pays page
faults at every step: the arithmetic alone. Without it the ratios include them, as a user's
process does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import rnnlab
from rnnlab import kernels

REGIMES = [  # name, batch, input, hidden, T
    ("paper", 128, 2, 16, 1000),
    ("char-LM", 64, 64, 256, 100),
    ("large", 64, 512, 512, 100),
]


def step(module, x):
    def run():
        out, _ = module(x)
        out.sum().backward()
    return run


def on_path(fn, compiled: bool):
    def run():
        os.environ["RNNLAB_KERNELS"] = "1" if compiled else "0"
        try:
            fn()
        finally:
            os.environ["RNNLAB_KERNELS"] = "1"
    return run


def keep_pages() -> None:
    """Tune glibc's malloc for this process so that freed blocks stay mapped (no mmap for large
    blocks, no trimming): no step then pays page faults, and a comparison measures the compute
    alone. By default malloc maps each large block afresh and every page faults on first
    write, which costs whichever side allocates more per step (`--keep-pages` in charlm)."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    if not (libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)):
        raise RuntimeError("mallopt refused the settings")


def medians(fns: list, reps: int, warmup: int = 2) -> list[float]:
    """Median seconds of each function, repetitions interleaved."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, acc in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def rows_for(name, B, I, H, T, reps):
    x = torch.randn(T, B, I, requires_grad=True)
    lstm, torch_lstm = rnnlab.LSTM(I, H), torch.nn.LSTM(I, H)
    lstm.load_state_dict(torch_lstm.state_dict())
    gru, torch_gru = rnnlab.GRU(I, H), torch.nn.GRU(I, H)
    gru.load_state_dict(torch_gru.state_dict())
    few = max(3, reps // 2)
    out = []
    for label, ours, theirs in (("LSTM", lstm, torch_lstm), ("GRU", gru, torch_gru)):
        c, r, t = medians([on_path(step(ours, x), True), on_path(step(ours, x), False),
                           step(theirs, x)], reps if name != "large" else few)
        out.append((label, c, r, t))
    others = [("peephole LSTM", rnnlab.LSTM(I, H, peephole=True))]
    if name == "paper":
        blocks = H // 2  # 16 cells in blocks of 2
        others += [("LSTM1997 truncated", rnnlab.LSTM1997(I, blocks, 2)),
                   ("LSTM1997 full BPTT", rnnlab.LSTM1997(I, blocks, 2, truncated=False))]
    for label, module in others:
        c, r = medians([on_path(step(module, x), True), on_path(step(module, x), False)], few)
        out.append((label, c, r, None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--regimes", default=",".join(r[0] for r in REGIMES),
                        help="comma-separated subset of " + ", ".join(r[0] for r in REGIMES))
    parser.add_argument("--keep-pages", action="store_true",
                        help="tune malloc so that no step pays page faults: compute alone")
    args = parser.parse_args()
    if args.keep_pages:
        keep_pages()
    wanted = args.regimes.split(",")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, forward + "
          f"backward, median of {args.reps} (large regime and rows without torch.nn: fewer), "
          f"interleaved{'; malloc keeps freed pages mapped' if args.keep_pages else ''}\n"
          f"kernels: {kernels.status()}\n")
    head = (f"{'regime':8} {'model':19} {'compiled ms':>11} {'reference ms':>12} "
            f"{'torch.nn ms':>11} {'compiled/torch':>14} {'reference/torch':>15} "
            f"{'speed-up':>8}")
    print(head)
    print("-" * len(head))
    for name, B, I, H, T in (r for r in REGIMES if r[0] in wanted):
        for label, c, r, t in rows_for(name, B, I, H, T, args.reps):
            torch_ms = "—" if t is None else f"{t * 1e3:.1f}"
            ct = "—" if t is None else f"{c / t:.2f}"
            rt = "—" if t is None else f"{r / t:.2f}"
            print(f"{name:8} {label:19} {c * 1e3:11.1f} {r * 1e3:12.1f} {torch_ms:>11} "
                  f"{ct:>14} {rt:>15} {r / c:7.1f}×")
            name = ""
    print("\nratios: lower is faster; speed-up = reference / compiled")


if __name__ == "__main__":
    main()
