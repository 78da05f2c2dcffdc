"""`rnnlab reproduce`: the 1997 tables, row by row, as resumable jobs.

    OUT/plan.json                   the rows, their trials and budgets, how they are split
    OUT/runs/ROW/trials-A-B/        one run folder per shard (a range of a row's trials)
    OUT/reproduce.json, .md         ours beside the paper's, rewritten as rows finish
    OUT/curves.png                  every trial's learning curve, a panel per row

Every row carries two results: the one it ran (with the set-up found by experiment, if it has
one) and the paper as read (``"as_read"``). A row that ran with the paper's settings is its own
as-read result; for the others, ``as_read_from`` names a second reproduction run with
``--as-read`` whose rows are attached (`attach_as_read`).

A row's trials are split into shards (`split_trials`); every shard is an ordinary run folder
of the paper protocol (`rnnlab train --protocol paper --first-trial A --trials n`), so a
killed or interrupted reproduction continues where each shard stopped, and trial k is the same
run however the shards are spread. Shards run in ``jobs`` worker processes (one thread each),
the most expensive first; a live bar per row shows how far its trials have come.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .. import __version__
from . import continual
from . import modern as fair
from .config import RunConfig
from .continual import CONTINUAL
from .experiments import EXPERIMENTS, Experiment, run_options, with_options
from .jobs import Bars, cluster_threads, job_folder, pending, run_shards
from .runs import RESULT, RunDir, atomic_write, read_json, write_json

#: rows whose paper cost (mean sequences × mean length × trials) exceeds this run with --full
CHEAP_COST = 2_000_000_000
#: most trials in a shard, the unit of resumption and of parallel work: the compiled learner
#: runs a shard's trials as the lanes of one vector register (16 floats), so a shard of 16
#: costs 1.05× (adding net) to 2.1× (task 2c) one of 5 (python -m benchmarks.online1997)
SHARD_TRIALS = 16


def split_trials(n: int, parts: int = 1) -> list[list[int]]:
    """[first, count] of each shard of n trials: as few shards of at most `SHARD_TRIALS` as
    hold them, but at least ``parts`` (to keep that many workers busy), sizes as equal as
    possible — e.g. 30 trials as 15 + 15, not 16 + 14 (a row ends with its slowest shard)."""
    k = min(n, max(-(-n // SHARD_TRIALS), parts))
    sizes = [n // k + (i < n % k) for i in range(k)]
    return [[sum(sizes[:i]), size] for i, size in enumerate(sizes)]


def rows(keys: list[str] | None, *, full: bool) -> list[Experiment]:
    """The 1997 rows named (Gers et al.'s continual rows, also valid keys, are not among
    them: `continual_keys`), or every row cheaper than `CHEAP_COST` (all with ``full``)."""
    if keys:
        unknown = [k for k in keys if k not in EXPERIMENTS and k not in CONTINUAL]
        if unknown:
            raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; known: "
                             f"{', '.join([*EXPERIMENTS, *CONTINUAL])}")
        return [EXPERIMENTS[k] for k in keys if k in EXPERIMENTS]
    return [e for e in EXPERIMENTS.values() if full or row_cost(e) <= CHEAP_COST]


def continual_keys(keys: list[str] | None) -> list[str]:
    """The rows of Gers et al. 2000's Table 2 among ``keys`` (they run only when named)."""
    return [k for k in keys or [] if k in CONTINUAL]


#: a continual trial's cost in the units of `row_cost` (sequence-steps), to schedule shards
CONTINUAL_TRIAL_COST = 2_000_000


def row_cost(exp: Experiment, trials: int | None = None) -> float:
    """Sequence-steps of a row at the paper's mean: what it costs to reproduce."""
    return exp.paper_cost * (trials or exp.trials)


#: the modern LSTM beside each row: forget gate, Adam, minibatches (`MODERN`; with
#: ``fair_modern`` also the recipes of `training.modern`), and at most this many training
#: sequences, or sequence-steps, per run
MODERN = fair.BASE
MODERN_MAX_SEQUENCES = 200_000
MODERN_MAX_STEPS = 30_000_000


