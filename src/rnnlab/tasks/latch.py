"""Experiment 3: noise and signal on the same channel (1997, §5.3; Bengio et al.'s
"2-sequence problem").

One input, one output. Lengths uniform in [T, T + T/10]. The first N elements carry the class:
all +1.0 for class 1, all −1.0 for class 2 (our reading of "the first N elements are ±1.0");
every later element is Gaussian noise with mean 0 and variance 0.2.

3a: target at the end 1.0 (class 1) or 0.0 (class 2); correct when |error| < 0.2.
3b: as 3a, with the same noise also added to the first N elements.
3c: targets 0.2 (class 1) or 0.8 (class 2) plus Gaussian target noise of variance 0.1; correct
    when the output is within 0.1 of the noise-free target (the net must learn the
    conditional expectation).
"""

from __future__ import annotations

import math

import torch

from .base import Batch, Task, at_end, end_mask, positive_int, uniform_lengths

NOISE_STD = math.sqrt(0.2)
TARGET_NOISE_STD = math.sqrt(0.1)


class _Latch(Task):
    defaults = {"T": 100, "N": 3}
    input_size = output_size = 1
    noisy_signal = False
    noisy_targets = False
    tolerance = 0.2

    @property
    def mean_length(self):
        return self.T + (self.T // 10) / 2

    def _check(self):
        positive_int(self, "T", 2)
        positive_int(self, "N", 1)
        if self.N >= self.T:
            raise ValueError(f"task {self.name!r}: N ({self.N}) must be smaller than T "
                             f"({self.T})")

    def _sample(self, batch_size, generator):
        lengths = uniform_lengths(batch_size, self.T, self.T + self.T // 10, generator)
        Tmax = int(lengths.max())
        cls = torch.randint(0, 2, (batch_size,), generator=generator)  # 0: class 1
        x = torch.randn(Tmax, batch_size, generator=generator) * NOISE_STD
        sign = 1.0 - 2.0 * cls.float()
        signal = sign.expand(self.N, batch_size)
        x[: self.N] = signal + x[: self.N] if self.noisy_signal else signal
        x = x * (torch.arange(Tmax).unsqueeze(1) < lengths.unsqueeze(0))
        clean = torch.where(cls == 0, self.targets[0], self.targets[1])
        target = clean.clone()
        if self.noisy_targets:
            target = target + torch.randn(batch_size, generator=generator) * TARGET_NOISE_STD
        rows = torch.arange(batch_size)
        y = torch.zeros(Tmax, batch_size, 1)
        y[lengths - 1, rows, 0] = target
        extra = {"clean": clean.unsqueeze(-1), "cls": cls}
        if self.noisy_targets:  # errors are measured against the noise-free targets
            extra["clean_y"] = torch.zeros(Tmax, batch_size, 1)
            extra["clean_y"][lengths - 1, rows, 0] = clean
        return Batch(x.unsqueeze(-1), y, end_mask(lengths, Tmax), lengths, extra)

    def correct(self, out, batch):
        return (at_end(out, batch) - batch.extra["clean"]).abs().squeeze(-1) < self.tolerance


class Latch3a(_Latch):
    name = "latch-3a"
    summary = "class in the first N inputs (±1), then Gaussian noise; classify at the end"
    reference = ("exp. 3a (3 blocks × 1, 102 w.): T=100, N=3: ST2 after 39,850; T=100, N=1: "
                 "64,330; T=1000, N=3: 452,460")
    targets = (1.0, 0.0)


class Latch3b(_Latch):
    name = "latch-3b"
    summary = "as 3a with noise on the class-carrying inputs too"
    reference = "exp. 3b: T=100, N=3: ST2 after 43,250; T=100, N=1: 78,430"
    targets = (1.0, 0.0)
    noisy_signal = True


class Latch3c(_Latch):
    name = "latch-3c"
    summary = "as 3a with noisy real-valued targets 0.2 / 0.8: learn the conditional mean"
    reference = "exp. 3c: T=100, N=3: 269,650 sequences; T=100, N=1: 565,640"
    targets = (0.2, 0.8)
    noisy_targets = True
    tolerance = 0.1
