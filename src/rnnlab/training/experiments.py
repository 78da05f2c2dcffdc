"""The experiments of Hochreiter & Schmidhuber (1997) as runnable settings, with the published
results (reference: ../shared/reference/lstm1997-benchmarks.md, §2–8). Each entry gives the task,
the paper's network (LSTM1997 options, output units), learning rate, stopping rule, test set and
the row of the paper's table it reproduces.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .. import _checks as ck
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
    update: str = "step"  # weights change at every target ("step") or once per sequence
    #: the paper's sequential construction (§4; exps. 2a, 2b): a trial trains without its
    #: memory cell blocks until its error stops falling, then they are added
    sequential: bool = False
    #: its plateau rule: the blocks are added once the mean error of the last ``plateau``
    #: sequences is less than ``gain`` (a fraction) below that of the ``plateau`` before
    plateau: int = 500
    gain: float = 0.2
    error: str = "squared"  # the output units' error: ½ (y − t)² or "cross-entropy"
    output: str = "logistic"  # the output units' activation, or "linear" (squared error)
    #: options (`OPTIONS`) that a run applies by default on top of the settings above: the
    #: set-up found by experiment where the paper's text, as we read it, does not reproduce
    #: the row (`notes` says what was tried); ``as_read`` runs leave them out
    setup: dict = field(default_factory=dict)
    notes: str = ""

    @property
    def mean_length(self) -> float:
        from .. import tasks

        return tasks.make(self.task, **self.task_params).mean_length

    @property
    def paper_cost(self) -> float:
        """The paper's mean sequences × mean length: sequence-steps to reproduce one row."""
        return self.paper_sequences * self.mean_length


_REBER = dict(bias=("in", "out"), init_range=0.2)  # only the gates are biased
_2A = dict(output_gate=False, recurrent=False, bias=False, g="logistic", h="identity",
           init_range=0.2)
_2C = dict(bias=False, init_range=0.2)
_LATCH = dict(input_gate_bias=[-1, -3, -5], output_gate_bias=[-2, -4, -6])
# ABS(β) on fresh test sequences, checked every 100 training sequences once the 100 most
# recent were all correct
_ABS = dict(kind="test", n=10000, every=100)


_REBER_NOTES = (
    "Misses as read: most trials do not learn even the inner grammar. 8 trials of "
    "1-3x2-lr0.5 run to 200,000 sequences (24× the paper's mean) solve 0/8; checked on "
    "their final weights, 5 of the 8 make most of their errors inside the inner Reber string "
    "(3–8 steps before the end), 3 at the embedded T/P (the step before the last). Tried on "
    "8–16 trials of 1-3x2-lr0.5 within 3× the paper's mean, one change at a time: all "
    "possible next symbols as targets (task_params.targets=possible) 1/8; update=sequence "
    "0/6, with lr 2.0 0/8; lr 0.25 or 1.0 0/8; error=cross-entropy 0/8, with targets=possible "
    "0/8; the Table 10 legend's squashers (lstm.g=h1, lstm.h=g2) 2/8, with lr 0.2 1/8; "
    "initial weights ±0.1 0/8; the reading of the criterion \"the most active unit is a "
    "possible next symbol\" (task_params.criterion=top) 0/8, with targets=possible 1/8; "
    "output-gate biases −2, −4, −6 1/8, 0 1/16, +1 1/16; input-gate biases −1 0/8, −1, −2, "
    "−3 0/8, +1 1/16, +2 (output-gate bias 0) 1/16; no gate activations among the units' "
    "sources (lstm.gate_recurrence=false) 0/16. Changes that add weights beyond the "
    "paper's count: biased cells (lstm.bias=true) 0/16, output_bias=true 3/8; with "
    "shortcut=true (the outputs also see the input, 49 weights) "
    "most failed trials get exactly the strings of one embedded symbol wrong (274 or 283 of "
    "512: the inner grammar learned, the T/P a constant guess): 16 trials, "
    "11/16 at 1.98×; with output-gate biases −1 10/16 at 1.53×, −0.5 4/16, 0 5/16, −2, −4, "
    "−6 0/16; input-gate bias +1 8/16, −1 3/16; targets=possible 5/16; output_bias=true as "
    "well 6/16; at lr 0.1 6/16 (0.98×); 4x1 at lr 0.5 6/16 (1.04×). A modern LSTM learns "
    "the same strings, so generator and criterion hold. Sweeps on the paper's network "
    "(2026-12-07, 10 trials a point, `rnnlab sweep ROW --trials 10 --grid "
    "output=logistic,linear --grid lstm.init_range=0.2,0.5,1.0`): no point of any of the five "
    "rows solves more than 3/10 — 4x1 at lr 0.1 and 0.5 0/10 at every point, 3x2 at lr 0.1 at "
    "best 3/10 (init ±0.5, 0.97×; a linear output unit 0–3/10), at lr 0.2 2/10, at lr 0.5 "
    "2/10; for 1-3x2-lr0.5 also init ±0.5, ±1.0 × lr 0.5, 1, 2 × targets next, possible × "
    "squared error, cross-entropy (24 points): at most 2/10, cross-entropy 0/10 at every "
    "point.")
