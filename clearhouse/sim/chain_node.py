"""A coordinator that settles on a deployed settlement system, its API served on 127.0.0.1.

The deployment is :func:`clearhouse.sim.settlement_chain.deploy` (the coordinator is
``chain.accounts[1]``, bonded); the market is the market world's listings in its domain. Deposits
come from the vault's queue, batches are posted and finalised by the link's ticks, which the caller
drives (:meth:`ChainNode.tick`) so tests control time. Shared by the tests of the coordinator's
chain side and of the SDK's light client.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearhouse.api.app import ApiLimits
from clearhouse.api.server import ServerThread
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.service import build_node_app
from clearhouse.node.settlement_link import SettlementLink, build_settlement_link
from clearhouse.sim import market_world as mw
from clearhouse.sim.settlement_chain import SettlementSystem
from clearhouse.sim.settlement_world import make_ctx
from clearhouse.store import Store, open_store

__all__ = ["ChainNode", "compute_deployment", "start_chain_node"]


def compute_deployment(system: SettlementSystem) -> dict[str, Any]:
    """The deployment description of ``system`` (what ``clearhouse devnet`` writes for it)."""
    return {"chain_id": system.chain.chain_id,
            "settlement": {"settlement": system.settlement.address, "vault": system.vault.address,
                           "token": system.token.address, "bonds": system.bonds.address},
            "coordinator": {"address": system.coordinator.address,
                            "key": "0x" + bytes(system.coordinator.key).hex()}}


@dataclass
class ChainNode:
    """A running coordinator on ``system``'s chain (with its API when ``server`` is set)."""

    system: SettlementSystem
    store: Store
    coordinator: Coordinator
    link: SettlementLink
    server: ServerThread | None
    replayed: int
    """Actions the coordinator replayed from the store when it started."""
    executor: Executor | None = None
    """The API's coordinator thread (``None`` without a server)."""

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("this node serves no API")
        return self.server.url

    def tick(self, now: int | None = None) -> int:
        """One link tick on the coordinator's thread: queue entries handled, batches moved."""
        if self.executor is None:
            return self.link.on_tick(now)
        return self.executor.submit(self.link.on_tick, now).result()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.store.close()


def start_chain_node(db: Path, system: SettlementSystem, *, serve: bool = True,
                     batch_interval: int = 0) -> ChainNode:
    """Open (or reopen) the store at ``db``, replay, link the coordinator to ``system`` and, with
    ``serve``, start its API (with the proof route) on a free port."""
    store = open_store(f"sqlite:///{db}")
    listings, _ = mw.build_listings()
    coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT, chain=system.chain)
    link = build_settlement_link(coordinator, system.chain, compute_deployment(system), make_ctx,
                                 batch_interval=batch_interval)
    replayed = coordinator.replay()
    link.start()
    if not serve:
        return ChainNode(system, store, coordinator, link, None, replayed)
    app = build_node_app(coordinator, system.chain, limits=ApiLimits(), link=link)
    return ChainNode(system, store, coordinator, link, ServerThread.start(app), replayed,
                     app.state.api.executor)
