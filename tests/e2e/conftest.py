"""Browser fixture: Debian's Chromium driven by Playwright (see ``browser_support``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import CHROMIUM_FLAGS, find_chromium
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS)
        yield b
        b.close()