def _plan_row(exp: Experiment, trials: int | None, budget: float, options: dict,
              as_read: bool, modern: int, parts: int = 1, fair_modern: bool = False) -> dict:
    n = trials or exp.trials
    options = run_options(exp, options, as_read)
    with_options(exp, options)  # a bad option fails here, before anything runs
    shards = split_trials(n, parts)
    max_sequences = max(1, int(budget * exp.paper_sequences))
    return {"key": exp.key, "trials": n, "budget_factor": budget, "options": options,
            "as_read": as_read,
            "max_sequences": max_sequences, "shards": shards,
            "modern": {"seeds": list(range(modern)),
                       "max_sequences": min(max_sequences, MODERN_MAX_SEQUENCES,
                                            int(MODERN_MAX_STEPS / exp.mean_length)),
                       **({"recipes": list(fair.RECIPES), "lrs": list(fair.LRS),
                           "tune_seed": fair.TUNE_SEED} if fair_modern and modern else {})}}


def _modern_folder(out: Path, key: str, seed: int) -> Path:
    return out / "runs" / key / f"modern-seed-{seed}"


def _tune_folder(out: Path, key: str, recipe: str, lr: float) -> Path:
    return out / "runs" / key / f"modern-tune-{recipe}-lr{lr:g}"


def _fair_folder(out: Path, key: str, recipe: str, lr: float, seed: int) -> Path:
    return out / "runs" / key / f"modern-{recipe}-lr{lr:g}-seed-{seed}"


def _chosen(out: Path, row: dict) -> tuple[str, float] | None:
    """A fair modern column's winning (recipe, rate) once its tuning runs have finished."""
    points = fair.tuning_points(row.get("modern", {}))
    folders = {p: _tune_folder(out, row["key"], *p) for p in points}
    if not points or not all((f / RESULT).exists() for f in folders.values()):
        return None
    return fair.best({p: RunDir(f).result() for p, f in folders.items()})


def _modern_runs(out: Path, row: dict) -> list[tuple[Path, int, str, float | None, str]]:
    """(folder, seed, recipe, lr, part) of the modern runs a row needs so far: the plain
    recipe on the table's seeds ("plain"); with a fair column the tuning runs ("tune"), then,
    once they are done, the winner on the table's seeds ("fair")."""
    m, key = row.get("modern", {}), row["key"]
    runs = [(_modern_folder(out, key, s), s, "forget-bias-0", None, "plain")
            for s in m.get("seeds", [])]
    runs += [(_tune_folder(out, key, r, lr), m["tune_seed"], r, lr, "tune")
             for r, lr in fair.tuning_points(m)]
    chosen = _chosen(out, row)
    if chosen:
        runs += [(_fair_folder(out, key, *chosen, s), s, *chosen, "fair") for s in m["seeds"]]
    return runs


def _modern_config(row: dict, seed: int, recipe: str = "forget-bias-0",
                   lr: float | None = None) -> RunConfig:
    """The row's task, stopping rule and test set, learned by a modern LSTM (``recipe`` and
    ``lr``: see `training.modern`)."""
    from dataclasses import asdict

    from .trainer import make_config

    exp = with_options(EXPERIMENTS[row["key"]], row.get("options", {}))
    budget = row["modern"]["max_sequences"]
    settings = dict(MODERN, lr=lr or MODERN["lr"],
                    model_options=fair.recipe_options(recipe, exp.mean_length))
    return make_config(exp.task, task_params=exp.task_params, stop=asdict(exp.stop),
                       test_size=exp.test_size, max_sequences=budget, seed=seed,
                       log_every=max(320, int(round(budget / 100, -2))), **settings)


def _shard_folder(out: Path, key: str, first: int, count: int) -> Path:
    return out / "runs" / key / f"trials-{first}-{first + count - 1}"


def _shard_folders(out: Path, row: dict) -> list[Path]:
    return [_shard_folder(out, row["key"], first, count) for first, count in row["shards"]]


def _shard_config(row: dict, first: int, count: int, seed: int) -> RunConfig:
    from .trainer import make_config

    exp = EXPERIMENTS[row["key"]]
    log_every = max(100, int(round(row["max_sequences"] / 100, -2)))
    return make_config(exp.task, protocol="paper", experiment=exp.key, trials=count,
                       first_trial=first, max_sequences=row["max_sequences"], seed=seed,
                       log_every=log_every, experiment_options=row.get("options", {}),
                       as_read=row.get("as_read", False))


