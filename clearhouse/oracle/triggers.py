"""When a feed needs a new round, and whether a round can still complete with members silent.

A round is due when the price moved by at least the deviation threshold since the last stored
round, or when the heartbeat elapsed. Up to ``f`` silent members are tolerated: ``2f+1`` of
``3f+1`` answer and ``f+1`` of them sign.
"""

from __future__ import annotations

from clearhouse.oracle.config import BPS, compute_observation_quorum, compute_signature_quorum
from clearhouse.types import BasisPoints, Price, Seconds, Timestamp

__all__ = [
    "compute_max_silent",
    "is_deviation_reached",
    "is_heartbeat_due",
    "is_quorum_reachable",
    "is_report_due",
]


def is_deviation_reached(last_price: Price, price: Price, deviation_bps: BasisPoints) -> bool:
    """Whether ``price`` moved by at least ``deviation_bps`` from ``last_price`` (exact, no rounding)."""
    if last_price == 0:
        return price != 0
    return abs(price - last_price) * BPS >= last_price * deviation_bps


def is_heartbeat_due(last_time: Timestamp, now: Timestamp, heartbeat: Seconds) -> bool:
    """Whether ``heartbeat`` seconds have passed since the last stored round."""
    return now - last_time >= heartbeat


def is_report_due(last_price: Price | None, last_time: Timestamp | None, price: Price,
                  now: Timestamp, deviation_bps: BasisPoints, heartbeat: Seconds) -> bool:
    """Whether the leader should run a round now: no round yet, deviation reached, or heartbeat due.

    The heartbeat must stay below the feed's ``max_staleness`` (with room for a failed round or
    two) or settlement will find the feed stale.
    """
    if last_price is None or last_time is None:
        return True
    return (is_deviation_reached(last_price, price, deviation_bps)
            or is_heartbeat_due(last_time, now, heartbeat))


def compute_max_silent(f: int) -> int:
    """Members that may be silent (offline, late, faulty) in a round that still completes: ``f``."""
    return f


def is_quorum_reachable(responders: int, f: int) -> bool:
    """Whether ``responders`` members are enough for a report (``2f+1`` observations, ``f+1`` signatures)."""
    return responders >= max(compute_observation_quorum(f), compute_signature_quorum(f))
