"""The coordinator on a chain (in-process EVM, real Vault/Settlement, real SQLite): deposits are
credited from the vault's queue in order (two equal deposits are two entries), accepted trades,
cancels and withdrawals become batches that are posted and finalised on ticks, forced withdrawals
are debited and served, the batched state equals the coordinator's (governed fees included: the
ledger and the batch charge the schedule the trade was matched with), a restart applies nothing
twice and reconciles the outbox with the chain, a chain-time jump before posting loses no trade
(the stamp stays within the clock lag), and an item the spec still refuses raises the alarm (ERROR
log, metric, degraded ``/health``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clearhouse.chain import InProcessChain
from clearhouse.errors import ConfigError, NotFound
from clearhouse.messages import Cancel, Domain, Side, TimeInForce, Withdrawal, sign
from clearhouse.messages.keccak import keccak256
from clearhouse.node.batcher import get_header_timestamp
from clearhouse.node.settlement_link import build_settlement_link, load_chain_contracts
from clearhouse.sdk.chain import ChainAccess
from clearhouse.settlement import compute_parameter_key
from clearhouse.settlement.state import get_account
from clearhouse.sim import market_world as mw
from clearhouse.sim.chain_node import ChainNode, compute_deployment, start_chain_node
from clearhouse.sim.settlement_chain import WINDOW, WINDOW_OUTFLOW, SettlementSystem, deploy
from clearhouse.sim.settlement_world import make_ctx
from clearhouse.types import Address, Amount, Digest, Nonce, Timestamp

USDC = mw.USDC


@pytest.fixture(scope="module")
def deployed() -> tuple[SettlementSystem, object]:
    s = deploy(InProcessChain(), users=4)
    return s, s.chain.snapshot()


@pytest.fixture
def system(deployed: tuple[SettlementSystem, object]) -> Iterator[SettlementSystem]:
    s, snap = deployed
    s.chain.revert_to(snap)
    yield s
    s.chain.revert_to(snap)


@pytest.fixture
def node(system: SettlementSystem, tmp_path: Path) -> Iterator[ChainNode]:
    n = start_chain_node(tmp_path / "node.db", system, serve=False)
    yield n
    n.store.close()


def _deposit(s: SettlementSystem, i: int, usdc: int) -> None:
    user = s.users[i]
    s.token.transact("mint", user.address, usdc * USDC)
    s.token.transact("approve", s.vault.address, usdc * USDC, sender=user)
    s.vault.transact("deposit", usdc * USDC, sender=user)


def _trade(n: ChainNode) -> None:
    """Alice (user 0) rests 300 at 120, bob (user 1) takes 100 of them."""
    world, now = mw.make_world(), n.link.now()
    a, b = n.system.users[0].address, n.system.users[1].address
    ask = mw.order(world, Address(a), Side.SELL, mw.px(120), 300)
    n.coordinator.on_order(ask, mw.signed(ask, Address(a)), now=now)
    bid = mw.order(world, Address(b), Side.BUY, mw.px(121), 100, TimeInForce.IOC)
    ack = n.coordinator.on_order(bid, mw.signed(bid, Address(b)), now=now)
    assert [t["quantity"] for t in ack.body["trades"]] == ["100"]


def _batched_balances(n: ChainNode) -> dict[str, int]:
    state = n.link.batcher.state
    return {a.owner: a.balance for a in state.accounts.values()}


def _final(n: ChainNode) -> None:
    n.system.chain.time_travel(WINDOW)
    n.tick()


def test_deposits_trades_and_withdrawals_reach_the_chain_and_finalise(node: ChainNode) -> None:
    s, n = node.system, node
    _deposit(s, 0, 50_000)
    _deposit(s, 1, 20_000)
    _deposit(s, 1, 20_000)  # the same owner and amount again: a second queue entry, credited too
    assert n.tick() == 3
    assert n.coordinator.get_account_json(Address(s.users[1].address))["balance"] == str(40_000 * USDC)
    assert n.tick() == 0  # nothing new: nothing credited twice
    _trade(n)
    alice = Address(s.users[0].address)
    w = Withdrawal(alice, alice, Amount(1_000 * USDC), Nonce(77), Timestamp(mw.NOW))
    n.coordinator.on_withdrawal(w, sign(mw.DOMAIN, w, mw.KEYS[0]), now=n.link.now())
    c = Cancel(alice, Digest(bytes(32)), Nonce(78), Timestamp(mw.NOW))
    n.coordinator.on_cancel(c, mw.signed(c, alice), now=n.link.now())
    n.tick()
    batches = n.store.list_batches()
    assert [b.status for b in batches] == ["included"] * len(batches) and batches
    assert int(s.settlement.call("last_batch")) == batches[-1].number
    assert int(s.settlement.call("batch_meta", batches[-1].number)) >> 64 & (2**64 - 1) == 3  # deposits consumed
    assert not n.store.list_pending_items()
    assert all(q.rejected is None for b in batches for q in n.store.list_batch_items(b.number))
    assert _batched_balances(n) == n.coordinator.portfolios.balances  # the batched state is the coordinator's
    _final(n)
    assert [b.status for b in n.store.list_batches()] == ["final"] * len(batches)
    assert int(s.settlement.call("last_finalized")) == batches[-1].number
    proof = n.link.get_account_proof(alice)
    assert proof.number == batches[-1].number
    assert bytes(s.settlement.call("batch_root", proof.number)) == proof.state_root
    with pytest.raises(NotFound):
        n.link.get_account_proof(Address(s.users[3].address))  # never deposited


def test_a_forced_withdrawal_is_debited_and_served(node: ChainNode) -> None:
    s, n = node.system, node
    _deposit(s, 2, 5_000)
    n.tick()
    s.vault.transact("request_forced_withdrawal", 7_000 * USDC, sender=s.users[2])  # more than held
    n.tick()
    carol = Address(s.users[2].address)
    assert n.coordinator.get_account_json(carol)["balance"] == "0"  # min(requested, free) = all of it
    _final(n)
    state = n.link.batcher.state
    assert state.counters.forced_count == 1
    account = get_account(state, n.link.ids[Address(carol.lower())])
    assert account is not None and account.balance == 0
    before = int(s.token.call("balanceOf", carol))
    access = ChainAccess(s.chain, s.settlement.address, s.vault.address, mw.KEYS[2])
    paid = access.claim_withdrawal(carol)  # the vault's window outflow cap (WINDOW_OUTFLOW) lets half out
    assert paid == WINDOW_OUTFLOW == 2_500 * USDC
    s.chain.time_travel(2 * WINDOW)  # the rest waited, claimable, for the next window pair
    paid = Amount(paid + access.claim_withdrawal(carol))
    assert paid == 5_000 * USDC and int(s.token.call("balanceOf", carol)) == before + paid


def test_restart_applies_nothing_twice_and_reconciles_the_outbox(system: SettlementSystem,
                                                                tmp_path: Path) -> None:
    s, db = system, tmp_path / "node.db"
    n = start_chain_node(db, s, serve=False)
    _deposit(s, 0, 50_000)
    _deposit(s, 1, 40_000)
    n.tick()  # batch 1: the two deposits, posted
    n.coordinator.batcher = None  # as if the process died after committing the orders, before queuing
    _trade(n)
    before = n.coordinator.get_state_fingerprint()
    actions = n.store.get_last_action_seq()
    assert not n.store.list_pending_items()
    n.store.close()

    n = start_chain_node(db, s, serve=False)  # a new process over the same database
    try:
        assert n.replayed > 0 and n.coordinator.get_state_fingerprint() == before
        assert len(n.store.list_pending_items()) == 1  # the trade, queued again from the replay
        n.link.sync_queues()  # the rescan meets both deposits again: acknowledged duplicates
        assert n.store.get_last_action_seq() == actions
        assert n.coordinator.get_state_fingerprint() == before
        assert len(n.store.list_pending_items()) == 1 and [b.number for b in n.store.list_batches()] == [1]
        _deposit(s, 1, 1_000)  # a deposit after the restart is credited once
        n.tick()
        n.tick()
        bob = Address(s.users[1].address)
        assert n.coordinator.portfolios.balances[bob] == before["balances"][bob] + 1_000 * USDC
        _final(n)
        assert _batched_balances(n) == n.coordinator.portfolios.balances
        numbers = [b.number for b in n.store.list_batches()]
        assert numbers == list(range(1, len(numbers) + 1))
        for b in n.store.list_batches():
            assert bytes(s.settlement.call("batch_header_hash", b.number)) == keccak256(b.header)
    finally:
        n.store.close()


def _jump_after_a_trade(n: ChainNode, seconds: int) -> int:
    """Deposits batched, a trade acknowledged, then chain time jumps ``seconds`` before the next
    tick; returns the trade's time."""
    s = n.system
    _deposit(s, 0, 50_000)
    _deposit(s, 1, 20_000)
    n.tick()
    traded_at = n.link.now()
    _trade(n)
    s.chain.time_travel(seconds)
    n.tick()
    return traded_at


