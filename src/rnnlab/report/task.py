"""The report of a task run (`rnnlab train`, either protocol): result, curves, the trained
model's stability analysis and, for the 1997 LSTM, its carousel at work on a test sequence."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .. import tasks
from ..analysis.models import layer_trajectories
from ..layers import LSTM1997
from ..training.runs import RunDir
from .common import config_and_environment, curve_figure, plt, side_by_side
from .page import Page, figure_png, png_bytes, table

#: the analysis figures, each with the line that says how to read it
ANALYSES = [
    ("spectrum.png", "Eigenvalues of each gate's recurrent matrix, unit circle drawn: outside "
     "it a linear recursion explodes along that direction, inside it decays as |λ|^t; the "
     "squashing nonlinearities then bound what explodes."),
    ("jacobian.png", "‖∂h_T/∂h_t‖ against the lag T − t on the task's inputs: how much of the "
     "state at t still reaches the end. A straight fall on the log scale is exponential "
     "forgetting, the vanishing gradient."),
    ("gradients.png", "The error of the last output carried back through time, through h "
     "and (LSTM) through the cell state c: the carousel keeps ‖∂L/∂c‖ flat where ‖∂L/∂h‖ "
     "vanishes."),
    ("memory.png", "How far a small change of the first input still moves the state t steps "
     "later: the network's memory of x(0)."),
]


def report(folder: Path) -> Page:
    run = RunDir(folder)
    cfg = run.config()
    task = tasks.make(cfg["task"], **cfg["task_params"])
    result = run.result() if (folder / "result.json").is_file() else None
    paper = cfg["protocol"] == "paper"
    title = f"{cfg.get('experiment') or cfg['task']}: " + (
        f"the 1997 LSTM, paper protocol, {cfg['trials']} trial(s)" if paper
        else f"{cfg['model']} ({cfg['hidden']}), minibatch training")
    page = Page(f"rnnlab run — {title}", f"{task.describe()} · {folder}")
    page.section("result", "Result", _result(result, paper),
                 "Solved means the task's stopping rule was met (the paper's criterion); "
                 "the test counts wrong sequences among fresh ones by the task's criterion.")
    page.section("curves", "Learning curves", _curves(run.metrics(), paper),
                 "Training error on the most recent sequences against the sequences presented "
                 "(left) and the minutes (right); a falling curve that flattens at the grey "
                 "line has learned only the constant answer.")
    model, trial = _trained_module(run, cfg, task, result)
    if model is not None:
        which = f" (trial {trial})" if trial is not None else ""
        page.section("analysis", "Stability analysis of the trained model" + which,
                     _analysis(model, task))
        if isinstance(model, LSTM1997):
            page.section("carousel", "The carousel at work" + which, _carousel(model, task),
                         "One test sequence. Top: the inputs, marked steps shaded green, the "
                         "target step dashed red. Middle: each cell's state s_c: it holds "
                         "what it stored, step after step, while its input gate stays shut. "
                         "Bottom: the input and output gate of each block.")
    config_and_environment(page, folder, cfg)
    return page


def _result(result: dict | None, paper: bool) -> str:
    if result is None:
        return "<p>Not finished: no result.json yet (the curves show how far it got).</p>"
    if paper:
        rows = [[k, "yes" if t["solved"] else "no", t["sequences"] or "—",
                 f"{t['test']['wrong']} of {t['test']['n']}"]
                for k, t in enumerate(result["trials"])]
        head = (f"<p>{result['solved']} of {result['n_trials']} trials solved; mean sequences "
                f"to success {result['mean_sequences'] or '—'} (paper "
                f"{result['paper_sequences']:,.0f}).</p>")
        return head + table(["trial", "solved", "sequences", "test wrong"], rows,
                            numeric=(2,))
    t = result["test"]
    rows = [["solved", "yes" if result["solved"] else "no"],
            ["sequences", f"{result['sequences_to_success'] or result['sequences']:,}"],
            ["test wrong", f"{t['wrong']} of {t['n']}"],
            ["wall-clock", f"{result['wall_seconds']:.1f} s"]]
    if "mse" in t:
        rows.append(["test MSE", f"{t['mse']:.5g}"])
    return table(["", ""], rows)


def _curves(metrics: list[dict], paper: bool) -> str:
    if not metrics:
        return "<p>No log lines yet.</p>"
    xs = [m["sequences"] for m in metrics]
    minutes = [m["seconds"] / 60 for m in metrics]
    if paper and "trial_error" in metrics[0]:
        n = len(metrics[0]["trial_error"])
        series = [(f"trial {k}", xs, [m["trial_error"][k] for m in metrics]) for k in range(n)]
        series_t = [(s[0], minutes, s[2]) for s in series]
    else:
        series = [("recent error", xs, [m["recent_error"] for m in metrics])]
        series_t = [("recent error", minutes, series[0][2])]
    return side_by_side(
        figure_png(curve_figure(series, "sequences presented", "recent error")),
        figure_png(curve_figure(series_t, "minutes", "recent error")))


def _trained_module(run: RunDir, cfg: dict, task, result):
    """(the trained recurrent module, the trial it is) — for the paper protocol the first
    solved trial, else trial 0."""
    if not (run.path / "checkpoint.safetensors").is_file():
        return None, None
    tensors, _ = run.load()
    if cfg["protocol"] == "paper":
        from ..training.experiments import EXPERIMENTS, with_options
        from ..training.paper import paper_learner

        exp = with_options(EXPERIMENTS[cfg["experiment"]], cfg.get("experiment_options"))
        first = cfg.get("first_trial", 0)
        learner = paper_learner(exp, task, list(range(first, first + cfg["trials"])), 0)
        for name in ("W", "V", "mask", "V_mask"):
            getattr(learner, name).copy_(tensors[name])
        solved = [k for k, t in enumerate(result["trials"]) if t["solved"]] if result else []
        k = solved[0] if solved else 0
        return learner.to_modules(k)[0], first + k
    from ..training import make_model
    from ..training.runs import load_model_tensors

    model = make_model(task, cfg["model"], cfg["hidden"], cfg["model_options"],
                       readout_bias=cfg["readout_bias"], shortcut=cfg["shortcut"])
    load_model_tensors(model, tensors, run.path)
    return model.core, None


def _analysis(module, task) -> str:
    from ..analysis.report import analyze_module

    with tempfile.TemporaryDirectory() as tmp:
        try:
            numbers = analyze_module(module, task, Path(tmp), batch=8, echo=lambda *a: None)
        except (ValueError, NotImplementedError, RuntimeError) as e:
            return f"<p>Not available for this model: {e}</p>"
        figures = []
        for name, how in ANALYSES:
            path = Path(tmp) / name
            if path.is_file():
                figures.append(f'<p class="how">{how}</p>' + png_bytes(path.read_bytes(), name))
    parts = [side_by_side(*figures[i : i + 2]) for i in range(0, len(figures), 2)]
    if "lyapunov" in numbers:
        ex = numbers["lyapunov"]["exponents"]
        parts.append(
            '<h3>Lyapunov exponents</h3><p class="how">The mean exponential rate at which '
            "nearby states part (positive) or merge (negative) while the task's inputs drive "
            "the network: the largest below zero means the state forgets where it started."
            "</p>" + table(["k", "λ_k (per step)"], [[k + 1, f"{v:+.4f}"]
                                                      for k, v in enumerate(ex)], numeric=(1,)))
    if "gate_saturation" in numbers:
        rows = [[k, f"{v:.3f}" if isinstance(v, float) else v]
                for k, v in _flat(numbers["gate_saturation"])]
        parts.append('<h3>Gate saturation</h3><p class="how">The fraction of gate (or unit) '
                     "activations within 0.05 of their limits: a saturated unit passes almost "
                     "no gradient.</p>" + table(["unit", "fraction saturated"], rows,
                                                numeric=(1,)))
    return "".join(parts)


def _flat(d, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k} ")
        else:
            yield f"{prefix}{k}", v


@torch.no_grad()
def _carousel(module: LSTM1997, task) -> str:
    batch = task.sample(1, torch.Generator().manual_seed(7))
    L = int(batch.lengths[0])
    x = batch.x[:L].to(module.weight_ih.dtype)  # (L, 1, I)
    layer = layer_trajectories(module, x)[0]  # the 1997 LSTM is one layer, one direction
    cell, tape = layer["cell"], layer["tape"]
    s = tape.states[1][1:, 0]  # (L, C) cell states
    acts = tape.xw[0, :, 0]  # (L, rows): gate activations first
    K = cell.K
    fig, axes = plt.subplots(3, 1, figsize=(9, 6.6), sharex=True,
                             gridspec_kw={"height_ratios": [1, 1.4, 1.2]})
    axes[0].imshow(x[:, 0].T.float(), aspect="auto", cmap="Greys", interpolation="nearest")
    axes[0].set_ylabel("input unit")
    axes[0].set_yticks(range(x.shape[2]) if x.shape[2] <= 8 else [])
    marked = task.marked(batch)
    for ax in axes:
        if marked is not None:
            for t in torch.nonzero(marked[:L, 0]).flatten().tolist():
                ax.axvspan(t - 0.5, t + 0.5, color="#2e9e4f", alpha=0.25, linewidth=0)
        for t in torch.nonzero(batch.mask[:L, 0]).flatten().tolist():
            ax.axvline(t, color="#c94a4a", linestyle="--", linewidth=1)
    for c in range(s.shape[1]):
        axes[1].plot(s[:, c], linewidth=1.2, label=f"s_{c}")
    axes[1].set_ylabel("cell state s_c")
    axes[1].legend(fontsize=7, ncol=min(4, s.shape[1]))
    for j in range(K):
        axes[2].plot(acts[:, j], linewidth=1.1, label=f"in gate {j}")
        if cell.output_gate:
            axes[2].plot(acts[:, K + j], linewidth=1.1, linestyle=":", label=f"out gate {j}")
    axes[2].set_ylim(-0.05, 1.05)
    axes[2].set_ylabel("gate activation")
    axes[2].set_xlabel("time step")
    axes[2].legend(fontsize=7, ncol=min(4, 2 * K))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)
