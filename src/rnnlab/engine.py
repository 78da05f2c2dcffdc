"""The time loop, once for every cell: forward recursion and backpropagation through time.

For one layer and one direction:

    forward   xw = x W_ihᵀ + b                  one (T·B × I)·(I × H) product per gate, before
                                                the loop, into gate-major buffers (G, T, B, H)
              for t = 0 … T−1: cell.step        recurrent product + pointwise math, in buffers
    backward  for t = T−1 … 0: cell.step_back   δ flows from h_t, c_t to h_{t-1}, c_{t-1}
              dW_ih = δaᵀ x,  dx = δa W_ih      one product per gate, after the loop
              dW_hh = δaᵀ h_{t-1}, ...          the cell's, likewise

No autograd graph is built inside the loop: `_Recurrence` is a torch.autograd.Function whose
backward is the hand-written BPTT, so gradients reach the input, the initial state and every
parameter, and the layer composes with anything else in a torch program.

The differentiable path (`autograd_layer`) runs the same equations as out-of-place torch ops
(each cell's ``autograd_step``) and lets autograd trace them. It serves what a hand-written
backward cannot: a gradient that is itself differentiated (``create_graph=True``: gradient
penalties, Hessian-vector products; the backward then recomputes the layer on this path) and
torch.func transforms (grad, jacrev, jvp, vmap), which see ordinary torch ops only.

Symbol inputs (`Embedded`): when the layer reads rows of an embedding table E (V, I) picked by
symbol ids, x W_ihᵀ + b is computed once per symbol, P = E W_ihᵀ + b (V rows, not T·B), and
each step's projection is the row of P its symbol picks; the backward sums δa over the steps
that read each symbol (δP) and gives dW_ih = δPᵀ E, dE = δP W_ih.

Variable lengths: the caller sorts the batch by length, longest first (`sort_lengths`), so the
sequences still running at step t are the leading rows ``[:batch_sizes[t]]`` and every step
works on a contiguous slice, as in a PackedSequence. Outputs past a sequence's end are zero and
its final state is the state at its own last step. The reverse direction runs the same forward
loop over each sequence reversed within its own length (`reverse_within_lengths`).
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
import torch.nn.functional as F
from torch import Tensor

from . import kernels
from .cells.base import CellMath, Tape, flat, weight_grad


@dataclasses.dataclass(frozen=True)
class Embedded:
    """A layer's input given as symbol ids (T, B) and the table of their vectors (V, I): it
    stands for ``F.embedding(ids, table)`` (T, B, I) — its ``shape``, ``dtype`` and
    ``device`` are that tensor's, and it slices in time and reorders its batch as that tensor
    would — while the engine projects each of the V symbols once instead of each of the T·B
    steps (where V < T·B; otherwise it projects `dense()` as any input)."""

    ids: Tensor
    table: Tensor

    @property
    def shape(self) -> torch.Size:
        return torch.Size((*self.ids.shape, self.table.shape[1]))

    @property
    def dtype(self) -> torch.dtype:
        return self.table.dtype

    @property
    def device(self) -> torch.device:
        return self.table.device

    def new_zeros(self, *size) -> Tensor:
        return self.table.new_zeros(*size)

    def __getitem__(self, steps: slice) -> Embedded:
        return Embedded(self.ids[steps], self.table)

    def index_select(self, dim: int, index: Tensor) -> Embedded:
        return Embedded(self.ids.index_select(dim, index), self.table)

    def dense(self) -> Tensor:
        return _dense(self.table, self.ids)

    def folds(self) -> bool:
        """Does projecting the table cost less than projecting the steps?"""
        return self.table.shape[0] < self.ids.numel()


def _steps(x: Tensor, ids: Tensor | None) -> tuple[int, int]:
    """(T, B) of a layer's input: x (T, B, I), or symbol ids (T, B) with x their table."""
    T, B = (x if ids is None else ids).shape[:2]
    return T, B


def _dense(x: Tensor, ids: Tensor | None) -> Tensor:
    """The (T, B, I) input itself: x, or the rows of the table x that the ids pick."""
    return x if ids is None else F.embedding(ids, x)


def sort_lengths(lengths: Tensor, T: int) -> tuple[Tensor, list[int] | None]:
    """Longest-first order of the batch and the number of sequences running at each step.

    Returns ``(order, batch_sizes)``; ``batch_sizes`` is None when every sequence has length T
    (the fast path: no zero-filling, no per-step row counts).
    """
    order = torch.sort(lengths.cpu(), descending=True, stable=True).indices
    if bool((lengths == T).all()):
        return order, None
    steps = torch.arange(T).unsqueeze(1)
    batch_sizes = (lengths.cpu().unsqueeze(0) > steps).sum(1).tolist()
    return order, batch_sizes


