"""Training a character-level language model (char-rnn's loop, on rnnlab's engine).

Each step reads the next chunk (T steps × B contiguous streams), starts from the state the
previous chunk ended in (detached: truncated BPTT), and takes one optimiser step on the mean
next-symbol cross-entropy, with gradient-norm clipping and a learning rate that decays over the
budget (held, then from ``decay_from`` of the budget cosine down to ``min_lr`` × lr, by steps or
by wall-clock minutes, whichever is set). Every
``val_every`` steps the validation tail is scored; the best model so far is kept.

Run folder (atomic writes; see `rnnlab.training.runs`):

    config.json, vocab.json       what was asked for; the symbols
    metrics.jsonl                 train records (step, chars, loss, lr, chars/s) and val records
    checkpoint.safetensors        everything to resume: model, optimiser, stream position,
                                  carried state, RNG state, best so far
    best.safetensors              the best model by validation loss, with config and vocabulary
                                  (self-contained: what `rnnlab lm sample/score` load)
    samples.txt                   the sample printed at each validation
    result.json                   best validation loss (nats, bpc), steps, chars, chars/s
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import __version__
from .. import _checks as ck
from ..training.interrupt import DeferredInterrupt
from ..training.progress import LiveLine
from ..training.runs import (
    RunDir,
    atomic_write,
    load_checkpoint,
    load_model_tensors,
    model_tensors,
    optimizer_from_flat,
    optimizer_to_flat,
    save_checkpoint,
)
from . import distributed
from .data import StreamBatcher, Vocabulary, read_text, split
from .model import LN2, CharLM, detach, model_config, state_from_tensors, state_tensors
from .sample import check_temperature, sample_text
from .score import score

DEFAULTS = {
    "text": None,
    "byte_level": False,
    "val_fraction": 0.05,
    "model": "lstm",
    "hidden": 512,
    "layers": 2,
    "embedding": 64,
    "dropout": 0.3,
    "output_dropout": 0.0,
    "options": {},
    "backend": "rnnlab",
    "batch": 32,
    "seq_len": 50,
    "optimizer": "adam",
    "lr": 4e-3,
    "schedule": "cosine",
    "min_lr": 0.1,
    "decay_from": 0.6,
    "clip": 5.0,
    "minutes": None,
    "steps": None,
    "val_every": 300,
    "log_every": 10,
    "sample_length": 200,
    "sample_temperature": 0.8,
    "seed": 0,
    "checkpoint_seconds": 60.0,
}
DEFAULT_MINUTES = 15.0
BEST, SAMPLES, VOCAB = "best.safetensors", "samples.txt", "vocab.json"


def make_config(text: str | Path, **options) -> dict:
    """A complete, validated, JSON-able config. Without --minutes or --steps the budget is
    DEFAULT_MINUTES; with both, training stops at whichever comes first."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(unknown)}")
    cfg = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"no text file at {path}")
    cfg["text"] = str(path.resolve())
    if cfg["minutes"] is None and cfg["steps"] is None:
        cfg["minutes"] = DEFAULT_MINUTES
    for name in ("batch", "seq_len", "val_every", "log_every", "sample_length"):
        ck.check_positive_int(name, cfg[name])
    if cfg["steps"] is not None:
        ck.check_positive_int("steps", cfg["steps"])
    numbers = ("lr", "clip", "checkpoint_seconds") + (("minutes",) if cfg["minutes"] is not None
                                                      else ())
    for name in numbers:
        ck.check_positive_number(name, cfg[name])
    if not 0 <= cfg["decay_from"] < 1:
        raise ValueError(f"decay_from is a fraction of the budget in [0, 1), got "
                         f"{cfg['decay_from']!r}")
    if not 0 <= cfg["min_lr"] <= 1:
        raise ValueError(f"min_lr is a fraction of lr in [0, 1], got {cfg['min_lr']!r}")
    if not 0 <= cfg["val_fraction"] < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {cfg['val_fraction']!r}")
    check_temperature(cfg["sample_temperature"], "sample_temperature")
    if cfg["optimizer"] not in ("adam", "rmsprop"):
        raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {cfg['optimizer']!r}")
    if cfg["schedule"] not in ("cosine", "linear", "constant"):
        raise ValueError(f"schedule must be cosine, linear or constant, got {cfg['schedule']!r}")
    CharLM(2, **model_config(cfg))  # builds the model once: validates model and options
    cfg["version"] = __version__
    return cfg


