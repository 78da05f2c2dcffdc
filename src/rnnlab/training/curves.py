"""Learning curves of a reproduction or a sweep: one panel per row or point, every trial's error
on its most recent training sequences against the sequences presented, the paper's mean marked."""

from __future__ import annotations

from pathlib import Path

from .experiments import EXPERIMENTS
from .runs import RunDir

Curve = tuple[list[int], list[float], int | None]


def shard_curves(folder: Path, count: int) -> list[Curve]:
    """(sequences, recent error, stopped at) of each of a run folder's ``count`` trials, from
    its log: a paper-protocol shard logs every trial's error (``trial_error``), a minibatch
    run its own (``recent_error``)."""
    run = RunDir(folder)
    metrics = run.metrics()
    result = run.result() if (run.path / "result.json").exists() else None
    paper = run.config().get("protocol") == "paper"
    curves = []
    for k in range(count):
        if not paper:  # a minibatch run: one trial
            xs = [m["sequences"] for m in metrics]
            ys = [m["recent_error"] for m in metrics]
            solved = result["sequences"] if result else None
        else:
            xs = [m["sequences"] for m in metrics if "trial_error" in m]
            ys = [m["trial_error"][k] for m in metrics if "trial_error" in m]
            solved = result["trials"][k]["sequences"] if result else None
        if solved is not None:  # a finished trial's log stops where it stopped
            xs, ys = zip(*[(x, y) for x, y in zip(xs, ys) if x <= solved]) if xs else ([], [])
        curves.append((list(xs), list(ys), solved))
    return curves


def trial_curves(out: Path, row: dict) -> list[Curve]:
    """Every trial's curve of a reproduce row, from its shards' logs."""
    return [c for first, count in row["shards"]
            for c in shard_curves(Path(out) / "runs" / row["key"]
                                  / f"trials-{first}-{first + count - 1}", count)]


def plot(out: Path, rows: list[dict], path: Path, columns: int = 4) -> Path:
    """The grid of panels for these rows (reproduce plan entries) into ``path`` (PNG)."""
    return plot_panels([(row["key"], trial_curves(out, row),
                         EXPERIMENTS[row["key"]].paper_sequences) for row in rows],
                       path, columns)


def plot_panels(panels: list[tuple[str, list[Curve], float | None]], path: Path,
                columns: int = 4) -> Path:
    """A panel per (title, curves, paper's mean or None) into ``path`` (PNG)."""
    from .._plotting import headless

    headless()
    import matplotlib.pyplot as plt

    n = len(panels)
    cols = min(columns, n)
    lines = (n + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(3.4 * cols, 2.6 * lines), dpi=100,
                             squeeze=False)
    for ax, (title, curves, paper) in zip(axes.flat, panels):
        for xs, ys, solved in curves:
            if not xs:
                continue
            line, = ax.plot(xs, [max(y, 1e-6) for y in ys], linewidth=0.8, alpha=0.8)
            if solved is not None:
                ax.plot([xs[-1]], [max(ys[-1], 1e-6)], "o", markersize=3,
                        color=line.get_color())
        if paper is not None:
            ax.axvline(paper, color="black", linestyle="--", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
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
