"""rnnlab.lm: the model, truncated BPTT with carried state, scoring, sampling, run folders."""

import math
import os
import random
import re
import signal

import pytest
import torch
import torch.nn.functional as F

from rnnlab import lm
from rnnlab.lm import trainer as lm_train
from rnnlab.lm.model import CharLM, detach
from rnnlab.lm.sample import next_symbol

TINY = dict(hidden=24, layers=1, embedding=8, dropout=0.0, lr=1e-2, val_every=1000)


def words_text(n_words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = "the cat sat on a mat and then it ran off to see a dog".split()
    return " ".join(rng.choice(words) for _ in range(n_words)) + "\n"


def write(tmp_path, text: str, name: str = "text.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the model --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_rnnlab_and_torch_backends_agree(kind):
    """Same state_dict, same logits, state and gradients: the core is a drop-in."""
    torch.manual_seed(0)
    ours = CharLM(11, model=kind, hidden=7, layers=2, embedding=5, dropout=0.0)
    theirs = CharLM(11, model=kind, hidden=7, layers=2, embedding=5, dropout=0.0,
                    backend="torch")
    theirs.load_state_dict(ours.state_dict())
    x = torch.randint(0, 11, (9, 3))
    outs = []
    for m in (ours, theirs):
        logits, state = m(x)
        logits.square().sum().backward()
        outs.append((logits, state, [p.grad for p in m.parameters()]))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(lm.model.state_tensors(outs[0][1]), lm.model.state_tensors(outs[1][1])):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(outs[0][2], outs[1][2]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_chunks_with_carried_state_equal_one_long_pass():
    """The state at the start of chunk k+1 is the state at the end of chunk k: reading a text in
    chunks with the state carried gives the same predictions as reading it at once."""
    torch.manual_seed(1)
    model = CharLM(6, hidden=10, layers=2, embedding=0, dropout=0.0, options={"peephole": True})
    x = torch.randint(0, 6, (30, 4))
    whole, end = model(x)
    state, parts = None, []
    for s in range(0, 30, 7):
        logits, state = model(x[s : s + 7], detach(state))
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts), whole)
    for a, b in zip(state, end):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kwargs,message", [
    (dict(model="lstm9"), "unknown model"),
    (dict(options={"bidirectional": True}), "bidirectional"),
    (dict(options={"peephole": True}, backend="torch"), "peephole"),
    (dict(options={"batch_first": True}), "set by the language model"),
    (dict(hidden=0), "hidden"),
    (dict(embedding=-1), "embedding"),
    (dict(dropout=1.0), "dropout"),
    (dict(backend="jax"), "backend"),
])
def test_bad_model_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CharLM(5, **kwargs)


def test_bad_model_input():
    model = CharLM(5, hidden=4, layers=1)
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model(torch.full((2, 1), 5))


# -- scoring ----------------------------------------------------------------------------------


def naive_nats(model, ids, starts):
    """Per-symbol loop: stream s predicts ids[a+1 : b+1] from ids[a : b], from the zero state."""
    total, n = 0.0, 0
    with torch.no_grad():
        for a, b in starts:
            logits, _ = model(ids[a:b].unsqueeze(1))
            total += float(F.cross_entropy(logits[:, 0], ids[a + 1 : b + 1], reduction="sum"))
            n += b - a
    return total / n, n


@pytest.mark.parametrize("streams,seq_len", [(1, 7), (3, 5), (4, 100)])
def test_score_predicts_every_symbol_once(streams, seq_len):
    torch.manual_seed(2)
    model = CharLM(5, hidden=8, layers=1, embedding=3).eval()
    ids = torch.randint(0, 5, (47,))
    r = lm.score(model, ids, streams=streams, seq_len=seq_len)
    L = 46 // streams  # B equal streams; the rest continues the last one
    bounds = [(b * L, (b + 1) * L) for b in range(streams - 1)] + [((streams - 1) * L, 46)]
    expected, n = naive_nats(model, ids, bounds)
    assert r["symbols"] == n == 46
    assert r["nats"] == pytest.approx(expected, rel=1e-6)
    assert r["bpc"] == pytest.approx(expected / math.log(2), rel=1e-6)


