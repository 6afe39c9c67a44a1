"""The coordinator's side of the ``ExpiryRegistry``: what it lists, the settlement context read
from the chain, listing the registry's new expiries, and settling passed ones.

:class:`RegistryExpiries` reads the registry: every listed expiry with its cap, and its settlement
price once ``settle_expiry`` has recorded it. The batcher's and the watcher's settlement contexts
take their expiries from it (:func:`compute_registry_context`), as the on-chain verifier does, and
:func:`load_deployment_context` reads the rest of the context (domain separator, contract unit,
position and fee limits, fee account, clock lag) from the deployment's ``WindowVerifier``: a node
judges batches with the very values the fraud proofs use.

:class:`ExpiryKeeper` runs on the coordinator's link tick. It lists each expiry of the market's
pair that the registry lists and the market does not (a logged ``list_expiry``), with the series of
the operator's strike list (``list_series``, calls and puts) on every unexpired expiry. For each
expiry of the market that has passed and is not settled yet, it records the registry's price if
there is none (``settle_expiry`` is permissionless: the coordinator's account pays for it, once the
committee's TWAP over the window ending at the expiry is final; until then the hub's ``twap`` view
says why not, and the keeper asks again after :data:`RETRY_SECONDS`), then has the coordinator
settle every position at that price (one logged action, one ``ExpirySettlement`` per holder for
the batcher).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from itertools import product
from typing import Any, Final

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract
from clearhouse.errors import ClearhouseError, ConfigError, ContractRevert
from clearhouse.market.instruments import (
    ListingRules,
    Market,
    OptionKind,
    Pair,
    Series,
    compute_series_id,
    format_series_name,
)
from clearhouse.messages import Domain
from clearhouse.node.coordinator import Coordinator
from clearhouse.params import Params
from clearhouse.settlement.context import (
    ListedExpiry,
    SettlementContext,
    compute_context,
    compute_expiry_id,
    compute_symbol_word,
)
from clearhouse.types import AccountId, BasisPoints, ExpiryId, Price, Seconds, Timestamp

__all__ = ["RETRY_SECONDS", "ExpiryKeeper", "RegistryExpiries", "compute_registry_context",
           "list_registry_expiry", "load_deployment_context", "load_market", "load_quote_decimals",
           "parse_quote_amount"]

log = logging.getLogger("clearhouse.node.expiries")

RETRY_SECONDS: Final = 60
"""Seconds between two attempts to record an expiry's price while the oracle cannot give it yet."""


class RegistryExpiries:
    """The expiries an ``ExpiryRegistry`` lists, each with its settlement price once recorded (final
    from then on). Read by :meth:`refresh` (each settlement context, each keeper tick), served from
    memory by :meth:`read`."""

    def __init__(self, registry: Contract, quote_decimals: int) -> None:
        self.registry = registry
        self.quote_decimals = quote_decimals
        """Decimals of the deployment's quote token (the vault's collateral: every expiry's quote)."""
        self.expiries: dict[ExpiryId, ListedExpiry] | None = None
        self._skipped: set[bytes] = set()

    def refresh(self) -> dict[ExpiryId, ListedExpiry]:
        """Read the registry's list again (one call)."""
        expiries = {}
        for entry in self.registry.call("listed"):
            expiry = self._parse(entry)
            if expiry is not None:
                expiries[expiry.expiry_id] = expiry
        self.expiries = expiries
        return dict(expiries)

    def read(self) -> dict[ExpiryId, ListedExpiry]:
        """The list as last read (read now if it never was)."""
        return self.refresh() if self.expiries is None else dict(self.expiries)

    def get_prices(self) -> dict[ExpiryId, Price]:
        """The recorded settlement prices (clamped to the cap, not yet on the unit grid)."""
        return {i: e.settlement_price for i, e in self.read().items() if e.settlement_price is not None}

    def record(self, expiry_id: ExpiryId, price: Price) -> None:
        """Remember a price this node just recorded (saves a read)."""
        if self.expiries is not None and expiry_id in self.expiries:
            self.expiries[expiry_id] = replace(self.expiries[expiry_id], settlement_price=price)

    def _parse(self, entry: Any) -> ListedExpiry | None:
        """``stf.ListedExpiry``: expiry id, underlying, quote, timestamp, cap, has price, price; an
        entry whose symbols are no market's (or whose id does not match them) is skipped, once logged."""
        expiry_id = bytes(entry[0])
        try:
            underlying, quote = (bytes(word).rstrip(b"\0").decode("ascii") for word in (entry[1], entry[2]))
            expiry = ListedExpiry(Pair(underlying, quote, self.quote_decimals), Timestamp(int(entry[3])),
                                  Price(int(entry[4])), Price(int(entry[6])) if entry[5] else None)
        except (ClearhouseError, UnicodeDecodeError) as exc:
            reason = str(exc)
        else:
            if expiry.expiry_id == expiry_id:
                return expiry
            reason = "its id is not its pair's and time's"
        if expiry_id not in self._skipped:
            self._skipped.add(expiry_id)
            log.warning("registry expiry 0x%s skipped: %s", expiry_id.hex(), reason)
        return None


