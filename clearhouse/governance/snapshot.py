"""Voting power snapshots from ``Bonds``' stake checkpoints.

Pure: the caller passes how to read ``Bonds.stake_at`` (e.g. ``lambda who, role, t:
bonds.call("stake_at", who, role, t)``), so the rule package never touches the chain itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from clearhouse.disputes.bonds import Role
from clearhouse.types import Address, Timestamp

__all__ = ["StakeAt", "read_stake_snapshot"]

StakeAt = Callable[[Address, int, Timestamp], int]
"""``Bonds.stake_at(who, role, timestamp)``: active stake at the end of a past second."""


def read_stake_snapshot(stake_at: StakeAt, accounts: Iterable[Address], timestamp: Timestamp) -> dict[Address, int]:
    """Each account's stake over every role at ``timestamp``, zeros left out.

    ``timestamp`` must be in the past: checkpoints answer for it, so a stake bonded after it
    counts for nothing, whatever happens later.
    """
    out: dict[Address, int] = {}
    for who in accounts:
        stake = sum(int(stake_at(who, int(role), timestamp)) for role in Role)
        if stake:
            out[who] = stake
    return out
