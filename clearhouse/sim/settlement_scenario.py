"""The settlement part of the demo, on a fresh in-process chain: deposits, batches of trades posted
and finalised (gas per trade printed), a deliberately bad batch caught by an independent watcher
(chain data only) and the coordinator slashed then re-admitted, a forced withdrawal served, and
users claiming their withdrawals. Every figure returned is read from what happened on the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from clearhouse.chain import InProcessChain, Receipt
from clearhouse.node.watcher import Watcher
from clearhouse.settlement import (
    ForcedWithdrawalOp,
    Operation,
    TickOp,
    TradeOp,
    compute_free_collateral,
)
from clearhouse.sim.settlement_chain import BOND, USDC, Posted, SettlementSystem, deploy, forge
from clearhouse.sim.settlement_world import NOW, deposit, make_ctx, px, trade, withdrawal
from clearhouse.types import AccountId, Address, Amount, Price, Timestamp

__all__ = ["run_settlement_scenario"]

COORDINATOR_ROLE = 0
DEPOSITS = (20_000, 20_000, 10_000, 10_000)
"""Whole USDC each of the four users deposits."""


def _trades(first_nonce: int, count: int) -> list[Operation]:
    """``count`` book fills between rotating pairs of users, each with fresh order nonces."""
    ops: list[Operation] = []
    for i in range(count):
        maker, taker = i % 4, (i + 1) % 4
        ops.append(trade(maker, taker, 100 + 10 * i, px(40 + i), nonces=(first_nonce + 2 * i,
                                                                          first_nonce + 2 * i + 1)))
    return ops


def _post(s: SettlementSystem, posted: Posted, batches: list[dict[str, Any]],
          events: list[tuple[int, str, bool]], *, honest: bool = True) -> Receipt:
    """Post ``posted`` and record it for the demo report: the batch (number, gas, trades) and a
    timeline event, in the order things happen."""
    s.sync_time(posted.result.header.timestamp)
    receipt = s.post_raw(posted)
    number = int(posted.result.header.number)
    trades = sum(isinstance(op, TradeOp) for op in posted.result.operations)
    batches.append({"number": number, "gas": receipt.gas_used, "trades": trades, "honest": honest})
    events.append((s.chain.now(), f"#{number} posted", honest))
    return receipt


def run_settlement_scenario(log: Callable[[str], None], detail: Callable[[str], None]) -> dict[str, Any]:
    """Run the scenario, printing each step through ``log`` / ``detail``; return its figures."""
    chain = InProcessChain()
    s = deploy(chain, users=4)
    watcher = Watcher(chain, s.settlement, s.vault, s.verifier, make_ctx, chain.accounts[5])
    log(f"settlement: Vault, Settlement, Bonds and WindowVerifier on a fresh in-process chain; "
        f"coordinator bonded {BOND // USDC:,} tUSD; watcher {watcher.account.address[:10]}… (chain data only)")
    batches: list[dict[str, Any]] = []
    events: list[tuple[int, str, bool]] = []
    for i, usdc in enumerate(DEPOSITS):
        s.deposit(i, usdc)
    _post(s, s.build([deposit(i, usdc) for i, usdc in enumerate(DEPOSITS)] + [TickOp(Timestamp(NOW))]),
          batches, events)
    detail(f"batch 1: {len(DEPOSITS)} deposits credited ({sum(DEPOSITS):,} tUSD)")

    gas_per_trade: list[int] = []
    nonce = 20_000
    for trades in (8, 12):
        ops = [*_trades(nonce, trades), withdrawal(trades % 4, 100 + trades, nonce=nonce + 999)]
        nonce += 1_000
        receipt = _post(s, s.build(ops), batches, events)
        gas_per_trade.append(receipt.gas_used // trades)
        detail(f"batch {len(s.posted)}: {trades} trades + 1 withdrawal posted, {receipt.gas_used:,} gas "
               f"= {gas_per_trade[-1]:,} gas per trade ({receipt.calldata_size:,} bytes calldata)")
    if watcher.on_tick():
        raise RuntimeError("the watcher challenged an honest batch")
    s.finalize_all()
    events.append((chain.now(), f"#1-{len(s.posted)} final", True))
    detail(f"watcher re-executed batches 1..{watcher.verified} from calldata: all correct; "
           f"finalised through batch {s.settlement.call('last_finalized')}")

    honest = s.build(_trades(nonce, 4))
    nonce += 1_000
    first = honest.result.operations[0]
    if not isinstance(first, TradeOp):
        raise RuntimeError("the scenario's bad batch needs a trade to alter")
    bad = forge(honest, [replace(first, price=Price(first.price + px(5))), *honest.result.operations[1:]])
    _post(s, bad, batches, events, honest=False)
    detail(f"batch {len(s.posted)}: the coordinator posts a trade at a price the buyer never signed")
    [challenge] = watcher.on_tick()
    events.append((chain.now(), f"#{challenge.number} proven wrong, slashed", False))
    slashed = challenge.succeeded and challenge.slashed > 0
    log(f"watcher proved batch {challenge.number} wrong ({challenge.kind.value} proof, window verifier): "
        f"{challenge.reason}")
    detail(f"proof gas {challenge.gas_used:,}; coordinator slashed {challenge.slashed // USDC:,} tUSD; watcher paid "
           f"{challenge.reward // USDC:,} tUSD; batch reverted, posting paused: {s.settlement.call('paused')}")
    s.posted, s.state = s.posted[:-1], s.posted[-2].result.state

    s.settlement.transact("admit_coordinator", s.coordinator.address)
    s.token.transact("mint", s.coordinator.address, BOND)
    s.token.transact("approve", s.bonds.address, BOND, sender=s.coordinator)
    s.bonds.transact("bond", COORDINATOR_ROLE, BOND, sender=s.coordinator)
    detail("coordinator re-admitted by the admin and re-bonded")

    s.vault.transact("request_forced_withdrawal", 500 * USDC, sender=s.users[3])
    account = s.state.accounts[AccountId(3)]
    paid = Amount(min(500 * USDC, compute_free_collateral(account, make_ctx(NOW))))
    forced = ForcedWithdrawalOp(AccountId(3), Address(s.users[3].address), Amount(500 * USDC), paid)
    receipt = _post(s, s.build([forced, *_trades(nonce, 4)]), batches, events)
    gas_per_trade.append(receipt.gas_used // 4)
    detail(f"batch {len(s.posted)}: forced withdrawal of user 3 served ({paid // USDC:,} tUSD) + 4 trades, "
           f"{receipt.gas_used:,} gas = {gas_per_trade[-1]:,} gas per trade")
    if watcher.on_tick():
        raise RuntimeError("the watcher challenged an honest batch")
    s.finalize_all()
    events.append((chain.now(), f"#{len(s.posted)} final", True))

    withdrawals = 0
    for number, batch in enumerate(s.posted, start=1):
        for index in range(len(batch.result.payouts)):
            s.claim(number, index)
            withdrawals += 1
    s.check_conservation()
    finalized = int(s.settlement.call("last_finalized"))
    posts = sum(e.name == "BatchPosted" for _, e in chain.get_events(s.settlement.address))
    log(f"settlement: {posts} batches posted, {finalized} finalised, {withdrawals} withdrawals "
        f"claimed; vault balance equals what it owes to the base unit")
    return {
        "batches_posted": posts,
        "batches_finalized": finalized,
        "bad_batches_caught": sum(c.succeeded for c in watcher.challenges),
        "coordinator_slashed": bool(slashed),
        "forced_withdrawals": watcher.states[watcher.verified].counters.forced_count,
        "withdrawals": withdrawals,
        "gas_per_trade": sum(gas_per_trade) // len(gas_per_trade),
        "batches": batches,
        "events": events,
        "bonded": {"coordinator": s.coordinator.address, "watcher": watcher.account.address,
                   "slashes": [dict(e.args) for _, e in chain.get_events(s.bonds.address) if e.name == "Slashed"]},
    }
