"""Each task generator against its definition (reference: ../shared/reference, §2–7, 11, 12)."""

import math

import pytest
import torch

from rnnlab import tasks
from rnnlab.tasks.reber import (
    SYMBOLS,
    continual_reber,
    embedded_string,
    is_embedded_reber,
    legal_next,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry():
    assert set(tasks.names()) >= {
        "reber", "longlag-2a", "longlag-2b", "longlag-2c", "latch-3a", "latch-3b", "latch-3c",
        "adding-1997", "multiplication-1997", "order-6a", "order-6b", "adding", "copy",
        "parity", "binary-addition"}
    with pytest.raises(ValueError, match="unknown task 'addding'"):
        tasks.make("addding")
    with pytest.raises(ValueError, match="no parameter Q"):
        tasks.make("adding-1997", Q=3)
    for name, bad in [("adding-1997", {"T": 10}), ("latch-3a", {"T": 100, "N": 100}),
                      ("parity", {"L": 0}), ("copy", {"T": "long"}), ("longlag-2c", {"p": 0})]:
        with pytest.raises(ValueError):
            tasks.make(name, **bad)


@pytest.mark.parametrize("name", tasks.names())
def test_seeded_and_shaped(name):
    task = tasks.make(name)
    a, b = task.sample(16, gen(3)), task.sample(16, gen(3))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, task.sample(16, gen(4)).x)
    T = a.x.shape[0]
    assert a.x.shape == (T, 16, task.input_size)
    assert a.mask.shape == (T, 16) and int(a.lengths.max()) == T
    # nothing past a sequence's end: no input, no target
    past = torch.arange(T).unsqueeze(1) >= a.lengths.unsqueeze(0)
    assert not a.x[past].any() and not a.mask[past].any()
    # a perfect output is judged correct, and the task's error of it is zero
    perfect = a.y if task.loss != "ce" else torch.nn.functional.one_hot(a.y, 9).float() * 50
    if name == "reber":
        perfect = a.extra["legal"].float()
    if name in ("latch-3c",):
        perfect = torch.zeros_like(a.y)
        perfect[a.lengths - 1, torch.arange(16)] = a.extra["clean"]
    assert task.correct(perfect, a).all()
    with pytest.raises(ValueError):
        task.sample(0)


# -- reber ----------------------------------------------------------------------------------

def test_reber_strings_are_grammatical():
    rng = gen()
    strings = [embedded_string(rng) for _ in range(2000)]
    assert all(is_embedded_reber(s) for s in strings)
    assert min(map(len, strings)) == 9
    assert abs(sum(map(len, strings)) / len(strings) - 12) < 0.3  # mean length 12
    # from the Reber pages: valid and invalid (embedded) examples
    for ok in ["BTBTXSETE", "BPBPVVEPE", "BTBTSSXXTVVETE", "BPBTXXVPSEPE"]:
        assert is_embedded_reber(ok), ok
    for bad in ["BTBTXSEPE", "BTBTSSXXTVPETE", "BTBPVPETE", "BTBTXSETEE", "BTTXSETE"]:
        assert not is_embedded_reber(bad), bad


def test_reber_legal_next_symbols():
    s = "BTBPVVETE"
    assert legal_next(s) == [{"T", "P"}, {"B"}, {"T", "P"}, {"T", "V"}, {"P", "V"},
                             {"E"}, {"T"}, {"E"}]
    batch = tasks.make("reber").encode([s])
    assert batch.x.shape[0] == len(s) - 1
    decoded = "".join(SYMBOLS[i] for i in batch.x[:, 0].argmax(-1))
    assert decoded == s[:-1]


