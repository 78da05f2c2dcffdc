"""The trainer: two protocols, one run folder, progress counted in sequences presented.

``minibatch`` — any model (rnn, lstm, gru, lstm1997; options passed through) with a readout,
    Adam or SGD, a batch size, gradient-norm clipping. Gradients from the engine.
``paper`` — one of the 1997 experiments (`EXPERIMENTS`): the paper's network, initialisation
    and learning rate, learned on-line, one sequence at a time, by the truncated RTRL of
    `OnlineLSTM1997`; the trials of one experiment run side by side and stop one by one
    (`paper.py`).

Both stop by the experiment's rule (`StopRule`) or at a budget of training sequences, then test
on fresh sequences (2560 or 10,000 as the paper) and count the wrong ones.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor

from .. import __version__, tasks
from .. import _checks as ck
from ..online import OnlineLSTM1997
from ..tasks import Batch, Task
from .config import DEFAULTS, RunConfig
from .evaluation import evaluate, next_multiple, sequence_errors
from .experiments import EXPERIMENTS, run_options, with_options
from .interrupt import DeferredInterrupt
from .model import SequenceModel, make_model
from .paper import train_paper
from .progress import LiveLine
from .runs import (
    RunDir,
    load_model_tensors,
    model_tensors,
    optimizer_from_flat,
    optimizer_to_flat,
)
from .stopping import RecentWindow, StopRule


def default_stop(task_name: str) -> StopRule:
    """The paper's rule for a 1997 task; otherwise the 1000 most recent sequences correct."""
    for exp in EXPERIMENTS.values():
        if exp.task == task_name:
            return exp.stop
    return StopRule(kind="recent", window=1000)


def make_config(task: str, **options) -> RunConfig:
    """A complete, validated `RunConfig`; unknown or bad options raise ValueError."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
    cfg = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}, "task": task}
    if cfg["protocol"] not in ("minibatch", "paper"):
        raise ValueError(f"protocol must be 'minibatch' or 'paper', got {cfg['protocol']!r}")
    if cfg["protocol"] == "paper":
        key = cfg["experiment"] or _experiment_for(task, cfg["task_params"])
        if key not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {key!r}; known: {', '.join(EXPERIMENTS)}")
        if not isinstance(cfg["as_read"], bool):
            raise ValueError(f"as_read must be true or false, got {cfg['as_read']!r}")
        cfg["experiment_options"] = run_options(EXPERIMENTS[key], cfg["experiment_options"],
                                                cfg["as_read"])
        exp = with_options(EXPERIMENTS[key], cfg["experiment_options"])
        params = {**exp.task_params, **(cfg["task_params"] if exp.task == task else {})}
        cfg.update(experiment=key, task=exp.task, task_params=params,
                   model="lstm1997", lr=options.get("lr") or exp.lr,
                   test_size=options.get("test_size") or exp.test_size,
                   trials=cfg["trials"] or 1, stop=cfg["stop"] or asdict(exp.stop))
    if cfg["protocol"] != "paper" and (cfg["experiment_options"] or cfg["as_read"]):
        raise ValueError("experiment options (--set, --as-read) change the paper's "
                         "experiments: use them with --protocol paper")
    task_obj = tasks.make(cfg["task"], **cfg["task_params"])  # validates task and parameters
    if cfg["stop"] is None:
        cfg["stop"] = asdict(default_stop(cfg["task"]))
    StopRule(**cfg["stop"])
    first = cfg["first_trial"]
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise ValueError(f"first_trial must be a non-negative integer, got {first!r}")
    for name in ("hidden", "batch_size", "max_sequences", "test_size", "log_every"):
        v = cfg[name]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    for name in ("lr", "clip", "checkpoint_seconds"):
        ck.check_positive_number(name, cfg[name])
    if cfg["optimizer"] not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {cfg['optimizer']!r}")
    if cfg["protocol"] == "minibatch":  # building it validates the model and its options
        make_model(task_obj, cfg["model"], cfg["hidden"], cfg["model_options"],
                   readout_bias=cfg["readout_bias"], shortcut=cfg["shortcut"])
    cfg["version"] = __version__
    return RunConfig(**cfg)


def _experiment_for(task: str, params: dict) -> str:
    """The paper's experiment on this task that matches the parameters, else its first one
    (whose network and learning rate then run on the given parameters)."""
    candidates = [k for k, e in EXPERIMENTS.items() if e.task == task]
    if not candidates:
        raise ValueError(f"the paper protocol runs the paper's experiments; {task!r} is not "
                         f"one of their tasks (see `rnnlab tasks`)")
    for key in candidates:
        if all(EXPERIMENTS[key].task_params.get(k) == v for k, v in params.items()):
            return key
    return candidates[0]


# -- measuring ----------------------------------------------------------------------------------


def predictor(model: SequenceModel):
    """batch -> the model's outputs, in eval mode: what `evaluate` calls."""
    def predict(batch: Batch) -> Tensor:
        was = model.training
        model.eval()
        out = model(batch.inputs, batch.lengths)
        model.train(was)
        return out
    return predict


