"""The options torch.nn's recurrent modules do not have: their checks, masks and initialisers.

    recurrent_dropout=p   Gal & Ghahramani (2016): in training, one mask per sequence and
                          layer-direction on h_{t−1} where it enters the recurrent product,
                          entries 0 (probability p) or 1/(1 − p) (Keras's recurrent_dropout)
    zoneout=z | (z_h, z_c)
                          Krueger et al. (2017): s_t = z_t ⊙ s_{t−1} + (1 − z_t) ⊙ s̃_t for
                          each state, z_t ~ Bernoulli(z) afresh at every step and unit in
                          training, z_t = z in evaluation
    forget_bias=b         LSTM: the forget gate's bias starts at b (Gers et al. 2000;
                          Jozefowicz et al. 2015 recommend 1): b_ih's forget slice b, b_hh's 0
    chrono_init=T_max     LSTM: Tallec & Ollivier (2018), forget bias log U[1, T_max − 1] per
                          unit, input-gate bias its negative (b_hh's slices 0)

The masks are drawn at the module's door, all of them before the first layer runs, in the
batch's own order; the engine (`rnnlab.cells.base.Masks`) applies them inside its loops. Each
mask takes one seed from torch's generator (so it is reproducible under ``torch.manual_seed``)
and is filled by a counter-based generator (`bernoulli_mask`): in the compiled kernels where
they are on (a zoneout mask is T·B·H draws: torch's own Bernoulli sampling cost a quarter of
the training step), else by the same integer arithmetic in torch, bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _checks as ck
from . import kernels
from .cells.base import NO_MASKS, Masks

#: splitmix64's constants (Steele, Lea & Flood 2014), as signed int64 for torch
_GOLDEN, _MIX1, _MIX2 = (c - (1 << 64) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9,
                                                 0x94D049BB133111EB))
#: the draws' resolution: 24 bits, as torch.rand's float32
_BITS = 24


def _shift_right(x: Tensor, k: int) -> Tensor:
    """Logical (unsigned) right shift of int64 bits (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def bernoulli_mask(shape, p: float, value: float, like: Tensor, *, seed: int | None = None,
                   ) -> Tensor:
    """A tensor of ``shape`` (``like``'s dtype and device): ``value`` with probability p, else
    0. u_i = the top 24 bits of splitmix64(seed + (i + 1)·φ); the entry is ``value`` where
    u_i < round(p · 2²⁴). ``seed`` defaults to one draw from torch's generator."""
    if seed is None:
        seed = int(torch.empty((), dtype=torch.int64).random_())
    threshold = round(p * (1 << _BITS))
    out = torch.empty(shape, dtype=like.dtype, device=like.device)
    # (under a torch.func transform only torch's own ops may run: they give the same bits)
    if kernels.usable(out) and torch._C._functorch.peek_interpreter_stack() is None:
        torch.ops.rnnlab.bernoulli_mask(out, seed, threshold, float(value), kernels.threads())
        return out
    i = torch.arange(1, out.numel() + 1, dtype=torch.int64, device=out.device)
    x = i * _GOLDEN + (seed - (1 << 64) if seed >= 1 << 63 else seed)  # wraps, as uint64
    x = (x ^ _shift_right(x, 30)) * _MIX1
    x = (x ^ _shift_right(x, 27)) * _MIX2
    x = x ^ _shift_right(x, 31)
    keep = _shift_right(x, 64 - _BITS) < threshold
    return out.copy_(keep.view(out.shape)).mul_(value)


def check_probability(name: str, value) -> float:
    """A drop or keep probability in [0, 1)."""
    return ck.check_number(name, value, low=0.0, high=1.0, high_open=True)


def check_zoneout(value, state_names: tuple[str, ...], kind: str) -> tuple[float, ...]:
    """One probability per state: a number for all of them, or (z_h, z_c) for an LSTM."""
    if isinstance(value, (tuple, list)):
        if len(value) != len(state_names):
            if len(state_names) == 1:
                raise ValueError(f"{kind} has no cell state c: zoneout takes one probability "
                                 f"(for h), got {tuple(value)!r}")
            raise ValueError(f"zoneout takes one probability or one per state "
                             f"{state_names}, got {tuple(value)!r}")
        return tuple(check_probability(f"zoneout ({s})", v) for s, v in zip(state_names, value))
    z = check_probability("zoneout", value)
    return (z,) * len(state_names)


def sample_masks(n: int, T: int, B: int, sizes: tuple[int, ...], *, drop: float,
                 zone: tuple[float, ...], training: bool, like: Tensor) -> list[Masks] | None:
    """The masks of ``n`` layer-directions for a (T, B) batch whose states have ``sizes``;
    None when nothing applies (no option set, or only recurrent dropout in evaluation)."""
    drop = drop if training else 0.0
    if not drop and not any(zone):
        return None
    factory = {"dtype": like.dtype, "device": like.device}
    masks = []
    for _ in range(n):
        d = None
        if drop:
            d = bernoulli_mask((B, sizes[0]), 1 - drop, 1 / (1 - drop), like)
        zones = []
        for z, size in zip(zone, sizes):
            if not z:
                zones.append(None)
            elif training:  # 1 where a unit keeps its previous value
                zones.append(bernoulli_mask((T, B, size), z, 1.0, like))
            else:
                zones.append(torch.full((1, 1, size), z, **factory))
        masks.append(Masks(d, tuple(zones)))
    return masks


def select(masks: list[Masks] | None, steps: int, order: Tensor | None) -> list[Masks] | None:
    """The masks for the first ``steps`` steps, rows in ``order`` (the engine's sorted batch,
    on the masks' device)."""
    if masks is None:
        return None
    out = []
    for m in masks:
        drop = m.drop
        zone = tuple(z if z is None or z.shape[0] == 1 else z[:steps] for z in m.zone)
        if order is not None:
            drop = None if drop is None else drop.index_select(0, order)
            zone = tuple(z if z is None or z.shape[1] == 1 else z.index_select(1, order)
                         for z in zone)
        out.append(Masks(drop, zone))
    return out


def cell_masks(masks: list[Masks] | None, k: int) -> Masks:
    """Layer-direction k's masks (none when ``masks`` is None)."""
    return NO_MASKS if masks is None else masks[k]


def check_forget_init(forget_bias, chrono_init, bias: bool) -> tuple[float | None, float | None]:
    """forget_bias (a number) or chrono_init (T_max > 2), not both, and only with biases."""
    if forget_bias is not None and chrono_init is not None:
        raise ValueError("forget_bias and chrono_init both set the forget gate's bias: give "
                         "one of them")
    if forget_bias is not None:
        forget_bias = ck.check_number("forget_bias", forget_bias)
    if chrono_init is not None:
        chrono_init = ck.check_number("chrono_init", chrono_init, low=2.0, low_open=True)
    if (forget_bias is not None or chrono_init is not None) and not bias:
        raise ValueError("forget_bias and chrono_init set biases: they need bias=True")
    return forget_bias, chrono_init


@torch.no_grad()
def init_forget_gate(b_ih: Tensor, b_hh: Tensor, hidden: int, *, forget_bias=None,
                     chrono_init=None, gates: tuple[str, ...] = ("i", "f", "g", "o")) -> None:
    """Overwrite the i and f slices of an LSTM's biases (its gate blocks ``gates``; a variant
    without an input gate gets the forget gate's only)."""
    def block(gate):
        k = gates.index(gate)
        return slice(k * hidden, (k + 1) * hidden)

    f = block("f")
    if forget_bias is not None:
        b_ih[f] = forget_bias
        b_hh[f] = 0.0
    elif chrono_init is not None:
        # b_f = log u, u ~ U[1, T_max − 1]: forget timescales up to T_max steps
        u = torch.empty(hidden, dtype=torch.float64).uniform_(1.0, chrono_init - 1.0)
        b_ih[f] = u.log().to(b_ih.dtype)
        b_hh[f] = 0.0
        if "i" in gates:  # the input gate opens as the forget gate closes
            b_ih[block("i")] = -b_ih[f]
            b_hh[block("i")] = 0.0


def repr_options(module) -> str:
    """The set options, for extra_repr."""
    s = ", layer_norm=True" if getattr(module, "layer_norm", False) else ""
    if getattr(module, "variant", None):
        s += f", variant={module.variant!r}"
    if getattr(module, "recurrent_dropout", 0):
        s += f", recurrent_dropout={module.recurrent_dropout}"
    if any(getattr(module, "_zone", ())):
        s += f", zoneout={module.zoneout}"
    for name in ("forget_bias", "chrono_init"):
        if getattr(module, name, None) is not None:
            s += f", {name}={getattr(module, name)}"
    return s

