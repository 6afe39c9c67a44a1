"""Voting power snapshots read from ``Bonds``' stake checkpoints (the one chain-facing part)."""

from __future__ import annotations

from collections.abc import Iterable

from clearhouse.chain import Contract
from clearhouse.disputes.bonds import Role
from clearhouse.types import Address, Timestamp

__all__ = ["read_stake_snapshot"]


def read_stake_snapshot(bonds: Contract, accounts: Iterable[Address], timestamp: Timestamp) -> dict[Address, int]:
    """Each account's stake over every role at ``timestamp`` (``Bonds.stake_at``), zeros left out.

    ``timestamp`` must be in the past: ``stake_at`` answers from checkpoints, so a stake bonded
    after it counts for nothing, whatever happens later.
    """
    out: dict[Address, int] = {}
    for who in accounts:
        stake = sum(int(bonds.call("stake_at", who, int(role), timestamp)) for role in Role)
        if stake:
            out[who] = stake
    return out
