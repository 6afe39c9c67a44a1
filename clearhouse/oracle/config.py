"""Oracle committees and feed limits: who may sign for a feed, how many must, and within what bounds.

Mirrors the configuration half of ``OracleHub.vy``: the committee of ``n = 3f+1`` members, its
config digest, the quorums ``2f+1`` (observations) and ``f+1`` (report signatures), and the
per-feed price bounds and freshness limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from clearhouse.errors import InvalidCommittee, NotAMember
from clearhouse.messages.checks import check_address
from clearhouse.messages.keccak import keccak256
from clearhouse.types import Address, Amount, BasisPoints, Digest, FeedId, Price, RoundId, Seconds

__all__ = [
    "BPS",
    "DEFAULT_HISTORY_ROUNDS",
    "MAX_DEVIATION_BPS",
    "MAX_HISTORY_ROUNDS",
    "MAX_MEMBERS",
    "MAX_PRICE",
    "MAX_ROUND_GAP",
    "MAX_TWAP_ROUNDS",
    "MAX_WINDOW",
    "Committee",
    "FeedConfig",
    "HubParams",
    "compute_config_digest",
    "compute_feed_id",
    "compute_observation_quorum",
    "compute_signature_quorum",
    "get_leader",
    "get_member_index",
    "is_member",
]

MAX_MEMBERS: Final = 31
"""Largest committee ``OracleHub`` accepts: ``3f+1 <= 31``, so ``f <= 10`` (a position fits a bitmap)."""
MAX_TWAP_ROUNDS: Final = 256
"""Most rounds a TWAP window may hold: the bound of the contract's TWAP loop."""
MAX_PRICE: Final = Price(2**128 - 1)
"""Largest storable price (a round is packed in one slot: price in the low 128 bits)."""
BPS: Final = 10_000
"""Denominator of basis-point ratios."""
MAX_DEVIATION_BPS: Final = 1_000_000
"""Largest deviation limit a feed may set (100×), so the contract's products stay in 256 bits."""
MAX_WINDOW: Final = 2**32 - 1
"""Largest ``max_staleness`` and ``dispute_window`` (seconds): they are packed in 32 bits."""
MAX_ROUND_GAP: Final = 2**16
"""How far a new round number may run ahead of the last stored one (of 0 for a first round), so
no faulty leader or poster can push a feed to the end of the uint64 range."""
MAX_HISTORY_ROUNDS: Final = 2**32
"""Largest ring of round slots a hub may keep per feed (``OracleHub.MAX_HISTORY_ROUNDS``)."""
DEFAULT_HISTORY_ROUNDS: Final = 2**16
"""Round slots kept per feed by default: at the densest spacing of 8 s that is 6 days of rounds,
at a one-minute heartbeat 45 days (docs/decisions/0005-oracle-report-gas.md)."""
_NONE: Final = Amount(0)
_NO_BPS: Final = BasisPoints(0)
_HOUR: Final = Seconds(3_600)


def compute_feed_id(pair: str) -> FeedId:
    """The feed id of a pair name: ``keccak256(pair)``, e.g. ``compute_feed_id("ETH/USDC")``."""
    return FeedId(keccak256(pair.encode()))


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """A feed's bounds and freshness limits (``OracleHub.configure_feed``)."""

    min_price: Price
    """Lowest price a round may store, inclusive (quote base units per whole underlying)."""
    max_price: Price
    """Highest price a round may store, inclusive; at most :data:`MAX_PRICE`."""
    max_deviation_bps: BasisPoints
    """Largest move from the previous round's price; 0 switches the check off. A circuit breaker:
    after a genuine move beyond it the feed halts until governance widens it."""
    max_age: Seconds
    """Oldest observation a report may carry, in seconds before the block that stores it."""
    max_staleness: Seconds
    """Seconds after its last round at which the feed is stale (settlement then reverts)."""

    def __post_init__(self) -> None:
        if not (self.min_price <= self.max_price and 0 < self.max_price <= MAX_PRICE):
            raise InvalidCommittee("oracle: bad price bounds", field="max_price")
        if not 0 < self.max_age <= MAX_WINDOW:
            raise InvalidCommittee("oracle: bad max age", field="max_age")
        if not 0 < self.max_staleness <= MAX_WINDOW:
            raise InvalidCommittee("oracle: bad max staleness", field="max_staleness")
        if self.max_deviation_bps != 0 and self.min_price == 0:
            raise InvalidCommittee("oracle: deviation needs a positive min price",
                                   field="max_deviation_bps")
        if not 0 <= self.max_deviation_bps <= MAX_DEVIATION_BPS:
            raise InvalidCommittee("oracle: bad deviation", field="max_deviation_bps")


