"""Headless chromium for the tests that render pages in a real browser (Debian's chromium,
which `make test` installs when missing)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def chromium() -> str:
    """The browser's path; without one the test fails under `make test`, else is skipped."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("RNNLAB_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (make test installs it)")
        pytest.skip("chromium is not installed here (make test installs it)")
    return exe


def run(exe: str, *args: str, timeout: int = 90) -> subprocess.CompletedProcess:
    """One headless browser call (``--dump-dom URL``, ``--screenshot=...``)."""
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--no-first-run", *args],
                          capture_output=True, text=True, timeout=timeout)
