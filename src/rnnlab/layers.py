"""The nn.Module front doors: RNN, LSTM, GRU and their single-step *Cell versions.

Where torch.nn has the same class, rnnlab takes the same arguments with the same defaults,
registers the same parameters under the same names and shapes in the same order (so one seed
gives the same initial weights), and takes and returns the same shapes, so that

    rnnlab.LSTM(...).load_state_dict(torch.nn.LSTM(...).state_dict())

just works and gives the same numbers. New options are keyword-only and off by default:
``peephole`` and ``truncated`` (LSTM), ``reset_after`` (GRU), the nonlinearities ``sigmoid`` and
``linear`` (RNN), ``lengths=`` in forward for padded batches, and ``embedding=`` in forward for
symbol inputs (ids and their table, projected once per symbol). Modules never loop over time:
they arrange layers, directions and dropout, and hand each layer-direction to the engine.

What torch.nn does at its door, these doors do too: its argument checks (and the exception
classes it raises, see `rnnlab._checks`), ``_flat_weights`` / ``all_weights`` for code that walks
the weights (weight drop, pruning, weight norm), and autocast, under which the layer computes in
the autocast dtype.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import _checks as ck
from . import options as opt
from .cells import (
    NONLINEARITIES,
    SQUASHERS,
    GRUMath,
    LayerNormGRUMath,
    LayerNormLSTMMath,
    LSTM1997Math,
    LSTMMath,
    RNNMath,
)
from .cells.base import CellMath
from .cells.lstm_variants import VARIANT_GATES, LSTMVariantMath, check_variant, peephole_gates
from .engine import Embedded, run_layer, sort_lengths


def _autocast_dtype(t: Tensor) -> torch.dtype | None:
    """The dtype autocast runs this layer in, or None where autocast is off for t's device."""
    if not torch._C._is_any_autocast_enabled():
        return None
    kind = t.device.type
    try:
        on = torch.is_autocast_enabled(kind)
    except RuntimeError:  # a device type autocast does not know (meta)
        return None
    return torch.get_autocast_dtype(kind) if on else None


def _amp_dtype(t: Tensor, dtype: torch.dtype | None) -> torch.dtype:
    """Autocast's rule for an op that runs in reduced precision: floating tensors other than
    float64 are cast to its dtype."""
    if dtype is None or not t.is_floating_point() or t.dtype == torch.float64:
        return t.dtype
    return dtype


def _amp(t, dtype: torch.dtype | None):
    """t under autocast's rule (cast differentiably: gradients reach float32 parameters)."""
    if dtype is None or not isinstance(t, Tensor) or _amp_dtype(t, dtype) == t.dtype:
        return t
    return t.to(dtype)