def compute_registry_context(context: Callable[[Timestamp], SettlementContext], expiries: RegistryExpiries
                             ) -> Callable[[Timestamp], SettlementContext]:
    """``context`` with the registry's expiries, prices included, read afresh each time (what the
    on-chain verifier reads when it judges: a batch is never judged against an old list)."""
    return lambda timestamp: replace(context(timestamp), expiries=expiries.refresh())


def load_deployment_context(chain: Chain, verifier: Contract, params: Params, domain: Domain
                            ) -> Callable[[Timestamp], SettlementContext]:
    """The settlement context of a deployment at a batch timestamp, from its ``WindowVerifier``
    (contract unit, position and fee limits, fee account, clock lag; the governed ones are replaced
    by each batch's parameter version) and ``params`` (the checkpoint interval until then), with no
    expiries (:func:`compute_registry_context` adds the registry's). ``domain`` must be the one the
    verifier checks signatures under (:class:`ConfigError` if its separator differs)."""
    if bytes(verifier.call("DOMAIN_SEPARATOR")) != domain.separator:
        raise ConfigError("the EIP-712 domain is not the one the deployment's verifier checks", field="domain")
    unit, positions, lag, fee_account, max_fee = (int(verifier.call(name)) for name in (
        "CONTRACT_UNIT", "MAX_POSITIONS", "MAX_CLOCK_LAG", "FEE_ACCOUNT", "MAX_FEE_BPS"))
    limits = replace(params, contract_unit=unit, max_positions=positions)
    return lambda timestamp: compute_context(limits, domain, (), timestamp, fee_account=AccountId(fee_account),
                                             max_fee_bps=BasisPoints(max_fee), max_clock_lag=Seconds(lag))


def load_quote_decimals(chain: Chain, deployment: Mapping[str, Any]) -> int:
    """Decimals of the deployment's quote token (the vault's collateral; ``decimals()`` of any ERC-20)."""
    return int(chain.at("mocks/TestToken", deployment["settlement"]["token"]).call("decimals"))


def parse_quote_amount(text: object, decimals: int, field: str) -> Price:
    """``"0.01"`` (whole quote units, a decimal string) as a positive price in quote base units;
    :class:`ConfigError` (``field``) unless it is exactly that many base units."""
    whole, dot, fraction = text.partition(".") if isinstance(text, str) and len(text) <= 40 else ("", "", "")
    if not (whole.isascii() and whole.isdigit() and (not dot or (fraction.isascii() and fraction.isdigit()))):
        raise ConfigError(f"{text!r} is not an amount in whole quote units, such as \"0.01\"", field=field)
    if len(fraction.rstrip("0")) > decimals:
        raise ConfigError(f"{text} has more decimals than the quote token's {decimals}", field=field)
    amount = int(whole + fraction.ljust(decimals, "0")[:decimals])
    if amount == 0:
        raise ConfigError(f"{field} must be positive", field=field)
    return Price(amount)