def lr_factor(cfg: dict, step: int, seconds: float) -> float:
    """The learning rate's multiplier when ``step`` steps and ``seconds`` have passed: 1 until
    the fraction ``decay_from`` of the budget is spent, then down to ``min_lr`` at its end."""
    if cfg["schedule"] == "constant":
        return 1.0
    done = 0.0
    if cfg["steps"]:
        done = step / cfg["steps"]
    if cfg["minutes"]:
        done = max(done, seconds / (60 * cfg["minutes"]))
    done = max(0.0, min(done, 1.0) - cfg["decay_from"]) / (1 - cfg["decay_from"])
    shape = 0.5 * (1 + math.cos(math.pi * done)) if cfg["schedule"] == "cosine" else 1 - done
    return cfg["min_lr"] + (1 - cfg["min_lr"]) * shape


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"])
    return torch.optim.RMSprop(params, lr=cfg["lr"], alpha=0.95)  # char-rnn's decay rate


# -- saving and loading models ---------------------------------------------------------------


def save_model(path: Path, model: CharLM, vocab: Vocabulary, cfg: dict, info: dict) -> None:
    """A self-contained model file: weights, config and vocabulary (safetensors)."""
    save_checkpoint(path, model_tensors(model), {"lm": cfg, "vocab": vocab.to_json(), **info})


def load_model(path: str | Path) -> tuple[CharLM, Vocabulary, dict]:
    """(model in eval mode, vocabulary, config) from a run folder (its best model, else its
    latest checkpoint) or from a model file."""
    path = Path(path)
    if path.is_dir():
        file = path / BEST if (path / BEST).is_file() else path / "checkpoint.safetensors"
        if not file.is_file():
            raise ValueError(f"{path} holds no language-model run (no {BEST})")
    else:
        file = path
    tensors, meta = load_checkpoint(file)
    if "lm" not in meta or "vocab" not in meta:
        raise ValueError(f"{file} is not a language-model checkpoint of `rnnlab lm train`")
    cfg, vocab = meta["lm"], Vocabulary.from_json(meta["vocab"])
    try:
        model = CharLM(len(vocab), **model_config(cfg))
    except KeyError as e:
        raise ValueError(f"{file}: its config lacks {e.args[0]!r} (written by another "
                         f"version of rnnlab?)") from None
    load_model_tensors(model, tensors, file)
    return model.eval(), vocab, cfg


# -- training ---------------------------------------------------------------------------------


def prepare_data(cfg: dict) -> tuple[Vocabulary, torch.Tensor, torch.Tensor]:
    """(vocabulary, training ids, validation ids) of the config's text."""
    text, vocab = read_text(cfg["text"], byte_level=cfg["byte_level"])
    train_ids, val_ids = split(vocab.encode(text), cfg["val_fraction"])
    return vocab, train_ids, val_ids


def train(cfg: dict, out: str | Path | None = None, *, resume: bool = False,
          echo=None, progress: bool = False) -> dict:
    """Train as ``cfg`` (from `make_config`) says, keeping a run folder at ``out``
    (``resume``: continue the run there). ``echo`` gets validation lines and samples.
    Under torchrun every process calls this; they share the work (`rnnlab.lm.distributed`)."""
    ranks = distributed.join()
    try:
        result = _train(cfg, out, resume, echo, progress, ranks)
    except BaseException:
        distributed.leave(finished=False)
        raise
    distributed.leave(finished=True)
    return result


