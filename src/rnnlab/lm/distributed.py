"""Char-LM training under torchrun: one process per rank, DistributedDataParallel.

    torchrun --standalone --nproc-per-node N -m rnnlab lm train TEXT --out RUN ...

The B parallel streams of a chunk are dealt out in equal shares: rank r reads streams
r·B/N … (r+1)·B/N − 1 and carries their states. Each rank's loss is the mean over its share, and
DDP averages the gradients, so every rank takes the step one process would take reading all B
streams (the same numbers, to float rounding). Every decision that must be the same on every
rank — stop, checkpoint now, Ctrl-C was pressed somewhere — is taken together (`agree`), once a
step. Rank 0 alone writes the run folder; a checkpoint gathers the other ranks' stream states
and random-generator states into it, so a run resumes exactly, also on another number of
processes (the generators are then reseeded). The process group is gloo (CPU tensors).
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

#: how long a rank waits for the others at a collective before it gives up (a rank that died)
TIMEOUT = timedelta(minutes=5)


class Ranks:
    """This process's place in the job: ``rank`` of ``world``."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, batch: int) -> slice:
        """The streams of a batch of ``batch`` that this rank reads."""
        if batch % self.world:
            raise ValueError(f"--batch ({batch}) must be a multiple of the number of processes "
                             f"({self.world}): each reads an equal share of the streams")
        n = batch // self.world
        return slice(self.rank * n, (self.rank + 1) * n)


def launched() -> bool:
    """Started by torchrun (or another launcher that sets WORLD_SIZE) with several processes?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def join() -> Ranks | None:
    """Join the launcher's process group; None when this is the only process."""
    if not launched():
        return None
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size())


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def agree(flags: list[bool]) -> list[bool]:
    """Each flag true on every rank if it is true on any."""
    t = torch.tensor([int(f) for f in flags], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def from_main(flag: bool) -> bool:
    """Rank 0's flag, on every rank."""
    t = torch.tensor([int(flag)], dtype=torch.int32)
    dist.broadcast(t, src=0)
    return bool(t.item())


def mean(value: float) -> float:
    """The mean of a number over the ranks."""
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def gather_streams(t: Tensor) -> Tensor:
    """The (layers, B/N, ·) state tensors of every rank, as one (layers, B, ·) in stream order."""
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=1)


def gather_generators() -> list[Tensor]:
    """Every rank's torch random-generator state (rank order)."""
    state = torch.get_rng_state()
    parts = [torch.empty_like(state) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, state)
    return parts


def barrier() -> None:
    dist.barrier()
