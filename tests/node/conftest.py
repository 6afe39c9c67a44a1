"""Fixtures shared by the node tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearhouse.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite node store (a test module may define its own)."""
    s = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    yield s
    s.close()

