"""One self-contained HTML page: inline CSS, figures as PNG data URIs, no script, no request.

The page's Content-Security-Policy forbids every fetch (``default-src 'none'``), so even a
link that slipped in could not load anything: the file reads the same offline, anywhere.
"""

from __future__ import annotations

import base64
import html
import io

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 0 auto; padding: 1.5em 2em 4em; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
p.sub { color: #555; margin-top: 0; }
p.how { color: #444; font-size: 0.92em; background: #f5f7fa; border-left: 3px solid #8aa4c8;
        padding: 0.4em 0.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:first-child { white-space: nowrap; }
.wide { overflow-x: auto; }
tr.good td:first-child { border-left: 3px solid #2e9e4f; }
tr.miss td:first-child { border-left: 3px solid #c94a4a; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 0.7em; overflow-x: auto; white-space: pre-wrap; }
.passage { font: 13px/1.7 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap;
           border: 1px solid #ddd; padding: 0.6em; }
.passage span { border-radius: 2px; }
nav a { margin-right: 1em; }
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def figure_png(fig, dpi: int = 100) -> str:
    """A matplotlib figure as an <img> with its PNG inline (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return png_bytes(buf.getvalue())


def png_bytes(data: bytes, alt: str = "figure") -> str:
    return (f'<img alt="{esc(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(data).decode("ascii")}">')


def table(headers: list[str], rows: list[list], *, numeric: tuple[int, ...] = (),
          row_class: list[str] | None = None) -> str:
    """An HTML table; cells are escaped unless wrapped in `Raw`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{row_class[k]}"' if row_class and row_class[k] else ""
        cells = "".join(
            f'<td{" class=num" if i in numeric else ""}>'
            f'{c if isinstance(c, Raw) else esc(c)}</td>' for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def key_values(d: dict) -> str:
    """A two-column table of a flat dict (nested values shown as compact JSON)."""
    import json

    rows = [[k, v if isinstance(v, (str, int, float)) or v is None else json.dumps(v)]
            for k, v in d.items()]
    return table(["setting", "value"], rows)


class Raw(str):
    """HTML that `table` must not escape."""


class Page:
    """Sections in order; `html()` is the whole document."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title, self.subtitle = title, subtitle
        self.sections: list[tuple[str, str, str]] = []

    def section(self, key: str, title: str, body: str, how: str = "") -> None:
        """A section with an id (``key``), a heading, and an optional line on how to read it."""
        note = f'<p class="how">{esc(how)}</p>' if how else ""
        self.sections.append((key, title, note + body))

    def html(self) -> str:
        nav = " ".join(f'<a href="#{esc(k)}">{esc(t)}</a>' for k, t, _ in self.sections)
        parts = [f'<section id="{esc(k)}"><h2>{esc(t)}</h2>{b}</section>'
                 for k, t, b in self.sections]
        return (
            "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "img-src data:; style-src 'unsafe-inline'\">"
            f'<meta name=viewport content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{esc(self.title)}</h1><p class=sub>{esc(self.subtitle)}</p>"
            f"<nav>{nav}</nav>{''.join(parts)}</body></html>\n")
