"""clearhouse.settlement: every operation's effect, every rejection path with its specific error,
purity (a refused operation changes nothing), batches, checkpoints, witnesses, encodings, and a
batch built from what the book and the RFQ desk really produced."""

from __future__ import annotations

from dataclasses import replace

import pytest

from clearhouse.errors import (
    AmountOverflow,
    ClockOutOfRange,
    ConfigError,
    ExcessiveFee,
    FillExceedsSize,
    InexactPremium,
    InsufficientCollateral,
    InsufficientFeePool,
    InvalidBatch,
    InvalidSeries,
    InvalidWitness,
    MalformedOperation,
    MessageCancelled,
    MessageExpired,
    MessageReplayed,
    NonceUsed,
    NothingToSettle,
    NotYetExpired,
    OwnerMismatch,
    PriceOutsideLimit,
    PriceUnavailable,
    SameAccount,
    SeriesExpired,
    SettlementError,
    SignatureInvalid,
    SignerMismatch,
    StaleClock,
    TooManyPositions,
    Undercollateralised,
    UnknownAccount,
    UnlistedExpiry,
    WrongPayout,
)
from clearhouse.market.book import process_order
from clearhouse.market.collateral import get_balance, get_positions
from clearhouse.market.instruments import MAX_QUANTITY, OptionKind, Series, compute_series_id
from clearhouse.market.rfq import process_accept, process_quote, process_register_maker, process_rfq
from clearhouse.market.trades import Signed, Trade
from clearhouse.merkle.sparse import compute_default_hashes, is_included
from clearhouse.messages import (
    Cancel,
    Side,
    TimeInForce,
    Withdrawal,
    compute_cancel_digest,
    compute_order_digest,
    sign,
)
from clearhouse.messages.structs import Order
from clearhouse.settlement import (
    CORE_SIZES,
    LEG_SIZE,
    Account,
    CancelRequest,
    ConsumedEntry,
    Counters,
    DepositOp,
    EntryStatus,
    ExpirySettlement,
    FeeOp,
    FeeSweep,
    ForcedWithdrawalOp,
    OpType,
    Position,
    QueuedDeposit,
    QueuedForcedWithdrawal,
    SettleExpiryOp,
    SettlementState,
    TickOp,
    WithdrawalRequest,
    apply_batch,
    apply_operation,
    build_batch,
    compute_account_hash,
    compute_account_requirement,
    compute_commitment_root,
    compute_core_size,
    compute_entry_key,
    compute_expiry_id,
    compute_genesis_state,
    compute_header_hash,
    compute_operation_effect,
    compute_ops_hash,
    compute_payout_tree,
    compute_rfq_operation,
    compute_series_id_of,
    compute_state,
    compute_trade_operation,
    compute_window_witness,
    compute_windows,
    decode_account,
    decode_operations,
    encode_account,
    encode_auth,
    encode_core,
    encode_header,
    get_account_proof,
    get_commitment,
    get_entry,
    get_op_type,
    get_state_root,
    verify_window,
)
from clearhouse.settlement.state import compute_deposit_hash, compute_forced_hash
from clearhouse.sim.market_world import (
    World,
    accept,
    make_world,
    order,
    quote,
    rfq,
    signed,
)
from clearhouse.sim.settlement_world import (
    ADDRESSES,
    CAP,
    CTX,
    DOMAIN,
    E1,
    E2,
    EXPIRY,
    KEYS,
    NOW,
    STRIKE,
    UNIT,
    USDC,
    cancel,
    deposit,
    funded,
    leg,
    make_ctx,
    order_terms,
    px,
    rfq_fill,
    trade,
    withdrawal,
)
from clearhouse.types import (
    AccountId,
    Amount,
    BatchNumber,
    Digest,
    ExpiryId,
    Nonce,
    Price,
    Quantity,
    Timestamp,
)

RICH = 100_000


@pytest.fixture(scope="module")
def base() -> SettlementState:
    """Accounts 0 (fee account, 1,000 USDC), 1 and 2 (100,000 USDC each), 3 (100 USDC)."""
    return funded(1000, RICH, RICH, 100)


def refuse(state: SettlementState, op: object, error: type[SettlementError],
           ctx: object = CTX) -> SettlementError:
    """``op`` is refused with exactly ``error`` and the state is untouched."""
    root, accounts, entries = get_state_root(state), dict(state.accounts), dict(state.entries)
    with pytest.raises(error) as info:
        apply_operation(state, op, ctx)  # type: ignore[arg-type]
    assert type(info.value) is error
    assert get_state_root(state) == root
    assert dict(state.accounts) == accounts and dict(state.entries) == entries
    return info.value


def positions(state: SettlementState, account: int) -> dict[tuple[bytes, int, int], int]:
    leaf = state.accounts[AccountId(account)]
    return {(p.expiry_id, p.strike, int(p.kind)): p.quantity for p in leaf.positions}


def balance(state: SettlementState, account: int) -> int:
    return state.accounts[AccountId(account)].balance


# --- ids, leaves, encodings --------------------------------------------------------------------


def test_series_and_expiry_ids_match_the_instruments_encoding() -> None:
    series = Series(E1.pair, EXPIRY, STRIKE, OptionKind.PUT)
    assert compute_series_id_of(E1, STRIKE, OptionKind.PUT) == compute_series_id(series)
    assert E1.expiry_id == compute_expiry_id("ETH", "USDC", EXPIRY) != E2.expiry_id


def test_account_leaf_round_trips_and_is_canonical() -> None:
    held = sorted([Position(E1.expiry_id, STRIKE, OptionKind.CALL, Quantity(-5)),
                   Position(E2.expiry_id, STRIKE, OptionKind.PUT, Quantity(7))], key=lambda p: p.expiry_id)
    leaf = Account(ADDRESSES[1], Amount(123), tuple(held))
    data = encode_account(leaf)
    assert len(data) == 37 + 2 * 65 and decode_account(data) == leaf
    with pytest.raises(MalformedOperation):
        decode_account(data[:-1])
    unsorted = replace(leaf, positions=leaf.positions[::-1])
    with pytest.raises(MalformedOperation):
        decode_account(encode_account(unsorted))