def reverse_within_lengths(x: Tensor, lengths: Tensor | None) -> Tensor:
    """x[t, b] -> x[L_b − 1 − t, b] for t < L_b; padding stays where it is. An involution.
    (x (T, B, ·), or symbol ids (T, B).)"""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)
    L = lengths.to(x.device).unsqueeze(0)
    index = torch.where(t < L, L - 1 - t, t)  # (T, B)
    return x.gather(0, index if x.dim() == 2 else index.unsqueeze(-1).expand_as(x))


#: a layer whose gate block × (inputs + recurrent inputs) has at most this many weights sums
#: its weight gradients inside the compiled backward loop (see FusedSum in the kernels)
FUSE_LIMIT = 32768


def _fuse(cell: CellMath, params: dict) -> bool:
    W_ih, W_hh = params["weight_ih"], params.get("weight_hh")
    width = W_ih.shape[1] + (0 if W_hh is None else W_hh.shape[1])
    # (the fused sums read h_{t−1} itself, not h_{t−1} ⊙ drop)
    return cell.fusable and cell.masks.drop is None and W_ih.shape[0] * width <= FUSE_LIMIT


def _candidates(cell: CellMath, tape: Tape) -> None:
    """With zoneout, a buffer per zoned state for the cell's own new states s̃_t (zero-filled
    when padded: the weight gradients read every row)."""
    zone = cell.masks.zone
    tape.cands = tuple(
        None if k >= len(zone) or zone[k] is None
        else kernels.buffer(s[1:].shape, s, zero=tape.padded)
        for k, s in enumerate(tape.states))


def _zone_forward(tape: Tape, t: int, zs: list[list[Tensor]]) -> None:
    """After the cell's step t: keep s̃_t, then s_t = s̃_t + z (s_{t−1} − s̃_t)."""
    for k, z in enumerate(zs):
        if z is None:
            continue
        s = tape.states[k]
        n = tape.batch_sizes[t] if tape.padded else s.shape[1]
        new, prev = s[t + 1, :n], s[t, :n]
        tape.cands[k][t, :n].copy_(new)
        new.lerp_(prev, z[t])


def _compiled(cell: CellMath, x: Tensor, params: dict) -> bool:
    """Run this layer-direction's loops in the compiled kernel?"""
    return cell.kernel_forward is not None and kernels.usable(x, *params.values())


def _project(cell: CellMath, x: Tensor, params: dict, ids: Tensor | None) -> Tensor:
    """The hoisted input projection x W_ihᵀ + b, gate-major (G, T, B, H): one product per
    gate, written straight into its block. With symbol ids, x is their table (V, I): each
    gate's V projected rows are computed once and gathered."""
    W_ih, G = params["weight_ih"], cell.n_gates
    H = W_ih.shape[0] // G
    bias = cell.input_bias(params)
    T, B = _steps(x, ids)
    xw = kernels.buffer((G, T, B, H), x)
    rows = flat(x)  # (T·B, I), or the table's (V, I)
    for g, (W_g, out) in enumerate(zip(W_ih.view(G, H, -1), xw.view(G, T * B, H))):
        b_g = None if bias is None else bias[g * H : (g + 1) * H]
        if ids is None:
            kernels.mm(rows, W_g.t(), out=out, bias=b_g)
        else:
            torch.index_select(kernels.mm(rows, W_g.t(), bias=b_g), 0, ids.reshape(-1),
                               out=out)
    return xw


def _forward(cell: CellMath, x: Tensor, inits: tuple[Tensor, ...], params: dict,
             batch_sizes: list[int] | None, ids: Tensor | None = None) -> Tape:
    """The forward loop: hoisted input projection, then the cell's steps (in Python, or all
    of them in the cell's compiled kernel). Returns the tape."""
    T, _ = _steps(x, ids)
    xw = _project(cell, x, params, ids)
    if _compiled(cell, x, params):
        tape = cell.allocate(xw, inits, params, batch_sizes)
        _candidates(cell, tape)
        tape.compiled = True
        cell.kernel_forward(tape, kernels.threads())
        return tape
    tape = cell.begin(xw, inits, params, batch_sizes)
    if not cell.masks.zoned:
        for t in range(T):
            cell.step(tape, t)
        return tape
    _candidates(cell, tape)
    zs = _zone_steps(cell, tape, T)
    for t in range(T):
        cell.step(tape, t)
        _zone_forward(tape, t, zs)
    return tape


