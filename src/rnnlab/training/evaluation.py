"""What the two protocols share: the per-sequence error the stopping rules watch, and the test
on fresh sequences (`evaluate`)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..tasks import Batch, Task


def next_multiple(seen: int, every: int) -> int:
    """The next multiple of ``every`` after ``seen`` (where the next log line or check falls)."""
    return (seen // every + 1) * every


def sequence_errors(task: Task, out: Tensor, batch: Batch) -> Tensor:
    """(B,) the per-sequence training error of the stopping rules: the mean squared error over
    target steps and output units (for cross-entropy tasks, the mean cross-entropy)."""
    steps = batch.mask.sum(0).clamp_min(1).to(out.dtype)
    if task.loss == "ce":
        return task.error(out, batch) / steps
    sq = ((out - batch.y) ** 2).mean(-1) * batch.mask
    return sq.sum(0) / steps


@torch.no_grad()
def evaluate(predict, task: Task, n: int, generator: torch.Generator | None = None, *,
             batches: tuple[Batch, ...] | None = None, chunk: int = 1000) -> dict:
    """Test on ``n`` fresh sequences (or on the given batches): how many are wrong by the task's
    criterion, the mean absolute and squared error at the target steps (against the noise-free
    targets where the task's targets are noisy)."""
    generator = generator or torch.Generator().manual_seed(12345)
    # dense inputs of wide one-hot tasks (2c: 1,004 units over 1,000+ steps) are built chunk by
    # chunk: keep a chunk's inputs near 40 M numbers
    width = task.mean_length * task.input_size
    chunk = max(16, min(chunk, int(4e7 // max(1.0, width))))
    wrong = total = 0
    abs_sum = sq_sum = targets = 0.0
    if batches is None:  # drawn one chunk at a time, each dropped once tested
        batches = (task.sample(min(chunk, n - s), generator) for s in range(0, n, chunk))
    for batch in batches:
        out = predict(batch)
        wrong += int((~task.correct(out, batch)).sum())
        total += batch.size
        if task.loss != "ce":
            m = batch.mask.unsqueeze(-1).to(out.dtype)
            target = batch.extra.get("clean_y", batch.y)  # noisy targets (3c): the clean ones
            abs_sum += float(((out - target).abs() * m).sum())
            sq_sum += float((((out - target) ** 2) * m).sum())
            targets += float(m.sum()) * out.shape[-1]
    result = {"n": total, "wrong": wrong, "fraction_wrong": wrong / max(1, total)}
    if targets:
        result.update(mean_abs_error=abs_sum / targets, mse=sq_sum / targets)
    return result
