"""Incremental exact max-loss: the requirement of :mod:`clearhouse.risk.maxloss`, kept per account
and moved by each fill instead of recomputed from the whole portfolio.

For one account and one expiry, ``contract_unit × payoff(S)`` is kept at every kink point of that
expiry (``0``, the strikes of the series seen so far inside ``(0, cap)``, ``cap``) as exact
integers. A fill of ``q`` units of a series adds ``q × intrinsic(kink)`` at each kink, so a check
costs O(kinks of one expiry). The payoff is linear between its own strikes, so its minimum over any
set of points of ``[0, cap]`` that contains ``0``, ``cap`` and every strike it holds is its minimum
over ``[0, cap]``: the requirement is exactly ``compute_requirement``'s (tested on random
portfolios). A series with a strike not yet among its expiry's kinks adds the strike and rebuilds
that expiry's payoffs from the positions (rare: once per strike).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from clearhouse.errors import UnlistedInstrument
from clearhouse.market.instruments import Series, compute_intrinsic_value
from clearhouse.risk.maxloss import ExpiryKey, get_expiry_key
from clearhouse.types import Address, Amount, Price, Quantity, SeriesId

__all__ = [
    "AccountPayoffs",
    "ListedSeries",
    "Positions",
    "RequirementCache",
    "SeriesVector",
    "apply_move",
    "apply_moves",
    "compute_kink_requirement",
    "compute_net_moves",
    "compute_requirement_after",
    "compute_requirement_after_move",
    "get_account_payoffs",
    "get_series_vector",
    "is_covered_after_move",
]

Positions = Mapping[Address, Mapping[SeriesId, Quantity]]
"""Every account's signed positions per series (what the cache is built from)."""


class ListedSeries(Protocol):
    """What the cache needs to know about a series id (``collateral.Listing`` is one)."""

    @property
    def series(self) -> Series:
        """The series."""

    @property
    def cap(self) -> Price:
        """Its expiry's settlement cap."""


@dataclass(frozen=True, slots=True)
class SeriesVector:
    """A series seen from the cache."""

    expiry: int
    """Index of its expiry in :attr:`RequirementCache.expiries` (cheaper to hash than the key)."""
    values: tuple[int, ...]
    """Intrinsic value of one whole long contract at each kink of that expiry."""
    largest: int
    """``max(values)``: the most one whole contract can pay at any kink (bounds a short's loss)."""


@dataclass(slots=True)
class AccountPayoffs:
    """One account's cached payoffs and requirement."""

    payoffs: dict[int, list[int]] = field(default_factory=dict)
    """``contract_unit ×`` its payoff at each kink, per expiry index (absent: zero everywhere)."""
    requirements: dict[int, int] = field(default_factory=dict)
    """Its requirement per expiry index, quote base units (absent: 0)."""
    worst: dict[int, int] = field(default_factory=dict)
    """``min(payoffs)`` per expiry index (absent: 0)."""
    total: int = 0
    """Its requirement: the sum over its expiries."""


@dataclass(slots=True)
class RequirementCache:
    """Per-account payoffs at the kinks and requirements, per expiry, in exact integers."""

    contract_unit: int
    """``Params.contract_unit``: positions are in ``1 / contract_unit`` contract."""
    expiries: dict[ExpiryKey, int] = field(default_factory=dict)
    """Index of every expiry seen."""
    kinks: list[tuple[Price, ...]] = field(default_factory=list)
    """Sorted kink points per expiry index: ``0``, the strikes seen inside ``(0, cap)``, ``cap``."""
    vectors: dict[SeriesId, SeriesVector] = field(default_factory=dict)
    """Every series seen, with its intrinsic values at its expiry's kinks."""
    accounts: dict[Address, AccountPayoffs] = field(default_factory=dict)
    """Every account seen."""


