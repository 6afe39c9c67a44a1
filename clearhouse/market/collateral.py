"""The risk hook matching calls before every fill, listed series, and :class:`Portfolios`: an
in-memory balance-and-positions store that implements the hook with the exact max-loss
requirement of :mod:`clearhouse.risk.maxloss`, kept incrementally (:mod:`clearhouse.risk.incremental`)
so a check costs O(kinks of one expiry).

A fill is checked for both sides *before* anything changes (``check_fill``) and applied only once
every party has passed (``apply_fill``). Checks are cumulative: a caller that plans several fills
for one account passes their summed deltas, so the account is checked against its state after all
of them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clearhouse.errors import ConfigError, InsufficientCollateral, RiskError, UnlistedInstrument
from clearhouse.market.instruments import (
    Expiry,
    ListingRules,
    Market,
    Series,
    compute_series_id,
    validate_series,
)
from clearhouse.market.open_interest import (
    OpenInterest,
    apply_long_change,
    compute_fill_long_change,
    compute_long_changes,
    compute_open_interest_ledger,
    has_room,
    validate_open_interest,
)
from clearhouse.risk.incremental import (
    RequirementCache,
    apply_move,
    apply_moves,
    compute_net_moves,
    compute_requirement_after,
    compute_requirement_after_move,
    get_account_payoffs,
    is_covered_after_move,
)
from clearhouse.risk.maxloss import ExpiryKey, compute_payoff_scaled, get_expiry_key
from clearhouse.types import Address, Amount, Price, Quantity, SeriesId

__all__ = [
    "Listing",
    "Listings",
    "MoveRiskHook",
    "Portfolios",
    "PositionDelta",
    "RiskHook",
    "apply_fill",
    "compute_caps_of",
    "compute_listing",
    "compute_market_of",
    "compute_moves",
    "compute_positions_after",
    "compute_series_portfolio",
    "get_balance",
    "get_listing",
    "get_positions",
    "get_requirement",
    "process_deposit",
    "process_list_series",
    "process_settle_expiry",
    "process_withdrawal",
    "validate_fill",
]


@dataclass(frozen=True, slots=True)
class PositionDelta:
    """A change of one account's position in one series."""

    series_id: SeriesId
    """The series."""
    quantity: Quantity
    """Signed contract units: ``> 0`` bought, ``< 0`` sold."""


class RiskHook(Protocol):
    """What matching asks of the collateral ledger; the book and the RFQ desk call nothing else."""

    def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash_delta: int) -> None:
        """Raise ``InsufficientCollateral`` unless ``account`` still covers its requirement after
        ``deltas`` and ``cash_delta`` (quote base units, ``< 0`` paid). Changes nothing."""

    def apply_fill(self, account: Address, deltas: Sequence[PositionDelta], cash_delta: int) -> None:
        """Apply a fill that passed ``check_fill`` (with the same cumulative state)."""


class MoveRiskHook(RiskHook, Protocol):
    """A :class:`RiskHook` that also takes the one netted move of one series a book match makes,
    as plain integers: the book's fast path (no ``PositionDelta`` tuples per fill). The book uses
    these methods when the hook has them, else ``check_fill`` / ``apply_fill``."""

    def check_move(self, account: Address, series_id: SeriesId, quantity: int, cash_delta: int
                   ) -> None:
        """Exactly ``check_fill(account, (PositionDelta(series_id, quantity),), cash_delta)``."""

    def apply_move(self, account: Address, series_id: SeriesId, quantity: int, cash_delta: int
                   ) -> None:
        """Exactly ``apply_fill(account, (PositionDelta(series_id, quantity),), cash_delta)``."""


@dataclass(frozen=True, slots=True)
class Listing:
    """A tradable series with what matching needs to know about it."""

    series: Series
    """The series."""
    cap: Price
    """Its expiry's settlement cap (quote base units per whole contract)."""
    rules: ListingRules
    """Its market's listing rules (premium tick, contract unit)."""


Listings = Mapping[SeriesId, Listing]
"""Tradable series by series id."""


def compute_listing(market: Market, series: Series) -> tuple[SeriesId, Listing]:
    """``(series id, listing)`` of a series the market lists; raises the listing errors."""
    expiry = validate_series(market, series)
    return compute_series_id(series), Listing(series, expiry.cap, market.rules)


def compute_market_of(listings: Iterable[Listing]) -> Market:
    """The market that lists ``listings`` (at least one, all of one pair and one set of rules):
    its pair, rules and their expiries with their caps, oldest first."""
    listed = list(listings)
    if not listed:
        raise ConfigError("no listings to take a market from", field="listings")
    first = listed[0]
    if any(listing.series.pair != first.series.pair or listing.rules != first.rules for listing in listed):
        raise ConfigError("listings of more than one pair or set of rules", field="listings")
    expiries = sorted({(listing.series.expiry, listing.cap) for listing in listed})
    return Market(first.series.pair, first.rules,
                  tuple(Expiry(first.series.pair, timestamp, cap) for timestamp, cap in expiries))