def _zone_steps(cell: CellMath, tape: Tape, T: int) -> list:
    """Per state, the zoneout mask's per-step views (None where a state is not zoned)."""
    zone = cell.masks.zone
    return [cell.masks.steps(k, tape.batch_sizes, T) if k < len(zone) and zone[k] is not None
            else None for k in range(len(tape.states))]


@torch.no_grad()
def trajectory(cell: CellMath, x: Tensor, inits: tuple[Tensor, ...], params: dict) -> Tape:
    """Run one layer-direction forward (full-length batch, no gradient) and return the tape:
    every state at every step (``tape.states``, each (T + 1, B, size), slot 0 the initial
    state) and the gate activations (``tape.xw``, (G, T, B, H)). For the stability analysis."""
    return _forward(cell, x, inits, {n: params.get(n) for n in cell.param_names}, None)


def _backward_loop(cell: CellMath, tape: Tape, d_out: Tensor, d_finals) -> list[Tensor]:
    """BPTT in Python: the cell's steps in reverse. Returns ∂L/∂(initial states)."""
    T, batch_sizes = d_out.shape[0], tape.batch_sizes
    cell.begin_backward(tape)
    d_outs = d_out.unbind(0)
    zs = _zone_steps(cell, tape, T) if cell.masks.zoned else None

    def step_back(t: int, carry: list[Tensor]) -> None:
        if zs is None:
            cell.step_back(tape, t, carry)
            return
        # zoneout: δs_t reaches s_{t−1} directly as z δs_t, and s̃_t as (1 − z) δs_t
        kept = [None if z is None else z[t] * c for z, c in zip(zs, carry)]
        for z, c in zip(zs, carry):
            if z is not None:
                c.sub_(c * z[t])
        cell.step_back(tape, t, carry)
        for k, c in zip(kept, carry):
            if k is not None:
                c.add_(k)

    # carry[k] is ∂L/∂state_k at the step being undone
    if batch_sizes is None:
        carry = [d.clone() for d in d_finals]
        for t in reversed(range(T)):
            carry[0].add_(d_outs[t])
            step_back(t, carry)
        return carry
    carry = [torch.zeros_like(d) for d in d_finals]
    for t in reversed(range(T)):
        n = batch_sizes[t]
        ending = batch_sizes[t + 1] if t + 1 < T else 0
        for c, d in zip(carry, d_finals):  # a sequence's final state is read here
            c[ending:n] += d[ending:n]
        rows = [c[:n] for c in carry]
        rows[0].add_(d_outs[t][:n])
        step_back(t, rows)
    return carry


