"""The report of a char-LM run (`rnnlab lm train`): curves, samples at two temperatures, and a
validation passage coloured character by character by what single units do as they read it
(chosen by their correlation with simple features of the text) and by the model's loss."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..lm.sample import sample_text
from ..lm.trainer import load_model, prepare_data
from ..training.runs import RunDir
from .common import config_and_environment, curve_figure, side_by_side
from .page import Page, esc, figure_png, table

PASSAGE = 1200  # characters of validation text shown
TEMPERATURES = (0.5, 1.0)


def report(folder: Path, cells: list[int] | None = None) -> Page:
    run = RunDir(folder)
    cfg = run.config()
    model, vocab, _ = load_model(folder)
    page = Page(f"rnnlab char-LM — {cfg['model']} {cfg['layers']}×{cfg['hidden']} on "
                f"{Path(cfg['text']).name}", str(folder))
    result = run.result() if (folder / "result.json").is_file() else None
    page.section("result", "Result", _result(result),
                 "Bits per character on the held-out validation tail: the lower, the better "
                 "the model predicts the next character (log2 of the vocabulary is chance).")
    page.section("curves", "Learning curves", _curves(run.metrics()),
                 "Training loss (light) and validation loss against characters read and "
                 "against minutes of training.")
    page.section("samples", "Samples", _samples(model, vocab, cfg),
                 "Text the model writes from a newline: colder (0.5) repeats its surest "
                 "guesses; 1.0 samples its actual distribution.")
    ids = _passage(cfg)
    if ids is None:
        page.section("cells", "Cells at work", f"<p>The text {esc(cfg['text'])} is not "
                     "here any more: no passage to read.</p>")
    else:
        page.section("cells", "Cells at work", _cells(model, vocab, ids, cells),
                     "A validation passage coloured by one unit of the top layer as the model "
                     "reads it (red positive, blue negative). The units shown are those whose "
                     "activation follows a feature of the text most closely (the correlation "
                     "is given), plus any asked for with --cells.")
        page.section("loss", "Where the model is surprised", _loss(model, vocab, ids),
                     "The same passage coloured by the model's loss on each character "
                     "(−log₂ p, in bits): dark where it did not see the character coming.")
    config_and_environment(page, folder, cfg)
    return page


def _result(result: dict | None) -> str:
    if result is None:
        return "<p>Not finished: no result.json yet.</p>"
    bpc = result.get("best_val_bpc")
    rows = [["best validation", "—" if bpc is None else f"{bpc:.4f} bits/char"],
            ["at step", result.get("best_step")], ["steps", f"{result['steps']:,}"],
            ["characters read", f"{result['chars']:,} ({result['epochs']:.2f} epochs)"],
            ["speed", f"{result['chars_per_s']:,} chars/s"],
            ["vocabulary", result["vocab_size"]], ["backend", result["backend"]]]
    return table(["", ""], rows)


def _curves(metrics: list[dict]) -> str:
    train = [m for m in metrics if "train_nats" in m]
    val = [m for m in metrics if "val_bpc" in m]
    if not train and not val:
        return "<p>No log lines yet.</p>"
    by_chars = [("train", [m["chars"] for m in train],
                 [m["train_nats"] / math.log(2) for m in train]),
                ("validation", [m["chars"] for m in val], [m["val_bpc"] for m in val])]
    by_minutes = [("train", [m["seconds"] / 60 for m in train],
                   [m["train_nats"] / math.log(2) for m in train]),
                  ("validation", [m["seconds"] / 60 for m in val], [m["val_bpc"] for m in val])]
    return side_by_side(
        figure_png(curve_figure(by_chars, "characters", "bits per character", log=False)),
        figure_png(curve_figure(by_minutes, "minutes", "bits per character", log=False)))


def _samples(model, vocab, cfg) -> str:
    parts = []
    for t in TEMPERATURES:
        text = sample_text(model, vocab, length=400, temperature=t, seed=cfg["seed"])
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        parts.append(f"<h3>temperature {t}</h3><pre>{esc(text)}</pre>")
    return "".join(parts)


def _passage(cfg) -> torch.Tensor | None:
    if not Path(cfg["text"]).is_file():
        return None
    _, train_ids, val_ids = prepare_data(cfg)
    ids = val_ids if len(val_ids) >= 50 else train_ids[-PASSAGE:]
    return ids[:PASSAGE]


@torch.no_grad()
def _read(model, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(top-layer activations (T, H), bits of surprise at each character (T,); 0 for the
    first, which nothing predicts)."""
    x = ids.unsqueeze(1)
    e = model.embed(x) if model.embed is not None else F.one_hot(
        x, model.vocab_size).to(model.head.weight.dtype)
    h, _ = model.core(e)
    logits = model.head(h)[:, 0]
    bits = torch.zeros(len(ids))
    bits[1:] = F.cross_entropy(logits[:-1], ids[1:], reduction="none") / math.log(2)
    return h[:, 0], bits


