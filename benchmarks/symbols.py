"""One-hot inputs read as symbols: the modern column's training step on the 1997 tasks.

    python -m benchmarks.symbols [--reps 5] [--threads 1]

The trainer feeds tasks with one-hot inputs as symbols (`Batch.inputs`), and the model's core
then projects each of the V input symbols once (`forward(ids, embedding=I)`) instead of each
of the T·B steps. This prints one training step (forward, error, backward) of the modern
LSTM the reproduction runs beside each row (32 units, batch 32) on task 2c, whose input
grows with p (p + 4 symbols), median ms of interleaved repetitions:

    symbols      rnnlab, the core reading symbols (what the trainer does)
    one-hot      rnnlab, the same model reading the dense one-hot x
    torch.nn     torch.nn.LSTM with the same weights, reading the dense one-hot x

and the ratios symbols / torch.nn and one-hot / symbols. One thread by default: the
reproduction runs one thread per worker.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnlab.tasks import make
from rnnlab.training.model import make_model

HIDDEN, BATCH = 32, 32
#: (p, q) of task 2c: the table's rows from the cheapest to the widest input
CASES = ((50, 50), (200, 200), (1000, 200), (500, 500), (1000, 1000))


def _torch_twin(model) -> torch.nn.LSTM:
    twin = torch.nn.LSTM(model.core.input_size, HIDDEN)
    twin.load_state_dict(model.core.state_dict())
    return twin


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"task 2c, modern LSTM {HIDDEN} units, batch {BATCH}, float32, {args.threads} "
          f"thread(s), median of {args.reps} training steps, ms\n")
    print(f"{'p':>5} {'q':>5} {'inputs':>6} {'symbols':>9} {'one-hot':>9} {'torch.nn':>9} "
          f"{'sym/torch':>9} {'dense/sym':>9}")
    for p, q in CASES:
        task = make("longlag-2c", p=p, q=q)
        ms = {k: 1e3 * statistics.median(v) for k, v in _time(task, args.reps).items()}
        print(f"{p:>5} {q:>5} {task.input_size:>6} {ms['symbols']:>9.1f} {ms['one-hot']:>9.1f} "
              f"{ms['torch.nn']:>9.1f} {ms['symbols'] / ms['torch.nn']:>9.2f} "
              f"{ms['one-hot'] / ms['symbols']:>9.1f}")


def _time(task, reps: int) -> dict[str, list[float]]:
    """Seconds of each case's training step, ``reps`` interleaved repetitions."""
    torch.manual_seed(0)
    model = make_model(task, "lstm", HIDDEN)
    twin = _torch_twin(model)
    batch = task.sample(BATCH, torch.Generator().manual_seed(1))
    x = batch.x  # built once, outside the timing, for both dense cases

    def ours(inputs):
        model.zero_grad()
        task.error(model(inputs, batch.lengths), batch).mean().backward()

    def theirs():
        twin.zero_grad()
        h, _ = twin(x)
        task.error(torch.sigmoid(model.readout(h)), batch).mean().backward()

    cases = {"symbols": lambda: ours(batch.symbols), "one-hot": lambda: ours(x),
             "torch.nn": theirs}
    times = {k: [] for k in cases}
    for f in cases.values():
        f()  # warm-up
    for _ in range(reps):
        for k, f in cases.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return times

if __name__ == "__main__":
    main()
