"""The modern LSTM beside each 1997 row, made fair.

The column's plain recipe — torch's initialisation, whose forget-gate bias 0 halves the error
reaching back each step (0.5¹⁰⁰ over a 100-step lag) — is a strawman. `rnnlab reproduce
--fair-modern` gives each row the recipes a practitioner would use:

- ``forget-bias-1``: the forget gate's bias starts at 1 (Gers et al. 2000; Keras's default);
- ``chrono``: chrono initialisation (Tallec & Ollivier 2018), forget bias log U[1, T_max − 1]
  with T_max the row's mean sequence length (the longest lag it can need, our choice), the
  input gate's its negative;

each with Adam at every learning rate of `LRS`, tuned on seed `TUNE_SEED` (not a seed of the
table's runs). The best (recipe, rate) — solved, then the fewest sequences, then the fewest
wrong test sequences — then runs on the table's seeds; the plain recipe (bias 0, lr 3e-3)
stays beside it for contrast. Everything else is the column's: 32 units, minibatches of 32,
gradient clipping 1, the row's task, stopping rule, test set and budget.
"""

from __future__ import annotations

import math

#: the modern LSTM's settings (the plain recipe: torch's initialisation, Adam 3e-3)
BASE = dict(model="lstm", hidden=32, optimizer="adam", lr=3e-3, batch_size=32, clip=1.0)
RECIPES = ("forget-bias-1", "chrono")
LRS = (1e-3, 3e-3, 1e-2)
TUNE_SEED = 1000


def recipe_options(recipe: str, mean_length: float) -> dict:
    """The model options of a recipe for a task whose sequences average ``mean_length``."""
    if recipe == "forget-bias-0":
        return {}
    if recipe == "forget-bias-1":
        return {"forget_bias": 1.0}
    if recipe == "chrono":
        return {"chrono_init": float(max(3, round(mean_length)))}
    raise ValueError(f"unknown modern recipe {recipe!r}; known: forget-bias-0, "
                     f"{', '.join(RECIPES)}")


def tuning_points(modern: dict) -> list[tuple[str, float]]:
    """The (recipe, learning rate) pairs a plan row's ``modern`` part tunes (none if not fair)."""
    return [(r, lr) for r in modern.get("recipes", []) for lr in modern.get("lrs", [])]


def _rank(result: dict) -> tuple:
    """Solved first, then the fewest sequences, then the fewest wrong test sequences."""
    solved = result["solved"]
    return (not solved, result["sequences_to_success"] if solved else math.inf,
            result["test"]["wrong"])


def best(tuned: dict[tuple[str, float], dict]) -> tuple[str, float]:
    """The winning (recipe, rate) of the tuning runs' results (ties: the first tried)."""
    return min(tuned, key=lambda point: _rank(tuned[point]))


def summary(recipe: str, lr: float, results: list[dict]) -> dict:
    """Runs of one recipe in brief: solved of runs, mean sequences over the solved."""
    solved = [m["sequences_to_success"] for m in results if m["solved"]]
    return {"recipe": recipe, "lr": lr, "runs": len(results), "solved": len(solved),
            "mean_sequences": sum(solved) / len(solved) if solved else None,
            "test_wrong": [m["test"]["wrong"] for m in results]}
