"""The 1997 LSTM's on-line learner (truncated RTRL): compiled kernel against the reference path.

    python -m benchmarks.online1997 [--reps 7]

The adding-problem network of the paper (2 inputs, 2 blocks × 2 cells, 1 output, 93 weights),
one sequence per trial, float32, one thread (as the paper protocol runs), 10 trials in
lockstep. Two workloads, each as µs per trial-step: the median of ``--reps`` samples, a sample
being 20 consecutive sequences (a learner sees a stream of them), the two paths interleaved
sample by sample in one process:

  adding    110-step sequences, a target at the end, weights updated at the target (the
            paper's adding problem at T = 100)
  per-step  110-step sequences, a target and an update at every step (as the Reber grammar)

and, for the paper's task 2c (p = q = 1000: 1,004 one-hot inputs, 1,000+ steps), the compiled
learner on symbols against the reference path on dense inputs; and a continual stream of
embedded Reber strings through Gers et al.'s (2000) 424-weight net with forget gates
(`OnlineLSTM1997.stream`, learning at every step; testing, without). Last, what a shard's size
costs (`rnnlab reproduce` runs a shard's trials in lockstep): the compiled learner's µs per
trial-step for 1, 5, 10 and 16 trials in lockstep, adding net and task 2c.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import rnnlab
from rnnlab import kernels, tasks

#: consecutive sequences per timing sample
BLOCK = 20


def learner(trials: int = 10) -> rnnlab.OnlineLSTM1997:
    return rnnlab.OnlineLSTM1997(2, 2, 2, trials=trials, input_gate_bias=[-3, -6],
                                 generator=torch.Generator().manual_seed(0))


def on_path(compiled: bool, fn):
    def run():
        os.environ["RNNLAB_KERNELS"] = "1" if compiled else "0"
        try:
            return fn()
        finally:
            os.environ["RNNLAB_KERNELS"] = "1"
    return run


def medians(fns, reps: int, block: int = BLOCK) -> list[float]:
    """Median seconds per call of each fn; a sample is a block of consecutive calls (a learner
    sees a stream of sequences), the paths interleaved block by block."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, acc in zip(fns, times):
            t0 = time.perf_counter()
            for _ in range(block):
                fn()
            acc.append((time.perf_counter() - t0) / block)
    return [statistics.median(t) for t in times]


def adding(every_step: bool, reps: int) -> tuple[float, float]:
    T, N = 110, 10
    x, targets = torch.rand(T, N, 1, 2), torch.rand(T, N, 1, 1)
    mask = torch.ones(T, dtype=torch.bool) if every_step else torch.arange(T) == T - 1
    nets = (learner(N), learner(N))

    def run(net):
        return lambda: net.run(x, targets, mask, lr=0.5, outputs_at="targets")

    c, r = medians([on_path(True, run(nets[0])), on_path(False, run(nets[1]))], reps)
    return c / (T * N) * 1e6, r / (T * N) * 1e6


def call_cost(reps: int) -> tuple[float, float]:
    """The adding workload's cost of a call beyond its arithmetic: µs per trial-step with one
    call per sequence (as a learner sees a stream) and with the same 20 sequences in one call
    (a series: the call's preparation paid once), compiled path."""
    T, N = 110, 10
    x, targets = torch.rand(T, N, 1, 2), torch.rand(T, N, 1, 1)
    mask = torch.arange(T) == T - 1
    xs = x.expand(BLOCK, *x.shape).contiguous()
    ts = targets.expand(BLOCK, *targets.shape).contiguous()
    one, series = learner(N), learner(N)
    single, block = medians([lambda: one.run(x, targets, mask, lr=0.5, outputs_at="targets"),
                             lambda: series.run(xs, ts, mask, lr=0.5, outputs_at="targets")],
                            reps)
    return single / (T * N) * 1e6, block / BLOCK / (T * N) * 1e6


def longlag_2c(reps: int) -> tuple[float, float]:
    task = tasks.make("longlag-2c", p=1000, q=1000)
    batch = task.sample(4, torch.Generator().manual_seed(0))  # one sequence for each of 4 trials
    net = rnnlab.OnlineLSTM1997(task.input_size, 2, 1, 2, trials=4, bias=False,
                                init_range=0.2, output_bias=False)
    symbols = batch.symbols.unsqueeze(2)  # (T, trials, 1)
    dense = batch.x.unsqueeze(2)
    y, mask = batch.y.unsqueeze(2), batch.mask.unsqueeze(2)
    steps = int(batch.lengths.sum())
    c, r = medians([on_path(True, lambda: net.run(symbols, y, mask, lr=0.01)),
                    on_path(False, lambda: net.run(dense, y, mask, lr=0.01))], reps, block=2)
    return c / steps * 1e6, r / steps * 1e6


