"""The figures rnnlab draws go to files: off-screen (Agg), unless a notebook's inline backend
is in use, which the library must not switch off (a tutorial's own plots would vanish)."""

from __future__ import annotations

import os


def headless() -> None:
    """Select matplotlib's Agg backend, except under Jupyter's inline or widget backends."""
    import matplotlib

    chosen = os.environ.get("MPLBACKEND", "")
    if "inline" in chosen or "ipympl" in chosen or "widget" in chosen:
        return
    matplotlib.use("Agg")