def _check_rank(what: str, t, ranks: tuple[int, ...]) -> None:
    """``what`` ("LSTM: Expected input") to be a tensor of one of ``ranks``, in torch.nn's words."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{what} to be a torch.Tensor, got {type(t).__name__}")
    if t.dim() not in ranks:
        want = " or ".join(f"{r}D" for r in ranks)
        raise ck.TensorError(f"{what} to be {want}, got {t.dim()}D instead (shape "
                             f"{tuple(t.shape)})")


def _check_nonlinearity(value) -> str:
    if value not in NONLINEARITIES:
        raise ValueError(
            f"Unknown nonlinearity '{value}'. Select from 'tanh' or 'relu' (or rnnlab's "
            f"{', '.join(repr(n) for n in NONLINEARITIES if n not in ('tanh', 'relu'))})")
    return value


def _autocast_forward(forward, input, *args):
    """Run ``forward(input, *args, amp=dtype)`` with autocast's dtype and autocast itself off
    inside (the casts are done once, at the door; the engine's products must not recast)."""
    data = input.data if isinstance(input, PackedSequence) else input
    data = data.table if isinstance(data, Embedded) else data
    amp = _autocast_dtype(data) if isinstance(data, Tensor) else None
    if amp is None:
        return forward(input, *args, amp=None)
    with torch.autocast(data.device.type, enabled=False):
        return forward(input, *args, amp=amp)


class _RecurrentBase(nn.Module):
    """Stacked, optionally bidirectional recurrent layers over one cell family."""

    _gates = 1
    _has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        # torch.nn's checks, in its order and words
        self.bias = ck.check_strict_bool("bias", bias)
        self.batch_first = ck.check_strict_bool("batch_first", batch_first)
        self.input_size = ck.check_positive_int("input_size", input_size)
        self.hidden_size = ck.check_positive_int("hidden_size", hidden_size)
        self.num_layers = ck.check_positive_int("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             f"probability of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout applies between layers; with num_layers=1 it does nothing",
                          stacklevel=2)
        self.dropout = float(dropout)
        # torch.nn takes any truth value here; 0 and 1 are kept, a string is refused
        self.bidirectional = ck.check_bool("bidirectional", bidirectional)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             f"projections, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size: proj_size "
                             f"({proj_size}) >= hidden_size ({hidden_size})")
        self.proj_size = proj_size
        num_dir = 2 if bidirectional else 1
        out_size = proj_size or hidden_size
        G = self._gates * hidden_size
        names = []  # per layer-direction: math name -> attribute
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * num_dir
            for d in range(num_dir):
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                shapes = {"weight_ih": (G, layer_in), "weight_hh": (G, out_size)}
                if bias:
                    shapes |= {"bias_ih": (G,), "bias_hh": (G,)}
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                shapes |= self._extra_shapes()
                for name, shape in shapes.items():
                    self.register_parameter(name + sfx,
                                            nn.Parameter(torch.empty(shape, **factory)))
                names.append({name: name + sfx for name in shapes})
        self._name_weights(names)
        self.reset_parameters()

    # -- the weights as torch.nn lists them ------------------------------------------------

    def _name_weights(self, names: list[dict[str, str]]) -> None:
        """Record the weights' attribute names, per layer-direction in registration order:
        ``_names`` (math name -> attribute) for the engine, and torch.nn's ``_all_weights``
        and ``_flat_weights_names`` for code written against it."""
        self._names = names
        self._all_weights = [list(n.values()) for n in names]
        self._flat_weights_names = [a for n in self._all_weights for a in n]

    @property
    def _flat_weights(self) -> list[Tensor | None]:
        """The weights in torch.nn's flat order, read afresh at every access, so that a weight
        replaced by weight drop, pruning or weight norm (plain tensors set in the
        parameter's place) or by a parametrization is the one listed, and the one forward uses."""
        return [getattr(self, a, None) for a in self._flat_weights_names]

    @_flat_weights.setter
    def _flat_weights(self, weights) -> None:
        # torch.nn keeps a cached list that code may reassign (DataParallel's replicas copy
        # it); here the list is a view, so assigning it assigns the weights it names
        for a, w in zip(self._flat_weights_names, weights, strict=True):
            if getattr(self, a, None) is not w:
                setattr(self, a, w)

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """The weights per layer-direction, as torch.nn's ``all_weights``."""
        return [[getattr(self, a) for a in names] for names in self._all_weights]

    def _extra_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def _make_cell(self) -> CellMath:
        raise NotImplementedError

    #: recurrent dropout and zoneout (`rnnlab.options`), off unless a subclass sets them
    recurrent_dropout = 0.0
    _zone: tuple[float, ...] = ()

    def _set_regularisers(self, recurrent_dropout, zoneout) -> None:
        """Check and keep the recurrent_dropout and zoneout options (before Module init)."""
        self.recurrent_dropout = opt.check_probability("recurrent_dropout", recurrent_dropout)
        names = ("h", "c") if self._has_cell_state else ("h",)
        self._zone = opt.check_zoneout(zoneout, names, type(self).__name__)
        self.zoneout = tuple(zoneout) if isinstance(zoneout, (tuple, list)) else float(zoneout)

    def _training(self) -> bool:
        """Training mode, read only when a regulariser makes train and eval differ (so the plain
        modules' forward stays independent of `training`, as torch.nn's)."""
        return bool(self.recurrent_dropout or any(self._zone)) and self.training

    def reset_parameters(self) -> None:
        """Uniform in ±1/√hidden_size, every parameter, in registration order (as torch.nn)."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for name, p in self.named_parameters():
            if "_ln_" in name:  # a layer norm's γ starts at 1, its β at 0
                nn.init.constant_(p, 1.0 if name.startswith("weight") else 0.0)
            else:
                nn.init.uniform_(p, -bound, bound)
        self._init_forget_gates()

    def _init_forget_gates(self) -> None:
        """forget_bias / chrono_init (LSTM): the forget and input gates' biases."""
        fb, chrono = getattr(self, "forget_bias", None), getattr(self, "chrono_init", None)
        if fb is None and chrono is None:
            return
        gates = VARIANT_GATES.get(getattr(self, "variant", None), ("i", "f", "g", "o"))
        for b_ih, b_hh in self._bias_pairs():
            opt.init_forget_gate(b_ih, b_hh, self.hidden_size, forget_bias=fb,
                                 chrono_init=chrono, gates=gates)

    def _bias_pairs(self) -> list[tuple[Tensor, Tensor]]:
        return [(getattr(self, n["bias_ih"]), getattr(self, n["bias_hh"])) for n in self._names]

    def flatten_parameters(self) -> None:
        """No-op, for code written against torch.nn (there is no cuDNN weight buffer here)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {"proj_size": 0, "num_layers": 1, "bias": True, "batch_first": False,
                    "dropout": 0.0, "bidirectional": False}
        for k, v in defaults.items():
            if getattr(self, k) != v:
                s += f", {k}={getattr(self, k)}"
        return s + self._extra_repr_options() + opt.repr_options(self)

    def _extra_repr_options(self) -> str:
        return ""

    # -- forward ---------------------------------------------------------------------------

    def forward(self, input, hx=None, *, lengths=None, embedding=None):
        """input (T, B, input_size) [(B, T, ·) if batch_first], (T, input_size) unbatched, or a
        PackedSequence; hx the initial state(s) (num_layers·D, B, ·), zeros if None; lengths
        (B,) for a padded batch. Returns (output, h_n) or (output, (h_n, c_n)) as torch.nn.

        ``embedding`` (V, input_size): input then holds symbol ids, (T, B) [(B, T) if
        batch_first] or (T,), and the result is that of ``forward(F.embedding(input,
        embedding))``, but the first layer projects each of the V symbols once instead of each
        of the T·B steps (where V < T·B), and its gradient reaches ``embedding``."""
        if embedding is not None:
            input = _symbols(input, embedding, self.input_size)
        return _autocast_forward(self._forward, input, hx, lengths)

    def _forward(self, input, hx, lengths, *, amp):
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("lengths= cannot be given with a PackedSequence input: it "
                                 "already carries the lengths")
            x, lengths = pad_packed_sequence(input)
            batched = True
        elif isinstance(input, Embedded):  # checked by _symbols
            batched = input.ids.dim() == 2
            ids = input.ids if batched else input.ids.unsqueeze(1)
            if batched and self.batch_first:
                ids = ids.t()
            x = Embedded(ids, _amp(input.table, amp))
        else:
            _check_rank(f"{type(self).__name__}: Expected input", input, (2, 3))
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)
        x = _amp(x, amp)
        self._check_input(x, amp)
        T, B, _ = x.shape
        inits = self._initial_states(hx, B, batched, x, amp)
        LD = self.num_layers * (2 if self.bidirectional else 1)
        masks = opt.sample_masks(LD, T, B, self._state_sizes(), drop=self.recurrent_dropout,
                                 zone=self._zone, training=self._training(), like=x)

        batch_sizes = None
        if lengths is not None:
            lengths = ck.check_lengths(lengths, B, T)
            if B and int(lengths.max()) < T:  # steps no sequence reaches are not run: their
                x = x[: int(lengths.max())]  # outputs are zeros, added back below
            order, batch_sizes = sort_lengths(lengths, x.shape[0])
        if batch_sizes is not None:
            order_d = order.to(x.device)
            x = x.index_select(1, order_d)
            inits = tuple(s.index_select(1, order_d) for s in inits)
            lengths_sorted = lengths[order]
            masks = opt.select(masks, x.shape[0], order_d)
        else:
            lengths_sorted = None
            masks = opt.select(masks, x.shape[0], None)

        out, finals = self._run_layers(x, inits, batch_sizes, lengths_sorted, amp, masks)
        out = self._output_units(out)
        if out.shape[0] < T:
            out = F.pad(out, (0, 0, 0, 0, 0, T - out.shape[0]))

        if batch_sizes is not None:
            inverse = torch.argsort(order).to(x.device)
            out = out.index_select(1, inverse)
            finals = tuple(s.index_select(1, inverse) for s in finals)
        if packed:
            output = self._pack_like(out, input, lengths)
        elif not batched:
            output = out.squeeze(1)
            finals = tuple(s.squeeze(1) for s in finals)
        else:
            output = out.transpose(0, 1) if self.batch_first else out
        return output, (tuple(finals[:2]) if self._has_cell_state else finals[0])

    def _check_input(self, x: Tensor, amp: torch.dtype | None) -> None:
        """The (T, B, I) input against the weights (as autocast casts them): dtype, device,
        features, steps. The words are torch.nn's, the exception classes both torch.nn's and
        rnnlab's (see _checks)."""
        weight = getattr(self, self._flat_weights_names[0])
        dtype = _amp_dtype(weight, amp)
        if x.dtype != dtype:
            raise ck.DtypeError(
                f"RNN input dtype ({x.dtype}) does not match weight dtype ({dtype}). "
                f"Convert input: input.to({dtype}), or convert model: model.to({x.dtype})")
        if x.device != weight.device:
            raise ck.TensorError(f"input is on {x.device} but the module's parameters are on "
                                 f"{weight.device}; move them to the same device")
        T, _, I = x.shape
        if I != self.input_size:
            raise ck.TensorError(f"input.size(-1) must be equal to input_size. Expected "
                                 f"{self.input_size}, got {I} (features per step)")
        if T == 0:
            raise ck.TensorError("Expected sequence length to be larger than 0 in RNN: the "
                                 "input has no time steps (T = 0)")

    def _run_layers(self, x, inits, batch_sizes, lengths, amp=None, masks=None):
        cell = self._make_cell()
        num_dir = 2 if self.bidirectional else 1
        finals = [[] for _ in inits]
        layer_input = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(num_dir):
                k = layer * num_dir + d
                params = {name: _amp(getattr(self, attr), amp)
                          for name, attr in self._names[k].items()}
                out, states = run_layer(
                    cell.with_masks(opt.cell_masks(masks, k)), layer_input,
                    tuple(s[k] for s in inits), params,
                    batch_sizes=batch_sizes, lengths=lengths, reverse=d == 1,
                )
                outs.append(out)
                for acc, s in zip(finals, states):
                    acc.append(s)
            layer_input = outs[0] if num_dir == 1 else torch.cat(outs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, tuple(torch.stack(acc) for acc in finals)

    def _output_units(self, out: Tensor) -> Tensor:
        """The part of the state sequence that is the layer's output (all of it, here)."""
        return out

    def _state_sizes(self) -> tuple[int, ...]:
        """Sizes of the states the engine carries: h (and c), and for the FGR variant the
        gates' activations q, which the module keeps to itself (zero at the start)."""
        out = self.proj_size or self.hidden_size
        if not self._has_cell_state:
            return (out,)
        return (out, self.hidden_size) + ((3 * self.hidden_size,) if _fgr(self) else ())

    def _initial_states(self, hx, B, batched, x, amp=None) -> tuple[Tensor, ...]:
        LD = self.num_layers * (2 if self.bidirectional else 1)
        sizes = self._state_sizes()
        if hx is None:
            return tuple(x.new_zeros(LD, B, s) for s in sizes)
        if self._has_cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("hx for an LSTM must be a tuple (h_0, c_0), got "
                                f"{type(hx).__name__}")
            names = ("h_0", "c_0")
        else:
            hx = (hx,)
            names = ("hx",)
        rank = 3 if batched else 2
        for name, s in zip(names, hx):
            ck.check_tensor(name, s, dims=(2, 3))
            if s.dim() != rank:
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise ck.TensorError(f"For {kind} input, {name} should also be {rank}-D but "
                                     f"got {s.dim()}-D tensor of shape {tuple(s.shape)}")
        states = []
        for i, (name, s, size) in enumerate(zip(names, hx, sizes)):
            s = _amp(s, amp)
            ck.check_like(name, s, x, "input")
            want = (LD, B, size) if batched else (LD, size)
            if tuple(s.shape) != want:
                which = f"hidden[{i}]" if self._has_cell_state else "hidden"
                raise ck.TensorError(f"Expected {which} size {want}, got {list(s.shape)}: "
                                     f"{name} must have shape {want}")
            states.append(s if batched else s.unsqueeze(1))
        for size in sizes[len(states):]:  # states the module keeps to itself start at zero
            states.append(x.new_zeros(LD, B, size))
        return tuple(states)

    @staticmethod
    def _pack_like(out: Tensor, like: PackedSequence, lengths: Tensor) -> PackedSequence:
        """Pack a padded (T, B, ·) output in the input PackedSequence's own order."""
        B = out.shape[1]
        sorted_idx = like.sorted_indices
        if sorted_idx is None:
            sorted_idx = torch.arange(B, device=out.device)
        out_sorted = out.index_select(1, sorted_idx.to(out.device))
        steps = torch.arange(out.shape[0]).unsqueeze(1)
        mask = (steps < lengths[sorted_idx.cpu()].unsqueeze(0)).to(out.device)  # (T, B)
        return PackedSequence(out_sorted[mask], like.batch_sizes, like.sorted_indices,
                              like.unsorted_indices)


def _symbols(ids, table, input_size: int) -> Embedded:
    """Symbol ids and their embedding table, checked at the door (forward's ``embedding=``)."""
    if isinstance(ids, PackedSequence):
        raise ValueError("embedding= takes symbol ids as a tensor, not a PackedSequence; give "
                         "lengths= for a padded batch")
    ck.check_tensor("embedding", table, dims=(2,))
    ck.check_float("embedding", table)
    if table.shape[1] != input_size:
        raise ck.TensorError(f"embedding.size(1) must be equal to input_size. Expected "
                             f"{input_size}, got {table.shape[1]}")
    ck.check_tensor("input (symbol ids)", ids, dims=(1, 2))
    if ids.dtype not in (torch.int64, torch.int32):
        raise ck.DtypeError(f"with embedding=, input must hold symbol ids (torch.long or "
                            f"torch.int), got dtype {ids.dtype}")
    if ids.device != table.device:
        raise ck.TensorError(f"input (symbol ids) is on {ids.device} but embedding is on "
                             f"{table.device}; move them to the same device")
    if ids.numel():
        lo, hi = ids.aminmax()  # one pass, one sync
        if int(lo) < 0 or int(hi) >= table.shape[0]:
            raise ValueError(f"symbol ids must lie in [0, {table.shape[0]}) (the embedding's "
                             f"rows), got ids in [{int(lo)}, {int(hi)}]")
    return Embedded(ids, table)


def _refuse_proj_size(proj_size) -> None:
    """torch.nn.RNN and GRU refuse the keyword outright, even proj_size=0."""
    if proj_size is not None:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


class RNN(_RecurrentBase):
    """Elman RNN, h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); drop-in for torch.nn.RNN.

    ``nonlinearity`` is 'tanh' (default) or 'relu' as torch, or 'sigmoid' / 'linear' (for the
    stability analysis of σ and linear recursions). Keyword-only ``recurrent_dropout`` and
    ``zoneout``: see `rnnlab.options`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, proj_size=None, recurrent_dropout: float = 0.0,
                 zoneout: float = 0.0) -> None:
        _refuse_proj_size(proj_size)
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self._set_regularisers(recurrent_dropout, zoneout)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)

    def _make_cell(self):
        return RNNMath(self.nonlinearity)

    def _extra_repr_options(self):
        return "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"


class LSTM(_RecurrentBase):
    """LSTM with forget gate, gate order (i, f, g, o); drop-in for torch.nn.LSTM.

    Keyword-only options:
      peephole   Gers-style peepholes: i and f see c_{t-1}, o sees c_t, through diagonal weights
                 ``weight_peephole_l{k}{suffix}`` of shape (3·hidden_size,), order (i, f, o).
      truncated  the 1997 truncated gradient: error is carried back in time only through c.
      variant    one of Greff et al.'s (2017) variants: "NIG", "NFG", "NOG", "NIAF", "NOAF",
                 "CIFG", "FGR" ("NP" is peephole=False); fewer gate blocks where a gate is
                 gone, ``weight_gr_l{k}{suffix}`` (3·hidden_size)² for FGR
                 (rnnlab.cells.lstm_variants says which, and the equations).
      layer_norm Ba et al. (2016): LN of W_ih x_t and of W_hh h_{t-1} over the gate vector, and
                 of c_t where it enters h_t = o tanh(LN(c_t)); parameters
                 ``weight_ln_ih``/``bias_ln_ih``, ``weight_ln_hh``/``bias_ln_hh`` (4·hidden_size)
                 and ``weight_ln_c``/``bias_ln_c`` (hidden_size) per layer-direction (suffix
                 ``_l{k}{suffix}``), γ starting at 1, β at 0 (rnnlab.cells.lstm_ln).
      recurrent_dropout, zoneout (one probability, or (z_h, z_c)), forget_bias, chrono_init:
                 see `rnnlab.options`.
    The equations are in rnnlab.cells.lstm (and lstm_ln).
    """

    _gates = 4
    _has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, peephole: bool = False,
                 truncated: bool = False, recurrent_dropout: float = 0.0, zoneout=0.0,
                 forget_bias: float | None = None, chrono_init: float | None = None,
                 layer_norm: bool = False, variant: str | None = None) -> None:
        _set_lstm_options(self, bias, peephole=peephole, truncated=truncated,
                          layer_norm=layer_norm, variant=variant, forget_bias=forget_bias,
                          chrono_init=chrono_init, recurrent_dropout=recurrent_dropout,
                          zoneout=zoneout)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)

    def _extra_shapes(self):
        return _lstm_shapes(self)

    def _make_cell(self):
        return _lstm_math(self)

    def _extra_repr_options(self):
        return "".join(f", {k}=True" for k in ("peephole", "truncated") if getattr(self, k))


def _set_lstm_options(module, bias, *, peephole, truncated, layer_norm, variant, forget_bias,
                      chrono_init, recurrent_dropout, zoneout) -> None:
    """Check and keep an LSTM's (or LSTMCell's) keyword-only options (before Module init); a
    variant sets the number of gate blocks (`rnnlab.cells.lstm_variants`)."""
    module.peephole = ck.check_bool("peephole", peephole)
    module.truncated = ck.check_bool("truncated", truncated)
    module.layer_norm = ck.check_bool("layer_norm", layer_norm)
    module.variant = check_variant(variant)
    if module.layer_norm and module.truncated:
        raise ValueError("layer_norm and truncated cannot be combined: the 1997 truncated "
                         "gradient is defined for the plain cell")
    if module.variant and (module.layer_norm or module.truncated):
        raise ValueError(f"variant={module.variant!r} combines with peephole, proj_size and "
                         f"the regularisers, not with layer_norm or truncated")
    if module.variant == "NFG" and (forget_bias is not None or chrono_init is not None):
        raise ValueError("variant='NFG' has no forget gate: forget_bias and chrono_init do "
                         "not apply")
    if module.variant:
        module._gates = len(VARIANT_GATES[module.variant])
    module._set_regularisers(recurrent_dropout, zoneout)
    module.forget_bias, module.chrono_init = opt.check_forget_init(forget_bias, chrono_init,
                                                                   bias)


def _lstm_shapes(module) -> dict[str, tuple[int, ...]]:
    """The LSTM's parameters beyond torch.nn's: peepholes, the layer norms' γ and β."""
    H = module.hidden_size
    shapes = {"weight_peephole": (len(peephole_gates(module.variant)) * H,)} \
        if module.peephole else {}
    if _fgr(module):
        shapes["weight_gr"] = (3 * H, 3 * H)
    if module.layer_norm:
        shapes |= {"weight_ln_ih": (4 * H,), "bias_ln_ih": (4 * H,), "weight_ln_hh": (4 * H,),
                   "bias_ln_hh": (4 * H,), "weight_ln_c": (H,), "bias_ln_c": (H,)}
    return shapes


