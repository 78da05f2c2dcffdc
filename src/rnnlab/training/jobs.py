"""Jobs of many runs: the shards still to run, and the engine that runs them.

A job (`rnnlab reproduce`, `rnnlab sweep`) is a set of groups (a table's rows, a sweep's
points), each the union of some run folders. A `Shard` is one of those run folders: a pure
function of its config (per-trial generators, so where it runs changes nothing), and the unit
of resumption: a folder with a result is done, one with a checkpoint continues, one started but
never checkpointed starts again. `run_shards` runs the pending shards in worker processes, the
most expensive first, and reports each group as its last shard finishes; Ctrl-C makes every
running shard write its checkpoint, then raises KeyboardInterrupt.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

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
    config: dict | None
    resume: bool


def pending(runs: list[tuple[str, Path, float, Callable[[], dict]]]) -> list[Shard]:
    """The shards of ``runs`` (group, folder, cost, config maker) still to run, the most
    expensive first. A folder started but never checkpointed is cleared: it starts again."""
    shards = []
    for group, folder, cost, config in runs:
        if (folder / RESULT).exists():
            continue
        resume = (folder / CHECKPOINT).exists()
        if (folder / CONFIG).exists() and not resume:
            shutil.rmtree(folder)
        shards.append(Shard(group, folder, cost, None if resume else config(), resume))
    return sorted(shards, key=lambda s: -s.cost)


def _worker_init() -> None:
    """A worker leaves the terminal's process group: Ctrl-C reaches the job alone, which
    hands it to each shard exactly once (`STOPPING`), also to one about to start."""
    os.setpgrp()


def _run_shard(config: dict | None, folder: str, resume: bool, parent: int,
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
               say: Callable[[str], None]) -> None:
    """Run ``shards`` in ``jobs`` worker processes (one thread each); ``on_group_done(group)``
    when a group's last shard has finished, ``tick()`` about once a second. A failed shard
    stops the job, loudly. Ctrl-C: the running shards write their checkpoints (the file
    `STOPPING` in ``out`` tells them), then KeyboardInterrupt is raised."""
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
                if metrics:
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
