"""What the chain says about a deployment's governed parameters and its emergency pause.

A batch is built and judged under the parameter version that applies to its number
(``ParameterStore.version_at``), read here from the store the window verifier was deployed with
(``WindowVerifier.PARAMETER_STORE``; ``Settlement`` refuses a batch naming another version). A
deployment without a store has version 1 only: the context it was configured with. ``W`` and
``T_force`` are governed the same way (:meth:`ChainParameters.get_windows`). The pause rule itself
is :func:`is_posting_paused` over the two timestamps ``Settlement`` stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from clearhouse.chain import Chain, Contract
from clearhouse.errors import ConfigError
from clearhouse.market.trades import FeeSchedule
from clearhouse.settlement.context import (
    ParameterVersion,
    SettlementContext,
    compute_parameter_key,
    compute_versioned_context,
)
from clearhouse.types import BasisPoints, Seconds, Timestamp

__all__ = ["ChainParameters", "PauseMonitor", "PauseWindow", "compute_freeze_deadline", "get_pause_window", "is_posting_paused",
           "load_chain_parameters"]

_ZERO = "0x" + "00" * 20


def _is_zero(address: object) -> bool:
    return str(address).lower() in (_ZERO, "0x0", "none")


@dataclass(frozen=True, slots=True)
class PauseWindow:
    """The last emergency pause of a settlement (both 0: never paused)."""

    start: Timestamp
    """When it began (chain seconds)."""
    end: Timestamp
    """When it ends by itself: posting is closed while ``start <= now < end``."""


def is_posting_paused(window: PauseWindow, now: Timestamp) -> bool:
    """True while the emergency pause closes posting (and the coordinator's new trades)."""
    return window.start <= now < window.end


def compute_freeze_deadline(requested: Timestamp, t_force: int, window: PauseWindow) -> Timestamp:
    """When ``Settlement.freeze`` accepts a forced withdrawal requested at ``requested`` as overdue:
    after ``t_force`` seconds of open posting, i.e. ``requested + t_force`` moved by the part of the
    last pause that overlapped it (pauses are ``Settlement.pause_cooldown`` ≥ every ``T_force``
    apart, so no earlier one can)."""
    deadline = requested + t_force
    if window.start < deadline and window.end > requested:
        deadline += window.end - max(window.start, requested)
    return Timestamp(deadline)


def get_pause_window(settlement: Contract) -> PauseWindow:
    """``Settlement.pause_start`` / ``pause_end``."""
    return PauseWindow(Timestamp(int(settlement.call("pause_start"))),
                       Timestamp(int(settlement.call("pause_end"))))


class PauseMonitor:
    """``is_posting_paused`` of a settlement at a time, reading its pause window from the chain at
    most every ``refresh`` seconds (wall clock): the coordinator asks on every new order."""

    def __init__(self, settlement: Contract, refresh: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settlement, self.refresh, self.clock = settlement, refresh, clock
        self._window: PauseWindow | None = None
        self._read_at = 0.0

    def __call__(self, now: Timestamp) -> bool:
        """True while the pause closes posting at chain time ``now``."""
        if self._window is None or self.clock() - self._read_at >= self.refresh:
            self._window, self._read_at = get_pause_window(self.settlement), self.clock()
        return is_posting_paused(self._window, now)


class ChainParameters:
    """The parameter store of a deployment (``None``: version 1 only), with a cache of the
    versions read from it (a version's values never change once a batch uses it)."""

    def __init__(self, store: Contract | None) -> None:
        self.store = store
        """The ``ParameterStore`` the verifier reads, if any."""
        self._versions: dict[int, tuple[int, int, int]] = {}
        self._fees: dict[int, FeeSchedule | None] = {}

    def get_version_at(self, number: int) -> int:
        """The version that applies to batch ``number`` (1 without a store)."""
        return 1 if self.store is None else int(self.store.call("version_at", number))

    def get_version(self, version: int, base: SettlementContext) -> ParameterVersion:
        """The governed parameters of ``version``; without a store, ``base``'s (version 1)."""
        if self.store is None:
            return ParameterVersion(version, base.checkpoint_interval, base.max_positions, base.max_fee_bps)
        values = self._versions.get(version)
        if values is None:
            k, positions, fee = (int(self.store.call("get", compute_parameter_key(name), version))
                                 for name in ("checkpoint_interval", "max_positions", "max_fee_bps"))
            values = self._versions[version] = (k, positions, fee)
        return ParameterVersion(version, values[0], values[1], BasisPoints(values[2]))

    def get_windows(self, settlement: Contract) -> tuple[Seconds, Seconds]:
        """``W`` of the next batch and the ``T_force`` ``freeze`` waits now: the latest version's
        (what ``Settlement`` reads), or ``settlement``'s own without a store."""
        if self.store is None:
            return Seconds(int(settlement.call("challenge_window"))), Seconds(int(settlement.call("t_force")))
        version = int(self.store.call("version"))
        w, t = (Seconds(int(self.store.call("get", compute_parameter_key(name), version)))
                for name in ("challenge_window", "t_force"))
        return w, t

    def get_fee_schedule(self) -> FeeSchedule | None:
        """The fee schedule of the latest version — ``maker_fee_bps`` and ``taker_fee_bps``, each
        at most that version's ``max_fee_bps`` (the STF's bound) — or ``None`` if there is no
        store or it does not govern fees (the coordinator keeps its own)."""
        if self.store is None:
            return None
        version = int(self.store.call("version"))
        if version not in self._fees:
            keys = [compute_parameter_key(n) for n in ("maker_fee_bps", "taker_fee_bps", "max_fee_bps")]
            if not all(self.store.call("bounds", key)[2] for key in keys):
                self._fees[version] = None
            else:
                maker, taker, bound = (int(self.store.call("get", key, version)) for key in keys)
                self._fees[version] = FeeSchedule(min(maker, bound), min(taker, bound))
        return self._fees[version]

    def get_context(self, base: SettlementContext, *, number: int | None = None,
                    version: int | None = None) -> SettlementContext:
        """``base`` under the version of batch ``number`` (or under ``version``, e.g. a posted
        header's)."""
        if version is None:
            if number is None:
                raise ConfigError("name a batch number or a version", field="number")
            version = self.get_version_at(number)
        return compute_versioned_context(base, self.get_version(version, base))


def load_chain_parameters(chain: Chain, settlement: Contract) -> ChainParameters:
    """The parameter store of ``settlement``'s window verifier (none if either is unset)."""
    verifier = settlement.call("window_verifier")
    if _is_zero(verifier):
        return ChainParameters(None)
    store = chain.at("WindowVerifier", str(verifier)).call("PARAMETER_STORE")
    return ChainParameters(None if _is_zero(store) else chain.at("ParameterStore", str(store)))
