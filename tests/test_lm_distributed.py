"""Char-LM training under torchrun (real processes, gloo): two processes sharing the streams
take the steps one process takes with the same global batch; rank 0 alone writes; a rank
killed mid-run leaves a checkpoint the next torchrun resumes from, exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TORCHRUN = str(Path(sys.executable).parent / "torchrun")
COMMON = ["--batch", "4", "--seq-len", "20", "--hidden", "32", "--layers", "2", "--embedding",
          "16", "--dropout", "0", "--log-every", "1", "--val-every", "10", "--sample-length",
          "20"]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    import random

    rng = random.Random(0)
    words = ["the", "carousel", "keeps", "error", "constant", "gate", "opens", "shuts", "cell"]
    path = tmp_path_factory.mktemp("lm") / "tiny.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(6000)) + "\n")
    return path


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "train_nats" in r]


def _torchrun(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "rnnlab",
                           "lm", "train", *args], capture_output=True, text=True, timeout=300,
                          **kw)


def _alone(text: Path, out: Path, steps: int) -> list[dict]:
    run = subprocess.run([sys.executable, "-m", "rnnlab", "lm", "train", str(text), *COMMON,
                          "--steps", str(steps), "--out", str(out)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return _records(out)


def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(text, tmp_path):
    alone = _alone(text, tmp_path / "alone", 20)
    run = _torchrun([str(text), *COMMON, "--steps", "20", "--out", str(tmp_path / "ddp")])
    assert run.returncode == 0, run.stdout + run.stderr
    shared = _records(tmp_path / "ddp")
    assert [r["step"] for r in shared] == list(range(1, 21))  # one line per step: rank 0's
    for a, b in zip(alone, shared):
        assert b["train_nats"] == pytest.approx(a["train_nats"], rel=1e-4)
    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert result["processes"] == 2 and result["steps"] == 20
    assert run.stdout.count("run folder:") == 1  # rank 0 alone speaks


def test_a_killed_rank_ends_the_job_and_the_run_resumes_from_its_checkpoint(text, tmp_path):
    out = tmp_path / "ddp"
    args = [str(text), *COMMON, "--steps", "60", "--checkpoint-seconds", "1e-6", "--out",
            str(out)]
    proc = subprocess.Popen([TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "rnnlab",
                             "lm", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (
            (out / "metrics.jsonl").exists() and len(_records(out)) >= 8):
        time.sleep(0.05)
    victim = None
    for pid in subprocess.run(["pgrep", "-f", "--", f"--out {out}"], capture_output=True,
                              text=True).stdout.split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"RANK=1" in environ and int(pid) != proc.pid:
            victim = int(pid)
    assert victim is not None, "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    text_out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, text_out
    done = len(_records(out))
    assert 8 <= done < 60 and not (out / "result.json").exists()
    again = _torchrun(["--resume", str(out)])
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = _records(out)
    assert [r["step"] for r in resumed] == list(range(1, 61))
    alone = _alone(text, tmp_path / "alone", 60)
    for a, b in zip(alone, resumed):
        assert b["train_nats"] == pytest.approx(a["train_nats"], rel=1e-4)


def test_under_torchrun_a_run_folder_must_be_named_and_the_batch_shared(text, tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0"}
    run = subprocess.run([sys.executable, "-m", "rnnlab", "lm", "train", str(text), "--steps",
                          "1"], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 2 and "under torchrun give --out RUN" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    run = _torchrun([str(text), *COMMON[2:], "--batch", "3", "--steps", "2", "--out",
                     str(tmp_path / "odd")])
    assert run.returncode != 0
    assert "--batch (3) must be a multiple of the number of processes (2)" in run.stderr