def _test_generator(cfg: RunConfig, sequences: int) -> torch.Generator:
    """Fresh test data that depends only on the seed and the progress: resumable."""
    return torch.Generator().manual_seed(cfg.seed * 1_000_003 + sequences + 7)


def _rule_met(rule: StopRule, window: RecentWindow, predict, task, cfg, seen, fixed) -> bool:
    if rule.kind == "recent":
        return window.satisfies(rule)
    # test and fixed rules are checked every `every` sequences, and only once the 100 most
    # recent training sequences were all correct (a cheap filter before an expensive test)
    if not window.last_all_correct(min(100, window.size)):
        return False
    if rule.kind == "fixed":
        return evaluate(predict, task, 0, batches=fixed)["wrong"] == 0
    r = evaluate(predict, task, rule.n, _test_generator(cfg, seen))
    return r["wrong"] <= rule.max_wrong and (rule.beta is None
                                             or r.get("mean_abs_error", 0) < rule.beta)


class _Progress(LiveLine):
    """A live line: sequences, sequences/s, recent error and % correct."""

    def update(self, completed: int, rate: float, error: float, correct: float) -> None:
        self.show(completed, f"{rate:7.0f} seq/s  err {error:.4f}  {100 * correct:5.1f}% ok")


# -- the two protocols -------------------------------------------------------------------------


def train(config: RunConfig | None, out: str | Path | None = None, *, resume: bool = False,
          progress: bool = False) -> dict:
    """Train as ``config`` (from `make_config`) says; with ``out``, keep a run folder there
    (``resume`` continues the run in it, with its own config). Returns the result (also
    written to result.json)."""
    run = RunDir(out) if out is not None else None
    if run is not None:
        if resume:
            config = RunConfig.from_json(run.config())
        else:
            run.create(config.to_json())
    elif not isinstance(config, RunConfig):
        raise TypeError(f"train needs a RunConfig (from make_config), got "
                        f"{type(config).__name__}")
    if config.protocol == "continual":  # Gers et al. 2000's streams (training.continual)
        from .continual import train_continual

        result = train_continual(config, run, resume)
        if run is not None:
            run.write_result(result)
        return result
    task = tasks.make(config.task, **config.task_params)
    if config.protocol == "paper":
        # the on-line learner's tensors are a few dozen numbers per trial: a second thread only
        # adds synchronisation (and on a busy machine, spinning), so it runs on one
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            result = train_paper(config, task, run, resume, progress)
        finally:
            torch.set_num_threads(threads)
    else:
        result = _train_minibatch(config, task, run, resume, progress)
    if run is not None:
        run.write_result(result)
    return result


def _fixed_sets(task: Task, rule: StopRule, seed: int):
    if rule.kind != "fixed":
        return None, None
    if not hasattr(task, "fixed_sets"):
        raise ValueError(f"task {task.name!r} has no fixed training and test sets")
    return task.fixed_sets(seed)


