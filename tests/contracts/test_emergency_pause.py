"""The emergency pause on the EVM: only the admin or the guardian, at most ``MAX_PAUSE`` seconds,
never back to back; it stops posting and nothing else — challenges, finality, claims, forced
withdrawals, freeze and exits go on — and a forced withdrawal's freeze deadline moves by exactly
the paused time it overlapped."""

from __future__ import annotations

from typing import Any

import pytest

from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import ContractRevert
from clearhouse.node.parameters import (
    PauseWindow,
    compute_freeze_deadline,
    get_pause_window,
    is_posting_paused,
)
from clearhouse.settlement import ForcedWithdrawalOp, TickOp, encode_account, get_account_proof
from clearhouse.sim.settlement_chain import (
    GUARDIAN_INDEX,
    T_FORCE,
    WINDOW,
    SettlementSystem,
    deploy,
    forge,
)
from clearhouse.sim.settlement_world import NOW, USDC, deposit, withdrawal
from clearhouse.types import AccountId, Address, Amount, Timestamp

DAY = 86_400


@pytest.fixture
def s(inprocess_chain: InProcessChain) -> SettlementSystem:
    system = deploy(inprocess_chain, users=3)
    for i in range(3):
        system.deposit(i, 1_000)
    system.post([deposit(i, 1_000) for i in range(3)] + [TickOp(Timestamp(NOW))])
    return system


def _reverts(reason: str, s: SettlementSystem, fn: str, *args: Any, **kw: Any) -> None:
    with pytest.raises(ContractRevert) as info:
        s.settlement.transact(fn, *args, **kw)
    assert info.value.reason == reason


def test_who_may_pause_for_how_long_and_how_often(s: SettlementSystem) -> None:
    guardian, stranger = s.chain.accounts[GUARDIAN_INDEX], s.chain.accounts[7]
    max_pause = int(s.settlement.call("MAX_PAUSE"))
    _reverts("settlement: not guardian", s, "pause", 3600, sender=stranger)
    _reverts("settlement: not guardian", s, "pause", 3600, sender=s.coordinator)
    _reverts("settlement: bad pause duration", s, "pause", 0, sender=guardian)
    _reverts("settlement: bad pause duration", s, "pause", max_pause + 1, sender=guardian)
    assert s.settlement.call("pause_end") == 0
    receipt = s.settlement.transact("pause", max_pause, sender=guardian)
    start = s.chain.now()
    assert dict(receipt.events_named("Paused")[0].args) == {"by": guardian.address, "start": start,
                                                             "end": start + max_pause}
    # posting stops; a second pause cannot extend it, by the guardian or the admin
    tick = s.build([TickOp(Timestamp(NOW))])
    _reverts("settlement: emergency pause", s, "post_batch", tick.header, tick.ops_data, sender=s.coordinator)
    _reverts("settlement: pause cooldown", s, "pause", 3600, sender=guardian)
    _reverts("settlement: pause cooldown", s, "pause", 3600, sender=s.admin)
    # it expires by itself: posting resumes with no call
    s.chain.time_travel(max_pause - (s.chain.now() - start))
    s.post_raw(tick)
    # no chaining: the next pause only `t_force` after the last one ended
    s.chain.time_travel(T_FORCE - 2)
    _reverts("settlement: pause cooldown", s, "pause", 3600, sender=guardian)
    s.chain.time_travel(2)
    s.settlement.transact("pause", 3600, sender=s.admin)
    assert s.settlement.call("pause_end") == s.chain.now() + 3600


def test_exits_challenges_finality_and_claims_go_on_while_paused(s: SettlementSystem) -> None:
    s.post([withdrawal(0, 10)])  # batch 2: a payout, pending
    s.deposit(1, 5)
    honest = s.build([deposit(1, 5)])
    bad = forge(honest, [TickOp(Timestamp(NOW))])  # batch 3 claims the deposit it skips
    s.post_raw(bad)
    s.vault.transact("request_forced_withdrawal", 100 * USDC, sender=s.users[2])
    s.settlement.transact("pause", 2 * DAY, sender=s.chain.accounts[GUARDIAN_INDEX])
    # a challenge is taken while paused
    receipt = s.settlement.transact("challenge_queues", 3, bad.header, bad.ops_data, sender=s.chain.accounts[7])
    assert receipt.events_named("FraudProven")[0].args["reason"] == "deposit queue"
    s.posted, s.state = s.posted[:2], s.posted[1].result.state
    # finality and claims too
    s.chain.time_travel(WINDOW)
    s.settlement.transact("finalize", 2)
    s.finalized = s.state
    before = s.balance(s.users[0].address)
    s.claim(2, 0)
    assert s.balance(s.users[0].address) - before == 10 * USDC
    # a forced withdrawal may still be requested
    s.vault.transact("request_forced_withdrawal", 1 * USDC, sender=s.users[1])
    assert int(s.settlement.call("pause_end")) > s.chain.now()
    s.check_conservation()


