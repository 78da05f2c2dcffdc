"""The demo: an LSTM and a tanh RNN learn a toy long-lag problem; watch the losses fall.

The toy is the adding problem (Le et al. / Arjovsky et al. form): two channels of length T,
values U[0, 1] and a marker that is 1 at one step of each half; the target at the end is the
sum of the two marked values. Predicting 1 always scores MSE 1/6 ≈ 0.167; beating that needs
memory across the lag.
"""

from __future__ import annotations

import time

import torch
from torch import nn

import rnnlab


def adding_batch(batch: int, T: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    values = torch.rand(T, batch, generator=generator)
    half = T // 2
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, T, (batch,), generator=generator)
    marker = torch.zeros(T, batch)
    rows = torch.arange(batch)
    marker[first, rows] = 1.0
    marker[second, rows] = 1.0
    x = torch.stack((values, marker), dim=-1)  # (T, B, 2)
    y = values[first, rows] + values[second, rows]
    return x, y


class Regressor(nn.Module):
    def __init__(self, core: nn.Module, hidden: int):
        super().__init__()
        self.core, self.readout = core, nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.core(x)
        return self.readout(out[-1]).squeeze(-1)


def main(T: int = 50, steps: int = 1000, batch: int = 64, hidden: int = 32, seed: int = 0) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    models = {
        "rnnlab.LSTM": Regressor(rnnlab.LSTM(2, hidden), hidden),
        "rnnlab.RNN (tanh)": Regressor(rnnlab.RNN(2, hidden), hidden),
    }
    optims = {k: torch.optim.Adam(m.parameters(), lr=1e-2) for k, m in models.items()}
    gen = torch.Generator().manual_seed(seed)
    test_x, test_y = adding_batch(1000, T, torch.Generator().manual_seed(seed + 1))
    print(f"adding problem, T = {T}: MSE of always predicting 1 is {1 / 6:.3f}\n")
    print(f"{'step':>5} {'sequences':>10} " + " ".join(f"{k:>18}" for k in models))
    start = time.perf_counter()
    for step in range(1, steps + 1):
        x, y = adding_batch(batch, T, gen)
        for name, model in models.items():
            loss = nn.functional.mse_loss(model(x), y)
            optims[name].zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optims[name].step()
        if step % 100 == 0 or step == 1:
            with torch.no_grad():
                tests = [nn.functional.mse_loss(m(test_x), test_y).item() for m in models.values()]
            print(f"{step:5d} {step * batch:10d} " + " ".join(f"{v:18.4f}" for v in tests))
    print(f"\ntest MSE on 1000 fresh sequences; {time.perf_counter() - start:.0f} s on "
          f"{torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