def test_reber_target_codings_and_criteria():
    """targets: the next symbol one-hot, or every possible next symbol; criterion: all possible
    symbols the most active ones, or just the most active one possible."""
    s = "BTBPVVETE"
    one = tasks.make("reber").encode([s])
    every = tasks.make("reber", targets="possible").encode([s])
    assert (one.y.sum(-1) == 1).all() and torch.equal(every.y.bool(), every.extra["legal"])
    assert (one.y.bool() <= every.y.bool()).all()
    # outputs that rank one possible symbol first but not both of a pair of possible ones
    out = one.y * 0.9 + 0.05  # the actual next symbol wins, its sibling loses to others
    strict, top = tasks.make("reber"), tasks.make("reber", criterion="top")
    assert not bool(strict.correct(out, one)[0]) and bool(top.correct(out, one)[0])
    assert bool(strict.correct(every.y, every)[0]) and bool(top.correct(every.y, every)[0])
    with pytest.raises(ValueError, match="targets must be"):
        tasks.make("reber", targets="some")
    with pytest.raises(ValueError, match="criterion must be"):
        tasks.make("reber", criterion="best")


def test_continual_reber_stream_is_strings_of_the_grammar_without_a_break():
    """Gers et al. 2000's CERG stream: embedded Reber strings back to back; targets are the
    symbols that may follow (the next string's B after an E); starts mark each string's B."""
    import numpy as np

    symbols, targets, starts = continual_reber(400, np.random.default_rng(7))
    assert symbols.shape == starts.shape and targets.shape == (len(symbols), 7)
    bounds = [*np.flatnonzero(starts), len(symbols)]
    assert len(bounds) == 401 and bounds[0] == 0
    lengths = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        string = "".join(SYMBOLS[i] for i in symbols[a:b])
        assert is_embedded_reber(string), string
        want = [*legal_next(string), {"B"}]  # after the closing E: the next string's B
        got = [{SYMBOLS[k] for k in np.flatnonzero(row)} for row in targets[a:b]]
        assert got == want[: b - a], string
        lengths.append(b - a)
    assert 11 < np.mean(lengths) < 13  # the grammar's mean length is 12
    again, _, _ = continual_reber(400, np.random.default_rng(7))
    assert (again == symbols).all()  # a pure function of the generator
    with pytest.raises(ValueError, match="n_strings"):
        continual_reber(0, np.random.default_rng(0))


def test_reber_fixed_sets_are_disjoint():
    task = tasks.make("reber")
    train, test = task.fixed_sets(seed=1)
    assert train.x.shape[1] == test.x.shape[1] == 256

    def strings(b):
        return {"".join(SYMBOLS[i] for i in b.x[: int(n), j].argmax(-1))
                for j, n in enumerate(b.lengths)}
    assert not strings(train) & strings(test)


def test_reber_criterion():
    task = tasks.make("reber")
    batch = task.sample(8, gen())
    out = batch.extra["legal"].float()
    out[3, 0] = 1 - out[3, 0]  # one wrong step in string 0
    ok = task.correct(out, batch)
    assert not ok[0] and ok[1:].all()


# -- experiment 2 ---------------------------------------------------------------------------

def test_longlag_2a_has_exactly_two_sequences():
    task = tasks.make("longlag-2a", p=10)
    b = task.sample(200, gen())
    seq = torch.cat((b.x.argmax(-1), b.y[-1:].argmax(-1)))  # (p+1, B)
    assert set(map(tuple, seq.t().tolist())) == {
        (9,) + tuple(range(9)) + (9,), (10,) + tuple(range(9)) + (10,)}


def test_longlag_2b_random_middle():
    b = tasks.make("longlag-2b", p=10).sample(500, gen())
    seq = torch.cat((b.x.argmax(-1), b.y[-1:].argmax(-1)))
    assert torch.equal(seq[0], seq[-1]) and ((seq[0] == 9) | (seq[0] == 10)).all()
    middle = seq[1:-1]
    assert middle.max() <= 8 and len(middle.unique()) == 9


