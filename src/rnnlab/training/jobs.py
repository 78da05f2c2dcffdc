"""Jobs of many runs: the shards still to run, and the engines that run them.

A job (`rnnlab reproduce`, `rnnlab sweep`) is a set of groups (a table's rows, a sweep's
points), each the union of some run folders. A `Shard` is one of those run folders: a pure
function of its config (per-trial generators, so where it runs changes nothing), and the unit
of resumption: a folder with a result is done, one with a checkpoint continues, one started but
never checkpointed starts again. `run_shards` runs the pending shards, the most expensive
first, and reports each group as its last shard finishes, on one of two engines:

- the local pool (default): worker processes of this machine, one thread each, writing their
  run folders in place; Ctrl-C makes every running shard write its checkpoint, then raises
  KeyboardInterrupt;
- a Dask cluster (``cluster="tcp://host:8786"``, a scheduler the user started with Dask's own
  commands): each shard is a task that runs in a worker-local temporary folder and returns the
  folder's files, which this process writes into the job's folder (no shared file system). A
  worker lost mid-shard is Dask's to resubmit; the shard's result does not depend on where it
  ran. Ctrl-C cancels the shards not yet finished; the same command runs them again.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig
from .runs import CHECKPOINT, CONFIG, RESULT, RunDir

#: in a job's folder while its shards stop (Ctrl-C)
STOPPING = ".stopping"


@dataclass
class Shard:
    """One run folder of a job: ``group`` it belongs to, ``cost`` (to schedule the longest
    first), its ``config`` (None when it resumes from its checkpoint)."""

    group: str
    folder: Path
    cost: float
    config: RunConfig | None

    @property
    def resume(self) -> bool:
        return self.config is None


@contextmanager
def job_folder(out, command: str) -> Iterator[Path]:
    """The job's folder, made if need be and locked while the job runs: one job per folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            raise ValueError(f"another `rnnlab {command}` is running in {out}") from e
        yield out


def pending(runs: list[tuple[str, Path, float, Callable[[], RunConfig]]]) -> list[Shard]:
    """The shards of ``runs`` (group, folder, cost, config maker) still to run, the most
    expensive first. A folder started but never checkpointed is cleared: it starts again."""
    shards = []
    for group, folder, cost, config in runs:
        if (folder / RESULT).exists():
            continue
        resume = (folder / CHECKPOINT).exists()
        if (folder / CONFIG).exists() and not resume:
            shutil.rmtree(folder)
        shards.append(Shard(group, folder, cost, None if resume else config()))
    return sorted(shards, key=lambda s: -s.cost)


def _worker_init() -> None:
    """A worker leaves the terminal's process group: Ctrl-C reaches the job alone, which
    hands it to each shard exactly once (`STOPPING`), also to one about to start."""
    os.setpgrp()


def _run_shard(config: RunConfig | None, folder: str, resume: bool, parent: int,
               stopping: str) -> dict:
    """In a worker process: one shard, one thread. Interrupted (a checkpoint, then
    KeyboardInterrupt) when the file ``stopping`` appears; ended if the job that started it
    is killed (so that no orphan writes into a folder a new run also uses)."""
    import _thread

    import torch

    from .trainer import train

    if os.path.exists(stopping):
        raise KeyboardInterrupt  # queued before the interrupt: not started
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            if os.getppid() != parent:
                os._exit(1)  # checkpoints are written atomically: nothing is torn
            if os.path.exists(stopping):
                _thread.interrupt_main()  # as Ctrl-C: the trainer checkpoints between steps
                return

    threading.Thread(target=watch, daemon=True).start()
    torch.set_num_threads(1)
    try:
        return train(config, folder, resume=resume, progress=False)
    finally:
        done.set()


def run_shards(shards: list[Shard], out: Path, jobs: int, *,
               on_group_done: Callable[[str], None], tick: Callable[[], None],
               say: Callable[[str], None], cluster: str | None = None) -> None:
    """Run ``shards`` in ``jobs`` worker processes (one thread each), or on the Dask cluster
    whose scheduler is at ``cluster``; ``on_group_done(group)`` when a group's last shard has
    finished, ``tick()`` about once a second. A failed shard stops the job, loudly. Ctrl-C:
    the running shards write their checkpoints (the file `STOPPING` in ``out`` tells them;
    on a cluster they are cancelled), then KeyboardInterrupt is raised."""
    if cluster is not None:
        _run_on_cluster(shards, cluster, on_group_done, say)
        return
    from .. import kernels

    kernels.load()  # build once here, before the workers start
    stopping = Path(out) / STOPPING
    stopping.unlink(missing_ok=True)  # left by a job killed while it stopped
    context = multiprocessing.get_context("spawn")
    jobs = max(1, min(jobs, len(shards)))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                             initializer=_worker_init) as pool:
        futures = {pool.submit(_run_shard, s.config, str(s.folder), s.resume, os.getpid(),
                               str(stopping)): s.group for s in shards}
        try:
            while futures:
                done, _ = wait(list(futures), timeout=1.0, return_when=FIRST_COMPLETED)
                tick()
                for future in done:
                    group = futures.pop(future)
                    future.result()
                    if group not in futures.values():
                        on_group_done(group)
        except KeyboardInterrupt:
            say("interrupted: the shards are writing their checkpoints ...")
            stopping.touch()
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            stopping.unlink(missing_ok=True)
            raise