def test_a_freeze_deadline_moves_by_the_paused_time_and_exits_work_while_paused(s: SettlementSystem) -> None:
    guardian = s.chain.accounts[GUARDIAN_INDEX]
    s.finalize_all()
    s.vault.transact("request_forced_withdrawal", 100 * USDC, sender=s.users[2])
    requested = s.chain.now()
    s.chain.time_travel(DAY)
    s.settlement.transact("pause", DAY, sender=guardian)  # one day of the two-day T_force is paused
    s.chain.time_travel(T_FORCE - DAY)  # T_force since the request, of which one day paused
    assert s.chain.now() >= requested + T_FORCE
    _reverts("settlement: forced withdrawal not overdue", s, "freeze")
    # the node's rule (the watcher freezes by it) names the contract's exact deadline
    window = get_pause_window(s.settlement)
    deadline = compute_freeze_deadline(Timestamp(requested), T_FORCE, window)
    assert deadline == requested + T_FORCE + (window.end - window.start) and window.end - window.start == DAY
    s.chain.time_travel(deadline - 1 - s.chain.now())
    _reverts("settlement: forced withdrawal not overdue", s, "freeze")
    s.chain.time_travel(1)  # a full T_force of open posting: anyone freezes
    s.settlement.transact("freeze", sender=s.chain.accounts[7])
    assert s.settlement.call("frozen")


def test_a_pause_after_the_deadline_changes_nothing_and_exits_run_while_paused(s: SettlementSystem) -> None:
    guardian = s.chain.accounts[GUARDIAN_INDEX]
    s.finalize_all()
    s.vault.transact("request_forced_withdrawal", 100 * USDC, sender=s.users[2])
    s.chain.time_travel(T_FORCE)
    # the coordinator missed the deadline; a pause now neither blocks nor delays the freeze
    s.settlement.transact("pause", 3 * DAY, sender=guardian)
    s.settlement.transact("freeze", sender=s.chain.accounts[7])
    final = s.finalized
    leaf = final.accounts[AccountId(2)]
    proof = get_account_proof(final, AccountId(2))
    before = s.balance(s.users[2].address)
    s.settlement.transact("exit", s.preimage(final), 2, encode_account(leaf), proof.bitmap, list(proof.siblings),
                          sender=s.chain.accounts[8])
    assert s.balance(s.users[2].address) - before == leaf.balance
    assert int(s.settlement.call("pause_end")) > s.chain.now()


def test_a_served_forced_withdrawal_after_the_pause(s: SettlementSystem) -> None:
    s.vault.transact("request_forced_withdrawal", 100 * USDC, sender=s.users[1])
    s.settlement.transact("pause", DAY, sender=s.chain.accounts[GUARDIAN_INDEX])
    owner = Address(s.users[1].address)
    serve = s.build([ForcedWithdrawalOp(AccountId(1), owner, Amount(100 * USDC), Amount(100 * USDC))])
    _reverts("settlement: emergency pause", s, "post_batch", serve.header, serve.ops_data, sender=s.coordinator)
    s.chain.time_travel(DAY)
    s.post_raw(serve)  # served after the pause, inside the moved deadline
    s.chain.time_travel(T_FORCE)
    _reverts("settlement: no pending forced withdrawal", s, "freeze")


def test_the_node_rules_of_the_pause() -> None:
    w = PauseWindow(Timestamp(1_000), Timestamp(2_000))
    assert [is_posting_paused(w, Timestamp(t)) for t in (999, 1_000, 1_999, 2_000)] == [False, True, True, False]
    assert not is_posting_paused(PauseWindow(Timestamp(0), Timestamp(0)), Timestamp(0))
    # request before the pause, deadline inside it: moved by the whole pause
    assert compute_freeze_deadline(Timestamp(500), 1_000, w) == 2_500
    # request during the pause: moved by the paused rest
    assert compute_freeze_deadline(Timestamp(1_500), 1_000, w) == 3_000
    # pause over before the request, or starting at/after the deadline: not moved
    assert compute_freeze_deadline(Timestamp(2_000), 1_000, w) == 3_000
    assert compute_freeze_deadline(Timestamp(0), 1_000, w) == 1_000
