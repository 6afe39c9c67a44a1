"""Oracle rewards by work: the spec of ``contracts/OracleRewards.vy``.

Every report stored through the relay credits one unit of work, in the epoch it is stored, to
each member whose observation it carries (the member at the position the observation's reference
byte names). Epoch ``e``'s rewards go to its workers as ``⌊work · rewards / total_work⌋``: shares
round down, the remainder stays with the protocol, an epoch with no work keeps its rewards.
Epoch ``e`` can be claimed once ``start + (e+1)·epoch + claim_delay ≤ now``; a banned member
claims nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from clearhouse.disputes.config import DisputeParams
from clearhouse.incentives.rewards import compute_share
from clearhouse.oracle.config import HubParams
from clearhouse.types import Address, Seconds

__all__ = ["ORACLE_REWARD_EPOCH", "POSITION_MASK", "compute_claim_delay", "compute_claimable_end",
           "compute_work_credits", "compute_work_owed", "compute_work_share"]

ORACLE_REWARD_EPOCH: Final = Seconds(86_400)
"""Length of an oracle reward epoch: one day (the period work is counted and paid over)."""

POSITION_MASK = 31
"""Bits 0-4 of an observation's reference byte: the member's committee position (OracleHub)."""


def compute_claim_delay(hub: HubParams, disputes: DisputeParams) -> Seconds:
    """How long after an epoch ends its rewards wait (seconds): a round stored at the epoch's last
    instant can be disputed for ``dispute_window``, and the dispute resolves after the assertion's
    liveness and the arbitration's commit and reveal phases; its signers are banned (and can no
    longer claim) by then."""
    return Seconds(hub.dispute_window + hub.dispute_liveness + disputes.commit_period + disputes.reveal_period)


def compute_work_credits(observers: int, count: int, members: Sequence[Address]) -> tuple[Address, ...]:
    """The members credited for a stored report with ``count`` observations whose reference bytes
    are ``observers`` (byte ``j`` for observation ``j``), under a committee listing ``members``."""
    return tuple(members[(observers >> (8 * j)) & POSITION_MASK] for j in range(count))


def compute_work_share(work: int, total_work: int, rewards: int) -> int:
    """A member's share of one epoch's rewards: ``⌊work · rewards / total_work⌋`` base units
    (0 when nobody worked: the rewards stay)."""
    return compute_share(work, total_work, rewards)


def compute_claimable_end(now: int, start: int, epoch: int, claim_delay: int) -> int:
    """The first epoch not yet claimable at ``now`` (seconds): every ``e`` below it ended at least
    ``claim_delay`` seconds ago."""
    return 0 if now < start + claim_delay else (now - start - claim_delay) // epoch


def compute_work_owed(work: Mapping[int, int], total_work: Mapping[int, int], rewards: Mapping[int, int],
                      first: int, last: int) -> int:
    """A member's rewards for epochs ``first ≤ e < last`` given its ``work`` per epoch, everyone's
    ``total_work`` per epoch and the epochs' ``rewards`` (base units)."""
    return sum(compute_work_share(work.get(e, 0), total_work.get(e, 0), rewards.get(e, 0))
               for e in range(first, last))
