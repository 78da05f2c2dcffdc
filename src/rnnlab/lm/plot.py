"""Learning curves of language-model runs: validation bits per character against time and
characters read, one line per run (the runs' own labels: backend, model, size)."""

from __future__ import annotations

from pathlib import Path

from ..training.runs import RunDir, atomic_write


def label(run: str | Path) -> str:
    cfg = RunDir(run).config()
    return (f"{Path(run).name}: {cfg['backend']} {cfg['model']} {cfg['layers']}×{cfg['hidden']}"
            f", T={cfg['seq_len']}, lr {cfg['lr']:g}")


def plot_curves(runs: list[str | Path], out: str | Path) -> Path:
    """Write a PNG with two panels (val bpc vs minutes, vs characters) for the runs."""
    from .._plotting import headless

    headless()
    import matplotlib.pyplot as plt

    from .trainer import curve

    if not runs:
        raise ValueError("give at least one run folder")
    fig, (by_time, by_chars) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for run in runs:
        name = label(run)  # also checks that it is a run folder
        points = curve(run)
        if not points:
            raise ValueError(f"{run} has no validation records yet")
        by_time.plot([m["minutes"] for m in points], [m["val_bpc"] for m in points], "o-",
                     label=name, markersize=3)
        by_chars.plot([m["chars"] / 1e6 for m in points], [m["val_bpc"] for m in points], "o-",
                      label=name, markersize=3)
    by_time.set(xlabel="minutes", ylabel="validation bits per character")
    by_chars.set(xlabel="million characters read")
    for ax in (by_time, by_chars):
        ax.grid(alpha=0.3)
    by_time.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return out
