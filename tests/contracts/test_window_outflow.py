"""The window outflow cap on the real contracts: ``Vault.pay_capped`` against its Python mirror
(``clearhouse.settlement.outflow``) and the bound it promises (no ``W`` seconds pay out more than
the cap); ``Settlement.claim`` paying what the budget lets out, the rest waiting, never lost; and
exits after a freeze not capped."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearhouse.chain import Chain
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import ContractRevert, WindowOutflowCapReached
from clearhouse.settlement import TickOp, encode_account, get_account_proof
from clearhouse.settlement.outflow import (
    OutflowState,
    compute_claim_part,
    compute_window_budget,
    process_capped_payment,
)
from clearhouse.sim.settlement_chain import T_FORCE, USDC, WINDOW, SettlementSystem, deploy
from clearhouse.sim.settlement_world import NOW, deposit, withdrawal
from clearhouse.types import AccountId, Amount, Seconds, Timestamp

CAP = 500 * USDC


def _credit(s: SettlementSystem) -> None:
    for i, usdc in enumerate((10_000, 10_000, 5_000)):
        s.deposit(i, usdc)
    s.post([deposit(0, 10_000), deposit(1, 10_000), deposit(2, 5_000), TickOp(Timestamp(NOW))])


@pytest.fixture
def system(chain: Chain) -> SettlementSystem:
    s = deploy(chain, users=3, window_outflow=CAP)
    _credit(s)
    return s


def _budget(s: SettlementSystem) -> int:
    return int(s.vault.call("window_budget"))


def test_claims_pay_what_the_window_lets_out_and_the_rest_waits(system: SettlementSystem) -> None:
    s = system
    assert (s.vault.call("outflow_cap"), s.vault.call("outflow_window")) == (CAP, WINDOW)
    s.post([withdrawal(0, 300), withdrawal(1, 400), withdrawal(2, 50)])
    s.finalize_all()
    s.claim(2, 0)  # 300 of 500
    assert _budget(s) == 200 * USDC
    before = s.balance(s.users[1].address)
    s.claim(2, 1)  # 400 asked, 200 paid
    assert s.balance(s.users[1].address) - before == 200 * USDC
    assert s.settlement.call("claim_paid", 2 << 32 | 1) == 200 * USDC and not s.settlement.call("claimed", 2 << 32 | 1)
    s.check_conservation()
    for _ in range(2):  # the budget is spent for this epoch and the next
        with pytest.raises(ContractRevert, match="settlement: window outflow cap"):
            s.claim(2, 2)
        with pytest.raises(ContractRevert, match="settlement: window outflow cap"):
            s.claim(2, 1)
        s.chain.time_travel(WINDOW)
    assert _budget(s) == CAP
    s.claim(2, 1)  # the rest: 200
    assert s.balance(s.users[1].address) - before == 400 * USDC
    assert s.settlement.call("claimed", 2 << 32 | 1) and s.settlement.call("claim_paid", 2 << 32 | 1) == 0
    s.claim(2, 2)
    with pytest.raises(ContractRevert, match="settlement: already claimed"):
        s.claim(2, 1)
    assert _budget(s) == CAP - 250 * USDC
    s.check_conservation()


def test_a_payout_above_the_cap_is_paid_in_parts(system: SettlementSystem) -> None:
    s = system
    s.post([withdrawal(0, 1_234)])
    s.finalize_all()
    before = s.balance(s.users[0].address)
    paid: list[int] = []
    while (2, 0) not in s.claimed:
        s.claim(2, 0)
        paid.append(s.balance(s.users[0].address) - before - sum(paid))
        s.chain.time_travel(2 * WINDOW)
        s.check_conservation()
    assert paid == [CAP, CAP, 234 * USDC]


def test_exits_after_a_freeze_are_not_capped(system: SettlementSystem) -> None:
    s = system
    s.post([withdrawal(2, 600)])
    s.finalize_all()
    s.claim(2, 0)  # the claim takes the whole budget: 500 of 600
    assert _budget(s) == 0
    s.vault.transact("request_forced_withdrawal", 50 * USDC, sender=s.users[2])
    s.chain.time_travel(T_FORCE)
    s.settlement.transact("freeze", sender=s.chain.accounts[7])
    final, preimage = s.finalized, s.preimage(s.finalized)
    leaf = final.accounts[AccountId(2)]
    proof = get_account_proof(final, AccountId(2))
    before = s.balance(s.users[2].address)
    # the escape hatch pays the whole free collateral at once: 4,400, nearly nine times the cap
    s.settlement.transact("exit", preimage, 2, encode_account(leaf), proof.bitmap, list(proof.siblings))
    assert s.balance(s.users[2].address) - before == leaf.balance == 4_400 * USDC
    s.exited.add(2)
    s.check_conservation()


def test_only_the_settlement_pays(system: SettlementSystem) -> None:
    with pytest.raises(ContractRevert, match="vault: not settlement"):
        system.vault.transact("pay_capped", system.users[0].address, 1)


# --- the vault's counter against the Python mirror ------------------------------------------------

steps = st.lists(st.tuples(st.integers(0, 250), st.integers(0, 60)), min_size=1, max_size=25)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_pay_capped_matches_the_spec_and_never_exceeds_the_cap_in_any_window(moves: list[tuple[int, int]]) -> None:
    chain = InProcessChain()
    admin, user = chain.accounts[0], chain.accounts[1]
    token = chain.deploy("mocks/TestToken", "T", "T")
    cap, window = Amount(100), Seconds(100)
    vault = chain.deploy("Vault", token.address, cap, window)
    vault.transact("set_settlement", admin.address)  # the admin plays the settlement
    token.transact("mint", user.address, 10**9)
    token.transact("approve", vault.address, 10**9, sender=user)
    vault.transact("deposit", 10**9, sender=user)
    state, paid = OutflowState(), list[tuple[int, int]]()
    for dt, amount in moves:
        chain.time_travel(dt)
        now = chain.now()
        assert int(vault.call("window_budget")) == compute_window_budget(state, cap, window, now)
        try:
            state = process_capped_payment(state, cap, window, now, Amount(amount))
        except WindowOutflowCapReached:
            with pytest.raises(ContractRevert, match="vault: window outflow cap"):
                vault.transact("pay_capped", user.address, amount)
            continue
        receipt = vault.transact("pay_capped", user.address, amount)
        assert receipt.events_named("Paid")[0].args["amount"] == amount
        paid.append((int(chain.now()), amount))
        assert (vault.call("outflow_epoch"), vault.call("outflow_current"), vault.call("outflow_previous")) == (
            state.epoch, state.current, state.previous)
    for start, _ in paid:  # the promise: no W seconds pay out more than the cap
        assert sum(a for t, a in paid if start <= t < start + window) <= cap
        assert sum(a for t, a in paid if start - window < t <= start) <= cap


def test_claim_part() -> None:
    assert compute_claim_part(Amount(400), Amount(0), Amount(200)) == 200
    assert compute_claim_part(Amount(400), Amount(200), Amount(500)) == 200
    assert compute_claim_part(Amount(0), Amount(0), Amount(0)) == 0
