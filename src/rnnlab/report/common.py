"""Sections every report has: what was asked for, where it ran, and plotting helpers."""

from __future__ import annotations

import json
from pathlib import Path

from .._plotting import headless

headless()
import matplotlib.pyplot as plt  # noqa: E402

from .page import Page, key_values  # noqa: E402


def config_and_environment(page: Page, folder: Path, config: dict,
                           env_folder: Path | None = None) -> None:
    """The configuration, and the environment recorded in ``env_folder`` (default: the
    folder itself)."""
    page.section("configuration", "Configuration", key_values(config),
                 "Everything the run was asked for (config.json): rerun it with the same "
                 "settings and seed to get the same numbers.")
    env = (env_folder or folder) / "environment.json"
    if env.is_file():
        body = key_values(json.loads(env.read_text()))
    else:  # runs made before rnnlab recorded it
        body = "<p>Not recorded (the run predates environment.json); rnnlab " \
               f"{config.get('version', '?')} wrote it.</p>"
    page.section("environment", "Environment", body,
                  "Where it ran: timings depend on the threads and on whether the compiled "
                  "kernels or the Python reference path did the work.")


def curve_figure(series: list[tuple[str, list, list]], xlabel: str, ylabel: str, *,
                 log: bool = True, title: str = "", mark: float | None = None):
    """One axes of named (label, xs, ys) lines; ``mark`` a horizontal reference line."""
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for label, xs, ys in series:
        if xs:  # a short log (a run shorter than its log interval) gets its points marked
            ax.plot(xs, ys, label=label, linewidth=1.2, marker="o" if len(xs) < 4 else None,
                    markersize=4)
    if mark is not None:
        ax.axhline(mark, color="grey", linestyle="--", linewidth=1)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def side_by_side(*imgs: str) -> str:
    cells = "".join(f'<div style="flex:1;min-width:320px">{i}</div>' for i in imgs)
    return f'<div style="display:flex;gap:1em;flex-wrap:wrap">{cells}</div>'
