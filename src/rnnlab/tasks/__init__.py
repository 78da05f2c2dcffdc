"""Sequence tasks: the 1997 suite, the modern long-lag tasks and the lecture's toys.

    task = rnnlab.tasks.make("adding-1997", T=100)
    batch = task.sample(32, torch.Generator().manual_seed(0))
    ok = task.correct(outputs, batch)        # the paper's per-sequence criterion
"""

from __future__ import annotations

from .arith1997 import Adding1997, Multiplication1997
from .base import Batch, Task
from .latch import Latch3a, Latch3b, Latch3c
from .longlag import LongLag2a, LongLag2b, LongLag2c
from .modern import Adding, Copy
from .order import Order6a, Order6b
from .reber import Reber
from .toys import BinaryAddition, Parity

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (Reber, LongLag2a, LongLag2b, LongLag2c, Latch3a, Latch3b, Latch3c, Adding1997,
                Multiplication1997, Order6a, Order6b, Adding, Copy, Parity, BinaryAddition)
}


def names() -> list[str]:
    return list(TASKS)


def make(name: str, **params) -> Task:
    """The task ``name`` with its parameters (see ``TASKS[name].defaults``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name](**params)


__all__ = ["Task", "Batch", "TASKS", "make", "names"]