# -- the Dask engine -------------------------------------------------------------------------


#: how long to wait for a Dask scheduler to answer
CONNECT_TIMEOUT = "20s"


def connect(address: str):
    """A Dask client of the scheduler at ``address``; a clear ValueError when Dask is not
    installed or nothing answers there."""
    try:
        from distributed import Client
    except ImportError as e:
        raise ValueError("--cluster needs Dask distributed: pip install 'rnnlab[cluster]' "
                         "(here and on every worker)") from e
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as e:
        raise ValueError(f"no Dask scheduler answers at {address}: {e}") from e


def cluster_threads(address: str) -> int:
    """The worker threads of the cluster at ``address`` (how many shards it runs at once)."""
    with connect(address) as client:
        return max(1, sum(client.nthreads().values()))


def remote_shard(config: RunConfig | None, files: dict[str, bytes]) -> dict[str, bytes]:
    """On a Dask worker: one shard in a worker-local temporary folder, from ``config`` or, if
    ``files`` holds a checkpointed run folder, continuing it; returns the folder's files."""
    import tempfile

    import torch

    from .trainer import train

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="rnnlab-shard-") as tmp:
        folder = Path(tmp) / "run"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        train(config, folder, resume=bool(files), progress=False)
        return {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Put a shard's returned files in place of ``folder``: written beside it, then renamed,
    so the folder is never half-written (at worst, after a crash, absent: the shard reruns)."""
    incoming = folder.parent / f".{folder.name}.incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    for name, data in files.items():
        (incoming / name).write_bytes(data)
    if folder.exists():
        old = folder.parent / f".{folder.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        incoming.rename(folder)
        shutil.rmtree(old)
    else:
        incoming.rename(folder)


def _run_on_cluster(shards: list[Shard], address: str, on_group_done, say) -> None:
    from distributed import as_completed

    with connect(address) as client:
        # Dask runs higher priorities first: the most expensive shards (listed first) first
        futures = {client.submit(remote_shard, s.config,
                                 _folder_files(s.folder) if s.resume else {}, pure=False,
                                 priority=len(shards) - k): s
                   for k, s in enumerate(shards)}
        bar = _ShardBar(len(shards), address)
        try:
            with bar:
                for future in as_completed(list(futures)):
                    shard = futures.pop(future)
                    _write_folder(shard.folder, future.result())
                    bar.advance()
                    if shard.group not in {s.group for s in futures.values()}:
                        on_group_done(shard.group)
        except KeyboardInterrupt:
            say("interrupted: the shards not finished are cancelled on the cluster; the same "
                "command runs them again")
            client.cancel(list(futures))
            raise


class _ShardBar:
    """Shards finished across the cluster (their logs stay on the workers until they end)."""

    def __init__(self, total: int, address: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn(f"shards on {address}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn())
        self.task = self.bar.add_task("shards", total=total)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def advance(self) -> None:
        self.bar.advance(self.task)


# -- progress --------------------------------------------------------------------------------


class Bars:
    """A live bar per unfinished group: the sequences its trials have reached, read from its
    shards' logs. ``groups`` maps a name to (trials, budget per trial, [(folder, trials)])."""

    def __init__(self, enabled: bool, groups: dict[str, tuple[int, int, list]]) -> None:
        self.enabled, self.groups = enabled, groups
        if not enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("[bold]{task.description:<16}"), BarColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn())
        self.ids = {name: self.bar.add_task(name, total=trials * budget, info="")
                    for name, (trials, budget, _) in groups.items()}

    def __enter__(self):
        if self.enabled:
            self.bar.__enter__()
            self.refresh()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)

    def refresh(self) -> None:
        if not self.enabled:
            return
        for name, (trials, budget, shards) in self.groups.items():
            if name not in self.ids:
                continue
            done = solved = 0
            for folder, count in shards:
                run = RunDir(folder)
                if (run.path / RESULT).exists():
                    done += count * budget
                    solved += run.result()["solved"]
                    continue
                try:
                    metrics = run.metrics()
                except ValueError:
                    metrics = []
                if metrics and "trial" in metrics[-1]:  # continual: one record per trial
                    done += len(metrics) * budget
                    solved += sum(m["solved"] for m in metrics)
                elif metrics:
                    last = metrics[-1]
                    s = int(last.get("solved", 0))
                    done += last["sequences"] * (count - s) + budget * s
                    solved += s
            self.bar.update(self.ids[name], completed=done, info=f"solved {solved}/{trials}")

    def finish(self, name: str, line: str) -> None:
        if self.enabled and name in self.ids:
            self.bar.remove_task(self.ids.pop(name))
            self.bar.console.print(line, markup=False, highlight=False)
        elif not self.enabled:
            print(line, flush=True)

    def print(self, text: str) -> None:
        if self.enabled:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)
