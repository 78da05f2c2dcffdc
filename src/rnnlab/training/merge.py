"""`rnnlab reproduce --merge`: one table from several reproductions.

The table's parts come from runs made at different times: the rows with their found set-ups,
an ``--as-read`` run for the rows that have one, a ``--trials 1 --fair-modern`` run for the
modern column, Gers et al.'s continual rows. Each source is a reproduction folder or its
reproduce.json; rows are matched by experiment, and each part of a row is chosen by one rule:

- **as run** (the 1997 trials, their set-up and tests): a row run with the experiment's
  current set-up before any other (an ablation, a superseded set-up), then the most trials,
  then the later source. A row without options for an experiment that has a found set-up is
  an as-read result only, never the row as run.
- **as read**: the row's own result where it ran with the paper's settings; else the as-read
  run's row (or an as-read result a source row carries) with the most trials, the later on a
  tie.
- **the modern column**: the later row with a fair modern column (its bias-0 runs come with
  it); else the as-run row's.
- **continual rows** (Gers et al. 2000): the most networks, the later on a tie.
- **unfinished rows** (a source's run still going): listed while no source has finished as
  many trials of the row (so a one-trial run does not hide a full one under way).

Nothing is recomputed from the runs: a merged row holds exactly what its sources measured.
The notes are the current ones (`Experiment.notes`), since they describe the set-ups.
"""

from __future__ import annotations

import json
from pathlib import Path

from .continual import CONTINUAL
from .experiments import EXPERIMENTS, run_options
from .reproduce import as_read_result, markdown
from .runs import atomic_write, read_json, write_json


def load(source: Path) -> dict:
    """A source's reproduce.json: ``source`` is the file or the folder that holds it."""
    path = Path(source)
    if path.is_dir():
        path = path / "reproduce.json"
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: not a reproduction table (no rows)")
    return data


def _as_read_only(row: dict) -> bool:
    """A row run with the paper's settings for an experiment that has a found set-up."""
    exp = EXPERIMENTS.get(row["experiment"])
    return bool(exp and exp.setup) and not row.get("options")


def _most_trials(candidates: list[dict], rank=lambda c: ()) -> dict | None:
    """The candidate with the highest ``rank`` then the most trials, the later on a tie."""
    best = None
    for c in candidates:
        if best is None or (*rank(c), c["trials"]) >= (*rank(best), best["trials"]):
            best = c
    return best


def merge(tables: list[dict]) -> dict:
    """One reproduce.json from ``tables`` (in order: later ones win ties); see the module."""
    if not tables:
        raise ValueError("nothing to merge: name at least one reproduction")
    seeds = {t.get("seed") for t in tables}
    if len(seeds) > 1:
        raise ValueError(f"the reproductions ran with different seeds "
                         f"({', '.join(sorted(map(repr, seeds)))}): "
                         "their trials are different runs and do not belong in one table")
    unknown = {r.get("experiment") for t in tables for r in t["rows"] + t.get("continual", [])
               if r.get("experiment") not in EXPERIMENTS and r.get("experiment") not in CONTINUAL}
    if unknown:
        raise ValueError(f"unknown experiment(s) in the sources: {', '.join(map(str, unknown))}")
    rows = [r for t in tables for r in t["rows"]]
    merged = []
    for key, exp in EXPERIMENTS.items():
        mine = [r for r in rows if r["experiment"] == key]
        current = json.loads(json.dumps(run_options(exp)))  # as a table stores it
        run = _most_trials([r for r in mine if not _as_read_only(r)],
                           rank=lambda r, current=current: (r.get("options", {}) == current,))
        if run is None:
            continue  # only as-read results: they belong to a row that has not run
        row = dict(run, notes=exp.notes)
        if not row.get("options"):
            row["as_read"] = as_read_result(row)
        else:
            read = [as_read_result(r, separate=True) if _as_read_only(r) else r.get("as_read")
                    for r in mine]
            row["as_read"] = _most_trials([a for a in read if a])
        fair = [r["modern"] for r in mine if (r.get("modern") or {}).get("fair")]
        if fair:
            row["modern"] = fair[-1]
        merged.append(row)
    streams = [r for t in tables for r in t.get("continual", [])]
    continual = [best for key in CONTINUAL
                 if (best := _most_trials([r for r in streams if r["experiment"] == key]))]
    finished = {r["experiment"]: r["trials"] for r in merged + continual}
    unfinished = {u["experiment"]: u for t in tables for u in t.get("unfinished", [])
                  if u.get("trials", 0) > finished.get(u["experiment"], 0)}
    data = {"seed": seeds.pop(), "version": tables[-1].get("version"), "rows": merged,
            "unfinished": list(unfinished.values())}
    if continual:
        data["continual"] = continual
    return data


def merge_into(sources: list[Path], out: Path, figure: str | None = None) -> dict:
    """Merge the reproductions ``sources`` into OUT/reproduce.json and OUT/reproduce.md
    (``figure``: an image to link below the table, relative to OUT); returns the table."""
    data = merge([load(s) for s in sources])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "reproduce.json", data)
    atomic_write(out / "reproduce.md", lambda tmp: Path(tmp).write_text(
        markdown(data["rows"], data["unfinished"], figure, data.get("continual", []))))
    return data
