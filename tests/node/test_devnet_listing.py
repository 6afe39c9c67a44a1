"""Listing on the devnet, end to end: an expiry the registry's admin lists on chain is listed by the
coordinator's keeper with the operator's strikes; a trade on it is batched, verified with the context
read from the chain (the verifier's limits, the registry's expiries), finalised, and judged valid by
an independent watcher; a restart replays the same listings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from devnet_support import build_devnet_coordinator, fund_user, signed, start_devnet_link

from clearhouse.chain import InProcessChain
from clearhouse.cli import main, parse_strikes
from clearhouse.errors import ConfigError, ContractRevert, InsufficientCollateral, WrongSigner
from clearhouse.market.instruments import (
    Market,
    OptionKind,
    Pair,
    Series,
    compute_expiry_timestamp,
    compute_series_id,
)
from clearhouse.messages import Domain, Order, Side, TimeInForce
from clearhouse.messages.domain import compute_domain
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.devnet import deploy_devnet, load_domain
from clearhouse.node.expiries import (
    RegistryExpiries,
    compute_registry_context,
    list_registry_expiry,
    load_deployment_context,
    load_market,
)
from clearhouse.node.settlement_link import build_settlement_link
from clearhouse.node.watcher import Watcher
from clearhouse.params import load_params
from clearhouse.settlement import OpType, decode_window, get_op_type
from clearhouse.settlement.context import compute_expiry_id
from clearhouse.settlement.header import compute_window_count
from clearhouse.settlement.watcher import decode_header, decode_ops_data
from clearhouse.sim import market_world as mw
from clearhouse.sim.settlement_chain import WINDOW
from clearhouse.store import open_store
from clearhouse.types import Address, Nonce, Price, Quantity, SeriesId, Timestamp

USDC = mw.USDC
JUNE = compute_expiry_timestamp(2027, 6, 25)
STRIKES = (Price(3_000 * USDC), Price(3_400 * USDC))


def _names(c: Coordinator, expiry: int) -> list[str]:
    return sorted(s["name"] for s in c.get_series_json() if s["expiry"] == expiry)


def test_a_registry_listing_becomes_a_traded_and_settled_series(tmp_path: Path) -> None:
    chain, deployment, link, store = start_devnet_link(tmp_path / "node.db", strikes=STRIKES)
    try:
        c = link.coordinator
        alice, bob = fund_user(chain, deployment, 0, 60_000), fund_user(chain, deployment, 1, 40_000)
        link.on_tick()  # deposits credited; the registry's two devnet expiries listed with the strikes
        assert _names(c, mw.EXPIRY) == ["ETH-29JAN27-3000-C", "ETH-29JAN27-3000-P", "ETH-29JAN27-3400-C",
                                        "ETH-29JAN27-3400-P"]
        assert _names(c, JUNE) == []

        s = deployment["settlement"]
        registry = chain.at("ExpiryRegistry", s["expiry_registry"])
        # an independent watcher, started before the listing: it must judge with the registry as it is
        settlement = chain.at("Settlement", s["settlement"])
        verifier = chain.at("WindowVerifier", s["verifier"])
        context = load_deployment_context(chain, verifier, load_params("devnet"), load_domain(deployment))
        watcher = Watcher(chain, settlement, chain.at("Vault", s["vault"]), verifier,
                          compute_registry_context(context, RegistryExpiries(registry, 6)), chain.accounts[9])
        assert watcher.on_tick() == []
        list_registry_expiry(chain, deployment, JUNE, mw.CAP, chain.accounts[0])  # the admin: the deployer
        link.on_tick()
        assert _names(c, JUNE) == ["ETH-25JUN27-3000-C", "ETH-25JUN27-3000-P", "ETH-25JUN27-3400-C",
                                   "ETH-25JUN27-3400-P"]
        assert [e["event"] for e in (ev.payload for ev in store.iter_events("listings", 0, 100))
                if e.get("expiry") == JUNE][:2] == ["expiry", "series"]
        link.on_tick()  # nothing new: nothing listed twice
        assert len(_names(c, JUNE)) == 4

        series_id = compute_series_id(Series(mw.PAIR, JUNE, STRIKES[1], OptionKind.CALL))
        ask = Order(Address(alice.address), series_id, Side.SELL, mw.px(90), Quantity(100), TimeInForce.GTC,
                    Nonce(1), Timestamp(link.now() + 3_600))
        bid = Order(Address(bob.address), series_id, Side.BUY, mw.px(90), Quantity(100), TimeInForce.IOC,
                    Nonce(1), Timestamp(link.now() + 3_600))
        c.on_order(ask, signed(deployment, ask, Address(alice.address)), now=link.now())
        assert c.on_order(bid, signed(deployment, bid, Address(bob.address)), now=link.now()).body["trades"]
        link.on_tick()  # the trade batched and posted under the chain's context
        posted = int(settlement.call("last_batch"))
        record = link.batcher.store.get_batch(posted)
        assert record is not None
        header = decode_header(record.header)
        ops = [op for w in decode_ops_data(record.ops_data, compute_window_count(header.op_count,
                                                                                 header.checkpoint_interval))
               for op in decode_window(w)]
        assert [get_op_type(op) for op in ops].count(OpType.TRADE) == 1  # the June trade
        chain.time_travel(WINDOW)
        link.on_tick()
        assert int(settlement.call("last_finalized")) == posted
        proof = link.get_account_proof_json(Address(bob.address))
        june_id = "0x" + bytes(compute_expiry_id("ETH", "USDC", JUNE)).hex()
        assert proof["positions"] == [{"expiryId": june_id, "strike": str(STRIKES[1]), "kind": int(OptionKind.CALL),
                                       "quantity": "100"}]

        assert watcher.on_tick() == [] and sorted(watcher.states) == list(range(posted + 1))

        again = build_devnet_coordinator(chain, deployment, store)
        again.replay()
        assert again.get_state_fingerprint() == c.get_state_fingerprint()
    finally:
        store.close()


def test_the_chain_context_refuses_another_domain(devnet: tuple[Any, dict[str, Any], Any]) -> None:
    chain, deployment, _ = devnet
    verifier = chain.at("WindowVerifier", deployment["settlement"]["verifier"])
    domain = load_domain(deployment)
    context = load_deployment_context(chain, verifier, load_params("devnet"), domain)(Timestamp(mw.NOW))
    assert context.domain == domain and context.contract_unit == int(verifier.call("CONTRACT_UNIT"))
    assert context.max_fee_bps == int(verifier.call("MAX_FEE_BPS")) and context.expiries == {}
    other = Domain(domain.name, domain.version, domain.chain_id, Address("0x" + "11" * 20))
    with pytest.raises(ConfigError):
        load_deployment_context(chain, verifier, load_params("devnet"), other)


def test_listing_on_the_registry_is_the_admins_and_once(devnet: tuple[Any, dict[str, Any], Any]) -> None:
    chain, deployment, _ = devnet
    with pytest.raises(ContractRevert, match="not admin"):
        list_registry_expiry(chain, deployment, JUNE, mw.CAP, chain.accounts[3])
    expiry_id = list_registry_expiry(chain, deployment, JUNE, mw.CAP, chain.accounts[0])
    registry = chain.at("ExpiryRegistry", deployment["settlement"]["expiry_registry"])
    assert bytes(registry.call("get_expiry", expiry_id)[0]) == bytes(compute_expiry_id("ETH", "USDC", JUNE))
    with pytest.raises(ContractRevert, match="listed"):
        list_registry_expiry(chain, deployment, JUNE, mw.CAP, chain.accounts[0])


def test_the_listing_commands_refuse_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_strikes(" 2800, 3000 ,", 6) == [2_800 * USDC, 3_000 * USDC] and parse_strikes("", 6) == []
    for bad in ("28.5", "-3000", "0", "3e3", "1" * 31):
        with pytest.raises(ConfigError):
            parse_strikes(bad, 6)
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({"chain": "inprocess", "settlement": {"expiry_registry": "0x" + "11" * 20}}))
    for args, field in ((["25JUN27", "--cap", "ten"], "[config_error]"),
                        (["31JUN27", "--cap", "10000"], "[malformed_series_name]"),
                        (["2027-06-25", "--cap", "10000"], "[malformed_series_name]")):
        assert main(["list-expiry", *args, "--deployment", str(path)]) == 1
        assert field in capsys.readouterr().err
    path.write_text(json.dumps({"chain": "inprocess", "settlement": {}}))
    assert main(["list-expiry", "25JUN27", "--cap", "10000", "--deployment", str(path)]) == 1
    assert "no expiry registry" in capsys.readouterr().err


def test_registry_entries_of_no_market_are_skipped_or_kept_apart(
        devnet: tuple[Any, dict[str, Any], Any], caplog: pytest.LogCaptureFixture) -> None:
    chain, deployment, link = devnet
    registry = chain.at("ExpiryRegistry", deployment["settlement"]["expiry_registry"])
    feed = bytes.fromhex(deployment["oracle"]["feed_id"][2:])
    usdc = b"USDC".ljust(32, b"\0")
    admin = chain.accounts[0]
    registry.transact("list_expiry", b"eth".ljust(32, b"\0"), usdc, JUNE, mw.CAP, feed, sender=admin)  # no symbol
    registry.transact("list_expiry", b"BTC".ljust(32, b"\0"), usdc, JUNE, mw.CAP, feed, sender=admin)  # another pair
    before = len(link.coordinator.listings)
    link.on_tick()
    link.on_tick()
    assert len(link.coordinator.listings) == before and JUNE not in {e.timestamp for e in link.coordinator.market.expiries}
    skipped = [r for r in caplog.records if r.name == "clearhouse.node.expiries" and "skipped" in r.getMessage()]
    assert len(skipped) == 1  # once, not every tick
    listed = link.keeper.expiries.read()  # the other pair's expiry stays in the context, as the verifier has it
    assert compute_expiry_id("BTC", "USDC", JUNE) in listed and len(listed) == 3


def test_the_node_trades_the_deployments_market() -> None:
    chain = InProcessChain()
    deployment = deploy_devnet(chain)
    assert load_market(chain, deployment) == Market(mw.PAIR, mw.RULES)  # the devnet's: the simulated world's
    assert load_market(chain, {k: v for k, v in deployment.items() if k != "market"}) is None  # a sandbox
    for entry, field in (({"strike_step": "100", "premium_tick": "0.0000001"}, "market.premium_tick"),
                         ({"strike_step": "1e2", "premium_tick": "0.01"}, "market.strike_step"),
                         ({"strike_step": 100, "premium_tick": "0.01"}, "market.strike_step"),
                         ({"strike_step": "0", "premium_tick": "0.01"}, "market.strike_step"),
                         ({"strike_step": "100"}, "market.premium_tick"),
                         ({"strike_step": "100", "premium_tick": "0.000001"}, "market.premium_tick"),  # < unit
                         ({"strike_step": "100", "premium_tick": "0.01", "tick": "1"}, "market"),
                         (["100", "0.01"], "market")):
        with pytest.raises(ConfigError) as refused:
            load_market(chain, {**deployment, "market": entry})
        assert refused.value.field == field, entry
    no_registry = {**deployment, "settlement": {**deployment["settlement"], "expiry_registry": None}}
    with pytest.raises(ConfigError, match="expiry registry"):
        load_market(chain, no_registry)


def test_a_node_of_another_pair_lists_its_own_expiries_only(tmp_path: Path) -> None:
    chain = InProcessChain()
    deployment = deploy_devnet(chain, pair="BTC/USDC")  # the registry still lists the two ETH expiries
    store = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    try:
        c = build_devnet_coordinator(chain, deployment, store)
        assert c.market is not None and c.market.pair == Pair("BTC", "USDC", 6)
        link = build_settlement_link(c, chain, deployment, strikes=[Price(60_000 * USDC)])
        c.replay()
        link.start()
        link.on_tick()
        assert c.listings == {}  # ETH expiries are another market's
        list_registry_expiry(chain, deployment, JUNE, Price(500_000 * USDC), chain.accounts[0])
        link.on_tick()
        assert sorted(s["name"] for s in c.get_series_json()) == ["BTC-25JUN27-60000-C", "BTC-25JUN27-60000-P"]
    finally:
        store.close()


def test_each_deployment_signs_in_its_own_domain(tmp_path: Path) -> None:
    """Two deployments on one chain: each verifier checks the domain whose verifying contract is its
    own Settlement, so an order signed for one is refused by the other's coordinator."""
    chain = InProcessChain()
    a, b = deploy_devnet(chain), deploy_devnet(chain)
    for deployment in (a, b):
        domain = load_domain(deployment)
        assert domain.verifying_contract == deployment["settlement"]["settlement"]
        assert domain == compute_domain(load_params("devnet"), domain.chain_id, domain.verifying_contract)
        verifier = chain.at("WindowVerifier", deployment["settlement"]["verifier"])
        assert bytes(verifier.call("DOMAIN_SEPARATOR")) == domain.separator
    store = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    try:
        c = build_devnet_coordinator(chain, b, store)
        c.on_list_expiry(mw.EXPIRY, mw.CAP, now=mw.NOW)
        series_id = c.on_list_series(mw.EXPIRY, Price(3_000 * USDC), OptionKind.CALL, now=mw.NOW).body["seriesId"]
        alice = mw.ADDRESSES[0]  # nothing deposited: a signature accepted meets the collateral check
        ask = Order(alice, SeriesId(bytes.fromhex(series_id[2:])), Side.SELL, mw.px(90), Quantity(100),
                    TimeInForce.GTC, Nonce(1), Timestamp(mw.NOW + 3_600))
        with pytest.raises(WrongSigner):
            c.on_order(ask, signed(a, ask, alice), now=mw.NOW)  # deployment a's signature
        with pytest.raises(InsufficientCollateral):
            c.on_order(ask, signed(b, ask, alice), now=mw.NOW)
    finally:
        store.close()
