"""`rnnlab sweep`: a grid of options × trials, the tool of set-up searches and ablations.

    OUT/sweep-plan.json               the target, the grid, each point's options and shards
    OUT/runs/pNN/trials-A-B/          a 1997 row's point: paper-protocol shards (as reproduce)
    OUT/runs/pNN/trial-K/             a task's point: one minibatch run per trial (seed + K)
    OUT/sweep.json, OUT/sweep.md      a line per finished point, best first, rewritten as
                                      points finish

The target is a 1997 row (`rnnlab reproduce --list`; the paper protocol, with the row's found
set-up unless ``as_read``) or a task (`rnnlab tasks`; the minibatch protocol, with `rnnlab
train`'s options). A grid key is a setting of the target, dotted into a mapping where the
setting is one: for a row anything `--set` takes (``lr``, ``lstm.input_gate_bias``,
``task_params.T``, ``plateau``, ...); for a task a training option (``lr``, ``hidden``,
``model``, ``batch_size``, ``model_options.peephole``, ``task_params.T``, ...). Every point
runs the same trials (trial k has the same seed at every point), so points differ only by
their options. The shards are the same run folders `reproduce` uses: a killed or interrupted
sweep continues when the same command is run again, and trial k is the same run wherever it
ran.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

from .. import __version__
from .._text import parse_value
from .config import RunConfig
from .experiments import EXPERIMENTS, run_options, with_options
from .jobs import Bars, cluster_threads, job_folder, pending, run_shards
from .reproduce import split_trials
from .runs import RESULT, RunDir, atomic_write, read_json, write_json

PLAN = "sweep-plan.json"


def split_values(text: str) -> list[str]:
    """``0.1,[-1,-2],x`` -> ["0.1", "[-1,-2]", "x"]: commas inside brackets or quotes stay."""
    parts, depth, quoted, current = [], 0, False, ""
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "[{":
            depth += 1
        elif not quoted and ch in "]}":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current]


def parse_grid(specs: list[str]) -> dict[str, list]:
    """["lr=0.1,0.5", "lstm.input_gate_bias=-1,[-2,-4]"] -> {"lr": [0.1, 0.5], ...}."""
    grid: dict[str, list] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"--grid must look like KEY=V1,V2,..., got {spec!r}")
        if key in grid:
            raise ValueError(f"--grid names {key} twice; give all its values in one --grid")
        grid[key] = [parse_value(v) for v in split_values(values)]
        if any(v == "" for v in grid[key]):
            raise ValueError(f"--grid {key} has an empty value: {spec!r}")
    if not grid:
        raise ValueError("give at least one --grid KEY=V1,V2,...")
    return grid


def nest(flat: dict) -> dict:
    """{"lr": 1, "lstm.bias": x} -> {"lr": 1, "lstm": {"bias": x}}."""
    out: dict = {}
    for key, value in flat.items():
        head, dot, rest = key.partition(".")
        if dot:
            inner = out.setdefault(head, {})
            if not isinstance(inner, dict):
                raise ValueError(f"{head} is given both as a value and as a mapping ({key})")
            inner.update(nest({rest: value}))
        else:
            out[key] = value
    return out


def merge(base: dict, changes: dict) -> dict:
    """``changes`` on top of ``base``, mappings merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            value = merge(out[key], value)
        out[key] = value
    return out


def points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the order given (the last key fastest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*grid.values())]


def _target_kind(target: str) -> str:
    from .. import tasks

    if target in EXPERIMENTS:
        return "row"
    if target in tasks.TASKS:
        return "task"
    raise ValueError(f"unknown sweep target {target!r}: a 1997 row (`rnnlab reproduce --list`)"
                     f" or a task (`rnnlab tasks`)")


