"""Run folders: everything needed to rerun, follow and resume a training run.

    RUN/config.json              what was asked for: task, model, protocol, seed, version
    RUN/metrics.jsonl            one line per log interval
    RUN/checkpoint.safetensors   model + optimiser + RNG state + progress (safetensors: no
                                 pickle, nothing executable is ever loaded)
    RUN/result.json              the outcome: solved?, sequences, final test
    RUN/environment.json         where it ran: versions, threads, compiled kernels or not

Every write goes to a temporary file in the same folder and is renamed over the target, so a
crash or Ctrl-C never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

CONFIG, METRICS, CHECKPOINT, RESULT, ENVIRONMENT = (
    "config.json", "metrics.jsonl", "checkpoint.safetensors", "result.json", "environment.json")


def environment() -> dict:
    """Where a run runs: what a report shows beside its numbers (timings depend on it)."""
    import platform

    from .. import __version__, kernels

    return {"rnnlab": __version__, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(),
            "kernels": kernels.status()}


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename onto path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2) + "\n"))


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise ValueError(f"{path} does not exist") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from e


def save_checkpoint(path: Path, tensors: dict[str, Tensor], meta: dict) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"rnnlab": json.dumps(meta)}))


def load_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["rnnlab"])
    except (SafetensorError, KeyError, json.JSONDecodeError, OSError) as e:
        raise ValueError(f"{path} is not a valid rnnlab checkpoint ({e})") from e
    return tensors, meta


def model_tensors(model: torch.nn.Module) -> dict[str, Tensor]:
    """The model's state_dict under the "model." prefix of a checkpoint."""
    return {"model." + k: v for k, v in model.state_dict().items()}


def load_model_tensors(model: torch.nn.Module, tensors: dict[str, Tensor], where) -> None:
    """Load the "model." tensors of a checkpoint; ValueError if they do not fit the model."""
    prefix = "model."
    try:
        model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                               if k.startswith(prefix)})
    except RuntimeError as e:
        raise ValueError(f"{where}: the checkpoint does not fit its config ({e})") from e


# -- optimiser and RNG state as flat tensors + JSON ------------------------------------------


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(optimizer, tensors: dict[str, Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class RunDir:
    """A run folder. ``create`` for a new run; opening an existing one reads its config."""

    def __init__(self, path) -> None:
        self.path = Path(path)

    def create(self, config: dict) -> None:
        if (self.path / CONFIG).exists():
            raise ValueError(f"{self.path} already holds a run; choose another --out or "
                             f"use --resume")
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / CONFIG, config)
        write_json(self.path / ENVIRONMENT, environment())

    def config(self) -> dict:
        if not self.path.is_dir():
            raise ValueError(f"no run folder at {self.path}")
        return read_json(self.path / CONFIG)

    def log(self, record: dict) -> None:
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict]:
        """The log records. A last line without its newline is an append that was cut off (a
        killed run, or a run still writing it): it is dropped. A bad line elsewhere is an
        error naming the file and the line."""
        p = self.path / METRICS
        if not p.exists():
            return []
        text = p.read_text(errors="replace")
        lines = text.split("\n")
        torn = lines.pop()  # "" when the file ends with a newline
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}, line {number}: not a JSON record ({e})") from e
        del torn
        return records

    def truncate_metrics(self, progress: int, key: str = "sequences") -> None:
        """On resume, drop log lines written after the checkpoint being resumed from (whose
        progress counter ``key`` was ``progress``)."""
        keep = [m for m in self.metrics() if m.get(key, 0) <= progress]
        atomic_write(self.path / METRICS, lambda tmp: Path(tmp).write_text(
            "".join(json.dumps(m) + "\n" for m in keep)))

    def save(self, tensors: dict[str, Tensor], meta: dict) -> None:
        save_checkpoint(self.path / CHECKPOINT, tensors, meta)

    def load(self) -> tuple[dict[str, Tensor], dict]:
        return load_checkpoint(self.path / CHECKPOINT)

    def resume_point(self, tidy: bool = True) -> tuple[dict[str, Tensor], dict] | None:
        """The checkpoint a resumed run continues from, or None when the run was killed before
        its first one: it then starts over, so its log is emptied. Temporary files that a
        killed write left behind are removed (the files they were meant to replace are whole:
        see `atomic_write`). ``tidy=False`` only reads: the ranks of a job under torchrun
        other than the one that writes the folder, which would otherwise remove that
        rank's temporary files while it writes them."""
        if tidy:
            for tmp in self.path.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        if (self.path / CHECKPOINT).exists():
            return self.load()
        if tidy:
            (self.path / METRICS).unlink(missing_ok=True)
        return None

    def write_result(self, result: dict) -> None:
        write_json(self.path / RESULT, result)

    def result(self) -> dict:
        return read_json(self.path / RESULT)