_2AB_NOTES = (
    "Misses: with or without sequential construction (sequential=false: 0/6) every test "
    "sequence ends wrong. The construction works as described (the cell is added once the "
    "error on the predictable steps stops falling, after about 2,500 sequences), but the "
    "added cell never carries the first symbol to the end. Why, seen in the weights of 6 "
    "trials after 15,120 sequences: with the paper's squared error the x and y output units "
    "both sit at 0 at the last step, on the logistic's flat spot (f' ≈ 0), so the class "
    "error hardly reaches the cell. With error=cross-entropy (no flat spot; 0/6 for 2a, 0/6 "
    "for 2b) they sit at the guess 0.5 instead: the cell's state (h the identity, fed by a "
    "logistic g > 0) grows at every step, the outputs' weights from it all go to about −6.5, "
    "alike for x and y, and the errors of the 100 steps in between, carried back along the "
    "carousel to the first step, drive the input-gate and cell-input weights from x and y "
    "negative (one symbol's to −1…−10, the other's to −30…−140): neither gets into the cell "
    "(its share of the state < 0.001), which is kept as a clock. A negative input-gate bias "
    "(the paper's drift remedy; 2a has no biases: lstm.bias=[in], lstm.input_gate_bias) keeps "
    "the clock small: with error=cross-entropy, bias −3, −4, −6 or −8, 2–3 of 6 trials solve "
    "2a at 2.4–2.7× (squared error, −3 or −6: 0/6; 2b at −6 with cross-entropy: 0/6). In "
    "the weights at −6: the solved trials open the gate for one of x and y (weight +13…+15) "
    "and give the x and y units opposite weights from the cell; in the others the gate's "
    "weights from x and y stay below 1 while the errors of the steps in between drive its "
    "bias from −6 to −9…−14 and every output unit's weight from the cell negative (the cell "
    "serves them as a negative bias: abuse). Adding the cell later (the plateau rule at 1 % "
    "over 1,000 sequences instead of 20 % over 500) 2/6; with lr 2 or 4 as well 1/6, 4/6 "
    "(2.0×); with an output bias (output_bias=true) 0/6; an output bias instead of the gate "
    "bias 2/6.")
_2C_NOTES = (
    "Set-up found: both of the paper's §4 remedies — a negative input-gate bias (−3, against "
    "state drift) and a negative output-gate bias (−2, against abuse), one bias weight per "
    "gate beyond the paper's count — and lr 0.5 for the paper's 0.01. As read, q = p = 50 "
    "solves 10/20 at 2.02× and every larger lag 0/20. Why (seen in `rnnlab report`'s "
    "carousel plot of a q = p = 100 trial after 40,000 sequences): the gates stay at 0.5 and "
    "a cell state drifts steadily to |s| ≈ 12 within the sequence — the gate activations "
    "fed back with random weights give the cell input a constant part — so h saturates, "
    "h'(s) ≈ 0, and no error reaches the cells. The input-gate bias alone stops the drift "
    "(|s| < 0.7); with lr 0.5 it solved q ≤ 200 (20/20 each, 0.18–0.97×) but q = 500 only "
    "2/20 and q = 1000 0–5/20 of each row: the input gates never opened for the key, drowned "
    "by a thousand steps of distractors (biases −2…−5, lr 0.1–1.0: 0/4). The output-gate "
    "bias (the remedy the paper gives for abuse, and uses for Reber and 3a–3c) solves every "
    "row: 4 trials each, q = p = 50 4/4 at 0.34×, 500 4/4 at 0.56× (bias −1: 0.98×, −3: "
    "0.77×), 1000 4/4 at 1.13×, q = 1000 with p = 200 0.79×, p = 50 0.41×. The learning "
    "rate stays: with both biases lr 0.1 solves 3/4 at q = p = 100 (2.2×), lr 0.01 0/4; the "
    "output-gate bias alone (no input-gate bias) 0/4 at lr 0.01, 1/4 at lr 0.1. Earlier "
    "tries on q = p = 100 (6 trials each): lr 0.005/0.02, error=cross-entropy, the legend's "
    "squashers, each 0–1/6.")
# the found set-ups' common remedy for state drift: biases on the gates only, none on the cell
# inputs (whose bias the open input gates let into the carousel at every step)
_NO_CELL_BIAS = {"bias": ["in", "out"]}
_2C_SETUP = {"lr": 0.5, "lstm": {**_NO_CELL_BIAS, "input_gate_bias": -3, "output_gate_bias": -2}}
_ADDING_NOTES = (
    "Set-up found: error=cross-entropy at the output unit (δ = y − t), and against state "
    "drift no cell-input bias with the output-gate biases −2, −4 of the paper's §4 "
    "(lstm.bias=[in, out], lstm.output_gate_bias=[-2, -4]; 89 weights for the paper's 93). "
    "As read (squared error, --as-read) the nets reach 1–20 wrong of 2560 but never 2,000 "
    "correct sequences in a row within 3× the paper's budget (T = 100: 0/10; lr 0.25, 1.0, "
    "float64: 0/6). Cross-entropy alone solved T = 100 (10/10 at 1.43×) but T = 500 0/10 "
    "and T = 1000 2/10 at 2.43×: the trials sat at the constant answer (MSE ≈ 0.04; the "
    "output unit's weights from the cells ≈ 0, the cell states ≈ 0.01) for hundreds of "
    "thousands of sequences and left it abruptly (two T = 500 trials at about 550,000 and "
    "600,000). Measured at initialisation, the constant part of the cell inputs — the "
    "cell-input bias and the output gates' activations (≈ 0.5) fed back through random "
    "weights — accumulates over the sequence (mean end |s| 0.75 at T = 500, 1.4 at T = "
    "1000) and swamps the two marked values. Taking both away cuts it tenfold (0.07, "
    "0.15; tests/test_paper.py) and T = 500 solves 8/8 at 0.55× in exploration; no gate "
    "recurrence instead of the output-gate biases 8/8 at 0.71× (36 weights fewer). Either "
    "change alone does not do it at T = 500 (8 or 16 trials): no cell-input bias 0/16 "
    "within the paper's mean; output-gate biases −2, −4 2/4 at 2.4×, with lr 1.0 0/16 "
    "after 190,000; no gate recurrence 0/8; lr 1.0 or 2.0 0/8 (2× budget); input-gate "
    "biases −1, −2 1/16 at 2.77×. A linear output unit (output=linear, the squared error "
    "kept) in place of cross-entropy: alone T = 500 0/10 within 3× the paper's mean (the "
    "drift stops it as it stops cross-entropy alone); with the two drift changes T = 500 "
    "10/10 at 0.52× and T = 1000 10/10 at 0.30× — as good as cross-entropy with them (0.47×, "
    "0.23×), so either output change will do.")
_LATCH_1000_NOTES = (
    "Set-up found: no bias on the cell inputs (lstm.bias=[in, out], 3 weights fewer than "
    "the paper's 102), which removes the drift described below; 8 trials in exploration: 7/8 "
    "solved within 406,000 sequences (the paper's mean 485,080). As read: "
    "from the first sequences to the budget (3× the paper's mean, 1.46 million "
    "sequences) every trial's output sits at the constant answer (error 0.25 per sequence, "
    "none correct); the same network and rule solve 3b at T = 100 at 0.3–0.5× the paper's "
    "mean. Measured at initialisation: by the end of a T = 1000 sequence the cell states reach "
    "|s| ≈ 8 on average and up to 20 (T = 100: 0.4, at most 1): the cell-input bias, let "
    "through by the first block's input gate (bias −1: open 27 %), accumulates over 1,000 "
    "steps, h(s) saturates and h'(s) ≈ 0 stops the error at the cells — the state drift the "
    "gate biases are meant to prevent. 3a at T = 1000 starts the same way and escapes after "
    "0.3–1.1 million sequences; 3b, whose single informative input is itself noisy, did "
    "not within the budget. Stronger input-gate biases (−3, −5, −7) leave every trial at the "
    "constant answer too (0/4 within the paper's mean); removing the bias that drifts is "
    "what works. With the set-up at initialisation the mean end state is |s| ≈ 1.4 (as "
    "read 5.7, 6 initialisations).")
_ADDING_T100_NOTES = (
    "Set-up found: a linear output unit (output=linear: y = net, δ = y − t; the paper's "
    "squared error and its 93 weights kept), one change. An implementation of the rule "
    "written independently of rnnlab found it: as read, every wrong test sequence has a "
    "target within 0.1 of 0 or 1, where the logistic output unit falls about 0.06 short "
    "(10/10 at 1.14× there with the linear unit; 10/10 at 1.13× here). Alternatives measured:"
    " the longer rows' set-up (cross-entropy, no cell-input bias, "
    "output-gate biases −2, −4; three changes, 89 weights) 10/10 at 0.91×; cross-entropy "
    "alone 10/10 at 1.43×. " + _ADDING_NOTES.replace("Set-up found:", "For T = 500 and 1000 "
                                                     "the set-up found is", 1))
_MULT_NOTES = (
    "As read, both rows reproduce on the table's 10 trials: n_seq 140 10/10 at 1.61×, "
    "n_seq 13 8/10 at 1.38× (2026-12-07), so the row needs no set-up (an earlier exploration "
    "read n_seq 13 as 6/10 at 2.0× and took cross-entropy as the set-up). Measured on the "
    "same 10 trials, cross-entropy gives 9/10 at 0.68× (n_seq 140) and "
    "10/10 at 0.83× (n_seq 13), a linear output unit (output=linear, the squared error "
    "kept) 10/10 at 1.09× and 10/10 at 1.40×: each makes it faster, neither is needed.")


def _reber(blocks: int, size: int, lr: float, paper: float, solved: str = "100 %"):
    return Experiment(
        f"1-{blocks}x{size}-lr{lr}", "Table 1", "reber", {}, blocks, size,
        dict(_REBER, output_gate_bias=[-(k + 1) for k in range(blocks)]), lr,
        StopRule(kind="fixed", every=100), paper, paper_solved=solved, output_bias=False,
        trials=30, paper_test="all 256 training and 256 test strings correct",
        notes=_REBER_NOTES)


def _2c(q: int, p: int, paper: float):
    return Experiment(f"2c-q{q}-p{p}", "Table 3", "longlag-2c", {"p": p, "q": q}, 2, 1, _2C,
                      0.01, StopRule(beta=None, max_wrong=0, **_ABS), paper,
                      output_bias=False, trials=20, test_size=10000,
                      paper_test="ABS(0.2) on 10,000 sequences", setup=_2C_SETUP,
                      notes=_2C_NOTES)


def _latch(task: str, T: int, N: int, paper: float, stop: StopRule, lr: float, test: str,
           **found):
    table = {"latch-3a": "Table 4", "latch-3b": "Table 5", "latch-3c": "Table 6"}[task]
    return Experiment(f"{task[-2:]}-T{T}-N{N}", table, task, {"T": T, "N": N}, 3, 1, _LATCH,
                      lr, stop, paper, output_bias=False, paper_test=test, **found)


_ST2_3A = StopRule(kind="test", n=256, every=100, max_wrong=0, beta=0.01)
_ST2_3B = StopRule(kind="test", n=256, every=100, max_wrong=5, beta=0.04)
_ST_3C = StopRule(kind="test", n=256, every=100, max_wrong=0, beta=0.015)
_ST3 = dict(window=2000)
_CE = {"error": "cross-entropy"}
# adding: cross-entropy, and against the state drift no cell-input bias and the paper's §4
# output-gate biases (they shrink the gate activations the cells see); the notes say why
_ADDING = dict(setup={**_CE, "lstm": {**_NO_CELL_BIAS, "output_gate_bias": [-2, -4]}},
               notes=_ADDING_NOTES)
# adding at T = 100: a linear output unit is all it needs (the notes compare the others)
_ADDING_T100 = dict(setup={"output": "linear"}, notes=_ADDING_T100_NOTES)
_MULT = dict(notes=_MULT_NOTES)  # as read
# 3b at T = 1000: no cell-input bias, the source of the drift (the notes say how it was found)
_LATCH_1000 = dict(setup={"lstm": dict(_NO_CELL_BIAS)}, notes=_LATCH_1000_NOTES)

EXPERIMENTS: dict[str, Experiment] = {e.key: e for e in [
    _reber(4, 1, 0.1, 39_740),
    _reber(3, 2, 0.1, 21_730),
    _reber(3, 2, 0.2, 14_060, "97 %"),
    _reber(4, 1, 0.5, 9_500, "97 %"),
    _reber(3, 2, 0.5, 8_440),
    Experiment("2a-p100", "Table 2", "longlag-2a", {"p": 100}, 1, 1, _2A, 1.0,
               StopRule(beta=None, max_wrong=0, **_ABS), 5_040, output_bias=False,
               shortcut=True, trials=18, test_size=10000,
               paper_test="max |error| < 0.25 on 10,000 sequences",
               sequential=True, notes=_2AB_NOTES),
    Experiment("2b-p100", "text, §5.2", "longlag-2b", {"p": 100}, 1, 1, _2A, 1.0,
               StopRule(beta=None, max_wrong=0, **_ABS), 5_680, output_bias=False,
               shortcut=True, trials=18, test_size=10000,
               paper_test="max |error| < 0.25 at the end, 10,000 sequences",
               sequential=True, notes=_2AB_NOTES),
    _2c(50, 50, 30_000),
    _2c(100, 100, 31_000),
    _2c(200, 200, 33_000),
    _2c(500, 500, 38_000),
    _2c(1000, 1000, 49_000),
    _2c(1000, 500, 49_000),
    _2c(1000, 200, 75_000),
    _2c(1000, 100, 135_000),
    _2c(1000, 50, 203_000),
    _latch("latch-3a", 100, 3, 39_850, _ST2_3A, 1.0, "0.000195 misclassified (ST2)"),
    _latch("latch-3a", 100, 1, 64_330, _ST2_3A, 1.0, "0.000117 misclassified (ST2)"),
    _latch("latch-3a", 1000, 3, 452_460, _ST2_3A, 1.0, "0.000078 misclassified (ST2)"),
    _latch("latch-3b", 100, 3, 43_250, _ST2_3B, 1.0, "0.00828 misclassified (ST2)"),
    _latch("latch-3b", 100, 1, 78_430, _ST2_3B, 1.0, "0.01500 misclassified (ST2)"),
    _latch("latch-3b", 1000, 1, 485_080, _ST2_3B, 1.0, "0.01207 misclassified (ST2)",
           **_LATCH_1000),
    _latch("latch-3c", 100, 3, 269_650, _ST_3C, 0.1, "0.00558 misclassified, "
           "mean |diff| 0.014"),
    _latch("latch-3c", 100, 1, 565_640, _ST_3C, 0.1, "0.00441 misclassified, "
           "mean |diff| 0.012"),
    Experiment("4-T100", "Table 7", "adding-1997", {"T": 100}, 2, 2,
               dict(input_gate_bias=[-3, -6]), 0.5, StopRule(beta=0.01, **_ST3), 74_000,
               paper_test="1 wrong of 2560", **_ADDING_T100),
    Experiment("4-T500", "Table 7", "adding-1997", {"T": 500}, 2, 2,
               dict(input_gate_bias=[-3, -6]), 0.5, StopRule(beta=0.01, **_ST3), 209_000,
               paper_test="0 wrong of 2560", **_ADDING),
    Experiment("4-T1000", "Table 7", "adding-1997", {"T": 1000}, 2, 2,
               dict(input_gate_bias=[-3, -6]), 0.5, StopRule(beta=0.01, **_ST3), 853_000,
               paper_test="1 wrong of 2560", **_ADDING),
    Experiment("5-T100-n140", "Table 8", "multiplication-1997", {"T": 100}, 2, 2, {}, 0.1,
               StopRule(max_wrong=139, **_ST3), 482_000,
               paper_test="139 wrong of 2560", **_MULT),
    Experiment("5-T100-n13", "Table 8", "multiplication-1997", {"T": 100}, 2, 2, {}, 0.1,
               StopRule(max_wrong=12, **_ST3), 1_273_000,
               paper_test="14 wrong of 2560", **_MULT),
    Experiment("6a", "Table 9", "order-6a", {}, 2, 2, dict(input_gate_bias=[-2, -4]), 0.5,
               StopRule(beta=0.1, **_ST3), 31_390, trials=20,
               paper_test="1 wrong of 2560"),
    Experiment("6b", "Table 9", "order-6b", {}, 3, 2, dict(input_gate_bias=[-2, -4, -6]), 0.1,
               StopRule(beta=0.1, **_ST3), 571_100, paper_test="2 wrong of 2560"),
]}


#: the settings of an experiment that a run may change (`with_options`), for ablations
OPTIONS = ("lr", "update", "sequential", "plateau", "gain", "error", "output", "lstm",
           "task_params", "output_bias", "shortcut", "blocks", "block_size", "inits_per_set")


def run_options(exp: Experiment, options: dict | None = None, as_read: bool = False) -> dict:
    """The options a run of ``exp`` uses: its found set-up (unless ``as_read``), then
    ``options`` on top (``lstm`` and ``task_params`` merged key by key)."""
    merged = {} if as_read else dict(exp.setup)
    for key, value in (options or {}).items():
        if key in ("lstm", "task_params") and isinstance(value, dict):
            value = {**merged.get(key, {}), **value}
        merged[key] = value
    return merged


def with_options(exp: Experiment, options: dict | None) -> Experiment:
    """The experiment with some settings changed; ``lstm`` and ``task_params`` are merged
    into the experiment's own. Unknown settings raise ValueError naming them."""
    if not options:
        return exp
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown experiment option(s) {', '.join(unknown)}; the options "
                         f"are {', '.join(OPTIONS)}")
    changes = dict(options)
    for merged in ("lstm", "task_params"):
        if merged in changes:
            if not isinstance(changes[merged], dict):
                raise ValueError(f"experiment option {merged} must be a mapping, got "
                                 f"{changes[merged]!r}")
            changes[merged] = {**getattr(exp, merged), **changes[merged]}
    if "error" in changes and changes["error"] not in ("squared", "cross-entropy"):
        raise ValueError(f"experiment option error must be 'squared' or 'cross-entropy', got "
                         f"{changes['error']!r}")
    if "output" in changes and changes["output"] not in ("logistic", "linear"):
        raise ValueError(f"experiment option output must be 'logistic' or 'linear', got "
                         f"{changes['output']!r}")
    if "update" in changes and changes["update"] not in ("step", "sequence"):
        raise ValueError(f"experiment option update must be 'step' or 'sequence', got "
                         f"{changes['update']!r}")
    if "lr" in changes:
        ck.check_positive_number("experiment option lr", changes["lr"])
    if "gain" in changes:
        ck.check_number("experiment option gain", changes["gain"], low=0, high=1,
                        low_open=True, high_open=True)
    for count in ("blocks", "block_size", "inits_per_set", "plateau"):
        if count in changes:
            ck.check_positive_int(f"experiment option {count}", changes[count])
    for flag in ("sequential", "output_bias", "shortcut"):
        if flag in changes and not isinstance(changes[flag], bool):
            raise ValueError(f"experiment option {flag} must be true or false, got "
                             f"{changes[flag]!r}")
    changed = dataclasses.replace(exp, **changes)
    if changed.output == "linear" and changed.error != "squared":
        raise ValueError("experiment option output=linear learns the squared error; this "
                         f"set-up also has error={changed.error} (use --as-read, or "
                         "--set error=squared)")
    if "lstm" in changes or "blocks" in changes:
        # the paper protocol's learner checks its network options (truncated=False, a bad
        # squasher, one gate bias per block): here, before anything is written
        from ..online import OnlineLSTM1997

        OnlineLSTM1997(1, changed.blocks, changed.block_size, **changed.lstm)
    return changed