def compute_kink_requirement(payoffs: Iterable[int], contract_unit: int) -> Amount:
    """``ceil(max(0, -min payoff))`` from scaled payoffs at the kinks (quote base units)."""
    worst = min(payoffs)
    return Amount(-(worst // contract_unit) if worst < 0 else 0)


def compute_net_moves(moves: Iterable[tuple[SeriesId, int]]) -> dict[SeriesId, int]:
    """Signed quantities summed per series, without the series that net to zero."""
    net: dict[SeriesId, int] = {}
    for series_id, quantity in moves:
        net[series_id] = net.get(series_id, 0) + quantity
    return {s: q for s, q in net.items() if q}


# --- building the cache ------------------------------------------------------------------------


def _get_listed(listings: Mapping[SeriesId, ListedSeries], series_id: SeriesId) -> ListedSeries:
    listed = listings.get(series_id)
    if listed is None:
        raise UnlistedInstrument(f"series 0x{series_id.hex()} is not listed", field="seriesId")
    return listed


def _compute_values(series: Series, kinks: tuple[Price, ...]) -> tuple[int, ...]:
    return tuple(compute_intrinsic_value(series.kind, series.strike, k) for k in kinks)


def _compute_payoffs(cache: RequirementCache, listings: Mapping[SeriesId, ListedSeries],
                     held: Mapping[SeriesId, Quantity], expiry: int) -> list[int] | None:
    """One account's scaled payoffs at an expiry's kinks from its positions (None: holds none)."""
    payoffs: list[int] | None = None
    for series_id, quantity in held.items():
        series = _get_listed(listings, series_id).series
        if not quantity or cache.expiries.get(get_expiry_key(series)) != expiry:
            continue
        values = _compute_values(series, cache.kinks[expiry])
        base = payoffs or [0] * len(values)
        payoffs = [p + quantity * v for p, v in zip(base, values, strict=False)]
    return payoffs


def _set_payoffs(cache: RequirementCache, account: AccountPayoffs, expiry: int,
                 payoffs: list[int] | None) -> None:
    """Store one account's payoffs at one expiry and update its requirements."""
    old = account.requirements.pop(expiry, 0)
    new = 0
    if payoffs is None or not any(payoffs):
        account.payoffs.pop(expiry, None)
        account.worst.pop(expiry, None)
    else:
        account.payoffs[expiry] = payoffs
        worst = account.worst[expiry] = min(payoffs)
        new = -(worst // cache.contract_unit) if worst < 0 else 0
        if new:
            account.requirements[expiry] = new
    account.total += new - old


def _add_kink(cache: RequirementCache, listings: Mapping[SeriesId, ListedSeries],
              positions: Positions, key: ExpiryKey, cap: Price, strike: Price) -> int:
    """Add ``strike`` to the kinks of ``key`` (listing the expiry if new) and rebuild every cached
    account's payoffs there; returns the expiry index."""
    expiry = cache.expiries.get(key)
    if expiry is None:
        expiry = cache.expiries[key] = len(cache.kinks)
        cache.kinks.append((Price(0), cap))
    kinks = list(cache.kinks[expiry])
    if 0 < strike < cap and strike not in kinks:
        bisect.insort(kinks, strike)
    cache.kinks[expiry] = tuple(kinks)
    for series_id in [s for s, v in cache.vectors.items() if v.expiry == expiry]:
        del cache.vectors[series_id]
    for address, account in cache.accounts.items():
        if expiry in account.payoffs:
            _set_payoffs(cache, account, expiry,
                         _compute_payoffs(cache, listings, positions.get(address, {}), expiry))
    return expiry


def get_series_vector(cache: RequirementCache, listings: Mapping[SeriesId, ListedSeries],
                      positions: Positions, series_id: SeriesId) -> SeriesVector:
    """``series_id``'s expiry and intrinsic values at the kinks (adding its strike if new);
    :class:`UnlistedInstrument` if it is not listed."""
    cached = cache.vectors.get(series_id)
    if cached is not None:
        return cached
    listed = _get_listed(listings, series_id)
    series, cap = listed.series, listed.cap
    key = get_expiry_key(series)
    expiry = cache.expiries.get(key)
    if expiry is None or (0 < series.strike < cap and series.strike not in cache.kinks[expiry]):
        expiry = _add_kink(cache, listings, positions, key, cap, series.strike)
    values = _compute_values(series, cache.kinks[expiry])
    vector = cache.vectors[series_id] = SeriesVector(expiry, values, max(values))
    return vector


def get_account_payoffs(cache: RequirementCache, listings: Mapping[SeriesId, ListedSeries],
                        positions: Positions, address: Address) -> AccountPayoffs:
    """``address``'s cached payoffs, built from its positions on first use."""
    account = cache.accounts.get(address)
    if account is not None:
        return account
    held = positions.get(address, {})
    for series_id in held:  # lists every strike it holds first (which may rebuild others)
        get_series_vector(cache, listings, positions, series_id)
    account = cache.accounts[address] = AccountPayoffs()
    for expiry in {get_series_vector(cache, listings, positions, s).expiry
                   for s, q in held.items() if q}:
        _set_payoffs(cache, account, expiry, _compute_payoffs(cache, listings, held, expiry))
    return account


# --- checks and updates ------------------------------------------------------------------------


def is_covered_after_move(cache: RequirementCache, address: Address, series_id: SeriesId,
                          quantity: int, available: int) -> bool:
    """A sufficient condition, in O(1), for ``available`` to cover ``address``'s requirement after
    its position in one series moves by ``quantity``: ``False`` means "compute it exactly".

    With ``available`` the balance after the fill's cash, it reads: for a purchase, the free
    collateral covers the premium paid; for a sale of ``|q|``, the free collateral plus the premium
    received covers ``|q| ×`` the most one contract can pay (its capped payoff) beyond the payoff's
    current minimum. Both are upper bounds of the loss the fill adds, so ``True`` is exact.

    Proof. Let ``u = contract_unit``, ``e`` the series' expiry, ``P(S)`` ``u ×`` the account's
    payoff at ``e`` for ``S ∈ [0, cap]`` before the move, ``worst = min P`` (attained at a kink:
    the kinks hold every strike it holds, ``0`` and ``cap``) and ``v(S) ∈ [0, L]`` the intrinsic
    value of one whole contract of the series, ``L = largest`` (``v`` is linear between the kinks,
    which hold its strike, so its maximum over ``[0, cap]`` is at a kink). After the move
    ``P'(S) = P(S) + q·v(S)``; no other expiry changes.

    * ``q ≥ 0``: ``P' ≥ P`` everywhere, so the requirement at ``e`` does not rise and the
      requirement after is at most ``total ≤ available``. (This needs neither the series' vector
      nor its strike among the kinks.)
    * ``q < 0``: ``P'(S) ≥ P(S) + q·L ≥ worst + q·L``, so the requirement at ``e`` after,
      ``ceil(max(0, -min P') / u)``, is at most ``bound = ceil(max(0, -(worst + q·L)) / u)`` and
      the requirement after is at most ``total - requirement(e) + bound ≤ available``. ∎
    """
    account = cache.accounts.get(address)
    if account is None:
        return False
    if quantity >= 0:
        return available >= account.total
    vector = cache.vectors.get(series_id)
    if vector is None:
        return False
    worst = account.worst.get(vector.expiry, 0) + quantity * vector.largest
    bound = -(worst // cache.contract_unit) if worst < 0 else 0
    return available >= account.total - account.requirements.get(vector.expiry, 0) + bound


def compute_requirement_after_move(cache: RequirementCache,
                                   listings: Mapping[SeriesId, ListedSeries],
                                   positions: Positions, address: Address, series_id: SeriesId,
                                   quantity: int) -> Amount:
    """``address``'s requirement after its position in one series moves by ``quantity``:
    O(kinks of that series' expiry); changes nothing (but memoised vectors)."""
    account = cache.accounts.get(address)
    vector = cache.vectors.get(series_id)
    if account is None or vector is None or not quantity:  # first sight: the account first
        account = get_account_payoffs(cache, listings, positions, address)
        if not quantity:
            return Amount(account.total)
        vector = get_series_vector(cache, listings, positions, series_id)
    base = account.payoffs.get(vector.expiry)
    if base is None:
        worst = min([quantity * v for v in vector.values])
    else:
        worst = min([p + quantity * v for p, v in zip(base, vector.values, strict=False)])
    new = -(worst // cache.contract_unit) if worst < 0 else 0
    return Amount(account.total - account.requirements.get(vector.expiry, 0) + new)


def _moved(cache: RequirementCache, listings: Mapping[SeriesId, ListedSeries],
           positions: Positions, address: Address, moves: Mapping[SeriesId, int]
           ) -> tuple[AccountPayoffs, dict[int, list[int]]]:
    """The account and its payoffs at every expiry ``moves`` touch, after them (nothing changed)."""
    account = get_account_payoffs(cache, listings, positions, address)
    for series_id in moves:  # first add any new strike (which rebuilds), then read stable vectors
        get_series_vector(cache, listings, positions, series_id)
    after: dict[int, list[int]] = {}
    for series_id, quantity in moves.items():
        vector = get_series_vector(cache, listings, positions, series_id)
        base = (after.get(vector.expiry) or account.payoffs.get(vector.expiry)
                or [0] * len(vector.values))
        after[vector.expiry] = [p + quantity * v
                                for p, v in zip(base, vector.values, strict=False)]
    return account, after


def compute_requirement_after(cache: RequirementCache,
                              listings: Mapping[SeriesId, ListedSeries], positions: Positions,
                              address: Address, moves: Mapping[SeriesId, int]) -> Amount:
    """``address``'s requirement after its positions move by ``moves`` (net, per series):
    O(kinks) per expiry touched; changes nothing (but memoised vectors)."""
    account, after = _moved(cache, listings, positions, address, moves)
    total = account.total
    for expiry, payoffs in after.items():
        total += (compute_kink_requirement(payoffs, cache.contract_unit)
                  - account.requirements.get(expiry, 0))
    return Amount(total)


def apply_moves(cache: RequirementCache, listings: Mapping[SeriesId, ListedSeries],
                positions: Positions, address: Address, moves: Mapping[SeriesId, int]) -> None:
    """Move ``address``'s cached payoffs by ``moves``; call it *before* writing the positions
    (a new strike rebuilds from the positions the cache was built on)."""
    account, after = _moved(cache, listings, positions, address, moves)
    for expiry, payoffs in after.items():
        _set_payoffs(cache, account, expiry, payoffs)


def apply_move(cache: RequirementCache, listings: Mapping[SeriesId, ListedSeries],
               positions: Positions, address: Address, series_id: SeriesId, quantity: int
               ) -> None:
    """:func:`apply_moves` for one series (the fast path of a book fill)."""
    account = cache.accounts.get(address)
    vector = cache.vectors.get(series_id)
    if account is None or vector is None or not quantity:
        if quantity:
            apply_moves(cache, listings, positions, address, {series_id: quantity})
        return
    base = account.payoffs.get(vector.expiry)
    values = vector.values
    if base is None:
        payoffs = [quantity * v for v in values]
    else:
        payoffs = [p + quantity * v for p, v in zip(base, values, strict=False)]
    _set_payoffs(cache, account, vector.expiry, payoffs)
