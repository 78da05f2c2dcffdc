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

import numpy as np
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


# -- Gers, Schmidhuber & Cummins 2000: the continual embedded Reber grammar ----------------------

#: the Reber graph as arrays: for node n, the two (symbol, next node) choices (node 0 and 6
#: have one; −1 is the end of the inner string)
_CHOICE_SYMBOL = np.array([[_S[c] for c, _ in (GRAPH[n] * 2)[:2]] for n in range(7)])
_CHOICE_NEXT = np.array([[(-1 if m is None else m) for _, m in (GRAPH[n] * 2)[:2]]
                         for n in range(7)])
#: the symbols that may follow once node n is reached, as a 7-bit code; and codes as masks
_BIT = {c: 1 << i for i, c in enumerate(SYMBOLS)}
_LEGAL_AT = np.array([sum(_BIT[c] for c, _ in GRAPH[n]) for n in range(7)], dtype=np.uint8)
_MASKS = (np.arange(128)[:, None] >> np.arange(7) & 1).astype(bool)


def continual_reber(n_strings: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_strings`` embedded Reber strings as one unbroken stream (Gers et al. 2000's CERG).

    Returns symbols (L,) int64; targets (L, 7) bool: the symbols that may come next — within a
    string as `legal_next`, after its closing E the next string's B; and starts (L,) bool,
    True at each string's first symbol (where an "external reset" would act). All strings are
    drawn at once (vectorised over strings), so a stream of 10⁶ symbols takes milliseconds.
    """
    if n_strings < 1:
        raise ValueError(f"n_strings must be ≥ 1, got {n_strings}")
    # the inner Reber strings, side by side: one column per step, worked out for the strings
    # still running only (most end within a dozen steps; a few run on for dozens). A column
    # draws a branch for every string, so a generator gives the same stream as ever.
    inner_symbols, inner_nodes, live = [], [], np.arange(n_strings)
    node = np.zeros(n_strings, dtype=np.int64)
    while len(live):
        pick = rng.integers(0, 2, n_strings)[live]
        at = node[live]
        column = np.full(n_strings, -1, dtype=np.int64)
        column[live] = _CHOICE_SYMBOL[at, pick]
        node[live] = _CHOICE_NEXT[at, pick]
        after_column = np.full(n_strings, -1, dtype=np.int64)
        after_column[live] = node[live]  # where each symbol leads (−1: the string ended)
        inner_symbols.append(column)
        inner_nodes.append(after_column)
        live = live[node[live] >= 0]
    inner = np.stack(inner_symbols, 1)  # (n, steps), −1 after the end
    after = np.stack(inner_nodes, 1)
    c = np.where(rng.integers(0, 2, n_strings) == 0, _S["T"], _S["P"])
    width = inner.shape[1] + 4  # B c <inner> c E
    sym = np.full((n_strings, width), -1, dtype=np.int64)
    legal = np.zeros((n_strings, width), dtype=np.uint8)  # the possible next symbols, as bits
    sym[:, 0] = _S["B"]
    legal[:, 0] = _BIT["T"] | _BIT["P"]
    sym[:, 1] = c
    legal[:, 1] = _BIT["B"]
    inner_len = (inner >= 0).sum(1)
    sym[:, 2 : 2 + inner.shape[1]] = inner
    legal[:, 2 : 2 + inner.shape[1]] = np.where(after >= 0, _LEGAL_AT[np.maximum(after, 0)], 0)
    rows = np.arange(n_strings)
    end = 2 + inner_len  # the inner string's E is at end − 1: the embedded c follows it
    legal[rows, end - 1] = np.left_shift(1, c).astype(np.uint8)
    sym[rows, end] = c
    legal[rows, end] = _BIT["E"]
    sym[rows, end + 1] = _S["E"]
    legal[rows, end + 1] = _BIT["B"]  # continual: the next string begins
    keep = sym >= 0
    starts = np.zeros_like(keep)
    starts[:, 0] = True
    return sym[keep], _MASKS[legal[keep]], starts[keep]
