"""The 1997 LSTM's on-line learning rule: truncated RTRL with forward traces.

Hochreiter & Schmidhuber learn on-line: because of the truncation, a cell state depends on the
weights into its own cell input and input gate only along the carousel, so the derivatives

    ∂s_c(t)/∂w_{c,m}   = ∂s_c(t-1)/∂w_{c,m}   + y^in_j(t) g'(net_c(t)) u_m(t)       (cell input)
    ∂s_c(t)/∂w_{in_j,m} = ∂s_c(t-1)/∂w_{in_j,m} + g(net_c(t)) f'(net_in_j(t)) u_m(t)   (input gate)

(u(t) = [x(t), y(t-1), 1], the sources a unit sees, the 1 for biases) can be carried forward in
time: memory C × M per sequence, whatever its length. Where a target is given the error of the
output units, δ_k = (y_k − target_k) f'(net_k), becomes

    e_c      = Σ_k w_kc δ_k                                  error at the cell outputs
    ∂E/∂w_k  = δ_k z                                         output units (z = y^c [, x])
    ∂E/∂w_out_j = Σ_{c∈j} e_c h(s_c) f'(net_out_j) u         output gates: this step only
    ∂E/∂w_{c,·}  = e_c y^out_j h'(s_c) ∂s_c/∂w_{c,·}          cells, through the traces
    ∂E/∂w_{in_j,·} = Σ_{c∈j} e_c y^out_j h'(s_c) ∂s_c/∂w_{in_j,·}

with E = ½ Σ_k (y_k − target_k)². With a forget gate (Gers, Schmidhuber & Cummins 2000) the
carousel fades, s_c(t) = y^φ_j s_c(t-1) + y^in_j g(net_c), and so does every trace, the forget
gate's own included (their eqs. for truncated RTRL):

    ∂s_c(t)/∂w = y^φ_j(t) ∂s_c(t-1)/∂w + (the terms above)
    ∂s_c(t)/∂w_{φ_j,m} = y^φ_j(t) ∂s_c(t-1)/∂w_{φ_j,m} + s_c(t-1) f'(net_φ_j(t)) u_m(t)
    ∂E/∂w_{φ_j,·} = Σ_{c∈j} e_c y^out_j h'(s_c) ∂s_c/∂w_{φ_j,·}

For one sequence this sums to exactly the truncated BPTT
gradient of rnnlab.LSTM1997 (``truncated=True``) with a logistic readout; here the weights can
change at every step that has a target (the paper's on-line learning) or once per sequence.

This is a second time loop beside the engine's on purpose: RTRL runs forward only and keeps
derivatives instead of the past, which is what makes T = 10⁶ sequences cost no memory.

Several independent networks ("trials") run in lockstep: every weight has a leading trial
dimension N, so the paper's "mean of 10 trials" is one batched run.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import Tensor, nn

from . import kernels
from .cells.lstm1997 import SQUASHERS, LSTM1997Math
from .layers import LSTM1997


class _Shapes(NamedTuple):
    """A checked call's sizes: S batches in series of T steps, N trials, B sequences each."""
    S: int
    T: int
    N: int
    B: int
    symbolic: bool  # x holds symbols (one-hot inputs), not vectors
    series: bool  # x came with the leading S dimension


class StreamState(NamedTuple):
    """Where N continual streams stand (`OnlineLSTM1997.stream`): the activations the units
    see next, y (N, Y); the cell states s (N, C); and the traces (3, N, C, M), ∂s_c/∂w of the
    cell's own input, its input gate and its forget gate."""
    y: Tensor
    s: Tensor
    traces: Tensor


class Streamed(NamedTuple):
    """A `OnlineLSTM1997.stream` call's result: outputs (T, N, O), NaN after a stream ended;
    steps (N,) each stream ran; erred (N,) whether it ended at a wrong prediction; state."""
    outputs: Tensor
    steps: Tensor
    erred: Tensor
    state: StreamState


#: empty tensors for the kernel's absent arguments, by dtype
_NOTHING = {dt: torch.empty(0, dtype=dt)
            for dt in (torch.float32, torch.float64, torch.bool, torch.int64)}
_UPDATES = ("none", "step", "sequence")


def _cpu(t: Tensor, dtype: torch.dtype) -> Tensor:
    """t as a CPU tensor of dtype: itself when it already is one (the common case, free)."""
    return t if t.dtype == dtype and t.device.type == "cpu" else t.to("cpu", dtype)


