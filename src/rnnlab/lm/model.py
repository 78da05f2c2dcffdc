"""The character-level language model: symbols in, next-symbol logits out.

    e_t = E[x_t]                (embedding; or one-hot when embedding = 0)
    h_t, state = core(e_t, state)   (rnnlab RNN / LSTM / GRU, any options, dropout between
                                     layers; or the torch.nn class of the same name)
    z_t = W_out · h_t + b_out,   p(x_{t+1} | x_≤t) = softmax(z_t)

With rnnlab's core the embedding is not applied by the model: the core takes the symbol ids and
E (``embedding=``), so its first layer computes E W_ihᵀ once per symbol and gathers rows,
instead of one (T·B × e)·(e × 4H) product per chunk (the same numbers, fewer FLOPs).

``dropout`` is torch.nn's: between recurrent layers. ``output_dropout`` also drops h_t before
the readout (char-rnn's placement; off by default).

The loss is the cross-entropy of the next symbol, in nats; bits per character = nats / ln 2.
``backend="torch"`` builds the same model around torch.nn's class instead of rnnlab's, so the
two can be trained and timed under one trainer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import _checks as ck
from ..layers import GRU, LSTM, RNN

CORES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
TORCH_CORES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
LN2 = math.log(2.0)

State = Tensor | tuple[Tensor, ...] | None


class CharLM(nn.Module):
    """embedding → recurrent core (→ dropout) → linear, applied at every step.

    forward(x (T, B) long, state) -> (logits (T, B, V), state at the end): the returned state
    is the right initial state for the next chunk of the same streams.
    """

    def __init__(self, vocab_size: int, *, model: str = "lstm", hidden: int = 512,
                 layers: int = 2, embedding: int = 64, dropout: float = 0.0,
                 output_dropout: float = 0.0, options: dict | None = None,
                 backend: str = "rnnlab") -> None:
        super().__init__()
        options = dict(options or {})
        if backend not in ("rnnlab", "torch"):
            raise ValueError(f"backend must be 'rnnlab' or 'torch', got {backend!r}")
        table = CORES if backend == "rnnlab" else TORCH_CORES
        if model not in table:
            raise ValueError(f"unknown model {model!r}; expected one of {', '.join(table)}")
        for name, v in (("vocab_size", vocab_size), ("hidden", hidden), ("layers", layers)):
            ck.check_positive_int(name, v)
        if isinstance(embedding, bool) or not isinstance(embedding, int) or embedding < 0:
            raise ValueError(f"embedding must be an integer ≥ 0 (0: one-hot), got {embedding!r}")
        for name, p in (("dropout", dropout), ("output_dropout", output_dropout)):
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
                raise ValueError(f"{name} must be in [0, 1), got {p!r}")
        if options.get("bidirectional"):
            raise ValueError("a language model predicts the next symbol from the past only: "
                             "bidirectional cores would see the answer")
        for fixed in ("batch_first", "input_size", "hidden_size", "num_layers", "dropout"):
            if fixed in options:
                raise ValueError(f"option {fixed!r} is set by the language model itself")
        self.vocab_size, self.backend = vocab_size, backend
        self.embed = nn.Embedding(vocab_size, embedding) if embedding else None
        width = embedding or vocab_size
        try:
            self.core = table[model](width, hidden, num_layers=layers,
                                     dropout=dropout if layers > 1 else 0.0, **options)
        except TypeError as e:  # an option this core does not take
            raise ValueError(f"{backend} {model}: {e}") from e
        self.drop = nn.Dropout(output_dropout)
        out = getattr(self.core, "proj_size", 0) or hidden
        self.head = nn.Linear(out, vocab_size)

    def forward(self, x: Tensor, state: State = None) -> tuple[Tensor, State]:
        if x.dim() != 2 or x.dtype != torch.long:
            raise ValueError(f"expected symbol ids of shape (T, B) and dtype long, got "
                             f"{tuple(x.shape)} {x.dtype}")
        if x.numel():
            lo, hi = x.aminmax()  # one pass (and one device sync)
            if int(lo) < 0 or int(hi) >= self.vocab_size:
                raise ValueError(f"symbol ids must lie in [0, {self.vocab_size})")
        if self.backend == "rnnlab":  # the core reads the rows of E (or of I, one-hot) itself:
            # its first layer projects each symbol once, not each step (`Embedded`)
            table = self.embed.weight if self.embed is not None else torch.eye(
                self.vocab_size, dtype=self.head.weight.dtype, device=x.device)
            h, state = self.core(x, state, embedding=table)
        else:
            e = self.embed(x) if self.embed is not None else F.one_hot(
                x, self.vocab_size).to(self.head.weight.dtype)
            h, state = self.core(e, state)
        return self.head(self.drop(h)), state


def _map(state: State, fn) -> State:
    """fn applied to each tensor of a state (h, or (h, c)); None stays None."""
    if state is None or isinstance(state, Tensor):
        return None if state is None else fn(state)
    return tuple(fn(s) for s in state)


def detach(state: State) -> State:
    """The state without its history: truncated BPTT stops here."""
    return _map(state, Tensor.detach)


def select_streams(state: State, index) -> State:
    """The state of some streams only (index into the batch dimension, dim 1)."""
    return _map(state, lambda s: s[:, index])


def state_tensors(state: State) -> list[Tensor]:
    if state is None:
        return []
    return [state] if isinstance(state, Tensor) else list(state)


def state_from_tensors(tensors: list[Tensor]) -> State:
    if not tensors:
        return None
    return tensors[0] if len(tensors) == 1 else tuple(tensors)


def model_config(cfg: dict) -> dict:
    """The model's constructor arguments from a training config."""
    keys = ("model", "hidden", "layers", "embedding", "dropout", "output_dropout", "options",
            "backend")
    return {k: cfg[k] for k in keys}
