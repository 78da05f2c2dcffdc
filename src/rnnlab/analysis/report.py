"""`rnnlab analyze`: the analysis of one saved model, as numbers (analysis.json) and PNGs.

A model is a run folder of `rnnlab train` (minibatch runs of rnn, lstm, gru or lstm1997; the
inputs are then the run's task), of `rnnlab lm train` (the language model's recurrent core,
driven by windows of its own text as its embedding feeds them), or a state_dict file of
torch.nn.RNN/LSTM/GRU or rnnlab's (safetensors, or a torch file read with weights_only=True:
nothing in it is executed); the architecture is read off the parameter names and shapes, layer
norms and FGR's gate recurrence included (a three-gate LSTM variant's file reads as a GRU:
analyse its run folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .._plotting import headless

headless()
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from .. import layers, tasks  # noqa: E402
from .models import (  # noqa: E402
    gate_saturation,
    gradient_norms,
    jacobian_norms,
    lyapunov_spectrum,
    memory_response,
    recurrent_spectra,
)

WHAT = ("spectrum", "jacobian", "gradients", "lyapunov", "memory", "saturation")


def infer_module(state: dict[str, Tensor], nonlinearity: str = "tanh") -> layers._RecurrentBase:
    """An rnnlab RNN/LSTM/GRU shaped like a torch.nn-style state_dict, with its weights."""
    if "weight_ih_l0" not in state or "weight_hh_l0" not in state:
        raise ValueError("not a recurrent state_dict: it has no weight_ih_l0 / weight_hh_l0 "
                         f"(keys: {', '.join(list(state)[:6])}…)")
    W_ih, W_hh = state["weight_ih_l0"], state["weight_hh_l0"]
    proj = state["weight_hr_l0"].shape[0] if "weight_hr_l0" in state else 0
    H = state["weight_hr_l0"].shape[1] if proj else W_hh.shape[1]
    gates = W_hh.shape[0] // H
    cls = {1: layers.RNN, 3: layers.GRU, 4: layers.LSTM}.get(gates)
    if cls is None or W_hh.shape[0] % H:
        raise ValueError(f"cannot tell the cell from weight_hh_l0 of shape {tuple(W_hh.shape)}")
    layer_of = (re.search(r"_l(\d+)(_reverse)?$", k) for k in state)
    num_layers = 1 + max(int(m.group(1)) for m in layer_of if m)
    kw = dict(num_layers=num_layers, bias="bias_ih_l0" in state,
              bidirectional="weight_ih_l0_reverse" in state, dtype=W_ih.dtype)
    if cls is layers.RNN:
        kw["nonlinearity"] = nonlinearity
    if "weight_ln_hh_l0" in state:  # the layer norms' γ and β: LSTM and GRU alike
        kw["layer_norm"] = True
    if "weight_gr_l0" in state:  # Greff et al.'s FGR (the three-gate variants read as GRUs)
        cls, kw["variant"] = layers.LSTM, "FGR"
    if cls is layers.LSTM:
        kw["proj_size"] = proj
        kw["peephole"] = "weight_peephole_l0" in state
    module = cls(W_ih.shape[1], H, **kw)
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"the state_dict does not fit a {cls.__name__}: {e}") from e
    return module


class TextInputs:
    """Driving inputs for a char-LM's recurrent core: windows of its own text (the validation
    tail), as its embedding (or one-hot input) feeds them to the core."""

    def __init__(self, model, ids: torch.Tensor, steps: int, name: str) -> None:
        if len(ids) <= steps:
            raise ValueError(f"the text has {len(ids)} symbols; --steps must be fewer")
        self.model, self.ids, self.steps, self.name = model, ids, steps, name

    def sample(self, batch: int, gen: torch.Generator):
        from types import SimpleNamespace

        starts = torch.randint(0, len(self.ids) - self.steps, (batch,), generator=gen)
        window = torch.stack([self.ids[s : s + self.steps] for s in starts.tolist()], 1)
        with torch.no_grad():
            x = self.model.embed(window) if self.model.embed is not None else \
                torch.nn.functional.one_hot(window, self.model.vocab_size).float()
        return SimpleNamespace(x=x)

    def describe(self) -> str:
        return f"windows of {self.steps} symbols of {self.name}"


def _load_lm(path: Path, steps: int):
    """(the core, its text inputs or None) of a run folder of `rnnlab lm train`."""
    from .. import lm

    model, vocab, cfg = lm.load_model(path)
    text_path = Path(cfg["text"])
    if not text_path.is_file():  # moved or deleted: standard-normal inputs instead
        return model.core, None
    text, _ = lm.read_text(text_path, byte_level=cfg["byte_level"])
    _, val = lm.split(vocab.encode(text), cfg["val_fraction"])
    return model.core, TextInputs(model, val if len(val) > steps else vocab.encode(text),
                                  steps, text_path.name)


def load(path: Path, nonlinearity: str = "tanh", steps: int = 100):
    """(module, task or None) from a run folder (of `rnnlab train` or `rnnlab lm train`) or a
    state_dict file; a char-LM's "task" drives its core with its own text (`TextInputs`)."""
    path = Path(path)
    if path.is_dir():
        from ..training import RunDir, make_model
        from ..training.runs import load_model_tensors

        run = RunDir(path)
        cfg = run.config()
        if "text" in cfg and "task" not in cfg:
            return _load_lm(path, steps)
        if "task" not in cfg:
            raise ValueError(f"{path} is not a run of `rnnlab train` or `rnnlab lm train` "
                             f"(analyze reads those runs and recurrent state_dict files)")
        if cfg.get("protocol") != "minibatch":
            raise ValueError(f"{path}: analyze covers minibatch runs (a paper-protocol run "
                             f"holds {cfg.get('trials')} networks; `rnnlab eval` tests them)")
        task = tasks.make(cfg["task"], **cfg["task_params"])
        model = make_model(task, cfg["model"], cfg["hidden"], cfg["model_options"],
                           readout_bias=cfg["readout_bias"], shortcut=cfg["shortcut"])
        tensors, _ = run.load()
        load_model_tensors(model, tensors, path)
        return model.core, task
    if not path.is_file():
        raise ValueError(f"no run folder or model file at {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{path} is not a readable safetensors file ({e})") from e
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001  (any unreadable or unsafe file)
            raise ValueError(f"{path} is not a weights-only torch file ({e})") from e
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, not a state_dict")
    return infer_module(state, nonlinearity), None


