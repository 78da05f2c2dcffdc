"""`rnnlab reproduce`: the paper's experiments with the paper protocol, row by row, beside the
published figures; writes reproduce.md and reproduce.json as it goes."""

from __future__ import annotations

import time
from pathlib import Path

from .experiments import EXPERIMENTS, Experiment
from .runs import atomic_write, write_json
from .trainer import make_config, train

#: rows whose paper cost (mean sequences × mean length) exceeds this run only with --full
CHEAP_COST = 2_000_000


def rows(keys: list[str] | None, *, full: bool) -> list[Experiment]:
    if keys:
        unknown = [k for k in keys if k not in EXPERIMENTS]
        if unknown:
            raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; known: "
                             f"{', '.join(EXPERIMENTS)}")
        return [EXPERIMENTS[k] for k in keys]
    return [e for e in EXPERIMENTS.values() if full or e.paper_cost <= CHEAP_COST]


def reproduce(keys, *, trials: int, full: bool, budget: float, out: Path, seed: int = 0,
              echo=print) -> list[dict]:
    selected = rows(keys, full=full)
    skipped = [e for e in EXPERIMENTS.values() if e not in selected] if not keys else []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if skipped:
        echo("skipping (paper cost above {:,} sequence-steps; --full runs them): {}".format(
            CHEAP_COST, ", ".join(e.key for e in skipped)))
    results = []
    for exp in selected:
        cfg = make_config(exp.task, protocol="paper", experiment=exp.key, trials=trials,
                          max_sequences=max(1, int(budget * exp.paper_sequences)), seed=seed,
                          log_every=1000)
        echo(f"\n{exp.key}: {exp.task} {exp.task_params}, {trials} trials in lockstep, "
             f"budget {cfg['max_sequences']:,} sequences")
        t0 = time.perf_counter()
        r = train(cfg, out / exp.key, progress=True)
        row = _row(exp, r, time.perf_counter() - t0)
        results.append(row)
        echo(_line(row))
        write_json(out / "reproduce.json", {"trials": trials, "budget_factor": budget,
                                            "rows": results,
                                            "skipped": [e.key for e in skipped]})
        atomic_write(out / "reproduce.md",
                     lambda tmp: Path(tmp).write_text(markdown(results, trials, budget,
                                                               skipped)))
    return results


def _row(exp: Experiment, r: dict, seconds: float) -> dict:
    wrong = [t["test"]["wrong"] for t in r["trials"]]
    return {
        "experiment": exp.key, "table": exp.table, "task": r["task"],
        "paper_sequences": exp.paper_sequences, "paper_solved": exp.paper_solved,
        "paper_test": exp.paper_test, "solved": r["solved"], "trials": r["n_trials"],
        "mean_sequences": r["mean_sequences"], "min_sequences": r["min_sequences"],
        "max_sequences": r["max_sequences"],
        "ratio": (r["mean_sequences"] / exp.paper_sequences) if r["mean_sequences"] else None,
        "test_n": r["trials"][0]["test"]["n"], "test_wrong": wrong,
        "wall_seconds": round(seconds, 1), "notes": exp.notes,
    }


def _fmt(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _line(row: dict) -> str:
    return (f"{row['experiment']}: solved {row['solved']}/{row['trials']}, mean "
            f"{_fmt(row['mean_sequences'])} sequences (min {_fmt(row['min_sequences'])}, max "
            f"{_fmt(row['max_sequences'])}) vs paper {_fmt(row['paper_sequences'])}; test wrong "
            f"{row['test_wrong']} of {row['test_n']}; {row['wall_seconds']:.0f} s")


def markdown(results: list[dict], trials: int, budget: float, skipped) -> str:
    lines = [
        "# rnnlab reproduce: Hochreiter & Schmidhuber (1997)", "",
        f"Paper protocol (on-line truncated RTRL, the paper's networks and learning rates), "
        f"{trials} trials per row in lockstep, each stopped at {budget}× the paper's mean "
        "number of training sequences. Sequences are counted as the paper counts them.", "",
        "| experiment | paper table | task | paper: mean sequences | ours: solved | ours: mean "
        "(min–max) | ours / paper | test: wrong per trial | paper test | time |",
        "|---|---|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in results:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(
            f"| {r['experiment']} | {r['table']} | {r['task']} | {_fmt(r['paper_sequences'])} "
            f"| {r['solved']}/{r['trials']} | {_fmt(r['mean_sequences'])} "
            f"({_fmt(r['min_sequences'])}–{_fmt(r['max_sequences'])}) | {ratio} | "
            f"{', '.join(map(str, r['test_wrong']))} of {r['test_n']:,} | {r['paper_test']} | "
            f"{r['wall_seconds']:.0f} s |")
    if skipped:
        lines += ["", "Not run (paper cost above the default budget; `--full`): "
                  + ", ".join(e.key for e in skipped) + "."]
    notes = [f"- {r['experiment']}: {r['notes']}" for r in results if r["notes"]]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"
