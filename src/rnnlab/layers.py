"""The nn.Module front doors: RNN, LSTM, GRU and their single-step *Cell versions.

Where torch.nn has the same class, rnnlab takes the same arguments with the same defaults,
registers the same parameters under the same names and shapes in the same order (so one seed
gives the same initial weights), and takes and returns the same shapes, so that

    rnnlab.LSTM(...).load_state_dict(torch.nn.LSTM(...).state_dict())

just works and gives the same numbers. New options are keyword-only and off by default:
``peephole`` and ``truncated`` (LSTM), ``reset_after`` (GRU), the nonlinearities ``sigmoid`` and
``linear`` (RNN), and ``lengths=`` in forward for padded batches. Modules never loop over time:
they arrange layers, directions and dropout, and hand each layer-direction to the engine.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import _checks as ck
from .cells import NONLINEARITIES, SQUASHERS, GRUMath, LSTM1997Math, LSTMMath, RNNMath
from .cells.base import CellMath
from .engine import run_layer, sort_lengths


class _RecurrentBase(nn.Module):
    """Stacked, optionally bidirectional recurrent layers over one cell family."""

    _gates = 1
    _has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.input_size = ck.check_positive_int("input_size", input_size)
        self.hidden_size = ck.check_positive_int("hidden_size", hidden_size)
        self.num_layers = ck.check_positive_int("num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        ck.check_number("dropout", dropout, low=0, high=1)
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout applies between layers; with num_layers=1 it does nothing",
                          stacklevel=2)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"proj_size must be a non-negative int, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size ({proj_size}) must be smaller than hidden_size "
                             f"({hidden_size})")
        self.proj_size = proj_size
        num_dir = 2 if bidirectional else 1
        out_size = proj_size or hidden_size
        G = self._gates * hidden_size
        self._names: list[dict[str, str]] = []  # per layer-direction: math name -> attribute
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
                names = {}
                for name, shape in shapes.items():
                    attr = name + sfx
                    self.register_parameter(attr, nn.Parameter(torch.empty(shape, **factory)))
                    names[name] = attr
                self._names.append(names)
        self.reset_parameters()

    def _extra_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def _make_cell(self) -> CellMath:
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Uniform in ±1/√hidden_size, every parameter, in registration order (as torch.nn)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def flatten_parameters(self) -> None:
        """No-op, for code written against torch.nn (there is no cuDNN weight buffer here)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                    "bidirectional": False, "proj_size": 0}
        for k, v in defaults.items():
            if getattr(self, k) != v:
                s += f", {k}={getattr(self, k)}"
        return s + self._extra_repr_options()

    def _extra_repr_options(self) -> str:
        return ""

    # -- forward ---------------------------------------------------------------------------

    def forward(self, input, hx=None, *, lengths=None):
        """input (T, B, input_size) [(B, T, ·) if batch_first], (T, input_size) unbatched, or a
        PackedSequence; hx the initial state(s) (num_layers·D, B, ·), zeros if None; lengths
        (B,) for a padded batch. Returns (output, h_n) or (output, (h_n, c_n)) as torch.nn."""
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("lengths= cannot be given with a PackedSequence input: it "
                                 "already carries the lengths")
            x, lengths = pad_packed_sequence(input)
            batched = True
        else:
            ck.check_tensor("input", input, dims=(2, 3))
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)
        weight = next(self.parameters())
        ck.check_float("input", x)
        ck.check_like("input", x, weight, "the module's parameters")
        T, B, I = x.shape
        if T == 0:
            raise ValueError("input has no time steps (T = 0); give at least one step")
        if I != self.input_size:
            raise ValueError(f"input has {I} features per step, expected input_size = "
                             f"{self.input_size}")
        inits = self._initial_states(hx, B, batched, x)

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
        else:
            lengths_sorted = None

        out, finals = self._run_layers(x, inits, batch_sizes, lengths_sorted)
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
        return output, (finals if self._has_cell_state else finals[0])

    def _run_layers(self, x, inits, batch_sizes, lengths):
        cell = self._make_cell()
        num_dir = 2 if self.bidirectional else 1
        finals = [[] for _ in inits]
        layer_input = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(num_dir):
                k = layer * num_dir + d
                params = {name: getattr(self, attr) for name, attr in self._names[k].items()}
                out, states = run_layer(
                    cell, layer_input, tuple(s[k] for s in inits), params,
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
        out = self.proj_size or self.hidden_size
        return (out, self.hidden_size) if self._has_cell_state else (out,)

    def _initial_states(self, hx, B, batched, x) -> tuple[Tensor, ...]:
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
        states = []
        for name, s, size in zip(names, hx, sizes):
            ck.check_tensor(name, s, dims=(3,) if batched else (2,))
            ck.check_like(name, s, x, "input")
            want = (LD, B, size) if batched else (LD, size)
            ck.check_shape(name, s, want)
            states.append(s if batched else s.unsqueeze(1))
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


class RNN(_RecurrentBase):
    """Elman RNN, h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); drop-in for torch.nn.RNN.

    ``nonlinearity`` is 'tanh' (default) or 'relu' as torch, or 'sigmoid' / 'linear' (for the
    stability analysis of σ and linear recursions).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected one of "
                             f"{NONLINEARITIES}")
        self.nonlinearity = nonlinearity
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
    The equations are in rnnlab.cells.lstm.
    """

    _gates = 4
    _has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, peephole: bool = False,
                 truncated: bool = False) -> None:
        self.peephole = ck.check_bool("peephole", peephole)
        self.truncated = ck.check_bool("truncated", truncated)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)

    def _extra_shapes(self):
        return {"weight_peephole": (3 * self.hidden_size,)} if self.peephole else {}

    def _make_cell(self):
        return LSTMMath(peephole=self.peephole, truncated=self.truncated)

    def _extra_repr_options(self):
        return "".join(f", {k}=True" for k in ("peephole", "truncated") if getattr(self, k))


