"""The modern long-lag tasks of Arjovsky, Shah & Bengio (uRNN) and Le, Jaitly & Hinton (IRNN).

adding (T): two channels of length T, values U[0, 1] and a marker that is 1 at exactly two
    steps, one uniform in the first half and one in the second; target the plain sum of the two
    marked values, MSE at the last step, linear output. Always predicting 1 gives MSE 1/6 ≈ 0.167.
    Correct (rnnlab's choice, the papers report only MSE): |error| < 0.1.
copy (T): ten symbols drawn from 8 data categories, T − 1 blanks, a delimiter, ten more blanks
    (length T + 20); the target is T + 10 blanks and then the ten symbols in order. Inputs
    one-hot over 10 (0 blank, 1–8 data, 9 delimiter), outputs 9 classes (blank, data),
    cross-entropy over all T + 20 steps. A memoryless model scores 10 ln 8 / (T + 20).
    Correct: all ten symbols recalled (arg max).
"""

from __future__ import annotations

import math

import torch

from .base import Batch, Task, at_end, end_mask, one_hot, positive_int


class Adding(Task):
    name = "adding"
    summary = "uRNN/IRNN adding problem: sum of the two marked values of U[0,1] (MSE)"
    reference = ("uRNN (Arjovsky et al.): LSTM and uRNN beat the 0.167 baseline up to T = 400; "
                 "tanh-RNN never")
    defaults = {"T": 100}
    input_size, output_size = 2, 1
    output = "linear"

    def _check(self):
        positive_int(self, "T", 2)

    @property
    def mean_length(self):
        return float(self.T)

    baseline_mse = 1 / 6

    def _sample(self, batch_size, generator):
        T, B = self.T, batch_size
        values = torch.rand(T, B, generator=generator)
        first = torch.randint(0, T // 2, (B,), generator=generator)
        second = torch.randint(0, T - T // 2, (B,), generator=generator) + T // 2
        rows = torch.arange(B)
        marker = torch.zeros(T, B)
        marker[first, rows] = 1.0
        marker[second, rows] = 1.0
        y = torch.zeros(T, B, 1)
        y[-1, :, 0] = values[first, rows] + values[second, rows]
        lengths = torch.full((B,), T)
        return Batch(torch.stack((values, marker), -1), y, end_mask(lengths, T), lengths)

    def correct(self, out, batch):
        return (at_end(out, batch) - at_end(batch.y, batch)).abs().squeeze(-1) < 0.1

    def marked(self, batch):
        return batch.x[..., 1] == 1.0  # the marker channel


class Copy(Task):
    name = "copy"
    summary = "copy-memory: recall 10 symbols after a blank lag of T steps (cross-entropy)"
    reference = "uRNN: LSTM beats the memoryless baseline only at T = 100; uRNN solves T ≤ 500"
    defaults = {"T": 100}
    input_size, output_size = 10, 9
    output = "linear"  # logits; the loss applies the softmax
    loss = "ce"

    def _check(self):
        positive_int(self, "T", 1)

    @property
    def mean_length(self):
        return self.T + 20.0

    @property
    def baseline_ce(self) -> float:
        return 10 * math.log(8) / (self.T + 20)

    def _sample(self, batch_size, generator):
        T, B = self.T, batch_size
        data = torch.randint(1, 9, (10, B), generator=generator)
        inp = torch.zeros(T + 20, B, dtype=torch.long)
        inp[:10] = data
        inp[T + 9] = 9  # the delimiter, after T − 1 blanks
        target = torch.zeros(T + 20, B, dtype=torch.long)
        target[T + 10 :] = data
        lengths = torch.full((B,), T + 20)
        return Batch(one_hot(inp, 10), target, torch.ones(T + 20, B, dtype=torch.bool),
                     lengths)

    def correct(self, out, batch):
        T = self.T
        return (out[T + 10 :].argmax(-1) == batch.y[T + 10 :]).all(0)