def process_list_series(listings: dict[SeriesId, Listing], market: Market, series: Series
                        ) -> SeriesId:
    """Make ``series`` tradable; returns its series id."""
    series_id, listing = compute_listing(market, series)
    listings[series_id] = listing
    return series_id


def get_listing(listings: Listings, series_id: SeriesId) -> Listing:
    """The listing of ``series_id``; :class:`UnlistedInstrument` if it is not tradable."""
    listing = listings.get(series_id)
    if listing is None:
        raise UnlistedInstrument(f"series 0x{series_id.hex()} is not listed", field="seriesId")
    return listing


@dataclass(slots=True)
class Portfolios:
    """Every account's balance (quote base units) and positions (contract units per series).

    ``positions`` is written only by :func:`apply_fill` (the requirement cache follows it); a
    ledger built with positions already in it caches each account on first use. Listings only grow.
    """

    listings: Listings
    """Tradable series; a position in an unlisted series cannot be collateralised."""
    contract_unit: int
    """``Params.contract_unit``: quantities are in ``1 / contract_unit`` contract."""
    balances: dict[Address, int] = field(default_factory=dict)
    """Collateral per account, quote base units (premiums included)."""
    positions: dict[Address, dict[SeriesId, Quantity]] = field(default_factory=dict)
    """Open positions per account: series id -> signed quantity (no zero entries)."""
    max_open_interest: Amount | None = None
    """``Params.max_open_interest`` (quote base units of price sensitivity); ``None``: no cap."""
    cache: RequirementCache = field(init=False, repr=False, compare=False)
    """Each account's payoffs at the kinks and requirement, moved by every fill."""
    open_interest: OpenInterest | None = field(init=False, repr=False, compare=False)
    """The open interest against ``max_open_interest`` (:mod:`clearhouse.market.open_interest`),
    moved by every fill; ``None`` without a cap."""

    def __post_init__(self) -> None:
        self.cache = RequirementCache(self.contract_unit)
        self.open_interest = (None if self.max_open_interest is None else compute_open_interest_ledger(
            self.max_open_interest, self.contract_unit, self.listings, self.positions))

    def has_open_interest_room(self, series_id: SeriesId, quantity: int) -> bool:
        """Whether no fill of at most ``quantity`` units of ``series_id`` can reach the cap."""
        ledger = self.open_interest
        return ledger is None or has_room(ledger, self.listings, series_id, quantity)

    def check_open_interest_fill(self, series_id: SeriesId, added: int, buyer: Address,
                                 buyer_before: int, seller: Address, seller_before: int,
                                 quantity: int) -> int:
        """One fill of a book match on top of the planned ones: ``added`` is the long change of the
        fills planned so far, ``*_before`` the two accounts' planned moves before this fill.
        Returns ``added`` with this fill, or raises ``OpenInterestCapReached``. Changes nothing."""
        added += compute_fill_long_change(self.positions, series_id, buyer, buyer_before, seller,
                                          seller_before, quantity)
        if self.open_interest is not None:
            validate_open_interest(self.open_interest, self.listings, {series_id: added})
        return added

    def check_open_interest(self, moves: Mapping[Address, Sequence[PositionDelta]]) -> None:
        """Raise ``OpenInterestCapReached`` if every account moving by its deltas at once (an
        RFQ fill) would take the open interest above the cap. Changes nothing."""
        if self.open_interest is not None:
            changes = compute_long_changes(self.positions, {a: compute_moves(d) for a, d in moves.items()})
            validate_open_interest(self.open_interest, self.listings, changes)

    def check_fill(self, account: Address, deltas: Sequence[PositionDelta], cash_delta: int) -> None:
        """:class:`RiskHook`: see :func:`validate_fill` (tried first with an exact O(1) bound)."""
        single = ((deltas[0].series_id, deltas[0].quantity) if len(deltas) == 1
                  else _get_single_move(deltas))
        available = self.balances.get(account, 0) + cash_delta
        if single is None or not is_covered_after_move(self.cache, account, *single, available):
            validate_fill(self, account, deltas, cash_delta)

    def apply_fill(self, account: Address, deltas: Sequence[PositionDelta], cash_delta: int) -> None:
        """:class:`RiskHook`: see :func:`apply_fill`."""
        apply_fill(self, account, deltas, cash_delta)

    def check_move(self, account: Address, series_id: SeriesId, quantity: int, cash_delta: int
                   ) -> None:
        """:class:`MoveRiskHook`: the O(1) sufficient bound of :func:`is_covered_after_move`
        (inline: it runs twice per book fill), else the exact :func:`validate_fill`, which alone
        decides a refusal."""
        cache = self.cache
        held = cache.accounts.get(account)
        if held is not None:
            available = self.balances.get(account, 0) + cash_delta
            if quantity >= 0:
                if available >= held.total:
                    return
            else:
                vector = cache.vectors.get(series_id)
                if vector is not None:
                    worst = held.worst.get(vector.expiry, 0) + quantity * vector.largest
                    bound = -(worst // cache.contract_unit) if worst < 0 else 0
                    if available >= held.total - held.requirements.get(vector.expiry, 0) + bound:
                        return
        validate_fill(self, account, (PositionDelta(series_id, Quantity(quantity)),), cash_delta)

    def apply_move(self, account: Address, series_id: SeriesId, quantity: int, cash_delta: int
                   ) -> None:
        """:class:`MoveRiskHook`: :func:`apply_fill` of one move. The common case (account and
        series cached) moves the cached payoffs in place, inline: it runs for every account of
        every book match; anything else goes through :func:`apply_fill`."""
        cache = self.cache
        held = cache.accounts.get(account)
        vector = cache.vectors.get(series_id)
        payoffs = None if held is None or vector is None else held.payoffs.get(vector.expiry)
        if payoffs is None or held is None or vector is None or not quantity:
            apply_fill(self, account, (PositionDelta(series_id, Quantity(quantity)),), cash_delta)
            return
        self.balances[account] = self.balances.get(account, 0) + cash_delta
        expiry = vector.expiry
        for kink, value in enumerate(vector.values):
            payoffs[kink] += quantity * value
        worst = held.worst[expiry] = min(payoffs)
        required = -(worst // cache.contract_unit) if worst < 0 else 0
        held.total += required - held.requirements.pop(expiry, 0)
        if required:
            held.requirements[expiry] = required
        elif not worst and not any(payoffs):  # flat zero: the cache holds no entry for it
            del held.payoffs[expiry], held.worst[expiry]
        positions = self.positions.get(account)  # _move_position, inline
        if positions is None:
            positions = self.positions[account] = {}
        before = positions.get(series_id, 0)
        after = before + quantity
        ledger = self.open_interest
        if ledger is not None:
            change = (after if after > 0 else 0) - (before if before > 0 else 0)
            if change:
                apply_long_change(ledger, self.listings, series_id, change)
        if after:
            positions[series_id] = Quantity(after)
        else:
            del positions[series_id]
            if not positions:
                del self.positions[account]


def get_balance(portfolios: Portfolios, account: Address) -> Amount:
    """``account``'s collateral in quote base units."""
    return Amount(portfolios.balances.get(account, 0))


def get_positions(portfolios: Portfolios, account: Address) -> dict[SeriesId, Quantity]:
    """A copy of ``account``'s open positions."""
    return dict(portfolios.positions.get(account, {}))


def compute_positions_after(positions: Mapping[SeriesId, Quantity], deltas: Iterable[PositionDelta]
                            ) -> dict[SeriesId, Quantity]:
    """``positions`` moved by ``deltas``, without zero entries."""
    after = dict(positions)
    for delta in deltas:
        after[delta.series_id] = Quantity(after.get(delta.series_id, 0) + delta.quantity)
    return {series_id: q for series_id, q in after.items() if q}


def compute_series_portfolio(listings: Listings, positions: Mapping[SeriesId, Quantity]
                             ) -> dict[Series, Quantity]:
    """Positions keyed by :class:`Series`, as :mod:`clearhouse.risk.maxloss` takes them."""
    return {get_listing(listings, series_id).series: q for series_id, q in positions.items()}


def compute_caps_of(listings: Listings, series_ids: Iterable[SeriesId]) -> dict[ExpiryKey, Price]:
    """The caps of the expiries the given series settle on."""
    caps: dict[ExpiryKey, Price] = {}
    for series_id in series_ids:
        listing = get_listing(listings, series_id)
        caps[get_expiry_key(listing.series)] = listing.cap
    return caps


def get_requirement(portfolios: Portfolios, account: Address) -> Amount:
    """``account``'s exact max-loss requirement now (``compute_requirement`` of its positions)."""
    return Amount(get_account_payoffs(portfolios.cache, portfolios.listings, portfolios.positions,
                                      account).total)


def compute_moves(deltas: Sequence[PositionDelta]) -> dict[SeriesId, int]:
    """``deltas`` netted per series, without the series that net to zero."""
    return compute_net_moves((d.series_id, d.quantity) for d in deltas)


def _get_single_move(deltas: Sequence[PositionDelta]) -> tuple[SeriesId, int] | None:
    """``(series, net quantity)`` when every delta is in one series (a book match), else None."""
    if not deltas:
        return None
    series_id, quantity = deltas[0].series_id, 0
    for delta in deltas:
        if delta.series_id != series_id:
            return None
        quantity += delta.quantity
    return series_id, quantity


def validate_fill(portfolios: Portfolios, account: Address, deltas: Sequence[PositionDelta],
                  cash_delta: int) -> Amount:
    """Raise ``InsufficientCollateral`` unless ``account``'s balance after ``cash_delta`` covers the
    requirement of its positions after ``deltas``; return that requirement. Changes nothing.

    ``UnlistedInstrument`` if the deltas move a series that is not listed."""
    single = ((deltas[0].series_id, deltas[0].quantity) if len(deltas) == 1
              else _get_single_move(deltas))
    if single is not None:
        required = compute_requirement_after_move(portfolios.cache, portfolios.listings,
                                                  portfolios.positions, account, *single)
    else:
        required = compute_requirement_after(portfolios.cache, portfolios.listings,
                                             portfolios.positions, account, compute_moves(deltas))
    available = portfolios.balances.get(account, 0) + cash_delta
    if available < required:
        raise InsufficientCollateral(account, required, available)
    return required


def apply_fill(portfolios: Portfolios, account: Address, deltas: Sequence[PositionDelta],
               cash_delta: int) -> None:
    """Move ``account``'s positions by ``deltas`` and its balance by ``cash_delta``.

    The caller has checked the fill with :func:`validate_fill`; this only writes.
    """
    portfolios.balances[account] = portfolios.balances.get(account, 0) + cash_delta
    if len(deltas) == 1:  # a book match: one netted delta
        series_id, quantity = deltas[0].series_id, deltas[0].quantity
        if quantity:
            apply_move(portfolios.cache, portfolios.listings, portfolios.positions, account,
                       series_id, quantity)
            _move_position(portfolios, account, series_id, quantity)
        return
    moves = compute_moves(deltas)
    apply_moves(portfolios.cache, portfolios.listings, portfolios.positions, account, moves)
    for moved_id, moved in moves.items():
        _move_position(portfolios, account, moved_id, moved)


def _move_position(portfolios: Portfolios, account: Address, series_id: SeriesId, quantity: int
                   ) -> None:
    """Write one position change (no zero entries, no empty accounts)."""
    held = portfolios.positions.get(account)
    if held is None:
        held = portfolios.positions[account] = {}
    before = held.get(series_id, 0)
    after = before + quantity
    if portfolios.open_interest is not None:
        apply_long_change(portfolios.open_interest, portfolios.listings, series_id,
                          max(0, after) - max(0, before))
    if after:
        held[series_id] = Quantity(after)
    else:
        del held[series_id]
        if not held:
            del portfolios.positions[account]


def process_deposit(portfolios: Portfolios, account: Address, amount: Amount) -> None:
    """Credit a deposit of ``amount`` quote base units (> 0)."""
    if amount <= 0:
        raise RiskError("a deposit must be positive", field="amount")
    portfolios.balances[account] = portfolios.balances.get(account, 0) + amount


def process_withdrawal(portfolios: Portfolios, account: Address, amount: Amount) -> None:
    """Debit ``amount`` (> 0) if what remains still covers the requirement; else
    ``InsufficientCollateral`` and nothing changes."""
    if amount <= 0:
        raise RiskError("a withdrawal must be positive", field="amount")
    validate_fill(portfolios, account, (), -amount)
    portfolios.balances[account] -= amount


def process_settle_expiry(portfolios: Portfolios, series_ids: Collection[SeriesId], price: Price
                          ) -> tuple[dict[Address, int], tuple[Address, ...]]:
    """Settle every position in ``series_ids`` (the series of one expiry) at ``price``: each
    holder's positions there are closed and their payoff at ``price`` (``Σ q × intrinsic / unit``,
    exact when ``price`` and the strikes are on the ``contract_unit`` grid) moves to its balance.
    Returns ``(payoff per account settled, accounts left unsettled)``, in address order. An account
    whose balance the payoff would take below zero is left as it is (the STF refuses the same:
    ``Undercollateralised``; the max-loss requirement makes it unreachable)."""
    paid: dict[Address, int] = {}
    unsettled: list[Address] = []
    for account in sorted(a for a, held in portfolios.positions.items()
                          if any(s in held for s in series_ids)):
        held = portfolios.positions[account]
        closing = {s: q for s, q in held.items() if s in series_ids}
        payoff = compute_payoff_scaled({get_listing(portfolios.listings, s).series: q
                                        for s, q in closing.items()}, price) // portfolios.contract_unit
        if portfolios.balances.get(account, 0) + payoff < 0:
            unsettled.append(account)
            continue
        apply_fill(portfolios, account, [PositionDelta(s, Quantity(-q)) for s, q in closing.items()], payoff)
        paid[account] = payoff
    return paid, tuple(unsettled)
