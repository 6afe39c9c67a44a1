"""Where oracle members read prices: the :class:`PriceSource` interface and offline sources.

- :class:`SimulatedMarket`: a seeded GBM with Poisson jumps and Markov volatility regimes (the
  default for demos and tests; the same seed gives the same path on every run).
- :class:`CsvReplay`: replays ``timestamp,price`` rows from a file or string.
- :class:`NoisySource`: one member's view of a source (each exchange quotes a little differently).

Live exchange adapters implement :class:`PriceSource` in the node; nothing here opens a socket.
Every price is an integer in quote-token base units per whole underlying.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol, runtime_checkable

from clearhouse.errors import ConfigError, SourceUnavailable
from clearhouse.oracle.config import BPS
from clearhouse.types import BasisPoints, Price, Seconds, Timestamp

__all__ = [
    "ConstantSource",
    "CsvReplay",
    "MarketModel",
    "NoisySource",
    "PriceSource",
    "Regime",
    "SimulatedMarket",
]

_SECONDS_PER_YEAR = 365 * 86_400
_ONE_SECOND = Seconds(1)


@runtime_checkable
class PriceSource(Protocol):
    """Anything that can say what the price is at a given time."""

    def get_price(self, now: Timestamp) -> Price:
        """The price at ``now`` in quote base units; raise :class:`SourceUnavailable` if there is none.

        A live adapter returns its latest trade or mid price and ignores ``now`` except to refuse
        data older than it tolerates.
        """
        ...


@dataclass(frozen=True, slots=True)
class ConstantSource:
    """A source that always quotes one price (tests, pegged assets)."""

    price: Price
    """The price quoted at every time."""

    def get_price(self, now: Timestamp) -> Price:
        """Always :attr:`price`."""
        return self.price


@dataclass(frozen=True, slots=True)
class Regime:
    """One volatility regime of the simulated market."""

    volatility: float
    """Annualised volatility of the diffusion in this regime (0.6 = 60 %)."""
    switch_probability: float
    """Probability per step of leaving this regime (for another, chosen uniformly)."""


@dataclass(frozen=True, slots=True)
class MarketModel:
    """Parameters of the simulated market (a jump-diffusion with regime switching)."""

    initial_price: Price
    """Price at ``start``, quote base units."""
    start: Timestamp
    """Time of the first price; earlier times have none."""
    seed: int
    """Random seed: the whole path is a function of the model."""
    step: Seconds = _ONE_SECOND
    """Seconds between two simulated prices (the price holds in between)."""
    drift: float = 0.0
    """Annualised drift ``mu``."""
    regimes: tuple[Regime, ...] = (Regime(0.5, 0.0005), Regime(1.5, 0.005))
    """Volatility regimes, starting in the first (calm, then turbulent by default)."""
    jump_intensity: float = 20.0
    """Expected jumps per year (Poisson)."""
    jump_mean: float = -0.01
    """Mean log-size of a jump."""
    jump_std: float = 0.04
    """Standard deviation of a jump's log-size."""

    def __post_init__(self) -> None:
        if self.initial_price <= 0 or self.step <= 0 or not self.regimes:
            raise ConfigError("a market needs a positive price, a positive step and a regime",
                              field="initial_price")


