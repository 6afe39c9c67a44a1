"""The window outflow cap on claims (``Vault.pay_capped``, ``Settlement.claim``), as pure rules.

Time is cut into epochs of ``window`` seconds (the challenge window ``W``); what claims pay in an
epoch plus what they paid in the epoch before is at most ``cap`` (``Params.max_window_outflow``),
so no interval of ``W`` seconds — it meets at most two epochs — pays out more. A claim pays
``min(rest of the payout, budget)``; the rest stays claimable. Exits and deposit refunds after a
freeze are not capped (``docs/protocol.md`` § Economic security says why).
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.errors import ConfigError, WindowOutflowCapReached
from clearhouse.types import Amount, Seconds, Timestamp

__all__ = [
    "OutflowState",
    "compute_claim_part",
    "compute_epoch",
    "compute_window_budget",
    "process_capped_payment",
]


@dataclass(frozen=True, slots=True)
class OutflowState:
    """``Vault.outflow_epoch`` / ``outflow_current`` / ``outflow_previous``."""

    epoch: int = 0
    """Epoch of the last capped payment, ``timestamp // window``."""
    current: int = 0
    """Paid in ``epoch``, base units."""
    previous: int = 0
    """Paid in ``epoch - 1``, base units."""


def compute_epoch(now: Timestamp, window: Seconds) -> int:
    """The epoch of ``now``: ``now // window``."""
    if window <= 0:
        raise ConfigError("the outflow window must be positive", field="window")
    return now // window


def compute_window_budget(state: OutflowState, cap: Amount, window: Seconds, now: Timestamp) -> Amount:
    """What capped payments may still pay at ``now`` (``Vault.window_budget``)."""
    epoch = compute_epoch(now, window)
    if epoch == state.epoch:
        used = state.previous + state.current
    elif epoch == state.epoch + 1:
        used = state.current
    else:
        used = 0
    return Amount(max(0, cap - used))


def compute_claim_part(amount: Amount, paid: Amount, budget: Amount) -> Amount:
    """What one claim of a payout of ``amount`` pays when ``paid`` of it was paid before."""
    if not 0 <= paid <= amount:
        raise ConfigError("paid must be within the payout", field="paid")
    return Amount(min(amount - paid, budget))


def process_capped_payment(state: OutflowState, cap: Amount, window: Seconds, now: Timestamp,
                           amount: Amount) -> OutflowState:
    """The state after paying ``amount`` at ``now``; :class:`WindowOutflowCapReached` if it is
    above the budget (``Vault.pay_capped``'s revert)."""
    if amount > compute_window_budget(state, cap, window, now):
        raise WindowOutflowCapReached(f"{amount} is above the window budget", field="amount")
    epoch = compute_epoch(now, window)
    if epoch == state.epoch:
        return OutflowState(epoch, state.current + amount, state.previous)
    previous = state.current if epoch == state.epoch + 1 else 0
    return OutflowState(epoch, amount, previous)