@dataclass(frozen=True, slots=True)
class HubParams:
    """Deployment-wide oracle constants (``OracleHub`` constructor and admin setters)."""

    min_round_interval: Seconds
    """Least seconds between two stored rounds' timestamps (bounds rounds per TWAP window)."""
    max_twap_window: Seconds
    """Longest TWAP window; at most ``(MAX_TWAP_ROUNDS - 1) * min_round_interval``."""
    min_stake: Amount = _NONE
    """Active oracle-role stake a member needs in ``Bonds``, token base units."""
    slash_amount: Amount = _NONE
    """Stake taken per proven equivocation, token base units."""
    prover_reward_bps: BasisPoints = _NO_BPS
    """Share of the slashed stake paid to whoever proves the fault (equivocation, a wrong optimistic
    round, a round arbitration found wrong)."""
    dispute_window: Seconds = _HOUR
    """Seconds after a round's timestamp during which it can be disputed (``OracleDisputes``) or, if
    optimistic, challenged; at least every feed's ``max_age``. Settlement of a window ending at ``E``
    waits until ``E + dispute_window``."""
    dispute_bond: Amount = _NONE
    """``OracleDisputes``: the exact bond a round dispute posts through ``Assertions`` (and a
    defender must match), token base units; at least ``Assertions.min_bond``."""
    dispute_liveness: Seconds = _HOUR
    """``OracleDisputes``: the exact liveness of a round dispute's assertion; at least
    ``Assertions.min_liveness``."""
    history_rounds: int = DEFAULT_HISTORY_ROUNDS
    """Round slots ``OracleHub`` keeps per feed (a ring: round ``i`` lives in slot
    ``i % history_rounds`` until round ``i + history_rounds`` replaces it); a power of two with
    ``(history_rounds - 1) * min_round_interval > max_twap_window + dispute_window``, so a TWAP
    window stays readable until at least ``start + (history_rounds - 1) * min_round_interval``."""

    def __post_init__(self) -> None:
        if self.min_round_interval <= 0:
            raise InvalidCommittee("oracle: zero round interval", field="min_round_interval")
        if not 0 < self.max_twap_window <= (MAX_TWAP_ROUNDS - 1) * self.min_round_interval:
            raise InvalidCommittee("oracle: twap window too long for the loop bound",
                                   field="max_twap_window")
        if not 0 <= self.prover_reward_bps <= BPS:
            raise InvalidCommittee("oracle: reward above 100%", field="prover_reward_bps")
        if not 0 < self.dispute_window <= MAX_WINDOW:
            raise InvalidCommittee("oracle: bad dispute window", field="dispute_window")
        if self.dispute_liveness <= 0:
            raise InvalidCommittee("oracle: zero dispute liveness", field="dispute_liveness")
        if not (2 <= self.history_rounds <= MAX_HISTORY_ROUNDS
                and self.history_rounds & (self.history_rounds - 1) == 0):
            raise InvalidCommittee("oracle: history not a power of two", field="history_rounds")
        if ((self.history_rounds - 1) * self.min_round_interval
                <= self.max_twap_window + self.dispute_window):
            raise InvalidCommittee("oracle: history too short", field="history_rounds")

    def hub_args(self, bonds: str, name: str, version: str) -> tuple[object, ...]:
        """``OracleHub`` constructor arguments."""
        return (bonds, name, version, self.min_stake, self.slash_amount, self.prover_reward_bps,
                self.min_round_interval, self.max_twap_window, self.dispute_window, self.history_rounds)

    def disputes_args(self, hub: str, assertions: str) -> tuple[object, ...]:
        """``OracleDisputes`` constructor arguments."""
        return (hub, assertions, self.dispute_bond, self.dispute_liveness)


