"""What every task provides: sizes, output activation and loss, a seeded batch generator, the
paper's per-sequence correctness criterion and the published reference result."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor


class Batch:
    """One batch, time-major. Targets count only where ``mask`` is True.

    x (T, B, input_size) the inputs; y (T, B, output_size) float targets, or (T, B) class
    indices for "ce" tasks; mask (T, B) bool, a target is given at this step; lengths (B,)
    int64, x is zero past a sequence's end; extra, what a criterion needs beyond y.

    Tasks whose inputs are one-hot give ``symbols`` (T, B) int64 instead of x: the index of
    the active input unit, −1 where none is. ``x`` is then built from them when first read,
    so that a learner that takes symbols (the 1997 on-line learner) never pays for the dense
    form (task 2c with p = 1000 has 1,004 inputs over 1,000+ steps).
    """

    def __init__(self, x: Tensor | None, y: Tensor, mask: Tensor, lengths: Tensor,
                 extra: dict[str, Tensor] | None = None, *, symbols: Tensor | None = None,
                 input_size: int | None = None) -> None:
        if x is None and (symbols is None or input_size is None):
            raise ValueError("a Batch needs x, or symbols and input_size")
        self._x, self.symbols, self.input_size = x, symbols, input_size
        self.y, self.mask, self.lengths = y, mask, lengths
        self.extra = {} if extra is None else extra

    @property
    def x(self) -> Tensor:
        if self._x is None:
            on = self.symbols >= 0
            self._x = one_hot(self.symbols.clamp_min(0), self.input_size) * on.unsqueeze(-1)
        return self._x

    @property
    def inputs(self) -> Tensor:
        """What a model reads (`training.model.SequenceModel`): the symbols where the task
        gives them, else x."""
        return self.x if self.symbols is None else self.symbols

    @property
    def size(self) -> int:
        """Number of sequences."""
        return self.mask.shape[1]

    def to(self, device) -> Batch:
        return Batch(None if self._x is None else self._x.to(device), self.y.to(device),
                     self.mask.to(device), self.lengths,
                     {k: v.to(device) for k, v in self.extra.items()},
                     symbols=None if self.symbols is None else self.symbols.to(device),
                     input_size=self.input_size)


class Task:
    """Base class. Subclasses set the class attributes and implement `_sample`/`correct`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: parameter -> default; constructor keywords are exactly these
    defaults: ClassVar[dict[str, object]] = {}
    #: "sigmoid", "linear" or "softmax": what the model's readout applies
    output: ClassVar[str] = "sigmoid"
    #: "mse" (½ squared error summed over units, as the paper), "bce" or "ce"
    loss: ClassVar[str] = "mse"
    #: the paper's set-up and result, for `rnnlab tasks` and `rnnlab reproduce`
    reference: ClassVar[str] = ""

    input_size: int
    output_size: int

    def __init__(self, **params) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(f"task {self.name!r} has no parameter {', '.join(unknown)}; "
                             f"its parameters are {sorted(self.defaults) or 'none'}")
        self.params = {**self.defaults, **params}
        for k, v in self.params.items():
            setattr(self, k, v)
        self._check()

    def _check(self) -> None:
        """Validate self.params; raise ValueError naming the bad one."""

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """A batch of fresh random sequences; the same generator state gives the same batch."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return self._sample(batch_size, generator or torch.Generator().manual_seed(0))

    def _sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def correct(self, out: Tensor, batch: Batch) -> Tensor:
        """(B,) bool: was each sequence processed correctly (the paper's criterion)?
        ``out`` is the readout after its activation, (T, B, output_size)."""
        raise NotImplementedError

    def error(self, out: Tensor, batch: Batch) -> Tensor:
        """(B,) the task's loss per sequence, summed over target steps and units."""
        m = batch.mask.to(out.dtype)
        if self.loss == "ce":
            logp = torch.log_softmax(out, -1) if self.output == "linear" else out.clamp_min(
                1e-12).log()
            nll = -logp.gather(-1, batch.y.unsqueeze(-1)).squeeze(-1)
            return (nll * m).sum(0)
        if self.loss == "bce":
            p = out.clamp(1e-7, 1 - 1e-7)
            e = -(batch.y * p.log() + (1 - batch.y) * (1 - p).log())
        else:
            e = 0.5 * (out - batch.y) ** 2
        return (e.sum(-1) * m).sum(0)

    def marked(self, batch: Batch) -> Tensor | None:
        """(T, B) bool: the steps whose input the answer depends on (the marked pairs of the
        adding problem), for reports to highlight; None where the task does not single any
        out."""
        return None

    @property
    def mean_length(self) -> float:
        """Expected number of steps per sequence (for cost estimates)."""
        raise NotImplementedError

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({args})"


def positive_int(task: Task, name: str, minimum: int = 1) -> None:
    v = task.params[name]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"task {task.name!r}: {name} must be an int ≥ {minimum}, got {v!r}")


def last_step(batch: Batch) -> Tensor:
    """(B,) index of each sequence's last step."""
    return batch.lengths.to(batch.mask.device) - 1


def at_end(out: Tensor, batch: Batch) -> Tensor:
    """(B, units): the output at each sequence's own last step."""
    rows = torch.arange(out.shape[1], device=out.device)
    return out[last_step(batch), rows]


def end_mask(lengths: Tensor, T: int) -> Tensor:
    """(T, B) True at each sequence's last step."""
    return torch.arange(T).unsqueeze(1) == (lengths - 1).unsqueeze(0)


def one_hot(symbols: Tensor, n: int) -> Tensor:
    return torch.nn.functional.one_hot(symbols, n).float()


def uniform_lengths(batch: int, lo: int, hi: int, generator) -> Tensor:
    """Lengths uniform in [lo, hi], inclusive."""
    return torch.randint(lo, hi + 1, (batch,), generator=generator)
