"""The watcher role end to end on both backends: it rebuilds the state from chain data alone
(events + posting calldata, no coordinator API), lets honest batches finalise untouched, and
proves a bad batch against the real ``Settlement`` + ``WindowVerifier``: the coordinator is
slashed, the watcher is paid, the batch and its successors are reverted, and posting stays closed
until a coordinator is re-admitted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from clearhouse.chain import Chain
from clearhouse.errors import ChainError, ContractRevert, InvalidBatch, MalformedOperation
from clearhouse.node.watcher import Watcher
from clearhouse.settlement import TickOp, TradeOp, compute_windows, get_state_root
from clearhouse.settlement.watcher import FaultKind, decode_header, decode_ops_data, decode_posting
from clearhouse.sim.settlement_chain import (
    BOND,
    REWARD_BPS,
    T_FORCE,
    USDC,
    WINDOW,
    SettlementSystem,
    deploy,
    forge,
)
from clearhouse.sim.settlement_world import NOW, deposit, make_ctx, px, trade, withdrawal
from clearhouse.types import Price, Timestamp

COORD = 0


def _system(chain: Chain) -> tuple[SettlementSystem, Watcher]:
    s = deploy(chain, users=3)
    for i, usdc in enumerate((10_000, 10_000, 5_000)):
        s.deposit(i, usdc)
    watcher = Watcher(chain, s.settlement, s.vault, s.verifier, make_ctx, chain.accounts[5])
    return s, watcher


def _rebond(s: SettlementSystem) -> None:
    s.token.transact("mint", s.coordinator.address, BOND)
    s.token.transact("approve", s.bonds.address, BOND, sender=s.coordinator)
    s.bonds.transact("bond", COORD, BOND, sender=s.coordinator)


def test_posting_calldata_and_header_decode_to_what_was_posted(inprocess_chain: Chain) -> None:
    s, _ = _system(inprocess_chain)
    posted = s.build([deposit(0, 10_000), deposit(1, 10_000), deposit(2, 5_000), TickOp(Timestamp(NOW)),
                      withdrawal(0, 5)])
    for entry in ("post_batch", "post_large_batch"):
        assert decode_posting(s.settlement.encode(entry, posted.header, posted.ops_data)) == \
            (posted.header, posted.ops_data)
    assert decode_header(posted.header) == posted.result.header
    assert decode_ops_data(posted.ops_data, 2) == compute_windows(posted.result.operations, s.k)
    with pytest.raises(InvalidBatch):
        decode_posting(s.settlement.encode("finalize", 1))
    with pytest.raises(InvalidBatch):
        decode_header(posted.header[:-1])
    with pytest.raises(MalformedOperation):
        decode_ops_data(posted.ops_data + b"\x00", 2)


def test_chain_logs_and_transaction_input(chain: Chain) -> None:
    probe = chain.deploy("mocks/ChainProbe", 0)
    start = chain.block_number()
    receipt = probe.transact("store", 3, 9)
    logs = chain.get_logs(probe.address, start)
    assert [entry.tx_hash for entry in logs] == [receipt.tx_hash]
    assert logs[0].address == probe.address and logs[0].data == receipt.raw_logs[0][2]
    events = chain.get_events(probe.address, start)
    assert [e.name for _, e in events] == ["Stored"]
    assert chain.get_transaction_input(receipt.tx_hash) == probe.encode("store", 3, 9)
    assert chain.get_logs(chain.accounts[9].address, start) == []
    snap = chain.snapshot()
    probe.transact("store", 4, 1)
    chain.revert_to(snap)
    assert len(chain.get_logs(probe.address, start)) == 1  # reverted history is gone
    with pytest.raises(ChainError):
        chain.get_transaction_input("0x" + "ab" * 32)


def test_watcher_proves_a_bad_batch_and_honest_ones_finalise(chain: Chain) -> None:
    s, watcher = _system(chain)
    challenger = watcher.account.address
    s.post([deposit(0, 10_000), deposit(1, 10_000), deposit(2, 5_000), TickOp(Timestamp(NOW))])
    s.post([trade(1, 2, 100, px(50)), withdrawal(0, 5)])
    assert watcher.on_tick() == [] and watcher.verified == 2
    assert get_state_root(watcher.states[2]) == s.settlement.call("batch_root", 2)
    assert {e.index for e in watcher.deposits.values()} == {0, 1, 2}

    # batch 3: the coordinator prints a trade at a price the taker never signed for
    honest = s.build([trade(0, 1, 10, px(40)), withdrawal(1, 1, nonce=9001), withdrawal(2, 1, nonce=9002),
                      withdrawal(0, 1, nonce=9003), withdrawal(1, 2, nonce=9004)])
    signed = honest.result.operations[0]
    assert isinstance(signed, TradeOp)
    bad = forge(honest, [replace(signed, price=Price(px(41))), *honest.result.operations[1:]])
    s.post_raw(bad)
    s.post([withdrawal(2, 3, nonce=9005)])  # batch 4 builds on it
    assert s.settlement.call("last_batch") == 4
    slashable = int(s.bonds.call("slashable_of", s.coordinator.address, COORD))
    assert slashable == BOND

    [challenge] = watcher.on_tick()
    assert challenge.number == 3 and challenge.kind is FaultKind.EXECUTION and challenge.succeeded
    assert "PriceOutsideLimit" in challenge.reason
    assert challenge.slashed == BOND and challenge.reward == BOND * REWARD_BPS // 10_000
    assert s.token.call("balanceOf", challenger) == challenge.reward == watcher.rewards
    assert int(s.bonds.call("slashable_of", s.coordinator.address, COORD)) == 0
    assert s.settlement.call("last_batch") == 2 and s.settlement.call("paused")
    assert watcher.on_tick() == [] and watcher.verified == 2  # nothing left to prove

    # posting is closed until a coordinator is (re)admitted and bonded
    s.posted, s.state = s.posted[:2], s.posted[1].result.state
    retry = s.build([withdrawal(1, 1, nonce=9001)])
    with pytest.raises(ContractRevert, match="settlement: paused"):
        s.settlement.transact("post_batch", retry.header, retry.ops_data, sender=s.coordinator)
    s.settlement.transact("admit_coordinator", s.coordinator.address)
    with pytest.raises(ContractRevert, match="settlement: stake below minimum"):
        s.settlement.transact("post_batch", retry.header, retry.ops_data, sender=s.coordinator)
    _rebond(s)
    s.post_raw(retry)
    assert watcher.on_tick() == [] and watcher.verified == 3
    s.finalize_all()
    assert s.settlement.call("last_finalized") == 3
    s.claim(3, 0)
    s.check_conservation()
    assert len(watcher.challenges) == 1


def test_watcher_proves_queue_and_payout_faults(chain: Chain) -> None:
    s, watcher = _system(chain)
    s.post([deposit(0, 10_000), TickOp(Timestamp(NOW))])
    honest = s.build([deposit(1, 10_000), deposit(2, 5_000), withdrawal(0, 5)])
    s.post_raw(forge(honest, [deposit(2, 5_000, owner=2), withdrawal(0, 5), TickOp(Timestamp(NOW))]))
    [challenge] = watcher.on_tick()
    assert challenge.kind is FaultKind.QUEUES and challenge.reason == "deposit queue" and challenge.succeeded
    assert s.settlement.call("last_batch") == 1

    s.settlement.transact("admit_coordinator", s.coordinator.address)
    _rebond(s)
    s.posted, s.state = s.posted[:1], s.posted[0].result.state
    s.post([deposit(1, 10_000), deposit(2, 5_000)])
    built = s.build([withdrawal(1, 5, nonce=9005)])
    header = replace(built.result.header, withdrawal_count=0, withdrawals_root=bytes(32))
    from clearhouse.settlement import encode_header
    from clearhouse.sim.settlement_chain import Posted
    s.post_raw(Posted(replace(built.result, header=header), encode_header(header), built.ops_data))
    [challenge] = watcher.on_tick()
    assert challenge.number == 3 and challenge.kind is FaultKind.PAYOUTS and challenge.succeeded
    assert watcher.verified == 2 and s.settlement.call("last_batch") == 2
    assert s.token.call("balanceOf", watcher.account.address) == watcher.rewards == BOND * REWARD_BPS // 10_000 * 2


def test_watcher_freezes_when_a_forced_withdrawal_is_ignored(chain: Chain) -> None:
    s, watcher = _system(chain)
    s.post([deposit(0, 10_000), deposit(1, 10_000), deposit(2, 5_000), TickOp(Timestamp(NOW))])
    s.finalize_all()
    s.vault.transact("request_forced_withdrawal", 50 * USDC, sender=s.users[2])
    watcher.on_tick()
    assert not watcher.froze and [e.amount for e in watcher.forced.values()] == [50 * USDC]
    later = Timestamp(s.chain.now())
    s.post([TickOp(later)], timestamp=later)  # a batch that ignores it
    s.chain.time_travel(T_FORCE)
    watcher.on_tick()
    assert watcher.froze and s.settlement.call("frozen")
    assert s.settlement.call("last_batch") == 1  # back to the last finalised batch


def test_a_late_watcher_records_the_refused_proof_once(chain: Chain) -> None:
    s, watcher = _system(chain)
    s.post([deposit(0, 10_000), TickOp(Timestamp(NOW))])
    honest = s.build([deposit(1, 10_000), deposit(2, 5_000)])
    s.post_raw(forge(honest, [deposit(2, 5_000, owner=2), TickOp(Timestamp(NOW))]))
    s.chain.time_travel(WINDOW)  # the watcher was offline for the whole challenge window
    [challenge] = watcher.on_tick()
    assert not challenge.succeeded and challenge.error == "settlement: challenge window closed"
    assert challenge.reward == 0 and watcher.rewards == 0
    assert watcher.on_tick() == [] and len(watcher.challenges) == 1
    assert s.settlement.call("last_batch") == 2 and not s.settlement.call("paused")