@dataclass(frozen=True, slots=True)
class Committee:
    """One configuration of a feed's committee, as ``OracleHub.set_committee`` stored it."""

    feed_id: FeedId
    """The feed this committee signs for."""
    members: tuple[Address, ...]
    """Exactly ``3f+1`` distinct members, checksummed, in leader-rotation order."""
    f: int
    """Faults tolerated (at least 1)."""
    version: int
    """Config version of the feed: 1 for its first committee, +1 per change."""
    removed: frozenset[Address] = frozenset()
    """Members ejected or banned since (still in ``members``: the digest covers the list)."""
    config_digest: Digest = field(init=False, repr=False, compare=False)
    """``keccak256(abi_encode(feed_id, version, f, members))``, computed at construction."""

    def __post_init__(self) -> None:
        members = tuple(check_address(m, "members") for m in self.members)
        if self.f < 1 or len(members) != 3 * self.f + 1 or len(members) > MAX_MEMBERS:
            raise InvalidCommittee("oracle: committee is not 3f+1", field="members")
        if any(m == Address("0x" + "00" * 20) for m in members):
            raise InvalidCommittee("oracle: zero member", field="members")
        if len(set(members)) != len(members):
            raise InvalidCommittee("oracle: duplicate member", field="members")
        if len(self.feed_id) != 32 or self.version < 1:
            raise InvalidCommittee("oracle: bad feed id or version", field="feed_id")
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "removed", frozenset(check_address(m, "removed") for m in self.removed))
        object.__setattr__(self, "config_digest",
                           compute_config_digest(self.feed_id, self.version, self.f, members))

    @property
    def n(self) -> int:
        """Committee size, ``3f+1``."""
        return len(self.members)


def compute_config_digest(feed_id: FeedId, version: int, f: int, members: Sequence[Address]) -> Digest:
    """``keccak256(abi_encode(bytes32 feed_id, uint256 version, uint256 f, address[] members))``."""
    head = bytes(feed_id) + version.to_bytes(32, "big") + f.to_bytes(32, "big") + (128).to_bytes(32, "big")
    tail = len(members).to_bytes(32, "big") + b"".join(
        bytes.fromhex(m[2:]).rjust(32, b"\x00") for m in members)
    return keccak256(head + tail)


def compute_observation_quorum(f: int) -> int:
    """Observations a report needs: ``2f+1`` (a majority of them is honest)."""
    return 2 * f + 1


def compute_signature_quorum(f: int) -> int:
    """Report signatures needed: ``f+1`` (at least one honest member vouches for the report)."""
    return f + 1


def is_member(committee: Committee, who: Address) -> bool:
    """Whether ``who``'s observations and signatures count for the committee's feed."""
    return who in committee.members and who not in committee.removed


def get_member_index(committee: Committee, who: Address) -> int:
    """``who``'s position in the committee; raise :class:`NotAMember` unless it is active."""
    if not is_member(committee, who):
        raise NotAMember("oracle: not a member", field="signer", signer=who)
    return committee.members.index(who)


def get_leader(committee: Committee, round_id: RoundId) -> Address:
    """The round's leader: ``members[round mod n]``.

    Plain rotation (not a hash) so any ``f+1`` consecutive rounds have an honest leader; a silent
    or removed leader just lets its round time out and the next member leads the next round.
    """
    return committee.members[round_id % committee.n]
