"""A real node API: uvicorn on a free 127.0.0.1 port over a SQLite store, in a background thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clearhouse.api.app import ApiLimits, create_app
from clearhouse.api.server import ServerThread, find_free_port

__all__ = ["Node", "find_free_port", "start_node"]
from clearhouse.node.coordinator import Coordinator
from clearhouse.sim import market_world as mw
from clearhouse.store import Store, open_store


@dataclass
class Node:
    """A running API: its URL, coordinator and store (for before/after state comparisons)."""

    url: str
    coordinator: Coordinator
    store: Store
    server: ServerThread

    def stop(self) -> None:
        self.server.stop()
        self.store.close()

    def state(self) -> tuple[object, int]:
        """Everything a refused request must leave unchanged: market state and the log's length."""
        return self.coordinator.get_state_fingerprint(), self.store.get_last_action_seq()


def start_node(db: Path, limits: ApiLimits) -> Node:
    store = open_store(f"sqlite:///{db}")
    listings, _ = mw.build_listings()
    coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT)
    coordinator.replay()
    port = find_free_port()
    app = create_app(coordinator, limits=limits, node=f"127.0.0.1:{port}",
                     uri=f"http://127.0.0.1:{port}")
    server = ServerThread.start(app, port=port, max_frame_bytes=limits.max_frame_bytes)
    return Node(server.url, coordinator, store, server)
