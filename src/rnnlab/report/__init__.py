"""`rnnlab report`: a run folder rendered as one self-contained HTML page.

Reads run folders (a task run, a char-LM run, a reproduce or sweep folder, or a folder of task runs
such as the demo's) and calls the analysis; nothing below this package imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..training.runs import atomic_write

__all__ = ["render"]


def kind(folder: Path) -> str:
    """Which report a folder gets: "sweep", "reproduce", "lm", "task" or "runs"."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no run folder at {folder}")
    if (folder / "sweep-plan.json").is_file():
        return "sweep"
    if (folder / "plan.json").is_file():
        return "reproduce"
    config = folder / "config.json"
    if config.is_file():
        try:
            cfg = json.loads(config.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{config} is not valid JSON ({e})") from e
        return "lm" if "seq_len" in cfg else "task"
    if _task_runs(folder):
        return "runs"
    raise ValueError(f"{folder} holds no run: no config.json (a run of `rnnlab train` or "
                     f"`rnnlab lm train`), no plan.json (`rnnlab reproduce`), no "
                     f"sweep-plan.json (`rnnlab sweep`) and no runs")


def _task_runs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "config.json").is_file()
                  and "task" in json.loads((p / "config.json").read_text()))


def render(folder, out=None, *, cells: list[int] | None = None) -> Path:
    """Write the report of ``folder`` to ``out`` (default FOLDER/report.html); returns it."""
    folder = Path(folder)
    what = kind(folder)
    out = Path(out) if out is not None else folder / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"the report is an HTML file: give --out a name ending in .html, "
                         f"got {out}")
    if cells and what != "lm":
        raise ValueError("--cells colours a char-LM run's passage; this is a "
                         f"{what} folder")
    if what == "sweep":
        from .sweep import report
        page = report(folder)
    elif what == "reproduce":
        from .reproduce import report
        page = report(folder)
    elif what == "lm":
        from .lm import report
        page = report(folder, cells)
    elif what == "task":
        from .task import report
        page = report(folder)
    else:
        from .runs import report
        page = report(folder, _task_runs(folder))
    out.parent.mkdir(parents=True, exist_ok=True)
    text = page.html()
    atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return out
