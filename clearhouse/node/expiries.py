"""Expiry settlement on a chain: the registry's settlement prices, and the keeper that settles.

:class:`ExpiryPrices` reads the ``ExpiryRegistry``: the settlement price of each listed expiry once
``settle_expiry`` has recorded it (final from then on, so it is read once). The batcher's and the
watcher's settlement contexts take their prices from it (:func:`compute_priced_context`), as the
on-chain verifier takes them from the registry.

:class:`ExpiryKeeper` runs on the coordinator's link tick. For each expiry of the market that has
passed and is not settled yet, it records the registry's price if there is none (``settle_expiry``
is permissionless: the coordinator's account pays for it, once the committee's TWAP over the window
ending at the expiry is final; until then the hub's ``twap`` view says why not, and the keeper asks
again after :data:`RETRY_SECONDS`), then has the coordinator settle every position at that price
(one logged action, one ``ExpirySettlement`` per holder for the batcher).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract
from clearhouse.errors import ContractRevert
from clearhouse.node.coordinator import Coordinator
from clearhouse.settlement.context import SettlementContext, compute_priced_context
from clearhouse.types import ExpiryId, Price, Timestamp

__all__ = ["RETRY_SECONDS", "ExpiryKeeper", "ExpiryPrices", "compute_registry_context"]

log = logging.getLogger("clearhouse.node.expiries")

RETRY_SECONDS: Final = 60
"""Seconds between two attempts to record an expiry's price while the oracle cannot give it yet."""


class ExpiryPrices:
    """The settlement prices an ``ExpiryRegistry`` has recorded (each final once there)."""

    def __init__(self, registry: Contract) -> None:
        self.registry = registry
        self.prices: dict[ExpiryId, Price] = {}
        """Recorded prices by expiry id (clamped to the cap, not yet on the unit grid)."""
        self._listed = 0

    def read(self) -> dict[ExpiryId, Price]:
        """Every recorded price, re-reading the registry only while a listed expiry has none."""
        if len(self.prices) < self._listed or not self._listed:
            listed = self.registry.call("listed")
            self._listed = len(listed)
            for entry in listed:
                if entry[5]:  # stf.ListedExpiry: expiry_id, underlying, quote, timestamp, cap, has_price, price
                    self.prices[ExpiryId(bytes(entry[0]))] = Price(int(entry[6]))
        return dict(self.prices)


def compute_registry_context(context: Callable[[Timestamp], SettlementContext], prices: ExpiryPrices
                             ) -> Callable[[Timestamp], SettlementContext]:
    """``context`` with the registry's settlement prices (what the on-chain verifier reads)."""
    return lambda timestamp: compute_priced_context(context(timestamp), prices.read())


class ExpiryKeeper:
    """Records the settlement price of each passed expiry of the market and settles its positions."""

    def __init__(self, coordinator: Coordinator, chain: Chain, prices: ExpiryPrices, sender: LocalAccount
                 ) -> None:
        self.coordinator, self.prices, self.sender = coordinator, prices, sender
        registry = prices.registry
        self.hub = chain.at("OracleHub", str(registry.call("oracle_hub")))
        """The oracle hub whose TWAP the registry records (its view says when it can)."""
        self.twap_window = int(registry.call("twap_window"))
        self._retry: dict[ExpiryId, int] = {}
        self._reasons: dict[ExpiryId, str] = {}

    def on_tick(self, now: int) -> list[ExpiryId]:
        """Settle every expiry of the market that has passed, is priced (or can be priced now) and
        is not settled yet, oldest first; returns the ones settled."""
        settled = []
        due = sorted((e.timestamp, i) for i, e in self.coordinator.get_market_expiries().items()
                     if e.timestamp <= now and i not in self.coordinator.settled)
        for _, expiry_id in due:
            price = self.prices.prices.get(expiry_id)
            if price is None:
                if now < self._retry.get(expiry_id, 0):
                    continue  # asked less than RETRY_SECONDS ago
                price = self.prices.read().get(expiry_id)  # someone else may have recorded it
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
            entry: Any = self.prices.registry.call("get_expiry", expiry_id)
            end = int(entry[3])
            feed = self.prices.registry.call("feed_of", expiry_id)
            self.hub.call("twap", feed, end - self.twap_window, end, int(entry[4]))
            receipt = self.prices.registry.transact("settle_expiry", expiry_id, sender=self.sender)
        except ContractRevert as exc:
            self._retry[expiry_id] = now + RETRY_SECONDS
            reason = str(exc)
            if self._reasons.get(expiry_id) != reason:  # once per reason, not every minute
                log.warning("expiry 0x%s cannot be priced yet: %s", bytes(expiry_id).hex(), reason)
                self._reasons[expiry_id] = reason
            return None
        price = Price(int(receipt.events_named("ExpirySettled")[0].args["price"]))
        self.prices.prices[expiry_id] = price
        return price