def _fgr(module) -> bool:
    return getattr(module, "variant", None) == "FGR"


def _lstm_math(module) -> LSTMMath:
    if module.variant:
        return LSTMVariantMath(module.variant, peephole=module.peephole)
    cls = LayerNormLSTMMath if module.layer_norm else LSTMMath
    return cls(peephole=module.peephole, truncated=module.truncated)


class GRU(_RecurrentBase):
    """GRU, gate order (r, z, n); drop-in for torch.nn.GRU.

    Keyword-only options:
      reset_after  True (default) is torch's form, n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn));
                   False is Cho et al.'s (2014), n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn).
                   Same parameters in both.
      layer_norm   Ba et al. (2016), torch's form: LN of W_ih x_t and of W_hh h_{t-1}, each over
                   its 3·hidden_size gate vector, before the biases; parameters
                   ``weight_ln_ih``/``bias_ln_ih``, ``weight_ln_hh``/``bias_ln_hh``
                   (3·hidden_size) per layer-direction (suffix ``_l{k}{suffix}``), γ starting
                   at 1, β at 0 (rnnlab.cells.gru_ln).
      recurrent_dropout, zoneout: see `rnnlab.options`.
    """

    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, reset_after: bool = True, proj_size=None,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0,
                 layer_norm: bool = False) -> None:
        _refuse_proj_size(proj_size)
        _set_gru_options(self, reset_after, layer_norm, recurrent_dropout, zoneout)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)

    def _extra_shapes(self):
        return _gru_shapes(self)

    def _make_cell(self):
        return _gru_math(self)

    def _extra_repr_options(self):
        return "" if self.reset_after else ", reset_after=False"


