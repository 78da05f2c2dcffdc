"""Character-LM training-step speed: rnnlab's core against torch.nn's, side by side.

    python -m benchmarks.charlm [--reps 7]

One training step of `rnnlab.lm.CharLM` as `rnnlab lm train` takes it (forward over a chunk of
T steps × B streams, cross-entropy, backward, clipping, Adam), with the recurrent core from
rnnlab (compiled kernels, and the reference path: RNNLAB_KERNELS=0) or from torch.nn (the same
weights), float32, on this machine's threads. Medians of interleaved repetitions after
warm-up; chars/s = B·T / step time; ratio = rnnlab compiled / torch.nn (lower is faster).

--keep-pages: glibc's malloc keeps freed blocks mapped, so neither side pays page faults (by
default torch.nn's step faults thousands of pages at every step, rnnlab's, whose large buffers
come from its own pool, next to none): the compute alone.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from rnnlab.lm.model import CharLM

from .engine import keep_pages, medians, on_path

CONFIGS = [  # label, model, layers, hidden, dropout, batch, T
    ("default: 2×512 LSTM, dropout 0.3, T=50", "lstm", 2, 512, 0.3, 32, 50),
    ("2×512 LSTM, dropout 0.3, T=100", "lstm", 2, 512, 0.3, 32, 100),
    ("2×512 LSTM, no dropout, T=50", "lstm", 2, 512, 0.0, 32, 50),
    ("2×256 LSTM, T=50", "lstm", 2, 256, 0.0, 32, 50),
    ("2×512 GRU, dropout 0.3, T=50", "gru", 2, 512, 0.3, 32, 50),
]
VOCAB = 65


def train_step(model: CharLM, x, y):
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def step():
        logits, _ = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return step


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--keep-pages", action="store_true",
                        help="tune malloc so that no step pays page faults: compute alone")
    args = parser.parse_args(argv)
    if args.keep_pages:
        keep_pages()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of "
          f"{args.reps} training steps each, interleaved"
          f"{'; malloc keeps freed pages mapped' if args.keep_pages else ''}")
    print(f"{'config':40} {'compiled':>16} {'reference':>9} {'torch.nn':>16} {'ratio':>6}")
    for label, kind, layers, hidden, dropout, B, T in CONFIGS:
        torch.manual_seed(0)
        kw = dict(model=kind, layers=layers, hidden=hidden, embedding=64, dropout=dropout)
        ours, ref = CharLM(VOCAB, **kw), CharLM(VOCAB, **kw)
        theirs = CharLM(VOCAB, **kw, backend="torch")
        ref.load_state_dict(ours.state_dict())
        theirs.load_state_dict(ours.state_dict())
        x, y = torch.randint(0, VOCAB, (T, B)), torch.randint(0, VOCAB, (T, B))
        a, r, b = medians([on_path(train_step(ours, x, y), True),
                           on_path(train_step(ref, x, y), False), train_step(theirs, x, y)],
                          args.reps)
        print(f"{label:40} {a * 1e3:7.0f} ms {B * T / a:5.0f}/s {r * 1e3:6.0f} ms "
              f"{b * 1e3:7.0f} ms {B * T / b:5.0f}/s {a / b:6.2f}")

if __name__ == "__main__":
    main()