class GRU(_RecurrentBase):
    """GRU, gate order (r, z, n); drop-in for torch.nn.GRU.

    Keyword-only ``reset_after``: True (default) is torch's form,
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); False is Cho et al.'s (2014),
    n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn). Same parameters in both.
    """

    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, reset_after: bool = True) -> None:
        self.reset_after = ck.check_bool("reset_after", reset_after)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)

    def _make_cell(self):
        return GRUMath(reset_after=self.reset_after)

    def _extra_repr_options(self):
        return "" if self.reset_after else ", reset_after=False"


# -- single steps ---------------------------------------------------------------------------


class _CellBase(nn.Module):
    """One time step of a recurrent cell; drop-in for torch.nn.*Cell."""

    _gates = 1
    _has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.input_size = ck.check_positive_int("input_size", input_size)
        self.hidden_size = ck.check_positive_int("hidden_size", hidden_size)
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

    reset_parameters = _RecurrentBase.reset_parameters

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def forward(self, input, hx=None):
        """input (B, input_size) or (input_size,); hx (B, hidden_size) or for LSTMCell a tuple
        (h, c); zeros if None. Returns h' (or (h', c')) of the same batchedness."""
        ck.check_tensor("input", input, dims=(1, 2))
        ck.check_float("input", input)
        ck.check_like("input", input, self.weight_ih, "the cell's parameters")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"input has {I} features, expected input_size = {self.input_size}")
        n_states = 2 if self._has_cell_state else 1
        if hx is None:
            inits = tuple(x.new_zeros(B, self.hidden_size) for _ in range(n_states))
        else:
            if self._has_cell_state:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"hx for an LSTMCell must be a tuple (h, c), got "
                                    f"{type(hx).__name__}")
                names = ("h", "c")
            else:
                hx, names = (hx,), ("hx",)
            inits = []
            for name, s in zip(names, hx):
                ck.check_tensor(name, s, dims=(2,) if batched else (1,))
                ck.check_like(name, s, x, "input")
                ck.check_shape(name, s, (B, self.hidden_size) if batched else (self.hidden_size,))
                inits.append(s if batched else s.unsqueeze(0))
            inits = tuple(inits)
        params = {name: getattr(self, name, None) for name in self._make_cell().param_names}
        _, finals = run_layer(self._make_cell(), x.unsqueeze(0), inits, params)
        if not batched:
            finals = tuple(s.squeeze(0) for s in finals)
        return finals if self._has_cell_state else finals[0]


