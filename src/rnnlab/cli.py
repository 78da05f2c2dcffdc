"""The `rnnlab` command: thin; parses, calls the library, prints.

User errors (unknown task or model, bad values, missing or corrupt run folders) print one line
and exit with status 2; Ctrl-C during training writes a checkpoint and exits with 130.
"""

from __future__ import annotations

import json
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
    """["T=100", "bias=[\\"in\\"]"] -> {"T": 100, "bias": ["in"]}: JSON values, else strings."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"{what} must look like key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@app.command("tasks")
def tasks_command() -> None:
    """List the tasks, their parameters and the paper's reference result."""
    from rich.console import Console
    from rich.table import Table

    from . import tasks

    table = Table(title="rnnlab tasks", show_lines=False)
    for col in ("task", "parameters", "what", "reference result"):
        table.add_column(col, overflow="fold")
    for name, cls in tasks.TASKS.items():
        params = ", ".join(f"{k}={v}" for k, v in cls.defaults.items()) or "—"
        table.add_row(name, params, cls.summary, cls.reference)
    Console().print(table)


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
            trials=trials, optimizer=optimizer, lr=lr, batch_size=batch_size, clip=clip,
            max_sequences=max_sequences, test_size=test_size, seed=seed)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = out or Path("runs") / f"{config['task']}-{config['model']}-s{seed}-{stamp}"
    typer.echo(f"run folder: {folder}")
    try:
        result = run_training(config, folder, resume=resume is not None, progress=True)
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted: checkpoint written; continue with "
                   f"`rnnlab train --resume {folder}`", err=True)
        raise typer.Exit(130) from None
    _print_result(result)


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
    from .training import RunDir, evaluate, make_model, predictor, trial_model
    from .training.experiments import EXPERIMENTS
    from .training.trainer import paper_learner

    if n < 1:
        raise UserError(f"--n must be positive, got {n}")
    folder = RunDir(run)
    cfg = folder.config()
    tensors, _ = folder.load()
    task = tasks.make(cfg["task"], **cfg["task_params"])
    gen = torch.Generator().manual_seed(seed)
    if cfg["protocol"] == "paper":
        learner = paper_learner(EXPERIMENTS[cfg["experiment"]], task, cfg["trials"], 0)
        learner.W.copy_(tensors["W"])
        learner.V.copy_(tensors["V"])
        for k in range(cfg["trials"]):
            r = evaluate(predictor(trial_model(learner, k, task)), task, n, gen)
            typer.echo(f"trial {k}: {r['wrong']} wrong of {r['n']}" + _errors(r))
        return
    model = make_model(task, cfg["model"], cfg["hidden"], cfg["model_options"],
                       readout_bias=cfg["readout_bias"], shortcut=cfg["shortcut"])
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as e:
        raise UserError(f"{run}: the checkpoint does not fit its config ({e})") from e
    r = evaluate(predictor(model), task, n, gen)
    typer.echo(f"{task.describe()}: {r['wrong']} wrong of {r['n']}" + _errors(r))


def _errors(r: dict) -> str:
    if "mse" not in r:
        return ""
    return f", mean |error| {r['mean_abs_error']:.4g}, MSE {r['mse']:.4g}"


@app.command()
def reproduce(
    experiments: list[str] = typer.Argument(None, help="experiment keys (default: the cheap "
                                            "rows); see --list"),
    trials: int = typer.Option(5, help="trials per row, run in lockstep"),
    full: bool = typer.Option(False, "--full", help="include the expensive rows"),
    budget: float = typer.Option(3.0, help="stop a trial at this many times the paper's mean"),
    out: Path = typer.Option(None, help="folder for reproduce.md, reproduce.json, runs"),
    seed: int = typer.Option(0),
    list_: bool = typer.Option(False, "--list", help="list the experiments and exit"),
) -> None:
    """Run the paper's experiments with the paper protocol; print ours beside the paper's."""
    from .training.reproduce import CHEAP_COST, rows
    from .training.reproduce import reproduce as run_reproduce

    if list_:
        for exp in rows(None, full=True):
            cheap = "" if exp.paper_cost <= CHEAP_COST else "  (--full)"
            typer.echo(f"{exp.key:16} {exp.table:10} {exp.task} {exp.task_params}  paper: "
                       f"{exp.paper_sequences:,.0f} sequences{cheap}")
        return
    if trials < 1 or budget <= 0:
        raise UserError("--trials must be ≥ 1 and --budget positive")
    folder = out or Path("runs") / f"reproduce-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        run_reproduce(experiments or None, trials=trials, full=full, budget=budget,
                      out=folder, seed=seed, echo=typer.echo)
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; finished rows are in {folder}", err=True)
        raise typer.Exit(130) from None


@app.command()
def analyze(
    model: Path = typer.Argument(..., help="a run folder, or a state_dict file (.safetensors "
                                 "or a weights-only torch file) of an RNN/LSTM/GRU"),
    what: str = typer.Option(",".join(("spectrum", "jacobian", "gradients", "lyapunov",
                                       "memory", "saturation")), help="comma-separated"),
    out: Path = typer.Option(None, help="output folder (default: MODEL-analysis)"),
    steps: int = typer.Option(100, help="time steps of the driving inputs (files only)"),
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
def figures(
    out: Path = typer.Option(Path("figures"), help="output folder"),
    only: list[str] = typer.Option(None, "--only", help="just these figures"),
) -> None:
    """Regenerate the lecture's stability figures from scratch, each with a caption."""
    from .analysis.figures import make_all

    make_all(out, only or None, echo=typer.echo)


@app.command()
def demo() -> None:
    """The lecture's claim in one run: on the 1997 adding problem a tanh RNN forgets and LSTMs
    remember (same budget of sequences each); prints a table and writes a learning curve."""
    from . import demo as _demo

    _demo.main()


@app.command()
def version() -> None:
    """Print the rnnlab and torch versions."""
    import torch

    from . import __version__

    typer.echo(f"rnnlab {__version__} (torch {torch.__version__})")


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
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
