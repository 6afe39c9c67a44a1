"""A settlement context, funded accounts and builders of signed operations for the STF tests.

Shared by the tests and the benchmarks. Accounts are the
market world's keys; account id ``i`` belongs to ``ADDRESSES[i]`` (id 0 is the fee account).
"""

from __future__ import annotations

from dataclasses import replace

from clearhouse.market.instruments import OptionKind
from clearhouse.messages import (
    Accept,
    Cancel,
    Order,
    Quote,
    QuoteLeg,
    Side,
    TimeInForce,
    Withdrawal,
    compute_quote_digest,
    sign,
)
from clearhouse.params import load_params
from clearhouse.settlement import (
    AcceptTerms,
    CancelOp,
    DepositOp,
    ListedExpiry,
    OrderTerms,
    QuoteTerms,
    RfqFillOp,
    RfqLeg,
    SettlementContext,
    SettlementState,
    TickOp,
    TradeOp,
    WithdrawalOp,
    apply_batch,
    compute_context,
    compute_genesis_state,
    compute_series_id_of,
)
from clearhouse.sim.market_world import (
    ADDRESSES,
    CAP,
    DOMAIN,
    EXPIRY,
    KEYS,
    LATER,
    NOW,
    PAIR,
    UNIT,
    USDC,
)
from clearhouse.types import (
    AccountId,
    Address,
    Amount,
    BasisPoints,
    Digest,
    ExpiryId,
    Nonce,
    Price,
    Quantity,
    Timestamp,
)

__all__ = [
    "ADDRESSES", "CAP", "DOMAIN", "EXPIRY", "KEYS", "LATER", "NOW", "UNIT", "USDC",
]

PARAMS = load_params("devnet")
E1 = ListedExpiry(PAIR, EXPIRY, CAP)
"""ETH expiry at ``EXPIRY``, cap 10,000 USDC."""
E2 = ListedExpiry(PAIR, LATER, CAP)
"""ETH expiry at ``LATER``."""
STRIKE = Price(3000 * USDC)
FEE_BPS = BasisPoints(100)


def make_ctx(timestamp: int = NOW, *, prices: dict[ExpiryId, Price] | None = None,
             max_positions: int | None = None, k: int | None = None) -> SettlementContext:
    """The tests' context: both expiries listed (with settlement prices if given), 1 % max fee."""
    expiries = [replace(e, settlement_price=None if prices is None else prices.get(e.expiry_id))
                for e in (E1, E2)]
    ctx = compute_context(PARAMS, DOMAIN, expiries, Timestamp(timestamp), max_fee_bps=FEE_BPS)
    if max_positions is not None or k is not None:
        ctx = replace(ctx, max_positions=max_positions or ctx.max_positions,
                      checkpoint_interval=k or ctx.checkpoint_interval)
    return ctx


CTX = make_ctx()


def deposit(i: int, usdc: int, owner: int | None = None) -> DepositOp:
    """Account ``i`` deposits ``usdc`` whole USDC (from ``ADDRESSES[owner or i]``)."""
    return DepositOp(AccountId(i), ADDRESSES[i if owner is None else owner], Amount(usdc * USDC))


def funded(*amounts: int, ctx: SettlementContext = CTX, clock: int = NOW) -> SettlementState:
    """A state where account ``i`` has deposited ``amounts[i]`` USDC and the clock reads ``clock``."""
    ops = [deposit(i, a) for i, a in enumerate(amounts)] + [TickOp(Timestamp(clock))]
    return apply_batch(compute_genesis_state(), ops, ctx).state


def px(usdc: float) -> Price:
    """A premium in whole USDC (two decimals) as base units."""
    return Price(round(usdc * 100) * 10_000)


def order_terms(nonce: int, price: Price, quantity: int, expiry: int = NOW + 3600,
                tif: TimeInForce = TimeInForce.GTC) -> OrderTerms:
    return OrderTerms(Nonce(nonce), price, Quantity(quantity), tif, Timestamp(expiry))


def sign_order(signer: int, expiry: ListedExpiry, strike: Price, kind: OptionKind, side: Side,
               terms: OrderTerms, owner: int | None = None) -> bytes:
    """``KEYS[signer]`` signs the order of account ``owner`` (default: the signer's own)."""
    order = Order(ADDRESSES[signer if owner is None else owner], compute_series_id_of(expiry, strike, kind),
                  side, terms.price, terms.quantity, terms.time_in_force, terms.nonce, terms.expiry)
    return sign(DOMAIN, order, KEYS[signer])