def test_score_of_the_training_text_is_the_training_loss(tmp_path):
    """With the training chunks and streams (and weights held still by a vanishing learning
    rate), the mean training loss of an epoch equals the score of the training text."""
    B, T, chunks = 4, 10, 3
    ids_needed = B * T * chunks + 1
    text = (words_text(200) * 3)[:ids_needed]
    path = write(tmp_path, text)
    cfg = lm.make_config(path, **{**TINY, "lr": 1e-30}, batch=B, seq_len=T, steps=chunks,
                         log_every=chunks, val_fraction=0.0, schedule="constant")
    lm.train(cfg, tmp_path / "run")
    logged = [m for m in lm_train.RunDir(tmp_path / "run").metrics() if "train_nats" in m]
    model, vocab, _ = lm.load_model(tmp_path / "run")
    r = lm.score(model, vocab.encode(text), streams=B, seq_len=T)
    assert logged[0]["train_nats"] == pytest.approx(r["nats"], rel=1e-5)


# -- the trainer ------------------------------------------------------------------------------


class Recording(CharLM):
    """CharLM that records what goes in and out of each forward, and can press Ctrl-C in the
    middle of a training step (after the forward pass, before backward and the update)."""

    calls: list = []
    interrupt_at: int | None = None

    def forward(self, x, state=None):
        if self.training:
            if Recording.interrupt_at == len(Recording.calls):
                os.kill(os.getpid(), signal.SIGINT)
            logits, out = super().forward(x, state)
            Recording.calls.append((x.clone(), state, detach(out)))
            return logits, out
        return super().forward(x, state)


@pytest.fixture
def recording(monkeypatch):
    Recording.calls, Recording.interrupt_at = [], None
    monkeypatch.setattr(lm_train, "CharLM", Recording)
    return Recording


def test_trainer_carries_the_state_and_detaches_it(tmp_path, recording):
    B, T = 3, 8
    text = words_text(40)  # 3 streams, a few chunks each
    cfg = lm.make_config(write(tmp_path, text), **TINY, batch=B, seq_len=T, steps=12,
                         val_fraction=0.0)
    lm.train(cfg)
    batches = lm.StreamBatcher(lm.Vocabulary.from_text(text).encode(text), B, T)
    calls = recording.calls
    for k, (x, state_in, _) in enumerate(calls):
        torch.testing.assert_close(x, batches.chunk(k)[0])
        if k % len(batches) == 0:
            assert state_in is None  # each epoch starts from the zero state
        else:
            prev_out = calls[k - 1][2]
            for a, b in zip(state_in, prev_out):
                assert not a.requires_grad  # detached: truncated BPTT
                torch.testing.assert_close(a, b)


def test_interrupted_training_resumes_exactly(tmp_path, recording):
    path = write(tmp_path, words_text(300))
    cfg = lm.make_config(path, **{**TINY, "dropout": 0.2, "layers": 2, "val_every": 10},
                         output_dropout=0.1, batch=4,
                         seq_len=12, steps=30, checkpoint_seconds=1e9)
    lm.train(cfg, tmp_path / "whole")
    recording.calls, recording.interrupt_at = [], 17
    with pytest.raises(KeyboardInterrupt):
        lm.train(cfg, tmp_path / "cut")
    recording.interrupt_at = None
    lm.train(cfg, tmp_path / "cut", resume=True)
    a = lm_train.load_checkpoint(tmp_path / "whole" / "checkpoint.safetensors")[0]
    b = lm_train.load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")[0]
    for name in a:
        if name.startswith("model."):
            assert torch.equal(a[name], b[name]), name
    strip = lambda ms: [{k: v for k, v in m.items() if k not in ("seconds", "minutes",
                                                                 "chars_per_s")} for m in ms]
    whole = lm_train.RunDir(tmp_path / "whole").metrics()
    cut = lm_train.RunDir(tmp_path / "cut").metrics()
    assert strip(whole) == strip(cut)
    # those after the checkpoint were not kept twice (headers say the minutes: these differ)
    samples = [re.sub(r", [\d.]+ min ---", " ---", (tmp_path / r / "samples.txt").read_text())
               for r in ("whole", "cut")]
    assert samples[0] == samples[1]


