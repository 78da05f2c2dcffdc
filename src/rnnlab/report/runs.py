"""The report of a folder of task runs (what `rnnlab demo` writes): a table of them side by
side, their learning curves on one plot, then each run's own sections."""

from __future__ import annotations

import json
from pathlib import Path

from ..training.runs import RunDir
from . import task
from .common import curve_figure
from .page import Page, figure_png, table


def report(folder: Path, runs: list[Path]) -> Page:
    page = Page(f"rnnlab runs — {folder.name}", f"{len(runs)} runs · {folder}")
    rows, series = [], []
    for run in runs:
        cfg = json.loads((run / "config.json").read_text())
        result = RunDir(run).result() if (run / "result.json").is_file() else None
        if result is not None and "test" in result:
            t = result["test"]
            rows.append([run.name, cfg["model"], cfg["hidden"],
                         "yes" if result["solved"] else "no",
                         f"{result['sequences_to_success'] or result['sequences']:,}",
                         f"{t['wrong']} of {t['n']}"])
        metrics = RunDir(run).metrics()
        series.append((run.name, [m["sequences"] for m in metrics],
                       [m.get("recent_error", float("nan")) for m in metrics]))
    page.section("summary", "The runs side by side",
                 table(["run", "model", "hidden", "solved", "sequences", "test wrong"], rows,
                       numeric=(2, 4))
                 + figure_png(curve_figure(series, "sequences presented", "recent error")),
                 "Each model's result and its training error on the most recent sequences.")
    for run in runs:
        sub = task.report(run)
        for key, title, body in sub.sections:
            if key in ("result", "carousel", "analysis"):
                page.sections.append((f"{run.name}-{key}", f"{run.name}: {title}", body))
    return page