def test_longlag_2c_layout_and_mean_length():
    p, q = 20, 50
    task = tasks.make("longlag-2c", p=p, q=q)
    b = task.sample(20000, gen())
    syms = b.x.argmax(-1)
    rows = torch.arange(b.x.shape[1])
    assert (syms[0] == p + 1).all()  # b
    key = syms[1] - (p + 2)
    assert ((key == 0) | (key == 1)).all() and torch.equal(key, b.extra["key"])
    last = b.lengths - 1
    assert (syms[last, rows] == p).all()  # the trigger e is the last input
    assert torch.equal(b.y[last, rows].argmax(-1), key)
    between = (torch.arange(syms.shape[0]).unsqueeze(1) >= 2) & (
        torch.arange(syms.shape[0]).unsqueeze(1) < last.unsqueeze(0))
    assert syms[between].max() < p  # distractors only
    full_length = (b.lengths + 1).float()  # the sequence includes the final key
    assert full_length.min() >= q + 4
    assert abs(full_length.mean().item() - (q + 13)) < 0.3  # the paper's q + 14 is a slip
    assert abs(key.float().mean().item() - 0.5) < 0.02


# -- experiment 3 ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["latch-3a", "latch-3b", "latch-3c"])
def test_latch(name):
    T, N = 100, 3
    task = tasks.make(name, T=T, N=N)
    b = task.sample(4000, gen())
    assert b.lengths.min() >= T and b.lengths.max() <= T + T // 10
    cls = b.extra["cls"]
    sign = 1.0 - 2.0 * cls.float()
    head = b.x[:N, :, 0]
    if name == "latch-3b":
        assert abs((head - sign).var().item() - 0.2) < 0.02
    else:
        assert torch.equal(head, sign.expand(N, -1))
    noise = b.x[N:T, :, 0]
    assert abs(noise.var().item() - 0.2) < 0.005 and abs(noise.mean().item()) < 0.005
    target = b.y[b.lengths - 1, torch.arange(4000), 0]
    clean = b.extra["clean"][:, 0]
    want = torch.where(cls == 0, *(torch.tensor(v) for v in task.targets))
    assert torch.equal(clean, want)
    if name == "latch-3c":
        assert abs((target - clean).var().item() - 0.1) < 0.01
    else:
        assert torch.equal(target, clean)
    assert abs(cls.float().mean().item() - 0.5) < 0.03


# -- experiments 4 and 5 --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["adding-1997", "multiplication-1997"])
def test_marked_pairs(name):
    T = 100
    task = tasks.make(name, T=T)
    b = task.sample(5000, gen())
    B = b.x.shape[1]
    rows = torch.arange(B)
    values, marker = b.x[..., 0], b.x[..., 1]
    assert ((marker == 1).sum(0) == 2).all()
    first, second = b.extra["first"], b.extra["second"]
    assert first.max() <= 9 and second.max() <= T // 2 - 2 and (first != second).all()
    assert (marker[first, rows] == 1).all() and (marker[second, rows] == 1).all()
    last = b.lengths - 1
    assert (marker[last, rows] == -1).all()
    assert ((marker[0] == -1) | (marker[0] == 1)).all()
    others = marker.clone()
    others[first, rows] = others[second, rows] = others[0] = others[last, rows] = 0
    assert not others.any()
    x1, x2 = values[first, rows], values[second, rows]
    y = b.y[last, rows, 0]
    if name == "adding-1997":
        assert values.min() >= -1 and torch.allclose(y, 0.5 + (x1 + x2) / 4)
        assert (x1[first == 0] == 0).all()
        # the reference's trivial baseline: always 0.5 scores MSE ≈ 0.0396, 15 % "correct"
        assert abs(((y - 0.5) ** 2).mean().item() - 0.0396) < 0.002
        assert abs(((y - 0.5).abs() < 0.04).float().mean().item() - 0.154) < 0.015
    else:
        assert values.min() >= 0 and torch.allclose(y, x1 * x2)
        assert (x1[first == 0] == 1).all()
        assert abs(y.var().item() - 0.058) < 0.004  # the reference's target variance


# -- experiment 6 ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,windows", [("order-6a", [(10, 20), (50, 60)]),
                                          ("order-6b", [(10, 20), (33, 43), (66, 76)])])