def _set_gru_options(module, reset_after, layer_norm, recurrent_dropout, zoneout) -> None:
    """Check and keep a GRU's (or GRUCell's) keyword-only options (before Module init)."""
    module.reset_after = ck.check_bool("reset_after", reset_after)
    module.layer_norm = ck.check_bool("layer_norm", layer_norm)
    if module.layer_norm and not module.reset_after:
        raise ValueError("layer_norm needs reset_after=True: the layer norm normalises "
                         "W_hh h_{t-1} before the reset gate, which reset_after=False moves "
                         "inside the product")
    module._set_regularisers(recurrent_dropout, zoneout)


def _gru_shapes(module) -> dict[str, tuple[int, ...]]:
    G = 3 * module.hidden_size
    if not module.layer_norm:
        return {}
    return {"weight_ln_ih": (G,), "bias_ln_ih": (G,), "weight_ln_hh": (G,), "bias_ln_hh": (G,)}


def _gru_math(module) -> GRUMath:
    return LayerNormGRUMath() if module.layer_norm else GRUMath(reset_after=module.reset_after)


# -- single steps ---------------------------------------------------------------------------


class _CellBase(nn.Module):
    """One time step of a recurrent cell; drop-in for torch.nn.*Cell."""

    _gates = 1
    _has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        # as torch.nn's cells: zero sizes are allowed (states of shape (B, 0))
        self.input_size = ck.check_int("input_size", input_size, low=0)
        self.hidden_size = ck.check_int("hidden_size", hidden_size, low=0)
        if not isinstance(bias, bool):  # torch.nn's cells take any truth value; say so
            warnings.warn(f"bias={bias!r} is not a bool; taken as {bool(bias)}, as torch.nn's "
                          f"cells do (the third positional argument is bias)", stacklevel=3)
        self.bias = bool(bias)
        G = self._gates * hidden_size
        shapes = {"weight_ih": (G, input_size), "weight_hh": (G, hidden_size)}
        if bias:
            shapes |= {"bias_ih": (G,), "bias_hh": (G,)}
        shapes |= self._extra_shapes()
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        if not bias:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def _extra_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def _make_cell(self) -> CellMath:
        raise NotImplementedError

    recurrent_dropout = 0.0
    _zone: tuple[float, ...] = ()
    _set_regularisers = _RecurrentBase._set_regularisers
    _training = _RecurrentBase._training
    reset_parameters = _RecurrentBase.reset_parameters
    _init_forget_gates = _RecurrentBase._init_forget_gates

    def _bias_pairs(self):
        return [(self.bias_ih, self.bias_hh)]

    def reset_dropout_mask(self) -> None:
        """Draw a fresh recurrent-dropout mask at the next call. One step is one call, so the
        cell keeps its mask from call to call (variational: one mask per sequence, as Keras's
        cells): call this at the start of each sequence."""
        self._drop_mask = None

    def _masks(self, B: int, like: Tensor):
        """This call's masks: zoneout's afresh, recurrent dropout's kept (see
        `reset_dropout_mask`), or None."""
        masks = opt.sample_masks(1, 1, B, self._state_sizes(), drop=0.0, zone=self._zone,
                                 training=self._training(), like=like)
        if not (self.recurrent_dropout and self._training()):
            return masks
        d = getattr(self, "_drop_mask", None)
        if d is None or d.shape[0] != B or d.dtype != like.dtype or d.device != like.device:
            p = self.recurrent_dropout
            self._drop_mask = d = opt.bernoulli_mask((B, self.hidden_size), 1 - p, 1 / (1 - p),
                                                     like)
        zone = masks[0].zone if masks else ()
        return [opt.Masks(d, zone)]

    def _state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * (2 if self._has_cell_state else 1)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
                + opt.repr_options(self))

    def forward(self, input, hx=None):
        """input (B, input_size) or (input_size,); hx (B, hidden_size) or for LSTMCell a tuple
        (h, c); zeros if None. Returns h' (or (h', c')) of the same batchedness."""
        return _autocast_forward(self._forward, input, hx)

    def _forward(self, input, hx, *, amp):
        kind = type(self).__name__
        _check_rank(f"{kind}: Expected input", input, (1, 2))
        if hx is not None:
            if self._has_cell_state:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"hx for an LSTMCell must be a tuple (h, c), got "
                                    f"{type(hx).__name__}")
                for i, s in enumerate(hx):
                    _check_rank(f"{kind}: Expected hx[{i}]", s, (1, 2))
            else:
                _check_rank(f"{kind}: Expected hidden", hx, (1, 2))
        batched = input.dim() == 2
        x = _amp(input if batched else input.unsqueeze(0), amp)
        B, I = x.shape
        # sizes first, then dtypes, in torch.nn's order
        if I != self.input_size:
            raise ck.TensorError(f"input has inconsistent input_size: got {I} expected "
                                 f"{self.input_size}")
        states = () if hx is None else tuple(hx) if self._has_cell_state else (hx,)
        states = tuple(_amp(s if batched else s.unsqueeze(0), amp) for s in states)
        for i, s in enumerate(states):
            if s.dim() != 2 or s.shape[0] != B:
                raise ck.TensorError(f"Input batch size {B} doesn't match hidden{i} batch "
                                     f"size {s.shape[0] if s.dim() == 2 else '?'} (hidden{i} "
                                     f"has shape {tuple(s.shape)})")
            if s.shape[1] != self.hidden_size:
                raise ck.TensorError(f"hidden{i} has inconsistent hidden_size: got "
                                     f"{s.shape[1]}, expected {self.hidden_size}")
        ck.check_float("input", x)
        dtype = _amp_dtype(self.weight_ih, amp)
        if x.dtype != dtype:
            raise ck.DtypeError(f"input has dtype {x.dtype} but the cell's parameters have "
                                f"dtype {dtype}; convert one of them (e.g. cell.to({x.dtype}))")
        if x.device != self.weight_ih.device:
            raise ck.TensorError(f"input is on {x.device} but the cell's parameters are on "
                                 f"{self.weight_ih.device}; move them to the same device")
        for i, s in enumerate(states):
            ck.check_like(f"hidden{i}", s, x, "input")
        n_states = 2 if self._has_cell_state else 1
        inits = states or tuple(x.new_zeros(B, self.hidden_size) for _ in range(n_states))
        cell = self._make_cell().with_masks(opt.cell_masks(self._masks(B, x), 0))
        params = {name: _amp(getattr(self, name, None), amp) for name in cell.param_names}
        _, finals = run_layer(cell, x.unsqueeze(0), inits, params)
        if not batched:
            finals = tuple(s.squeeze(0) for s in finals)
        return finals if self._has_cell_state else finals[0]


