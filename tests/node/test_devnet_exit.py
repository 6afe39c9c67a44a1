"""The devnet's escape hatch, deployed on the in-process chain (``deploy_devnet`` directly, no anvil,
no processes): its verifier reads an ``ExpiryRegistry`` listing the market's expiries on the oracle
committee's feed (recorded in the deployment description), so after a freeze a trader holding an
open option position exits with the free collateral of the last finalised state — the coordinator
settling through the deployment description as ``clearhouse node`` does."""

from __future__ import annotations

from typing import Any

import pytest
from devnet_support import fund_user, signed

from clearhouse.chain import InProcessChain
from clearhouse.errors import ContractRevert
from clearhouse.messages import Side, TimeInForce
from clearhouse.node.settlement_link import SettlementLink
from clearhouse.settlement.exits import compute_exit_free
from clearhouse.settlement.state import decode_account
from clearhouse.sim import market_world as mw
from clearhouse.sim.settlement_chain import T_FORCE, WINDOW
from clearhouse.sim.settlement_world import make_ctx
from clearhouse.types import Address, Amount

USDC = mw.USDC


def test_the_devnet_wires_an_expiry_registry_on_the_committees_feed(
        devnet: tuple[InProcessChain, dict[str, Any], SettlementLink]) -> None:
    chain, deployment, _ = devnet
    s, o = deployment["settlement"], deployment["oracle"]
    registry = chain.at("ExpiryRegistry", s["expiry_registry"])
    verifier = chain.at("WindowVerifier", s["verifier"])
    assert str(verifier.call("expiry_registry")).lower() == s["expiry_registry"].lower()
    assert str(registry.call("oracle_hub")).lower() == o["hub"].lower()
    listed = {bytes(e[0]) for e in registry.call("listed")}
    expected = {bytes(e) for e in make_ctx().expiries}  # what the coordinator builds with
    assert listed == expected and len(listed) == 2
    for expiry_id in expected:
        assert "0x" + bytes(registry.call("feed_of", expiry_id)).hex() == o["feed_id"]
    with pytest.raises(ContractRevert, match="registry already set"):  # wired for good
        verifier.transact("set_expiry_registry", s["expiry_registry"])


def test_a_position_holder_exits_the_devnet_after_a_freeze(
        devnet: tuple[InProcessChain, dict[str, Any], SettlementLink]) -> None:
    chain, deployment, link = devnet
    alice, bob = fund_user(chain, deployment, 0, 60_000), fund_user(chain, deployment, 1, 40_000)
    link.on_tick()  # the deposits credited and batched
    now, world, c = link.now(), mw.make_world(), link.coordinator
    ask = mw.order(world, alice.address, Side.SELL, mw.px(120), 300)  # alice writes calls
    c.on_order(ask, signed(deployment, ask, alice.address), now=now)
    bid = mw.order(world, bob.address, Side.BUY, mw.px(121), 100, TimeInForce.IOC)
    assert [t["quantity"] for t in c.on_order(bid, signed(deployment, bid, bob.address), now=now).body["trades"]] == ["100"]
    link.on_tick()  # the trade batched and posted
    chain.time_travel(WINDOW)
    link.on_tick()  # finalised
    settlement = link.batcher.contracts.settlement
    assert int(settlement.call("last_finalized")) == int(settlement.call("last_batch")) == 2
    proofs = {who.address: link.get_account_proof_json(Address(who.address)) for who in (alice, bob)}
    # the coordinator stops: alice's forced withdrawal is never served, anyone freezes
    alice.force_withdraw(alice.address, Amount(1_000 * USDC))
    chain.time_travel(T_FORCE + 1)
    settlement.transact("freeze", sender=chain.accounts[7])
    for who in (alice, bob):
        leaf = decode_account(bytes.fromhex(proofs[who.address]["leaf"][2:]))
        assert leaf.positions  # without the registry `exit` reverts "settlement: no expiry registry"
        expected = compute_exit_free(leaf, make_ctx())
        before = int(who.token.call("balanceOf", who.address))
        assert who.exit_after_freeze(who.address, proofs[who.address]) == expected > 0
        assert int(who.token.call("balanceOf", who.address)) == before + expected
    short = decode_account(bytes.fromhex(proofs[alice.address]["leaf"][2:]))
    assert compute_exit_free(short, make_ctx()) < short.balance  # the short call's collateral stays locked
    with pytest.raises(ContractRevert, match="already exited"):
        alice.exit_after_freeze(alice.address, proofs[alice.address])