def autograd_layer(cell: CellMath, x: Tensor, inits: tuple[Tensor, ...], params: dict,
                   lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One layer-direction as ordinary torch ops, for autograd (or torch.func) to trace.

    Same arguments and results as `run_layer` (``lengths`` sorted, or None). A sequence that
    has ended keeps its state (`torch.where`, no data-dependent shapes, so vmap can batch it)
    and outputs zeros, as on the engine's path.
    """
    xw = F.linear(x, params["weight_ih"], cell.input_bias(params))  # (T, B, G·H)
    # one unbind, not xw[t] per step: indexing's backward writes each step's gradient into a
    # zero-filled (T, B, G·H) tensor and sums T of them, O(T²); unbind's stacks them once
    xw_steps = xw.unbind(0)
    states, outs = tuple(inits), []
    zone = cell.masks.zone
    for t in range(x.shape[0]):
        new = cell.autograd_step(xw_steps[t], states, params)
        if zone:  # zoneout: s_t = z s_{t−1} + (1 − z) s̃_t (states past the zoned ones as is)
            new = tuple(n if z is None else torch.lerp(n, s, z[t if z.shape[0] > 1 else 0])
                        for n, s, z in itertools.zip_longest(new, states, zone[:len(new)]))
        if lengths is not None:
            running = (lengths.to(x.device) > t).unsqueeze(1)  # (B, 1)
            new = tuple(torch.where(running, n, s) for n, s in zip(new, states))
            outs.append(torch.where(running, new[0], 0))
        else:
            outs.append(new[0])
        states = new
    return torch.stack(outs), states


def _transformed(*tensors: Tensor | None) -> bool:
    """Is any tensor under a torch.func transform or carrying a forward-mode tangent? Then only
    ordinary torch ops can follow it: the layer takes the differentiable path."""
    if torch._C._functorch.peek_interpreter_stack() is not None:
        return True
    if torch.autograd.forward_ad._current_level < 0:
        return False
    return any(t is not None and torch.autograd.forward_ad.unpack_dual(t).tangent is not None
               for t in tensors)


def _batched(*grads: Tensor | None) -> bool:
    """Is any incoming gradient batched by vmap (autograd.grad(..., is_grads_batched=True) runs
    the backward under the legacy vmap, whose BatchedTensors hide their batch dimension)?"""
    is_batched = torch._C._functorch.is_legacy_batchedtensor
    return any(g is not None and (is_batched(g) or torch._C._functorch.is_batchedtensor(g))
               for g in grads)


class _Recurrence(torch.autograd.Function):
    """One layer-direction of a recurrent network; backward is the cell's hand-written BPTT."""

    @staticmethod
    def forward(ctx, cell: CellMath, batch_sizes, lengths, n_states, ids, x, *rest):
        # x (T, B, I), or with symbol ids (T, B) the table of their vectors (V, I)
        inits, params = rest[:n_states], dict(zip(cell.param_names, rest[n_states:]))
        T, B = _steps(x, ids)
        tape = _forward(cell, x, tuple(inits), params, batch_sizes, ids)
        if batch_sizes is None:
            finals = [s[T].clone() for s in tape.states]
        else:  # each sequence's state at its own last step
            rows = torch.arange(B, device=x.device)
            finals = [s[lengths.to(x.device), rows] for s in tape.states]
        ctx.cell, ctx.tape, ctx.lengths, ctx.n_states = cell, tape, lengths, n_states
        ctx.save_for_backward(x, *rest)  # guards against in-place edits before backward
        ctx.ids, ctx.ids_version = ids, None if ids is None else ids._version  # (likewise)
        return (tape.states[0][1:], *finals)

    @staticmethod
    def backward(ctx, d_out, *d_finals):
        if ctx.ids is not None and ctx.ids._version != ctx.ids_version:
            raise RuntimeError("the symbol ids of a recurrent layer's input were modified in "
                               "place between its forward and backward; clone them first")
        # create_graph=True: the gradient must be differentiable; batched gradients
        # (is_grads_batched, vectorised jacobians, gradcheck's batched check) come as tensors
        # with a batch dimension the kernels cannot see: both take the differentiable path
        if torch.is_grad_enabled() or _batched(d_out, *d_finals):
            return _Recurrence._differentiable_backward(ctx, d_out, d_finals)
        cell, tape = ctx.cell, ctx.tape
        x, *_ = ctx.saved_tensors  # version check
        ids, need_dx = ctx.ids, ctx.needs_input_grad[5]
        params = tape.params
        if tape.compiled:
            fused = ids is None and _fuse(cell, params)  # (the fused sums read x's rows)
            fuse = (x.contiguous(), need_dx) if fused else None
            d_finals = [d.contiguous() for d in d_finals]
            if fuse is None:
                carry = cell.kernel_backward(tape, d_out.contiguous(), d_finals,
                                             kernels.threads())
            else:
                carry = cell.kernel_backward(tape, d_out.contiguous(), d_finals,
                                             kernels.threads(), fuse=fuse)
        else:
            carry = _backward_loop(cell, tape, d_out, d_finals)
        if tape.fused is not None:  # the kernel summed the weight gradients in its loop
            grads = cell.fused_grads(tape)
            dx = grads.pop("input") if need_dx else None
            param_grads = [grads.get(name) if params[name] is not None else None
                           for name in cell.param_names]
            tape.back = tape.dG = tape.fused = None
            return (None, None, None, None, None, dx, *carry, *param_grads)

        dG, dU = tape.dG, cell.input_grad(tape)  # δa, and δ(x W_ihᵀ)
        G, T, B, H = dG.shape
        dU_rows = dU.reshape(G, T * B, H)
        if ids is not None:  # δP: each symbol's row gathers the δu of the steps that read it
            dU_rows = _per_symbol(dU_rows, ids, x.shape[0])
        dx = None
        if need_dx:  # Σ_g δu_g W_ih,g
            W_g = params["weight_ih"].view(G, H, -1)
            dx = kernels.mm(dU_rows[0], W_g[0])
            for g in range(1, G):
                kernels.mm(dU_rows[g], W_g[g], out=dx, beta=1.0)
            dx = dx.view_as(x)
        db = dG.sum((1, 2)).flatten()  # ∂L/∂(any bias folded into the input projection)
        grads = {"weight_ih": weight_grad(dU_rows, flat(x)), "bias_ih": db}
        grads.update(cell.recurrent_grads(tape, db))
        param_grads = [
            grads.get(name) if params[name] is not None else None for name in cell.param_names
        ]
        tape.back = tape.dG = None  # backward-only buffers; the forward ones live with ctx
        return (None, None, None, None, None, dx, *carry, *param_grads)

    @staticmethod
    def _differentiable_backward(ctx, d_out, d_finals):
        """The same gradients as autograd's own graph of the layer (recomputed on the
        differentiable path from the saved inputs), so that they can be differentiated again
        and batched over gradient outputs (vmap sees ordinary torch ops)."""
        x, *rest = ctx.saved_tensors
        cell, n = ctx.cell, ctx.n_states
        inputs = [x, *rest]
        wanted = [k for k, t in enumerate(inputs) if t is not None and ctx.needs_input_grad[5 + k]
                  and _engine_needs(t)]
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            params = dict(zip(cell.param_names, rest[n:]))
            out, finals = autograd_layer(cell, _dense(x, ctx.ids), tuple(rest[:n]), params,
                                         ctx.lengths)
            grads = torch.autograd.grad((out, *finals), [inputs[k] for k in wanted],
                                        (d_out, *d_finals), create_graph=create_graph,
                                        allow_unused=True)
        result = [None] * len(inputs)
        for k, g in zip(wanted, grads):
            result[k] = torch.zeros_like(inputs[k]) if g is None else g
        return (None, None, None, None, None, *result)


def _per_symbol(d_rows: Tensor, ids: Tensor, V: int) -> Tensor:
    """(G, T·B, H) step rows -> (G, V, H): row v sums the rows of the steps whose symbol is v."""
    out = d_rows.new_zeros(d_rows.shape[0], V, d_rows.shape[2])
    index = ids.reshape(-1)
    for o, d in zip(out, d_rows):
        o.index_add_(0, index, d)
    return out


def _engine_needs(t: Tensor) -> bool:
    """Will the running backward pass use the gradient of input t? ``autograd.grad(out, x,
    create_graph=True)`` (a gradient penalty) asks for x's alone: the weight gradients, which
    would be computed and recorded for nothing, are then left out, as autograd leaves them out
    of torch.nn's graph."""
    try:
        node = torch.autograd.graph._get_grad_fn_or_grad_acc(t)
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError, AssertionError):  # no such API, or not in a backward
        return True


