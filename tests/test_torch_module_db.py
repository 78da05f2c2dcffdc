"""PyTorch's own module tests, run on rnnlab's six drop-in classes.

The inputs, reference functions and error inputs are torch's: the ``module_db`` entries of
``torch.testing._internal.common_modules`` (shipped with torch) for RNN, LSTM, GRU, RNNCell,
LSTMCell and GRUCell. The harness that drives them in PyTorch's repository (test_modules.py) is
not shipped with the wheel, so this file is a driver of our own that makes the same checks: the
forward against the reference function, factory arguments, repr, save/load, non-contiguous
inputs and gradients, gradcheck (with its batched-gradient check) and gradgradcheck of the total
and of each partial derivative, the memory-format round trip, meta-device construction, training
mode, and every error input (exception class and message). Where torch.nn's class is the oracle,
the outputs are compared with it too, on the same weights.
"""

from __future__ import annotations

import io
from copy import deepcopy
from itertools import product

import pytest
import torch
from torch.testing._internal import common_modules  # needs expecttest (the dev extra)
from torch.testing._internal.common_utils import freeze_rng_state, gradcheck, gradgradcheck
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

import rnnlab

ModuleErrorEnum = common_modules.ModuleErrorEnum

#: torch.nn's class -> rnnlab's drop-in
DROP_INS = {
    torch.nn.RNN: rnnlab.RNN, torch.nn.LSTM: rnnlab.LSTM, torch.nn.GRU: rnnlab.GRU,
    torch.nn.RNNCell: rnnlab.RNNCell, torch.nn.LSTMCell: rnnlab.LSTMCell,
    torch.nn.GRUCell: rnnlab.GRUCell,
}
INFOS = [info for info in common_modules.module_db if info.module_cls in DROP_INS]
DTYPES = (torch.float32, torch.float64)


def _cases(dtypes=DTYPES):
    """(module info, dtype, training): both modes where torch's entry says they differ."""
    for info, dtype in product(INFOS, dtypes):
        for training in (True, False) if info.train_and_eval_differ else (True,):
            mode = "train" if training else "eval"
            yield pytest.param(info, dtype, training,
                               id=f"{info.module_cls.__name__}-{str(dtype)[6:]}-{mode}")


def _inputs(info, dtype, training, requires_grad=False):
    return info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=requires_grad,
                                   training=training)


def _constructor(module_input):
    return module_input.constructor_input.args, module_input.constructor_input.kwargs


def _build(info, module_input, dtype, training):
    args, kwargs = _constructor(module_input)
    m = DROP_INS[info.module_cls](*args, **kwargs).to(dtype)
    m.train(training)
    return m


def _instances(info, dtype, training, requires_grad=False):
    """(module input, rnnlab's module, forward args, forward kwargs) of each of torch's inputs."""
    for module_input in _inputs(info, dtype, training, requires_grad=requires_grad):
        yield (module_input, _build(info, module_input, dtype, training),
               module_input.forward_input.args, module_input.forward_input.kwargs)


def _tensors(tree):
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("info,dtype,training", list(_cases()))
def test_forward_matches_the_reference_and_torch_nn(info, dtype, training):
    for module_input in _inputs(info, dtype, training):
        args, kwargs = module_input.forward_input.args, module_input.forward_input.kwargs
        with freeze_rng_state():
            m = _build(info, module_input, dtype, training)
            out = m(*args, **kwargs)
            if module_input.reference_fn is not None:  # torch's: the unbatched-input reference
                ref = module_input.reference_fn(m, *args, **kwargs)
                torch.testing.assert_close(out, ref)
        # torch.nn itself on the same weights (no dropout in these inputs, so any mode)
        c_args, c_kwargs = _constructor(module_input)
        oracle = info.module_cls(*c_args, **c_kwargs).to(dtype).train(training)
        oracle.load_state_dict(m.state_dict())
        torch.testing.assert_close(out, oracle(*args, **kwargs))
        # the dtype methods move every parameter
        getattr(m, {torch.float32: "float", torch.float64: "double"}[dtype])()
        m(*args, **kwargs)
        assert all(p.dtype == dtype for p in m.parameters())


@pytest.mark.parametrize("info,dtype,training", list(_cases()))
def test_factory_kwargs_repr_and_save_load(info, dtype, training):
    for module_input in _inputs(info, dtype, training):
        args, kwargs = _constructor(module_input)
        m = DROP_INS[info.module_cls](*args, **kwargs, device="cpu", dtype=dtype)
        assert all(p.dtype == dtype and p.device.type == "cpu" for p in m.parameters())
        assert repr(m) and str(m)
        m.train(training)
        f_args, f_kwargs = module_input.forward_input.args, module_input.forward_input.kwargs
        with freeze_rng_state():
            out = m(*f_args, **f_kwargs)
        buffer = io.BytesIO()
        torch.save(m, buffer)  # the whole module, as torch's pickle test does
        buffer.seek(0)
        copy = torch.load(buffer, weights_only=False)  # our own object, just written
        with freeze_rng_state():
            torch.testing.assert_close(copy(*f_args, **f_kwargs), out)


def _non_contiguous(tree):
    def make(t):
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            return t
        nc = torch.repeat_interleave(t, 2, dim=-1)[..., ::2].detach()
        return nc.requires_grad_(t.requires_grad)
    return tree_map(make, tree)


def _backward(out, grads):
    for o, g in zip(tree_flatten(out)[0], tree_flatten(grads)[0]):
        if o.requires_grad:
            o.backward(g, retain_graph=True)