def _get_pair_symbols(deployment: Mapping[str, Any]) -> tuple[str, str]:
    """The underlying and quote symbols of the deployment's pair (its oracle feed's, ``"ETH/USDC"``)."""
    underlying, _, quote = str(deployment["oracle"]["pair"]).partition("/")
    return underlying, quote


def load_market(chain: Chain, deployment: Mapping[str, Any]) -> Market | None:
    """The market the deployment's ``market`` entry describes, with nothing listed yet (the
    :class:`ExpiryKeeper` lists the registry's expiries on it), or ``None`` when the deployment
    has no such entry. Its pair is the oracle feed's, priced in the vault's token (its
    ``decimals()``); its strike step and premium tick are the entry's, in whole quote units
    (``{"strike_step": "100", "premium_tick": "0.01"}``); its contract unit is the window
    verifier's, the one every fraud proof uses. :class:`ConfigError` (field ``market`` or
    ``market.<key>``) when the entry is malformed, the rules refuse it, or the deployment has no
    verifier or expiry registry to trade and settle it with."""
    entry = deployment.get("market")
    if entry is None:
        return None
    settlement = deployment.get("settlement", {})
    if not isinstance(entry, Mapping) or not settlement.get("verifier") or not settlement.get("expiry_registry"):
        raise ConfigError("a market entry is a mapping, in a deployment with a window verifier and an expiry "
                          "registry", field="market")
    unknown = set(entry) - {"strike_step", "premium_tick"}
    if unknown:
        raise ConfigError(f"unknown market keys {sorted(unknown)}", field="market")
    underlying, quote = _get_pair_symbols(deployment)
    decimals = load_quote_decimals(chain, deployment)
    step, tick = (parse_quote_amount(entry.get(key), decimals, f"market.{key}")
                  for key in ("strike_step", "premium_tick"))
    unit = int(chain.at("WindowVerifier", settlement["verifier"]).call("CONTRACT_UNIT"))
    try:
        return Market(Pair(underlying, quote, decimals), ListingRules(step, tick, unit))
    except ClearhouseError as exc:
        raise ConfigError(str(exc), field=f"market.{exc.field}" if exc.field else "market") from None


def list_registry_expiry(chain: Chain, deployment: Mapping[str, Any], expiry: Timestamp, cap: Price,
                         sender: LocalAccount) -> ExpiryId:
    """List ``expiry`` of the deployment's pair on its ``ExpiryRegistry``, settled on the
    committee's feed with ``cap`` (quote base units per whole contract); ``sender`` must be the
    registry's admin. Returns the expiry id. The coordinator lists it (and the operator's strikes
    on it) at its next tick."""
    underlying, quote = _get_pair_symbols(deployment)
    registry = chain.at("ExpiryRegistry", deployment["settlement"]["expiry_registry"])
    registry.transact("list_expiry", compute_symbol_word(underlying), compute_symbol_word(quote), expiry, cap,
                      bytes.fromhex(str(deployment["oracle"]["feed_id"])[2:]), sender=sender)
    return compute_expiry_id(underlying, quote, expiry)


