"""Character-level language modelling (work in progress: data handling so far)."""

from .data import StreamBatcher, Vocabulary, read_text, split

__all__ = ["Vocabulary", "StreamBatcher", "read_text", "split"]