def continual(learn: bool, reps: int) -> tuple[float, float]:
    """µs per trial-step of `stream` on the CERG net: 1,000 symbols, 4 trials."""
    import numpy as np

    from rnnlab.tasks.reber import continual_reber
    from rnnlab.training.continual import CONTINUAL, continual_learner

    T, N = 1000, 4
    sym, tgt, _ = continual_reber(120, np.random.default_rng(0))
    symbols = torch.from_numpy(sym[:T]).view(T, 1).expand(T, N).contiguous()
    targets = torch.from_numpy(tgt[:T]).float().view(T, 1, 7).expand(T, N, 7).contiguous()
    net = continual_learner(CONTINUAL["cerg-forget"], torch.Generator().manual_seed(0))
    nets = [net.subset([0] * N), net.subset([0] * N)]

    def run(n):
        return lambda: n.stream(symbols, targets, lr=1e-6 if learn else 0.0, learn=learn)

    c, r = medians([on_path(True, run(nets[0])), on_path(False, run(nets[1]))], reps, block=1)
    return c / (T * N) * 1e6, r / (T * N) * 1e6


def lockstep(n: int, reps: int) -> tuple[float, float]:
    """µs per trial-step of the compiled learner with n trials in lockstep: the adding net
    (target at the end) and task 2c, p = q = 1000 (per step of the longest sequence, as
    lockstep runs to it)."""
    T = 110
    x, targets = torch.rand(T, n, 1, 2), torch.rand(T, n, 1, 1)
    mask = torch.arange(T) == T - 1
    net = learner(n)
    (a,) = medians([lambda: net.run(x, targets, mask, lr=0.5, outputs_at="targets")], reps)
    task = tasks.make("longlag-2c", p=1000, q=1000)
    batch = task.sample(n, torch.Generator().manual_seed(0))
    long_net = rnnlab.OnlineLSTM1997(task.input_size, 2, 1, 2, trials=n, bias=False,
                                     init_range=0.2, output_bias=False)
    symbols, y, m = batch.symbols.unsqueeze(2), batch.y.unsqueeze(2), batch.mask.unsqueeze(2)
    (c,) = medians([lambda: long_net.run(symbols, y, m, lr=0.01)], max(3, reps // 2), block=2)
    return a / (T * n) * 1e6, c / (int(batch.lengths.max()) * n) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the paper protocol runs it
    print(f"on-line learner, float32, one thread; kernels: {kernels.status()}")
    print(f"{'workload':44} {'compiled':>10} {'reference':>10} {'speed-up':>9}")
    rows = [("adding net, 10 trials, target at the end", adding(False, args.reps)),
            ("adding net, 10 trials, target every step", adding(True, args.reps)),
            ("task 2c, p = q = 1000, 4 trials", longlag_2c(max(3, args.reps // 2))),
            ("CERG stream, 424-weight net, learning", continual(True, max(3, args.reps // 2))),
            ("CERG stream, testing (no traces)", continual(False, max(3, args.reps // 2)))]
    for label, (c, r) in rows:
        print(f"{label:44} {c:9.3f}µ {r:9.2f}µ {r / c:8.0f}×")
    print("\nµs per trial-step (one step of one network); speed-up = reference / compiled")
    single, series = call_cost(args.reps)
    print(f"\nadding net, compiled: one call per sequence {single:.3f}µ, {BLOCK} sequences per "
          f"call {series:.3f}µ per trial-step; the call's own cost "
          f"{(single - series) * 110 * 10:.1f} µs ({single / series:.2f}×)")
    print(f"\n{'trials in lockstep (shard size)':32} {'adding':>9} {'task 2c':>9} "
          f"{'adding vs 5':>12} {'2c vs 5':>8}")
    sizes = [(n, *lockstep(n, args.reps)) for n in (1, 5, 10, 16)]
    base = next(r for r in sizes if r[0] == 5)
    for n, a, c in sizes:
        print(f"{n:<32} {a:8.3f}µ {c:8.3f}µ {a / base[1]:11.2f}× {c / base[2]:7.2f}×")


if __name__ == "__main__":
    main()
