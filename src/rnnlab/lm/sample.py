"""Text from a trained model, one symbol at a time (char-rnn's sampling).

The prime text is read first to set the state; then at each step

    p = softmax(z / temperature)    (restricted to the k most likely symbols with top_k)
    x_{t+1} ~ p                      (or argmax z with argmax / temperature 0)

and x_{t+1} is fed back in. Low temperatures are conservative, high ones adventurous; as the
temperature falls to 0 sampling becomes the argmax.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from .data import Vocabulary
from .model import CharLM


def default_prime(vocab: Vocabulary) -> str | bytes:
    """A newline where the vocabulary has one (texts start after one), else its first symbol."""
    if vocab.byte_level:
        return b"\n"
    return "\n" if "\n" in vocab.symbols else vocab.symbols[0]


def check_temperature(t, name: str = "temperature") -> None:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {t!r}")


def _check(length: int, temperature: float, top_k: int | None, vocab_size: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    check_temperature(temperature)
    if top_k is not None and (not isinstance(top_k, int) or not 1 <= top_k <= vocab_size):
        raise ValueError(f"top_k must be in [1, {vocab_size}], got {top_k!r}")


def next_symbol(logits: Tensor, temperature: float, top_k: int | None, argmax: bool,
                generator: torch.Generator) -> int:
    """One draw from the (V,) logits."""
    if argmax or temperature == 0:
        return int(logits.argmax())
    z = (logits.double() - logits.max()) / temperature  # ≤ 0: no overflow as T → 0
    if top_k is not None and top_k < len(z):
        kth = torch.topk(z, top_k).values[-1]
        z = z.masked_fill(z < kth, float("-inf"))
    p = torch.softmax(z, dim=0)
    return int(torch.multinomial(p, 1, generator=generator))


@torch.no_grad()
def generate(model: CharLM, vocab: Vocabulary, *, prime: str | bytes | None = None,
             length: int = 500, temperature: float = 1.0, top_k: int | None = None,
             seed: int | None = None, argmax: bool = False) -> Iterator[str | bytes]:
    """Yield ``length`` symbols (str, or bytes in byte mode) continuing ``prime``."""
    _check(length, temperature, top_k, len(vocab))
    prime = default_prime(vocab) if prime is None or len(prime) == 0 else prime
    ids = vocab.encode(prime)  # ValueError for a symbol the model never saw
    device = model.head.weight.device
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    was = model.training
    model.eval()
    try:
        logits, state = model(ids.to(device).unsqueeze(1))
        z = logits[-1, 0].cpu()
        for _ in range(length):
            i = next_symbol(z, temperature, top_k, argmax, generator)
            yield vocab.decode([i])
            logits, state = model(torch.tensor([[i]], device=device), state)
            z = logits[-1, 0].cpu()
    finally:
        model.train(was)


def sample_text(model: CharLM, vocab: Vocabulary, **kwargs) -> str | bytes:
    """The whole sample at once (``generate``'s arguments)."""
    pieces = list(generate(model, vocab, **kwargs))
    return b"".join(pieces) if vocab.byte_level else "".join(pieces)