def test_genesis_root_commits_empty_trees_and_zero_counters() -> None:
    genesis = compute_genesis_state()
    assert get_state_root(genesis) == compute_commitment_root(get_commitment(genesis))
    assert genesis.accounts_root == compute_default_hashes(32)[32]
    assert genesis.consumed_root == compute_default_hashes(96)[96]
    assert genesis.counters == Counters() and not genesis.accounts


def test_core_sizes_are_the_documented_ones(base: SettlementState) -> None:
    ops = [deposit(1, 5), trade(1, 2, 100, px(50)), cancel(1, 3), withdrawal(1, 1),
           ForcedWithdrawalOp(AccountId(1), ADDRESSES[1], Amount(1), Amount(1)), FeeOp(Amount(1)),
           SettleExpiryOp(AccountId(1), E1.expiry_id), TickOp(Timestamp(NOW)),
           rfq_fill(1, 2, 1, [leg(3000, OptionKind.CALL, 100, True, px(5)),
                              leg(3200, OptionKind.CALL, 100, False, px(2))])]
    for op in ops:
        legs = len(op.quote.legs) if get_op_type(op) is OpType.RFQ_FILL else 0  # type: ignore[union-attr]
        assert len(encode_core(op)) == compute_core_size(get_op_type(op), legs)
    assert CORE_SIZES[OpType.RFQ_FILL] + 2 * LEG_SIZE == len(encode_core(ops[-1]))
    assert len(encode_auth(ops[1])) == 130 and encode_auth(ops[0]) == b""
    core, auth = b"".join(encode_core(o) for o in ops), b"".join(encode_auth(o) for o in ops)
    assert decode_operations(core, auth) == tuple(ops)


@pytest.mark.parametrize("mutate", [
    lambda c, a: (c + b"\x63", a),                   # unknown type byte
    lambda c, a: (c[:-1], a),                        # truncated operation
    lambda c, a: (c, a + b"\x00" * 65),              # a signature left over
    lambda c, a: (c, a[:-1]),                        # a signature cut short
    lambda c, a: (c[:13] + b"\x00" * 20 + c[33:], a),  # zero recipient
])
def test_decoding_refuses_malformed_bytes(mutate: object) -> None:
    op = withdrawal(1, 1)
    core, auth = mutate(encode_core(op), encode_auth(op))  # type: ignore[operator]
    with pytest.raises(MalformedOperation):
        decode_operations(core, auth)


def test_operations_refuse_out_of_range_fields() -> None:
    with pytest.raises(MalformedOperation, match="nonce"):
        order_terms(2**64, px(1), 1)
    with pytest.raises(MalformedOperation, match="quantity"):
        order_terms(1, px(1), 0)
    with pytest.raises(MalformedOperation, match="amount"):
        DepositOp(AccountId(1), ADDRESSES[1], Amount(2**128))
    with pytest.raises(MalformedOperation, match="account"):
        DepositOp(AccountId(2**32), ADDRESSES[1], Amount(1))
    with pytest.raises(MalformedOperation, match="signature"):
        replace(withdrawal(1, 1), signature=b"\x01" * 64)
    with pytest.raises(MalformedOperation, match="recipient"):
        replace(withdrawal(1, 1), recipient="0x" + "00" * 20)
    with pytest.raises(MalformedOperation, match="quantity"):
        replace(trade(1, 2, 100, px(1)), quantity=Quantity(MAX_QUANTITY + 1))
    data = bytearray(encode_core(trade(1, 2, 100, px(1))))
    data[58] = 3  # maker side
    with pytest.raises(MalformedOperation, match="side"):
        decode_operations(bytes(data), encode_auth(trade(1, 2, 100, px(1))))


# --- deposits ------------------------------------------------------------------------------------


def test_first_deposit_registers_the_owner_and_chains_the_queue_hash() -> None:
    genesis = compute_genesis_state()
    state = apply_operation(genesis, deposit(4, 10), CTX)
    state = apply_operation(state, deposit(4, 5), CTX)
    assert state.accounts[AccountId(4)] == Account(ADDRESSES[4], Amount(15 * USDC), ())
    h1 = compute_deposit_hash(Digest(bytes(32)), AccountId(4), ADDRESSES[4], Amount(10 * USDC))
    assert state.counters.deposit_hash == compute_deposit_hash(h1, AccountId(4), ADDRESSES[4],
                                                               Amount(5 * USDC))
    assert state.counters.deposit_count == 2 and not genesis.accounts


def test_deposit_for_a_registered_id_from_another_owner_is_refused(base: SettlementState) -> None:
    refuse(base, deposit(1, 10, owner=3), OwnerMismatch)


def test_deposit_beyond_the_balance_width_is_refused(base: SettlementState) -> None:
    refuse(base, DepositOp(AccountId(1), ADDRESSES[1], Amount(2**128 - 1)), AmountOverflow)


# --- book trades ---------------------------------------------------------------------------------


def test_trade_moves_premium_positions_fills_and_fees(base: SettlementState) -> None:
    op = trade(1, 2, 150, px(40), maker_fee=300_000, taker_fee=600_000)  # premium 60 USDC
    state = apply_operation(base, op, CTX)
    key = (E1.expiry_id, STRIKE, 0)
    assert positions(state, 1) == {key: -150} and positions(state, 2) == {key: 150}
    assert balance(state, 1) == RICH * USDC + 60 * USDC - 300_000
    assert balance(state, 2) == RICH * USDC - 60 * USDC - 600_000
    assert state.counters.fee_pool == 900_000
    entry = get_entry(state, AccountId(1), op.maker_order.nonce)
    assert entry is not None and entry.filled == 150 and entry.status is EntryStatus.ACTIVE
    order_ = Order(ADDRESSES[1], compute_series_id_of(E1, STRIKE, OptionKind.CALL), Side.SELL, px(40),
                   Quantity(150), TimeInForce.GTC, op.maker_order.nonce, op.maker_order.expiry)
    assert entry.digest == compute_order_digest(DOMAIN, order_)
    assert not base.accounts[AccountId(1)].positions  # the old state is a value: untouched


