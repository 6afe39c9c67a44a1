"""Settlement.vy: posting, finality, claims, queue-fault challenges, slashing, freeze and exits,
with batches built by the Python spec (``clearhouse.settlement``), on both backends.

Conservation after every step: the vault's token balance equals, to the base unit, the balances
of the last finalised state (not exited) + its fee pool + unclaimed payouts of finalised batches
+ deposits that state has not consumed (``SettlementSystem.expected_vault_balance``).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from clearhouse.chain import Chain
from clearhouse.errors import ContractRevert
from clearhouse.messages.structs import Withdrawal
from clearhouse.settlement import (
    BatchResult,
    ForcedWithdrawalOp,
    QueuedForcedWithdrawal,
    TickOp,
    build_batch,
    encode_account,
    encode_header,
    get_account_proof,
)
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
from clearhouse.types import AccountId, Address, Amount, BatchNumber, Timestamp

COORD = 0


@pytest.fixture
def system(chain: Chain) -> SettlementSystem:
    """Three users who deposited 10,000 / 10,000 / 5,000 USDC (queued, not yet in a batch)."""
    s = deploy(chain, users=3)
    for i, usdc in enumerate((10_000, 10_000, 5_000)):
        s.deposit(i, usdc)
    return s


def _credit_all(s: SettlementSystem) -> None:
    s.post([deposit(0, 10_000), deposit(1, 10_000), deposit(2, 5_000), TickOp(Timestamp(NOW))])


# --- happy path ----------------------------------------------------------------------------


def test_batches_post_finalise_and_pay_withdrawals(system: SettlementSystem) -> None:
    s = system
    _credit_all(s)
    s.check_conservation()
    assert s.settlement.call("last_batch") == 1
    assert s.settlement.call("batch_root", 1) == s.posted[0].result.header.checkpoint_roots[-1]
    s.post([trade(1, 2, 100, px(50)), withdrawal(0, 1_234.5), withdrawal(1, 10)])
    s.finalize_all()
    s.check_conservation()
    assert s.settlement.call("last_finalized") == 2
    before = s.balance(s.users[0].address)
    s.claim(2, 0)
    assert s.balance(s.users[0].address) - before == 1_234_500_000
    s.check_conservation()
    with pytest.raises(ContractRevert, match="settlement: already claimed"):
        s.claim(2, 0)
    s.claim(2, 1)
    s.check_conservation()


def test_posted_event_and_stored_header(system: SettlementSystem) -> None:
    s = system
    posted = s.build([deposit(0, 10_000)])
    s.sync_time(NOW)
    receipt = s.settlement.transact("post_batch", posted.header, posted.ops_data, sender=s.coordinator)
    args = receipt.events_named("BatchPosted")[0].args
    assert args["number"] == 1 and args["poster"] == s.coordinator.address
    assert args["new_root"] == posted.result.header.checkpoint_roots[-1]
    from clearhouse.settlement import compute_header_hash
    assert s.settlement.call("batch_header_hash", 1) == compute_header_hash(posted.result.header)


def test_large_batch_entry_point(system: SettlementSystem) -> None:
    s = system
    posted = s.build([deposit(0, 10_000), deposit(1, 10_000)])
    s.sync_time(NOW)
    s.settlement.transact("post_large_batch", posted.header, posted.ops_data, sender=s.coordinator)
    assert s.settlement.call("last_batch") == 1


def test_deposits_are_credited_in_queue_order_only(system: SettlementSystem) -> None:
    s = system
    out_of_order = s.build([deposit(1, 10_000, owner=1)], NOW)
    # The spec refuses nothing here, but the header's deposit hash is not the vault's at count 1.
    s.sync_time(NOW)
    with pytest.raises(ContractRevert, match="settlement: wrong deposit hash"):
        s.settlement.transact("post_batch", out_of_order.header, out_of_order.ops_data, sender=s.coordinator)


def test_claim_checks(system: SettlementSystem) -> None:
    s = system
    _credit_all(s)
    s.post([withdrawal(0, 1)])
    with pytest.raises(ContractRevert, match="settlement: batch not final"):
        s.claim(2, 0)
    s.finalize_all()
    p = s.posted[1].result.payouts[0]
    with pytest.raises(ContractRevert, match="settlement: invalid proof"):
        s.settlement.transact("claim", 2, 0, p.recipient, p.amount + 1, [])


def test_finalize_checks(system: SettlementSystem) -> None:
    s = system
    with pytest.raises(ContractRevert, match="settlement: nothing to finalize"):
        s.settlement.transact("finalize", 1)
    _credit_all(s)
    with pytest.raises(ContractRevert, match="settlement: challenge window open"):
        s.settlement.transact("finalize", 1)
    s.chain.time_travel(WINDOW)
    receipt = s.settlement.transact("finalize", 1)
    assert receipt.events_named("BatchFinalized")[0].args["number"] == 1


# --- posting rules -------------------------------------------------------------------------


def test_only_the_bonded_coordinator_posts(system: SettlementSystem) -> None:
    s = system
    posted = s.build([deposit(0, 10_000)])
    s.sync_time(NOW)
    with pytest.raises(ContractRevert, match="settlement: not coordinator"):
        s.settlement.transact("post_batch", posted.header, posted.ops_data, sender=s.chain.accounts[2])
    s.bonds.transact("request_unbond", COORD, BOND, sender=s.coordinator)
    with pytest.raises(ContractRevert, match="settlement: stake below minimum"):
        s.settlement.transact("post_batch", posted.header, posted.ops_data, sender=s.coordinator)


def test_header_checks(system: SettlementSystem) -> None:
    s = system
    posted = s.build([deposit(0, 10_000), deposit(1, 10_000)])
    s.sync_time(NOW)
    h = posted.result.header

    def post(header: bytes, data: bytes = posted.ops_data) -> None:
        s.settlement.transact("post_batch", header, data, sender=s.coordinator)

    with pytest.raises(ContractRevert, match="settlement: wrong batch number"):
        post(encode_header(replace(h, number=BatchNumber(2))))
    with pytest.raises(ContractRevert, match="settlement: wrong prev root"):
        post(encode_header(replace(h, prev_root=h.checkpoint_roots[0])))
    with pytest.raises(ContractRevert, match="settlement: wrong parameter version"):
        post(encode_header(replace(h, parameter_version=2)))
    with pytest.raises(ContractRevert, match="settlement: wrong ops hash"):
        post(posted.header, posted.ops_data[:-1] + bytes([posted.ops_data[-1] ^ 1]))
    with pytest.raises(ContractRevert, match="settlement: bad ops data"):
        post(posted.header, posted.ops_data + b"\x00")
    with pytest.raises(ContractRevert, match="settlement: timestamp in the future"):
        post(encode_header(replace(h, timestamp=Timestamp(s.chain.now() + 10_000))))
    header = bytearray(posted.header)
    header[40] ^= 1  # accounts root no longer matches the last checkpoint
    with pytest.raises(ContractRevert, match="settlement: wrong new root"):
        post(bytes(header))
    post(posted.header)
    with pytest.raises(ContractRevert, match="settlement: wrong batch number"):
        post(posted.header)  # the same batch again: no replay


def test_batch_beyond_the_vault_queue_is_refused(chain: Chain) -> None:
    s = deploy(chain, users=2)
    s.deposit(0, 10)
    posted = s.build([deposit(0, 10), deposit(1, 10)])
    s.sync_time(NOW)
    with pytest.raises(ContractRevert, match="settlement: beyond deposit queue"):
        s.settlement.transact("post_batch", posted.header, posted.ops_data, sender=s.coordinator)


def test_batch_replayed_on_another_deployment_is_refused(chain: Chain, system: SettlementSystem) -> None:
    other = deploy(chain, users=3)
    for i, usdc in enumerate((10_000, 9_000, 5_000)):
        other.deposit(i, usdc)
    posted = system.build([deposit(0, 10_000), deposit(1, 10_000), deposit(2, 5_000)])
    system.sync_time(NOW)
    with pytest.raises(ContractRevert, match="settlement: wrong deposit hash"):
        other.settlement.transact("post_batch", posted.header, posted.ops_data, sender=other.coordinator)


# --- queue-fault challenges, slashing, pause -----------------------------------------------


def test_skipped_deposit_is_proven_slashed_reverted_and_paused(system: SettlementSystem) -> None:
    s = system
    s.post([deposit(0, 10_000), TickOp(Timestamp(NOW))])
    honest = s.build([deposit(1, 10_000), deposit(2, 5_000), withdrawal(0, 5)])
    bad = forge(honest, [deposit(2, 5_000, owner=2), withdrawal(0, 5)])
    s.post_raw(bad)
    s.post([withdrawal(0, 6, nonce=9001)])
    assert s.settlement.call("last_batch") == 3
    challenger = s.chain.accounts[5]
    before = int(s.bonds.call("slashable_of", s.coordinator.address, COORD))
    with pytest.raises(ContractRevert, match="settlement: no queue fault"):
        s.settlement.transact("challenge_queues", 3, s.posted[2].header, s.posted[2].ops_data,
                              sender=challenger)
    receipt = s.settlement.transact("challenge_queues", 2, bad.header, bad.ops_data, sender=challenger)
    args = receipt.events_named("FraudProven")[0].args
    assert args["reason"] == "deposit queue" and args["slashed"] == before == BOND
    assert args["reward"] == BOND * REWARD_BPS // 10_000
    assert s.token.call("balanceOf", challenger.address) == args["reward"]
    assert s.settlement.call("last_batch") == 1
    assert s.settlement.call("paused")
    good = s.build  # batch 2 again, honest this time
    s.posted, s.state = s.posted[:1], s.posted[0].result.state
    retry = good([deposit(1, 10_000), deposit(2, 5_000)])
    with pytest.raises(ContractRevert, match="settlement: paused"):
        s.settlement.transact("post_batch", retry.header, retry.ops_data, sender=s.coordinator)
    with pytest.raises(ContractRevert, match="settlement: not admin"):
        s.settlement.transact("admit_coordinator", challenger.address, sender=challenger)
    s.settlement.transact("admit_coordinator", s.chain.accounts[3].address)
    s.token.transact("mint", s.chain.accounts[3].address, BOND)
    s.token.transact("approve", s.bonds.address, BOND, sender=s.chain.accounts[3])
    s.bonds.transact("bond", COORD, BOND, sender=s.chain.accounts[3])
    s.settlement.transact("post_batch", retry.header, retry.ops_data, sender=s.chain.accounts[3])
    s.posted.append(retry)
    s.state = retry.result.state
    s.finalize_all()
    s.check_conservation()


def test_altered_forced_withdrawal_and_bad_structure_are_proven(system: SettlementSystem) -> None:
    s = system
    _credit_all(s)
    s.vault.transact("request_forced_withdrawal", 100 * USDC, sender=s.users[1])
    owner = Address(s.users[1].address)
    honest = s.build([ForcedWithdrawalOp(AccountId(1), owner, Amount(100 * USDC), Amount(100 * USDC))])
    bad = forge(honest, [ForcedWithdrawalOp(AccountId(1), owner, Amount(1 * USDC), Amount(1 * USDC))])
    s.post_raw(bad)
    receipt = s.settlement.transact("challenge_queues", 2, bad.header, bad.ops_data)
    assert receipt.events_named("FraudProven")[0].args["reason"] == "forced queue"


def test_challenge_checks(system: SettlementSystem) -> None:
    s = system
    _credit_all(s)
    p = s.posted[0]
    with pytest.raises(ContractRevert, match="settlement: wrong header"):
        s.settlement.transact("challenge_queues", 1, p.header[:-1] + b"\x00", p.ops_data)
    with pytest.raises(ContractRevert, match="settlement: wrong ops hash"):
        s.settlement.transact("challenge_queues", 1, p.header, p.ops_data[:-1] + bytes([p.ops_data[-1] ^ 1]))
    with pytest.raises(ContractRevert, match="settlement: batch not pending"):
        s.settlement.transact("challenge_queues", 2, p.header, p.ops_data)
    s.chain.time_travel(WINDOW)
    with pytest.raises(ContractRevert, match="settlement: challenge window closed"):
        s.settlement.transact("challenge_queues", 1, p.header, p.ops_data)
    with pytest.raises(ContractRevert, match="settlement: challenge window closed"):
        s.settlement.transact("challenge_payouts", 1, p.header, p.ops_data, [])


# --- forced withdrawals, freeze and exits --------------------------------------------------


def test_served_forced_withdrawal_is_paid_and_prevents_freeze(system: SettlementSystem) -> None:
    s = system
    _credit_all(s)
    s.vault.transact("request_forced_withdrawal", 300 * USDC, sender=s.users[2])
    built = build_batch(s.state, [QueuedForcedWithdrawal(AccountId(2), Address(s.users[2].address),
                                                         Amount(300 * USDC))],
                        make_ctx(NOW), {}, number=BatchNumber(2), k=4)
    from clearhouse.settlement import encode_ops_data
    from clearhouse.sim.settlement_chain import Posted
    posted = Posted(built.result, encode_header(built.result.header), encode_ops_data(built.windows))
    s.post_raw(posted)
    s.chain.time_travel(T_FORCE)
    with pytest.raises(ContractRevert, match="settlement: no pending forced withdrawal"):
        s.settlement.transact("freeze")
    s.settlement.transact("finalize", 2)
    s.finalized = s.state
    before = s.balance(s.users[2].address)
    s.claim(2, 0)
    assert s.balance(s.users[2].address) - before == 300 * USDC
    s.check_conservation()


def test_unserved_forced_withdrawal_freezes_and_users_exit(system: SettlementSystem) -> None:
    s = system
    _credit_all(s)
    s.post([trade(0, 1, 10, px(40)), withdrawal(2, 100)])
    s.finalize_all()
    s.deposit(0, 7)  # queued, never credited: refunded after the freeze
    s.post([withdrawal(2, 1, nonce=9001)])  # pending at the freeze: dropped
    s.vault.transact("request_forced_withdrawal", 50 * USDC, sender=s.users[2])
    with pytest.raises(ContractRevert, match="settlement: forced withdrawal not overdue"):
        s.settlement.transact("freeze")
    s.chain.time_travel(T_FORCE)
    s.settlement.transact("freeze", sender=s.chain.accounts[7])
    assert s.settlement.call("frozen") and s.settlement.call("last_batch") == 2
    posted = s.posted[2]
    with pytest.raises(ContractRevert, match="settlement: frozen"):
        s.settlement.transact("post_batch", posted.header, posted.ops_data, sender=s.coordinator)
    s.posted, s.state = s.posted[:2], s.finalized
    s.check_conservation()
    final = s.finalized
    preimage = s.preimage(final)
    # account 2 holds no position: it exits its whole balance
    leaf = final.accounts[AccountId(2)]
    proof = get_account_proof(final, AccountId(2))
    before = s.balance(s.users[2].address)
    s.settlement.transact("exit", preimage, 2, encode_account(leaf), proof.bitmap, list(proof.siblings),
                          sender=s.chain.accounts[8])
    assert s.balance(s.users[2].address) - before == leaf.balance
    s.exited.add(2)
    s.check_conservation()
    with pytest.raises(ContractRevert, match="settlement: already exited"):
        s.settlement.transact("exit", preimage, 2, encode_account(leaf), proof.bitmap, list(proof.siblings))
    # accounts 0 and 1 hold the option: valued by the verifier's expiry registry, which this
    # deployment has not wired (tests/contracts/test_exits.py exits them)
    leaf0 = final.accounts[AccountId(0)]
    proof0 = get_account_proof(final, AccountId(0))
    with pytest.raises(ContractRevert, match="settlement: no expiry registry"):
        s.settlement.transact("exit", preimage, 0, encode_account(leaf0), proof0.bitmap, list(proof0.siblings))
    with pytest.raises(ContractRevert, match="settlement: invalid proof"):
        s.settlement.transact("exit", preimage, 1, encode_account(leaf), proof.bitmap, list(proof.siblings))
    with pytest.raises(ContractRevert, match="settlement: wrong preimage"):
        s.settlement.transact("exit", bytes(168), 2, encode_account(leaf), proof.bitmap, list(proof.siblings))
    # the finalised batch's payout is still claimable; the queued deposit is refunded once
    s.claim(2, 0)
    index = len(s.deposits) - 1
    account, owner, amount = s.deposits[index]
    with pytest.raises(ContractRevert, match="settlement: deposit was credited"):
        s.settlement.transact("refund_deposit", 0, *s.deposits[0])
    with pytest.raises(ContractRevert, match="settlement: not that deposit"):
        s.settlement.transact("refund_deposit", index, account, owner, amount + 1)
    s.settlement.transact("refund_deposit", index, account, owner, amount)
    s.refunded.add(index)
    with pytest.raises(ContractRevert, match="settlement: already refunded"):
        s.settlement.transact("refund_deposit", index, account, owner, amount)
    s.settlement.transact("exit_fee_pool", preimage)
    s.fee_pool_exited = True
    s.check_conservation()
    with pytest.raises(ContractRevert, match="settlement: already exited"):
        s.settlement.transact("exit_fee_pool", preimage)
    with pytest.raises(ContractRevert, match="settlement: frozen"):
        s.settlement.transact("freeze")
    with pytest.raises(ContractRevert, match="settlement: frozen"):
        s.settlement.transact("admit_coordinator", s.coordinator.address)


def test_exit_needs_a_freeze(system: SettlementSystem) -> None:
    with pytest.raises(ContractRevert, match="settlement: not frozen"):
        system.settlement.transact("exit", bytes(168), 0, bytes(37), 0, [])
    with pytest.raises(ContractRevert, match="settlement: not frozen"):
        system.settlement.transact("refund_deposit", 0, 0, system.users[0].address, 1)


# --- re-entrancy ---------------------------------------------------------------------------


def test_reentrant_token_cannot_claim_twice(chain: Chain) -> None:
    s = deploy(chain, users=2, reentrant=True)
    s.deposit(0, 100)
    s.post([deposit(0, 100), TickOp(Timestamp(NOW)), withdrawal(0, 40)])
    s.finalize_all()
    result = s.posted[0].result
    from clearhouse.settlement.header import compute_payout_tree
    tree = compute_payout_tree(result.header.number, result.payouts)
    assert tree is not None
    p = result.payouts[0]
    args = (1, 0, p.recipient, p.amount, list(tree.get_proof(0)))
    s.token.transact("arm", s.settlement.address, s.settlement.encode("claim", *args))
    s.settlement.transact("claim", *args)
    s.claimed.add((1, 0))
    assert s.token.call("attempts") == 1 and s.token.call("successes") == 0
    assert s.balance(p.recipient) == 40 * USDC
    s.check_conservation()


def test_withdrawal_signed_for_another_chain_is_refused_by_the_spec() -> None:
    from clearhouse.errors import SettlementError
    from clearhouse.messages import sign
    from clearhouse.messages.domain import Domain
    from clearhouse.settlement import apply_batch, compute_genesis_state
    from clearhouse.sim.settlement_world import DOMAIN, KEYS
    from clearhouse.types import ChainId, Nonce
    other = Domain(DOMAIN.name, DOMAIN.version, ChainId(1), DOMAIN.verifying_contract)
    state = apply_batch(compute_genesis_state(), [deposit(0, 10), TickOp(Timestamp(NOW))], make_ctx()).state
    w = withdrawal(0, 1)
    message = Withdrawal(w.recipient, w.recipient, w.amount, Nonce(w.nonce), w.expiry)
    forged = replace(w, signature=sign(other, message, KEYS[0]))
    with pytest.raises(SettlementError):
        apply_batch(state, [forged], make_ctx())


# --- execution challenge (pushed by the IWindowVerifier) ----------------------------------


def test_verifier_reports_an_execution_fraud(chain: Chain) -> None:
    s = deploy(chain, users=3, window_verifier=False)  # the mock verifier is wired in below
    for i, usdc in enumerate((10_000, 10_000, 5_000)):
        s.deposit(i, usdc)
    verifier = s.chain.deploy("mocks/MockWindowVerifier")
    _credit_all(s)
    header = s.posted[0].header
    challenger = s.chain.accounts[6]
    args = (1, header, 0, b"", b"", [], bytes(168), [b"w"])
    with pytest.raises(ContractRevert, match="settlement: not verifier"):
        s.settlement.transact("report_execution_fraud", 1, header, challenger.address)
    with pytest.raises(ContractRevert, match="settlement: not admin"):
        s.settlement.transact("set_window_verifier", verifier.address, sender=challenger)
    s.settlement.transact("set_window_verifier", verifier.address)
    with pytest.raises(ContractRevert, match="settlement: verifier already set"):
        s.settlement.transact("set_window_verifier", verifier.address)
    verifier.transact("configure", s.settlement.address, False)
    with pytest.raises(ContractRevert, match="verifier: window is correct"):
        verifier.transact("challenge_execution", *args, sender=challenger)
    verifier.transact("configure", s.settlement.address, True)
    bad_header = header[:-1] + bytes([header[-1] ^ 1])
    with pytest.raises(ContractRevert, match="settlement: wrong header"):
        verifier.transact("challenge_execution", 1, bad_header, *args[2:], sender=challenger)
    receipt = verifier.transact("challenge_execution", *args, sender=challenger)
    assert [e.args["reason"] for e in receipt.events if e.name == "FraudProven"] == ["execution"]
    assert s.settlement.call("last_batch") == 0 and s.settlement.call("paused")
    assert s.token.call("balanceOf", challenger.address) == BOND * REWARD_BPS // 10_000


# --- payouts challenge ---------------------------------------------------------------------


def _order(result: BatchResult) -> list[int]:
    """The payouts' indices in ascending order of their claims-tree leaf hashes."""
    from clearhouse.merkle.claims import compute_claim_leaf_hash
    from clearhouse.settlement import WITHDRAWAL_LEAF_ENCODING
    leaves = [compute_claim_leaf_hash(WITHDRAWAL_LEAF_ENCODING, (result.header.number, i, p.recipient, p.amount))
              for i, p in enumerate(result.payouts)]
    return sorted(range(len(leaves)), key=lambda i: leaves[i])