class RNNCell(_CellBase):
    """h' = φ(W_ih x + b_ih + W_hh h + b_hh); drop-in for torch.nn.RNNCell."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected one of "
                             f"{NONLINEARITIES}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def _make_cell(self):
        return RNNMath(self.nonlinearity)


class LSTMCell(_CellBase):
    """One LSTM step; drop-in for torch.nn.LSTMCell, with keyword-only ``peephole``
    (parameter ``weight_peephole``, (3·hidden_size,), order i, f, o) and ``truncated``."""

    _gates = 4
    _has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, peephole: bool = False, truncated: bool = False) -> None:
        self.peephole = ck.check_bool("peephole", peephole)
        self.truncated = ck.check_bool("truncated", truncated)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def _extra_shapes(self):
        return {"weight_peephole": (3 * self.hidden_size,)} if self.peephole else {}

    def _make_cell(self):
        return LSTMMath(peephole=self.peephole, truncated=self.truncated)


class GRUCell(_CellBase):
    """One GRU step; drop-in for torch.nn.GRUCell, with keyword-only ``reset_after``."""

    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, reset_after: bool = True) -> None:
        self.reset_after = ck.check_bool("reset_after", reset_after)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def _make_cell(self):
        return GRUMath(reset_after=self.reset_after)


# -- the 1997 LSTM --------------------------------------------------------------------------


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
    paper's truncated gradient (default) or full BPTT (False).
    """

    _has_cell_state = True

    def __init__(self, input_size: int, num_blocks: int, block_size: int = 1, *,
                 output_gate: bool = True, recurrent: bool = True,
                 gate_recurrence: bool = True, bias=True, g: str = "g2", h: str = "h1",
                 init_range: float = 0.1, input_gate_bias=None, output_gate_bias=None,
                 truncated: bool = True, batch_first: bool = False, device=None,
                 dtype=None) -> None:
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
        kinds = ("in", "out", "cell")
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
        self.num_layers, self.bidirectional, self.batch_first = 1, False, bool(batch_first)
        self.dropout, self.proj_size = 0.0, 0
        self.hidden_size = self.num_cells = num_blocks * block_size
        cell = self._make_cell()
        K, C = num_blocks, self.num_cells
        shapes = {"weight_ih": (cell.rows, input_size)}
        if self.recurrent:
            shapes["weight_hh"] = (cell.rows, cell.state_size)
        sizes = {"in": K, "out": K, "cell": C}
        for kind in bias:
            shapes["bias_" + kind] = (sizes[kind],)
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        self._names = [{name: name for name in shapes}]
        self._gate_bias = {"in": input_gate_bias, "out": output_gate_bias}
        for kind, value in self._gate_bias.items():
            if value is not None:
                if kind not in bias:
                    raise ValueError(f"{kind}put_gate_bias is given but the {kind}put gates "
                                     f"have no bias (bias={bias!r})")
                self._block_values(f"{kind}put_gate_bias", value)
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
                    p.copy_(self._block_values(f"{kind}put_gate_bias", value))

    def _make_cell(self):
        return LSTM1997Math(self.num_blocks, self.block_size, output_gate=self.output_gate,
                            gate_recurrence=self.gate_recurrence, g=self.g, h=self.h,
                            truncated=self.truncated)

    def _state_sizes(self):
        return (self._make_cell().state_size, self.num_cells)

    def _output_units(self, out):
        return out[..., : self.num_cells]

    def extra_repr(self) -> str:
        return (f"{self.input_size}, num_blocks={self.num_blocks}, "
                f"block_size={self.block_size}, output_gate={self.output_gate}, "
                f"g={self.g!r}, h={self.h!r}, truncated={self.truncated}")