def test_partial_fills_accumulate_up_to_the_signed_size(base: SettlementState) -> None:
    terms = order_terms(77, px(40), 100)
    state = apply_operation(base, trade(1, 2, 60, px(40), maker_terms=terms, nonces=(77, 1)), CTX)
    state = apply_operation(state, trade(1, 2, 40, px(40), maker_terms=terms, nonces=(77, 2)), CTX)
    assert get_entry(state, AccountId(1), 77).filled == 100  # type: ignore[union-attr]
    refuse(state, trade(1, 2, 1, px(40), maker_terms=terms, nonces=(77, 3)), FillExceedsSize)


def test_trade_between_an_account_and_itself_is_refused(base: SettlementState) -> None:
    refuse(base, trade(1, 1, 100, px(40), nonces=(1, 2)), SameAccount)


def test_trade_with_an_unknown_account_is_refused(base: SettlementState) -> None:
    refuse(base, trade(1, 5, 100, px(40)), UnknownAccount)


def test_trade_while_the_clock_is_stale_is_refused(base: SettlementState) -> None:
    refuse(base, trade(1, 2, 100, px(40)), StaleClock, make_ctx(NOW + 2 * 3600))


def test_trade_on_an_unlisted_expiry_is_refused(base: SettlementState) -> None:
    refuse(base, replace(trade(1, 2, 100, px(40)), expiry_id=ExpiryId(b"\x01" * 32)), UnlistedExpiry)


@pytest.mark.parametrize("strike", [0, CAP, CAP + 100, 3000 * USDC + 1])
def test_trade_on_an_invalid_series_is_refused(base: SettlementState, strike: int) -> None:
    refuse(base, trade(1, 2, 100, px(40), strike=Price(strike)), InvalidSeries)


def test_trade_at_or_after_the_series_expiry_is_refused() -> None:
    ctx = make_ctx(EXPIRY)
    state = apply_operation(funded(1000, RICH, RICH, ctx=ctx, clock=EXPIRY - 1), TickOp(Timestamp(EXPIRY)),
                            ctx)
    refuse(state, trade(1, 2, 100, px(40), maker_terms=order_terms(1, px(40), 100, EXPIRY + 60),
                        taker_terms=order_terms(2, px(40), 100, EXPIRY + 60)), SeriesExpired, ctx)


def test_trade_with_an_expired_order_is_refused(base: SettlementState) -> None:
    refuse(base, trade(1, 2, 100, px(40), maker_terms=order_terms(1, px(40), 100, NOW - 1)),
           MessageExpired)
    refuse(base, trade(1, 2, 100, px(40), taker_terms=order_terms(2, px(40), 100, NOW - 1)),
           MessageExpired)


def test_trade_signed_by_someone_else_is_refused(base: SettlementState) -> None:
    error = refuse(base, trade(1, 2, 100, px(40), maker_signer=3), SignerMismatch)
    assert error.field == "makerOrder"
    refuse(base, trade(1, 2, 100, px(40), taker_signer=1), SignerMismatch)


def test_trade_whose_order_was_tampered_with_is_refused(base: SettlementState) -> None:
    op = trade(1, 2, 100, px(40))
    refuse(base, replace(op, maker_order=replace(op.maker_order, quantity=Quantity(1000))), SignerMismatch)
    refuse(base, replace(op, maker_side=Side.BUY), SignerMismatch)  # both orders name the other side


def test_trade_with_a_malformed_signature_is_refused(base: SettlementState) -> None:
    op = trade(1, 2, 100, px(40))
    refuse(base, replace(op, maker_signature=op.maker_signature[:64] + b"\x1d"), SignatureInvalid)
    high_s = (2**256 - 1).to_bytes(32, "big")
    refuse(base, replace(op, taker_signature=op.taker_signature[:32] + high_s + b"\x1b"), SignatureInvalid)


def test_trade_beyond_an_order_limit_is_refused(base: SettlementState) -> None:
    seller_wants_more = trade(1, 2, 100, px(40), maker_terms=order_terms(1, px(41), 100))
    refuse(base, seller_wants_more, PriceOutsideLimit)
    buyer_pays_less = trade(1, 2, 100, px(40), taker_terms=order_terms(2, px(39), 100))
    refuse(base, buyer_pays_less, PriceOutsideLimit)
    better_for_both = trade(1, 2, 100, px(40), maker_terms=order_terms(1, px(39), 100),
                            taker_terms=order_terms(2, px(41), 100))
    apply_operation(base, better_for_both, CTX)


def test_trade_whose_premium_is_not_whole_is_refused(base: SettlementState) -> None:
    refuse(base, trade(1, 2, 1, Price(150)), InexactPremium)


