"""The report of a reproduce folder: the table, ours beside the paper's, and every row's
learning curves (from the shards' logs, so a reproduction still running shows how far it got)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..training.curves import plot
from ..training.reproduce import as_read_text, counts_line, modern_text, reproduces
from .common import config_and_environment
from .page import Page, Raw, esc, png_bytes, table


def report(folder: Path) -> Page:
    plan = json.loads((folder / "plan.json").read_text())
    data = {"rows": [], "unfinished": []}
    if (folder / "reproduce.json").is_file():
        data = json.loads((folder / "reproduce.json").read_text())
    rows = data["rows"]
    page = Page("rnnlab reproduce — Hochreiter & Schmidhuber (1997)",
                f"finished rows: {counts_line(rows)} · {folder}")
    page.section("table", "Ours beside the paper's", _table(rows),
                 "A row reproduces (green) when at least 80 % of its trials are solved with a "
                 "mean within 2× the paper's; red rows miss (the notes below say why). "
                 "Sequences are counted as the paper counts them; \"as read\" is the row with "
                 "the paper's settings as we read them (a row without a set-up is its own); "
                 "the modern column is a forget-gate LSTM with Adam on the same task and "
                 "budget.")
    if data.get("continual"):
        page.section("continual", "Gers, Schmidhuber & Cummins (2000), Table 2",
                     _continual_table(data["continual"]),
                     "The continual embedded Reber grammar: one unbroken stream, the possible "
                     "next symbols predicted at every step. Perfect: 10 test streams of "
                     "100,000 symbols without an error (training streams to solution); good: "
                     "more than 1,000 error-free symbols on average; rest: the others. Green: "
                     "the perfect share and the streams within 2× the paper's.")
    if data.get("unfinished"):
        rows_u = [[u["experiment"], f"{u['trials_finished']}/{u['trials']}",
                   u["solved_so_far"], "—" if u["running_at"] is None
                   else f"{u['running_at']:,}", f"{u['budget']:,}"]
                  for u in data["unfinished"]]
        page.section("unfinished", "Rows not finished", table(
            ["row", "trials finished", "solved so far", "running at", "budget"], rows_u,
            numeric=(2, 3, 4)), "Continue them with `rnnlab reproduce --out` this folder.")
    started = [r for r in plan["rows"] if (folder / "runs" / r["key"]).is_dir()
               and r.get("protocol") != "continual"]  # streams have no learning curves here
    if started:
        with tempfile.TemporaryDirectory() as tmp:
            png = plot(folder, started, Path(tmp) / "curves.png")
            img = png_bytes(png.read_bytes(), "learning curves")
        page.section("curves", "Learning curves, one panel per row", img,
                     "Every trial's error on its recent training sequences against the "
                     "sequences presented; dashed: the paper's mean to success; a dot: where "
                     "a trial met the stopping rule.")
    notes = [f"<h3>{esc(r['experiment'])}</h3><p>{esc(r['notes'])}</p>" for r in rows
             if r.get("notes")]
    if notes:
        page.section("notes", "Notes: what was tried", "".join(notes))
    shards = sorted((folder / "runs").glob("*/*/environment.json"))
    config_and_environment(page, folder, {"version": plan["version"], "seed": plan["seed"],
                                          "rows": [r["key"] for r in plan["rows"]]},
                           shards[0].parent if shards else None)
    return page


def _n(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _table(rows: list[dict]) -> str:
    body, classes = [], []
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        span = "—" if r["min_sequences"] is None else \
            f"{_n(r['min_sequences'])}–{_n(r['max_sequences'])}"
        wrong = r["test_wrong"]
        modern = modern_text(r.get("modern") or {})
        body.append([r["experiment"], r["table"], _n(r["paper_sequences"]),
                     f"{r['solved']}/{r['trials']}", _n(r["mean_sequences"]), span, ratio,
                     f"{min(wrong):,}–{max(wrong):,} of {r['test_n']:,}" if wrong else "—",
                     as_read_text(r), Raw(esc(modern)), f"{r['wall_seconds'] / 60:.1f}"])
        classes.append("good" if reproduces(r) else "miss")
    return table(["row", "table", "paper mean", "solved", "our mean", "min–max", "ratio",
                  "test wrong", "as read", "modern LSTM", "minutes"], body,
                 numeric=(2, 4, 5, 6, 7, 10), row_class=classes)


def _continual_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        p = r["paper"]
        body.append([r["experiment"], r["label"], f"{p['perfect']} % ({_n(p['streams'])})",
                     f"{r['perfect']:.0f} % ({_n(r['mean_streams'])})",
                     f"{p['good']} % ⟨{_n(p['good_length'])}⟩",
                     f"{r['good']:.0f} % ⟨{_n(r['good_length'])}⟩",
                     f"{p['rest']} % ⟨{_n(p['rest_length'])}⟩",
                     f"{r['rest']:.0f} % ⟨{_n(r['rest_length'])}⟩", r["trials"],
                     f"{r['wall_seconds'] / 60:.1f}"])
    return table(["row", "algorithm", "paper: perfect (streams)", "ours: perfect (streams)",
                  "paper: good", "ours: good", "paper: rest", "ours: rest", "networks",
                  "minutes"], body, numeric=(8, 9),
                 row_class=["good" if r["within_2x"] else "miss" for r in rows])