def reproduce(keys: list[str] | None, *, out: Path, trials: int | None = None,
              jobs: int | None = None, budget: float = 3.0, full: bool = False, seed: int = 0,
              options: dict | None = None, as_read: bool = False, modern: int = 1,
              echo=print, progress: bool = True, cluster: str | None = None,
              as_read_from: Path | None = None, fair_modern: bool = False) -> list[dict]:
    """Run (or continue) the rows ``keys`` (default: every row cheaper than `CHEAP_COST`, all
    with ``full``) into ``out``; returns the rows of reproduce.json. The rows added by this
    call run with each experiment's found set-up (none with ``as_read``) and ``options`` on
    top (`run_options`); ``modern`` runs of the modern LSTM (seeds 0, 1, …) go beside each.
    The shards run in ``jobs`` local processes, or on the Dask ``cluster`` (`jobs`).
    ``as_read_from``: a reproduction folder run with ``as_read``, whose results become the
    "as read" result of the rows here that ran with a found set-up (kept in plan.json).
    ``fair_modern``: the rows added get the fair modern column too (`training.modern`)."""
    for exp in rows(keys, full=True):  # bad names or options: an error before anything is written
        with_options(exp, run_options(exp, options, as_read))
    if as_read_from is not None and not (Path(as_read_from) / "plan.json").is_file():
        raise ValueError(f"--as-read-from {as_read_from}: not a reproduction folder (no "
                         "plan.json)")
    with job_folder(out, "reproduce") as out:
        return _reproduce(keys, out, trials, jobs, budget, full, seed, options or {}, as_read,
                          modern, echo, progress, cluster, as_read_from, fair_modern)