def test_temporal_order(name, windows):
    b = tasks.make(name).sample(3000, gen())
    syms = b.x.argmax(-1)
    rows = torch.arange(3000)
    assert (syms[0] == 6).all() and (syms[b.lengths - 1, rows] == 7).all()
    assert b.lengths.min() >= 100 and b.lengths.max() <= 110
    is_xy = (syms == 4) | (syms == 5)
    assert (is_xy.sum(0) == len(windows)).all()
    positions = is_xy.t().nonzero()[:, 1].view(3000, len(windows)) + 1  # 1-based
    for k, (lo, hi) in enumerate(windows):
        assert positions[:, k].min() == lo and positions[:, k].max() == hi
    xy = (syms.t()[is_xy.t()].view(3000, len(windows)) - 4)
    cls = sum(xy[:, k] * 2 ** (len(windows) - 1 - k) for k in range(len(windows)))
    assert torch.equal(cls, b.extra["cls"])
    assert torch.equal(b.y[b.lengths - 1, rows].argmax(-1), cls)
    assert len(cls.unique()) == 2 ** len(windows)


# -- modern and toys ------------------------------------------------------------------------

def test_adding_modern_and_its_baseline():
    T = 100
    b = tasks.make("adding", T=T).sample(20000, gen())
    marker = b.x[..., 1]
    assert (marker[: T // 2].sum(0) == 1).all() and (marker[T // 2 :].sum(0) == 1).all()
    y = b.y[-1, :, 0]
    assert torch.allclose(y, (b.x[..., 0] * marker).sum(0))
    assert abs(((y - 1) ** 2).mean().item() - 1 / 6) < 0.005


def test_copy_layout_and_memoryless_baseline():
    T = 30
    task = tasks.make("copy", T=T)
    b = task.sample(64, gen())
    inp = b.x.argmax(-1)
    assert inp.shape[0] == T + 20
    assert (inp[:10] >= 1).all() and (inp[:10] <= 8).all()
    assert (inp[10 : T + 9] == 0).all() and (inp[T + 9] == 9).all() and (inp[T + 10 :] == 0).all()
    assert (b.y[: T + 10] == 0).all() and torch.equal(b.y[T + 10 :], inp[:10])
    # blank for T + 10 steps, then uniform over the 8 data symbols
    logits = torch.full((T + 20, 64, 9), -1e4)
    logits[: T + 10, :, 0] = 0
    logits[T + 10 :, :, 1:] = 0
    ce = task.error(logits, b).mean() / (T + 20)
    assert abs(ce.item() - task.baseline_ce) < 1e-5
    assert abs(task.baseline_ce - 10 * math.log(8) / (T + 20)) < 1e-12


@pytest.mark.parametrize("variable", [False, True])
def test_parity(variable):
    L = 20
    b = tasks.make("parity", L=L, variable=variable).sample(4000, gen())
    rows = torch.arange(4000)
    bits = b.x[..., 0]
    assert torch.equal(b.y[b.lengths - 1, rows, 0], bits.sum(0) % 2)
    if variable:
        assert b.lengths.min() == 1 and b.lengths.max() == L
    else:
        assert (b.lengths == L).all()
    assert abs(b.y[b.lengths - 1, rows, 0].mean().item() - 0.5) < 0.03


def test_binary_addition():
    n = 8
    b = tasks.make("binary-addition", bits=n).sample(500, gen())
    weights = 2 ** torch.arange(n).float()
    a = (b.x[..., 0] * weights.unsqueeze(1)).sum(0)
    c = (b.x[..., 1] * weights.unsqueeze(1)).sum(0)
    total = (b.y[..., 0] * weights.unsqueeze(1)).sum(0)
    assert torch.equal(total, a + c)
    assert a.max() < 2 ** (n - 1) and c.max() < 2 ** (n - 1)


@pytest.mark.parametrize("name", tasks.names())
def test_mean_length(name):
    small = {"longlag-2a": {"p": 10}, "longlag-2b": {"p": 10}, "longlag-2c": {"p": 5, "q": 20},
             "latch-3a": {"T": 50}, "latch-3b": {"T": 50}, "latch-3c": {"T": 50},
             "adding-1997": {"T": 50}, "multiplication-1997": {"T": 50}}.get(name, {})
    task = tasks.make(name, **small)
    lengths = task.sample(4000, gen()).lengths.float()
    assert abs(lengths.mean().item() - task.mean_length) < 0.05 * task.mean_length + 0.3
