"""Text in and out of the terminal: the values a person types (`parse_value`), and plain-text
tables where names never wrap and descriptions do.

A name (a task, an experiment key, a corpus) is something a person copies into the next
command, so its column keeps its full width; the columns named in ``wrap`` share what is left
of the terminal's width (80 when it is not a terminal) and wrap at word boundaries.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from itertools import zip_longest

#: the words a yes/no value may be written as (besides JSON's true, false, 1 and 0)
BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False}


def parse_value(text: str):
    """A typed value: JSON (numbers, lists, mappings, quoted strings), true/false and yes/no in
    any case as booleans, anything else the string itself (which the setting it reaches then
    accepts or rejects by name: a yes/no setting never takes "maybe" as true)."""
    if text.strip().lower() in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[text.strip().lower()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def terminal_width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def table(headers: list[str], rows: list[list], *, wrap: tuple[int, ...] = (),
          right: tuple[int, ...] = (), width: int | None = None, gap: int = 2) -> str:
    """The rows under their headers, each line at most ``width`` characters wherever the
    unwrapped columns fit in it; the columns in ``right`` (numbers) aligned right."""
    width = width or terminal_width()
    cells = [[str(c) for c in row] for row in rows]
    natural = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    fixed = sum(w for i, w in enumerate(natural) if i not in wrap) + gap * (len(headers) - 1)
    room = max(width - fixed, 16 * len(wrap))
    widths = list(natural)
    # each wrapped column gets its longest word, then the rest of the room in proportion to
    # how much more it would like
    words = {i: max([len(w) for r in cells for w in r[i].split()] + [len(headers[i]), 4])
             for i in wrap}
    for i in wrap:
        widths[i] = min(natural[i], words[i])
    spare = room - sum(widths[i] for i in wrap)
    more = sum(natural[i] - widths[i] for i in wrap) or 1
    for i in wrap:
        widths[i] += max(0, spare) * (natural[i] - widths[i]) // more
    lines = []
    for row in [headers, ["-" * w for w in widths]] + cells:
        parts = [textwrap.wrap(c, widths[i], break_on_hyphens=False) if i in wrap else [c]
                 for i, c in enumerate(row)]
        for pieces in zip_longest(*parts, fillvalue=""):
            line = (" " * gap).join(p.rjust(w) if i in right else p.ljust(w)
                                    for i, (p, w) in enumerate(zip(pieces, widths)))
            lines.append(line.rstrip())
    return "\n".join(lines)
