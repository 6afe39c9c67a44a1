"""Expiry settlement on the devnet, on the in-process chain (``deploy_devnet`` directly, no anvil, no
processes): once the committee's TWAP over the window ending at an expiry is final, the coordinator's
link records the settlement price in the ``ExpiryRegistry``, settles every position of that expiry
in its ledger (one logged action), batches one ``SettleExpiry`` per holder, and the posted batch is
valid for an independent watcher reading the same registry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from devnet_support import build_devnet_coordinator, fund_user, signed
from eth_account import Account

from clearhouse.api.server import ServerThread
from clearhouse.chain import InProcessChain
from clearhouse.errors import ExpiryAlreadySettled, NotYetExpired, RiskError, UnlistedExpiry
from clearhouse.market.collateral import get_positions
from clearhouse.messages import Side, TimeInForce
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.devnet import load_domain
from clearhouse.node.expiries import (
    RETRY_SECONDS,
    RegistryExpiries,
    compute_registry_context,
    load_deployment_context,
)
from clearhouse.node.service import build_node_app
from clearhouse.node.settlement_link import SettlementLink
from clearhouse.node.watcher import Watcher
from clearhouse.params import load_params
from clearhouse.sdk.chain import ChainAccess
from clearhouse.settlement import OpType, decode_window, get_op_type
from clearhouse.settlement.context import compute_expiry_id
from clearhouse.settlement.header import compute_window_count
from clearhouse.settlement.watcher import decode_header, decode_ops_data
from clearhouse.sim import market_world as mw
from clearhouse.sim.settlement_chain import WINDOW
from clearhouse.types import Address, Amount, Digest, Timestamp

USDC = mw.USDC
EXPIRY_ID = compute_expiry_id("ETH", "USDC", mw.EXPIRY)
SPOT = 3_500 * USDC
"""The committee's price around the expiry: the 3000 call pays 500 USDC per contract."""


def _post_rounds(chain: InProcessChain, deployment: dict[str, Any], end: int, prices: list[int]) -> None:
    """Committee members post ``prices`` as optimistic rounds 300 s apart, the last 300 s before ``end``."""
    oracle = deployment["oracle"]
    hub = chain.at("OracleHub", oracle["hub"])
    feed = bytes.fromhex(oracle["feed_id"][2:])
    chain.time_travel(end - 300 * len(prices) - int(chain.now()))
    for i, price in enumerate(prices):
        if i:
            chain.time_travel(300)
        member = Account.from_key(oracle["keys"][i % len(oracle["keys"])])
        hub.transact("post", feed, i + 1, price, int(chain.now()), sender=member)


def _one_contract_traded(chain: InProcessChain, deployment: dict[str, Any], link: SettlementLink
                         ) -> tuple[ChainAccess, ChainAccess, Coordinator]:
    """Alice (60,000 USDC) writes one 3000 call of the first expiry to Bob (40,000 USDC) at 120."""
    alice, bob = fund_user(chain, deployment, 0, 60_000), fund_user(chain, deployment, 1, 40_000)
    link.on_tick()
    world, c = mw.make_world(), link.coordinator
    ask = mw.order(world, alice.address, Side.SELL, mw.px(120), 100)
    c.on_order(ask, signed(deployment, ask, alice.address), now=link.now())
    bid = mw.order(world, bob.address, Side.BUY, mw.px(120), 100, TimeInForce.IOC)
    c.on_order(bid, signed(deployment, bid, bob.address), now=link.now())
    link.on_tick()  # the trade batched and posted while its clock is current
    return alice, bob, c


