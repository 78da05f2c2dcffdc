"""The compiled kernels against the reference path (the Python code they optimise), the
switch that turns them off, and the fallback when they cannot be built."""

import copy
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import rnnlab
from rnnlab import kernels

needs_kernels = pytest.mark.skipif(not kernels.usable(torch.zeros(1)),
                                   reason="compiled kernels unavailable here")

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}


def both_paths(monkeypatch, obj, method, *args, **kwargs):
    """Call obj.method on a copy with the kernels on and on a copy with them off."""
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv("RNNLAB_KERNELS", switch)
        twin = copy.deepcopy(obj)
        results.append((twin, getattr(twin, method)(*args, **kwargs)))
    return results


ONLINE = [
    ("adding-net", dict(input_size=2, num_blocks=2, block_size=2)),
    ("reber-net", dict(input_size=7, num_blocks=3, block_size=2, bias=("in", "out"))),
    ("task-2a", dict(input_size=5, num_blocks=1, output_gate=False, recurrent=False,
                     bias=False, g="logistic", h="identity")),
    ("no-gate-recurrence", dict(input_size=3, num_blocks=2, gate_recurrence=False)),
    ("tanh-squashers", dict(input_size=4, num_blocks=2, block_size=3, g="tanh", h="tanh")),
]


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,spec", ONLINE, ids=[c[0] for c in ONLINE])
def test_online_learner_compiled_equals_reference(monkeypatch, name, spec, dtype):
    spec = dict(spec)
    I, K, S = spec.pop("input_size"), spec.pop("num_blocks"), spec.pop("block_size", 1)
    gen = torch.Generator().manual_seed(0)
    tol = TOL[dtype]
    for sees_input in (False, True):
        learner = rnnlab.OnlineLSTM1997(I, K, S, 3, trials=4, output_sees_input=sees_input,
                                        init_range=0.5, dtype=dtype, generator=gen, **spec)
        for symbols in (False, True):
            lead = (3,)  # three batches one after another
            if symbols:
                x = torch.randint(-1, I, (*lead, 11, 4, 2), generator=gen)
            else:
                x = torch.randn(*lead, 11, 4, 2, I, dtype=dtype, generator=gen)
                x[x.abs() < 0.5] = 0  # exact zeros: the kernel skips them
            targets = torch.rand(*lead, 11, 4, 2, 3, dtype=dtype, generator=gen)
            mask = torch.rand(*lead, 11, 4, 2, generator=gen) < 0.4
            lengths = torch.randint(4, 12, (*lead, 4, 2), generator=gen)
            lr = torch.tensor([0.5, 0.1, 0.0, 1.0], dtype=dtype)
            for update in ("step", "sequence", "none"):
                for outputs_at in ("all", "targets"):
                    (a, (out_a, g_a)), (b, (out_b, g_b)) = both_paths(
                        monkeypatch, learner, "run", x, targets, mask, lengths=lengths, lr=lr,
                        update=update, outputs_at=outputs_at)
                    torch.testing.assert_close(out_a, out_b, equal_nan=True, **tol)
                    for k in ("W", "V"):
                        torch.testing.assert_close(g_a[k], g_b[k], **tol)
                        torch.testing.assert_close(getattr(a, k), getattr(b, k), **tol)
            (_, (out_a, none_a)), (_, (out_b, none_b)) = both_paths(
                monkeypatch, learner, "run", x, lengths=lengths, update="none", gradient=False)
            torch.testing.assert_close(out_a, out_b, equal_nan=True, **tol)
            assert none_a is None and none_b is None


def test_switch_off_selects_the_reference_path(monkeypatch):
    monkeypatch.setenv("RNNLAB_KERNELS", "0")
    assert not kernels.enabled() and not kernels.usable(torch.zeros(1))
    assert kernels.status().startswith("off")


def test_other_dtypes_and_devices_take_the_reference_path():
    assert not kernels.usable(torch.zeros(1, dtype=torch.float16))
    assert not kernels.usable(torch.zeros(1, device="meta"))


def test_a_failed_build_falls_back_with_one_line(tmp_path):
    """A compiler that cannot run: one warning line naming the cause, the reference path, the
    same numbers, exit 0."""
    script = textwrap.dedent("""
        import torch, rnnlab
        from rnnlab import kernels
        torch.manual_seed(0)
        learner = rnnlab.OnlineLSTM1997(2, 2, 2, trials=2, dtype=torch.float64,
                                        generator=torch.Generator().manual_seed(0))
        x = torch.randn(20, 2, 1, 2, dtype=torch.float64)
        out, _ = learner.run(x, torch.rand(20, 2, 1, 1, dtype=torch.float64), lr=0.5)
        print(kernels.status().split(" ")[0], float(out.sum()))
    """)
    env = {**os.environ, "RNNLAB_KERNELS_DIR": str(tmp_path / "cache"),
           "CXX": str(tmp_path / "no-such-compiler")}
    broken = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300)
    assert broken.returncode == 0, broken.stderr
    warnings = [ln for ln in broken.stderr.splitlines() if "kernels unavailable" in ln]
    assert len(warnings) == 1, broken.stderr
    assert "Traceback" not in broken.stderr
    env.update(RNNLAB_KERNELS="0")
    reference = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                               text=True, timeout=300)
    assert broken.stdout.split()[0] == "unavailable" and reference.stdout.split()[0] == "off"
    assert broken.stdout.split()[1] == reference.stdout.split()[1]
    assert "kernels" not in reference.stderr