def test_a_second_ctrl_c_interrupts_at_once():
    with lm_train.DeferredInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested  # the first only asks
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_run_folder_best_model_and_curve(tmp_path):
    path = write(tmp_path, words_text(800))
    lines = []
    cfg = lm.make_config(path, **{**TINY, "val_every": 40}, batch=8, seq_len=20, steps=120)
    r = lm.train(cfg, tmp_path / "run", echo=lines.append)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "vocab.json", "metrics.jsonl", "checkpoint.safetensors",
            "best.safetensors", "samples.txt", "result.json"} <= files
    curve = lm.curve(tmp_path / "run")
    assert [m["step"] for m in curve] == [40, 80, 120]
    assert r["best_val_nats"] == min(m["val_nats"] for m in curve)
    assert r["best_val_bpc"] == pytest.approx(r["best_val_nats"] / math.log(2))
    assert curve[-1]["val_nats"] < curve[0]["val_nats"]
    assert any(line.startswith("step 40") for line in lines)
    model, vocab, _ = lm.load_model(tmp_path / "run")  # the best one, self-contained
    val = lm.split(vocab.encode(path.read_text()), 0.05)[1]
    assert lm.score(model, val, streams=8, seq_len=20)["nats"] == pytest.approx(
        r["best_val_nats"], rel=1e-6)
    with pytest.raises(ValueError, match="already holds a run"):
        lm.train(cfg, tmp_path / "run")


def test_a_tiny_model_memorises_a_short_text(tmp_path):
    text = "the lstm keeps its cell state on a constant error carousel.\n" * 10
    cfg = lm.make_config(write(tmp_path, text), hidden=64, layers=1, embedding=16, dropout=0.0,
                         lr=1e-2, batch=4, seq_len=25, steps=200, val_fraction=0.0,
                         val_every=1000)
    lm.train(cfg, tmp_path / "run")
    model, vocab, _ = lm.load_model(tmp_path / "run")
    assert lm.score(model, vocab.encode(text), streams=1)["nats"] < 0.1
    line = text.splitlines()[0] + "\n"
    continued = lm.sample_text(model, vocab, prime="the", length=len(line) - 3, argmax=True)
    assert "the" + continued == line


