"""The coordinator's API during a settlement's emergency pause: new orders, RFQs, quotes and accepts
are refused with 423 ``market_paused`` (nothing logged), cancels and withdrawals go through, and
trading resumes by itself when the pause ends. The pause is read from a real ``Settlement``."""

from __future__ import annotations

from typing import Any

import pytest
from api_node import Node

from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import ClearhouseError, MarketPaused
from clearhouse.messages import Side
from clearhouse.node.parameters import PauseMonitor
from clearhouse.sdk import Client
from clearhouse.sim import market_world as mw
from clearhouse.sim.settlement_chain import GUARDIAN_INDEX, deploy
from clearhouse.types import Digest, Timestamp

_, SERIES = mw.build_listings()


def _client(node: Node, i: int) -> Client:
    c = Client(node.url, mw.KEYS[i])
    c.faucet(100_000 * mw.USDC)
    c.sign_in()
    return c


def _refused(call: Any, *args: Any, **kw: Any) -> ClearhouseError:
    with pytest.raises(ClearhouseError) as info:
        call(*args, **kw)
    return info.value


def test_new_trades_wait_out_the_pause_and_exits_do_not(node: Node) -> None:
    chain = InProcessChain()
    s = deploy(chain, users=1, window_verifier=False)
    clock = {"now": chain.now()}
    # the coordinator's clock is chain time (as on a node); the window is read here, on the test's
    # thread, and cached for the API's worker thread
    node.coordinator.clock = lambda: clock["now"]
    wall = {"t": 0.0}  # the monitor's refresh clock: it re-reads the chain only when this moves
    monitor = PauseMonitor(s.settlement, refresh=1.0, clock=lambda: wall["t"])
    node.coordinator.paused = monitor
    alice, bob, maker = _client(node, 0), _client(node, 1), _client(node, 2)
    try:
        maker.register_maker()
        resting = alice.submit_order(SERIES[0], Side.SELL, mw.px(120), 300)["result"]
        rfq = bob.submit_rfq([(SERIES[0], 1, True)], 100, Side.BUY)["result"]
        delivered = maker.get_rfqs()[-1]
        quote = maker.submit_quote(delivered, [mw.px(150)], Side.SELL)["result"]

        s.settlement.transact("pause", 3600, sender=chain.accounts[GUARDIAN_INDEX])
        clock["now"], wall["t"] = chain.now(), wall["t"] + 1
        assert monitor(Timestamp(clock["now"]))  # read here; the worker thread uses the cached window
        before = node.state()
        for refusal in (
            _refused(bob.submit_order, SERIES[0], Side.BUY, mw.px(121), 100),
            _refused(bob.submit_rfq, [(SERIES[0], 1, True)], 100, Side.BUY),
            _refused(maker.submit_quote, delivered, [mw.px(149)], Side.SELL),
            _refused(bob.accept, Digest(bytes.fromhex(quote["quoteId"][2:])), 100),
        ):
            assert (refusal.code, refusal.context["status"]) == ("market_paused", 423)
            assert isinstance(refusal, MarketPaused)
        assert node.state() == before
        # exits and risk reduction go on
        assert alice.cancel(Digest(bytes.fromhex(resting["orderHash"][2:])))["result"]["removed"]
        assert bob.withdraw(1_000 * mw.USDC)["result"]["amount"] == str(1_000 * mw.USDC)
        # the pause ends by itself
        chain.time_travel(3600)
        clock["now"], wall["t"] = chain.now(), wall["t"] + 1
        assert not monitor(Timestamp(clock["now"]))
        assert bob.submit_order(SERIES[0], Side.BUY, mw.px(121), 100)["result"]["resting"] == "100"
        assert rfq["rfqId"]
    finally:
        for c in (alice, bob, maker):
            c.close()
