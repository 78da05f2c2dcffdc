"""Char-LM training under torchrun: one process per rank, DistributedDataParallel.

    torchrun --standalone --nproc-per-node N -m rnnlab lm train TEXT --out RUN ...

The B parallel streams of a chunk are dealt out in equal shares: rank r reads streams
r·B/N … (r+1)·B/N − 1 and carries their states. Each rank's loss is the mean over its share, and
DDP averages the gradients, so every rank takes the step one process would take reading all B
streams (the same numbers, to float rounding). Every decision that must be the same on every
rank — stop, checkpoint now, Ctrl-C was pressed somewhere — is taken together (`agree`), once a
step. Rank 0 alone writes the run folder; a checkpoint gathers the other ranks' stream states
and random-generator states into it, so a run resumes exactly, also on another number of
processes (the generators are then reseeded). Where CUDA is available each rank trains on its
own GPU (``cuda:LOCAL_RANK``) over NCCL; otherwise on the CPU over gloo.
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
    """This process's place in the job: ``rank`` of ``world``, training on ``device``; the
    collectives the trainer needs, on tensors of that device (NCCL takes CUDA tensors only)."""

    def __init__(self, rank: int, world: int, device: torch.device) -> None:
        self.rank, self.world, self.device = rank, world, device

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

    def agree(self, flags: list[bool]) -> list[bool]:
        """Each flag true on every rank if it is true on any."""
        t = torch.tensor([int(f) for f in flags], dtype=torch.int32, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def from_main(self, flag: bool) -> bool:
        """Rank 0's flag, on every rank."""
        t = torch.tensor([int(flag)], dtype=torch.int32, device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def mean(self, value: float) -> float:
        """The mean of a number over the ranks."""
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def gather_streams(self, t: Tensor) -> Tensor:
        """Every rank's (layers, B/N, ·) state tensor as one (layers, B, ·), in stream order,
        on the CPU."""
        parts = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=1).cpu()

    def gather_generators(self) -> list[Tensor]:
        """Every rank's state of the generator its dropout draws from (the GPU's on CUDA)."""
        state = generator_state(self.device).to(self.device)
        parts = [torch.empty_like(state) for _ in range(self.world)]
        dist.all_gather(parts, state)
        return [p.cpu() for p in parts]


def generator_state(device: torch.device) -> Tensor:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def set_generator_state(device: torch.device, state: Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def launched() -> bool:
    """Started by torchrun (or another launcher that sets WORLD_SIZE) with several processes?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def join() -> Ranks | None:
    """Join the launcher's process group; None when this is the only process."""
    if not launched():
        return None
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda \
        else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size(), device)


def leave(finished: bool) -> None:
    """Leave the process group. After a normal end every rank first waits for the others: a
    rank that tears down its gloo connections while a peer still sends on them can abort at
    exit ("terminate called without an active exception"). After an error, no wait (the
    others may never arrive)."""
    if dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    dist.barrier()
