"""Escape hatch with open positions and the on-chain expiry registry.

The coordinator stops serving; a forced withdrawal freezes ``Settlement``; every account (without
positions, long, short, spreads over two expiries) exits from the frozen root with a Merkle proof:
its free collateral at once, its positions once ``ExpiryRegistry`` settled their expiries from the
oracle committee's TWAP. Every payment equals the Python spec (``clearhouse.settlement.exits``), no
account is paid twice, and the vault is left holding exactly nothing once everyone is out.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearhouse.chain import Chain, Contract, InProcessChain
from clearhouse.errors import ContractRevert, PriceUnavailable
from clearhouse.market.instruments import OptionKind
from clearhouse.settlement import (
    Account,
    ListedExpiry,
    Operation,
    Position,
    SettleExpiryOp,
    SettlementState,
    TickOp,
    apply_batch,
    compute_account_requirement,
    encode_account,
)
from clearhouse.settlement.exits import (
    compute_exit_claim,
    compute_exit_free,
    compute_exit_total,
    compute_exit_value,
    get_unpriced_expiries,
)
from clearhouse.sim.expiry_chain import (
    TWAP_WINDOW,
    ExpirySystem,
    deploy_expiry_system,
    measure_worst_exit_gas,
)
from clearhouse.sim.settlement_world import (
    ADDRESSES,
    CAP,
    E1,
    E2,
    LATER,
    NOW,
    UNIT,
    USDC,
    deposit,
    funded,
    leg,
    make_ctx,
    px,
    rfq_fill,
    trade,
    withdrawal,
)
from clearhouse.types import AccountId, Amount, Price, Quantity, Timestamp

BLOCK_GAS_LIMIT = 30_000_000
E1_PRICE = 12_000 * USDC  # above the cap: settles at the cap
E2_PRICE = 2_512_345_678  # off the 100-unit grid: positions settle at 2_512_345_600


def _positions_ops() -> list[Operation]:
    """1 sells 3 calls to 2 (short / long); 3 sells 4 a call spread on E1 and 2 puts on E2."""
    return [trade(1, 2, 300, px(40)),
            rfq_fill(3, 4, 1, [leg(3000, OptionKind.CALL, 100, True, px(50)),
                               leg(3200, OptionKind.CALL, 100, False, px(20)),
                               leg(2800, OptionKind.PUT, 200, True, px(30), expiry=E2)]),
            withdrawal(2, 100)]


def _setup(x: ExpirySystem) -> None:
    """Five funded accounts, the positions finalised, one more batch pending, a queued deposit."""
    s = x.s
    for i in range(5):
        s.deposit(i, 30_000)
    s.post([deposit(i, 30_000) for i in range(5)] + [TickOp(Timestamp(NOW))])
    s.post(_positions_ops())
    s.finalize_all()
    s.post([withdrawal(1, 5, nonce=9001)])  # pending at the freeze: dropped
    s.deposit(0, 7)  # queued, never credited: refunded


# --- the spec ---------------------------------------------------------------------------------


def _frozen_spec_state() -> SettlementState:
    ops = [deposit(i, 30_000) for i in range(5)] + [TickOp(Timestamp(NOW)), *_positions_ops()]
    return apply_batch(funded(), ops, make_ctx()).state


def test_spec_exit_is_the_spec_expiry_settlement_split_in_two() -> None:
    state = _frozen_spec_state()
    prices = {E1.expiry_id: Price(E1_PRICE), E2.expiry_id: Price(E2_PRICE)}
    ctx = make_ctx(LATER, prices=prices)
    settle = [TickOp(Timestamp(LATER))] + [SettleExpiryOp(AccountId(i), e.expiry_id) for i in range(1, 5)
                                           for e in (E1, E2)
                                           if any(p.expiry_id == e.expiry_id
                                                  for p in state.accounts[AccountId(i)].positions)]
    settled = apply_batch(state, settle, ctx).state
    total = 0
    for i, account in state.accounts.items():
        claim = compute_exit_claim(i, account, ctx)
        assert claim.rest is not None
        assert claim.free + claim.rest == compute_exit_total(i, account, ctx) == settled.accounts[i].balance
        assert claim.free == account.balance - compute_account_requirement(account.positions, ctx)
        assert compute_exit_value(account, ctx) == settled.accounts[i].balance
        total += claim.free + claim.rest
    # payoffs cancel: the accounts recover exactly what they hold together
    assert total == sum(a.balance for a in state.accounts.values())
    # the short call settles at the cap: its whole requirement goes to the long side
    short = state.accounts[AccountId(1)]
    assert compute_exit_claim(AccountId(1), short, ctx).rest == 0
    assert compute_exit_claim(AccountId(2), state.accounts[AccountId(2)], ctx).rest == \
        compute_account_requirement(short.positions, ctx)


def test_spec_rest_waits_for_every_expiry_of_the_account() -> None:
    state = _frozen_spec_state()
    ctx = make_ctx(prices={E1.expiry_id: Price(E1_PRICE)})
    spread = state.accounts[AccountId(3)]
    assert get_unpriced_expiries(spread, ctx) == (E2.expiry_id,)
    assert compute_exit_claim(AccountId(3), spread, ctx).rest is None
    with pytest.raises(PriceUnavailable):
        compute_exit_total(AccountId(3), spread, ctx)
    assert compute_exit_claim(AccountId(2), state.accounts[AccountId(2)], ctx).rest is not None
    # free collateral never needs a price
    assert compute_exit_free(spread, make_ctx()) == compute_exit_free(spread, ctx)


# --- on chain ---------------------------------------------------------------------------------


def test_every_user_recovers_their_last_finalised_claim_with_the_coordinator_gone(chain: Chain) -> None:
    x = deploy_expiry_system(chain, users=5)
    s = x.s
    _setup(x)
    x.freeze()
    assert s.settlement.call("frozen")
    x.check_conservation()
    final = s.finalized
    before = {i: s.balance(u.address) for i, u in enumerate(s.users)}
    claims = {i: compute_exit_claim(i, a, x.ctx()) for i, a in final.accounts.items()}

    for i in range(5):
        x.exit(i)
        assert x.paid_free[i] == claims[AccountId(i)].free
        x.check_conservation()
        with pytest.raises(ContractRevert, match="settlement: already exited"):
            s.settlement.transact("exit", *x.exit_args(i))
    assert x.paid_free[0] == final.accounts[AccountId(0)].balance  # no positions: all of it
    with pytest.raises(ContractRevert, match="settlement: no positions to exit"):
        x.exit_positions(0)
    for i in range(1, 5):  # no price yet: the payoff part waits, with a clear reason
        with pytest.raises(ContractRevert, match="settlement: expiry price unavailable"):
            x.exit_positions(i)

    with pytest.raises(ContractRevert, match="expiries: not yet expired"):
        x.registry.transact("settle_expiry", E1.expiry_id)
    x.post_rounds(E1, [E1_PRICE - 1_000 * USDC, E1_PRICE, E1_PRICE + 1_000 * USDC])
    assert x.settle_expiry(E1) == CAP  # clamped
    x.check_conservation()
    for i in (1, 2):  # E1 only: paid now
        x.exit_positions(i)
        x.check_conservation()
    for i in (3, 4):  # E2 has no price yet
        with pytest.raises(ContractRevert, match="settlement: expiry price unavailable"):
            x.exit_positions(i)
    x.post_rounds(E2, [E2_PRICE, E2_PRICE])
    assert x.settle_expiry(E2) == E2_PRICE
    for i in (3, 4):
        x.exit_positions(i)
        x.check_conservation()
    for i in range(1, 5):
        assert x.paid_rest[i] == compute_exit_claim(AccountId(i), final.accounts[AccountId(i)], x.ctx()).rest
        with pytest.raises(ContractRevert, match="settlement: no positions to exit"):
            x.exit_positions(i)
    assert x.paid_rest[1] == 0 and x.paid_rest[2] > 0  # the short call lost its whole requirement

    # the rest of the escape hatch: the finalised payout, the queued deposit, the fee pool
    s.claim(2, 0)
    index = len(s.deposits) - 1
    s.settlement.transact("refund_deposit", index, *s.deposits[index])
    s.refunded.add(index)
    s.settlement.transact("exit_fee_pool", s.preimage(final))
    s.fee_pool_exited = True
    x.check_conservation()
    assert s.balance(s.vault.address) == 0  # nothing over-paid, nothing stranded
    for i in range(5):
        got = s.balance(s.users[i].address) - before[i]
        payout = 100 * USDC if i == 2 else 0
        refund = 7 * USDC if i == 0 else 0
        assert got == compute_exit_total(AccountId(i), final.accounts[AccountId(i)], x.ctx()) + payout + refund


def test_exit_checks_the_leaf_it_is_paid_for(inprocess_chain: InProcessChain) -> None:
    x = deploy_expiry_system(inprocess_chain, users=5)
    _setup(x)
    x.freeze()
    preimage, _, leaf, bitmap, siblings = x.exit_args(1)
    with pytest.raises(ContractRevert, match="settlement: invalid proof"):
        x.s.settlement.transact("exit", preimage, 2, leaf, bitmap, siblings)
    x.exit(1)
    _, _, other, _, _ = x.exit_args(2)
    with pytest.raises(ContractRevert, match="settlement: no positions to exit"):
        x.s.settlement.transact("exit_positions", 1, other)  # not the leaf account 1 exited with
    with pytest.raises(ContractRevert, match="settlement: no positions to exit"):
        x.s.settlement.transact("exit_positions", 2, other)  # account 2 has not exited


def test_worst_case_exit_gas(inprocess_chain: InProcessChain) -> None:
    exit_gas, positions_gas = measure_worst_exit_gas(inprocess_chain)
    assert 0 < exit_gas <= BLOCK_GAS_LIMIT // 2 and 0 < positions_gas <= BLOCK_GAS_LIMIT // 2
    print(f"exit_gas_worst={exit_gas} exit_positions_gas_worst={positions_gas}")


# --- the registry -----------------------------------------------------------------------------


def test_registry_listing_and_settlement_checks(inprocess_chain: InProcessChain) -> None:
    x = deploy_expiry_system(inprocess_chain, users=1, expiries=(E1,))
    r, stranger = x.registry, inprocess_chain.accounts[5]
    with pytest.raises(ContractRevert, match="expiries: not admin"):
        r.transact("list_expiry", E2.underlying_word, E2.quote_word, E2.timestamp, E2.cap, bytes(32),
                   sender=stranger)
    with pytest.raises(ContractRevert, match="expiries: listed"):
        r.transact("list_expiry", E1.underlying_word, E1.quote_word, E1.timestamp, E1.cap, bytes(32))
    with pytest.raises(ContractRevert, match="expiries: bad cap"):
        r.transact("list_expiry", E2.underlying_word, E2.quote_word, E2.timestamp, 0, bytes(32))
    with pytest.raises(ContractRevert, match="expiries: unlisted expiry"):
        r.transact("settle_expiry", E2.expiry_id)
    entry = r.call("get_expiry", E1.expiry_id)
    assert bytes(entry[0]) == E1.expiry_id and entry[4] == E1.cap and not entry[5]
    # a stale feed: the only round is more than max_staleness before the expiry
    x.post_rounds(E1, [3_000 * USDC], gap=TWAP_WINDOW)
    with pytest.raises(ContractRevert, match="oracle: stale"):
        r.transact("settle_expiry", E1.expiry_id)
    assert not r.call("get_expiry", E1.expiry_id)[5]  # nothing stored


def test_settlement_waits_out_the_dispute_window_and_matches_the_hub(inprocess_chain: InProcessChain) -> None:
    x = deploy_expiry_system(inprocess_chain, users=1)
    prices = [3_000 * USDC, 3_050 * USDC, 2_990 * USDC]
    x.post_rounds(E1, prices, wait=False)
    x.s.sync_time(E1.timestamp + int(x.oracle.params.dispute_window))
    with pytest.raises(ContractRevert, match="oracle: window not final"):
        x.registry.transact("settle_expiry", E1.expiry_id)
    inprocess_chain.time_travel(1)
    twap = int(x.oracle.hub.call("twap", x.oracle.committee.feed_id, E1.timestamp - TWAP_WINDOW, E1.timestamp,
                                 E1.cap))
    assert x.settle_expiry(E1) == twap
    assert min(prices) < twap < max(prices)
    with pytest.raises(ContractRevert, match="expiries: settled"):
        x.registry.transact("settle_expiry", E1.expiry_id)
    listed = x.registry.call("listed")
    assert [bool(e[5]) for e in listed] == [True, False] and listed[0][6] == twap


def test_verifier_reads_the_registry_once_wired(inprocess_chain: InProcessChain) -> None:
    x = deploy_expiry_system(inprocess_chain, users=1)
    assert x.verifier.call("expiry_registry") == x.registry.address
    with pytest.raises(ContractRevert, match="verifier: registry wired"):
        x.verifier.transact("list_expiry", (E1.expiry_id, E1.underlying_word, E1.quote_word, E1.timestamp,
                                            E1.cap, False, 0))
    with pytest.raises(ContractRevert, match="verifier: registry wired"):
        x.verifier.transact("set_settlement_price", E1.expiry_id, 1)
    with pytest.raises(ContractRevert, match="verifier: registry already set"):
        x.verifier.transact("set_expiry_registry", x.registry.address)


# --- the contract's valuation agrees with the spec on random leaves ----------------------------


@pytest.fixture(scope="module")
def registries() -> tuple[ExpirySystem, Contract]:
    """A registry whose E1 settled off the unit grid and E2 above its cap, and a second one over the
    same hub where only E1 is settled."""
    x = deploy_expiry_system(InProcessChain(), users=1)
    x.post_rounds(E1, [E1_PRICE // 4 + 57, E1_PRICE // 4 + 157])
    x.settle_expiry(E1)
    x.post_rounds(E2, [E1_PRICE])
    assert x.settle_expiry(E2) == CAP
    other = x.chain.deploy("ExpiryRegistry", x.oracle.hub.address, TWAP_WINDOW, UNIT)
    for e in (E1, E2):
        other.transact("list_expiry", e.underlying_word, e.quote_word, e.timestamp, e.cap,
                       x.oracle.committee.feed_id)
    other.transact("settle_expiry", E1.expiry_id)
    return x, other


POSITION = st.tuples(st.sampled_from([E1, E2]), st.integers(1, 99), st.sampled_from(list(OptionKind)),
                     st.integers(-10**6, 10**6).filter(bool))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.lists(POSITION, max_size=16, unique_by=lambda p: (p[0].expiry_id, p[1], p[2])),
       extra=st.integers(0, 10**12), unpriced=st.booleans())
def test_exit_amounts_agree_with_the_spec(registries: tuple[ExpirySystem, Contract],
                                          raw: list[tuple[ListedExpiry, int, OptionKind, int]],
                                          extra: int, unpriced: bool) -> None:
    """``ExpiryRegistry.exit_amounts`` = ``compute_exit_claim`` for random leaves of up to 16
    positions (calls, puts, long, short, both expiries), with and without every price."""
    x, other = registries
    positions = tuple(sorted((Position(e.expiry_id, Price(strike * 100 * USDC), kind, Quantity(q))
                              for e, strike, kind, q in raw),
                             key=lambda p: (p.expiry_id, p.strike, int(p.kind))))
    ctx = make_ctx(prices={E1.expiry_id: x.prices[E1.expiry_id]}) if unpriced else x.ctx()
    balance = compute_account_requirement(positions, ctx) + extra
    account = Account(ADDRESSES[1], Amount(balance), positions)
    claim = compute_exit_claim(AccountId(1), account, ctx)
    free, rest, is_priced = (other if unpriced else x.registry).call("exit_amounts", encode_account(account))
    assert free == claim.free
    assert is_priced == (claim.rest is not None)
    assert rest == (claim.rest or 0)
