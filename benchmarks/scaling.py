"""Scaling out: the same reproduction on the local pool (1 and 2 workers) and on a local Dask
cluster (2 worker processes, one thread each); char-LM training in 1 and 2 processes.

    python -m benchmarks.scaling [--rows 2c-q50-p50,4-T100] [--trials 3] [--reps 1]
                                 [--text ../shared/corpora/shakespeare.txt] [--lm-steps 60]

Each engine runs `rnnlab reproduce ROWS --trials N` into a fresh folder; the table gives the
median wall-clock of ``--reps`` runs (engines interleaved, so all see the same machine), the
ratio to the local pool of 2, and whether the rows' numbers are identical across engines (they
must be: a shard's result does not depend on where it ran). The Dask cluster is started once,
before the timings (its start-up is printed separately).

Then `rnnlab lm train` (2×256 LSTM, 32 streams of 50 steps, dropout 0.3) for ``--lm-steps``
steps: one process with one thread, one process with two, and `torchrun --nproc-per-node 2`
(one thread each, the streams shared); chars/s as the run's result.json states it (training
steps only is not separated: validation is off, checkpoints are rare).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnnlab.training import reproduce as rp

#: the environment as this process found it: Dask's LocalCluster sets OMP/MKL/OPENBLAS thread
#: counts to 1 in its parent's environment, which the char-LM runs must not inherit
CLEAN_ENV = dict(os.environ)


def _numbers(rows: list[dict]) -> list:
    return [(r["experiment"], r["solved"], r["trial_sequences"], r["test_wrong"],
             r["modern"]["solved"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2c-q50-p50,4-T100")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--text", default=str(Path(__file__).resolve().parents[2] / "shared"
                                              / "corpora" / "shakespeare.txt"))
    parser.add_argument("--lm-steps", type=int, default=60)
    args = parser.parse_args()
    rows = args.rows.split(",")
    from distributed import LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    print(f"local Dask cluster of 2 workers started in {time.perf_counter() - t0:.1f} s "
          f"({cluster.scheduler_address})")
    engines = {"local pool, 1 worker": dict(jobs=1), "local pool, 2 workers": dict(jobs=2),
               "Dask, 2 workers": dict(cluster=cluster.scheduler_address)}
    times: dict[str, list[float]] = {name: [] for name in engines}
    results: dict[str, list] = {}
    try:
        for _ in range(args.reps):
            for name, engine in engines.items():
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    out = rp.reproduce(rows, out=Path(tmp) / "rep", trials=args.trials,
                                       echo=lambda *a: None, progress=False, **engine)
                    times[name].append(time.perf_counter() - t0)
                    results[name] = _numbers(out)
    finally:
        cluster.close()
    base = statistics.median(times["local pool, 2 workers"])
    print(f"\nrnnlab reproduce {' '.join(rows)} --trials {args.trials} (median of {args.reps})")
    print(f"{'engine':24} {'wall-clock s':>12} {'vs local pool of 2':>18}")
    for name, ts in times.items():
        print(f"{name:24} {statistics.median(ts):12.1f} {statistics.median(ts) / base:17.2f}×")
    same = all(r == results["local pool, 2 workers"] for r in results.values())
    print(f"\nthe rows' numbers (solved, every trial's sequences, test errors) identical across "
          f"engines: {same}")
    if Path(args.text).is_file():
        lm(args.text, args.lm_steps)
    else:
        print(f"\n(no text at {args.text}: the char-LM part is skipped)")


def lm(text: str, steps: int) -> None:
    """chars/s of `rnnlab lm train` in one process (1 and 2 threads) and under torchrun."""
    bin_dir = Path(sys.executable).parent
    train = ["-m", "rnnlab", "lm", "train", text, "--hidden", "256", "--layers", "2",
             "--batch", "32", "--seq-len", "50", "--steps", str(steps), "--val-every",
             str(10 * steps), "--sample-length", "10"]
    setups = {"1 process, 1 thread": ([sys.executable], "1"),
              "1 process, 2 threads": ([sys.executable], "2"),
              "torchrun, 2 processes × 1 thread": (
                  [str(bin_dir / "torchrun"), "--standalone", "--nproc-per-node", "2"], "1")}
    print(f"\nrnnlab lm train: 2×256 LSTM, batch 32 × 50, {steps} steps")
    print(f"{'setup':34} {'chars/s':>9}")
    for name, (launcher, threads) in setups.items():
        with tempfile.TemporaryDirectory() as tmp:
            env = {**CLEAN_ENV, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
            subprocess.run(launcher + train + ["--out", f"{tmp}/run"], env=env, check=True,
                           capture_output=True)
            result = json.loads(Path(f"{tmp}/run/result.json").read_text())
        print(f"{name:34} {result['chars_per_s']:9,}")


if __name__ == "__main__":
    main()
