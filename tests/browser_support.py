"""Browser test support: where Debian's Chromium is, and where screenshots go (servers for the pages
are ``clearhouse.api.server.ServerThread``).

``make test`` installs Chromium (``tools/chromium.sh``); a missing browser fails the run instead of
skipping it, so a green suite always means the pages were really loaded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "e2e"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str:
    for candidate in (os.environ.get("CLEARHOUSE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("Chromium is not installed: run tools/chromium.sh (make test does)")
