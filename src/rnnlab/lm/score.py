"""How well a model predicts a text: mean next-symbol cross-entropy in nats and bits per symbol.

The text is read as ``streams`` contiguous parallel streams (the layout of training), each
starting from the zero state and carrying its state from one chunk of ``seq_len`` steps to the
next; the few symbols left over after B equal streams continue the last stream, so every symbol
after the first is predicted exactly once. With the streams and chunk length of training, the
score of the training text is the mean training loss of an epoch (the same chunks, the same
states) when each stream's length, (n − 1) // B, is a multiple of T; otherwise training drops
each stream's last partial chunk and scoring does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .model import LN2, CharLM, select_streams


@torch.no_grad()
def score(model: CharLM, ids: Tensor, *, streams: int = 32, seq_len: int = 100) -> dict:
    """{'nats', 'bpc', 'symbols'}: the mean cross-entropy of ids[1:] given what precedes."""
    if ids.dim() != 1 or len(ids) < 2:
        raise ValueError("scoring needs a text of at least two symbols")
    if streams < 1 or seq_len < 1:
        raise ValueError("streams and seq_len must be positive")
    ids = ids.to(model.head.weight.device)
    was = model.training
    model.eval()
    try:
        n = len(ids) - 1  # predictions to make
        streams = min(streams, n)
        L = n // streams
        inputs = ids[: streams * L].view(streams, L).t()  # (L, B): column b is stream b
        targets = ids[1 : streams * L + 1].view(streams, L).t()
        total, state = 0.0, None
        for s in range(0, L, seq_len):
            logits, state = model(inputs[s : s + seq_len], state)
            total += float(F.cross_entropy(logits.flatten(0, 1), targets[s : s + seq_len]
                                           .flatten(), reduction="sum"))
        rest = n - streams * L  # < streams symbols: they continue the last stream
        if rest:
            state = select_streams(state, slice(streams - 1, streams))
            x = ids[streams * L : n].unsqueeze(1)
            logits, _ = model(x, state)
            total += float(F.cross_entropy(logits.flatten(0, 1), ids[streams * L + 1 :],
                                           reduction="sum"))
    finally:
        model.train(was)
    nats = total / n
    return {"nats": nats, "bpc": nats / LN2, "symbols": n}