def test_a_chain_time_jump_before_posting_does_not_lose_the_trade(node: ChainNode) -> None:
    n = node
    lag = make_ctx().max_clock_lag
    traded_at = _jump_after_a_trade(n, 2 * lag + 5)  # stamped at chain time, the trade would be stale
    last = n.store.list_batches()[-1]
    assert [q.rejected for q in n.store.list_batch_items(last.number)] == [None]
    assert last.status == "included" and int(n.system.settlement.call("last_batch")) == last.number
    # the stamp stops where the trade's clock still applies, well behind chain time
    assert get_header_timestamp(last.header) == traded_at + lag < n.system.chain.now() - lag
    assert _batched_balances(n) == n.coordinator.portfolios.balances
    assert n.link.batcher.get_health()["status"] == "ok" and n.link.batcher.refused_total == 0
    n.tick()  # the next batch may be stamped at chain time again (nothing pending: no batch)
    assert n.store.list_batches()[-1].number == last.number


def test_a_refused_item_raises_the_alarm(system: SettlementSystem, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    n = start_chain_node(tmp_path / "node.db", system)  # with its API: /health and /metrics
    try:
        assert httpx.get(f"{n.url}/health").json()["status"] == "ok"
        delay = int(system.settlement.call("max_post_delay"))
        with caplog.at_level(logging.ERROR, logger="clearhouse.node.batcher"):
            # the node was down past max_post_delay: no stamp the chain takes lets the trade apply
            _jump_after_a_trade(n, delay + 2 * make_ctx().max_clock_lag)
        last = n.store.list_batches()[-1]
        assert [q.rejected for q in n.store.list_batch_items(last.number)] == ["stale_clock"]
        assert last.status == "included"  # the batch (a clock tick) still posts; the trade is out
        assert _batched_balances(n) != n.coordinator.portfolios.balances  # what the alarm is about
        [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert "Trade" in record.getMessage() and "stale_clock" in record.getMessage()
        health = httpx.get(f"{n.url}/health")
        assert health.status_code == 200  # still serving, but degraded
        body = health.json()
        assert body["ok"] is False and body["status"] == "degraded"
        refusals = body["checks"]["settlement"]["recentRefusals"]
        assert body["checks"]["settlement"]["refusedItems"] == 1
        assert [(r["kind"], r["reason"], r["batch"]) for r in refusals] == [("Trade", "stale_clock", last.number)]
        metrics = httpx.get(f"{n.url}/metrics").text
        assert "clearhouse_settlement_refused_items 1.0" in metrics
    finally:
        n.stop()
    again = start_chain_node(tmp_path / "node.db", system, serve=False)  # the alarm survives a restart
    try:
        again.tick()
        assert again.link.batcher.get_health()["refusedItems"] == 1
    finally:
        again.store.close()


def test_misconfigured_links_are_refused(system: SettlementSystem, tmp_path: Path) -> None:
    n = start_chain_node(tmp_path / "node.db", system, serve=False)
    try:
        wrong_key = compute_deployment(system) | {"coordinator": {"key": "0x" + "11" * 32}}
        with pytest.raises(ConfigError) as err:
            load_chain_contracts(system.chain, wrong_key)
        assert err.value.field == "coordinator"
        with pytest.raises(ConfigError):
            load_chain_contracts(system.chain, {"settlement": {}})
        n.coordinator.domain = Domain("other", "1", mw.DOMAIN.chain_id, mw.DOMAIN.verifying_contract)
        with pytest.raises(ConfigError) as err:
            build_settlement_link(n.coordinator, system.chain, compute_deployment(system), make_ctx)
        assert err.value.field == "domain"
    finally:
        n.store.close()


FEE_BOUNDS = {"maker_fee_bps": (0, 100), "taker_fee_bps": (0, 100), "max_fee_bps": (0, 100),
              "checkpoint_interval": (1, 16), "max_positions": (1, 16)}


def test_the_governed_fee_schedule_is_charged_by_the_ledger_and_the_batch_alike(tmp_path: Path) -> None:
    chain = InProcessChain()
    governor = chain.accounts[6]
    s = deploy(chain, users=4, parameter_bounds=FEE_BOUNDS, governor=governor.address,
               parameter_values={"maker_fee_bps": 10, "taker_fee_bps": 30})
    db = tmp_path / "node.db"
    n = start_chain_node(db, s, serve=False)
    _deposit(s, 0, 50_000)
    _deposit(s, 1, 20_000)
    n.tick()  # adopts version 1's schedule (one logged action), credits the deposits
    assert n.coordinator.get_fees_json() == {"makerBps": 10, "takerBps": 30}
    fee_actions = [a for a in n.store.iter_actions() if a.kind == "fees"]
    assert len(fee_actions) == 1
    n.tick()
    assert len([a for a in n.store.iter_actions() if a.kind == "fees"]) == 1  # unchanged: not logged again
    _trade(n)  # bob takes 100 of alice's ask at 120: premium 120 USDC
    (trade,) = n.coordinator.trades
    assert (trade.premium, trade.maker_fee, trade.taker_fee) == (120 * USDC, 120 * USDC // 1_000, 360 * USDC // 1_000)
    alice, bob = Address(s.users[0].address), Address(s.users[1].address)
    assert n.coordinator.portfolios.balances[alice] == 50_000 * USDC + 120 * USDC - trade.maker_fee
    assert n.coordinator.portfolios.balances[bob] == 20_000 * USDC - 120 * USDC - trade.taker_fee
    n.tick()
    _final(n)
    assert _batched_balances(n) == n.coordinator.portfolios.balances  # the batch charged the same fees
    assert n.link.batcher.state.counters.fee_pool == trade.maker_fee + trade.taker_fee
    # governance drops the taker fee: the next tick adopts it, and the next fill pays the new rate
    assert s.parameters.store is not None
    s.parameters.store.transact("set", compute_parameter_key("taker_fee_bps"), 0, sender=governor)
    n.tick()
    assert n.coordinator.get_fees_json() == {"makerBps": 10, "takerBps": 0}
    before = n.coordinator.get_state_fingerprint()
    n.store.close()
    n = start_chain_node(db, s, serve=False)  # replay charges what was charged, schedule included
    try:
        assert n.coordinator.get_state_fingerprint() == before
    finally:
        n.store.close()
