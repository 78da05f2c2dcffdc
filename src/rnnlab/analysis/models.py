"""The analysis applied to a model: rnnlab's RNN/LSTM/GRU, or torch.nn's (through the
state_dict compatibility).

Layer by layer, each driven by the inputs it really sees (the outputs of the layers below):
the spectra of the recurrent matrices per gate, the norms of Jacobian products against the lag,
the Lyapunov exponents, the gradient norms ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖ along the LSTM's cell state)
through time, gate saturation and the memory response to a perturbed input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import layers
from ..cells.lstm_variants import VARIANT_GATES
from ..engine import trajectory
from ..options import sample_masks
from .jacobians import (
    jacobian_sequence,
    largest_lyapunov_brute_force,
    lyapunov,
    product_norms,
    step_jacobian,
)
from .linear import spectrum

GATES = {"RNN": ("h",), "LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n"),
         "LSTM1997": ("all",)}  # the 1997 cell's W_rec maps all sources to all units


def gate_names(model: nn.Module) -> tuple[str, ...]:
    """The gate blocks of the model's recurrent matrices (an LSTM variant's own, if any)."""
    variant = getattr(model, "variant", None)
    return VARIANT_GATES[variant] if variant else GATES[_family(model)]


def as_rnnlab(module: nn.Module) -> layers._RecurrentBase:
    """An rnnlab RNN/LSTM/GRU with the weights of ``module`` (rnnlab's, or torch.nn's)."""
    if isinstance(module, (layers.RNN, layers.LSTM, layers.GRU, layers.LSTM1997)):
        return module
    for theirs, ours in ((nn.LSTM, layers.LSTM), (nn.GRU, layers.GRU), (nn.RNN, layers.RNN)):
        if isinstance(module, theirs):
            kw = dict(num_layers=module.num_layers, bias=module.bias,
                      bidirectional=module.bidirectional, dtype=module.weight_ih_l0.dtype)
            if theirs is nn.LSTM:
                kw["proj_size"] = module.proj_size
            if theirs is nn.RNN:
                kw["nonlinearity"] = module.nonlinearity
            twin = ours(module.input_size, module.hidden_size, **kw)
            twin.load_state_dict(module.state_dict())
            return twin
    raise ValueError(f"cannot analyse a {type(module).__name__}; expected an RNN, LSTM or GRU "
                     "(rnnlab or torch.nn)")


def _family(model) -> str:
    return type(model).__name__


def recurrent_spectra(module: nn.Module) -> list[dict]:
    """Eigenvalues and singular values of every layer's recurrent matrix, gate by gate."""
    model = as_rnnlab(module)
    rows = []
    for names in model._names:
        if "weight_hh" not in names:
            continue  # a 1997 LSTM without recurrence
        W = getattr(model, names["weight_hh"]).detach()
        gates = gate_names(model)
        for gate, block in zip(gates, W.chunk(len(gates))):
            if block.shape[0] != block.shape[1]:
                continue  # a projected LSTM's blocks are not square
            s = spectrum(block)
            rows.append({"layer": _label(names), "gate": gate,
                         "eigenvalues": s["eigenvalues"], "singular_values": s["singular_values"],
                         "spectral_radius": s["spectral_radius"]})
    return rows


def layer_trajectories(module: nn.Module, x: Tensor) -> list[dict]:
    """Run the model layer by layer on x (T, B, input) with zero initial states and keep, for
    every layer-direction, its cell, parameters and tape (all states, all gate activations)."""
    model = as_rnnlab(module)
    if model.batch_first:
        x = x.transpose(0, 1)
    cell = model._make_cell()
    # zoneout, as in evaluation: s_t = z s_{t−1} + (1 − z) s̃_t (recurrent dropout is off)
    masks = sample_masks(1, 1, 1, model._state_sizes(), drop=0.0, zone=model._zone,
                         training=False, like=x)
    if masks:
        cell = cell.with_masks(masks[0])
    D = 2 if model.bidirectional else 1
    out, layer_input = [], x.detach()
    for layer in range(model.num_layers):
        outs = []
        for d in range(D):
            names = model._names[layer * D + d]
            params = {n: getattr(model, a).detach() for n, a in names.items()}
            inp = layer_input.flip(0) if d == 1 else layer_input
            inits = tuple(inp.new_zeros(inp.shape[1], s) for s in model._state_sizes())
            tape = trajectory(cell, inp, inits, params)
            h = tape.states[0][1:]
            outs.append(h.flip(0) if d == 1 else h)
            out.append({"label": _label(names), "cell": cell,
                        "params": params, "tape": tape, "input": inp})
        layer_input = torch.cat(outs, dim=2)
    return out


def _label(names: dict) -> str:
    return names["weight_ih"].removeprefix("weight_ih").removeprefix("_") or "l0"


