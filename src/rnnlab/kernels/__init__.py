"""Compiled kernels: the engine's time loops and the 1997 on-line learner in C++.

The Python cells (`rnnlab.cells`) and the on-line learner (`rnnlab.online`) are the
specification; the sources in ``csrc/`` compute the same thing, loop for loop, without
per-operation dispatch. They are compiled on first use with ``torch.utils.cpp_extension``
(g++, ninja; about half a minute) into a per-machine cache and registered as
``torch.ops.rnnlab.*``; later imports load the cached library in milliseconds.

    RNNLAB_KERNELS=0        the reference path everywhere (today's Python loops)
    RNNLAB_KERNELS_DIR=...  where builds are cached (default ~/.cache/rnnlab/kernels)
    RNNLAB_GEMM=own|aten    the GEMM of the products before and after the loops (default:
                            measured once per machine, `calibrate`)

If the build fails, rnnlab prints one line naming the cause and runs the reference path;
nothing else changes. Tensors on other devices (CUDA) always take the reference path.

The engine's large CPU buffers come from a pool in the library (``csrc/buffers.cpp``) and go
back to it when their last tensor dies, so their pages stay mapped from call to call;
`release_buffers` frees the unused ones.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

_CSRC = Path(__file__).parent / "csrc"
SOURCES = sorted(p.name for p in _CSRC.glob("*.cpp"))
HEADERS = sorted(p.name for p in _CSRC.glob("*.h"))
#: a build lock older than this was left by a killed build; it is removed
_STALE_LOCK_SECONDS = 600

_state: dict = {"tried": False, "ok": False, "cause": None, "path": None}


def enabled() -> bool:
    """False when RNNLAB_KERNELS=0 selects the reference path."""
    return os.environ.get("RNNLAB_KERNELS", "1").strip() != "0"


def cache_dir() -> Path:
    """$RNNLAB_KERNELS_DIR, else $XDG_CACHE_HOME/rnnlab/kernels, else ~/.cache/..."""
    if os.environ.get("RNNLAB_KERNELS_DIR"):
        return Path(os.environ["RNNLAB_KERNELS_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnlab" / "kernels"


def _machine_tag() -> str:
    """Builds use -march=native: key the cache by the CPU's features, torch and Python."""
    flags = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags += line
                break
    except OSError:
        pass
    digest = hashlib.sha256(flags.encode()).hexdigest()[:10]
    # ... and by the source tree: cpp_extension keys a build on the sources' paths too, so two
    # checkouts sharing one folder would rebuild each other's library at every first use
    tree = hashlib.sha256(str(_CSRC.resolve()).encode()).hexdigest()[:8]
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return f"torch{torch.__version__.replace('+', '_')}-{py}-{digest}-src{tree}"


def _ensure_ninja() -> None:
    """cpp_extension runs `ninja` from PATH; a venv's own ninja (pip package) counts too."""
    if shutil.which("ninja"):
        return
    candidates = [Path(sys.executable).parent]
    try:
        import ninja  # the PyPI package

        candidates.insert(0, Path(ninja.BIN_DIR))
    except (ImportError, AttributeError):
        pass
    for folder in candidates:
        if (folder / "ninja").exists():
            os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
            return


def _short_cause(error: BaseException) -> str:
    """The line of a build failure that says what went wrong (not the compiler commands)."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]

    def is_command(ln: str) -> bool:
        return (ln.startswith(("[", "FAILED:", "ninja:", "Error building extension"))
                or " -c " in ln)

    messages = [ln for ln in lines if not is_command(ln)]
    for ln in messages:
        if "error" in ln.lower():
            return ln[:160]
    return (messages or lines or [type(error).__name__])[0][:160]


#: compiler flags of every build (the headers' hash is added to them)
_CFLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno"]


def _build_key() -> str:
    """What a build depends on: every source and header, the flags, torch's version."""
    h = hashlib.sha256(" ".join(_CFLAGS + [torch.__version__]).encode())
    for name in SOURCES + HEADERS:
        h.update(name.encode() + (_CSRC / name).read_bytes())
    return h.hexdigest()


