"""Exits after a freeze (DESIGN §7, escape hatch): what each account recovers from the frozen root.

An account exits once, alone, with no loop over other users, in at most two payments:

* ``exit`` pays its **free collateral** at once: ``max(0, balance − requirement)``, the exact
  max-loss requirement of its positions (:func:`~clearhouse.settlement.stf.compute_account_requirement`);
* ``exit_positions`` pays **the rest** once every expiry of its positions has a settlement price:
  the balance left by the spec's expiry settlement (:func:`~clearhouse.settlement.stf.
  compute_settle_expiry_effect`, one expiry after the other) less what ``exit`` paid.

Payoffs are exact at the grid settlement price, so the payoffs of one series sum to zero over all
accounts and the vault never pays out more than the frozen state holds. ``ExpiryRegistry.
exit_amounts`` computes the same numbers on-chain. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from clearhouse.market.instruments import Series
from clearhouse.risk.maxloss import compute_payoff_scaled
from clearhouse.settlement.context import SettlementContext, get_listed_expiry
from clearhouse.settlement.operations import SettleExpiryOp
from clearhouse.settlement.state import Account, ConsumedEntry, Counters
from clearhouse.settlement.stf import (
    compute_free_collateral,
    compute_settle_expiry_effect,
    compute_settlement_price,
)
from clearhouse.types import AccountId, Amount, ExpiryId, Timestamp

__all__ = [
    "ExitClaim",
    "compute_exit_claim",
    "compute_exit_free",
    "compute_exit_rest",
    "compute_exit_total",
    "compute_exit_value",
    "compute_settled_account",
    "get_position_expiries",
    "get_unpriced_expiries",
]


@dataclass(frozen=True, slots=True)
class ExitClaim:
    """What one account of the frozen state is paid by its exit."""

    account: AccountId
    """The account id (uint32)."""
    free: Amount
    """Paid by ``exit`` at once: ``max(0, balance − requirement)``, quote base units."""
    rest: Amount | None
    """Paid by ``exit_positions`` (quote base units), or ``None`` while an expiry of the
    account's positions has no settlement price (and for an account without positions, 0)."""


@dataclass(frozen=True, slots=True)
class _OneAccount:
    """A one-leaf :class:`~clearhouse.settlement.state.StateView` whose clock reads ``clock``."""

    accounts: Mapping[AccountId, Account]
    counters: Counters
    entries: Mapping[int, ConsumedEntry] = field(default_factory=dict)


def get_position_expiries(account: Account) -> tuple[ExpiryId, ...]:
    """The distinct expiries of ``account``'s positions, in leaf order."""
    return tuple(dict.fromkeys(p.expiry_id for p in account.positions))


def get_unpriced_expiries(account: Account, ctx: SettlementContext) -> tuple[ExpiryId, ...]:
    """The expiries of ``account``'s positions that have no settlement price yet."""
    return tuple(e for e in get_position_expiries(account)
                 if get_listed_expiry(ctx, e).settlement_price is None)


def compute_exit_free(account: Account, ctx: SettlementContext) -> Amount:
    """Free collateral paid by ``exit`` at once: ``max(0, balance − requirement)`` (base units)."""
    return compute_free_collateral(account, ctx)


def compute_settled_account(account_id: AccountId, account: Account, ctx: SettlementContext) -> Account:
    """``account`` after the spec's expiry settlement of each of its expiries, in leaf order (the
    clock read as the expiry's timestamp). Raises
    :class:`~clearhouse.errors.PriceUnavailable` while an expiry has no price."""
    for expiry_id in get_position_expiries(account):
        clock = Timestamp(get_listed_expiry(ctx, expiry_id).timestamp)
        view = _OneAccount({account_id: account}, Counters(clock=clock))
        effect = compute_settle_expiry_effect(view, SettleExpiryOp(account_id, expiry_id), ctx)
        account = effect.accounts[0][1]
    return account


def compute_exit_total(account_id: AccountId, account: Account, ctx: SettlementContext) -> Amount:
    """Everything the account recovers, base units: its balance after settling every expiry."""
    return compute_settled_account(account_id, account, ctx).balance


def compute_exit_rest(account_id: AccountId, account: Account, ctx: SettlementContext) -> Amount:
    """What ``exit_positions`` pays: the total less the free collateral ``exit`` paid (≥ 0 for a
    valid leaf, whose requirement covers each expiry's worst payoff)."""
    return Amount(max(0, compute_exit_total(account_id, account, ctx) - compute_exit_free(account, ctx)))


def compute_exit_claim(account_id: AccountId, account: Account, ctx: SettlementContext) -> ExitClaim:
    """Both payments of one account's exit (``rest`` is ``None`` until its expiries are priced)."""
    free = compute_exit_free(account, ctx)
    if not account.positions:
        return ExitClaim(account_id, free, Amount(0))
    if get_unpriced_expiries(account, ctx):
        return ExitClaim(account_id, free, None)
    return ExitClaim(account_id, free, compute_exit_rest(account_id, account, ctx))


def compute_exit_value(account: Account, ctx: SettlementContext) -> int:
    """What the account is owed now, base units: its balance plus the exact payoff of its positions
    in every expiry that has a price (unpriced expiries count 0). Summed over every account of the
    frozen state it is the vault's debt to them: priced payoffs of a series cancel out."""
    total: int = account.balance
    for expiry_id in get_position_expiries(account):
        expiry = get_listed_expiry(ctx, expiry_id)
        if expiry.settlement_price is None:
            continue
        price = compute_settlement_price(expiry, ctx.contract_unit)
        group = {Series(expiry.pair, expiry.timestamp, p.strike, p.kind): p.quantity
                 for p in account.positions if p.expiry_id == expiry_id}
        total += compute_payoff_scaled(group, price) // ctx.contract_unit
    return total