class ExpiryKeeper:
    """Lists the registry's new expiries of the market's pair (and the operator's strikes on them),
    records the settlement price of each passed expiry of the market and settles its positions."""

    def __init__(self, coordinator: Coordinator, chain: Chain, expiries: RegistryExpiries, sender: LocalAccount,
                 strikes: Sequence[Price] = ()) -> None:
        self.coordinator, self.expiries, self.sender = coordinator, expiries, sender
        self.strikes = tuple(strikes)
        """Strikes (quote base units) listed as a call and a put on every unexpired expiry of the
        market where they are on the grid and below the cap."""
        registry = expiries.registry
        self.hub = chain.at("OracleHub", str(registry.call("oracle_hub")))
        """The oracle hub whose TWAP the registry records (its view says when it can)."""
        self.twap_window = int(registry.call("twap_window"))
        self._retry: dict[ExpiryId, int] = {}
        self._reasons: dict[ExpiryId, str] = {}
        self._refusals: dict[str, str] = {}

    def on_tick(self, now: int) -> list[ExpiryId]:
        """Read the registry; list what it lists and the market does not; settle every expiry of
        the market that has passed, is priced (or can be priced now) and is not settled yet,
        oldest first; returns the ones settled."""
        self.expiries.refresh()
        self.list_new(now)
        return self.settle_due(now)

    def list_new(self, now: int) -> list[Series]:
        """List the registry's unexpired expiries of the market's pair that the market lacks, then
        the operator's strikes missing on any unexpired expiry; returns the series listed. A
        listing the market's rules refuse (a cap or strike off its grid) is logged once and skipped."""
        if self.coordinator.market is None:
            return []
        pair, known = self.coordinator.market.pair, {e.timestamp for e in self.coordinator.market.expiries}
        for e in sorted(self.expiries.read().values(), key=lambda e: e.timestamp):
            if (e.pair.underlying, e.pair.quote) == (pair.underlying, pair.quote) and e.timestamp > now \
                    and e.timestamp not in known:
                self._try(f"expiry {e.timestamp}", partial(self.coordinator.on_list_expiry, e.timestamp, e.cap,
                                                          now=now))
        listed = []
        for expiry in [e for e in self.coordinator.market.expiries if e.timestamp > now]:
            for strike, kind in product(self.strikes, (OptionKind.CALL, OptionKind.PUT)):
                series = Series(pair, expiry.timestamp, strike, kind)
                if compute_series_id(series) not in self.coordinator.listings and self._try(
                        f"series {format_series_name(series)}",
                        partial(self.coordinator.on_list_series, expiry.timestamp, strike, kind, now=now)):
                    listed.append(series)
        if listed:
            log.info("listed %s", ", ".join(format_series_name(s) for s in listed))
        return listed

    def _try(self, what: str, call: Callable[[], object]) -> bool:
        """Run one listing; a refusal is logged (once per reason) and returns False."""
        try:
            call()
        except ClearhouseError as exc:
            if self._refusals.get(what) != str(exc):  # once, not every tick
                self._refusals[what] = str(exc)
                log.warning("cannot list %s: %s", what, exc)
            return False
        return True

    def settle_due(self, now: int) -> list[ExpiryId]:
        """Settle every expiry of the market that has passed, is priced (or can be priced now) and
        is not settled yet, oldest first; returns the ones settled."""
        settled = []
        due = sorted((e.timestamp, i) for i, e in self.coordinator.get_market_expiries().items()
                     if e.timestamp <= now and i not in self.coordinator.settled)
        for _, expiry_id in due:
            price = self.expiries.get_prices().get(expiry_id)  # recorded by anyone, read this tick
            if price is None and now < self._retry.get(expiry_id, 0):
                continue  # asked less than RETRY_SECONDS ago
            if price is None:
                price = self._record(expiry_id, now)
            if price is None:
                continue
            self.coordinator.on_settle_expiry(expiry_id, price, now=now)
            log.info("expiry 0x%s settled at %d", bytes(expiry_id).hex(), price)
            settled.append(expiry_id)
        return settled

    def _record(self, expiry_id: ExpiryId, now: int) -> Price | None:
        """``settle_expiry`` on the registry if the hub can give the TWAP now (its view says, for
        free); ``None`` (and a retry after :data:`RETRY_SECONDS`) if it cannot yet."""
        try:
            registry = self.expiries.registry
            entry: Any = registry.call("get_expiry", expiry_id)
            end = int(entry[3])
            feed = registry.call("feed_of", expiry_id)
            self.hub.call("twap", feed, end - self.twap_window, end, int(entry[4]))
            receipt = registry.transact("settle_expiry", expiry_id, sender=self.sender)
        except ContractRevert as exc:
            self._retry[expiry_id] = now + RETRY_SECONDS
            reason = str(exc)
            if self._reasons.get(expiry_id) != reason:  # once per reason, not every minute
                log.warning("expiry 0x%s cannot be priced yet: %s", bytes(expiry_id).hex(), reason)
                self._reasons[expiry_id] = reason
            return None
        price = Price(int(receipt.events_named("ExpirySettled")[0].args["price"]))
        self.expiries.record(expiry_id, price)
        return price
