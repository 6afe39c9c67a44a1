"""Proposals and their forum: actions within bounds, signed discussion posts, a recorded lifecycle.

Pure rules over a :class:`Forum`. A proposal moves

    draft → voting → passed | failed;  passed → asserted → queued → executed;  any open state → cancelled
    asserted → passed (the assertion was disputed and overturned: the true result is asserted again)

and every move is appended to its ``transitions`` with the time and a note, so the history is the
proposal's own record. Its stake snapshot is the second before its creation, strictly before voting
opens: stake bonded after that cannot vote (no flash votes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from clearhouse.errors import GovernanceError, InvalidProposal, UnknownProposal, VotingClosed
from clearhouse.messages import Domain, Post, verify
from clearhouse.messages.fast import compute_post_digest
from clearhouse.params import compute_exit_bound
from clearhouse.types import Address, Digest, Seconds, Timestamp

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_RULES",
    "Action",
    "ActionKind",
    "ClassRule",
    "Forum",
    "ParameterBound",
    "PinnedCommittee",
    "Proposal",
    "Status",
    "Transition",
    "compute_committee_change",
    "compute_longest_exit",
    "get_rule",
    "process_cancel",
    "process_create_proposal",
    "process_open_voting",
    "process_post",
    "process_transition",
    "validate_action",
]

MAX_ACTIONS: Final = 16
MAX_TITLE_BYTES: Final = 200
MAX_BODY_BYTES: Final = 20_000
MAX_COMMITTEE: Final = 31
"""``OracleHub.MAX_MEMBERS``: the largest committee ``set_committee`` takes."""


class ActionKind(StrEnum):
    PARAMETER = "parameter"
    """Change a risk or protocol parameter within its bounds."""
    COMMITTEE = "committee"
    """Add or remove an oracle committee member."""
    COORDINATOR = "coordinator"
    """Admit or remove a coordinator."""
    FEES = "fees"
    """Change the fee schedule."""


@dataclass(frozen=True, slots=True)
class ParameterBound:
    """The range a governed parameter may take (integers, inclusive)."""

    minimum: int
    maximum: int


DEFAULT_BOUNDS: Final[Mapping[str, ParameterBound]] = {
    "checkpoint_interval": ParameterBound(1, 16),
    # W and T_force are bounded so that, with the longest emergency pause (MAX_PAUSE, 3 days), no
    # value within bounds lets stake unbond while it can still be slashed: W + T_force + MAX_PAUSE
    # stays under the 7-day unbonding delay (12 h + 3 d + 3 d = 6.5 d), and every T_force > every W.
    "challenge_window": ParameterBound(3_600, 12 * 3_600),
    "t_force": ParameterBound(86_400, 3 * 86_400),
    "max_positions": ParameterBound(1, 16),
    "max_fee_bps": ParameterBound(0, 100),
    "maker_fee_bps": ParameterBound(0, 100),
    "taker_fee_bps": ParameterBound(0, 100),
}
"""Every parameter governance may change, with its bounds; anything else is refused. Each is read
where it applies: ``K``, ``max_positions``, ``max_fee_bps`` by the batch's version (the STF and the
window verifier), ``W`` by the batch's version and ``T_force`` from the latest (``Settlement``),
the fee schedule by the coordinator, which matches with the latest (``SettlementLink.sync_fees``).
Made for a deployment whose unbonding delay is 7 days (``Params.unbonding_delay`` of the devnet
preset, ``Bonds`` in ``sim.settlement_chain``): tests/property/test_parameter_bounds.py checks it."""

def compute_longest_exit(bounds: Mapping[str, ParameterBound] = DEFAULT_BOUNDS) -> Seconds:
    """The longest a user may need to leave under any version ``bounds`` allow: ``T_force + W +
    MAX_PAUSE`` at their maxima. A Governor's timelock must exceed it, not just the exit time of
    the version in force: a queued change may meet a ``W`` or ``T_force`` raised before it."""
    return compute_exit_bound(Seconds(bounds["t_force"].maximum), Seconds(bounds["challenge_window"].maximum))


_FEE_PARAMETERS: Final = frozenset({"max_fee_bps", "maker_fee_bps", "taker_fee_bps"})


@dataclass(frozen=True, slots=True)
class Action:
    """One executable action of a proposal."""

    kind: ActionKind
    target: str
    """The parameter name, or the member / coordinator address."""
    value: int
    """The new value; for membership actions 1 adds or admits, 0 removes."""


@dataclass(frozen=True, slots=True)
class PinnedCommittee:
    """An oracle feed's committee as the hub held it when a proposal with committee actions was
    created: the proposal's committee actions apply to this list, so everyone computes the same
    ``set_committee`` call from the proposal alone (no chain read after creation)."""

    feed_id: bytes
    """The governed feed (``keccak256(pair)``, 32 bytes)."""
    members: tuple[str, ...]
    """Its members in leader-rotation order (``OracleHub.members``)."""


@dataclass(frozen=True, slots=True)
class ClassRule:
    """Quorum and approval a proposal needs, by the strictest class of its actions."""

    quorum_bps: int
    """Voting power that must take part (for + against + abstain), of the snapshot's total."""
    approval_bps: int
    """``for`` must exceed this share of ``for + against``."""


