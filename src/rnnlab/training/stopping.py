"""The paper's stopping rules, counted in sequences presented.

- ``recent`` — ST3(β): of the ``window`` most recent training sequences at most ``max_wrong``
  were processed wrongly (0: all correct) and their mean squared error is below β (the 1997
  adding, multiplication and order tasks use window 2000); with β = None only the first part.
- ``test`` — ST1 / ST2 / ABS: every ``every`` sequences a fresh test set of ``n`` sequences is
  drawn; stop when at most ``max_wrong`` of them are wrong and (ST2) their mean absolute error at
  the target steps is below β.
- ``fixed`` — the embedded Reber protocol: every ``every`` sequences, every string of the
  task's fixed training and test sets is processed correctly.
Every rule also stops at the budget of training sequences; only the first two count as
success.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class StopRule:
    kind: str = "recent"  # "recent" or "test"
    window: int = 2000
    beta: float | None = None
    every: int = 1000
    n: int = 256
    max_wrong: int = 0

    def __post_init__(self):
        if self.kind not in ("recent", "test", "fixed"):
            raise ValueError(f"stopping rule must be 'recent', 'test' or 'fixed', got "
                             f"{self.kind!r}")
        for name in ("window", "every", "n"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"stopping rule: {name} must be positive")

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"all fixed training and test sequences correct (checked every {self.every})"
        if self.kind == "recent":
            beta = "" if self.beta is None else f", mean squared error < {self.beta}"
            wrong = "all" if not self.max_wrong else f"all but ≤ {self.max_wrong}"
            return f"{wrong} of the {self.window} most recent sequences correct{beta}"
        beta = "" if self.beta is None else f" and mean |error| < {self.beta}"
        return (f"≤ {self.max_wrong} wrong of {self.n} fresh test sequences{beta} "
                f"(checked every {self.every})")


class RecentWindow:
    """Correctness and squared error of the most recent training sequences, for ST3, the
    filters of the other rules and the progress line."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.correct = np.zeros(0, dtype=bool)
        self.errors = np.zeros(0, dtype=np.float64)

    def add(self, correct, errors) -> None:
        self.correct = np.concatenate((self.correct, np.asarray(correct, dtype=bool)))[
            -self.size:]
        self.errors = np.concatenate((self.errors, np.asarray(errors, dtype=np.float64)))[
            -self.size:]

    def first_satisfying(self, correct, errors, rule: StopRule) -> int | None:
        """The index of the first of these new sequences after which the ``recent`` rule
        holds (the window then ends with it), or None; the window itself is not changed."""
        c = np.concatenate((self.correct, np.asarray(correct, dtype=bool)))
        e = np.concatenate((self.errors, np.asarray(errors, dtype=np.float64)))
        old, new = len(self.correct), len(c) - len(self.correct)
        ends = old + np.arange(1, new + 1)  # the window after new sequence j is c[start:end]
        starts = np.maximum(0, ends - self.size)
        wrong = np.concatenate(([0], np.cumsum(~c)))
        total = np.concatenate(([0.0], np.cumsum(e)))
        ok = (ends - starts >= self.size) & (wrong[ends] - wrong[starts] <= rule.max_wrong)
        if rule.beta is not None:
            ok &= (total[ends] - total[starts]) / np.maximum(1, ends - starts) < rule.beta
        hits = np.flatnonzero(ok)
        return int(hits[0]) if len(hits) else None

    @property
    def full(self) -> bool:
        return len(self.correct) >= self.size

    def last_all_correct(self, k: int) -> bool:
        """The k most recent sequences were all correct."""
        return len(self.correct) >= k and bool(self.correct[len(self.correct) - k:].all())

    def wrong(self) -> int:
        return int((~self.correct).sum())

    def mean_error(self) -> float:
        return float(self.errors.mean()) if len(self.errors) else 0.0

    def fraction_correct(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else 0.0

    def satisfies(self, rule: StopRule) -> bool:
        """The ``recent`` rule: a full window, few enough wrong, low enough error."""
        return (self.full and self.wrong() <= rule.max_wrong
                and (rule.beta is None or self.mean_error() < rule.beta))

    def state(self) -> dict:
        return {"correct": self.correct.tolist(), "errors": self.errors.tolist()}

    def load(self, state: dict) -> None:
        self.correct = np.asarray(state["correct"], dtype=bool)
        self.errors = np.asarray(state["errors"], dtype=np.float64)
