"""mkdocs hook: links between pages inside the tutorial notebooks.

A notebook links to its neighbours as files (``../api/cells.md``), which is what Jupyter opens;
mkdocs-jupyter renders notebooks without touching their links, so this turns each such link into
the built page's address, and warns (an error under ``--strict``) when the page does not exist.
"""

from __future__ import annotations

import logging
import posixpath
import re

log = logging.getLogger("mkdocs.hooks.notebook_links")

LINK = re.compile(r'href="([^":#"]+\.md)(#[^"]*)?"')


def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    base = posixpath.dirname(page.file.src_uri)

    def resolve(match):
        target = posixpath.normpath(posixpath.join(base, match.group(1)))
        linked = files.get_file_from_path(target)
        if linked is None:
            log.warning("%s links to %s, which is not a page of the site", page.file.src_uri,
                        target)
            return match.group(0)
        return f'href="{linked.url_relative_to(page.file)}{match.group(2) or ""}"'

    return LINK.sub(resolve, html)