DEFAULT_RULES: Final[Mapping[ActionKind, ClassRule]] = {
    ActionKind.PARAMETER: ClassRule(quorum_bps=2_000, approval_bps=5_000),
    ActionKind.FEES: ClassRule(quorum_bps=2_000, approval_bps=5_000),
    ActionKind.COMMITTEE: ClassRule(quorum_bps=3_000, approval_bps=6_667),
    ActionKind.COORDINATOR: ClassRule(quorum_bps=3_000, approval_bps=6_667),
}


class Status(StrEnum):
    DRAFT = "draft"
    VOTING = "voting"
    PASSED = "passed"
    FAILED = "failed"
    ASSERTED = "asserted"
    QUEUED = "queued"
    EXECUTED = "executed"
    CANCELLED = "cancelled"


_NEXT: Final[Mapping[Status, frozenset[Status]]] = {
    Status.DRAFT: frozenset({Status.VOTING, Status.CANCELLED}),
    Status.VOTING: frozenset({Status.PASSED, Status.FAILED, Status.CANCELLED}),
    Status.PASSED: frozenset({Status.ASSERTED, Status.CANCELLED}),
    # An assertion overturned by arbitration sends the result back to be asserted again.
    Status.ASSERTED: frozenset({Status.PASSED, Status.QUEUED, Status.FAILED, Status.CANCELLED}),
    Status.QUEUED: frozenset({Status.EXECUTED, Status.CANCELLED}),
    Status.FAILED: frozenset(),
    Status.EXECUTED: frozenset(),
    Status.CANCELLED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Transition:
    previous: Status | None
    status: Status
    time: Timestamp
    note: str


@dataclass(frozen=True, slots=True)
class Proposal:
    id: int
    author: Address
    title: str
    body: str
    actions: tuple[Action, ...]
    snapshot_time: Timestamp
    """Voting power is stake at the end of this second: the one before the proposal was created."""
    voting_start: Timestamp
    voting_end: Timestamp
    status: Status
    transitions: tuple[Transition, ...]
    committee: PinnedCommittee | None = None
    """The committee its committee actions change (``None`` without committee actions)."""


@dataclass
class Forum:
    """Every proposal and its discussion."""

    domain: Domain
    proposals: dict[int, Proposal] = field(default_factory=dict)
    posts: dict[int, dict[Digest, Post]] = field(default_factory=dict)
    """Posts per proposal by post id (the post's EIP-712 digest)."""


def validate_action(action: Action, bounds: Mapping[str, ParameterBound] = DEFAULT_BOUNDS) -> None:
    """Refuse an action governance may not take: an unknown parameter, a value outside its bounds,
    a membership change that is neither add (1) nor remove (0) of an address."""
    if action.kind in (ActionKind.PARAMETER, ActionKind.FEES):
        bound = bounds.get(action.target)
        if bound is None:
            raise InvalidProposal(f"{action.target!r} is not a governed parameter", field="actions")
        if (action.kind is ActionKind.FEES) != (action.target in _FEE_PARAMETERS):
            raise InvalidProposal(f"{action.target!r} is not a {action.kind} action", field="actions")
        if not bound.minimum <= action.value <= bound.maximum:
            raise InvalidProposal(f"{action.target} = {action.value} is outside "
                                  f"[{bound.minimum}, {bound.maximum}]", field="actions")
        return
    target = action.target
    if not (len(target) == 42 and target.startswith("0x") and all(c in "0123456789abcdefABCDEF" for c in target[2:])):
        raise InvalidProposal(f"{target!r} is not an address", field="actions")
    if action.value not in (0, 1):
        raise InvalidProposal("membership actions take 1 (add) or 0 (remove)", field="actions")


def compute_committee_change(committee: PinnedCommittee, actions: Sequence[Action]) -> tuple[tuple[str, ...], int]:
    """The members and ``f`` after the committee actions of ``actions``, in order (an added member
    joins the end of the leader rotation). Refuses adding a member, removing a non-member, and a
    result that is not ``3f+1`` members with ``f >= 1`` (what ``OracleHub.set_committee`` takes)."""
    members = list(committee.members)
    for action in actions:
        if action.kind is not ActionKind.COMMITTEE:
            continue
        present = [m for m in members if m.lower() == action.target.lower()]
        if action.value == 1 and present:
            raise InvalidProposal(f"{action.target} is already a committee member", field="actions")
        if action.value == 0 and not present:
            raise InvalidProposal(f"{action.target} is not a committee member", field="actions")
        members = [*members, action.target] if action.value == 1 else [m for m in members if m not in present]
    n = len(members)
    if n < 4 or n > MAX_COMMITTEE or (n - 1) % 3:
        raise InvalidProposal(f"the committee would have {n} members, not 3f+1 (f >= 1, at most "
                              f"{MAX_COMMITTEE})", field="actions")
    return tuple(members), (n - 1) // 3


def get_rule(proposal: Proposal, rules: Mapping[ActionKind, ClassRule] = DEFAULT_RULES) -> ClassRule:
    """The strictest quorum and approval among the proposal's action classes."""
    chosen = [rules[a.kind] for a in proposal.actions]
    return ClassRule(max(r.quorum_bps for r in chosen), max(r.approval_bps for r in chosen))


def process_create_proposal(forum: Forum, author: Address, title: str, body: str, actions: Sequence[Action],
                            now: Timestamp, voting_delay: Seconds, voting_period: Seconds,
                            bounds: Mapping[str, ParameterBound] = DEFAULT_BOUNDS,
                            committee: PinnedCommittee | None = None) -> Proposal:
    """A new draft; voting runs ``[now + delay, now + delay + period]`` and its snapshot is stake at
    the end of second ``now - 1``: the current second can still change (a bond in the same block as
    the proposal would otherwise count), as for an arbitration's snapshot. Committee actions need
    ``committee`` (the hub's current one), which the proposal pins; their result must be valid."""
    if not title.strip() or len(title.encode()) > MAX_TITLE_BYTES:
        raise InvalidProposal(f"a title of 1 to {MAX_TITLE_BYTES} bytes", field="title")
    if len(body.encode()) > MAX_BODY_BYTES:
        raise InvalidProposal(f"a body of at most {MAX_BODY_BYTES} bytes", field="body")
    if not 0 < len(actions) <= MAX_ACTIONS:
        raise InvalidProposal(f"1 to {MAX_ACTIONS} actions", field="actions")
    if voting_delay <= 0 or voting_period <= 0:
        raise InvalidProposal("voting must open after the snapshot and last a while", field="voting_delay")
    for action in actions:
        validate_action(action, bounds)
    pinned = None
    if any(a.kind is ActionKind.COMMITTEE for a in actions):
        if committee is None:
            raise InvalidProposal("committee actions need the oracle hub's current committee", field="actions")
        compute_committee_change(committee, actions)
        pinned = committee
    number = len(forum.proposals) + 1
    start = Timestamp(now + voting_delay)
    proposal = Proposal(number, author, title, body, tuple(actions), Timestamp(now - 1), start,
                        Timestamp(start + voting_period), Status.DRAFT,
                        (Transition(None, Status.DRAFT, now, "created"),), pinned)
    forum.proposals[number] = proposal
    forum.posts[number] = {}
    return proposal


def _get(forum: Forum, proposal_id: int) -> Proposal:
    proposal = forum.proposals.get(proposal_id)
    if proposal is None:
        raise UnknownProposal(f"no proposal {proposal_id}", field="proposal_id")
    return proposal


def process_transition(forum: Forum, proposal_id: int, status: Status, now: Timestamp, note: str) -> Proposal:
    """Move a proposal to ``status`` if its lifecycle allows it, recording the move."""
    proposal = _get(forum, proposal_id)
    if status not in _NEXT[proposal.status]:
        raise GovernanceError(f"proposal {proposal_id} cannot go from {proposal.status} to {status}",
                              field="status")
    moved = replace(proposal, status=status,
                    transitions=(*proposal.transitions, Transition(proposal.status, status, now, note)))
    forum.proposals[proposal_id] = moved
    return moved


def process_open_voting(forum: Forum, proposal_id: int, now: Timestamp) -> Proposal:
    """Open voting once its start has come."""
    if now < _get(forum, proposal_id).voting_start:
        raise VotingClosed("voting has not started", field="now")
    return process_transition(forum, proposal_id, Status.VOTING, now, "voting opened")


def process_cancel(forum: Forum, proposal_id: int, by: Address, now: Timestamp) -> Proposal:
    """The author withdraws a proposal that has not executed."""
    if by != _get(forum, proposal_id).author:
        raise GovernanceError("only the author can cancel", field="by")
    return process_transition(forum, proposal_id, Status.CANCELLED, now, f"cancelled by {by}")


def process_post(forum: Forum, post: Post, signature: bytes, now: Timestamp) -> Digest:
    """Accept a signed discussion post (a reply names a post of the same proposal); returns its id."""
    _get(forum, post.proposal_id)
    verify(forum.domain, post, signature, post.author, now)
    posts = forum.posts[post.proposal_id]
    post_id = compute_post_digest(forum.domain, post)
    if post_id in posts:
        raise GovernanceError("this post is already in the forum", field="post")
    if post.parent != bytes(32) and post.parent not in posts:
        raise GovernanceError("a reply must name a post of the same proposal", field="parent")
    posts[post_id] = post
    return post_id
