"""Fixtures shared by the node tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devnet_support import start_devnet_link

from clearhouse.chain import InProcessChain
from clearhouse.node.settlement_link import SettlementLink
from clearhouse.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite node store (a test module may define its own)."""
    s = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    yield s
    s.close()


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[tuple[InProcessChain, dict[str, Any], SettlementLink]]:
    """The devnet on the in-process chain with a coordinator settling on it (``start_devnet_link``).
    A test fails if the spec refused anything the coordinator acknowledged (the ledger and the settled
    state would differ)."""
    chain, deployment, link, store = start_devnet_link(tmp_path / "node.db")
    yield chain, deployment, link
    store.close()
    assert link.batcher.refused_total == 0, link.batcher.refusals