class SimulatedMarket:
    """A deterministic price path from a :class:`MarketModel`, generated lazily and cached.

    Per step of ``dt = step / year``: the regime may switch, then
    ``log S += (mu - sigma²/2)·dt + sigma·sqrt(dt)·Z`` plus a jump ``N(jump_mean, jump_std)``
    with probability ``jump_intensity·dt``. Prices are rounded to integers, at least 1.
    """

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        self._rng = random.Random(model.seed)
        self._log_price = math.log(model.initial_price)
        self._regime = 0
        self._path: list[Price] = [model.initial_price]
        self._regimes: list[int] = [0]

    def get_price(self, now: Timestamp) -> Price:
        """The price of the step containing ``now``."""
        if now < self.model.start:
            raise SourceUnavailable("oracle: source has no price yet", field="now", now=now)
        index = (now - self.model.start) // self.model.step
        while len(self._path) <= index:
            self._advance()
        return self._path[index]

    def get_regime(self, now: Timestamp) -> int:
        """The regime index in force at ``now`` (for plots and scenario checks)."""
        self.get_price(now)
        return self._regimes[(now - self.model.start) // self.model.step]

    def _advance(self) -> None:
        m, rng = self.model, self._rng
        if len(m.regimes) > 1 and rng.random() < m.regimes[self._regime].switch_probability:
            others = [i for i in range(len(m.regimes)) if i != self._regime]
            self._regime = others[rng.randrange(len(others))]
        dt = m.step / _SECONDS_PER_YEAR
        sigma = m.regimes[self._regime].volatility
        self._log_price += (m.drift - sigma * sigma / 2) * dt + sigma * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        if rng.random() < m.jump_intensity * dt:
            self._log_price += rng.gauss(m.jump_mean, m.jump_std)
        self._path.append(Price(max(1, round(math.exp(self._log_price)))))
        self._regimes.append(self._regime)


class CsvReplay:
    """Replays ``timestamp,price`` rows; the price at ``now`` is the last row at or before it.

    ``price`` is a decimal number of whole quote units scaled by ``10**decimals`` (so ``3012.5``
    with 6 decimals is ``3_012_500_000``); with ``decimals=0`` it must already be base units.
    Rows must be in strictly increasing time order; a first line that does not parse as a row is a
    header and is skipped.
    """

    def __init__(self, rows: Sequence[tuple[Timestamp, Price]]) -> None:
        if not rows:
            raise ConfigError("a replay needs at least one row", field="rows")
        times = [t for t, _ in rows]
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise ConfigError("replay rows must be in strictly increasing time order", field="rows")
        self._times = times
        self._prices = [p for _, p in rows]

    @classmethod
    def from_text(cls, text: str, decimals: int = 0) -> CsvReplay:
        """Parse CSV text."""
        rows: list[tuple[Timestamp, Price]] = []
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for number, line in enumerate(lines):
            try:
                rows.append(_parse_row(line, decimals))
            except (ValueError, InvalidOperation):
                if number == 0:
                    continue  # header
                raise ConfigError(f"replay line {number + 1} is not 'timestamp,price': {line!r}",
                                  field="rows") from None
        return cls(rows)

    @classmethod
    def from_path(cls, path: str | Path, decimals: int = 0) -> CsvReplay:
        """Read a CSV file."""
        return cls.from_text(Path(path).read_text(), decimals)

    def get_price(self, now: Timestamp) -> Price:
        """The price of the last row at or before ``now``."""
        lo, hi = 0, len(self._times)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._times[mid] > now:
                hi = mid
            else:
                lo = mid + 1
        if lo == 0:
            raise SourceUnavailable("oracle: source has no price yet", field="now", now=now)
        return self._prices[lo - 1]


def _parse_row(line: str, decimals: int) -> tuple[Timestamp, Price]:
    time_text, price_text = (part.strip() for part in line.split(",")[:2])
    scaled = Decimal(price_text) * (Decimal(10) ** decimals)
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise ValueError("price is not a whole number of base units")
    return Timestamp(int(time_text)), Price(int(scaled))


@dataclass(frozen=True, slots=True)
class NoisySource:
    """One member's view of ``base``: its price moved by a deterministic offset in ``[-spread, spread]``.

    The offset depends only on ``(seed, now)``, so a member re-reading the same second sees the
    same price (and never signs two observations for one round by accident).
    """

    base: PriceSource
    """The market being observed."""
    seed: int
    """The member's seed (e.g. its index)."""
    spread_bps: BasisPoints
    """Largest deviation from the base price, in basis points."""

    def get_price(self, now: Timestamp) -> Price:
        """The base price plus this member's offset for ``now``."""
        price = self.base.get_price(now)
        offset_bps = random.Random(f"{self.seed}:{now}").randint(-self.spread_bps, self.spread_bps)
        return Price(max(1, price + price * offset_bps // BPS))