def analyze(path: Path, out: Path, what=WHAT, *, steps: int = 100, batch: int = 16,
            seed: int = 0, nonlinearity: str = "tanh", echo=print) -> dict:
    unknown = [w for w in what if w not in WHAT]
    if unknown:
        raise ValueError(f"unknown analysis {', '.join(unknown)}; choose from {', '.join(WHAT)}")
    module, task = load(path, nonlinearity, steps)
    return analyze_module(module, task, out, what, steps=steps, batch=batch, seed=seed,
                          echo=echo)


def analyze_module(module, task, out: Path, what=WHAT, *, steps: int = 100, batch: int = 16,
                   seed: int = 0, echo=print) -> dict:
    """The analyses ``what`` of a recurrent module, driven by ``batch`` sequences of ``task``
    (or standard-normal inputs of ``steps`` steps without one), into ``out``: analysis.json
    and a PNG per figure. Returns what analysis.json holds."""
    import copy

    module = copy.deepcopy(module).double().eval()
    gen = torch.Generator().manual_seed(seed)
    if task is not None:
        x = task.sample(batch, gen).x.double()
        source = f"{batch} sequences of its task, {task.describe()}"
    else:
        x = torch.randn(steps, batch, module.input_size, generator=gen, dtype=torch.float64)
        source = f"{batch} sequences of {steps} standard-normal inputs"
    if module.batch_first:
        module.batch_first = False  # the analysis is time-major
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": repr(module), "inputs": source}
    family = type(module).__name__

    if "spectrum" in what:
        rows = recurrent_spectra(module)
        report["spectrum"] = [
            {"layer": r["layer"], "gate": r["gate"], "spectral_radius": r["spectral_radius"],
             "largest_singular_value": float(r["singular_values"][0]),
             "eigenvalues_top": [[float(z.real), float(z.imag)] for z in r["eigenvalues"][:8]]}
            for r in rows]
        first = [r for r in rows if r["layer"] == rows[0]["layer"]]
        fig, axes = plt.subplots(1, len(first), figsize=(3.2 * len(first), 3.4), squeeze=False)
        for ax, r in zip(axes[0], first):
            z = r["eigenvalues"]
            t = torch.linspace(0, 2 * torch.pi, 200)
            ax.plot(t.cos(), t.sin(), color="grey", linewidth=0.8)
            ax.scatter(z.real, z.imag, s=10)
            ax.set_aspect("equal")
            ax.set_title(f"{r['layer']} gate {r['gate']}: ρ = {r['spectral_radius']:.2f}")
            ax.set_xlabel("Re λ")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("Im λ")
        _save(fig, out / "spectrum.png")
    if "jacobian" in what:
        norms = jacobian_norms(module, x).mean(1)
        report["jacobian_norms"] = norms.tolist()
        _curve(norms, "lag T − t", "‖∂h_T/∂h_t‖₂ (mean over batch)",
               f"{family}: Jacobian products against the lag", out / "jacobian.png")
    if "gradients" in what and not module.bidirectional:
        g = gradient_norms(module, x, lambda o: o[-1].sum())
        report["gradient_norms"] = {k: v.tolist() for k, v in g.items()}
        fig, ax = plt.subplots(figsize=(6.4, 4))
        ax.plot(g["h"], label="‖∂L/∂h_t‖")
        if "c" in g:
            ax.plot(g["c"][:-1], label="‖∂L/∂c_t‖ (cell state)")
        _finish(ax, "t", "gradient norm", "error from the last output, back through time")
        _save(fig, out / "gradients.png")
    if "lyapunov" in what:
        k = min(10, sum(module._state_sizes()))
        ly = lyapunov_spectrum(module, x, k=k, transient=min(20, x.shape[0] // 5))
        report["lyapunov"] = {"exponents": ly["exponents"].mean(0).tolist(),
                              "largest_brute_force": float(ly["largest_brute_force"].mean())}
    if "memory" in what:
        mem = memory_response(module, x, t0=0)
        report["memory_response"] = mem.tolist()
        _curve(mem, "t", "‖Δh(t)‖ / ε", "response to a perturbation of x(0)",
               out / "memory.png")
    if "saturation" in what:
        report["gate_saturation"] = gate_saturation(module, x)
    (out / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
    echo(f"wrote {out / 'analysis.json'} and the PNGs beside it")
    return report


def _finish(ax, xlabel, ylabel, title):
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def _curve(values: Tensor, xlabel, ylabel, title, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(values.clamp_min(1e-300), label=ylabel)
    _finish(ax, xlabel, ylabel, title)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