def _build() -> str:
    """The path of an up-to-date library: the one a previous build recorded when nothing it
    depends on changed (loaded without cpp_extension, so without its lock: a process killed
    while loading leaves nothing that blocks the next), else a fresh build."""
    folder = cache_dir() / _machine_tag()
    stamp, key = folder / "built.txt", _build_key()
    if stamp.is_file():
        recorded, _, library = stamp.read_text().partition("\n")
        if recorded == key and Path(library).is_file():
            torch.ops.load_library(library)
            return library
    path = _compile(folder)
    tmp = folder / f".built.{os.getpid()}.tmp"
    tmp.write_text(f"{key}\n{path}")
    os.replace(tmp, stamp)
    return path


def _compile(folder: Path) -> str:
    from torch.utils import cpp_extension

    _ensure_ninja()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "lock"
    if lock.exists() and time.time() - lock.stat().st_mtime > _STALE_LOCK_SECONDS:
        lock.unlink(missing_ok=True)  # left by a build that was killed
    built = [f.stat().st_mtime for f in folder.glob("rnnlab_kernels*.so")]
    newest_source = max(f.stat().st_mtime for f in _CSRC.iterdir())
    if not built or max(built) < newest_source:
        print("rnnlab: compiling the kernels (first use on this machine, about 30 s) ...",
              file=sys.stderr, flush=True)
    # cpp_extension logs multi-line advice (e.g. about an unusual compiler); the one line
    # rnnlab prints on failure says enough
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        path = cpp_extension.load(
            name="rnnlab_kernels",
            sources=[str(_CSRC / s) for s in SOURCES],
            extra_include_paths=[str(_CSRC)],
            extra_cflags=_CFLAGS + [f"-DRNNLAB_HEADERS_HASH={_headers_hash()}"],
            extra_ldflags=["-fopenmp"],
            build_directory=str(folder),
            is_python_module=False,
            verbose=False,
        )
    finally:
        log.setLevel(level)
    return str(path)


def _headers_hash() -> str:
    """cpp_extension rebuilds when sources or flags change; headers enter through a flag."""
    h = hashlib.sha256()
    for name in HEADERS:
        h.update((_CSRC / name).read_bytes())
    return h.hexdigest()[:12]


def load() -> bool:
    """Build (first use) or load the kernels once per process; False if they cannot be had.
    A failure is reported once, in one line, and the reference path is used from then on."""
    if _state["tried"]:
        return _state["ok"]
    _state["tried"] = True
    try:
        _state["path"] = _build()
        _state["ok"] = hasattr(torch.ops.rnnlab, "online1997")
        if not _state["ok"]:
            raise RuntimeError("the built library registers no rnnlab operators")
    except Exception as e:  # any build or load failure: fall back, never crash
        _state["ok"], _state["cause"] = False, _short_cause(e)
        print(f"rnnlab: compiled kernels unavailable ({_state['cause']}); using the reference "
              "path (set RNNLAB_KERNELS=0 to skip the build)", file=sys.stderr, flush=True)
    return _state["ok"]


def usable(*tensors: torch.Tensor) -> bool:
    """Can the compiled path take these tensors? CPU, float32/float64, kernels on and built."""
    if not enabled():
        return False
    for t in tensors:
        if t is None:
            continue
        if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64):
            return False
    return load()


def status() -> str:
    """One line for reports and `rnnlab version`: which path runs, and why."""
    if not enabled():
        return "off (RNNLAB_KERNELS=0): reference path"
    if not load():
        return f"unavailable ({_state['cause']}): reference path"
    return f"compiled ({_state['path']})"


def threads() -> int:
    """Threads a kernel may use: torch's setting (torch.set_num_threads)."""
    return torch.get_num_threads()