def test_trade_with_a_fee_above_the_schedule_is_refused(base: SettlementState) -> None:
    premium = 40 * USDC  # 100 units at 40 USDC
    apply_operation(base, trade(1, 2, 100, px(40), maker_fee=premium // 100), CTX)
    refuse(base, trade(1, 2, 100, px(40), maker_fee=premium // 100 + 1), ExcessiveFee)


def test_trade_on_a_cancelled_nonce_is_refused(base: SettlementState) -> None:
    state = apply_operation(base, cancel(1, 1000 + 1), CTX)
    refuse(state, trade(1, 2, 100, px(40)), MessageCancelled)


def test_trade_on_a_nonce_held_by_another_order_is_refused(base: SettlementState) -> None:
    state = apply_operation(base, trade(1, 2, 100, px(40), nonces=(5, 6)), CTX)
    other = trade(1, 2, 100, px(41), maker_terms=order_terms(5, px(41), 100), nonces=(5, 7))
    refuse(state, other, NonceUsed)


def test_trade_leaving_the_seller_under_its_requirement_is_refused(base: SettlementState) -> None:
    error = refuse(base, trade(3, 2, 100, px(40)), Undercollateralised)  # short call: 7,000 needed
    assert isinstance(error, InsufficientCollateral)
    assert error.account == 3 and error.required == 7000 * USDC and error.available == 140 * USDC


def test_trade_the_buyer_cannot_pay_for_is_refused(base: SettlementState) -> None:
    refuse(base, trade(1, 3, 100, px(101)), Undercollateralised)


def test_trade_beyond_max_positions_is_refused(base: SettlementState) -> None:
    ctx = make_ctx(max_positions=1)
    state = apply_operation(base, trade(1, 2, 100, px(40)), ctx)
    refuse(state, trade(1, 2, 100, px(40), kind=OptionKind.PUT, nonces=(3, 4)), TooManyPositions, ctx)


def test_position_beyond_its_width_is_refused() -> None:
    state = apply_batch(compute_genesis_state(),
                        [DepositOp(AccountId(1), ADDRESSES[1], Amount(2**127)), deposit(2, 1),
                         TickOp(Timestamp(NOW))], CTX).state
    state = apply_operation(state, trade(1, 2, MAX_QUANTITY, Price(0), nonces=(1, 2)), CTX)
    refuse(state, trade(1, 2, 100, Price(0), nonces=(3, 4)), AmountOverflow)


# --- RFQ fills -----------------------------------------------------------------------------------


def spread(size: int = 1, **kwargs: object) -> object:
    """The maker sells the structure: short 3000 C, long 3200 C (a bear call spread for the maker)."""
    return rfq_fill(1, 2, size, [leg(3000, OptionKind.CALL, 100, True, px(50)),
                                 leg(3200, OptionKind.CALL, 100, False, px(20))], **kwargs)  # type: ignore[arg-type]


def test_rfq_fill_applies_every_leg_and_nets_the_premium(base: SettlementState) -> None:
    state = apply_operation(base, spread(2), CTX)
    assert positions(state, 1) == {(E1.expiry_id, STRIKE, 0): -200,
                                   (E1.expiry_id, Price(3200 * USDC), 0): 200}
    assert balance(state, 1) == RICH * USDC + 2 * 30 * USDC  # sells at 50, buys at 20
    assert balance(state, 2) == RICH * USDC - 2 * 30 * USDC


def test_rfq_fill_is_checked_after_all_legs_so_spreads_need_only_their_worst_case() -> None:
    state = funded(1000, 171, RICH)  # 200 USDC worst case - 30 premium received = 170 needed
    after = apply_operation(state, spread(1), CTX)
    assert compute_account_requirement(after.accounts[AccountId(1)].positions, CTX) == 200 * USDC
    alone = rfq_fill(1, 2, 1, [leg(3000, OptionKind.CALL, 100, True, px(50))])
    refuse(state, alone, Undercollateralised)  # the short leg alone needs 7,000


def test_rfq_fill_with_an_expired_quote_or_accept_is_refused(base: SettlementState) -> None:
    refuse(base, spread(quote_expiry=NOW - 1), MessageExpired)
    refuse(base, spread(accept_expiry=NOW - 1), MessageExpired)


def test_rfq_fill_with_tampered_legs_is_refused(base: SettlementState) -> None:
    op = spread()
    cheaper = replace(op.quote, legs=(replace(op.quote.legs[0], price=px(40)), op.quote.legs[1]))
    refuse(base, replace(op, quote=cheaper), SignerMismatch)
    refuse(base, replace(op, size=Quantity(2), quote=replace(op.quote, size=Quantity(2))), SignerMismatch)


def test_rfq_fill_accepted_twice_is_refused(base: SettlementState) -> None:
    op = spread(1, quote_size=2)
    refuse(apply_operation(base, op, CTX), op, MessageReplayed)


def test_quote_filled_beyond_its_size_is_refused(base: SettlementState) -> None:
    state = apply_operation(base, spread(2, quote_size=3), CTX)
    refuse(state, spread(2, quote_size=3, accept_nonce=6001), FillExceedsSize)


def test_rfq_fill_over_the_fee_schedule_is_refused(base: SettlementState) -> None:
    apply_operation(base, spread(1, taker_fee=700_000), CTX)  # 1 % of 70 USDC gross premium
    refuse(base, spread(1, taker_fee=700_001), ExcessiveFee)


def test_rfq_fill_between_an_account_and_itself_is_refused(base: SettlementState) -> None:
    refuse(base, replace(spread(), taker=AccountId(1)), SameAccount)


# --- cancels -------------------------------------------------------------------------------------


def test_cancel_of_an_unused_nonce_records_the_named_hash(base: SettlementState) -> None:
    state = apply_operation(base, cancel(1, 42, b"\x09" * 32), CTX)
    assert get_entry(state, AccountId(1), 42) == ConsumedEntry(Digest(b"\x09" * 32), Quantity(0),
                                                               EntryStatus.CANCELLED)
    again = apply_operation(state, cancel(1, 42, b"\x09" * 32), CTX)  # harmless twice
    assert get_state_root(again) == get_state_root(state)


def test_cancel_of_a_partly_filled_order_keeps_its_fill(base: SettlementState) -> None:
    terms = order_terms(77, px(40), 100)
    state = apply_operation(base, trade(1, 2, 60, px(40), maker_terms=terms, nonces=(77, 1)), CTX)
    state = apply_operation(state, cancel(1, 77), CTX)
    entry = get_entry(state, AccountId(1), 77)
    assert entry is not None and entry.filled == 60 and entry.status is EntryStatus.CANCELLED
    refuse(state, trade(1, 2, 10, px(40), maker_terms=terms, nonces=(77, 2)), MessageCancelled)


def test_cancel_refusals(base: SettlementState) -> None:
    refuse(base, cancel(1, 1, expiry=NOW - 1), MessageExpired)
    refuse(base, cancel(1, 1, signer=2), SignerMismatch)
    refuse(base, replace(cancel(1, 1), account=AccountId(7)), UnknownAccount)


# --- withdrawals ---------------------------------------------------------------------------------


def test_withdrawal_pays_free_collateral_and_uses_its_nonce(base: SettlementState) -> None:
    op = withdrawal(1, 250.5, recipient=ADDRESSES[5])
    effect = compute_operation_effect(base, op, CTX)
    assert effect.payout is not None and effect.payout.recipient == ADDRESSES[5]
    state = apply_operation(base, op, CTX)
    assert balance(state, 1) == RICH * USDC - 250_500_000
    refuse(state, op, MessageReplayed)


def test_withdrawal_of_more_than_free_collateral_is_refused(base: SettlementState) -> None:
    state = apply_operation(base, trade(1, 2, 100, px(40)), CTX)  # account 1 owes up to 7,000
    free = RICH + 40 - 7000
    apply_operation(state, withdrawal(1, free), CTX)
    refuse(state, withdrawal(1, free + 0.000001), Undercollateralised)


def test_withdrawal_refusals(base: SettlementState) -> None:
    refuse(base, withdrawal(1, 1, expiry=NOW - 1), MessageExpired)
    refuse(apply_operation(base, cancel(1, 9000), CTX), withdrawal(1, 1), MessageCancelled)
    state = apply_operation(base, trade(1, 2, 100, px(40), nonces=(9000, 1)), CTX)
    refuse(state, withdrawal(1, 1), NonceUsed)
    op = withdrawal(1, 1)
    message = Withdrawal(ADDRESSES[1], ADDRESSES[1], Amount(USDC), Nonce(9000), Timestamp(NOW + 3600))
    refuse(base, replace(op, signature=sign(DOMAIN, message, KEYS[2])), SignerMismatch)


# --- forced withdrawals --------------------------------------------------------------------------


def test_forced_withdrawal_pays_min_of_requested_and_free(base: SettlementState) -> None:
    state = apply_operation(base, trade(3, 2, 1, px(40)), CTX)  # 70 USDC locked of 100.40
    free = 100 * USDC + 400_000 - 70 * USDC
    paid = apply_operation(state, ForcedWithdrawalOp(AccountId(3), ADDRESSES[3], Amount(10**12),
                                                     Amount(free)), CTX)
    assert balance(paid, 3) == 70 * USDC
    assert paid.counters.forced_hash == compute_forced_hash(Digest(bytes(32)), AccountId(3), ADDRESSES[3],
                                                            Amount(10**12))
    refuse(state, ForcedWithdrawalOp(AccountId(3), ADDRESSES[3], Amount(10**12), Amount(free - 1)),
           WrongPayout)


def test_forced_withdrawal_for_no_leaf_or_another_owner_pays_nothing_but_advances(
        base: SettlementState) -> None:
    for op in (ForcedWithdrawalOp(AccountId(9), ADDRESSES[5], Amount(5), Amount(0)),
               ForcedWithdrawalOp(AccountId(1), ADDRESSES[5], Amount(5), Amount(0))):
        state = apply_operation(base, op, CTX)
        assert state.counters.forced_count == 1 and state.accounts == base.accounts
        refuse(base, replace(op, paid=Amount(1)), WrongPayout)


# --- fees, ticks, expiry settlement --------------------------------------------------------------


def test_fee_sweep_moves_the_pool_to_the_fee_account(base: SettlementState) -> None:
    state = apply_operation(base, trade(1, 2, 100, px(40), maker_fee=400_000), CTX)
    swept = apply_operation(state, FeeOp(Amount(400_000)), CTX)
    assert swept.counters.fee_pool == 0 and balance(swept, 0) == 1000 * USDC + 400_000
    refuse(state, FeeOp(Amount(400_001)), InsufficientFeePool)


def test_fee_sweep_without_a_fee_account_is_refused() -> None:
    state = apply_operation(funded(1, RICH, RICH), trade(1, 2, 100, px(40), maker_fee=1), CTX)
    refuse(state, FeeOp(Amount(1)), UnknownAccount, replace(CTX, fee_account=AccountId(9)))


def test_tick_moves_the_clock_only_forward_and_not_past_the_batch(base: SettlementState) -> None:
    assert apply_operation(base, TickOp(Timestamp(NOW)), CTX).counters.clock == NOW
    refuse(base, TickOp(Timestamp(NOW - 1)), ClockOutOfRange)
    refuse(base, TickOp(Timestamp(NOW + 1)), ClockOutOfRange)


def settled_world(price_usdc: float | None) -> tuple[SettlementState, object]:
    """Account 1 short 2 calls 3000 and long 1 put 3000 of E1, account 2 the opposite; clock at
    expiry, E1's price ``price_usdc`` (or none)."""
    prices = None if price_usdc is None else {E1.expiry_id: round(price_usdc * USDC)}
    ctx = make_ctx(EXPIRY, prices=prices)
    state = funded(1000, RICH, RICH, ctx=ctx, clock=EXPIRY - 10)
    state = apply_operation(state, trade(1, 2, 200, px(40), maker_terms=order_terms(1, px(40), 200, EXPIRY),
                                         taker_terms=order_terms(2, px(40), 200, EXPIRY)), ctx)
    state = apply_operation(state, trade(1, 2, 100, px(30), maker_side=Side.BUY, kind=OptionKind.PUT,
                                         maker_terms=order_terms(3, px(30), 100, EXPIRY),
                                         taker_terms=order_terms(4, px(30), 100, EXPIRY)), ctx)
    return apply_operation(state, TickOp(Timestamp(EXPIRY)), ctx), ctx


def test_settle_expiry_pays_the_exact_payoff_and_conserves_cash() -> None:
    state, ctx = settled_world(3250.123456)  # floored to the grid: 3250.1234
    before = balance(state, 1) + balance(state, 2)
    s1 = apply_operation(state, SettleExpiryOp(AccountId(1), E1.expiry_id), ctx)  # type: ignore[arg-type]
    s2 = apply_operation(s1, SettleExpiryOp(AccountId(2), E1.expiry_id), ctx)  # type: ignore[arg-type]
    payoff = 2 * (3250_123_400 - 3000 * USDC)  # two calls in the money, the put expires worthless
    assert balance(s2, 1) == balance(state, 1) - payoff and balance(s2, 2) == balance(state, 2) + payoff
    assert balance(s2, 1) + balance(s2, 2) == before
    assert not s2.accounts[AccountId(1)].positions and not s2.accounts[AccountId(2)].positions


def test_settle_expiry_clamps_to_the_cap() -> None:
    state, ctx = settled_world(10**9)
    s1 = apply_operation(state, SettleExpiryOp(AccountId(2), E1.expiry_id), ctx)  # type: ignore[arg-type]
    assert balance(s1, 2) == balance(state, 2) + 2 * (CAP - 3000 * USDC)


def test_settle_expiry_refusals() -> None:
    state, ctx = settled_world(3100)
    refuse(state, SettleExpiryOp(AccountId(1), E2.expiry_id), NotYetExpired, ctx)
    refuse(state, SettleExpiryOp(AccountId(0), E1.expiry_id), NothingToSettle, ctx)
    refuse(state, SettleExpiryOp(AccountId(7), E1.expiry_id), UnknownAccount, ctx)
    refuse(state, SettleExpiryOp(AccountId(1), ExpiryId(b"\x02" * 32)), UnlistedExpiry, ctx)
    unpriced, ctx_unpriced = settled_world(None)
    refuse(unpriced, SettleExpiryOp(AccountId(1), E1.expiry_id), PriceUnavailable, ctx_unpriced)


def test_settle_expiry_of_an_inconsistent_account_is_refused() -> None:
    leaf = Account(ADDRESSES[1], Amount(0), (Position(E1.expiry_id, STRIKE, OptionKind.CALL, Quantity(-100)),))
    ctx = make_ctx(EXPIRY, prices={E1.expiry_id: 3100 * USDC})
    state = compute_state({AccountId(1): leaf}, {}, Counters(clock=Timestamp(EXPIRY)))
    refuse(state, SettleExpiryOp(AccountId(1), E1.expiry_id), Undercollateralised, ctx)


# --- purity, batches, checkpoints, witnesses -----------------------------------------------------


def test_an_older_state_still_proves_its_own_leaves(base: SettlementState) -> None:
    newer = apply_operation(base, trade(1, 2, 100, px(40)), CTX)
    for state in (base, newer, base):
        proof = get_account_proof(state, AccountId(1))
        assert is_included(state.accounts_root, 1, compute_account_hash(state.accounts[AccountId(1)]), proof)


def script() -> list[object]:
    return [trade(1, 2, 100, px(40), maker_fee=10_000), cancel(1, 42), withdrawal(2, 10),
            spread(1), TickOp(Timestamp(NOW)), FeeOp(Amount(10_000)), deposit(3, 1),
            ForcedWithdrawalOp(AccountId(3), ADDRESSES[3], Amount(5 * USDC), Amount(5 * USDC))]


def test_apply_batch_equals_operation_by_operation_with_a_checkpoint_every_k(base: SettlementState) -> None:
    ops = script()
    result = apply_batch(base, ops, CTX, 3, number=BatchNumber(7))  # type: ignore[arg-type]
    states, state = [], base
    for op in ops:
        state = apply_operation(state, op, CTX)  # type: ignore[arg-type]
        states.append(state)
    assert result.header.checkpoint_roots == tuple(get_state_root(states[i]) for i in (2, 5, 7))
    assert get_state_root(result.state) == get_state_root(states[-1]) and result.state == states[-1]
    header = result.header
    assert header.prev_root == get_state_root(base) and header.op_count == 8 and header.number == 7
    assert header.ops_hash == compute_ops_hash(compute_windows(result.operations, 3))
    assert header.withdrawal_count == 2 and [p.amount for p in result.payouts] == [10 * USDC, 5 * USDC]
    tree = compute_payout_tree(BatchNumber(7), result.payouts)
    assert tree is not None and tree.root == header.withdrawals_root
    assert len(encode_header(header)) == 300 + 32 * 3 and compute_header_hash(header)


def test_apply_batch_refuses_the_whole_batch_and_leaves_the_base_intact(base: SettlementState) -> None:
    ops = [*script()[:4], trade(3, 2, 100, px(40), nonces=(11, 12)), *script()[4:]]
    root = get_state_root(base)
    with pytest.raises(Undercollateralised) as info:
        apply_batch(base, ops, CTX, 2)  # type: ignore[arg-type]
    assert info.value.context["index"] == 4
    assert get_state_root(base) == root
    assert get_account_proof(base, AccountId(1)).siblings == get_account_proof(
        funded(1000, RICH, RICH, 100), AccountId(1)).siblings
    assert apply_batch(base, script(), CTX, 2).header.prev_root == root  # type: ignore[arg-type]


def test_apply_batch_needs_an_operation(base: SettlementState) -> None:
    with pytest.raises(InvalidBatch):
        apply_batch(base, [], CTX)


def test_header_must_be_consistent(base: SettlementState) -> None:
    header = apply_batch(base, script(), CTX, 3).header  # type: ignore[arg-type]
    with pytest.raises(InvalidBatch):
        replace(header, checkpoint_roots=header.checkpoint_roots[:-1])
    with pytest.raises(InvalidBatch):
        replace(header, checkpoint_roots=(*header.checkpoint_roots[:-1], Digest(bytes(32))))
    with pytest.raises(InvalidBatch):
        replace(header, timestamp=Timestamp(NOW - 1))


def test_verify_window_recomputes_every_checkpoint_from_witnesses(base: SettlementState) -> None:
    ops = script()
    result = apply_batch(base, ops, CTX, 3)  # type: ignore[arg-type]
    start, roots = base, (get_state_root(base), *result.header.checkpoint_roots)
    for i in range(3):
        window = ops[3 * i:3 * i + 3]
        witness = compute_window_witness(start, window, CTX)  # type: ignore[arg-type]
        assert verify_window(roots[i], window, witness, CTX) == roots[i + 1]  # type: ignore[arg-type]
        start = apply_batch(start, window, CTX, 3).state  # type: ignore[arg-type]
    assert get_state_root(base) == roots[0]  # witness generation puts the trees back


def test_verify_window_proves_an_invalid_operation() -> None:
    state = funded(1000, RICH, RICH, 100)
    bad = [trade(1, 2, 100, px(40)), trade(3, 2, 100, px(40), nonces=(11, 12)), cancel(1, 1)]
    witness = compute_window_witness(state, bad, CTX)  # type: ignore[arg-type]
    assert len(witness.operations) == 2  # up to the invalid one
    with pytest.raises(Undercollateralised):
        verify_window(get_state_root(state), bad, witness, CTX)  # type: ignore[arg-type]


def test_verify_window_refuses_a_witness_that_proves_nothing(base: SettlementState) -> None:
    ops = script()[:3]
    witness = compute_window_witness(base, ops, CTX)  # type: ignore[arg-type]
    root = get_state_root(base)
    first = witness.operations[0]
    richer = ((first.accounts[0][0], replace(first.accounts[0][1], balance=Amount(10**15))),  # type: ignore[type-var]
              first.accounts[1])
    cases = [
        (Digest(b"\x01" * 32), witness),
        (root, replace(witness, operations=(replace(first, accounts=richer), *witness.operations[1:]))),
        (root, replace(witness, operations=(replace(first, accounts=first.accounts[::-1]),
                                            *witness.operations[1:]))),
        (root, replace(witness, operations=(replace(first, entry_proof=None), *witness.operations[1:]))),
        (root, replace(witness, operations=witness.operations[:1])),
        (root, replace(witness, operations=(replace(first, account_proof=witness.operations[1].account_proof),
                                            *witness.operations[1:]))),
    ]
    for checkpoint, bad in cases:
        with pytest.raises(InvalidWitness):
            verify_window(checkpoint, ops, bad, CTX)  # type: ignore[arg-type]
    with pytest.raises(InvalidWitness):
        verify_window(root, script() * 5, witness, CTX)  # type: ignore[arg-type]


# --- batches built from the market ---------------------------------------------------------------


def test_build_batch_settles_what_the_book_and_the_rfq_desk_produced() -> None:
    world: World = make_world(deposit_usdc=50_000, accounts=4)
    addresses = ADDRESSES[:4]
    items: list[object] = [QueuedDeposit(AccountId(i), a, Amount(50_000 * USDC)) for i, a in enumerate(addresses)]
    t = NOW
    ask = order(world, addresses[1], Side.SELL, px(40), 300)
    items += process_order(world.book, ask, signed(ask, addresses[1]), Timestamp(t)).trades
    bid = order(world, addresses[2], Side.BUY, px(41), 200, TimeInForce.IOC)
    items += process_order(world.book, bid, signed(bid, addresses[2]), Timestamp(t + 1)).trades
    bid2 = order(world, addresses[3], Side.BUY, px(40), 100)
    items += process_order(world.book, bid2, signed(bid2, addresses[3]), Timestamp(t + 2)).trades
    for maker in addresses[1:3]:
        process_register_maker(world.desk, maker)
    request = rfq(world, addresses[3], [(0, 1, True), (2, 1, False)], 300, expiry=t + 60)
    rfq_id, _ = process_rfq(world.desk, request, signed(request, addresses[3]), Timestamp(t + 3))
    offer = quote(world, addresses[1], request, rfq_id, [px(50), px(20)], expiry=t + 10)
    quote_id = process_quote(world.desk, offer, signed(offer, addresses[1]), Timestamp(t + 4))
    taken = accept(world, addresses[3], quote_id, 300)
    items += process_accept(world.desk, taken, signed(taken, addresses[3]), Timestamp(t + 5)).trades
    cancel_msg = Cancel(addresses[2], Digest(bytes(32)), Nonce(999), Timestamp(t + 100))
    items.append(CancelRequest(Signed(cancel_msg, signed(cancel_msg, addresses[2]),
                                      compute_cancel_digest(DOMAIN, cancel_msg)), Timestamp(t + 6)))
    w = Withdrawal(addresses[2], addresses[2], Amount(1000 * USDC), Nonce(998), Timestamp(t + 100))
    items.append(WithdrawalRequest(w, sign(DOMAIN, w, KEYS[2]), Timestamp(t + 7)))
    items.append(QueuedForcedWithdrawal(AccountId(3), addresses[3], Amount(500 * USDC)))
    series = {sid: listing.series for sid, listing in world.listings.items()}
    ctx = make_ctx(t + 10)
    built = build_batch(compute_genesis_state(), items, ctx, series, k=4)  # type: ignore[arg-type]
    assert not built.rejected, built.rejected
    state = built.result.state
    for i, address in enumerate(addresses):
        leaf = state.accounts[AccountId(i)]
        expected = get_balance(world.portfolios, address) - (1000 * USDC if i == 2 else 0) \
            - (500 * USDC if i == 3 else 0)
        assert leaf.balance == expected
        held = {compute_series_id_of(ctx.expiries[p.expiry_id], p.strike, p.kind): p.quantity
                for p in leaf.positions}
        assert held == get_positions(world.portfolios, address)
    types = [get_op_type(op) for op in built.result.operations]
    book_trades = sum(1 for item in items if isinstance(item, Trade) and item.legs == 1)
    assert types.count(OpType.RFQ_FILL) == 1 and types.count(OpType.TRADE) == book_trades >= 2
    ops = tuple(op for window in built.windows for op in decode_operations(window.core, window.auth))
    assert ops == built.result.operations
    replayed = apply_batch(compute_genesis_state(), ops, ctx, 4)
    assert compute_header_hash(replayed.header) == built.header_hash


def test_build_batch_reports_what_the_stf_refuses() -> None:
    ctx = make_ctx()
    items = [QueuedDeposit(AccountId(1), ADDRESSES[1], Amount(USDC)), FeeSweep(Amount(5)),
             ExpirySettlement(ADDRESSES[1], E1.expiry_id, Timestamp(NOW))]
    built = build_batch(compute_genesis_state(), items, ctx, {})
    assert [type(r.error) for r in built.rejected] == [InsufficientFeePool, NotYetExpired]
    # the deposit, and the tick to the settlement's time (a refused item's tick stays, as for trades)
    assert [type(op) for op in built.result.operations] == [DepositOp, TickOp]
    with pytest.raises(InvalidBatch):
        build_batch(compute_genesis_state(), [FeeSweep(Amount(5))], ctx, {})



# --- remaining refusal paths ---------------------------------------------------------------------


def test_rfq_leg_beyond_its_width_is_refused(base: SettlementState) -> None:
    big = rfq_fill(1, 2, 2**94, [leg(3000, OptionKind.CALL, 3, True, Price(0))])
    refuse(base, big, AmountOverflow)


def test_fee_pool_beyond_its_width_is_refused(base: SettlementState) -> None:
    full = compute_state(base.accounts, base.entries, replace(base.counters, fee_pool=Amount(2**128 - 10)))
    apply_operation(full, trade(1, 2, 100, px(40), maker_fee=9), CTX)
    refuse(full, trade(1, 2, 100, px(40), maker_fee=10), AmountOverflow)


def test_build_batch_reports_incomplete_rfq_fills_and_unknown_parties() -> None:
    world = make_world(deposit_usdc=50_000, accounts=3)
    for maker in ADDRESSES[1:3]:
        process_register_maker(world.desk, maker)
    request = rfq(world, ADDRESSES[2], [(0, 1, True), (2, 1, False)], 100, expiry=NOW + 60)
    rfq_id, _ = process_rfq(world.desk, request, signed(request, ADDRESSES[2]), Timestamp(NOW))
    offer = quote(world, ADDRESSES[1], request, rfq_id, [px(50), px(20)], expiry=NOW + 10)
    quote_id = process_quote(world.desk, offer, signed(offer, ADDRESSES[1]), Timestamp(NOW))
    taken = accept(world, ADDRESSES[2], quote_id, 100)
    legs = process_accept(world.desk, taken, signed(taken, ADDRESSES[2]), Timestamp(NOW + 1)).trades
    series = {sid: listing.series for sid, listing in world.listings.items()}
    deposits = [QueuedDeposit(AccountId(i), ADDRESSES[i], Amount(50_000 * USDC)) for i in range(3)]
    built = build_batch(compute_genesis_state(), [*deposits, legs[0], legs[0], *legs, legs[1]], make_ctx(NOW + 5),
                        series)
    assert [type(r.error) for r in built.rejected] == [InvalidBatch, InvalidBatch]
    assert [get_op_type(op) for op in built.result.operations].count(OpType.RFQ_FILL) == 1
    strangers = build_batch(compute_genesis_state(), [deposits[0], *legs], make_ctx(NOW + 5), series)
    assert [type(r.error) for r in strangers.rejected] == [UnknownAccount]
    unknown = build_batch(compute_genesis_state(), [*deposits, *legs], make_ctx(NOW + 5), {})
    assert [type(r.error) for r in unknown.rejected] == [InvalidSeries]
    with pytest.raises(InvalidBatch):
        compute_trade_operation(replace(legs[0], legs=1), {}, series)
    with pytest.raises(InvalidBatch):
        compute_rfq_operation(legs[:1], {a: AccountId(i) for i, a in enumerate(ADDRESSES[:3])}, series, UNIT)


def test_context_refuses_inconsistent_parameters() -> None:
    for change in ({"contract_unit": 0}, {"max_positions": 256}, {"max_fee_bps": 10_001},
                   {"timestamp": -1}, {"fee_account": 2**32}, {"expiries": {ExpiryId(b"\x00" * 32): E1}}):
        with pytest.raises(ConfigError):
            replace(CTX, **change)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        replace(E1, cap=Price(0))
    with pytest.raises(InvalidBatch):
        apply_batch(compute_genesis_state(), [TickOp(Timestamp(0))], CTX, 0)


def test_witness_shape_errors(base: SettlementState) -> None:
    ops = [TickOp(Timestamp(NOW)), cancel(1, 5)]
    witness = compute_window_witness(base, ops, CTX)  # type: ignore[arg-type]
    root = get_state_root(base)
    tick, cancel_w = witness.operations
    bad_tick = replace(tick, account_proof=cancel_w.entry_proof)
    bad_keys = replace(cancel_w, entries=((compute_entry_key(AccountId(1), 6), None),))
    for bad in (replace(witness, operations=(bad_tick, cancel_w)),
                replace(witness, operations=(tick, bad_keys)),
                replace(witness, operations=(tick, cancel_w, cancel_w))):
        with pytest.raises(InvalidWitness):
            verify_window(root, ops, bad, CTX)  # type: ignore[arg-type]
    assert verify_window(root, ops, witness, CTX) == get_state_root(apply_batch(base, ops, CTX).state)  # type: ignore[arg-type]