@pytest.mark.parametrize("info,dtype,training", list(_cases()))
def test_non_contiguous_inputs_and_gradients(info, dtype, training):
    for _, m, args, kwargs in _instances(info, dtype, training, requires_grad=True):
        with freeze_rng_state():
            ref_out = m(*args, **kwargs)
        grads = tree_map(lambda o: torch.randn_like(o) if isinstance(o, torch.Tensor) else o,
                         ref_out)
        ref = None
        for (a, k), g in product([(args, kwargs), _non_contiguous((args, kwargs))],
                                 [grads, _non_contiguous(grads)]):
            for t in _tensors((a, k)) + list(m.parameters()):
                t.grad = None
            with freeze_rng_state():
                out = m(*a, **k)
            _backward(out, g)
            got = [t.grad for t in _tensors((a, k)) + list(m.parameters())]
            torch.testing.assert_close(out, ref_out)
            if ref is None:
                ref = deepcopy(got)
            torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)


def _check_gradients(info, training, check, *, each_param_once=False):
    """torch's gradient helper: the total derivative, then each parameter's alone.
    ``each_param_once``: the parameters alone only for the sample input whose module has the
    most of them (bidirectional, with projections: every code path of the others), the total
    derivative for every input — to keep the suite's time where the check is second order."""
    inputs = list(_inputs(info, torch.float64, training, requires_grad=True))
    modules = [_build(info, mi, torch.float64, training) for mi in inputs]
    richest = max(range(len(modules)), key=lambda i: len(list(modules[i].parameters())))
    for i, (module_input, m) in enumerate(zip(inputs, modules)):
        assert not module_input.forward_input.kwargs
        _check_module(m, module_input.forward_input.args, check,
                      each_param=not each_param_once or i == richest)


def _check_module(m, args, check, each_param=True):
    params = tuple(m.parameters()) if each_param else ()

    def fn(*flat):
        new_args = tree_unflatten(list(flat), spec)[: len(args)]
        with freeze_rng_state():
            return tree_flatten(m(*new_args))[0]

    flat, spec = tree_flatten(args + tuple(m.parameters()))
    assert check(fn, flat)
    for p in params:
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
        flat, spec = tree_flatten(args + params)
        assert check(fn, flat)
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)


#: torch's harness checks derivatives in both modes; none of module_db's recurrent inputs has
#: dropout, so the two modes are one function (the forward test runs both) and the
#: derivatives are checked once, in training mode, to keep the suite's time
DERIVATIVE_CASES = [c for c in _cases((torch.float64,)) if c.values[2]]


def test_the_module_db_inputs_have_no_dropout():
    for info in INFOS:
        for module_input in _inputs(info, torch.float64, True):
            assert not module_input.constructor_input.kwargs.get("dropout")


@pytest.mark.parametrize("info,dtype,training", DERIVATIVE_CASES)
def test_gradcheck_with_batched_gradients(info, dtype, training):
    _check_gradients(info, training, gradcheck)  # torch's wrapper: check_batched_grad=True


@pytest.mark.parametrize("info,dtype,training", DERIVATIVE_CASES)
def test_gradgradcheck_with_batched_gradients(info, dtype, training):
    _check_gradients(info, training, gradgradcheck, each_param_once=True)


@pytest.mark.parametrize("info,dtype,training", list(_cases()))
def test_memory_formats_training_flag_and_meta_init(info, dtype, training):
    for module_input, m, args, kwargs in _instances(info, dtype, training, requires_grad=True):
        with freeze_rng_state():
            want = m(*args, **kwargs)
            for fmt in (torch.preserve_format, torch.contiguous_format):
                m.to(memory_format=fmt)
                out = m(*args, **kwargs)
                torch.testing.assert_close(out, want)
                assert all(t.is_contiguous() for t in _tensors(out))
        # a forward that reads `training` must be an entry that says train and eval differ
        delattr(m, "training")
        try:
            m(*args, **kwargs)
        except AttributeError as e:
            assert "'training'" in str(e) and info.train_and_eval_differ
        # built on the meta device: the same parameters, without storage
        c_args, c_kwargs = _constructor(module_input)
        on_cpu = DROP_INS[info.module_cls](*c_args, **c_kwargs)
        with torch.device("meta"):
            on_meta = DROP_INS[info.module_cls](*c_args, **c_kwargs)
        for (name, p), (_, q) in zip(on_meta.named_parameters(), on_cpu.named_parameters(),
                                     strict=True):
            assert p.is_meta and p.shape == q.shape and p.dtype == q.dtype, name


ERROR_CASES = [pytest.param(info, dtype, id=f"{info.module_cls.__name__}-{str(dtype)[6:]}")
               for info, dtype in product(INFOS, DTYPES) if info.module_error_inputs_func]


@pytest.mark.parametrize("info,dtype", ERROR_CASES)
def test_error_inputs_raise_torch_nn_s_class_and_message(info, dtype):
    cls = DROP_INS[info.module_cls]
    errors = info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False,
                                           training=True)
    assert errors
    for error in errors:
        module_input = error.module_error_input
        c_args, c_kwargs = _constructor(module_input)
        if error.error_on == ModuleErrorEnum.CONSTRUCTION_ERROR:
            with pytest.raises(error.error_type, match=error.error_regex):
                cls(*c_args, **c_kwargs)
        else:
            m = cls(*c_args, **c_kwargs)
            f_args, f_kwargs = module_input.forward_input.args, module_input.forward_input.kwargs
            with pytest.raises(error.error_type, match=error.error_regex):
                m(*f_args, **f_kwargs)