def test_wrong_withdrawals_root_is_proven(system: SettlementSystem) -> None:
    s = system
    _credit_all(s)
    s.vault.transact("request_forced_withdrawal", 70 * USDC, sender=s.users[2])
    owner = Address(s.users[2].address)
    ops = [withdrawal(0, 1), withdrawal(1, 2), ForcedWithdrawalOp(AccountId(2), owner, Amount(70 * USDC),
                                                                  Amount(70 * USDC)), withdrawal(0, 3, 9001)]
    honest = s.build(ops)
    s.post_raw(honest)
    order = _order(honest.result)
    assert len(order) == 4
    with pytest.raises(ContractRevert, match="payouts: bad order"):
        s.settlement.transact("challenge_payouts", 2, honest.header, honest.ops_data, order[::-1])
    with pytest.raises(ContractRevert, match="settlement: payouts are correct"):
        s.settlement.transact("challenge_payouts", 2, honest.header, honest.ops_data, order)
    # batch 3: the coordinator adds a payout to itself that no operation makes
    from clearhouse.settlement import Payout, compute_withdrawals_root
    from clearhouse.sim.settlement_chain import Posted
    built = s.build([withdrawal(1, 5, nonce=9005)])
    payouts = (*built.result.payouts, Payout(Address(s.coordinator.address), Amount(10_000 * USDC)))
    header = replace(built.result.header, withdrawal_count=2,
                     withdrawals_root=compute_withdrawals_root(built.result.header.number, payouts))
    bad = Posted(replace(built.result, header=header, payouts=payouts), encode_header(header), built.ops_data)
    s.post_raw(bad)
    receipt = s.settlement.transact("challenge_payouts", 3, bad.header, bad.ops_data, _order(built.result))
    assert receipt.events_named("FraudProven")[0].args["reason"] == "payouts"
    assert s.settlement.call("last_batch") == 2