def opposite(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def trade(maker: int, taker: int, quantity: int, price: Price, *, maker_side: Side = Side.SELL,
          expiry: ListedExpiry = E1, strike: Price = STRIKE, kind: OptionKind = OptionKind.CALL,
          maker_terms: OrderTerms | None = None, taker_terms: OrderTerms | None = None,
          maker_fee: int = 0, taker_fee: int = 0, nonces: tuple[int, int] | None = None,
          maker_signer: int | None = None, taker_signer: int | None = None) -> TradeOp:
    """A book fill of ``quantity`` at ``price``, both orders signed (by default for exactly it)."""
    n_maker, n_taker = nonces or (1000 + maker, 2000 + taker)
    maker_terms = maker_terms or order_terms(n_maker, price, quantity)
    taker_terms = taker_terms or order_terms(n_taker, price, quantity)
    maker_sig = sign_order(maker if maker_signer is None else maker_signer, expiry, strike, kind,
                           maker_side, maker_terms, owner=maker)
    taker_sig = sign_order(taker if taker_signer is None else taker_signer, expiry, strike, kind,
                           opposite(maker_side), taker_terms, owner=taker)
    return TradeOp(AccountId(maker), AccountId(taker), expiry.expiry_id, strike, kind, maker_side,
                   Quantity(quantity), price, Amount(maker_fee), Amount(taker_fee), maker_terms,
                   taker_terms, maker_sig, taker_sig)


def rfq_fill(maker: int, taker: int, size: int, legs: list[RfqLeg], *, side: Side = Side.SELL,
             quote_size: int | None = None, quote_nonce: int = 5000, accept_nonce: int = 6000,
             quote_expiry: int = NOW + 10, accept_expiry: int = NOW + 10, rfq_id: bytes = b"\x07" * 32,
             maker_fee: int = 0, taker_fee: int = 0) -> RfqFillOp:
    """The maker quotes ``legs`` for ``quote_size`` (default ``size``) units; the taker accepts ``size``."""
    expiries = {E1.expiry_id: E1, E2.expiry_id: E2}
    quote_terms = QuoteTerms(Nonce(quote_nonce), Digest(rfq_id), side, Quantity(quote_size or size),
                             Timestamp(quote_expiry), tuple(legs))
    quote = Quote(ADDRESSES[maker], ADDRESSES[taker], Digest(rfq_id),
                  tuple(QuoteLeg(compute_series_id_of(expiries[leg.expiry_id], leg.strike, leg.kind),
                                 leg.ratio, leg.is_buy, leg.price) for leg in legs),
                  side, Quantity(quote_size or size), Nonce(quote_nonce), Timestamp(quote_expiry))
    quote_id = compute_quote_digest(DOMAIN, quote)
    accept = Accept(ADDRESSES[taker], quote_id, Quantity(size), Nonce(accept_nonce), Timestamp(accept_expiry))
    return RfqFillOp(AccountId(maker), AccountId(taker), Quantity(size), Amount(maker_fee),
                     Amount(taker_fee), quote_terms, AcceptTerms(Nonce(accept_nonce), Timestamp(accept_expiry)),
                     sign(DOMAIN, quote, KEYS[maker]), sign(DOMAIN, accept, KEYS[taker]))


def leg(strike_usdc: int, kind: OptionKind, ratio: int, is_buy: bool, price: Price,
        expiry: ListedExpiry = E1) -> RfqLeg:
    return RfqLeg(expiry.expiry_id, Price(strike_usdc * USDC), kind, ratio, is_buy, price)


def cancel(account: int, nonce: int, order_hash: bytes = bytes(32), expiry: int = NOW + 3600,
           signer: int | None = None) -> CancelOp:
    message = Cancel(ADDRESSES[account], Digest(order_hash), Nonce(nonce), Timestamp(expiry))
    return CancelOp(AccountId(account), Nonce(nonce), Digest(order_hash), Timestamp(expiry),
                    sign(DOMAIN, message, KEYS[account if signer is None else signer]))


def withdrawal(account: int, usdc: float, nonce: int = 9000, recipient: Address | None = None,
               expiry: int = NOW + 3600) -> WithdrawalOp:
    to = recipient or ADDRESSES[account]
    amount = Amount(round(usdc * USDC))
    message = Withdrawal(ADDRESSES[account], to, amount, Nonce(nonce), Timestamp(expiry))
    return WithdrawalOp(AccountId(account), Nonce(nonce), to, amount, Timestamp(expiry),
                        sign(DOMAIN, message, KEYS[account]))
