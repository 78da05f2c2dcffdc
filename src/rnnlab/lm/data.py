"""Text as data for character-level language models (char-rnn style).

- `Vocabulary`: the symbols of a training text, characters (UTF-8 text) or bytes (anything),
  stored with the model as JSON; `encode` / `decode` are exact inverses.
- `split`: the held-out validation tail (default the last 5 %).
- `StreamBatcher`: B contiguous parallel streams over the encoded text, cut into chunks of T
  steps for truncated BPTT: row b of chunk k+1 continues row b of chunk k, so a model's state at
  the end of one chunk is the right initial state for the next (the caller detaches it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor


@dataclass(frozen=True)
class Vocabulary:
    symbols: tuple[str, ...]  # characters, or for byte mode the 256 byte values as "0".."255"
    byte_level: bool = False

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        if not text:
            raise ValueError("cannot build a vocabulary from an empty text")
        return cls(tuple(sorted(set(text))))

    @classmethod
    def bytes(cls) -> Vocabulary:
        return cls(tuple(str(i) for i in range(256)), byte_level=True)

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, data: str | bytes) -> Tensor:
        if self.byte_level:
            raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            if not raw:
                return torch.empty(0, dtype=torch.long)
            return torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()
        index = {s: i for i, s in enumerate(self.symbols)}
        try:
            return torch.tensor([index[c] for c in data], dtype=torch.long)
        except KeyError as e:
            raise ValueError(f"the text holds a character the vocabulary lacks: {e.args[0]!r}"
                             ) from None

    def decode(self, ids) -> str | bytes:
        ids = [int(i) for i in ids]
        if self.byte_level:
            return bytes(ids)
        return "".join(self.symbols[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"symbols": list(self.symbols), "byte_level": self.byte_level})

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        try:
            d = json.loads(text)
            return cls(tuple(d["symbols"]), bool(d["byte_level"]))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"not a vocabulary ({e})") from e


def read_text(path: str | Path, *, byte_level: bool = False) -> tuple[str | bytes, Vocabulary]:
    """A file as text (UTF-8) with its character vocabulary, or as bytes."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no text file at {path}")
    raw = path.read_bytes()
    if byte_level:
        return raw, Vocabulary.bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e}); use the byte-level mode") from e
    return text, Vocabulary.from_text(text)


def split(ids: Tensor, val_fraction: float = 0.05) -> tuple[Tensor, Tensor]:
    """(train, validation): the validation set is the tail of the text."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(len(ids) * val_fraction))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


class StreamBatcher:
    """Chunks (inputs, targets), each (T, B) long, of B contiguous streams over ``ids``."""

    def __init__(self, ids: Tensor, batch_size: int, seq_len: int) -> None:
        if batch_size < 1 or seq_len < 1:
            raise ValueError("batch_size and seq_len must be positive")
        per_stream = (len(ids) - 1) // batch_size
        if per_stream < seq_len:
            raise ValueError(f"the text ({len(ids)} symbols) is too short for {batch_size} "
                             f"streams of at least {seq_len + 1} symbols")
        self.batch_size, self.seq_len = batch_size, seq_len
        self.chunks = per_stream // seq_len
        usable = self.chunks * seq_len
        # stream b reads ids[b·per_stream : b·per_stream + usable + 1]
        starts = torch.arange(batch_size) * per_stream
        offsets = torch.arange(usable + 1)
        self.streams = ids[starts.unsqueeze(1) + offsets.unsqueeze(0)].t().contiguous()

    def __len__(self) -> int:
        return self.chunks

    def chunk(self, k: int) -> tuple[Tensor, Tensor]:
        """Chunk k (wrapping around): inputs and next-symbol targets, each (T, B)."""
        k %= self.chunks
        T = self.seq_len
        block = self.streams[k * T : (k + 1) * T + 1]
        return block[:-1], block[1:]