def test_the_link_settles_an_expiry_at_the_committees_price_once_it_is_final(
        devnet: tuple[InProcessChain, dict[str, Any], SettlementLink]) -> None:
    chain, deployment, link = devnet
    alice, bob = fund_user(chain, deployment, 0, 60_000), fund_user(chain, deployment, 1, 40_000)
    link.on_tick()  # the deposits credited and batched
    world, c = mw.make_world(), link.coordinator
    ask = mw.order(world, alice.address, Side.SELL, mw.px(120), 300, expiry=mw.LATER)  # alice writes calls
    ask_hash = Digest(bytes.fromhex(c.on_order(ask, signed(deployment, ask, alice.address), now=link.now())
                                     .body["orderHash"][2:]))
    bid = mw.order(world, bob.address, Side.BUY, mw.px(121), 100, TimeInForce.IOC, expiry=mw.LATER)
    assert c.on_order(bid, signed(deployment, bid, bob.address), now=link.now()).body["trades"]
    link.on_tick()  # the trade batched and posted
    before = {who: int(c.portfolios.balances[Address(who)]) for who in (alice.address, bob.address)}
    assert c.get_account_json(Address(alice.address))["requirement"] != "0"

    _post_rounds(chain, deployment, mw.EXPIRY, [SPOT, SPOT])
    chain.time_travel(mw.EXPIRY + 1 - int(chain.now()))
    link.on_tick()  # expired, but the TWAP is not final yet: nothing settles, the keeper retries later
    assert not c.settled and EXPIRY_ID not in link.keeper.expiries.get_prices()  # type: ignore[union-attr]
    assert [e["state"] for e in c.get_expiries_json(Timestamp(link.now()))] == ["expired", "trading"]
    chain.time_travel(2 * 3_600 + RETRY_SECONDS)  # past the hub's dispute window
    link.on_tick()

    registry = chain.at("ExpiryRegistry", deployment["settlement"]["expiry_registry"])
    assert int(registry.call("get_expiry", EXPIRY_ID)[6]) == SPOT  # recorded on chain, by the keeper
    assert c.settled == {EXPIRY_ID: SPOT}
    assert [(e["state"], e["settlementPrice"]) for e in c.get_expiries_json(Timestamp(link.now()))] == [
        ("settled", str(SPOT)), ("trading", None)]
    payoff = 500 * USDC  # one contract (100 units) of the 3000 call at 3,500
    assert int(c.portfolios.balances[Address(alice.address)]) == before[alice.address] - payoff
    assert int(c.portfolios.balances[Address(bob.address)]) == before[bob.address] + payoff
    for who in (alice.address, bob.address):
        account = c.get_account_json(Address(who))
        assert account["positions"] == {} and account["requirement"] == "0"
    assert not c.book.resting and c.book.closed[ask_hash] == "expired"  # alice's unfilled rest
    ack = c.acks[c.last_seq]
    assert ack.kind == "settle_expiry" and ack.body["payoffs"] == {
        Address(alice.address): str(-payoff), Address(bob.address): str(payoff)}
    [event] = c.store.iter_events("expiries", 0, 10)  # what the `expiries` channel serves
    assert event.payload == ack.body
    with pytest.raises(ExpiryAlreadySettled):
        c.on_settle_expiry(EXPIRY_ID, SPOT, now=link.now())

    settlement = link.batcher.contracts.settlement
    last = int(settlement.call("last_batch"))
    record = link.batcher.store.get_batch(last)
    assert record is not None
    header = decode_header(record.header)
    windows = decode_ops_data(record.ops_data, compute_window_count(header.op_count, header.checkpoint_interval))
    assert [get_op_type(op) for w in windows for op in decode_window(w)].count(OpType.SETTLE_EXPIRY) == 2
    chain.time_travel(WINDOW)
    link.on_tick()
    assert int(settlement.call("last_finalized")) == last
    for who in (alice.address, bob.address):
        proof = link.get_account_proof_json(Address(who))
        assert proof["positions"] == [] and proof["balance"] == str(c.portfolios.balances[Address(who)])

    # an independent watcher reading the registry judges every batch valid and challenges nothing
    s = deployment["settlement"]
    verifier = chain.at("WindowVerifier", s["verifier"])
    context = load_deployment_context(chain, verifier, load_params("devnet"), load_domain(deployment))
    watcher = Watcher(chain, settlement, chain.at("Vault", s["vault"]), verifier,
                      compute_registry_context(context, RegistryExpiries(registry, 6)), chain.accounts[9])
    assert watcher.on_tick() == [] and sorted(watcher.states) == list(range(last + 1))


def test_a_price_recorded_by_anyone_settles_and_a_restart_replays_it(
        devnet: tuple[InProcessChain, dict[str, Any], SettlementLink]) -> None:
    chain, deployment, link = devnet
    _, _, c = _one_contract_traded(chain, deployment, link)
    _post_rounds(chain, deployment, mw.EXPIRY, [SPOT, SPOT])
    chain.time_travel(mw.EXPIRY + 2 * 3_600 - int(chain.now()))
    registry = chain.at("ExpiryRegistry", deployment["settlement"]["expiry_registry"])
    registry.transact("settle_expiry", EXPIRY_ID, sender=chain.accounts[8])  # a stranger records it first
    link.on_tick()  # the keeper reads the recorded price: no transaction of its own
    assert c.settled == {EXPIRY_ID: SPOT}
    again = build_devnet_coordinator(chain, deployment, c.store)
    again.replay()
    assert again.get_state_fingerprint() == c.get_state_fingerprint()
    assert again.settled == c.settled


def test_settle_expiry_refusals(devnet: tuple[InProcessChain, dict[str, Any], SettlementLink]) -> None:
    _, _, link = devnet
    c = link.coordinator
    seq = c.last_seq  # the devnet's listings
    with pytest.raises(NotYetExpired):
        c.on_settle_expiry(EXPIRY_ID, SPOT, now=mw.EXPIRY - 1)
    with pytest.raises(UnlistedExpiry):
        c.on_settle_expiry(compute_expiry_id("BTC", "USDC", mw.EXPIRY), SPOT, now=mw.EXPIRY)
    with pytest.raises(RiskError):
        c.on_settle_expiry(EXPIRY_ID, -1, now=mw.EXPIRY)
    assert not c.settled and c.last_seq == seq


def test_an_account_its_payoff_cannot_be_paid_to_degrades_the_node(
        devnet: tuple[InProcessChain, dict[str, Any], SettlementLink], caplog: pytest.LogCaptureFixture) -> None:
    chain, deployment, link = devnet
    alice, bob, c = _one_contract_traded(chain, deployment, link)
    assert c.get_expiry_health()["ok"]
    c.portfolios.balances[Address(alice.address)] = Amount(0)  # a ledger fault the rules never allow
    ack = c.on_settle_expiry(EXPIRY_ID, SPOT, now=mw.EXPIRY)
    assert ack.body["unsettled"] == [Address(alice.address)]
    assert [r.levelname for r in caplog.records if r.name == "clearhouse.node.coordinator"] == ["ERROR"]
    assert ack.body["payoffs"] == {Address(bob.address): str(500 * USDC)}
    assert get_positions(c.portfolios, Address(alice.address))  # alice's short stays open
    server = ServerThread.start(build_node_app(c, chain, deployment=deployment, link=link))
    try:
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "degraded" and health["checks"]["expiries"] == {
            "ok": False, "status": "degraded", "unsettledAccounts": 1,
            "unsettled": {"0x" + bytes(EXPIRY_ID).hex(): [Address(alice.address)]}}
        assert "clearhouse_expiry_unsettled_accounts 1.0" in httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
