"""What the differentiable path costs: double backward and torch.func beside torch.nn.

    python -m benchmarks.transforms [--reps 7] [--threads 2]

A hand-written backward cannot be differentiated again nor traced by torch.func, so those
cases run the layer as ordinary torch ops (engine.autograd_layer). This prints, for a small
LSTM and GRU (batch 16, input 32, hidden 64, T = 50, 2 layers), the median time of

    backward     forward + plain backward (the hand-written BPTT)
    double       a gradient penalty: grad(create_graph=True) w.r.t. the input, then backward
    func.grad    torch.func.grad of the loss over the parameters (functional_call)

for rnnlab and torch.nn side by side, repetitions interleaved, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.func import functional_call, grad

import rnnlab

B, I, H, T, LAYERS = 16, 32, 64, 50, 2


def cases(module, x):
    params = {k: v.detach() for k, v in module.named_parameters()}

    def backward():
        module.zero_grad()
        module(x)[0].pow(2).sum().backward()

    def double():
        module.zero_grad()
        xx = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(module(xx)[0].pow(2).sum(), xx, create_graph=True)
        g.pow(2).sum().backward()

    def func_grad():
        grad(lambda p: functional_call(module, p, (x,))[0].pow(2).sum())(params)

    return {"backward": backward, "double": double, "func.grad": func_grad}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(T, B, I)
    print(f"B={B} I={I} H={H} T={T} layers={LAYERS}, float32, {args.threads} threads, "
          f"median of {args.reps} ms\n")
    print(f"{'model':6} {'case':10} {'rnnlab':>9} {'torch.nn':>9} {'ratio':>7}")
    for name, ours_cls, theirs_cls in (("LSTM", rnnlab.LSTM, torch.nn.LSTM),
                                       ("GRU", rnnlab.GRU, torch.nn.GRU)):
        ours = ours_cls(I, H, num_layers=LAYERS)
        theirs = theirs_cls(I, H, num_layers=LAYERS)
        theirs.load_state_dict(ours.state_dict())
        ours_cases, theirs_cases = cases(ours, x), cases(theirs, x)
        for case in ours_cases:
            times = {"ours": [], "theirs": []}
            for fn in (ours_cases[case], theirs_cases[case]):
                fn()  # warm-up
            for _ in range(args.reps):
                for key, fn in (("ours", ours_cases[case]), ("theirs", theirs_cases[case])):
                    t0 = time.perf_counter()
                    fn()
                    times[key].append(1000 * (time.perf_counter() - t0))
            a, b = statistics.median(times["ours"]), statistics.median(times["theirs"])
            print(f"{name:6} {case:10} {a:9.1f} {b:9.1f} {a / b:7.2f}")


if __name__ == "__main__":
    main()
