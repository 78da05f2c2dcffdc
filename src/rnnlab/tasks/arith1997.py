"""Experiments 4 and 5: the adding and multiplication problems as in 1997 (§5.4, §5.5).

Each element is a pair (value, marker). Lengths uniform in [T, T + T/10]. Exactly two pairs are
marked with 1.0: first one of the first ten pairs (its value is X1), then one of the first
T/2 − 1 still-unmarked pairs (X2). All other markers are 0, except the first and the final pair,
whose markers are −1 (unless marked). A target is given only at the end.

adding-1997: values U[−1, 1]; if the first pair is marked, its value is set to 0; target
    0.5 + (X1 + X2)/4. multiplication-1997: values U[0, 1]; if the first pair is marked, its
    value is set to 1.0; target X1·X2. Correct: |error| < 0.04 at the end.

The paper does not say what happens when the first pair is drawn as X2 (reference §5): we apply
the same rule as for X1 (0 for adding, 1.0 for multiplication).
"""

from __future__ import annotations

import torch

from .base import Batch, Task, at_end, end_mask, positive_int, uniform_lengths


class _MarkedPairs(Task):
    defaults = {"T": 100}
    input_size, output_size = 2, 1

    @property
    def mean_length(self):
        return self.T + (self.T // 10) / 2

    def _check(self):
        positive_int(self, "T", 24)  # X1 in the first 10, X2 in the first T/2 − 1 others

    def _sample(self, batch_size, generator):
        T, B = self.T, batch_size
        lengths = uniform_lengths(B, T, T + T // 10, generator)
        Tmax = int(lengths.max())
        rows = torch.arange(B)
        values = torch.rand(Tmax, B, generator=generator) * (self.high - self.low) + self.low
        marker = torch.zeros(Tmax, B)
        marker[0] = -1.0
        marker[lengths - 1, rows] = -1.0
        first = torch.randint(0, 10, (B,), generator=generator)
        # X2: one of the first T/2 − 1 pairs other than X1's
        second = torch.randint(0, T // 2 - 2, (B,), generator=generator)
        second = second + (second >= first).long()
        for pos in (first, second):
            marker[pos, rows] = 1.0
            values[pos, rows] = torch.where(pos == 0, self.first_pair_value, values[pos, rows])
        steps = torch.arange(Tmax).unsqueeze(1)
        live = steps < lengths.unsqueeze(0)
        x = torch.stack((values * live, marker * live), dim=-1)
        target = self.combine(values[first, rows], values[second, rows])
        y = torch.zeros(Tmax, B, 1)
        y[lengths - 1, rows, 0] = target
        return Batch(x, y, end_mask(lengths, Tmax), lengths,
                     {"first": first, "second": second})

    def correct(self, out, batch):
        return (at_end(out, batch) - at_end(batch.y, batch)).abs().squeeze(-1) < 0.04

    def marked(self, batch):
        return batch.x[..., 1] == 1.0  # the marker channel


class Adding1997(_MarkedPairs):
    name = "adding-1997"
    summary = "values U[-1,1], two marked; target 0.5 + (X1 + X2)/4 at the end"
    reference = ("exp. 4 (2 blocks × 2, 93 w.): T=100: 74,000 sequences, 1 wrong of 2560; "
                 "T=500: 209,000; T=1000: 853,000")
    low, high, first_pair_value = -1.0, 1.0, 0.0

    @staticmethod
    def combine(a, b):
        return 0.5 + (a + b) / 4.0


class Multiplication1997(_MarkedPairs):
    name = "multiplication-1997"
    summary = "values U[0,1], two marked; target X1 · X2 at the end"
    reference = "exp. 5 (93 w.): T=100: 482,000 sequences (n_seq 140), 1,273,000 (n_seq 13)"
    low, high, first_pair_value = 0.0, 1.0, 1.0

    @staticmethod
    def combine(a, b):
        return a * b