@pytest.mark.parametrize("options,message", [
    (dict(optimizer="sgd"), "optimizer"),
    (dict(schedule="step"), "schedule"),
    (dict(batch=0), "batch"),
    (dict(minutes=-1.0), "minutes"),
    (dict(min_lr=2.0), "min_lr"),
    (dict(decay_from=1.0), "decay_from"),
    (dict(output_dropout=-0.1), "output_dropout"),
    (dict(val_fraction=1.0), "val_fraction"),
    (dict(model="lstm1997"), "unknown model"),
    (dict(colour="red"), "unknown option"),
])
def test_bad_training_options(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        lm.make_config(write(tmp_path, "abc" * 50), **options)


def test_text_too_short_and_missing(tmp_path):
    cfg = lm.make_config(write(tmp_path, "abcdefgh" * 4), batch=8, seq_len=100, steps=1)
    with pytest.raises(ValueError, match="too short"):
        lm.train(cfg)
    with pytest.raises(ValueError, match="no text file"):
        lm.make_config(tmp_path / "missing.txt")


def test_default_budget_and_schedule(tmp_path):
    cfg = lm.make_config(write(tmp_path, "abc" * 50))
    assert cfg["minutes"] == lm_train.DEFAULT_MINUTES and cfg["steps"] is None
    budget, hold = 60 * cfg["minutes"], cfg["decay_from"]
    assert lm_train.lr_factor(cfg, 0, 0.0) == 1.0
    assert lm_train.lr_factor(cfg, 0, hold * budget) == 1.0  # held until decay_from
    halfway = (hold + (1 - hold) / 2) * budget
    assert lm_train.lr_factor(cfg, 0, halfway) == pytest.approx((1 + cfg["min_lr"]) / 2)
    assert lm_train.lr_factor(cfg, 0, budget) == pytest.approx(cfg["min_lr"])
    by_steps = lm.make_config(write(tmp_path, "abc" * 50), steps=10, schedule="linear",
                              decay_from=0.0)
    assert by_steps["minutes"] is None
    assert lm_train.lr_factor(by_steps, 5, 1e6) == pytest.approx(0.55)  # steps only
    both = lm.make_config(write(tmp_path, "abc" * 50), steps=10, minutes=1.0, decay_from=0.0,
                          schedule="linear", min_lr=0.0)
    assert lm_train.lr_factor(both, 2, 45.0) == pytest.approx(0.25)  # whichever is further


def test_byte_level_models_bytes(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 8 + "naïve ☃\n".encode() * 20)
    cfg = lm.make_config(path, **TINY, byte_level=True, batch=4, seq_len=16, steps=10)
    lm.train(cfg, tmp_path / "run")
    model, vocab, _ = lm.load_model(tmp_path / "run")
    assert vocab.byte_level and model.vocab_size == 256
    out = lm.sample_text(model, vocab, prime=b"\xff\x00", length=20, seed=0)
    assert isinstance(out, bytes) and len(out) == 20


# -- sampling ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm")
    path = write(tmp, words_text(600))
    cfg = lm.make_config(path, **TINY, batch=8, seq_len=20, steps=60)
    lm.train(cfg, tmp / "run")
    return lm.load_model(tmp / "run")[:2]


def test_sampling_is_determined_by_the_seed(trained):
    model, vocab = trained
    a = lm.sample_text(model, vocab, prime="the ", length=80, seed=5)
    b = lm.sample_text(model, vocab, prime="the ", length=80, seed=5)
    c = lm.sample_text(model, vocab, prime="the ", length=80, seed=6)
    assert a == b and a != c and len(a) == 80


def test_temperature_to_zero_is_argmax(trained):
    model, vocab = trained
    greedy = lm.sample_text(model, vocab, prime="a ", length=60, argmax=True)
    assert lm.sample_text(model, vocab, prime="a ", length=60, temperature=0) == greedy
    for seed in range(3):
        for t in (1e-3, 1e-320):  # no overflow however small
            assert lm.sample_text(model, vocab, prime="a ", length=60, temperature=t,
                                  seed=seed) == greedy


def test_top_k_draws_only_from_the_k_most_likely():
    logits = torch.tensor([0.0, 3.0, 1.0, 2.0, -1.0])
    gen = torch.Generator().manual_seed(0)
    draws = {next_symbol(logits, 5.0, 2, False, gen) for _ in range(300)}
    assert draws == {1, 3}
    assert next_symbol(logits, 1.0, 1, False, gen) == 1


def test_sampling_streams_symbol_by_symbol(trained):
    model, vocab = trained
    pieces = lm.generate(model, vocab, length=5, seed=0)
    assert [len(next(pieces)) for _ in range(5)] == [1] * 5
    assert next(pieces, None) is None


@pytest.mark.parametrize("kwargs,message", [
    (dict(temperature=-0.5), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(temperature=float("inf")), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(length=-1), "length"),
    (dict(prime="Q"), "lacks"),
])
def test_bad_sampling_options(trained, kwargs, message):
    model, vocab = trained
    with pytest.raises(ValueError, match=message):
        lm.sample_text(model, vocab, **kwargs)


def test_load_model_rejects_other_files(tmp_path):
    with pytest.raises(ValueError, match="no language-model run"):
        lm.load_model(tmp_path)
    (tmp_path / "x.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a valid rnnlab checkpoint"):
        lm.load_model(tmp_path / "x.safetensors")