def test_payouts_per_batch_are_capped_and_a_batch_over_the_cap_is_proven(inprocess_chain: Chain) -> None:
    """The spec refuses a batch making more than ``MAX_PAYOUTS`` payouts; a coordinator posting one
    anyway is proven wrong by ``challenge_payouts`` (the checker reports an impossible count), and
    the challenge of the largest valid batch stays well under half a block."""
    from clearhouse.errors import InvalidBatch
    from clearhouse.merkle.claims import compute_claim_leaf_hash
    from clearhouse.settlement import WITHDRAWAL_LEAF_ENCODING
    from clearhouse.settlement.header import MAX_PAYOUTS
    from clearhouse.settlement.watcher import FaultKind, process_batch

    s = deploy(inprocess_chain, users=3, k=16)
    s.deposit(0, 10_000)
    s.post([deposit(0, 10_000), TickOp(Timestamp(NOW))])
    many = [withdrawal(0, 0.01, nonce=70_000 + i) for i in range(MAX_PAYOUTS + 1)]
    with pytest.raises(InvalidBatch, match="payouts"):
        s.build(many)
    honest = s.build([*many[:MAX_PAYOUTS], TickOp(Timestamp(NOW))])
    posted, state, snap = list(s.posted), s.state, s.chain.snapshot()
    s.post_raw(honest)
    payouts = honest.result.payouts
    leaves = [compute_claim_leaf_hash(WITHDRAWAL_LEAF_ENCODING, (honest.result.header.number, i, p.recipient,
                                                                 p.amount)) for i, p in enumerate(payouts)]
    order = sorted(range(len(leaves)), key=lambda i: leaves[i])
    with pytest.raises(ContractRevert, match="payouts are correct") as refused:
        s.settlement.transact("challenge_payouts", len(s.posted), honest.header, honest.ops_data, order,
                              gas=29_000_000)
    gas = int(refused.value.context["gas_used"])  # type: ignore[call-overload]
    print(f"challenge_payouts over {MAX_PAYOUTS} payouts: {gas:,} gas")
    assert gas < 15_000_000

    s.chain.revert_to(snap)
    s.posted, s.state = posted, state
    over = forge(honest, [*many[:MAX_PAYOUTS], many[MAX_PAYOUTS]])  # the tick becomes payout 1,025
    verdict = process_batch(state, over.result.header, over.ops_data, make_ctx())
    assert verdict.kind is FaultKind.PAYOUTS and "more than" in verdict.reason  # what the watcher sends
    s.post_raw(over)
    receipt = s.settlement.transact("challenge_payouts", len(s.posted), over.header, over.ops_data, [])
    assert receipt.events_named("FraudProven")