def _reproduce(keys, out, trials, jobs, budget, full, seed, options, as_read, modern, echo,
               progress, cluster, as_read_from, fair_modern) -> list[dict]:
    plan_path = out / "plan.json"
    if plan_path.exists():
        plan = read_json(plan_path)
        seed = plan["seed"]
        known = {r["key"] for r in plan["rows"]}
        # a continued plan takes the rows named, or with --full the expensive ones
        extra = rows(keys, full=full) if keys or full else []
        added = [e for e in extra if e.key not in known]
        added_continual = [k for k in continual_keys(keys) if k not in known]
        if added or not keys:
            echo(f"continuing the reproduction in {out}")
    else:
        plan = {"version": __version__, "seed": seed, "rows": []}
        added = rows(keys, full=full)
        added_continual = continual_keys(keys)
    if as_read_from is not None:
        plan["as_read_from"] = str(Path(as_read_from).resolve())
    jobs = jobs or (cluster_threads(cluster) if cluster else os.cpu_count()) or 1
    # few rows on many workers: split each row further so that every worker has a shard
    parts = -(-jobs // max(1, len(added) + len(added_continual)))
    plan["rows"] += [_plan_row(exp, trials, budget, options, as_read, modern, parts,
                               fair_modern) for exp in added]
    plan["rows"] += [{"key": key, "protocol": "continual",
                      "trials": trials or CONTINUAL[key].trials,
                      "max_streams": continual.MAX_STREAMS,
                      "shards": split_trials(trials or CONTINUAL[key].trials, parts)}
                     for key in added_continual]
    write_json(plan_path, plan)
    wanted = [r for r in plan["rows"] if not keys or r["key"] in keys]

    results = _collect(out, plan, wanted)
    _write_tables(out, plan, results)
    started, announced = time.perf_counter(), False
    # pass after pass: a fair modern column's final runs exist once its tuning runs are done
    while shards := pending(_runs(out, wanted, seed)):
        jobs = max(1, min(jobs, len(shards)))
        if not announced:
            where = f"the cluster at {cluster}" if cluster else f"{jobs} process(es)"
            echo(f"{len(shards)} shard(s) of {len(wanted)} row(s) to run on {where}; "
                 f"results in {out}")
            announced = True
        _run_pass(out, plan, wanted, shards, jobs, progress, cluster)
    if announced:
        echo(f"wall-clock {time.perf_counter() - started:.0f} s")
    return _collect(out, plan, wanted)


def _runs(out: Path, wanted: list[dict], seed: int) -> list[tuple]:
    """Every run folder the rows need so far: (row, folder, cost, config maker)."""
    runs = []
    for row in wanted:
        if row.get("protocol") == "continual":
            runs += [(row["key"], _shard_folder(out, row["key"], first, count),
                      CONTINUAL_TRIAL_COST * count,
                      lambda first=first, count=count, row=row: continual.continual_config(
                          row["key"], trials=count, first_trial=first, seed=seed,
                          max_streams=row["max_streams"]))
                     for first, count in row["shards"]]
            continue
        exp = EXPERIMENTS[row["key"]]
        runs += [(row["key"], _shard_folder(out, row["key"], first, count), row_cost(exp, count),
                  lambda first=first, count=count, row=row: _shard_config(row, first, count,
                                                                          seed))
                 for first, count in row["shards"]]
        runs += [(row["key"], folder, row_cost(exp, 1),
                  lambda s=s, r=r, lr=lr, row=row: _modern_config(row, s, r, lr))
                 for folder, s, r, lr, _ in _modern_runs(out, row)]
    return runs


def _run_pass(out, plan, wanted, shards, jobs, progress, cluster) -> None:
    """Run ``shards``, with a live bar per row; rewrite the tables as rows finish."""
    bars = Bars(progress and not cluster, {r["key"]: (r["trials"], r.get("max_sequences", 1),
                                      list(zip(_shard_folders(out, r),
                                               (c for _, c in r["shards"]))))
                           for r in wanted})

    def row_done(key: str) -> None:
        results = _collect(out, plan, wanted)
        _write_tables(out, plan, results)
        done = [r for r in results if r["experiment"] == key]
        if done:  # (a fair modern column's tuning ends a pass before its row is complete)
            bars.finish(key, _line(done[0]))

    with bars:
        try:
            run_shards(shards, out, jobs, on_group_done=row_done, tick=bars.refresh,
                       say=bars.print, cluster=cluster)
        except KeyboardInterrupt:
            _write_tables(out, plan, _collect(out, plan, wanted))  # how far each row got
            raise


def _collect(out: Path, plan: dict, wanted: list[dict]) -> list[dict]:
    """One reproduce.json row per finished row (all its shards done), each with its as-read
    result where one is known."""
    results = []
    for row in plan["rows"]:
        folders = _shard_folders(out, row)
        modern = [f for f, *_ in _modern_runs(out, row)]
        if fair.tuning_points(row.get("modern", {})) and _chosen(out, row) is None:
            continue  # the fair column's final runs are not even known yet
        if not all((f / RESULT).exists() for f in folders + modern):
            continue
        if row.get("protocol") == "continual":
            shards = [RunDir(f).result() for f in folders]
            results.append(continual.table_row(
                CONTINUAL[row["key"]], [t for r in shards for t in r["trials"]],
                sum(r["wall_seconds"] for r in shards)))
        else:
            results.append(_row(EXPERIMENTS[row["key"]], row,
                                [RunDir(f).result() for f in folders],
                                [(part, r, lr, RunDir(f).result())
                                 for f, _, r, lr, part in _modern_runs(out, row)]))
    other = plan.get("as_read_from")
    if other and (Path(other) / "reproduce.json").is_file():
        attach_as_read(results, read_json(Path(other) / "reproduce.json")["rows"])
    return results


def summary(row: dict) -> dict:
    """A row's result in brief: solved of trials, mean sequences over the solved, ratio."""
    return {k: row[k] for k in ("solved", "trials", "mean_sequences", "ratio")}


def as_read_result(row: dict, separate: bool = False) -> dict:
    """A row's result as another row's "as_read" holds it: its `summary` and where it came
    from — the same runs, or (``separate``) a reproduction run as read, with its time."""
    if not separate:
        return summary(row) | {"source": "the same runs"}
    return summary(row) | {"source": "a separate as-read run",
                           "wall_seconds": row["wall_seconds"]}


def attach_as_read(results: list[dict], as_read_rows: list[dict]) -> list[dict]:
    """Give each row that ran with a set-up the as-read result of the same experiment from
    ``as_read_rows`` (rows of a reproduction run with ``--as-read``); in place, returned."""
    found = {r["experiment"]: r for r in as_read_rows if not r.get("options")}
    for r in results:
        other = found.get(r["experiment"])
        if r.get("options") and other is not None:
            r["as_read"] = as_read_result(other, separate=True)
    return results


def _row(exp: Experiment, row: dict, shards: list[dict], runs: list[tuple]) -> dict:
    """A table row from its shards' results and its modern runs' (part, recipe, lr, result)."""
    trials = [t for r in shards for t in r["trials"]]
    modern = [m for part, _, _, m in runs if part == "plain"]
    modern_solved = [m["sequences_to_success"] for m in modern if m["solved"]]
    solved = [t["sequences"] for t in trials if t["solved"]]
    mean = sum(solved) / len(solved) if solved else None
    options = row.get("options", {})
    result = {
        "experiment": exp.key, "table": exp.table, "task": shards[0]["task"],
        "paper_sequences": exp.paper_sequences, "paper_solved": exp.paper_solved,
        "paper_test": exp.paper_test, "trials": len(trials), "solved": len(solved),
        "mean_sequences": mean, "min_sequences": min(solved, default=None),
        "max_sequences": max(solved, default=None),
        "ratio": mean / exp.paper_sequences if mean else None,
        "budget": row["max_sequences"], "test_n": trials[0]["test"]["n"],
        "test_wrong": [t["test"]["wrong"] for t in trials],
        "test_mean_abs_error": [t["test"].get("mean_abs_error") for t in trials],
        "trial_sequences": [t["sequences"] for t in trials],
        "wall_seconds": round(sum(r["wall_seconds"] for r in shards), 1),
        "options": options, "notes": exp.notes,
        "modern": {"runs": len(modern), "solved": len(modern_solved),
                   "mean_sequences": (sum(modern_solved) / len(modern_solved)
                                      if modern_solved else None),
                   "budget": row.get("modern", {}).get("max_sequences"),
                   "test_wrong": [m["test"]["wrong"] for m in modern],
                   "wall_seconds": round(sum(m["wall_seconds"] for m in modern), 1)},
    }
    final = [(r, lr, m) for part, r, lr, m in runs if part == "fair"]
    if final:  # the fair column: the tuned recipe on the table's seeds, and what was tried
        recipe, lr, _ = final[0]
        result["modern"]["fair"] = fair.summary(recipe, lr, [m for *_, m in final]) | {
            "tuning": [fair.summary(r, lr, [m]) for part, r, lr, m in runs if part == "tune"],
            "tune_seed": row["modern"]["tune_seed"],
            "wall_seconds": round(sum(m["wall_seconds"] for part, *_, m in runs
                                      if part != "plain"), 1)}
    # the paper's settings unchanged: this result is the as-read one (else attach_as_read)
    result["as_read"] = None if options else as_read_result(result)
    return result


def _fmt(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _line(row: dict) -> str:
    if row["experiment"] in CONTINUAL:
        return (f"{row['experiment']}: perfect {row['perfect']:.0f} % of {row['trials']}, mean "
                f"{_fmt(row['mean_streams'])} streams vs paper {row['paper']['perfect']} %, "
                f"{_fmt(row['paper']['streams'])}; {row['wall_seconds'] / 60:.1f} min")
    ratio = "" if row["ratio"] is None else f" ({row['ratio']:.2f}×)"
    return (f"{row['experiment']}: solved {row['solved']}/{row['trials']}, mean "
            f"{_fmt(row['mean_sequences'])} sequences{ratio} vs paper "
            f"{_fmt(row['paper_sequences'])}; {row['wall_seconds'] / 60:.1f} min")


def _unfinished(out: Path, plan: dict, done: set[str]) -> list[dict]:
    """The rows still running or not started: how far their shards got."""
    behind = []
    for row in plan["rows"]:
        if row["key"] in done:
            continue
        folders = _shard_folders(out, row)
        finished = [RunDir(f).result() for f in folders if (f / RESULT).exists()]
        trials = [t for r in finished for t in r["trials"]]
        solved = sum(t["solved"] for t in trials)
        reached = []
        for f in folders:
            records = [] if (f / RESULT).exists() else RunDir(f).metrics()
            if records and "trial" in records[-1]:  # continual: a record per finished trial
                trials += records
                solved += sum(t["solved"] for t in records)
            elif records:
                reached.append(records[-1]["sequences"])
                solved += records[-1].get("solved", 0)
        behind.append({"experiment": row["key"], "trials": row["trials"],
                       "trials_finished": len(trials), "solved_so_far": solved,
                       "running_at": min(reached) if reached else None,
                       "budget": row.get("max_sequences", row.get("max_streams"))})
    return behind


def _write_tables(out: Path, plan: dict, results: list[dict]) -> None:
    done = {r["experiment"] for r in results}
    unfinished = _unfinished(out, plan, done)
    streams = [r for r in results if r["experiment"] in CONTINUAL]
    results = [r for r in results if r["experiment"] not in CONTINUAL]
    data = {"seed": plan["seed"], "version": plan["version"], "rows": results,
            "unfinished": unfinished}
    if streams or any(r.get("protocol") == "continual" for r in plan["rows"]):
        data["continual"] = streams  # Gers et al. 2000, Table 2
    write_json(out / "reproduce.json", data)
    rows_done = [row for row in plan["rows"]
                 if row["key"] in done and row.get("protocol") != "continual"]
    if rows_done:
        from .curves import plot

        atomic_write(out / "curves.png", lambda tmp: plot(out, rows_done, Path(tmp)))
    figure = "curves.png" if rows_done else None
    atomic_write(out / "reproduce.md", lambda tmp: Path(tmp).write_text(
        markdown(results, unfinished, figure, streams)))


def reproduces(row: dict) -> bool:
    """The acceptance line: at least 80 % of the trials solved, mean within 2× the paper's.
    ``row`` is a table row or its `summary` (its as-read result)."""
    return row["solved"] >= 0.8 * row["trials"] and row["ratio"] is not None \
        and row["ratio"] <= 2.0


def as_read_text(row: dict) -> str:
    """The as-read column: "9/10, 1.14× ✓", or "—" where no as-read result is known."""
    a = row.get("as_read")
    if not a:
        return "—"
    ratio = "" if a["ratio"] is None else f", {a['ratio']:.2f}×"
    return f"{a['solved']}/{a['trials']}{ratio} {'✓' if reproduces(a) else '✗'}"


def counts_line(results: list[dict]) -> str:
    """The headline: how many rows reproduce as run, and how many as read."""
    good = sum(reproduces(r) for r in results)
    known = [r["as_read"] for r in results if r.get("as_read")]
    line = f"{good} of {len(results)} rows reproduce"
    if any(r.get("options") for r in results):
        line += " (with the set-ups found by experiment)"
    if known:
        line += (f"; as read, {sum(reproduces(a) for a in known)} of {len(known)}"
                 + ("" if len(known) == len(results) else
                    f" (the other {len(results) - len(known)} not run as read)"))
    return line + "."


def markdown(results: list[dict], unfinished: list[dict] = (), figure: str | None = None,
             streams: list[dict] = ()) -> str:
    """reproduce.md: the table, the notes, the rows not finished; ``figure``: the learning
    curves' image, linked below the table; ``streams``: rows of Gers et al.'s Table 2 (a
    second table)."""
    lines = ["# rnnlab reproduce: Hochreiter & Schmidhuber (1997)", ""]
    if streams and not results:  # only the continual rows
        return "\n".join([*lines, *continual.markdown(streams),
                          *_unfinished_lines(unfinished)]) + "\n"
    lines += [
        "Paper protocol: the paper's networks, initialisation and learning rates, on-line "
        "truncated RTRL, one sequence at a time; each trial stopped by the paper's rule or at "
        "the budget (a multiple of the paper's mean). Sequences are counted as the paper "
        "counts them; the mean is over the solved trials. A row reproduces (✓) when at least "
        "80 % of its trials are solved with a mean within 2× the paper's. Set-up: \"paper\" is "
        "the paper's settings as we read them; otherwise the settings changed (a set-up found "
        "by experiment, see the notes, or --set). Modern LSTM: "
        "forget gate, 32 units, Adam 3e-3, minibatches of 32, the same stopping rule"
        f"{_FAIR_TEXT if any((r.get('modern') or {}).get('fair') for r in results) else ''}. "
        "As read: "
        "the same row with the paper's settings as we read them (solved, ours / paper) — for "
        "a row without a set-up, its own result.", "",
        f"**{counts_line(results)}**", "",
        "| experiment | paper table | paper: mean sequences | ours: solved | ours: mean "
        "(min–max) | ours / paper | ✓ | test: wrong (median, max) of n | paper test | "
        "set-up | as read: solved, ours / paper | modern LSTM: solved, mean | CPU time |",
        "|---|---|---:|---:|---:|---:|:-:|---|---|---|---|---|---:|",
    ]
    for r in results:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        wrong = sorted(r["test_wrong"])
        median = wrong[len(wrong) // 2]
        setup = setup_text(r.get("options", {}))
        modern = modern_text(r.get("modern") or {})
        lines.append(
            f"| {r['experiment']} | {r['table']} | {_fmt(r['paper_sequences'])} "
            f"| {r['solved']}/{r['trials']} | {_fmt(r['mean_sequences'])} "
            f"({_fmt(r['min_sequences'])}–{_fmt(r['max_sequences'])}) | {ratio} | "
            f"{'✓' if reproduces(r) else '✗'} | {median}, {wrong[-1]} of {r['test_n']:,} | "
            f"{r['paper_test']} | {setup} | {as_read_text(r)} | {modern} | "
            f"{_minutes(r['wall_seconds'])} |")
    if figure:
        lines += ["", f"![Every trial's learning curve, a panel per row]({figure})"]
    by_note: dict[str, list[str]] = {}  # rows of one family share their note
    for r in results:
        if r["notes"]:
            by_note.setdefault(r["notes"], []).append(r["experiment"])
    if by_note:
        lines += ["", "Notes:", *(f"- {', '.join(keys)}: {note}"
                                  for note, keys in by_note.items())]
    if streams:
        lines += ["", *continual.markdown(streams)]
    lines += _unfinished_lines(unfinished)
    return "\n".join(lines) + "\n"


#: the header's words for a table with the fair modern column (`training.modern`)
_FAIR_TEXT = ("; where the column is fair (--fair-modern), the better of forget-gate bias 1 and "
              "chrono initialisation, with Adam's rate (1e-3, 3e-3, 1e-2) chosen on a seed the "
              "table does not use, then torch's initialisation (bias 0) for contrast")


def _unfinished_lines(unfinished: list[dict]) -> list[str]:
    lines: list[str] = []
    if unfinished:
        lines += ["", "Not finished (running the same command again continues them):"]
        for u in unfinished:
            at = ("not started" if u["running_at"] is None else
                  f"the running trials at {_fmt(u['running_at'])} of {_fmt(u['budget'])} "
                  f"sequences")
            lines.append(f"- {u['experiment']}: {u['trials_finished']} of {u['trials']} trials "
                         f"finished, {u['solved_so_far']} solved so far; {at}")
    return lines


def modern_text(m: dict) -> str:
    """The modern column: "1/1, 35,328", or with the fair column "1/1, 21,120 (chrono, lr
    0.01); bias 0: 0/1, —"."""
    if not m.get("runs"):
        return "—"
    plain = f"{m['solved']}/{m['runs']}, {_fmt(m['mean_sequences'])}"
    f = m.get("fair")
    if not f:
        return plain
    return (f"{f['solved']}/{f['runs']}, {_fmt(f['mean_sequences'])} ({f['recipe']}, lr "
            f"{f['lr']:g}); bias 0: {plain}")


def setup_text(options: dict) -> str:
    """Options as the table shows them: ``error=cross-entropy, lstm.g=h1``; none: "paper"."""
    flat = []
    for key, value in sorted(options.items()):
        if isinstance(value, dict):
            flat += [f"{key}.{k}={v}" for k, v in sorted(value.items())]
        else:
            flat.append(f"{key}={value}")
    return ", ".join(flat) or "paper"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
