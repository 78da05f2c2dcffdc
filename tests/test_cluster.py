"""reproduce and sweep on a real Dask cluster — a scheduler and two workers started with Dask's
own commands on localhost — give the local pool's numbers; a worker killed mid-shard changes
nothing; a wrong address is a one-line error."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import distributed  # the cluster extra; `make test` installs it
import pytest

from rnnlab.training import reproduce as rp
from rnnlab.training.sweep import sweep

DASK = str(Path(sys.executable).parent / "dask")
QUIET = dict(echo=lambda *a: None, progress=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1` (one shard per process, as
    rnnlab's docs advise), on loopback; yields (address, client)."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    deadline = time.time() + 60
    while not info.exists() and time.time() < deadline:
        time.sleep(0.2)
    procs.append(subprocess.Popen([DASK, "worker", "--scheduler-file", str(info), "--host",
                                   "127.0.0.1", "--nworkers", "2", "--nthreads", "1",
                                   "--no-dashboard", "--local-directory", str(folder)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True))
    address = json.loads(info.read_text())["address"]
    client = distributed.Client(address, timeout="30s")
    client.wait_for_workers(2, timeout=120)
    try:
        yield address, client
    finally:
        client.close()
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def _without_time(rows: list[dict]) -> list[dict]:
    drop = ("wall_seconds",)
    return [{k: ({kk: vv for kk, vv in v.items() if kk not in drop} if isinstance(v, dict)
                 else v) for k, v in r.items() if k not in drop} for r in rows]


def test_reproduce_and_sweep_on_the_cluster_equal_the_local_pool(cluster, tmp_path):
    address, _ = cluster
    args = dict(trials=3, budget=0.05, modern=0, **QUIET)
    local = rp.reproduce(["4-T100", "6a"], out=tmp_path / "local", jobs=2, **args)
    remote = rp.reproduce(["4-T100", "6a"], out=tmp_path / "remote", cluster=address, **args)
    assert _without_time(remote) == _without_time(local) and len(remote) == 2
    # the shards' folders came back whole: result, log, checkpoint, config
    for folder in (tmp_path / "remote" / "runs").glob("*/*"):
        assert {"result.json", "metrics.jsonl", "config.json"} <= \
            {f.name for f in folder.iterdir()}
    grid = {"lr": [0.5, 1.0], "lstm.input_gate_bias": [[-1, -2], [-3, -6]]}
    s_local = sweep("4-T100", grid, out=tmp_path / "s-local", trials=2, jobs=2, budget=0.05,
                    **QUIET)
    s_remote = sweep("4-T100", grid, out=tmp_path / "s-remote", trials=2, budget=0.05,
                     cluster=address, **QUIET)
    assert _without_time(s_remote["points"]) == _without_time(s_local["points"])
    assert len(s_remote["points"]) == 4
    # repeated: a finished shard is never run again
    again = sweep("4-T100", grid, out=tmp_path / "s-remote", trials=2, budget=0.05,
                  cluster=address, **QUIET)
    assert again == s_remote
    # a shard with a checkpoint but no result (stopped locally) is sent with its files and
    # continues on a worker: the same numbers
    shard = next((tmp_path / "s-local" / "runs" / "p00").iterdir())
    (shard / "result.json").unlink()
    resumed = sweep("4-T100", grid, out=tmp_path / "s-local", trials=2, budget=0.05,
                    cluster=address, **QUIET)
    assert _without_time(resumed["points"]) == _without_time(s_local["points"])
    assert (shard / "result.json").exists()


def test_a_worker_killed_mid_shard_changes_nothing(cluster, tmp_path):
    address, client = cluster
    grid = ["--grid", "lr=0.5,1.0"]
    base = [sys.executable, "-m", "rnnlab.cli", "sweep", "6a", *grid, "--trials", "2",
            "--budget", "0.6"]
    reference = subprocess.run(base + ["--out", str(tmp_path / "local"), "--jobs", "2"],
                               capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    proc = subprocess.Popen(base + ["--out", str(tmp_path / "remote"), "--cluster", address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids = client.run(os.getpid)  # worker address -> its process
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and proc.poll() is None:
        busy = [w for w, tasks in client.processing().items() if tasks]
        if busy:
            time.sleep(0.5)  # well inside the shard
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.05)
    text, _ = proc.communicate(timeout=300)
    assert killed is not None, "no shard was seen running"
    assert proc.returncode == 0, text
    local = json.loads((tmp_path / "local" / "sweep.json").read_text())["points"]
    remote = json.loads((tmp_path / "remote" / "sweep.json").read_text())["points"]
    assert _without_time(remote) == _without_time(local)
    client.wait_for_workers(2, timeout=120)  # the nanny started a new one ...
    assert killed not in client.scheduler_info()["workers"]  # ... the killed one is gone


def test_no_scheduler_at_the_address_is_a_clear_error_before_anything_is_written(
        tmp_path, monkeypatch):
    from rnnlab.training import jobs

    monkeypatch.setattr(jobs, "CONNECT_TIMEOUT", "2s")
    with pytest.raises(ValueError, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        sweep("6a", {"lr": [0.5]}, out=tmp_path / "s", trials=1, cluster="tcp://127.0.0.1:9",
              **QUIET)
    assert not (tmp_path / "s").exists()