class RNNCell(_CellBase):
    """h' = φ(W_ih x + b_ih + W_hh h + b_hh); drop-in for torch.nn.RNNCell, with keyword-only
    ``recurrent_dropout`` (see `reset_dropout_mask`) and ``zoneout``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None, *,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0) -> None:
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self._set_regularisers(recurrent_dropout, zoneout)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def _make_cell(self):
        return RNNMath(self.nonlinearity)


class LSTMCell(_CellBase):
    """One LSTM step; drop-in for torch.nn.LSTMCell, with keyword-only ``peephole``
    (parameter ``weight_peephole``, (3·hidden_size,), order i, f, o), ``truncated`` and the
    options of `rnnlab.options` (recurrent_dropout: see `reset_dropout_mask`)."""

    _gates = 4
    _has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, peephole: bool = False, truncated: bool = False,
                 recurrent_dropout: float = 0.0, zoneout=0.0, forget_bias: float | None = None,
                 chrono_init: float | None = None, layer_norm: bool = False,
                 variant: str | None = None) -> None:
        _set_lstm_options(self, bias, peephole=peephole, truncated=truncated,
                          layer_norm=layer_norm, variant=variant, forget_bias=forget_bias,
                          chrono_init=chrono_init, recurrent_dropout=recurrent_dropout,
                          zoneout=zoneout)
        if self.variant == "FGR":
            raise ValueError("variant='FGR' carries the gates' activations from step to step, "
                             "which a cell's (h, c) cannot hold: use rnnlab.LSTM")
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def _extra_shapes(self):
        return _lstm_shapes(self)

    def _make_cell(self):
        return _lstm_math(self)


class GRUCell(_CellBase):
    """One GRU step; drop-in for torch.nn.GRUCell, with keyword-only ``reset_after``,
    ``layer_norm`` (parameters ``weight_ln_ih``, ``bias_ln_ih``, ``weight_ln_hh``,
    ``bias_ln_hh``, (3·hidden_size,)), ``recurrent_dropout`` (see `reset_dropout_mask`) and
    ``zoneout``: as `GRU`'s."""

    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, reset_after: bool = True, recurrent_dropout: float = 0.0,
                 zoneout: float = 0.0, layer_norm: bool = False) -> None:
        _set_gru_options(self, reset_after, layer_norm, recurrent_dropout, zoneout)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def _extra_shapes(self):
        return _gru_shapes(self)

    def _make_cell(self):
        return _gru_math(self)