def _train(cfg, out, resume, echo, progress, ranks) -> dict:
    main = ranks is None or ranks.main
    run = RunDir(out) if out is not None else None
    writer = run if main else None  # rank 0 alone writes the run folder
    if resume:
        if run is None:
            raise ValueError("resuming needs the run folder")
        cfg = run.config()
    vocab, train_ids, val_ids = prepare_data(cfg)
    digest = _digest(cfg["text"])
    if resume and cfg.get("text_sha256") != digest:
        raise ValueError(f"{cfg['text']} changed since the run started: cannot resume")
    batches = StreamBatcher(train_ids, cfg["batch"], cfg["seq_len"])  # checks the length
    share = ranks.share(cfg["batch"]) if ranks else slice(None)
    if writer is not None and not resume:
        cfg = {**cfg, "text_sha256": digest}
        writer.create(cfg)
        atomic_write(writer.path / VOCAB, lambda tmp: Path(tmp).write_text(vocab.to_json(),
                                                                           encoding="utf-8"))

    chars_per_step = cfg["batch"] * cfg["seq_len"]
    device = torch.device("cpu") if ranks is None else ranks.device
    torch.manual_seed(cfg["seed"])
    model = CharLM(len(vocab), **model_config(cfg)).to(device)
    # DDP averages the ranks' gradients in backward (and starts every rank from rank 0's weights)
    net = model if ranks is None else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = _optimizer(cfg, model.parameters())
    step, chunk, elapsed, state = 0, 0, 0.0, None
    loss_sum, loss_n = 0.0, 0  # the training loss since the last log line
    best = {"val_nats": None, "step": None}  # the best validation so far
    saved = run.resume_point(tidy=main) if resume else None
    if resume and saved is None and writer is not None:  # killed before its first checkpoint
        _truncate_samples(run.path / SAMPLES, 0)
    if saved is not None:
        tensors, meta = saved
        load_model_tensors(model, tensors, run.path)
        optimizer_from_flat(opt, tensors, meta["optimizer"])
        generators = [tensors[f"rng.rank.{r}"] for r in range(meta.get("ranks", 0))]
        if ranks is None:
            torch.set_rng_state(tensors["rng.torch"])
        elif len(generators) == ranks.world and meta.get("device") == device.type:
            distributed.set_generator_state(device, generators[ranks.rank])  # its own
        else:  # another number or kind of processes: a seed of its own each
            torch.manual_seed(cfg["seed"] + 7919 * (ranks.rank + 1) + meta["step"])
        state = state_from_tensors([tensors[f"state.{i}"][:, share].to(device)
                                    for i in range(meta["n_state"])])
        step, chunk, elapsed, best = meta["step"], meta["chunk"], meta["elapsed"], meta["best"]
        loss_sum, loss_n = meta["loss_sum"], meta["loss_n"]
        if writer is not None:
            writer.truncate_metrics(step, key="step")
            _truncate_samples(writer.path / SAMPLES, step)
    if ranks is not None:
        distributed.barrier()  # the folder is ready before any rank goes on

    def checkpoint() -> None:
        """Everything to resume (with every rank's streams: a collective under torchrun)."""
        if run is None:
            return
        parts = state_tensors(state)
        extra = {}
        if ranks is not None:
            parts = [ranks.gather_streams(t) for t in parts]
            extra = {f"rng.rank.{r}": g for r, g in enumerate(ranks.gather_generators())}
        if writer is None:
            return
        tensors, optim_meta = optimizer_to_flat(opt)
        tensors.update(model_tensors(model))
        tensors["rng.torch"] = torch.get_rng_state()
        tensors.update(extra)
        tensors.update({f"state.{i}": s for i, s in enumerate(parts)})
        writer.save(tensors, {"lm": cfg, "vocab": vocab.to_json(), "step": step, "chunk": chunk,
                              "elapsed": elapsed, "best": best, "n_state": len(parts),
                              "loss_sum": loss_sum, "loss_n": loss_n, "ranks": len(extra),
                              "device": device.type, "optimizer": optim_meta})

    def validate() -> dict:
        record = {"step": step, "chars": step * chars_per_step,
                  "seconds": round(elapsed, 2), "minutes": round(elapsed / 60, 3)}
        improved = False
        if main:
            improved = _validate_on_main(record)
        if ranks is not None:
            improved = ranks.from_main(improved)
        if improved and run is not None:  # a resumed run must know this best, or it could
            checkpoint()  # overwrite it; after the log and samples, so that a kill before
        return record  # leaves them redone

    def _validate_on_main(record: dict) -> bool:
        improved = False
        if len(val_ids) >= 2:
            r = score(model, val_ids, streams=cfg["batch"], seq_len=cfg["seq_len"])
            record.update(val_nats=r["nats"], val_bpc=r["bpc"])
            bar.last_val_bpc = r["bpc"]
            if best["val_nats"] is None or r["nats"] < best["val_nats"]:
                best.update(val_nats=r["nats"], step=step)
                improved = True
                if writer is not None:
                    save_model(writer.path / BEST, model, vocab, cfg, {"step": step, **record})
        elif writer is not None:  # no validation text: the latest model is the one to keep
            save_model(writer.path / BEST, model, vocab, cfg, {"step": step, **record})
        text = sample_text(model, vocab, length=cfg["sample_length"],
                           temperature=cfg["sample_temperature"], seed=cfg["seed"] + step)
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if writer is not None:
            writer.log(record)
            with open(writer.path / SAMPLES, "a", encoding="utf-8") as f:
                f.write(f"--- step {step}, {record['minutes']:.1f} min ---\n{text}\n")
        if say is not None:
            val = (f"val {record['val_nats']:.4f} nats = {record['val_bpc']:.3f} bpc  [best "
                   f"{best['val_nats']:.4f} at step {best['step']}]" if "val_nats" in record
                   else "no validation text")
            say(f"step {step:,} ({record['minutes']:.1f} min): {val}")
            say("  " + text.replace("\n", "\n  "))
        return improved

    def budget_left() -> bool:
        if cfg["steps"] is not None and step >= cfg["steps"]:
            return False
        return cfg["minutes"] is None or elapsed < 60 * cfg["minutes"]

    bar = _Bar(progress and main, cfg)
    say = bar.print if progress else echo  # above the live line while it runs
    if not main:
        say = None
    rate_mark = (step, elapsed)
    start = time.perf_counter() - elapsed
    last_ckpt = time.perf_counter()
    model.train()
    try:
        with bar, DeferredInterrupt() as interrupt:
            while True:
                stop = not budget_left()
                due = time.perf_counter() - last_ckpt > cfg["checkpoint_seconds"]
                if ranks is not None:  # rank 0's clock decides; a Ctrl-C anywhere stops all
                    stop, due, asked = ranks.agree([main and stop, main and due,
                                                    interrupt.requested])
                    if asked:
                        raise KeyboardInterrupt
                interrupt.check()  # Ctrl-C lands here, between steps
                if due and step:
                    checkpoint()
                    last_ckpt = time.perf_counter()
                if stop:
                    break
                x, y = batches.chunk(chunk)
                x, y = x[:, share].to(device), y[:, share].to(device)
                logits, state = net(x, state)
                loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
                lr = cfg["lr"] * lr_factor(cfg, step, elapsed)
                for group in opt.param_groups:
                    group["lr"] = lr
                opt.step()
                state = detach(state)
                step, chunk = step + 1, chunk + 1
                if chunk == len(batches):  # an epoch: the streams start over from zero state
                    chunk, state = 0, None
                loss_sum, loss_n = loss_sum + float(loss.detach()), loss_n + 1
                elapsed = time.perf_counter() - start
                if step % cfg["log_every"] == 0:
                    rate = (step - rate_mark[0]) * chars_per_step / max(elapsed - rate_mark[1],
                                                                        1e-9)
                    rate_mark = (step, elapsed)
                    train_nats = loss_sum / loss_n
                    if ranks is not None:  # the loss over all the streams
                        train_nats = ranks.mean(train_nats)
                    record = {"step": step, "chars": step * chars_per_step,
                              "seconds": round(elapsed, 2), "train_nats": train_nats,
                              "lr": lr, "chars_per_s": round(rate)}
                    loss_sum, loss_n = 0.0, 0
                    if writer is not None:
                        writer.log(record)
                    bar.update(step, elapsed, record, best)
                if step % cfg["val_every"] == 0:
                    validate()
                    elapsed = time.perf_counter() - start
            if step % cfg["val_every"] != 0 or step == 0:
                validate()
    except KeyboardInterrupt:
        checkpoint()  # nothing is lost: `rnnlab lm train --resume RUN` goes on from here
        raise
    checkpoint()
    total_chars = step * chars_per_step
    result = {"steps": step, "chars": total_chars, "epochs": total_chars / len(train_ids),
              "seconds": round(elapsed, 2), "chars_per_s": round(total_chars / max(elapsed, 1e-9)),
              "best_val_nats": best["val_nats"],
              "best_val_bpc": None if best["val_nats"] is None else best["val_nats"] / LN2,
              "best_step": best["step"], "backend": cfg["backend"], "model": cfg["model"],
              "vocab_size": len(vocab), "processes": 1 if ranks is None else ranks.world}
    if writer is not None:
        writer.write_result(result)
    return result