def _train_minibatch(cfg, task, run, resume, progress) -> dict:
    torch.manual_seed(cfg.seed)
    model = make_model(task, cfg.model, cfg.hidden, cfg.model_options,
                       readout_bias=cfg.readout_bias, shortcut=cfg.shortcut)
    params = list(model.parameters())
    opt = (torch.optim.Adam(params, lr=cfg.lr) if cfg.optimizer == "adam"
           else torch.optim.SGD(params, lr=cfg.lr))
    rule = StopRule(**cfg.stop)
    window = RecentWindow(rule.window)
    data = torch.Generator().manual_seed(cfg.seed)
    train_set, test_set = _fixed_sets(task, rule, cfg.seed)
    seen, elapsed, solved_at = 0, 0.0, None
    saved = run.resume_point() if resume else None
    if saved is not None:
        tensors, meta = saved
        load_model_tensors(model, tensors, run.path)
        optimizer_from_flat(opt, tensors, meta["optimizer"])
        data.set_state(tensors["rng.data"])
        torch.set_rng_state(tensors["rng.torch"])
        window.load(meta["window"])
        seen, elapsed, solved_at = meta["sequences"], meta["elapsed"], meta["solved_at"]
        run.truncate_metrics(seen)
    predict = predictor(model)
    fixed = (train_set, test_set) if train_set is not None else None

    def checkpoint():
        if run is None:
            return
        tensors, optim_meta = optimizer_to_flat(opt)
        tensors.update(model_tensors(model))
        tensors.update({"rng.data": data.get_state(), "rng.torch": torch.get_rng_state()})
        run.save(tensors, {"sequences": seen, "elapsed": elapsed, "solved_at": solved_at,
                           "window": window.state(), "optimizer": optim_meta})

    start, last_ckpt = time.perf_counter() - elapsed, time.perf_counter()
    next_log, next_check = next_multiple(seen, cfg.log_every), next_multiple(seen, rule.every)
    B = cfg.batch_size
    bar = _Progress(progress, cfg.max_sequences, f"{task.name} {cfg.model}")
    try:
        with bar, DeferredInterrupt() as interrupt:
            while solved_at is None and seen < cfg.max_sequences:
                interrupt.check()  # Ctrl-C lands here, between updates
                if train_set is not None:
                    pick = torch.randint(0, train_set.size, (B,), generator=data)
                    batch = task.subset(train_set, pick)
                else:
                    batch = task.sample(B, data)
                out = model(batch.inputs, batch.lengths)
                loss = task.error(out, batch).mean()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.clip)
                opt.step()
                seen += B
                with torch.no_grad():
                    out = out.detach()
                    window.add(task.correct(out, batch).tolist(),
                               sequence_errors(task, out, batch).tolist())
                elapsed = time.perf_counter() - start
                if rule.kind == "recent" or seen >= next_check:
                    next_check = next_multiple(seen, rule.every)
                    if _rule_met(rule, window, predict, task, cfg, seen, fixed):
                        solved_at = seen
                if seen >= next_log or solved_at is not None:
                    next_log = next_multiple(seen, cfg.log_every)
                    record = {"sequences": seen, "seconds": round(elapsed, 3),
                              "loss": float(loss.detach()), "recent_error": window.mean_error(),
                              "recent_correct": window.fraction_correct()}
                    if run is not None:
                        run.log(record)
                    bar.update(seen, seen / max(elapsed, 1e-9), window.mean_error(),
                               window.fraction_correct())
                if time.perf_counter() - last_ckpt > cfg.checkpoint_seconds:
                    checkpoint()
                    last_ckpt = time.perf_counter()
    except KeyboardInterrupt:
        checkpoint()  # nothing is lost: --resume continues from here
        raise
    checkpoint()
    if fixed is not None:
        test = evaluate(predict, task, 0, batches=fixed)
    else:
        test = evaluate(predict, task, cfg.test_size,
                        torch.Generator().manual_seed(cfg.seed + 999_983))
    return {
        "protocol": "minibatch", "task": task.describe(), "model": cfg.model,
        "solved": solved_at is not None, "sequences": seen, "sequences_to_success": solved_at,
        "stop_rule": rule.describe(), "test": test, "wall_seconds": round(elapsed, 2),
    }


def trial_model(learner: OnlineLSTM1997, k: int, task: Task) -> SequenceModel:
    """Trial k of the on-line learner as a SequenceModel (to run it with the engine)."""
    lstm, readout = learner.to_modules(k)
    activation = "sigmoid" if learner.output == "logistic" else "linear"
    model = SequenceModel(lstm, task.output_size, activation, readout_bias=learner.output_bias,
                          shortcut=learner.output_sees_input)
    model.readout.load_state_dict(readout.state_dict())
    return model