def run_layer(
    cell: CellMath,
    x: Tensor | Embedded,
    inits: tuple[Tensor, ...],
    params: dict[str, Tensor | None],
    *,
    batch_sizes: list[int] | None = None,
    lengths: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run one layer-direction over x (T, B, I) or symbols (`Embedded`), batch sorted longest
    first.

    ``inits`` are the initial states (B, size) in ``cell.state_names`` order; ``params`` maps
    ``cell.param_names`` to tensors (None for absent ones). ``lengths`` (sorted) and
    ``batch_sizes`` (from `sort_lengths`) describe padding; both None for full-length batches.
    Returns the output sequence (T, B, H) and the final states (B, size).
    """
    if batch_sizes is None:
        lengths = None
    ids = None
    if isinstance(x, Embedded):
        x, ids = (x.table, x.ids) if x.folds() else (x.dense(), None)
    if reverse:
        if ids is None:
            x = reverse_within_lengths(x, lengths)
        else:
            ids = reverse_within_lengths(ids, lengths)
        if cell.masks.zoned:  # a step's zoneout mask belongs to its time step
            cell = cell.with_masks(dataclasses.replace(cell.masks, zone=tuple(
                z if z is None or z.shape[0] == 1 else reverse_within_lengths(z, lengths)
                for z in cell.masks.zone)))
    tensors = (x, *inits, *(params.get(name) for name in cell.param_names))
    empty = 0 in (_steps(x, ids)[1], x.shape[-1], inits[0].shape[-1])  # no batch/inputs/units
    if _transformed(*tensors) or empty:  # (nothing to compile)
        named = dict(zip(cell.param_names, tensors[1 + len(inits) :]))
        out, finals = autograd_layer(cell, _dense(x, ids), inits, named, lengths)
    else:
        out, *finals = _Recurrence.apply(cell, batch_sizes, lengths, len(inits), ids, *tensors)
    if reverse:
        out = reverse_within_lengths(out, lengths)
    return out, tuple(finals)
