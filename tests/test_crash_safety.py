"""Run folders survive kill -9 at any instant.

Both trainers (the task trainer and the char-LM trainer) run in subprocesses that checkpoint
after every step and are killed with SIGKILL at random instants, then resumed, until they
finish. After every kill the folder must read cleanly (config, log, checkpoint: nothing
half-written); at the end the weights must equal those of a run that was never interrupted.
"""

import json
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from rnnlab.training.runs import RunDir, load_checkpoint

KILLS = 6  # per trainer: 12 instants in all

DRIVER = r"""
import sys
import torch
torch.set_num_threads(1)  # the same arithmetic in every process: comparable weights
kind, out, resume, text = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
if kind == "task":
    from rnnlab.training import make_config, train
    cfg = make_config("adding", task_params={"T": 10}, model="lstm", hidden=6,
                      model_options={"dropout": 0.0}, batch_size=16, max_sequences=16 * 150,
                      test_size=32, log_every=32, checkpoint_seconds=1e-9, seed=3)
    print("ready", flush=True)
    train(None if resume else cfg, out, resume=resume)
else:
    from rnnlab import lm
    cfg = lm.make_config(text, hidden=16, layers=1, embedding=8, dropout=0.0, lr=1e-2,
                         batch=4, seq_len=10, steps=120, val_every=40, log_every=10,
                         sample_length=20, checkpoint_seconds=1e-9)
    print("ready", flush=True)
    lm.train(cfg, out, resume=resume)
"""


def _start(driver, kind, out, resume, text):
    return subprocess.Popen([sys.executable, str(driver), kind, str(out), "1" if resume else "0",
                             str(text)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _check_folder(out: Path) -> None:
    """Whatever instant the kill hit, every file there reads cleanly."""
    run = RunDir(out)
    if (out / "config.json").exists():
        json.loads((out / "config.json").read_text())
        run.metrics()  # a torn last line is dropped, anything else would raise
    if (out / "checkpoint.safetensors").exists():
        load_checkpoint(out / "checkpoint.safetensors")


def _run_whole(driver, kind, out, text):
    proc = _start(driver, kind, out, False, text)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def _kill_and_resume(driver, kind, out, text, seed):
    rng, kills, resume = random.Random(seed), 0, False
    while True:
        proc = _start(driver, kind, out, resume, text)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        if kills < KILLS:
            time.sleep(rng.uniform(0.0, 1.5))
            if proc.poll() is None:
                proc.kill()  # SIGKILL: no handler runs
                proc.wait()
                proc.stdout.close()
                proc.stderr.close()
                kills += 1
                _check_folder(out)
                # a run killed before it wrote its config is started again, else resumed
                resume = (out / "config.json").exists()
                continue
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        return kills


@pytest.mark.parametrize("kind", ["task", "lm"])
def test_sigkill_at_random_instants_then_resume_gives_the_uninterrupted_weights(tmp_path, kind):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    text = tmp_path / "text.txt"
    words = "the cat sat on a mat and then it ran off to see a dog".split()
    text.write_text(" ".join(random.Random(0).choice(words) for _ in range(400)) + "\n")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    with ThreadPoolExecutor(2) as pool:  # the uninterrupted run beside the killed one
        plain = pool.submit(_run_whole, driver, kind, whole, text)
        kills = pool.submit(_kill_and_resume, driver, kind, cut, text, len(kind))
        plain.result()
        assert kills.result() == KILLS
    a, _ = load_checkpoint(whole / "checkpoint.safetensors")
    b, _ = load_checkpoint(cut / "checkpoint.safetensors")
    for name in a:
        if name.startswith("model."):
            assert torch.equal(a[name], b[name]), name
    assert json.loads((cut / "result.json").read_text())
    assert not list(cut.glob(".*.tmp"))  # a killed write's leftovers are cleaned on resume
    progress = "sequences" if kind == "task" else "step"
    logged = [m[progress] for m in RunDir(cut).metrics()]
    assert logged == sorted(logged)  # the log kept no record twice
    assert logged == [m[progress] for m in RunDir(whole).metrics()]


def test_a_torn_last_log_line_is_dropped_and_a_bad_line_elsewhere_names_the_file(tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"sequences": 16}\n{"sequences": 32}\n{"seq')
    assert run.metrics() == [{"sequences": 16}, {"sequences": 32}]
    run.truncate_metrics(100)  # what a resume does: the torn line is gone for good
    assert (tmp_path / "metrics.jsonl").read_text() == '{"sequences": 16}\n{"sequences": 32}\n'
    (tmp_path / "metrics.jsonl").write_text('{"sequences": 16}\n{"seq\n{"sequences": 48}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 2: not a JSON record"):
        run.metrics()


def test_only_the_writing_rank_tidies_the_folder_on_resume(tmp_path):
    """Under torchrun every rank reads the checkpoint, but only rank 0 may remove temporary
    files: another rank doing so removed rank 0's half-written metrics file (a flaky resume)."""
    run = RunDir(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    tmp = tmp_path / ".metrics.jsonl.abc.tmp"
    tmp.write_text("being written")
    assert run.resume_point(tidy=False) is None  # no checkpoint yet: starts over...
    assert tmp.exists() and (tmp_path / "metrics.jsonl").exists()  # ...touching nothing
    assert run.resume_point() is None
    assert not tmp.exists() and not (tmp_path / "metrics.jsonl").exists()


def test_resume_before_the_first_checkpoint_starts_over(tmp_path):
    from rnnlab.training import make_config, train

    cfg = make_config("adding", task_params={"T": 8}, model="lstm", hidden=4, batch_size=8,
                      max_sequences=32, test_size=16, log_every=8)
    RunDir(tmp_path / "run").create(cfg.to_json())  # as if killed right after writing its config
    (tmp_path / "run" / "metrics.jsonl").write_text('{"sequences": 8}\n{"sequ')
    (tmp_path / "run" / ".checkpoint.safetensors.x1.tmp").write_bytes(b"half")
    result = train(None, tmp_path / "run", resume=True)
    assert result["sequences"] == 32 or result["solved"]
    assert not list((tmp_path / "run").glob(".*.tmp"))
    assert [m["sequences"] for m in RunDir(tmp_path / "run").metrics()] == [8, 16, 24, 32]