def _features(chars: list[str]) -> dict[str, torch.Tensor]:
    """Simple properties of each position: inside double quotes, bracket depth, column."""
    quote, depth, column = [], [], []
    q = d = c = 0
    for ch in chars:
        if ch == '"':
            q = 1 - q
        d = d + 1 if ch in "([{" else max(0, d - 1) if ch in ")]}" else d
        c = 0 if ch == "\n" else c + 1
        quote.append(q)
        depth.append(d)
        column.append(c)
    return {"inside quotes": torch.tensor(quote, dtype=torch.float64),
            "bracket depth": torch.tensor(depth, dtype=torch.float64),
            "position in line": torch.tensor(column, dtype=torch.float64)}


def _correlations(acts: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of every unit's activation with the feature; 0 where either is
    constant."""
    a = acts.double() - acts.double().mean(0)
    f = feature - feature.mean()
    denom = a.norm(dim=0) * f.norm()
    return torch.where(denom > 0, (a * f.unsqueeze(1)).sum(0) / denom.clamp_min(1e-300), 0.0)


def _chars(vocab, ids) -> list[str]:
    out = []
    for i in ids.tolist():
        s = vocab.decode([i])
        out.append(s.decode("latin-1") if isinstance(s, bytes) else s)
    return out


def _coloured(chars: list[str], values: torch.Tensor, scale: float, signed: bool) -> str:
    spans = []
    for ch, v in zip(chars, values.tolist()):
        a = max(-1.0, min(1.0, v / scale)) if scale > 0 else 0.0
        rgb = "214,39,40" if a >= 0 or not signed else "31,119,180"
        spans.append(f'<span style="background:rgba({rgb},{abs(a):.2f})">{esc(ch)}</span>')
    return f'<div class="passage">{"".join(spans)}</div>'


def _cells(model, vocab, ids, cells: list[int] | None) -> str:
    acts, _ = _read(model, ids)
    chars = _chars(vocab, ids)
    chosen: list[tuple[int, str]] = []
    for name, feature in _features(chars).items():
        r = _correlations(acts, feature)
        unit = int(r.abs().argmax())
        if float(r[unit]) != 0.0:
            chosen.append((unit, f"follows {name} (r = {float(r[unit]):+.2f})"))
    for unit in cells or []:
        if not 0 <= unit < acts.shape[1]:
            raise ValueError(f"--cells: unit {unit} does not exist; the top layer has "
                             f"{acts.shape[1]} units (0..{acts.shape[1] - 1})")
        chosen.append((unit, "asked for"))
    parts = []
    for unit, why in chosen:
        values = acts[:, unit]
        parts.append(f"<h3>unit {unit}: {esc(why)}</h3>"
                     + _coloured(chars, values, float(values.abs().max()), signed=True))
    return "".join(parts) or "<p>No unit varies with the text.</p>"


def _loss(model, vocab, ids) -> str:
    _, bits = _read(model, ids)
    chars = _chars(vocab, ids)
    mean = float(bits[1:].mean())
    return (f"<p>Mean {mean:.3f} bits per character over this passage.</p>"
            + _coloured(chars, bits, max(8.0, float(bits.max())), signed=False))
