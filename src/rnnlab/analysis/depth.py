"""Vanishing gradients through depth: the feed-forward half of the lecture's argument.

A deep MLP (default 19 hidden layers of 1024 units, PyTorch's default initialisation) on a real
dataset that needs no download — scikit-learn's bundled 8×8 digits (1797 images, 10 classes),
standardised — at initialisation. For each layer l the gradient of the cross-entropy with
respect to each neuron's incoming weights, ‖∂L/∂W_l[j, :]‖, summarised over the layer's
neurons, once for the gradient of the whole batch and once for single instances. Backprop
multiplies by W_lᵀ diag(f'(a_l)) at every layer: sigmoid (f' ≤ 1/4) shrinks the error at every
step, tanh less, relu and elu keep it roughly level (at the price of dead or exploding units).
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits, standardised: X (1797, 64) float32, y (1797,) int64."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = torch.tensor(d.data, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-6)
    return X, torch.tensor(d.target)


def deep_mlp(activation: str, depth: int = 19, width: int = 1024, inputs: int = 64,
             classes: int = 10, seed: int = 0) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of "
                         f"{tuple(ACTIVATIONS)}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    fan_in = inputs
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), ACTIVATIONS[activation]()]
        fan_in = width
    layers.append(nn.Linear(fan_in, classes))
    return nn.Sequential(*layers)


def layer_gradient_norms(model: nn.Sequential, X: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """Per linear layer: median, 10 % and 90 % quantiles of the neurons' incoming-weight
    gradient norms for the mean cross-entropy over (X, y)."""
    model.zero_grad()
    nn.functional.cross_entropy(model(X), y).backward()
    rows = []
    for layer in (m for m in model if isinstance(m, nn.Linear)):
        norms = layer.weight.grad.norm(dim=1)
        q = torch.quantile(norms, torch.tensor([0.1, 0.5, 0.9], dtype=norms.dtype))
        rows.append({"q10": float(q[0]), "median": float(q[1]), "q90": float(q[2])})
    return rows


def vanishing_through_depth(activations=tuple(ACTIVATIONS), depth: int = 19,
                            width: int = 1024, seed: int = 0, instances: int = 8) -> dict:
    """{activation: {"batch": [per layer], "single": [per layer, mean over ``instances``
    single examples]}} at initialisation, layer 1 the first hidden layer."""
    X, y = digits()
    out = {}
    for act in activations:
        model = deep_mlp(act, depth, width, X.shape[1], 10, seed).to(X.dtype)
        batch = layer_gradient_norms(model, X, y)
        singles = [layer_gradient_norms(model, X[i : i + 1], y[i : i + 1])
                   for i in range(instances)]
        single = [{k: sum(s[l][k] for s in singles) / len(singles) for k in batch[0]}
                  for l in range(len(batch))]
        out[act] = {"batch": batch, "single": single}
    return out
