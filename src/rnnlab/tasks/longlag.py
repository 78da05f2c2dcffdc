"""Experiment 2: noise-free and noisy sequences with long time lags (1997, §5.2).

2a (p): two training sequences, (y, a_1, …, a_{p-1}, y) and (x, a_1, …, a_{p-1}, x), each with
   probability ½; one-hot over p+1 symbols a_1..a_{p-1}, x, y; predict the next symbol at every
   step. Correct: every output unit within 0.25 of its target at every step.
2b (p): as 2a, but the middle a_i are drawn at random (with replacement); only the final
   symbol is predictable. Correct: every unit within 0.25 at the sequence end.
2c (p, q): symbols a_1..a_p (distractors), e (trigger), b, x, y; a sequence is b, the key x|y,
   q random distractors, then a distractor with probability 9/10 or e with 1/10 repeatedly,
   and after e the key again. One-hot over p+4 inputs, 2 outputs (x, y), a target only at the
   end. Correct: both units within 0.2. Readings per the reference, §3.3: distractors are drawn
   from a_1..a_p (the printed "≤ q" must mean ≤ p), the continuation probability is 9/10, and
   the expected length is q + 13 (the paper prints q + 14). Lengths are capped at q + 400 so
   that a batch stays bounded (the chance of reaching the cap is 0.9^396 ≈ 10⁻¹⁸).
"""

from __future__ import annotations

import torch

from .base import Batch, Task, at_end, end_mask, one_hot, positive_int


class _TwoSequences(Task):
    defaults = {"p": 100}
    output = "sigmoid"

    def _check(self):
        positive_int(self, "p", 2)

    @property
    def input_size(self):
        return self.p + 1

    output_size = input_size

    @property
    def mean_length(self):
        return float(self.p)

    def _symbols(self, batch_size, generator):
        p = self.p
        key = torch.randint(0, 2, (batch_size,), generator=generator) + (p - 1)  # x or y
        if self.random_middle:
            middle = torch.randint(0, p - 1, (p - 1, batch_size), generator=generator)
        else:
            middle = torch.arange(p - 1).unsqueeze(1).expand(p - 1, batch_size)
        return torch.cat((key.unsqueeze(0), middle, key.unsqueeze(0)))  # (p+1, B)

    def _sample(self, batch_size, generator):
        seq = self._symbols(batch_size, generator)
        n = self.p + 1
        T = self.p
        return Batch(None, one_hot(seq[1:], n), torch.ones(T, batch_size, dtype=torch.bool),
                     torch.full((batch_size,), T), symbols=seq[:-1], input_size=n)

    def correct(self, out, batch):
        err = (out - batch.y).abs().amax(-1)  # (T, B)
        if self.random_middle:
            return at_end(err.unsqueeze(-1), batch).squeeze(-1) < 0.25
        return (err < 0.25).all(0)


class LongLag2a(_TwoSequences):
    name = "longlag-2a"
    summary = "two fixed sequences (y a1..a(p-1) y), (x a1..a(p-1) x): predict the last symbol"
    reference = "exp. 2a, p = 100: LSTM (1 cell, no output gate) 100 % solved after 5,040"
    random_middle = False


class LongLag2b(_TwoSequences):
    name = "longlag-2b"
    summary = "as 2a with a random middle: only the final symbol is predictable"
    reference = "exp. 2b, p = 100: LSTM 100 % solved after 5,680 sequences"
    random_middle = True


class LongLag2c(Task):
    name = "longlag-2c"
    summary = "key x|y, ≥ q random distractors over p symbols, trigger e, then recall the key"
    reference = ("exp. 2c (2 blocks × 1): q = p = 50: 30,000 sequences; q = p = 100: 31,000; "
                 "q = p = 1000: 49,000; q = 1000, p = 50: 203,000")
    defaults = {"p": 50, "q": 50}
    MAX_EXTRA = 400

    def _check(self):
        positive_int(self, "p", 1)
        positive_int(self, "q", 0)

    @property
    def input_size(self):
        return self.p + 4

    output_size = 2

    @property
    def mean_length(self):
        return self.q + 12.0  # q + 13 symbols, the last only predicted

    def _sample(self, batch_size, generator):
        p, q = self.p, self.q
        e, b_sym, x_sym = p, p + 1, p + 2  # y = p + 3
        key = torch.randint(0, 2, (batch_size,), generator=generator)  # 0: x, 1: y
        # extra distractors before e: geometric, P(k) = (1/10)(9/10)^k
        u = torch.rand(batch_size, generator=generator)
        k = torch.floor(torch.log1p(-u) / torch.log(torch.tensor(0.9))).long()
        k = k.clamp_max(self.MAX_EXTRA)
        lengths = q + k + 4  # b, key, q + k distractors, e, key
        T = int(lengths.max())
        seq = torch.randint(0, p, (T, batch_size), generator=generator)
        rows = torch.arange(batch_size)
        seq[0] = b_sym
        seq[1] = x_sym + key
        seq[lengths - 2, rows] = e
        seq[lengths - 1, rows] = x_sym + key  # only read as the target
        n = lengths - 1  # inputs: all but the final key
        Tn = int(n.max())
        inside = torch.arange(Tn).unsqueeze(1) < n.unsqueeze(0)
        y = torch.zeros(Tn, batch_size, 2)
        y[lengths - 2, rows, key] = 1.0  # after reading e, predict the key
        return Batch(None, y, end_mask(n, Tn), n, {"key": key},
                     symbols=seq[:Tn].masked_fill(~inside, -1), input_size=p + 4)

    def correct(self, out, batch):
        return (at_end(out, batch) - at_end(batch.y, batch)).abs().amax(-1) < 0.2
