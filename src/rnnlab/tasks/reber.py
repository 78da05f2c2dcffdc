"""Experiment 1: the embedded Reber grammar (Hochreiter & Schmidhuber 1997, §5.1).

Strings are walks of the Reber graph, each branch taken with probability ½ (transition table
as reconstructed in the reference, §2: it accepts every valid and rejects every invalid
example string of the Reber pages):

    0 -B-> 1;  1 -T-> 2 | -P-> 3;  2 -S-> 2 | -X-> 4;  3 -T-> 3 | -V-> 5
    4 -X-> 3 | -S-> 6;  5 -P-> 4 | -V-> 6;  6 -E-> end

The embedded string is B c <Reber string> c E with c ∈ {T, P} the same symbol twice; to
predict the symbol before last the net must remember the second one. Symbols are one-hot over
(B, T, P, S, X, V, E); the net reads one symbol per step and predicts the next at every step.
A string is processed correctly when, at every step, the units of the possible next symbols
are the most active ones. The paper trains on a fixed set of 256 strings and tests on 256
others (`fixed_sets`).
"""

from __future__ import annotations

import torch

from .base import Batch, Task, one_hot

SYMBOLS = "BTPSXVE"
_S = {c: i for i, c in enumerate(SYMBOLS)}
GRAPH = {  # node -> [(symbol, next node)]
    0: [("B", 1)],
    1: [("T", 2), ("P", 3)],
    2: [("S", 2), ("X", 4)],
    3: [("T", 3), ("V", 5)],
    4: [("X", 3), ("S", 6)],
    5: [("P", 4), ("V", 6)],
    6: [("E", None)],
}


def reber_string(rng: torch.Generator) -> str:
    node, out = 0, []
    while node is not None:
        choices = GRAPH[node]
        symbol, node = choices[int(torch.randint(len(choices), (1,), generator=rng))]
        out.append(symbol)
    return "".join(out)


def embedded_string(rng: torch.Generator) -> str:
    c = "TP"[int(torch.randint(2, (1,), generator=rng))]
    return "B" + c + reber_string(rng) + c + "E"


def legal_next(string: str) -> list[set[str]]:
    """For each prefix string[:t+1] of an embedded string, the symbols that may follow."""
    out = [{"T", "P"}, {"B"}]  # after the first B; after the embedded c
    node = 0
    for symbol in string[2:-2]:  # the inner Reber string
        node = dict(GRAPH[node])[symbol]
        out.append({string[1]} if node is None else {s for s, _ in GRAPH[node]})
    out.append({"E"})  # after the second c
    return out


def is_embedded_reber(string: str) -> bool:
    """Does the string belong to the embedded Reber grammar?"""
    if len(string) < 9 or string[0] != "B" or string[-1] != "E" or string[1] not in "TP":
        return False
    if string[-2] != string[1]:
        return False
    node = 0
    for symbol in string[2:-2]:
        if node is None:
            return False
        step = dict(GRAPH[node])
        if symbol not in step:
            return False
        node = step[symbol]
    return node is None


class Reber(Task):
    name = "reber"
    summary = "embedded Reber grammar: predict the next symbol; remember the 2nd symbol"
    reference = ("exp. 1: 4 blocks × 1 (264 w.) lr 0.1: 100 % solved after 39,740 strings; "
                 "3 × 2 (276 w.) lr 0.5: 100 % after 8,440")
    input_size = output_size = 7
    mean_length = 11.0  # strings average 12 symbols; the last is only predicted
    #: targets: "next" — the symbol that follows (one-hot); "possible" — every symbol that
    #: may follow. criterion: "all" — the units of all possible next symbols are the most
    #: active ones; "top" — the most active unit is a possible next symbol. (The paper's
    #: wording allows either reading of both.)
    defaults = {"targets": "next", "criterion": "all"}

    def _check(self):
        if self.targets not in ("next", "possible"):
            raise ValueError(f"task 'reber': targets must be 'next' or 'possible', got "
                             f"{self.targets!r}")
        if self.criterion not in ("all", "top"):
            raise ValueError(f"task 'reber': criterion must be 'all' or 'top', got "
                             f"{self.criterion!r}")

    def _sample(self, batch_size, generator):
        return self.encode([embedded_string(generator) for _ in range(batch_size)])

    def encode(self, strings: list[str]) -> Batch:
        B, T = len(strings), max(len(s) for s in strings) - 1
        symbols = torch.full((T, B), -1, dtype=torch.long)
        y = torch.zeros(T, B, 7)
        legal = torch.zeros(T, B, 7, dtype=torch.bool)
        lengths = torch.tensor([len(s) - 1 for s in strings])
        for b, s in enumerate(strings):
            idx = torch.tensor([_S[c] for c in s])
            symbols[: len(s) - 1, b] = idx[:-1]
            y[: len(s) - 1, b] = one_hot(idx[1:], 7)
            for t, options in enumerate(legal_next(s)):
                legal[t, b, [_S[c] for c in options]] = True
        if self.targets == "possible":
            y = legal.float()
        mask = torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)
        return Batch(None, y, mask, lengths, {"legal": legal}, symbols=symbols, input_size=7)

    def fixed_sets(self, seed: int = 0, size: int = 256) -> tuple[Batch, Batch]:
        """The paper's protocol: a training set and a disjoint test set of ``size`` strings."""
        rng = torch.Generator().manual_seed(seed)
        seen: set[str] = set()
        train: list[str] = []
        while len(train) < size:
            train.append(embedded_string(rng))
            seen.add(train[-1])
        test: list[str] = []
        while len(test) < size:
            s = embedded_string(rng)
            if s not in seen:
                test.append(s)
        return self.encode(train), self.encode(test)

    @staticmethod
    def subset(batch: Batch, index) -> Batch:
        """The strings ``index`` of a batch (for drawing from the fixed training set)."""
        lengths = batch.lengths[index]
        T = int(lengths.max())
        return Batch(None, batch.y[:T, index], batch.mask[:T, index], lengths,
                     {"legal": batch.extra["legal"][:T, index]},
                     symbols=batch.symbols[:T, index], input_size=7)

    def correct(self, out, batch):
        legal = batch.extra["legal"]
        highest_illegal = out.masked_fill(legal, float("-inf")).amax(-1)
        if self.criterion == "top":  # the most active unit is a legal one
            ok = out.masked_fill(~legal, float("-inf")).amax(-1) > highest_illegal
        else:  # the k most active units are exactly the k legal ones
            lowest_legal = out.masked_fill(~legal, float("inf")).amin(-1)
            ok = lowest_legal > highest_illegal
        ok |= legal.all(-1)  # every symbol may follow: nothing to get wrong
        return (ok | ~batch.mask).all(0)
