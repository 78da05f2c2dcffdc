"""Text data for char-level language models: vocabulary, split, stream batching."""

import pytest
import torch

from rnnlab.lm import StreamBatcher, Vocabulary, read_text, split

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler — ünïcödé too.\n" * 20


def test_vocabulary_round_trip_and_storage():
    v = Vocabulary.from_text(TEXT)
    ids = v.encode(TEXT)
    assert v.decode(ids) == TEXT and len(v) == len(set(TEXT))
    again = Vocabulary.from_json(v.to_json())
    assert again == v and torch.equal(again.encode(TEXT), ids)
    with pytest.raises(ValueError, match="lacks"):
        v.encode("X€")
    with pytest.raises(ValueError):
        Vocabulary.from_json("{}")


def test_byte_level(tmp_path):
    blob = bytes(range(256)) + b"\xff\xfe"
    (tmp_path / "b.bin").write_bytes(blob)
    data, v = read_text(tmp_path / "b.bin", byte_level=True)
    assert len(v) == 256 and v.decode(v.encode(data)) == blob
    with pytest.raises(ValueError, match="not UTF-8"):
        read_text(tmp_path / "b.bin")
    with pytest.raises(ValueError, match="no text file"):
        read_text(tmp_path / "missing.txt")


def test_split_keeps_the_tail_for_validation():
    ids = torch.arange(1000)
    train, val = split(ids)
    assert len(val) == 50 and torch.equal(val, ids[950:]) and torch.equal(train, ids[:950])


def test_streams_are_contiguous_across_chunks():
    ids = torch.arange(1003)
    b = StreamBatcher(ids, batch_size=4, seq_len=10)
    assert len(b) == 25  # (1002 // 4) // 10
    x0, y0 = b.chunk(0)
    x1, _ = b.chunk(1)
    assert x0.shape == (10, 4)
    assert torch.equal(y0, x0 + 1)  # targets are the next symbols
    assert torch.equal(x1[0], x0[-1] + 1)  # row b of chunk 1 continues row b of chunk 0
    assert torch.equal(x0[0], torch.tensor([0, 250, 500, 750]))  # B parallel streams
    assert torch.equal(b.chunk(25)[0], x0)  # wraps around
    with pytest.raises(ValueError, match="too short"):
        StreamBatcher(torch.arange(20), batch_size=4, seq_len=10)