def mm(a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None,
       beta: float = 0.0, bias: torch.Tensor | None = None) -> torch.Tensor:
    """out = a @ b + bias + beta · out (bias (n,) added to every row; out allocated when not
    given, beta then ignored): the engine's products before and after the time loop. With a
    of shape (G, m, k) and out (G, m, n): the G products a[g] @ b, which share b's packing
    (the per-gate weight gradients of a gate-major tape).

    They run on rnnlab's own GEMM (`own_mm`) or on ATen's (MKL/oneDNN), whichever is faster
    on this machine for such tall products: `calibrate.hoisted_gemm` measures it once and
    keeps the choice (RNNLAB_GEMM overrides). Inside the loops the own GEMM always runs: each
    step multiplies a thread's few rows by weights packed once per sequence.
    `python -m benchmarks.gemm` prints both for every product."""
    if out is None:
        out, beta = buffer((*a.shape[:-1], b.shape[1]), a), 0.0
    if _own_hoisted(a, b, out):
        return own_mm(a, b, out, beta=beta, bias=bias)
    if a.dim() == 3:  # out[g] = a[g] @ b (+ bias) (+ beta · out[g])
        if beta == 0:
            torch.matmul(a, b, out=out)
        else:
            out.mul_(beta).add_(torch.matmul(a, b))
        return out if bias is None else out.add_(bias)
    if bias is not None:
        if beta:
            out.mul_(beta).add_(bias).addmm_(a, b)
        else:
            torch.addmm(bias, a, b, out=out)
    elif beta == 0:
        torch.mm(a, b, out=out)
    else:
        out.addmm_(a, b, beta=beta)
    return out


def _own_hoisted(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> bool:
    """The own GEMM takes this product: compiled path usable, one CPU float dtype, out
    row-major, and this machine's choice for hoisted products is "own"."""
    from .calibrate import hoisted_gemm

    return (a.dtype == b.dtype == out.dtype and out.stride(-1) == 1
            and usable(a, b, out) and hoisted_gemm() == "own")


def own_mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, *, beta: float = 0.0,
           bias: torch.Tensor | None = None) -> torch.Tensor:
    """As `mm`, on rnnlab's own GEMM (the loops' micro-kernel), for its tests and
    benchmarks.gemm; CPU float tensors, out row-major, kernels loaded."""
    bias = _NO_BIAS if bias is None else bias.contiguous()
    torch.ops.rnnlab.mm(_ordered(a), _ordered(b), out, float(beta), bias, threads())
    return out


_NO_BIAS = torch.empty(0)


def _ordered(t: torch.Tensor) -> torch.Tensor:
    """t itself if its matrices are row- or column-major, else a row-major copy."""
    if t.stride(-1) == 1 or t.stride(-2) == 1:
        return t
    return t.contiguous()


#: CPU buffers at least this large come from the kernels' pool (`buffer`)
POOL_BYTES = 1 << 20


def buffer(shape, like: torch.Tensor, *, zero: bool = False) -> torch.Tensor:
    """An uninitialised (or zero-filled) tensor of ``like``'s dtype and device. Large CPU ones
    come from the kernels' pool when the kernels are on (csrc/buffers.cpp): their pages stay
    mapped from call to call, where malloc maps a fresh block at every call and every page of
    a tape faults on its first write."""
    nbytes = math.prod(shape) * like.element_size()
    if nbytes >= POOL_BYTES and like.device.type == "cpu" and usable(like):
        t = torch.ops.rnnlab.buffer_empty(list(shape), like.dtype)
    else:
        t = torch.empty(shape, dtype=like.dtype, device=like.device)
    return t.zero_() if zero else t


def release_buffers() -> int:
    """Free the pool's unused buffers (kept for the next call, up to 1 GiB); returns the bytes
    freed. Like ``torch.cuda.empty_cache``: nothing in use is touched."""
    return int(torch.ops.rnnlab.buffer_release()) if load() else 0


def cached_buffer_bytes() -> int:
    """Bytes of unused buffers the pool keeps for the next call."""
    return int(torch.ops.rnnlab.buffer_cached()) if load() else 0
