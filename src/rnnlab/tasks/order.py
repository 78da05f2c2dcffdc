"""Experiment 6: temporal order (1997, §5.6).

Eight one-hot inputs a, b, c, d, X, Y, E, B. Lengths uniform in [100, 110]; the first symbol is
E, the last B (the trigger); the rest are random a–d except at the relevant positions, which
hold X or Y. Positions are 1-based and inclusive (reference §7): 6a t1 ∈ [10, 20],
t2 ∈ [50, 60]; 6b t1 ∈ [10, 20], t2 ∈ [33, 43], t3 ∈ [66, 76]. The class is the order of X and
Y (4 classes for 6a, 8 for 6b), a one-hot target at the end. Correct: every output unit within
0.3 of its target.
"""

from __future__ import annotations

import torch

from .base import Batch, Task, at_end, end_mask, one_hot, uniform_lengths

A, X, E, B_TRIGGER = 0, 4, 6, 7


class _Order(Task):
    input_size = 8
    mean_length = 105.0

    @property
    def output_size(self):
        return 2 ** len(self.windows)

    def _sample(self, batch_size, generator):
        lengths = uniform_lengths(batch_size, 100, 110, generator)
        Tmax = int(lengths.max())
        rows = torch.arange(batch_size)
        seq = torch.randint(A, A + 4, (Tmax, batch_size), generator=generator)
        seq[0] = E
        seq[lengths - 1, rows] = B_TRIGGER
        cls = torch.zeros(batch_size, dtype=torch.long)
        for lo, hi in self.windows:
            pos = torch.randint(lo - 1, hi, (batch_size,), generator=generator)  # 1-based
            xy = torch.randint(0, 2, (batch_size,), generator=generator)  # 0: X, 1: Y
            seq[pos, rows] = X + xy
            cls = cls * 2 + xy
        live = torch.arange(Tmax).unsqueeze(1) < lengths.unsqueeze(0)
        y = torch.zeros(Tmax, batch_size, self.output_size)
        y[lengths - 1, rows] = one_hot(cls, self.output_size)
        return Batch(None, y, end_mask(lengths, Tmax), lengths, {"cls": cls},
                     symbols=seq.masked_fill(~live, -1), input_size=8)

    def correct(self, out, batch):
        return (at_end(out, batch) - at_end(batch.y, batch)).abs().amax(-1) < 0.3


class Order6a(_Order):
    name = "order-6a"
    summary = "order of X/Y at two positions ([10,20], [50,60]) among distractors: 4 classes"
    reference = "exp. 6a (2 blocks × 2, 156 w.): 31,390 sequences, 1 wrong of 2560"
    windows = ((10, 20), (50, 60))


class Order6b(_Order):
    name = "order-6b"
    summary = "order of X/Y at three positions: 8 classes"
    reference = "exp. 6b (3 blocks × 2, 308 w.): 571,100 sequences, 2 wrong of 2560"
    windows = ((10, 20), (33, 43), (66, 76))
