"""The lecture's toy tasks: parity and binary addition.

parity (L, variable): bits 0/1, one per step; the target at the end is 1 for an odd number of
    ones (OpenAI's warm-up: length L, or lengths uniform in 1..L with ``variable``). Sigmoid
    output, binary cross-entropy; correct when the output is on the right side of ½.
binary-addition (bits): two operands a, b < 2^(bits−1), fed least significant bit first, one
    bit pair per step (2 inputs); the target at each step is that bit of a + b (which fits in
    ``bits`` bits). The carry lives in the recurrent state. Correct when every bit is right.
"""

from __future__ import annotations

import torch

from .base import Batch, Task, at_end, end_mask, positive_int, uniform_lengths


class Parity(Task):
    name = "parity"
    summary = "is the number of ones odd? bits one per step, answer at the end"
    reference = "1997 §6: truncated LSTM does not easily solve 500-step parity; guessing does"
    defaults = {"L": 50, "variable": False}
    input_size = output_size = 1
    loss = "bce"

    def _check(self):
        positive_int(self, "L", 1)
        if not isinstance(self.variable, bool):
            raise ValueError(f"task 'parity': variable must be true or false, got "
                             f"{self.variable!r}")

    @property
    def mean_length(self):
        return (self.L + 1) / 2 if self.variable else float(self.L)

    def _sample(self, batch_size, generator):
        L, B = self.L, batch_size
        lengths = (uniform_lengths(B, 1, L, generator) if self.variable
                   else torch.full((B,), L))
        live = torch.arange(L).unsqueeze(1) < lengths.unsqueeze(0)
        bits = torch.randint(0, 2, (L, B), generator=generator) * live
        odd = bits.sum(0) % 2
        y = torch.zeros(L, B, 1)
        y[lengths - 1, torch.arange(B), 0] = odd.float()
        return Batch(bits.float().unsqueeze(-1), y, end_mask(lengths, L), lengths)

    def correct(self, out, batch):
        p = at_end(out, batch).squeeze(-1)
        return (p > 0.5) == (at_end(batch.y, batch).squeeze(-1) > 0.5)


class BinaryAddition(Task):
    name = "binary-addition"
    summary = "add two binary numbers, least significant bit first; output each sum bit"
    reference = "a classic toy (Hinton's CSC321; trask's notebook): carry in the state"
    defaults = {"bits": 8}
    input_size, output_size = 2, 1
    loss = "bce"

    def _check(self):
        positive_int(self, "bits", 2)

    @property
    def mean_length(self):
        return float(self.bits)

    def _sample(self, batch_size, generator):
        n, B = self.bits, batch_size
        a = torch.randint(0, 2 ** (n - 1), (B,), generator=generator)
        b = torch.randint(0, 2 ** (n - 1), (B,), generator=generator)
        shifts = torch.arange(n).unsqueeze(1)  # least significant first
        bits = lambda v: ((v.unsqueeze(0) >> shifts) & 1).float()  # (n, B)
        x = torch.stack((bits(a), bits(b)), -1)
        y = bits(a + b).unsqueeze(-1)
        lengths = torch.full((B,), n)
        return Batch(x, y, torch.ones(n, B, dtype=torch.bool), lengths,
                     {"a": a, "b": b})

    def correct(self, out, batch):
        return ((out > 0.5) == (batch.y > 0.5)).all(-1).all(0)


