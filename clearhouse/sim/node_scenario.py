"""The node part of the demo: a coordinator over a SQLite store serving its API on 127.0.0.1, two
traders and a maker trading through it with the SDK (book and RFQ), then the node stopped and
started again from the same database: the action log replays to the same state.

Every acknowledgement the clients get was committed to SQLite first (WAL, ``synchronous=FULL``,
checked when the store opens).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from clearhouse.api.app import ApiLimits
from clearhouse.api.server import ServerThread
from clearhouse.chain import Chain
from clearhouse.messages import Side, TimeInForce
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.service import build_node_app
from clearhouse.sdk import Client
from clearhouse.sim import market_world as mw
from clearhouse.store import open_store
from clearhouse.types import Digest

__all__ = ["run_node_scenario"]


def _start(db: Path, chain: Chain) -> tuple[Coordinator, ServerThread, int]:
    store = open_store(f"sqlite:///{db}")
    listings, _ = mw.build_listings()
    coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT)
    replayed = coordinator.replay()
    app = build_node_app(coordinator, chain, limits=ApiLimits(faucet=True))
    return coordinator, ServerThread.start(app), replayed


def run_node_scenario(out_dir: Path, chain: Chain, log: Callable[[str], None],
                      detail: Callable[[str], None]) -> dict[str, Any]:
    """Run the scenario with its database at ``out_dir/node.db`` (replaced); return its figures."""
    db = out_dir / "node.db"
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    _, series = mw.build_listings()
    coordinator, server, _ = _start(db, chain)
    try:
        log(f"node: coordinator API on {server.url} over SQLite {db} (WAL, synchronous=FULL); "
            f"dashboard at {server.url}/")
        with Client(server.url, mw.KEYS[0]) as alice, Client(server.url, mw.KEYS[1]) as bob, \
                Client(server.url, mw.KEYS[2]) as maker:
            for c in (alice, bob, maker):
                c.faucet(100_000 * mw.USDC)
                c.sign_in()
            alice.submit_order(series[0], Side.SELL, mw.px(120), 300)
            fill = bob.submit_order(series[0], Side.BUY, mw.px(121), 100, TimeInForce.IOC)["result"]
            detail(f"book: alice rests 300 @ 120, bob takes {fill['trades'][0]['quantity']} through the API")
            maker.register_maker()
            rfq = bob.submit_rfq([(series[0], 1, True), (series[1], 1, False)], 100, Side.BUY)["result"]
            delivered = maker.get_rfqs()[-1]
            quote = maker.submit_quote(delivered, [mw.px(150), mw.px(80)], Side.SELL)["result"]
            accepted = bob.accept(Digest(bytes.fromhex(quote["quoteId"][2:])), 100)["result"]
            detail(f"RFQ {rfq['rfqId'][:12]}… routed to the maker, quoted, accepted: "
                   f"{len(accepted['trades'])} legs filled atomically")
        before = coordinator.get_state_fingerprint()
        actions = coordinator.store.get_last_action_seq()
    finally:
        server.stop()
        coordinator.store.close()
    coordinator, server, replayed = _start(db, chain)
    try:
        same = coordinator.get_state_fingerprint() == before
        log(f"node: stopped and started again from {db.name}: {replayed} logged actions replayed, "
            f"state {'identical' if same else 'DIFFERENT'}")
        if not same:
            raise RuntimeError("the node's state after replay differs from before the restart")
        trades = len(coordinator.store.iter_events("trades", 0, 1000))
    finally:
        server.stop()
        coordinator.store.close()
    return {"node_actions_committed": actions, "node_trades": trades, "node_replay_identical": same}
