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

from collections import deque
from dataclasses import dataclass, field


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


@dataclass
class RecentWindow:
    """Correctness and squared error of the most recent training sequences, for ST3 and the
    progress bar."""

    size: int
    correct: deque = field(default_factory=deque)
    errors: deque = field(default_factory=deque)

    def add(self, correct, errors) -> None:
        for c, e in zip(correct, errors):
            self.correct.append(bool(c))
            self.errors.append(float(e))
            if len(self.correct) > self.size:
                self.correct.popleft()
                self.errors.popleft()

    @property
    def full(self) -> bool:
        return len(self.correct) >= self.size

    def last_all_correct(self, k: int) -> bool:
        """The k most recent sequences were all correct."""
        return len(self.correct) >= k and all(list(self.correct)[-k:])

    def wrong(self) -> int:
        return len(self.correct) - sum(self.correct)

    def mean_error(self) -> float:
        return sum(self.errors) / max(1, len(self.errors))

    def fraction_correct(self) -> float:
        return sum(self.correct) / max(1, len(self.correct))

    def satisfies(self, rule: StopRule) -> bool:
        """The ``recent`` rule: a full window, few enough wrong, low enough error."""
        return (self.full and self.wrong() <= rule.max_wrong
                and (rule.beta is None or self.mean_error() < rule.beta))

    def state(self) -> dict:
        return {"correct": list(self.correct), "errors": list(self.errors)}

    def load(self, state: dict) -> None:
        self.correct = deque(state["correct"])
        self.errors = deque(state["errors"])
