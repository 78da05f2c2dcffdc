"""The report of a sweep folder: its points best first, and every point's learning curves (from
the shards' logs, so a sweep still running shows how far it got)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..training.curves import plot_panels, shard_curves
from ..training.sweep import plan_of, point_folders
from .common import config_and_environment
from .page import Page, png_bytes, table


def _n(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def report(folder: Path) -> Page:
    plan = plan_of(folder)
    data = json.loads((folder / "sweep.json").read_text()) if (folder / "sweep.json").is_file() \
        else {"points": [], "unfinished": [p["id"] for p in plan["points"]]}
    row = plan["kind"] == "row"
    paper = data.get("paper_sequences")
    what = f"1997 row {plan['target']}" if row else f"task {plan['target']}"
    page = Page(f"rnnlab sweep — {what}",
                f"{len(data['points'])} of {len(plan['points'])} points finished, "
                f"{plan['trials']} trials each · {folder}")
    body = []
    for p in data["points"]:
        options = ", ".join(f"{k}={json.dumps(v)}" for k, v in p["options"].items())
        span = "—" if p["mean_sequences"] is None else \
            f"{_n(p['min_sequences'])}–{_n(p['max_sequences'])}"
        line = [p["id"], options, f"{p['solved']}/{p['trials']}", _n(p["mean_sequences"]),
                span]
        if row:
            line.append("—" if p.get("ratio") is None else f"{p['ratio']:.2f}×")
        body.append(line + [f"{p['mean_test_wrong']:,.1f} of {p['test_n']:,}",
                            f"{p['wall_seconds']:.0f}"])
    headers = ["point", "options", "solved", "mean sequences", "min–max"] + \
        (["ratio to the paper"] if row else []) + ["test wrong (mean)", "CPU s"]
    page.section("points", "The points, best first", table(
        headers, body, numeric=tuple(range(2, len(headers)))),
        "Most trials solved first, then the fewest sequences to success (the mean over the "
        "solved trials), then the fewest wrong test sequences. Every point ran the same trials "
        "(the same seeds); the points differ only by the options shown."
        + (f" The paper's mean: {_n(paper)} sequences." if paper else ""))
    if data["unfinished"]:
        page.section("unfinished", "Points not finished", "<p>" + ", ".join(data["unfinished"])
                     + "</p>", "Continue them by running the same `rnnlab sweep` command.")
    started = [p for p in plan["points"] if (folder / "runs" / p["id"]).is_dir()]
    if started:
        panels = []
        for p in started:
            curves = [c for f, (_, n) in zip(point_folders(folder, plan, p), p["shards"])
                      if f.is_dir() for c in shard_curves(f, n)]
            panels.append((f"{p['id']}: " + ", ".join(f"{k}={json.dumps(v)}"
                                                      for k, v in p["options"].items()),
                           curves, paper))
        with tempfile.TemporaryDirectory() as tmp:
            png = plot_panels(panels, Path(tmp) / "curves.png")
            img = png_bytes(png.read_bytes(), "learning curves")
        page.section("curves", "Learning curves, one panel per point", img,
                     "Every trial's error on its recent training sequences against the "
                     "sequences presented; a dot: where a trial stopped"
                     + ("; dashed: the paper's mean to success." if paper else "."))
    shards = sorted((folder / "runs").glob("*/*/environment.json"))
    config_and_environment(page, folder, {k: plan[k] for k in (
        "target", "kind", "grid", "trials", "seed", "base", "max_sequences", "version")},
        shards[0].parent if shards else None)
    return page
