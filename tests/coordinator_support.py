"""A coordinator for node tests."""

from __future__ import annotations

from clearhouse.node.coordinator import Coordinator
from clearhouse.sim import market_world as mw
from clearhouse.store import Store


def make_coordinator(store: Store) -> Coordinator:
    """A coordinator on the market world's listings, replayed from ``store``'s log."""
    listings, _ = mw.build_listings()
    coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT)
    coordinator.replay()
    return coordinator
