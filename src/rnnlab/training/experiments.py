"""The experiments of Hochreiter & Schmidhuber (1997) as runnable settings, with the published
results (reference: ../shared/reference/lstm1997-benchmarks.md, §2–8). Each entry gives the task,
the paper's network (LSTM1997 options, output units), learning rate, stopping rule, test set and
the row of the paper's table it reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass

from .stopping import StopRule


@dataclass(frozen=True)
class Experiment:
    key: str
    table: str  # which of the paper's tables
    task: str
    task_params: dict
    blocks: int
    block_size: int
    lstm: dict  # LSTM1997 options beyond blocks (bias, squashers, init, gate biases)
    lr: float
    stop: StopRule
    paper_sequences: float  # mean training sequences to success
    paper_solved: str = "100 %"
    paper_test: str = ""  # what the paper reports on its test set
    output_bias: bool = True
    shortcut: bool = False
    test_size: int = 2560
    trials: int = 10  # the paper's number of trials
    inits_per_set: int = 10  # fixed-set protocols: trials that share one train/test pair
    notes: str = ""

    @property
    def mean_length(self) -> float:
        from .. import tasks

        return tasks.make(self.task, **self.task_params).mean_length

    @property
    def paper_cost(self) -> float:
        """The paper's mean sequences × mean length: sequence-steps to reproduce one row."""
        return self.paper_sequences * self.mean_length


_REBER = dict(bias=("in", "out"), init_range=0.2)
_2A = dict(output_gate=False, recurrent=False, bias=False, g="logistic", h="identity",
           init_range=0.2)
_ABS = dict(kind="test", n=10000, every=500)

EXPERIMENTS: dict[str, Experiment] = {e.key: e for e in [
    Experiment("1-4x1-lr0.1", "Table 1", "reber", {}, 4, 1,
               dict(_REBER, output_gate_bias=[-1, -2, -3, -4]), 0.1,
               StopRule(kind="fixed", every=1000), 39_740, output_bias=False, trials=30,
               paper_test="all 256 training and 256 test strings correct"),
    Experiment("1-3x2-lr0.1", "Table 1", "reber", {}, 3, 2,
               dict(_REBER, output_gate_bias=[-1, -2, -3]), 0.1,
               StopRule(kind="fixed", every=1000), 21_730, output_bias=False, trials=30),
    Experiment("1-3x2-lr0.5", "Table 1", "reber", {}, 3, 2,
               dict(_REBER, output_gate_bias=[-1, -2, -3]), 0.5,
               StopRule(kind="fixed", every=1000), 8_440, output_bias=False, trials=30),
    Experiment("2a-p100", "Table 2", "longlag-2a", {"p": 100}, 1, 1, _2A, 1.0,
               StopRule(beta=None, max_wrong=0, **_ABS), 5_040, output_bias=False,
               shortcut=True, trials=18, test_size=10000,
               notes="the cell is present from the start (the paper adds it once the error "
                     "stops falling)"),
    Experiment("2b-p100", "text, §5.2", "longlag-2b", {"p": 100}, 1, 1, _2A, 1.0,
               StopRule(beta=None, max_wrong=0, **_ABS), 5_680, output_bias=False,
               shortcut=True, trials=18, test_size=10000),
    Experiment("2c-q50-p50", "Table 3", "longlag-2c", {"p": 50, "q": 50}, 2, 1,
               dict(bias=False, init_range=0.2), 0.01, StopRule(max_wrong=0, **_ABS), 30_000,
               output_bias=False, trials=20, test_size=10000),
    Experiment("2c-q100-p100", "Table 3", "longlag-2c", {"p": 100, "q": 100}, 2, 1,
               dict(bias=False, init_range=0.2), 0.01, StopRule(max_wrong=0, **_ABS), 31_000,
               output_bias=False, trials=20, test_size=10000),
    Experiment("2c-q1000-p1000", "Table 3", "longlag-2c", {"p": 1000, "q": 1000}, 2, 1,
               dict(bias=False, init_range=0.2), 0.01, StopRule(max_wrong=0, **_ABS), 49_000,
               output_bias=False, trials=20, test_size=10000),
    Experiment("3a-T100-N3", "Table 4", "latch-3a", {"T": 100, "N": 3}, 3, 1,
               dict(input_gate_bias=[-1, -3, -5], output_gate_bias=[-2, -4, -6]), 1.0,
               StopRule(kind="test", n=256, every=250, max_wrong=0, beta=0.01), 39_850,
               output_bias=False, paper_test="0.000195 misclassified (ST2)"),
    Experiment("3a-T100-N1", "Table 4", "latch-3a", {"T": 100, "N": 1}, 3, 1,
               dict(input_gate_bias=[-1, -3, -5], output_gate_bias=[-2, -4, -6]), 1.0,
               StopRule(kind="test", n=256, every=250, max_wrong=0, beta=0.01), 64_330,
               output_bias=False, paper_test="0.000117 misclassified (ST2)"),
    Experiment("3b-T100-N3", "Table 5", "latch-3b", {"T": 100, "N": 3}, 3, 1,
               dict(input_gate_bias=[-1, -3, -5], output_gate_bias=[-2, -4, -6]), 1.0,
               StopRule(kind="test", n=256, every=250, max_wrong=5, beta=0.04), 43_250,
               output_bias=False, paper_test="0.00828 misclassified (ST2)"),
    Experiment("4-T100", "Table 7", "adding-1997", {"T": 100}, 2, 2,
               dict(input_gate_bias=[-3, -6]), 0.5, StopRule(window=2000, beta=0.01), 74_000,
               paper_test="1 wrong of 2560"),
    Experiment("4-T500", "Table 7", "adding-1997", {"T": 500}, 2, 2,
               dict(input_gate_bias=[-3, -6]), 0.5, StopRule(window=2000, beta=0.01), 209_000,
               paper_test="0 wrong of 2560"),
    Experiment("4-T1000", "Table 7", "adding-1997", {"T": 1000}, 2, 2,
               dict(input_gate_bias=[-3, -6]), 0.5, StopRule(window=2000, beta=0.01), 853_000,
               paper_test="1 wrong of 2560"),
    Experiment("5-T100-n140", "Table 8", "multiplication-1997", {"T": 100}, 2, 2, {}, 0.1,
               StopRule(window=2000, max_wrong=139), 482_000, paper_test="139 wrong of 2560"),
    Experiment("6a", "Table 9", "order-6a", {}, 2, 2, dict(input_gate_bias=[-2, -4]), 0.5,
               StopRule(window=2000, beta=0.1), 31_390, trials=20, paper_test="1 wrong of 2560"),
    Experiment("6b", "Table 9", "order-6b", {}, 3, 2, dict(input_gate_bias=[-2, -4, -6]), 0.1,
               StopRule(window=2000, beta=0.1), 571_100, paper_test="2 wrong of 2560"),
]}