def _four_d(mask: Tensor, series: bool) -> Tensor:
    """A checked mask, (T,) or (T, N, B) with or without the series dimension, as 4-d."""
    if mask.dim() == 1:
        return mask.view(1, -1, 1, 1)
    return mask if series else mask.unsqueeze(0)


class OnlineLSTM1997:
    """N independent 1997 LSTMs with logistic output units, learning on-line.

    Arguments as `rnnlab.LSTM1997` (``num_blocks``, ``block_size``, ``output_gate``,
    ``recurrent``, ``gate_recurrence``, ``bias``, ``g``, ``h``, ``init_range``,
    ``input_gate_bias``, ``output_gate_bias``), plus ``output_size``, ``output_bias`` (the output
    units' bias), ``output_sees_input`` (the outputs also see x, as in task 2a), ``error``
    ("squared": E = ½ Σ (y − t)², the paper's; or "cross-entropy"), ``output``: the output
    units' activation, "logistic" (the paper's) or "linear" (y = net, δ = y − t; with the
    squared error only), ``trials`` N and
    ``generator``: a torch.Generator for the initial weights, or one per trial (then
    trial k's weights do not depend on how many trials run beside it).

    Weights: ``W`` (N, R, M), the rows [in gates, out gates, cells] over the sources
    [x, y(t-1), 1]; ``V`` (N, O, Z) the output units over [y^c (, x), 1]. ``mask`` (N, R, M)
    and ``V_mask`` (N, O, Z) say which connections exist (1) in each trial; only those learn.
    """

    def __init__(self, input_size: int, num_blocks: int, block_size: int = 1,
                 output_size: int = 1, *, trials: int = 1, output_bias: bool = True,
                 output_sees_input: bool = False,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 error: str = "squared", output: str = "logistic",
                 dtype: torch.dtype = torch.float32, device=None, **lstm_options) -> None:
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ValueError(f"trials must be a positive int, got {trials!r}")
        if error not in ("squared", "cross-entropy"):
            raise ValueError(f"error must be 'squared' or 'cross-entropy', got {error!r}")
        if output not in ("logistic", "linear"):
            raise ValueError(f"output must be 'logistic' or 'linear', got {output!r}")
        if output == "linear" and error != "squared":
            raise ValueError("a linear output unit learns the squared error (error='squared')")
        self.error, self.output = error, output
        # one LSTM1997 validates the options and supplies shapes and initial values
        proto = LSTM1997(input_size, num_blocks, block_size, dtype=dtype, device=device,
                         **lstm_options)
        if not proto.truncated:  # the traces below are the truncated rule; never ignore it
            raise ValueError("OnlineLSTM1997 learns by the paper's truncated RTRL; full "
                             "gradients (truncated=False) need backpropagation through time: "
                             "LSTM1997(truncated=False) in the minibatch protocol")
        self.options = dict(lstm_options)
        self.input_size, self.num_blocks, self.block_size = input_size, num_blocks, block_size
        self.output_size, self.trials = output_size, trials
        self.output_bias, self.output_sees_input = output_bias, output_sees_input
        self.cell: LSTM1997Math = proto._make_cell()
        cell = self.cell
        I, R, Y = input_size, cell.rows, cell.state_size
        self.M = I + Y + 1
        self.Z = cell.C + (I if output_sees_input else 0) + 1
        factory = {"dtype": dtype, "device": device}
        # which connections exist: no recurrent columns without recurrence, a bias column
        # only for the unit types that have one
        mask = torch.ones(R, self.M, **factory)
        if not proto.recurrent:
            mask[:, I : I + Y] = 0
        kinds = cell.row_slices()
        for kind, rows in kinds.items():
            if kind not in proto.bias_units:
                mask[rows, -1] = 0
        self.mask = mask.expand(trials, R, self.M).clone()
        self.V_mask = torch.ones(trials, output_size, self.Z, **factory)
        if not output_bias:
            self.V_mask[..., -1] = 0
        r = proto.init_range
        if isinstance(generator, (list, tuple)):
            if len(generator) != trials:
                raise ValueError(f"give one generator per trial ({trials}), got "
                                 f"{len(generator)}")
            W = [torch.rand(R, self.M, generator=g, **factory) for g in generator]
            V = [torch.rand(output_size, self.Z, generator=g, **factory) for g in generator]
            self.W, self.V = torch.stack(W), torch.stack(V)
        else:
            self.W = torch.rand(trials, R, self.M, generator=generator, **factory)
            self.V = torch.rand(trials, output_size, self.Z, generator=generator, **factory)
        self.W = (self.W * 2 - 1) * r
        self.V = (self.V * 2 - 1) * r
        for kind, value in proto._gate_bias.items():
            if value is not None:
                self.W[:, kinds[kind], -1] = proto._block_values(kind, value).to(**factory)
        self.W *= self.mask
        self.V *= self.V_mask

    # -- conversion to and from modules ------------------------------------------------------

    @classmethod
    def from_modules(cls, lstm: LSTM1997, readout: nn.Linear, *,
                     output_sees_input: bool = False) -> OnlineLSTM1997:
        """One trial with the weights of an LSTM1997 and its (logistic) readout."""
        options = {k: getattr(lstm, k)
                   for k in ("output_gate", "recurrent", "g", "h", "forget_gate")}
        options.update(gate_recurrence=lstm.gate_recurrence, bias=lstm.bias_units)
        learner = cls(lstm.input_size, lstm.num_blocks, lstm.block_size, readout.out_features,
                      output_bias=readout.bias is not None,
                      output_sees_input=output_sees_input, dtype=lstm.weight_ih.dtype,
                      device=lstm.weight_ih.device, **options)
        with torch.no_grad():
            learner.W.zero_()
            learner.W[0] = _stack_rows(lstm, learner.cell, learner.M)
            learner.V.zero_()
            learner.V[0, :, :-1] = readout.weight
            if readout.bias is not None:
                learner.V[0, :, -1] = readout.bias
        return learner

    def to_modules(self, trial: int = 0) -> tuple[LSTM1997, nn.Linear]:
        """Trial ``trial`` as an LSTM1997 and an nn.Linear readout (apply σ to its output)."""
        opts = {k: v for k, v in self.options.items()
                if not k.endswith("_gate_bias")}
        lstm = LSTM1997(self.input_size, self.num_blocks, self.block_size,
                        dtype=self.W.dtype, device=self.W.device, **opts)
        readout = nn.Linear(self.Z - 1, self.output_size, bias=self.output_bias,
                            dtype=self.W.dtype, device=self.W.device)
        I, Y = self.input_size, self.cell.state_size
        W = self.W[trial]
        with torch.no_grad():
            lstm.weight_ih.copy_(W[:, :I])
            if lstm.recurrent:
                lstm.weight_hh.copy_(W[:, I : I + Y])
            for kind, rows in self.cell.row_slices().items():
                if kind in lstm.bias_units:
                    getattr(lstm, "bias_" + kind).copy_(W[rows, -1])
            readout.weight.copy_(self.V[trial, :, :-1])
            if self.output_bias:
                readout.bias.copy_(self.V[trial, :, -1])
        return lstm, readout

    def subset(self, trials: list[int]) -> OnlineLSTM1997:
        """These trials as a learner of their own (copies of their weights and masks);
        `assign` writes them back."""
        other = copy.copy(self)
        index = torch.as_tensor(trials, dtype=torch.long)
        other.trials = len(trials)
        other.W, other.V = self.W[index].clone(), self.V[index].clone()
        other.mask, other.V_mask = self.mask[index].clone(), self.V_mask[index].clone()
        return other

    def assign(self, trials: list[int], other: OnlineLSTM1997) -> None:
        """Copy the weights and masks of a `subset` back into these trials."""
        index = torch.as_tensor(trials, dtype=torch.long)
        self.W[index], self.V[index] = other.W, other.V
        self.mask[index], self.V_mask[index] = other.mask, other.V_mask

    # -- the on-line loop ---------------------------------------------------------------------

    def run(self, x: Tensor, targets: Tensor | None = None, mask: Tensor | None = None, *,
            lengths: Tensor | None = None, lr: float | Tensor = 0.0, update: str = "step",
            outputs_at: str = "all", gradient: bool = True
            ) -> tuple[Tensor, dict[str, Tensor] | None]:
        """Run sequences through every trial, learning as it goes.

        x (T, N, B, I) — B sequences per trial, processed in parallel — or, for one-hot
        inputs, the symbols (T, N, B): the index of the active input unit, −1 for none.
        With a leading dimension S, (S, T, N, B, ·), the S batches run one after another, as
        S calls would (each starts from zero activations; the weights carry over), in one call.
        targets (…, T, N, B, O) and mask (…, T, N, B) or (T,) (True where a target is given);
        lengths (…, N, B): the steps of each sequence (default T) — later steps are not run,
        have no output (NaN) and no target.
        ``lr`` is one rate, or one per trial (N,) (0 freezes a trial).
        ``update``: "step" changes the weights by −lr·∂E/∂w at each step with a target (the
        paper's on-line learning), "sequence" once at the end of each batch, "none" never.
        ``gradient=False`` (with update "none") skips the traces: testing a trained net.
        Returns the output units' activations (…, T, N, B, O) — at every step, or with
        ``outputs_at="targets"`` only where a target is given (NaN elsewhere) — and the summed
        gradient {"W", "V"} (the gradients of the weights as they were when each error
        arrived), or None without ``gradient``.
        """
        if outputs_at not in ("all", "targets"):
            raise ValueError(f"outputs_at must be 'all' or 'targets', got {outputs_at!r}")
        if update not in ("step", "sequence", "none"):
            raise ValueError(f"update must be 'step', 'sequence' or 'none', got {update!r}")
        if not gradient and update != "none":
            raise ValueError("learning (update 'step' or 'sequence') needs gradient=True")
        if outputs_at == "targets" and targets is None:
            raise ValueError("outputs_at='targets' needs targets")
        shapes = self._check(x, targets, mask, lengths)
        if kernels.usable(self.W) and not self.cell.forget_gate:
            outputs, grads = self._run_compiled(x, targets, mask, lengths, shapes, lr, update,
                                                outputs_at == "all", gradient)
        else:
            args = self._canonical(x, targets, mask, lengths, shapes)
            rates = self._rates(lr).to(self.W.device)
            outputs, grads = self._run_reference(**args, lr=rates.expand(self.trials),
                                                 update=update,
                                                 outputs_all=outputs_at == "all",
                                                 gradient=gradient)
        if not shapes.series:
            outputs = outputs[0]
        return outputs, grads

    # -- continual streams (Gers, Schmidhuber & Cummins 2000) ---------------------------------

    def stream_state(self) -> StreamState:
        """Every stream at its start: activations, cell states and traces zero."""
        f = dict(dtype=self.W.dtype, device=self.W.device)
        return StreamState(*(torch.zeros(shape, **f) for shape in self._stream_shapes()))

    def _stream_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shapes of a `StreamState`'s y, s and traces."""
        N, C = self.trials, self.cell.C
        return (N, self.cell.state_size), (N, C), (3, N, C, self.M)

    def stream(self, symbols: Tensor, targets: Tensor, *, lr: float | Tensor = 0.0,
               learn: bool = True, stop_error: float = 0.0, resets: Tensor | None = None,
               state: StreamState | None = None, lr_decay: float = 1.0) -> Streamed:
        """Continual prediction: each trial reads its own unbroken stream.

        symbols (T, N): the index of the active input unit at each step (−1 for none);
        targets (T, N, O) at every step. The streams go on from ``state`` (default: zero), so
        a long stream can be fed in pieces; nothing is reset unless ``resets`` (T, N) is True
        before a step (activations, cell states and traces to zero: Gers et al.'s "external
        reset"). With ``learn`` the weights change by −lr·∂E/∂w at every step (``lr`` one
        rate or one per trial), the rate multiplied by ``lr_decay`` after every step (Gers et
        al.'s α decay, 0.99); without, the traces are neither carried nor changed.
        ``stop_error`` > 0: a trial's stream ends after the first step at which some output
        is that far or farther from its target (Gers: 0.49); that step is learned from.
        """
        if not isinstance(symbols, Tensor) or symbols.is_floating_point() or symbols.dim() != 2 \
                or symbols.shape[1] != self.trials:
            raise ValueError(f"symbols must be an integer tensor (T, N = trials = "
                             f"{self.trials}), got {getattr(symbols, 'shape', type(symbols))}")
        T, N, O = symbols.shape[0], self.trials, self.output_size
        if not isinstance(targets, Tensor) or tuple(targets.shape) != (T, N, O):
            raise ValueError(f"targets must be (T, N, output_size) = {(T, N, O)}, got "
                             f"{tuple(getattr(targets, 'shape', ()))}")
        if resets is not None and (not isinstance(resets, Tensor)
                                   or tuple(resets.shape) != (T, N)):
            raise ValueError(f"resets must be (T, N) = {(T, N)}")
        if not stop_error >= 0:
            raise ValueError(f"stop_error must be ≥ 0, got {stop_error!r}")
        if not 0 < lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {lr_decay!r}")
        if symbols.numel() and (int(symbols.min()) < -1 or int(symbols.max()) >= self.input_size):
            raise ValueError(f"symbols must lie in −1 … {self.input_size - 1} (input_size − 1)")
        state = self.stream_state() if state is None else state
        if not isinstance(state, StreamState) or any(
                tuple(a.shape) != shape or a.dtype != self.W.dtype or a.device != self.W.device
                for a, shape in zip(state, self._stream_shapes())):
            raise ValueError("state must be a StreamState of these trials, like the weights "
                             "(stream_state())")
        rates = self._rates(lr).expand(N).contiguous()
        dtype = self.W.dtype
        if kernels.usable(self.W, *state):
            config = [*self._config, self.cell.forget_gate, learn,
                      self.error == "cross-entropy", self.output == "linear"]
            if not (self.W.is_contiguous() and self.V.is_contiguous()):
                self.W, self.V = self.W.contiguous(), self.V.contiguous()
            out, steps, erred = torch.ops.rnnlab.online1997_stream(
                self.W, self.V, self.mask.contiguous(), self.V_mask.contiguous(),
                _cpu(symbols, torch.int64).contiguous(), _cpu(targets, dtype).contiguous(),
                _NOTHING[torch.bool] if resets is None else _cpu(resets, torch.bool).contiguous(),
                rates, *state, float(stop_error), float(lr_decay), config, kernels.threads())
            return Streamed(out, steps, erred, state)
        return self._stream_reference(symbols, targets, rates, learn, stop_error, resets, state,
                                      lr_decay)

    def _stream_reference(self, symbols, targets, rates, learn, stop_error, resets, state,
                          lr_decay):
        """`stream` in torch operations: a step at a time through `_reference_batch`."""
        T, N = symbols.shape
        f = dict(dtype=self.W.dtype, device=self.W.device)
        outputs = torch.full((T, N, self.output_size), float("nan"), **f)
        steps = torch.zeros(N, dtype=torch.int64)
        erred = torch.zeros(N, dtype=torch.bool)
        alive = torch.ones(N, dtype=torch.bool)
        final = StreamState(*(t.clone() for t in state))  # where each stream stopped
        traces = state.traces.clone()
        for t in range(T):
            if resets is not None and resets[t].any():  # the external reset, before the step
                gone = resets[t].to(self.W.device)
                state.y[gone], state.s[gone], state.traces[:, gone] = 0, 0, 0
            x = symbols[t].view(1, N, 1).to(self.W.device)
            one_hot = torch.nn.functional.one_hot(x.clamp_min(0), self.input_size).to(**f) \
                * (x >= 0).unsqueeze(-1)
            out, _, _ = self._reference_batch(
                one_hot, targets[t].view(1, N, 1, -1).to(**f), alive.view(1, N, 1),
                (rates * alive * lr_decay ** t).view(-1), "step" if learn else "none", True,
                state=state)
            out = out[0, :, 0]
            outputs[t, alive] = out[alive]
            wrong = ((out - targets[t].to(**f)).abs() >= stop_error).any(-1) & alive \
                if stop_error > 0 else torch.zeros(N, dtype=torch.bool)
            steps += alive
            erred |= wrong
            alive &= ~wrong
            ran = alive | wrong  # the trials that took this step
            final.y[ran], final.s[ran] = state.y[ran], state.s[ran]
            final.traces[:, ran] = state.traces[:, ran]
            if not alive.any():
                break
        if not learn:  # traces are not carried without learning
            final.traces.copy_(traces)
        for part, kept in zip(state, final):
            part.copy_(kept)
        return Streamed(outputs, steps, erred, state)

    def _check(self, x, targets, mask, lengths) -> _Shapes:
        """The shapes of a call, checked (sizes only: no tensor is read or converted here)."""
        N, I, O = self.trials, self.input_size, self.output_size
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        symbolic = not x.is_floating_point()
        series = x.dim() == (4 if symbolic else 5)
        shape = tuple(x.shape) if series else (1, *x.shape)
        want = "(T, N, B) symbols" if symbolic else f"(T, N, B, input_size={I})"
        if (len(shape) != (4 if symbolic else 5) or shape[2] != N
                or (not symbolic and shape[4] != I)):
            raise ValueError(f"x must be {want} with N = trials = {N}, optionally after a "
                             f"leading series dimension; got {tuple(x.shape)}")
        S, T, _, B = shape[:4]
        if lengths is not None:
            given = tuple(lengths.shape) if isinstance(lengths, Tensor) else \
                tuple(torch.as_tensor(lengths).shape)
            full = (1,) * (3 - len(given)) + given
            if len(full) != 3 or full[1:] != (N, B) or full[0] not in (1, S):
                raise ValueError(f"lengths must be (N, B) = {(N, B)} or (S, N, B), got "
                                 f"{given}")
        if targets is not None:
            given = tuple(targets.shape) if series else (1, *targets.shape)
            if given != (S, T, N, B, O):
                raise ValueError(f"targets must be (T, N, B, output_size) = {(T, N, B, O)}, "
                                 f"like x, got {tuple(targets.shape)}")
            if mask is not None:
                given = tuple(mask.shape)
                full = ((1, given[0], 1, 1) if len(given) == 1
                        else given if series else (1, *given))
                if len(full) != 4 or full[1] != T or full[2:] not in ((1, 1), (N, B)) \
                        or full[0] not in (1, S):
                    raise ValueError(f"mask must be (T,) or (T, N, B) like x, got {given}")
        return _Shapes(S, T, N, B, symbolic, series)

    def _canonical(self, x, targets, mask, lengths, shapes: _Shapes) -> dict:
        """Checked inputs as (S, T, N, B, ·): x or symbols, targets, mask (bool, no target past
        a sequence's end), lengths (int64); the reference path's form."""
        S, T, N, B, symbolic, series = shapes
        f = dict(dtype=self.W.dtype, device=self.W.device)
        if not series:
            x = x.unsqueeze(0)
        if symbolic:
            x = x.to(self.W.device, torch.int64)
            if x.numel() and (int(x.min()) < -1 or int(x.max()) >= self.input_size):
                raise ValueError(f"symbols must lie in −1 … {self.input_size - 1} "
                                 "(input_size − 1)")
        else:
            x = x.to(**f)
        if lengths is None:
            lengths = torch.full((S, N, B), T, dtype=torch.int64)
        else:
            lengths = torch.as_tensor(lengths).to("cpu", torch.int64)
            lengths = lengths.reshape((1,) * (3 - lengths.dim()) + tuple(lengths.shape))
            if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > T):
                raise ValueError(f"lengths must lie in 0 … T = {T}")
            lengths = lengths.expand(S, N, B)
        if targets is not None:
            targets = (targets if series else targets.unsqueeze(0)).to(**f)
            if mask is None:
                mask = torch.ones(S, T, N, B, dtype=torch.bool)
            else:
                mask = _four_d(torch.as_tensor(mask).to(self.W.device, torch.bool), series)
            # no target past a sequence's end
            live = torch.arange(T).view(1, T, 1, 1) < lengths.unsqueeze(1)
            mask = mask.expand(S, T, N, B) & live.to(mask.device)
        return {"x": x, "targets": targets, "mask": mask, "lengths": lengths}

    def _run_compiled(self, x, targets, mask, lengths, shapes: _Shapes, lr, update,
                      outputs_all, gradient):
        """The same loop in C++ (kernels/csrc/online1997.cpp): one call for all of it, the
        preparation of its arguments (defaults, broadcasting, the value checks, the results'
        buffers) included, so that a short sequence costs what its arithmetic costs."""
        dtype, series = self.W.dtype, shapes.series
        x = _cpu(x, torch.int64 if shapes.symbolic else dtype)
        if not series:
            x = x.unsqueeze(0)
        if targets is None:
            targets = mask = _NOTHING[dtype]
        else:
            targets = _cpu(targets, dtype) if series else _cpu(targets, dtype).unsqueeze(0)
            if mask is None:
                mask = _NOTHING[torch.bool]
            else:
                mask = _four_d(_cpu(torch.as_tensor(mask), torch.bool), series)
        lengths = _NOTHING[torch.int64] if lengths is None else \
            _cpu(torch.as_tensor(lengths), torch.int64)
        if isinstance(lr, (int, float)) and not isinstance(lr, bool):
            rate, rates = float(lr), _NOTHING[dtype]
        else:
            rates = self._rates(lr)
            rate, rates = (float(rates[0]), _NOTHING[dtype]) if rates.numel() == 1 \
                else (0.0, rates.contiguous())
        if not (self.W.is_contiguous() and self.V.is_contiguous()):
            self.W, self.V = self.W.contiguous(), self.V.contiguous()
        outputs, grad_W, grad_V = torch.ops.rnnlab.online1997(
            self.W, self.V, self.mask.contiguous(), self.V_mask.contiguous(), x.contiguous(),
            targets.contiguous(), mask.contiguous(), lengths.contiguous(), rate, rates,
            [*self._config, _UPDATES.index(update), outputs_all, gradient,
             self.error == "cross-entropy", self.output == "linear"], kernels.threads())
        return outputs, ({"W": grad_W, "V": grad_V} if gradient else None)

    def _rates(self, lr) -> Tensor:
        """lr as a checked 1-D tensor of the weights' dtype: one rate, or one per trial."""
        rates = torch.as_tensor(lr, dtype=self.W.dtype).reshape(-1)
        if rates.numel() not in (1, self.trials):
            raise ValueError(f"lr must be one rate or one per trial ({self.trials}), got "
                             f"{rates.numel()}")
        return rates

    @property
    def _config(self) -> list[int]:
        """The network's part of the kernel's config (see bindings.cpp)."""
        cell = self.cell
        squash = list(SQUASHERS)
        return [self.input_size, cell.K, cell.S, cell.output_gate, cell.gate_recurrence,
                squash.index(cell.g_name), squash.index(cell.h_name), self.output_sees_input]

    def _run_reference(self, x, targets, mask, lengths, lr, update, outputs_all, gradient):
        """The rule in torch operations, one batch after another: the kernel's specification."""
        if not x.is_floating_point():  # symbols: the one-hot inputs they stand for
            x = torch.nn.functional.one_hot(x.clamp_min(0), self.input_size).to(
                self.W.dtype) * (x >= 0).unsqueeze(-1)
        grad_W, grad_V = torch.zeros_like(self.W), torch.zeros_like(self.V)
        outs = []
        for k in range(x.shape[0]):
            out, gW, gV = self._reference_batch(
                x[k], None if targets is None else targets[k], None if mask is None else mask[k],
                lr, update, outputs_all)
            T = out.shape[0]
            ended = torch.arange(T).view(T, 1, 1) >= lengths[k].unsqueeze(0)
            outs.append(out.masked_fill(ended.unsqueeze(-1).to(out.device), float("nan")))
            grad_W += gW
            grad_V += gV
        return torch.stack(outs), ({"W": grad_W, "V": grad_V} if gradient else None)

    def _reference_batch(self, x, targets, mask, lr, update, outputs_all, state=None):
        """One batch (T, N, B, I), step by step in torch operations; from zero, or (B = 1)
        from a `StreamState`, updated in place."""
        N = self.trials
        T, _, B, _ = x.shape
        cell = self.cell
        K, S, C, gK, Y = cell.K, cell.S, cell.C, cell.gates * cell.K, cell.state_size
        # the steps with a target anywhere: only they need the error and gradient block
        target_steps = set() if targets is None else set(
            torch.nonzero(mask.reshape(T, -1).any(1)).flatten().tolist())
        f = dict(dtype=x.dtype, device=x.device)
        if state is None:
            state = StreamState(torch.zeros(N * B, Y, **f), torch.zeros(N * B, C, **f),
                                torch.zeros(3, N * B, C, self.M, **f))
        y = state.y.view(N, B, Y)
        s = state.s.view(N, B, K, S)  # cell states, block by block (a view: updated in place)
        trace_c, trace_in, trace_f = state.traces.view(3, N, B, K, S, self.M)  # ∂s_c/∂w
        forget = cell.row_slices().get("forget")
        grad_W, grad_V = torch.zeros_like(self.W), torch.zeros_like(self.V)
        outputs = torch.full((T, N, B, self.output_size), float("nan"), **f)
        one = torch.ones(N, B, 1, **f)
        W_t, V_t = self.W.transpose(1, 2), self.V.transpose(1, 2)  # views: follow updates
        lr = lr.reshape(-1, 1, 1)  # one rate, or one per trial
        for t in range(T):
            u = torch.cat((x[t], y, one), dim=2)  # (N, B, M): the sources
            u5 = u[:, :, None, None, :]
            net = torch.bmm(u, W_t)  # (N, B, R)
            gates = torch.sigmoid(net[..., :gK])
            y_in = gates[..., :K].unsqueeze(3)  # (N, B, K, 1): one per block
            gc = cell.g(net[..., gK:]).view(N, B, K, S)
            if forget is not None:  # s_c = y^φ s_c(t-1) + …, and every trace fades with it
                y_f = gates[..., forget].unsqueeze(3)
                keep = y_f.unsqueeze(4)
                trace_c.mul_(keep)
                trace_in.mul_(keep)
                trace_f.mul_(keep).addcmul_((s * (y_f * (1 - y_f))).unsqueeze(4), u5)
                s.mul_(y_f)
            s.addcmul_(y_in, gc)  # the carousel
            hs = cell.h(s)
            if cell.output_gate:
                y_out = gates[..., K : 2 * K].unsqueeze(3)
                y_c = y_out * hs
            else:
                y_out, y_c = None, hs
            # the traces, ∂s_c/∂w, carried forward
            trace_c.addcmul_((y_in * cell.g_prime(gc)).unsqueeze(4), u5)
            trace_in.addcmul_((gc * (y_in * (1 - y_in))).unsqueeze(4), u5)
            y_c = y_c.view(N, B, C)
            y = torch.cat((y_c, gates), dim=2) if cell.gate_recurrence else y_c
            if t not in target_steps and not outputs_all:
                continue
            z = [y_c, x[t]] if self.output_sees_input else [y_c]
            z = torch.cat((*z, one), dim=2)  # (N, B, Z)
            out = torch.bmm(z, V_t)  # (N, B, O)
            if self.output == "logistic":
                out = torch.sigmoid(out)
            outputs[t] = out
            if t not in target_steps:
                continue
            m = mask[t].unsqueeze(-1)
            if self.error == "cross-entropy" or self.output == "linear":  # δ = ∂E/∂net
                delta = (out - targets[t]) * m
            else:
                delta = (out - targets[t]) * out * (1 - out) * m  # (N, B, O)
            gV = torch.bmm(delta.transpose(1, 2), z) * self.V_mask  # (N, O, Z)
            e_c = torch.bmm(delta, self.V[..., :C]).view(N, B, K, S)  # at the cell outputs
            gW = torch.empty_like(self.W)
            if cell.output_gate:
                y_o = gates[..., K : 2 * K]
                d_out = (e_c * hs).sum(3) * y_o * (1 - y_o)  # (N, B, K)
                torch.bmm(d_out.transpose(1, 2), u, out=gW[:, K : 2 * K])
                e_s = e_c * y_out * cell.h_prime(hs)
            else:
                e_s = e_c * cell.h_prime(hs)
            e_s = e_s.unsqueeze(4)
            torch.sum((e_s * trace_c).view(N, B, C, self.M), 1, out=gW[:, gK:])
            torch.sum(e_s * trace_in, (1, 3), out=gW[:, :K])
            if forget is not None:
                torch.sum(e_s * trace_f, (1, 3), out=gW[:, forget])
            gW *= self.mask
            grad_W += gW
            grad_V += gV
            if update == "step":
                self.W.sub_(gW * lr)
                self.V.sub_(gV * lr)
        state.y.copy_(y.reshape(N * B, Y))  # the others were updated in place
        if update == "sequence":
            self.W.sub_(grad_W * lr)
            self.V.sub_(grad_V * lr)
        return outputs, grad_W, grad_V


def _stack_rows(lstm: LSTM1997, cell: LSTM1997Math, M: int) -> Tensor:
    """An LSTM1997's weights as one (R, M) matrix over the sources [x, y(t-1), 1]."""
    I, Y, R = lstm.input_size, cell.state_size, cell.rows
    W = lstm.weight_ih.new_zeros(R, M)
    W[:, :I] = lstm.weight_ih
    if lstm.recurrent:
        W[:, I : I + Y] = lstm.weight_hh
    for kind, rows in cell.row_slices().items():
        if kind in lstm.bias_units:
            W[rows, -1] = getattr(lstm, "bias_" + kind)
    return W
