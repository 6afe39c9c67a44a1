"""Rewards per role and epoch: the spec of ``contracts/Rewards.vy``.

Epoch ``e`` runs ``[start + e·epoch, start + (e+1)·epoch)``. Rewards credited to a role for an
epoch (fees notified during it, emissions scheduled for it) go to the role's stakers pro rata to
their active stake at the epoch's start: a staker's share is ``⌊stake · rewards / total⌋``, so
every share rounds down, the remainder stays with the protocol, and the shares of one epoch never
add up to more than its rewards. Only completed epochs can be claimed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["compute_epoch", "compute_epoch_start", "compute_owed", "compute_share"]


def compute_epoch(now: int, start: int, epoch: int) -> int:
    """The epoch running at ``now``."""
    return (now - start) // epoch


def compute_epoch_start(e: int, start: int, epoch: int) -> int:
    """When epoch ``e`` begins: the instant its stake snapshot is read."""
    return start + e * epoch


def compute_share(stake: int, total: int, rewards: int) -> int:
    """A staker's share of one epoch's rewards (0 when nobody was staked: the rewards stay)."""
    return 0 if total == 0 else stake * rewards // total


def compute_owed(stake_at: Callable[[int], int], total_at: Callable[[int], int], rewards: Mapping[int, int],
                 first: int, last: int, start: int, epoch: int) -> int:
    """A staker's rewards for epochs ``first ≤ e < last`` given its and the role's stake at a time."""
    owed = 0
    for e in range(first, last):
        amount = rewards.get(e, 0)
        if amount:
            at = compute_epoch_start(e, start, epoch)
            owed += compute_share(stake_at(at), total_at(at), amount)
    return owed
