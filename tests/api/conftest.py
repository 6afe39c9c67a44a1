"""Fixtures: a real node API (uvicorn on a free 127.0.0.1 port, SQLite in a tmp dir), stopped
gracefully after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_node import Node, start_node

from clearhouse.api.app import ApiLimits


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    nodes: list[Node] = []

    def make(limits: ApiLimits | None = None, db: str = "node.db") -> Node:
        node = start_node(tmp_path / db, limits or ApiLimits(faucet=True, rate_per_second=1000,
                                                            burst=1000))
        nodes.append(node)
        return node
    yield make
    for node in nodes:
        node.stop()


@pytest.fixture
def node(make_node: Callable[..., Node]) -> Node:
    return make_node()