def _task_config(target: str, base: dict, point: dict, trial: int, seed: int,
                 max_sequences: int) -> RunConfig:
    from .trainer import make_config

    # about a hundred log lines per trial (the curves), unless the settings say otherwise
    options = {"log_every": max(32, max_sequences // 100), **merge(base, nest(point)),
               "seed": seed + trial, "max_sequences": max_sequences}
    return make_config(target, **options)


def _plan(target: str, grid: dict, trials: int, budget: float, max_sequences: int, seed: int,
          base: dict, as_read: bool, jobs: int) -> dict:
    kind = _target_kind(target)
    plan = {"version": __version__, "target": target, "kind": kind, "grid": grid,
            "trials": trials, "seed": seed, "base": base, "points": []}
    combos = points(grid)
    if kind == "row":
        exp = EXPERIMENTS[target]
        plan |= {"as_read": as_read, "budget_factor": budget,
                 "max_sequences": max(1, int(budget * exp.paper_sequences))}
        # enough shards to keep the workers busy, as few as the learner's lanes allow
        parts = -(-jobs // len(combos))
        for k, point in enumerate(combos):
            options = run_options(exp, merge(base, nest(point)), as_read)
            with_options(exp, options)  # a bad option or value fails here, before any run
            plan["points"].append({"id": f"p{k:02d}", "options": point, "run_options": options,
                                   "shards": split_trials(trials, parts)})
    else:
        plan["max_sequences"] = max_sequences
        for k, point in enumerate(combos):
            _task_config(target, base, point, 0, seed, max_sequences)  # validates
            plan["points"].append({"id": f"p{k:02d}", "options": point,
                                   "shards": [[t, 1] for t in range(trials)]})
    return plan


def point_folders(out: Path, plan: dict, point: dict) -> list[Path]:
    """A row's point: a folder per shard of trials; a task's point: a folder per trial."""
    base = Path(out) / "runs" / point["id"]
    if plan["kind"] == "row":
        return [base / f"trials-{a}-{a + n - 1}" for a, n in point["shards"]]
    return [base / f"trial-{a}" for a, _ in point["shards"]]


def _shard_config(plan: dict, point: dict, first: int, count: int) -> RunConfig:
    from .trainer import make_config

    if plan["kind"] == "task":
        return _task_config(plan["target"], plan["base"], point["options"], first, plan["seed"],
                            plan["max_sequences"])
    exp = EXPERIMENTS[plan["target"]]
    log_every = max(100, int(round(plan["max_sequences"] / 100, -2)))
    return make_config(exp.task, protocol="paper", experiment=exp.key, trials=count,
                       first_trial=first, max_sequences=plan["max_sequences"],
                       seed=plan["seed"], log_every=log_every,
                       experiment_options=point["run_options"], as_read=plan["as_read"])


def sweep(target: str, grid: dict[str, list], *, out: Path, trials: int, jobs: int | None = None,
          budget: float = 3.0, max_sequences: int = 200_000, seed: int = 0,
          base: dict | None = None, as_read: bool = False, echo=print,
          progress: bool = True, cluster: str | None = None) -> dict:
    """Run (or continue) the sweep of ``target`` over ``grid`` × ``trials`` into ``out``;
    returns sweep.json's content. ``base``: settings of every point (nested mappings), under
    the grid's; ``budget`` (rows: a multiple of the paper's mean) or ``max_sequences``
    (tasks) stops a trial. One sweep per folder: the same command continues it, another is
    refused. The shards run in ``jobs`` local processes, or on the Dask ``cluster``."""
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    jobs = jobs or (cluster_threads(cluster) if cluster else os.cpu_count()) or 1
    plan = _plan(target, grid, trials, budget, max_sequences, seed, base or {}, as_read, jobs)
    with job_folder(out, "sweep") as out:
        return _sweep(plan, out, jobs, echo, progress, cluster)


def _same_sweep(old: dict, new: dict) -> list[str]:
    keys = ("target", "grid", "trials", "seed", "base", "max_sequences", "as_read")
    return [k for k in keys if json.dumps(old.get(k)) != json.dumps(new.get(k))]


def _sweep(plan: dict, out: Path, jobs: int, echo, progress: bool, cluster: str | None) -> dict:
    path = out / PLAN
    if path.exists():
        old = read_json(path)
        differ = _same_sweep(old, plan)
        if differ:
            raise ValueError(f"{out} holds another sweep (its {', '.join(differ)} differ); "
                             "give another --out, or the same command to continue it")
        plan = old  # its shards as first split
        echo(f"continuing the sweep in {out}")
    elif (out / "plan.json").exists() or any(out.glob("runs/*/*/config.json")):
        raise ValueError(f"{out} holds other runs; give a new or empty folder to --out")
    else:
        write_json(path, plan)
    cost = EXPERIMENTS[plan["target"]].paper_cost if plan["kind"] == "row" else 1.0
    runs = [(p["id"], folder, cost * n, lambda p=p, a=a, n=n: _shard_config(plan, p, a, n))
            for p in plan["points"]
            for folder, (a, n) in zip(point_folders(out, plan, p), p["shards"])]
    shards = pending(runs)
    result = write_tables(out, plan)
    if not shards:
        return result
    jobs = max(1, min(jobs, len(shards)))
    where = f"the cluster at {cluster}" if cluster else f"{jobs} process(es)"
    echo(f"{len(shards)} shard(s) of {len(plan['points'])} point(s) to run on {where}; "
         f"results in {out}")
    running = {s.group for s in shards}
    bars = Bars(progress and not cluster, {
        p["id"]: (plan["trials"], plan["max_sequences"],
                  list(zip(point_folders(out, plan, p), (n for _, n in p["shards"]))))
        for p in plan["points"] if p["id"] in running})
    started = time.perf_counter()

    def point_done(pid: str) -> None:
        done = write_tables(out, plan)
        line = next(p for p in done["points"] if p["id"] == pid)
        bars.finish(pid, f"{pid} {_options_text(line['options'])}: {_line(line)}")

    with bars:
        try:
            run_shards(shards, out, jobs, on_group_done=point_done, tick=bars.refresh,
                       say=bars.print, cluster=cluster)
        finally:
            write_tables(out, plan)
    echo(f"wall-clock {time.perf_counter() - started:.0f} s")
    return write_tables(out, plan)


def _point_result(out: Path, plan: dict, point: dict) -> dict | None:
    folders = point_folders(out, plan, point)
    if not all((f / RESULT).exists() for f in folders):
        return None
    results = [RunDir(f).result() for f in folders]
    if plan["kind"] == "row":
        trials = [(t["solved"], t["sequences"], t["test"]) for r in results for t in r["trials"]]
    else:
        trials = [(r["solved"], r["sequences_to_success"], r["test"]) for r in results]
    solved = [s for ok, s, _ in trials if ok]
    mean = sum(solved) / len(solved) if solved else None
    line = {"id": point["id"], "options": point["options"], "trials": len(trials),
            "solved": len(solved), "mean_sequences": mean,
            "min_sequences": min(solved, default=None),
            "max_sequences": max(solved, default=None),
            # how close the trials came, solved or not: wrong test sequences, on average
            "mean_test_wrong": sum(t["wrong"] for *_, t in trials) / len(trials),
            "test_n": trials[0][2]["n"],
            "wall_seconds": round(sum(r["wall_seconds"] for r in results), 1)}
    if plan["kind"] == "row":
        paper = EXPERIMENTS[plan["target"]].paper_sequences
        line["ratio"] = mean / paper if mean else None
    return line


def best_first(lines: list[dict]) -> list[dict]:
    """Most trials solved first, then the fewest sequences to success, then the fewest wrong
    test sequences."""
    return sorted(lines, key=lambda p: (-p["solved"] / p["trials"],
                                        p["mean_sequences"] or float("inf"),
                                        p["mean_test_wrong"]))


def write_tables(out: Path, plan: dict) -> dict:
    """sweep.json and sweep.md from the finished points; returns sweep.json's content."""
    lines = [r for p in plan["points"] if (r := _point_result(out, plan, p)) is not None]
    data = {"target": plan["target"], "kind": plan["kind"], "trials": plan["trials"],
            "max_sequences": plan["max_sequences"], "grid": plan["grid"], "base": plan["base"],
            "seed": plan["seed"], "version": plan["version"], "points": best_first(lines),
            "unfinished": [p["id"] for p in plan["points"]
                           if p["id"] not in {r["id"] for r in lines}]}
    if plan["kind"] == "row":
        data["paper_sequences"] = EXPERIMENTS[plan["target"]].paper_sequences
        data["as_read"] = plan["as_read"]
    write_json(out / "sweep.json", data)
    atomic_write(out / "sweep.md", lambda tmp: Path(tmp).write_text(markdown(data)))
    return data


def _fmt(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _options_text(options: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in options.items())


def _line(p: dict) -> str:
    ratio = "" if p.get("ratio") is None else f" ({p['ratio']:.2f}× the paper's)"
    return (f"solved {p['solved']}/{p['trials']}, mean {_fmt(p['mean_sequences'])} "
            f"sequences{ratio}")


def markdown(data: dict) -> str:
    """sweep.md: the points, best first."""
    row = data["kind"] == "row"
    what = (f"the 1997 row {data['target']} (paper protocol, "
            f"{'as read' if data.get('as_read') else 'its found set-up'}; paper's mean "
            f"{_fmt(data.get('paper_sequences'))} sequences)" if row else
            f"the task {data['target']} (minibatch protocol)")
    base = _options_text(data["base"]) or "none"
    lines = [f"# rnnlab sweep: {data['target']}", "",
             f"Sweep of {what}: {len(data['points']) + len(data['unfinished'])} points × "
             f"{data['trials']} trials, at most {_fmt(data['max_sequences'])} sequences per "
             f"trial; settings of every point: {base}. Best first (most solved, then fewest "
             "sequences); the mean is over the solved trials.", "",
             "| point | options | solved | mean sequences (min–max) |"
             + (" ratio to the paper |" if row else "") + " test: wrong, mean of n | CPU time |",
             "|---|---|---:|---:|" + ("---:|" if row else "") + "---:|---:|"]
    for p in data["points"]:
        ratio = (" — |" if p.get("ratio") is None else f" {p['ratio']:.2f} |") if row else ""
        span = "—" if p["mean_sequences"] is None else (
            f"{_fmt(p['mean_sequences'])} ({_fmt(p['min_sequences'])}–"
            f"{_fmt(p['max_sequences'])})")
        lines.append(f"| {p['id']} | {_options_text(p['options'])} | {p['solved']}/{p['trials']} "
                     f"| {span} |{ratio} {p['mean_test_wrong']:,.1f} of {p['test_n']:,} | "
                     f"{p['wall_seconds']:.0f} s |")
    if data["unfinished"]:
        lines += ["", f"Not finished (the same command continues them): "
                      f"{', '.join(data['unfinished'])}"]
    return "\n".join(lines) + "\n"


def plan_of(folder: Path) -> dict:
    return read_json(Path(folder) / PLAN)

