"""Per-step cost of the 1997 LSTM's on-line learner (truncated RTRL).

    python -m benchmarks.online1997

The adding-problem network of the paper (2 inputs, 2 blocks × 2 cells, 1 output, 93 weights),
one sequence per trial, float32, one thread (as the trainer's paper protocol); median of 5 runs
of T = 2000 steps, reported as µs per step for 1 trial and for 10 trials in lockstep, with a
target (and update) at every step, and at every 100th step as in the adding problem.
"""

from __future__ import annotations

import statistics
import time

import torch

import rnnlab


def per_step_us(trials: int, every_step: bool, T: int = 2000, reps: int = 5) -> float:
    learner = rnnlab.OnlineLSTM1997(2, 2, 2, trials=trials, input_gate_bias=[-3, -6],
                                    generator=torch.Generator().manual_seed(0))
    x = torch.rand(T, trials, 1, 2)
    targets = torch.rand(T, trials, 1, 1)
    mask = torch.ones(T, dtype=torch.bool) if every_step else (torch.arange(T) % 100 == 99)
    learner.run(x[:50], targets[:50], mask[:50], lr=0.5)  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        learner.run(x, targets, mask, lr=0.5, outputs_at="targets")
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / T * 1e6


def main() -> None:
    torch.set_num_threads(1)  # as the paper protocol runs it (tiny tensors: threads only sync)
    print("on-line learner, adding-problem net (93 weights), µs per step")
    for every_step, label in ((True, "target and update at every step"),
                              (False, "target every 100th step (as the adding problem)")):
        one, ten = per_step_us(1, every_step), per_step_us(10, every_step)
        print(f"  {label}:")
        print(f"    1 trial             {one:8.1f}")
        print(f"    10 trials, lockstep {ten:8.1f}  ({ten / 10:.1f} per trial-step)")


if __name__ == "__main__":
    main()