# -- the 1997 LSTM --------------------------------------------------------------------------


#: the option that sets each gate type's initial biases
_GATE_BIAS = {"in": "input_gate_bias", "out": "output_gate_bias", "forget": "forget_gate_bias"}


class LSTM1997(_RecurrentBase):
    """The LSTM of Hochreiter & Schmidhuber (1997): ``num_blocks`` memory cell blocks of
    ``block_size`` cells, one input gate and one output gate per block, no forget gate, the
    constant error carousel s_c(t) = s_c(t-1) + y^in(t) g(net_c(t)). The equations are in
    rnnlab.cells.lstm1997.

    Input (T, B, input_size) [(B, T, ·) with batch_first]; output y^c, (T, B, C) with
    C = num_blocks · block_size; state (y, s), each (1, B, ·) as torch.nn.LSTM's: y the cells'
    outputs and (with ``gate_recurrence``) the gates' activations, which the units see at the
    next step; s the cell states. Both start at zero unless ``hx`` is given.

    Options (all keyword-only): ``output_gate`` (task 2a has none); ``recurrent`` (False: cells
    and gates see only the input, as in task 2a); ``gate_recurrence`` (units see the previous
    gate activations too, as in the paper's experiments); ``bias``: True (every unit), False, or
    the unit types that have one, e.g. ("in", "out"); ``g``, ``h``: squashers, "g2" = 4σ−2 and
    "h1" = 2σ−1 (the paper's), "logistic", "tanh", "identity"; ``init_range``: weights and biases
    uniform in ±init_range; ``input_gate_bias``, ``output_gate_bias``: a number or one number per
    block, overriding the random initial bias (e.g. −3, −6; or −1, −2, −3); ``truncated``: the
    paper's truncated gradient (default) or full BPTT (False). ``forget_gate`` adds Gers et
    al.'s (2000) forget gate, s_c(t) = y^φ(t) s_c(t-1) + y^in(t) g(net_c(t)), with
    ``forget_gate_bias`` like the others (Gers: +0.5, +1, +1.5, +2 for four blocks).
    """

    _has_cell_state = True

    def __init__(self, input_size: int, num_blocks: int, block_size: int = 1, *,
                 output_gate: bool = True, recurrent: bool = True,
                 gate_recurrence: bool = True, bias=True, g: str = "g2", h: str = "h1",
                 init_range: float = 0.1, input_gate_bias=None, output_gate_bias=None,
                 truncated: bool = True, forget_gate: bool = False, forget_gate_bias=None,
                 batch_first: bool = False, device=None, dtype=None) -> None:
        nn.Module.__init__(self)
        factory = {"device": device, "dtype": dtype}
        self.input_size = ck.check_positive_int("input_size", input_size)
        self.num_blocks = ck.check_positive_int("num_blocks", num_blocks)
        self.block_size = ck.check_positive_int("block_size", block_size)
        for name, value in (("g", g), ("h", h)):
            if value not in SQUASHERS:
                raise ValueError(f"unknown squasher {name}={value!r}; expected one of "
                                 f"{tuple(SQUASHERS)}")
        ck.check_number("init_range", init_range, low=0)
        self.forget_gate = ck.check_bool("forget_gate", forget_gate)
        kinds = ("in", "out", "forget", "cell") if self.forget_gate else ("in", "out", "cell")
        if bias is True:
            bias = kinds
        elif bias is False or bias is None:
            bias = ()
        bias = tuple(bias)
        unknown = [b for b in bias if b not in kinds]
        if unknown:
            raise ValueError(f"bias must be True, False or a subset of {kinds}, got {bias!r}")
        if "out" in bias and not output_gate:
            bias = tuple(b for b in bias if b != "out")
        self.output_gate = ck.check_bool("output_gate", output_gate)
        self.recurrent = ck.check_bool("recurrent", recurrent)
        self.gate_recurrence = ck.check_bool("gate_recurrence", gate_recurrence) and self.recurrent
        self.bias_units, self.g, self.h = bias, g, h
        self.init_range = float(init_range)
        self.truncated = ck.check_bool("truncated", truncated)
        # what the shared forward path of _RecurrentBase reads
        self.num_layers, self.bidirectional = 1, False
        self.batch_first = ck.check_strict_bool("batch_first", batch_first)
        self.dropout, self.proj_size = 0.0, 0
        self.hidden_size = self.num_cells = num_blocks * block_size
        cell = self._make_cell()
        K, C = num_blocks, self.num_cells
        shapes = {"weight_ih": (cell.rows, input_size)}
        if self.recurrent:
            shapes["weight_hh"] = (cell.rows, cell.state_size)
        sizes = {"in": K, "out": K, "forget": K, "cell": C}
        for kind in bias:
            shapes["bias_" + kind] = (sizes[kind],)
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        self._name_weights([{name: name for name in shapes}])
        self._gate_bias = {"in": input_gate_bias, "out": output_gate_bias,
                           "forget": forget_gate_bias}
        if forget_gate_bias is not None and not self.forget_gate:
            raise ValueError("forget_gate_bias is given but there is no forget gate "
                             "(forget_gate=False)")
        for kind, value in self._gate_bias.items():
            if value is not None:
                if kind not in bias:
                    raise ValueError(f"{_GATE_BIAS[kind]} is given but the {kind} gates "
                                     f"have no bias (bias={bias!r})")
                self._block_values(_GATE_BIAS[kind], value)
        self.reset_parameters()

    def _block_values(self, name, value) -> Tensor:
        values = torch.as_tensor(value, dtype=torch.float64).flatten()
        if values.numel() == 1:
            values = values.expand(self.num_blocks)
        if values.numel() != self.num_blocks:
            raise ValueError(f"{name} needs one value or one per block ({self.num_blocks}), "
                             f"got {values.numel()}")
        return values

    def reset_parameters(self) -> None:
        """Uniform in ±init_range, then the given gate biases (one value per block)."""
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-self.init_range, self.init_range)
            for kind, value in self._gate_bias.items():
                if value is not None:
                    p = getattr(self, "bias_" + kind)
                    p.copy_(self._block_values(_GATE_BIAS[kind], value))

    def _make_cell(self):
        return LSTM1997Math(self.num_blocks, self.block_size, output_gate=self.output_gate,
                            gate_recurrence=self.gate_recurrence, g=self.g, h=self.h,
                            truncated=self.truncated, forget_gate=self.forget_gate)

    def _state_sizes(self):
        return (self._make_cell().state_size, self.num_cells)

    def _output_units(self, out):
        return out[..., : self.num_cells]

    def extra_repr(self) -> str:
        return (f"{self.input_size}, num_blocks={self.num_blocks}, "
                f"block_size={self.block_size}, output_gate={self.output_gate}, "
                f"g={self.g!r}, h={self.h!r}, truncated={self.truncated}"
                + (", forget_gate=True" if self.forget_gate else ""))