def _truncate_samples(path: Path, step: int) -> None:
    """On resume, drop the samples written after the checkpoint being resumed from."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    blocks = re.split(r"(?m)^(?=--- step \d+, )", text)
    heads = [re.match(r"--- step (\d+)", b) for b in blocks]
    keep = [b for b, m in zip(blocks, heads) if m is None or int(m[1]) <= step]
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(keep), encoding="utf-8"))


class _Bar(LiveLine):
    """A live line: step, chars/s, recent training bpc, latest and best validation bpc."""

    last_val_bpc: float | None = None

    def __init__(self, enabled: bool, cfg: dict) -> None:
        self.cfg = cfg
        total = cfg["steps"] if cfg["minutes"] is None else 60 * cfg["minutes"]
        super().__init__(enabled, total, f"{cfg['backend']} {cfg['model']}", count=False)

    def update(self, step: int, elapsed: float, record: dict, best: dict) -> None:
        minutes, steps = self.cfg["minutes"], self.cfg["steps"]
        done = step if minutes is None else elapsed  # the budget's unit
        if steps is not None and minutes is not None:
            done = max(elapsed, 60 * minutes * step / steps)
        val = (f"  val {self.last_val_bpc:.3f} bpc (best {best['val_nats'] / LN2:.3f})"
               if self.last_val_bpc is not None else "")
        self.show(done, f"step {step:,}  {record['chars_per_s']:6,} chars/s  "
                        f"train {record['train_nats'] / LN2:.3f} bpc{val}")


def curve(run: str | Path) -> list[dict]:
    """The validation records of a run: step, chars, minutes, val nats and bpc."""
    return [m for m in RunDir(run).metrics() if "val_nats" in m]