def _pick(module, x, layer: int) -> tuple[dict, layers._RecurrentBase]:
    trajs = layer_trajectories(module, x)
    if not 0 <= layer < len(trajs):
        raise ValueError(f"layer must be in 0..{len(trajs) - 1}, got {layer}")
    return trajs[layer], as_rnnlab(module)


def jacobian_norms(module: nn.Module, x: Tensor, layer: int = 0) -> Tensor:
    """‖∂h_T/∂h_t‖₂ against the lag T − t for one layer-direction: (T + 1, B)."""
    tr, _ = _pick(module, x, layer)
    J = jacobian_sequence(tr["cell"], tr["params"], tr["tape"], tr["input"])
    states = tr["tape"].states
    return product_norms(J, block=states[0].shape[-1] if len(states) > 1 else None)


def lyapunov_spectrum(module: nn.Module, x: Tensor, k: int = 5, *, layer: int = 0,
                      transient: int = 0, reorth: int = 1) -> dict:
    """The k largest Lyapunov exponents of one layer driven by x, by QR and (the largest)
    by brute force: {"exponents": (B, k), "largest_brute_force": (B,)}."""
    tr, _ = _pick(module, x, layer)
    J = jacobian_sequence(tr["cell"], tr["params"], tr["tape"], tr["input"])
    k = min(k, J.shape[-1])
    return {"exponents": lyapunov(J, k, transient=transient, reorth=reorth),
            "largest_brute_force": largest_lyapunov_brute_force(J, transient=transient)}


def gradient_norms(module: nn.Module, x: Tensor, loss_fn) -> dict:
    """‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖ for an LSTM) for t = 0..T of the top layer of a one-directional
    model, L = loss_fn(output). The error is carried back with the analytic step Jacobians:
    δs_{t-1} = J_tᵀ δs_t + (direct error at t−1). Returns mean norms over the batch, (T + 1,)
    each (index t: the state after step t; 0 the initial state)."""
    model = as_rnnlab(module)
    if model.bidirectional:
        raise ValueError("gradient_norms takes a one-directional model")
    out, _ = model(x)
    out.retain_grad()
    loss_fn(out).backward()
    d_out = out.grad if not model.batch_first else out.grad.transpose(0, 1)
    tr = layer_trajectories(model, x)[-1]
    T, B, H = d_out.shape
    sizes = [s.shape[-1] for s in tr["tape"].states]  # [h] or [h, c] (1997: [y, s])
    Y, S = sizes[0], sum(sizes)
    delta = d_out.new_zeros(B, S)
    dh, dc = [None] * (T + 1), [None] * (T + 1)
    for t in range(T, -1, -1):
        if t >= 1:
            delta[:, :H] += d_out[t - 1]  # the output is the first H units of the state
        dh[t] = delta[:, :H].norm(dim=1).mean()
        dc[t] = delta[:, Y:].norm(dim=1).mean() if S > Y else None
        if t >= 1:
            J = step_jacobian(tr["cell"], tr["params"], tr["tape"], t - 1, tr["input"])
            delta = (J.transpose(1, 2) @ delta.unsqueeze(-1)).squeeze(-1)
    result = {"h": torch.stack(dh)}
    if S > Y:
        result["c"] = torch.stack(dc)
    return result


def gate_saturation(module: nn.Module, x: Tensor, layer: int = 0,
                    margin: float = 0.05) -> dict:
    """Fraction of gate activations within ``margin`` of their bounds (σ: 0 or 1; tanh
    candidates: ±1), gate by gate, for one layer-direction."""
    tr, model = _pick(module, x, layer)
    names = gate_names(model)
    if _family(model) == "RNN":
        return {}
    out = {}
    acts = tr["tape"].xw
    if _family(model) == "LSTM1997":  # one block of rows: [in gates, out gates, net_c]
        K = model.num_blocks
        gates = acts[0][..., : tr["cell"].gates * K]
        names, acts = ("in", "out")[: tr["cell"].gates], gates.split(K, dim=-1)
    for name, act in zip(names, acts):
        if name in ("g", "n"):  # tanh: bounds ±1
            sat = act.abs() > 1 - margin
        else:
            sat = (act < margin) | (act > 1 - margin)
        out[name] = float(sat.float().mean())
    return out


def memory_response(module: nn.Module, x: Tensor, t0: int = 0, eps: float = 1e-4) -> Tensor:
    """‖h(t) − h'(t)‖ / eps for the model's output, h' driven by x with x(t0) perturbed by eps
    along the unit diagonal: how long the network remembers one input. (T,), mean over batch."""
    model = as_rnnlab(module)
    if model.batch_first:
        raise ValueError("memory_response takes a time-major model (batch_first=False)")
    if not 0 <= t0 < x.shape[0]:
        raise ValueError(f"t0 must be in 0..{x.shape[0] - 1}, got {t0}")
    with torch.no_grad():
        base, _ = model(x)
        x2 = x.clone()
        x2[t0] += eps / x.shape[-1] ** 0.5
        moved, _ = model(x2)
    return ((moved - base).norm(dim=-1) / eps).mean(1)
