"""Engine speed: rnnlab against torch.nn, side by side in one process.

    python -m benchmarks.engine [--reps 5]

Forward + backward of the summed output, float32, torch.set_num_threads(2), median of
``--reps`` (7) repetitions after three warm-up runs, rnnlab's and the baseline's repetitions
interleaved, for three regimes. Rows:

  LSTM      rnnlab.LSTM vs torch.nn.LSTM (on CPU torch runs oneDNN's fused LSTM kernel)
  LSTM*     the same, torch with oneDNN switched off (its own per-step implementation)
  GRU       rnnlab.GRU vs torch.nn.GRU
  peephole  rnnlab.LSTM(peephole=True) vs a naive per-step autograd loop of the same math
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import rnnlab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import naive  # noqa: E402  (the per-step autograd oracle of the tests)

REGIMES = [  # name, batch, input, hidden, T
    ("paper (tiny net, long lag)", 128, 2, 16, 1000),
    ("char-LM", 64, 64, 256, 100),
    ("large", 64, 512, 512, 100),
]


def side_by_side(ours, baseline, reps: int) -> tuple[float, float]:
    """Median seconds of each, warmed up, the repetitions interleaved (ours, baseline, ours,
    ...) so that both see the same state of a shared machine."""
    for _ in range(3):
        ours()
        baseline()
    times: tuple[list, list] = ([], [])
    for _ in range(reps):
        for fn, acc in zip((ours, baseline), times):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def fwd_bwd(module, x):
    def run():
        out, _ = module(x)
        out.sum().backward()
    return run


def naive_peephole(module, x):
    params = naive.module_params(module, 1, False)[0]
    T, B, _ = x.shape
    H = module.hidden_size

    def run():
        state = (x.new_zeros(B, H), x.new_zeros(B, H))
        outs = []
        for t in range(T):
            state = naive.lstm_step(params, x[t], state, peephole=True)
            outs.append(state[0])
        torch.stack(outs).sum().backward()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
          f"forward+backward, median of {args.reps}, interleaved\n")
    header = f"{'regime':28} {'row':9} {'rnnlab ms':>10} {'baseline ms':>12} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name, B, I, H, T in REGIMES:
        x = torch.randn(T, B, I, requires_grad=True)
        ours_lstm, ref_lstm = rnnlab.LSTM(I, H), torch.nn.LSTM(I, H)
        ours_lstm.load_state_dict(ref_lstm.state_dict())
        ours_gru, ref_gru = rnnlab.GRU(I, H), torch.nn.GRU(I, H)
        peep = rnnlab.LSTM(I, H, peephole=True)
        rows = [("LSTM", *side_by_side(fwd_bwd(ours_lstm, x), fwd_bwd(ref_lstm, x), args.reps))]
        with torch.backends.mkldnn.flags(enabled=False):
            rows.append(("LSTM*", *side_by_side(fwd_bwd(ours_lstm, x), fwd_bwd(ref_lstm, x),
                                                args.reps)))
        rows.append(("GRU", *side_by_side(fwd_bwd(ours_gru, x), fwd_bwd(ref_gru, x), args.reps)))
        rows.append(("peephole", *side_by_side(fwd_bwd(peep, x), naive_peephole(peep, x),
                                               max(3, args.reps // 2))))
        for row, ours, base in rows:
            print(f"{name:28} {row:9} {ours * 1e3:10.1f} {base * 1e3:12.1f} {ours / base:7.2f}")
            name = ""
    print("\nratio = rnnlab / baseline (lower is faster); for 'peephole' 1/ratio is the speed-up "
          "over the naive autograd loop")


if __name__ == "__main__":
    main()
