"""Learning curves of a reproduction: one panel per experiment, every trial's error on its
most recent training sequences against the sequences presented, the paper's mean marked."""

from __future__ import annotations

from pathlib import Path

from .experiments import EXPERIMENTS
from .runs import RunDir


def trial_curves(out: Path, row: dict) -> list[tuple[list[int], list[float], int | None]]:
    """(sequences, recent error, solved at) of every trial of a row, from its shards' logs."""
    curves = []
    for first, count in row["shards"]:
        run = RunDir(Path(out) / "runs" / row["key"] / f"trials-{first}-{first + count - 1}")
        metrics = run.metrics()
        result = run.result() if (run.path / "result.json").exists() else None
        for k in range(count):
            xs = [m["sequences"] for m in metrics if "trial_error" in m]
            ys = [m["trial_error"][k] for m in metrics if "trial_error" in m]
            solved = result["trials"][k]["sequences"] if result else None
            if solved is not None:  # a solved trial's log stops where it stopped
                xs, ys = zip(*[(x, y) for x, y in zip(xs, ys) if x <= solved]) if xs else ([], [])
            curves.append((list(xs), list(ys), solved))
    return curves


def plot(out: Path, rows: list[dict], path: Path, columns: int = 4) -> Path:
    """The grid of panels for these rows (reproduce plan entries) into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    cols = min(columns, n)
    lines = (n + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(3.4 * cols, 2.6 * lines), dpi=100,
                             squeeze=False)
    for ax, row in zip(axes.flat, rows):
        exp = EXPERIMENTS[row["key"]]
        for xs, ys, solved in trial_curves(out, row):
            if not xs:
                continue
            line, = ax.plot(xs, [max(y, 1e-6) for y in ys], linewidth=0.8, alpha=0.8)
            if solved is not None:
                ax.plot([xs[-1]], [max(ys[-1], 1e-6)], "o", markersize=3,
                        color=line.get_color())
        ax.axvline(exp.paper_sequences, color="black", linestyle="--", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_title(row["key"], fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.supxlabel("training sequences presented (dashed: the paper's mean to success; "
                  "dot: a trial's stop)", fontsize=9)
    fig.supylabel("mean squared error, recent training sequences", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
