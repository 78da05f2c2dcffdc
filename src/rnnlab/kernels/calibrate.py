"""Which GEMM runs the engine's hoisted products on this machine: measured once, then kept.

The products before and after the time loops (the input projection, the input gradient, the
weight gradients) are tall: T·B rows. Which GEMM is faster on them depends on the CPU. On a
core that runs AVX-512 at the AVX2 rate, ATen's (MKL) was as fast as rnnlab's own or faster
(own / ATen 0.98–1.61); on one with full-width AVX-512 the own GEMM ran at 230–340 GFLOP/s
against MKL's 120–180 (own / ATen 0.40–0.98), and the large LSTM's step took 224 ms instead
of 310 (`python -m benchmarks.gemm` prints the table for the machine it runs on).

So the first process that needs the choice times both on one representative product, a
(6,400 × 256) · (256 × 1,024) input projection at torch's thread count, and the own GEMM wins
only if it takes under 0.9 of ATen's time (a margin, so that timing noise cannot flip a close
call). The result is written beside the compiled library (gemm.json, keyed by threads), so
every later process on the machine makes the same choice and runs give the same numbers.

    RNNLAB_GEMM=own | aten     overrides the measured choice
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import torch

#: the own GEMM must take under this fraction of ATen's time to be chosen
MARGIN = 0.9
#: the representative product: rows (T·B), inner size, columns (4 gates × 256)
SHAPE = (6400, 256, 1024)

_chosen: dict[int, str] = {}


def hoisted_gemm() -> str:
    """"own" or "aten": the GEMM of the hoisted products at torch's current thread count."""
    forced = os.environ.get("RNNLAB_GEMM", "").strip().lower()
    if forced:
        if forced not in ("own", "aten"):
            raise ValueError(f"RNNLAB_GEMM must be 'own' or 'aten', got {forced!r}")
        return forced
    from . import load

    if not load():
        return "aten"  # no own GEMM to choose
    threads = torch.get_num_threads()
    if threads not in _chosen:
        _chosen[threads] = _recorded(threads) or _measure(threads)
    return _chosen[threads]


def _file() -> Path:
    from . import _machine_tag, cache_dir

    return cache_dir() / _machine_tag() / "gemm.json"


def _read() -> dict:
    try:
        data = json.loads(_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _recorded(threads: int) -> str | None:
    entry = _read().get(str(threads), {})
    choice = entry.get("choice") if isinstance(entry, dict) else None
    return choice if choice in ("own", "aten") else None


def _measure(threads: int, reps: int = 5) -> str:
    """Time both GEMMs on `SHAPE`, repetitions interleaved; record and return the choice."""
    from . import own_mm

    m, k, n = SHAPE
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    out = torch.empty(m, n)
    runs = {"own": lambda: own_mm(a, b, out), "aten": lambda: torch.mm(a, b, out=out)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(reps + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if i:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    own, aten = (statistics.median(times[name]) for name in ("own", "aten"))
    choice = "own" if own < MARGIN * aten else "aten"
    _record(threads, {"choice": choice, "own_ms": round(own * 1e3, 3),
                      "aten_ms": round(aten * 1e3, 3), "shape": list(SHAPE)})
    return choice


def _record(threads: int, entry: dict) -> None:
    """Add the entry to gemm.json atomically; a folder that cannot be written keeps the
    choice for this process only."""
    path = _file()
    data = _read() | {str(threads): entry}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".gemm.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass
