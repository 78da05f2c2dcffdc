"""The paper protocol: the 1997 experiments as Hochreiter & Schmidhuber ran them.

One experiment of `EXPERIMENTS`: the paper's network, initialisation and learning rate,
learned on-line by truncated RTRL (`OnlineLSTM1997`), one sequence at a time, with the weights
changed at every step that has a target; N trials side by side, each stopped by the paper's
rule or at the budget, then tested on fresh sequences.

Every trial has seeds of its own, for its weights, its data and its tests (`trial_seed`), so
trial k is the same run whether it runs alone or beside others; ``first_trial`` picks which
trials this run holds (`rnnlab reproduce` spreads a row's trials over processes that way).

Speed without changing the rule: each active trial's next chunk of sequences goes to the
compiled learner in one call (a trial still learns from them one after another), and the
stopping rule is applied to the chunk's outputs afterwards. A trial whose ``recent`` rule is
met inside a chunk is rolled back to the chunk's start and replays exactly the sequences up to
that point, so it stops with the weights and the count a one-at-a-time loop would have. Rules
that test (``test``, ``fixed``) are checked at multiples of their interval, where chunks end.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import torch
from torch import Tensor

from ..online import OnlineLSTM1997
from ..tasks import Batch, Task
from .config import RunConfig
from .evaluation import evaluate, next_multiple, sequence_errors
from .experiments import EXPERIMENTS, Experiment, with_options
from .interrupt import DeferredInterrupt
from .progress import LiveLine
from .stopping import RecentWindow, StopRule

#: sequence-steps per trial in one compiled call (chunks are cut shorter at boundaries)
CHUNK_STEPS = 50_000


def trial_seed(seed: int, trial: int, purpose: str) -> int:
    """A seed for one purpose ("init", "data", "sets", "test", "final") of one trial."""
    digest = hashlib.sha256(f"rnnlab/{seed}/{trial}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def paper_learner(exp: Experiment, task: Task, trials: list[int], seed: int
                  ) -> OnlineLSTM1997:
    """The experiment's network, one trial per id, each initialised from its own seed."""
    return OnlineLSTM1997(
        task.input_size, exp.blocks, exp.block_size, task.output_size, trials=len(trials),
        output_bias=exp.output_bias, output_sees_input=exp.shortcut, error=exp.error,
        output=exp.output,
        generator=[_generator(trial_seed(seed, k, "init")) for k in trials], **exp.lstm)


class TrialData:
    """One trial's training sequences: fresh ones from its own generator, or (the Reber
    protocol) draws from its own fixed training set, whose test set is kept beside it."""

    def __init__(self, task: Task, rule: StopRule, exp: Experiment, seed: int, trial: int):
        self.task = task
        self.generator = _generator(trial_seed(seed, trial, "data"))
        self.fixed: tuple[Batch, Batch] | None = None
        if rule.kind == "fixed":
            if not hasattr(task, "fixed_sets"):
                raise ValueError(f"task {task.name!r} has no fixed training and test sets")
            pair = trial // exp.inits_per_set  # the paper: 3 set pairs × 10 initialisations
            self.fixed = task.fixed_sets(trial_seed(seed, pair, "sets"))

    def draw(self, n: int) -> Batch:
        if self.fixed is None:
            return self.task.sample(n, self.generator)
        train = self.fixed[0]
        pick = torch.randint(0, train.size, (n,), generator=self.generator)
        return self.task.subset(train, pick)


def stack_trials(batches: list[Batch]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each trial's chunk (a Batch of S sequences) as the learner's series layout:
    inputs (S, T, n, 1) symbols or (S, T, n, 1, I), targets (S, T, n, 1, O), mask
    (S, T, n, 1), lengths (S, n, 1); T is the longest sequence, shorter ones padded."""
    n, S = len(batches), batches[0].size
    T = max(int(b.mask.shape[0]) for b in batches)
    O = batches[0].y.shape[-1]
    symbolic = all(b.symbols is not None for b in batches)
    if symbolic:
        x = torch.full((S, T, n, 1), -1, dtype=torch.long)
    else:
        x = torch.zeros(S, T, n, 1, batches[0].x.shape[-1])
    y = torch.zeros(S, T, n, 1, O)
    mask = torch.zeros(S, T, n, 1, dtype=torch.bool)
    lengths = torch.zeros(S, n, 1, dtype=torch.long)
    for k, b in enumerate(batches):
        Tk = b.mask.shape[0]
        x[:, :Tk, k, 0] = (b.symbols if symbolic else b.x).transpose(0, 1)
        y[:, :Tk, k, 0] = b.y.transpose(0, 1)
        mask[:, :Tk, k, 0] = b.mask.t()
        lengths[:, k, 0] = b.lengths
    return x, y, mask, lengths


def trial_outputs(out: Tensor, k: int, batch: Batch) -> Tensor:
    """Trial k's outputs of a series run, (S, T, n, 1, O) -> (T_k, S, O) like the batch, with
    0 where no output was computed."""
    return out[:, : batch.mask.shape[0], k, 0].transpose(0, 1).nan_to_num(0.0)


def learner_predictor(learner: OnlineLSTM1997):
    """batch -> a one-trial learner's outputs at the batch's target steps (T, B, O), the
    sequences run side by side without traces: what `evaluate` calls."""
    def predict(batch: Batch) -> Tensor:
        x = batch.symbols if batch.symbols is not None else batch.x
        out, _ = learner.run(x.unsqueeze(1), batch.y.unsqueeze(1).to(learner.W.dtype),
                             batch.mask.unsqueeze(1), lengths=batch.lengths.view(1, -1),
                             update="none", gradient=False, outputs_at="targets")
        return out[:, 0].nan_to_num(0.0)
    return predict


class _Progress(LiveLine):
    def update(self, completed: int, rate: float, error: float, correct: float,
               solved: int, trials: int) -> None:
        self.show(completed, f"{rate:8.0f} seq/s  err {error:.4f}  {100 * correct:5.1f}% ok  "
                             f"solved {solved}/{trials}")


class Construction:
    """The paper's sequential construction (§4; used in exps. 2a and 2b against the abuse
    problem and state drift): a trial starts without its memory cell blocks — their units
    are cut off (masks 0) and the output units do not see them — and learns what it can
    without them. Once its training error stops falling (the mean error of the last
    ``exp.plateau`` sequences is less than ``exp.gain`` below that of the ``exp.plateau``
    before; the paper gives no number: 500 and 0.2 unless set) the blocks are added, with
    fresh random weights from the trial's own seed, and learning goes on."""

    def __init__(self, learner: OnlineLSTM1997, exp: Experiment, task: Task, seed: int,
                 ids: list[int]) -> None:
        self.learner, self.exp, self.task, self.seed, self.ids = learner, exp, task, seed, ids
        self.full_mask, self.full_V_mask = learner.mask.clone(), learner.V_mask.clone()
        C = learner.cell.C
        learner.mask.zero_()  # every hidden unit is part of a memory cell block
        learner.V_mask[..., :C] = 0
        learner.W *= learner.mask
        learner.V *= learner.V_mask
        self.added_at: list[int | None] = [None] * len(ids)
        self.errors: list[list[float]] = [[] for _ in ids]

    def observe(self, seen: int, errors: dict) -> None:
        """After a chunk: add the blocks to the trials whose error has stopped falling."""
        for k, e in errors.items():
            if self.added_at[k] is not None:
                continue
            history = self.errors[k]
            history.extend(float(v) for v in e)
            n = self.exp.plateau
            if len(history) >= 2 * n:
                before = sum(history[-2 * n : -n]) / n
                recent = sum(history[-n:]) / n
                if recent > (1 - self.exp.gain) * before:
                    self.add(k, seen)
                del history[: len(history) - 2 * n]

    def add(self, k: int, seen: int) -> None:
        fresh = paper_learner(self.exp, self.task, [self.ids[k]], self.seed + 7919)
        learner, C = self.learner, self.learner.cell.C
        rows = self.full_mask[k].bool()
        learner.mask[k] = self.full_mask[k]
        learner.W[k] = torch.where(rows, fresh.W[0], learner.W[k]) * learner.mask[k]
        learner.V_mask[k] = self.full_V_mask[k]
        learner.V[k, :, :C] = fresh.V[0, :, :C] * learner.V_mask[k, :, :C]
        self.added_at[k] = seen

    def state(self) -> dict:
        return {"added_at": self.added_at, "errors": self.errors}

    def load(self, state: dict) -> None:
        self.added_at, self.errors = state["added_at"], state["errors"]


def train_paper(cfg: RunConfig, task: Task, run, resume: bool, progress: bool) -> dict:
    """The paper protocol for ``cfg`` (from `make_config`); ``run`` a RunDir or None."""
    exp = with_options(EXPERIMENTS[cfg.experiment], cfg.experiment_options)
    N, first, seed = cfg.trials, cfg.first_trial, cfg.seed
    ids = list(range(first, first + N))
    learner = paper_learner(exp, task, ids, seed)
    rule = StopRule(**cfg.stop)
    data = [TrialData(task, rule, exp, seed, g) for g in ids]
    windows = [RecentWindow(rule.window) for _ in ids]
    building = Construction(learner, exp, task, seed, ids) if exp.sequential else None
    seen, elapsed = 0, 0.0
    solved_at: list[int | None] = [None] * N
    saved = run.resume_point() if resume else None
    if saved is not None:
        tensors, meta = saved
        for name in ("W", "V", "mask", "V_mask"):
            getattr(learner, name).copy_(tensors[name])
        for k, d in enumerate(data):
            d.generator.set_state(tensors[f"rng.data.{k}"])
        for w, state in zip(windows, meta["windows"]):
            w.load(state)
        seen, elapsed, solved_at = meta["sequences"], meta["elapsed"], meta["solved_at"]
        if building is not None:
            building.load(meta["construction"])
        run.truncate_metrics(seen)

    def checkpoint():
        if run is None:
            return
        tensors = {name: getattr(learner, name) for name in ("W", "V", "mask", "V_mask")}
        tensors.update({f"rng.data.{k}": state for k, state in enumerate(rng_states)})
        meta = {"sequences": seen, "elapsed": elapsed, "solved_at": solved_at,
                "windows": [w.state() for w in windows]}
        if building is not None:
            meta["construction"] = building.state()
        run.save(tensors, meta)

    def rule_met(k: int) -> bool:
        """The ``test`` and ``fixed`` rules, for trial k now (with a cheap filter first: the
        100 most recent training sequences all correct)."""
        if not windows[k].last_all_correct(min(100, windows[k].size)):
            return False
        predict = learner_predictor(learner.subset([k]))
        if rule.kind == "fixed":
            return evaluate(predict, task, 0, batches=data[k].fixed)["wrong"] == 0
        gen = _generator(trial_seed(seed, ids[k], f"test/{seen}"))
        r = evaluate(predict, task, rule.n, gen)
        return r["wrong"] <= rule.max_wrong and (rule.beta is None
                                                 or r.get("mean_abs_error", 0) < rule.beta)

    # the data generators as they were where the last chunk ended: what a checkpoint holds,
    # even when an interrupt arrives while a chunk is being drawn
    rng_states = [d.generator.get_state() for d in data]
    chunk = int(min(500, max(5, CHUNK_STEPS // max(1.0, task.mean_length))))
    lr = cfg.lr
    start, last_ckpt = time.perf_counter() - elapsed, time.perf_counter()
    bar = _Progress(progress, cfg.max_sequences, f"{exp.key} ×{N}")
    try:
        with bar, DeferredInterrupt() as interrupt:
            while seen < cfg.max_sequences and any(s is None for s in solved_at):
                interrupt.check()  # Ctrl-C lands here, between chunks
                end = min(seen + chunk, next_multiple(seen, cfg.log_every), cfg.max_sequences)
                if rule.kind != "recent":
                    end = min(end, next_multiple(seen, rule.every))
                active = [k for k in range(N) if solved_at[k] is None]
                batches = [data[k].draw(end - seen) for k in active]
                x, y, mask, lengths = stack_trials(batches)
                sub = learner.subset(active)
                W0, V0 = sub.W.clone(), sub.V.clone()
                out, _ = sub.run(x, y, mask, lengths=lengths, lr=lr, update=exp.update,
                                 outputs_at="targets")
                errors_by_trial = {}
                for i, k in enumerate(active):
                    o = trial_outputs(out, i, batches[i])
                    correct = task.correct(o, batches[i]).numpy()
                    errors = errors_by_trial[k] = sequence_errors(task, o, batches[i]).numpy()
                    stop = (windows[k].first_satisfying(correct, errors, rule)
                            if rule.kind == "recent" else None)
                    if stop is not None:  # replay up to the sequence that met the rule
                        one = sub.subset([i])
                        one.W, one.V = W0[i : i + 1].clone(), V0[i : i + 1].clone()
                        part = slice(0, stop + 1)
                        one.run(x[part, :, i : i + 1], y[part, :, i : i + 1],
                                mask[part, :, i : i + 1], lengths=lengths[part, i : i + 1],
                                lr=lr, update=exp.update, outputs_at="targets")
                        sub.assign([i], one)
                        correct, errors = correct[part], errors[part]
                        solved_at[k] = seen + stop + 1
                    windows[k].add(correct, errors)
                learner.assign(active, sub)
                seen = end
                rng_states = [d.generator.get_state() for d in data]
                if building is not None:
                    building.observe(seen, errors_by_trial)
                if rule.kind != "recent" and seen % rule.every == 0:
                    for k in active:
                        if solved_at[k] is None and rule_met(k):
                            solved_at[k] = seen
                elapsed = time.perf_counter() - start
                if seen % cfg.log_every == 0 or seen >= cfg.max_sequences:
                    _log(run, bar, windows, solved_at, seen, elapsed, N)
                if time.perf_counter() - last_ckpt > cfg.checkpoint_seconds:
                    checkpoint()
                    last_ckpt = time.perf_counter()
    except KeyboardInterrupt:
        checkpoint()  # nothing is lost: --resume continues from here
        raise
    checkpoint()
    trials = []
    for k, g in enumerate(ids):
        predict = learner_predictor(learner.subset([k]))
        if data[k].fixed is not None:
            test = evaluate(predict, task, 0, batches=data[k].fixed)
        else:
            test = evaluate(predict, task, cfg.test_size,
                            _generator(trial_seed(seed, g, "final")))
        trials.append({"trial": g, "solved": solved_at[k] is not None,
                       "sequences": solved_at[k], "test": test})
        if building is not None:  # when the memory cell blocks were added
            trials[-1]["blocks_added_at"] = building.added_at[k]
    solved = [t["sequences"] for t in trials if t["solved"]]
    return {
        "protocol": "paper", "experiment": exp.key, "task": task.describe(),
        "trials": trials, "solved": len(solved), "n_trials": N,
        "mean_sequences": sum(solved) / len(solved) if solved else None,
        "min_sequences": min(solved, default=None), "max_sequences": max(solved, default=None),
        "budget": cfg.max_sequences, "paper_sequences": exp.paper_sequences,
        "stop_rule": rule.describe(), "wall_seconds": round(elapsed, 2),
    }


def _log(run, bar, windows, solved_at, seen, elapsed, N) -> None:
    errors = [w.mean_error() for w in windows]
    correct = [w.fraction_correct() for w in windows]
    live = [k for k in range(N) if solved_at[k] is None] or list(range(N))
    err = float(np.mean([errors[k] for k in live]))
    ok = float(np.mean([correct[k] for k in live]))
    solved = sum(s is not None for s in solved_at)
    if run is not None:
        run.log({"sequences": seen, "seconds": round(elapsed, 3), "recent_error": err,
                 "recent_correct": ok, "solved": solved,
                 "trial_error": [round(e, 6) for e in errors],
                 "trial_correct": [round(c, 4) for c in correct]})
    bar.update(seen, seen * len(live) / max(elapsed, 1e-9), err, ok, solved, N)
