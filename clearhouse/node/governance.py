"""The governance role: the forum (proposals, signed posts), signed votes and delegations and the
stake snapshot, driven by ``on_*`` handlers over the node's durable action log.

The same pattern as the coordinator: validate → ``store.append_action`` (committed) → apply →
``store.append_event("governance", …)`` → ack; :meth:`GovernanceService.replay` runs the same
apply step over ``store.iter_actions()`` (it shares the log with the coordinator: each skips the
other's kinds). Time comes in as ``now``: a proposal's voting opens at its start and closes after
its end the first time the service is called at or after that moment, and each move is logged
with what it depended on (the stake snapshot read from ``Bonds.stake_at`` when voting opens, the
tally when it closes), so replay never reads the chain or a clock. Moves made on-chain (asserted,
queued, executed, cancelled, an overturned assertion) arrive through :meth:`on_transition`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from clearhouse.chain import Chain, Contract
from clearhouse.errors import GovernanceError, IdempotencyConflict, InvalidProposal, UnknownProposal
from clearhouse.governance.execution import ActionTargets, compute_claim, compute_onchain_actions
from clearhouse.governance.proposals import (
    DEFAULT_BOUNDS,
    Action,
    ActionKind,
    Forum,
    ParameterBound,
    PinnedCommittee,
    Proposal,
    Status,
    process_create_proposal,
    process_open_voting,
    process_post,
    process_transition,
)
from clearhouse.governance.snapshot import read_stake_snapshot
from clearhouse.governance.votes import (
    Ballot,
    Delegation,
    Strategy,
    Tally,
    compute_delegation_digest,
    compute_tally,
    compute_tally_digest,
    process_delegation,
    process_vote,
)
from clearhouse.messages import Domain, Post, Vote, parse_typed_data
from clearhouse.messages.checks import check_address, check_uint
from clearhouse.messages.keccak import keccak256
from clearhouse.messages.schema import compute_typed_data_types
from clearhouse.messages.signing import verify_digest
from clearhouse.node.coordinator import Ack, encode_signed_payload
from clearhouse.store import Store
from clearhouse.types import Address, Seconds, Timestamp

__all__ = [
    "CHANNEL",
    "GOVERNANCE_KINDS",
    "CommitteeReader",
    "GovernanceConfig",
    "GovernanceService",
    "GovernanceWatcher",
    "SnapshotReader",
    "build_committee_reader",
    "build_governance_service",
    "build_governance_watcher",
    "compute_action_json",
    "compute_committee_json",
    "compute_tally_json",
    "parse_action",
    "parse_committee",
    "parse_delegation",
    "run_governance_loop",
]

GOVERNANCE_KINDS: Final = ("gov_proposal", "gov_post", "gov_vote", "gov_delegation", "gov_transition")
"""Every kind the governance role writes to the action log."""

CHANNEL: Final = "governance"
"""The WebSocket channel every governance event is published on."""

MAX_LIST: Final = 200
"""Proposals :meth:`GovernanceService.list_proposals_json` returns (the latest)."""

CommitteeReader = Callable[[], PinnedCommittee]
"""The governed feed's committee as the hub holds it now (``OracleHub.members``), read when a
proposal with committee actions is created and pinned in it (logged, so replay reads no chain)."""

SnapshotReader = Callable[[Timestamp], Mapping[Address, int]]
"""Stake per account (token base units, every role) at the end of a past second; the node reads
it from ``Bonds.stake_at`` (``clearhouse.governance.snapshot.read_stake_snapshot``)."""

_HOUR: Final = Seconds(3_600)
_THREE_DAYS: Final = Seconds(3 * 86_400)

_CHAIN_MOVES: Final = frozenset({Status.ASSERTED, Status.QUEUED, Status.EXECUTED, Status.CANCELLED, Status.PASSED})
"""Moves :meth:`GovernanceService.on_transition` records (the chain decides them)."""


@dataclass(frozen=True, slots=True)
class GovernanceConfig:
    """How this node runs its forum."""

    voting_delay: Seconds = _HOUR
    """Seconds from a proposal's creation (and snapshot) to the opening of its vote."""
    voting_period: Seconds = _THREE_DAYS
    """Seconds the vote stays open."""
    strategy: Strategy = Strategy.STAKE
    """How stake becomes voting power (stake, quadratic, delegated)."""
    bounds: Mapping[str, ParameterBound] = field(default_factory=lambda: DEFAULT_BOUNDS)
    """The parameters a proposal may change, with their bounds."""


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def compute_committee_json(committee: PinnedCommittee) -> dict[str, Any]:
    """A pinned committee as the API shows and the log keeps it."""
    return {"feedId": _hex(committee.feed_id), "members": list(committee.members)}


def parse_committee(raw: Mapping[str, Any]) -> PinnedCommittee:
    """A pinned committee from :func:`compute_committee_json`."""
    return PinnedCommittee(bytes.fromhex(str(raw["feedId"])[2:]), tuple(str(m) for m in raw["members"]))


def compute_action_json(action: Action) -> dict[str, Any]:
    """An action as the API shows it (``value`` a decimal string)."""
    return {"kind": str(action.kind), "target": action.target, "value": str(action.value)}


def parse_action(raw: Mapping[str, Any], index: int) -> Action:
    """An action from its JSON (``kind``, ``target``, ``value`` as a decimal string)."""
    where = f"actions[{index}]"
    try:
        kind = ActionKind(str(raw["kind"]))
    except (KeyError, ValueError):
        raise InvalidProposal(f"{where}.kind must be one of {', '.join(k.value for k in ActionKind)}",
                              field=f"{where}.kind") from None
    value = str(raw.get("value", ""))
    if not value.isdigit() or len(value) > 78:
        raise InvalidProposal(f"{where}.value must be a decimal string", field=f"{where}.value")
    return Action(kind, str(raw.get("target", "")), int(value))


def parse_delegation(raw: Mapping[str, Any]) -> Delegation:
    """A delegation from its wallet JSON (``delegator``, ``delegate``, ``proposalId``, ``expiry``)."""
    return Delegation(check_address(raw.get("delegator"), "delegator"), check_address(raw.get("delegate"), "delegate"),
                      check_uint(int(str(raw.get("proposalId", "-1"))), 256, "proposalId"),
                      Timestamp(check_uint(int(str(raw.get("expiry", "-1"))), 64, "expiry")))


def _delegation_json(d: Delegation) -> dict[str, Any]:
    return {"delegator": d.delegator, "delegate": d.delegate, "proposalId": str(d.proposal_id),
            "expiry": str(d.expiry)}


def compute_tally_json(tally: Tally) -> dict[str, Any]:
    """A tally with its digest (the value asserted on-chain); powers as decimal strings."""
    return {"strategy": str(tally.strategy), "for": str(tally.votes_for), "against": str(tally.votes_against),
            "abstain": str(tally.votes_abstain), "totalPower": str(tally.total_power),
            "quorumReached": tally.quorum_reached, "approved": tally.approved, "passed": tally.passed,
            "digest": _hex(compute_tally_digest(tally))}


def _decode_message(domain: Domain, name: str, payload: Mapping[str, Any]) -> Any:
    _, message = parse_typed_data({"types": compute_typed_data_types(name), "primaryType": name,
                                   "domain": domain.to_typed_data(), "message": payload["message"]})
    return message


@dataclass
class GovernanceService:
    """The forum, the ballots and the snapshots, plus the handlers that change them. Not
    thread-safe: the API runs it on the coordinator's worker thread."""

    store: Store
    """The node's durable log (shared with the coordinator)."""
    domain: Domain
    """The EIP-712 domain votes, posts and delegations are signed in."""
    snapshot_reader: SnapshotReader
    """Stake per account at a past second (read once, when a proposal's vote opens)."""
    config: GovernanceConfig = field(default_factory=GovernanceConfig)
    clock: Callable[[], int] | None = None
    """Unix seconds for handlers not given ``now`` (the chain's clock on a devnet)."""
    publish: Callable[[str, dict[str, Any]], int] | None = None
    """Commits and fans out an event (``Coordinator.publish``); ``None``: events go to the store only."""
    committee_reader: CommitteeReader | None = None
    """The hub's current committee, pinned by proposals with committee actions; ``None``: such
    proposals are refused (no hub to govern)."""
    forum: Forum = field(init=False)
    ballots: dict[tuple[int, Address], Ballot] = field(init=False, default_factory=dict)
    """Accepted votes by (proposal, voter)."""
    delegations: dict[Address, Delegation] = field(init=False, default_factory=dict)
    """The latest signed delegation of each delegator."""
    snapshots: dict[int, dict[Address, int]] = field(init=False, default_factory=dict)
    """Each open or closed proposal's stake snapshot (token base units)."""
    tallies: dict[int, Tally] = field(init=False, default_factory=dict)
    """The final tally of every proposal whose vote closed."""
    acks: dict[int, Ack] = field(init=False, default_factory=dict)
    keys: dict[tuple[str, str], tuple[int, str, dict[str, Any]]] = field(init=False, default_factory=dict)
    last_seq: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.forum = Forum(self.domain)

    # --- lifecycle -----------------------------------------------------------------------------

    def replay(self) -> int:
        """Rebuild the state from the log (call once on a fresh service); returns actions applied."""
        count = 0
        for record in self.store.iter_actions(self.last_seq):
            if record.kind in GOVERNANCE_KINDS:
                key = record.payload.get("idempotencyKey")
                if isinstance(key, str):
                    self.keys[(record.account or "", key)] = (record.seq, record.kind,
                                                              dict(record.payload.get("request", {})))
                self.acks[record.seq] = Ack(record.seq, record.kind,
                                            self._apply(record.kind, record.account, record.payload))
                count += 1
            self.last_seq = record.seq
        return count

    def now(self, now: int | None = None) -> Timestamp:
        """``now`` if given, else the clock's time."""
        if now is not None:
            return Timestamp(now)
        if self.clock is None:
            raise GovernanceError("no clock: pass now", field="now")
        return Timestamp(int(self.clock()))

    def _get(self, proposal_id: int) -> Proposal:
        proposal = self.forum.proposals.get(proposal_id)
        if proposal is None:
            raise UnknownProposal(f"no proposal {proposal_id}", field="proposalId")
        return proposal

    # --- idempotency and commit ----------------------------------------------------------------

    def _seen(self, account: str, key: str | None, kind: str, request: Mapping[str, Any]) -> Ack | None:
        if key is None:
            return None
        seen = self.keys.get((account, key))
        if seen is None:
            return None
        seq, seen_kind, seen_request = seen
        if seen_kind != kind or seen_request != dict(request):
            raise IdempotencyConflict(f"idempotency key {key!r} was used with another request",
                                      field="Idempotency-Key", seq=seq)
        ack = self.acks[seq]
        return Ack(ack.seq, ack.kind, ack.body, ack.error, duplicate=True)

    def _commit(self, kind: str, account: str | None, payload: dict[str, Any], key: str | None,
                request: Mapping[str, Any] | None, apply: Callable[[], dict[str, Any]]) -> Ack:
        if key is not None:
            payload = {**payload, "idempotencyKey": key, "request": dict(request or {})}
        record = self.store.append_action(kind, account, payload, key)
        if record.duplicate:  # logged under this key by an earlier process and replayed since
            ack = self.acks.get(record.seq)
            if ack is None:
                raise IdempotencyConflict(f"idempotency key {key!r} was used with another request",
                                          field="Idempotency-Key", seq=record.seq)
            return Ack(ack.seq, ack.kind, ack.body, ack.error, duplicate=True)
        if key is not None:
            self.keys[(account or "", key)] = (record.seq, kind, dict(request or {}))
        body = apply()
        ack = Ack(record.seq, kind, body)
        self.acks[record.seq] = ack
        self.last_seq = record.seq
        self._publish({"kind": kind, "seq": record.seq, **body})
        return ack

    def _publish(self, event: dict[str, Any]) -> None:
        if self.publish is not None:
            self.publish(CHANNEL, event)
        else:
            self.store.append_event(CHANNEL, event)

    # --- apply (shared by live handlers and replay) --------------------------------------------

    def _apply(self, kind: str, account: str | None, payload: Mapping[str, Any]) -> dict[str, Any]:
        now = Timestamp(int(payload["now"]))
        if kind == "gov_proposal":
            actions = [parse_action(a, i) for i, a in enumerate(payload["actions"])]
            committee = parse_committee(payload["committee"]) if "committee" in payload else None
            return self._apply_proposal(Address(str(account)), str(payload["title"]), str(payload["body"]),
                                        actions, now, committee)
        if kind == "gov_post":
            post: Post = _decode_message(self.domain, "Post", payload)
            return self._apply_post(post, bytes.fromhex(str(payload["signature"])[2:]), now)
        if kind == "gov_vote":
            vote: Vote = _decode_message(self.domain, "Vote", payload)
            return self._apply_vote(vote, bytes.fromhex(str(payload["signature"])[2:]), now)
        if kind == "gov_delegation":
            d = parse_delegation(payload["delegation"])
            return self._apply_delegation(d, bytes.fromhex(str(payload["signature"])[2:]), now)
        if kind == "gov_transition":
            return self._apply_transition(int(payload["proposalId"]), Status(str(payload["status"])),
                                          str(payload["note"]), now, payload.get("snapshot"))
        raise GovernanceError(f"unknown action kind {kind!r}", field="kind")

    def _apply_proposal(self, author: Address, title: str, body: str, actions: Sequence[Action],
                        now: Timestamp, committee: PinnedCommittee | None = None) -> dict[str, Any]:
        proposal = process_create_proposal(self.forum, author, title, body, actions, now, self.config.voting_delay,
                                           self.config.voting_period, self.config.bounds, committee)
        return {"proposalId": proposal.id, "status": str(proposal.status),
                "snapshotTime": int(proposal.snapshot_time), "votingStart": int(proposal.voting_start),
                "votingEnd": int(proposal.voting_end)}

    def _apply_post(self, post: Post, signature: bytes, now: Timestamp) -> dict[str, Any]:
        post_id = process_post(self.forum, post, signature, now)
        return {"proposalId": post.proposal_id, "postId": _hex(post_id), "author": post.author,
                "parent": _hex(post.parent)}

    def _apply_vote(self, vote: Vote, signature: bytes, now: Timestamp) -> dict[str, Any]:
        proposal = self._get(vote.proposal_id)
        process_vote(self.domain, self.ballots, proposal, vote, signature, self.snapshots.get(proposal.id, {}),
                     self.delegations, now)
        return {"proposalId": proposal.id, "voter": vote.voter, "choice": int(vote.choice),
                "power": str(self.snapshots.get(proposal.id, {}).get(vote.voter, 0))}

    def _apply_delegation(self, d: Delegation, signature: bytes, now: Timestamp) -> dict[str, Any]:
        process_delegation(self.domain, self.delegations, d, signature, now)
        return {**_delegation_json(d), "delegationId": _hex(compute_delegation_digest(self.domain, d))}

    def _apply_transition(self, proposal_id: int, status: Status, note: str, now: Timestamp,
                          snapshot: Mapping[str, Any] | None) -> dict[str, Any]:
        if status is Status.VOTING:
            process_open_voting(self.forum, proposal_id, now)
            self.snapshots[proposal_id] = {Address(k): int(v) for k, v in (snapshot or {}).items()}
        else:
            process_transition(self.forum, proposal_id, status, now, note)
        body: dict[str, Any] = {"proposalId": proposal_id, "status": str(status), "note": note, "time": int(now)}
        if status in (Status.PASSED, Status.FAILED) and proposal_id not in self.tallies:
            tally = self.get_tally(proposal_id)
            self.tallies[proposal_id] = tally
            body["tally"] = compute_tally_json(tally)
        return body

    # --- handlers ------------------------------------------------------------------------------

    def on_tick(self, now: int | None = None) -> list[Ack]:
        """Open the vote of every draft whose start has come (reading its snapshot) and close every
        vote whose end has passed (passed or failed by its tally); each move is logged."""
        t = self.now(now)
        acks = []
        for proposal in list(self.forum.proposals.values()):
            if proposal.status is Status.DRAFT and t >= proposal.voting_start:
                stake = self.snapshot_reader(proposal.snapshot_time)
                snapshot = {str(who): str(s) for who, s in sorted(stake.items()) if s > 0}
                acks.append(self._move(proposal.id, Status.VOTING, "voting opened", t, snapshot))
                proposal = self._get(proposal.id)
            if proposal.status is Status.VOTING and t > proposal.voting_end:
                passed = self.get_tally(proposal.id).passed
                acks.append(self._move(proposal.id, Status.PASSED if passed else Status.FAILED,
                                       "vote closed", t, None))
        return acks

    def _move(self, proposal_id: int, status: Status, note: str, now: Timestamp,
              snapshot: dict[str, str] | None) -> Ack:
        payload: dict[str, Any] = {"proposalId": proposal_id, "status": str(status), "note": note, "now": int(now)}
        if snapshot is not None:
            payload["snapshot"] = snapshot
        return self._commit("gov_transition", None, payload, None, None,
                            lambda: self._apply_transition(proposal_id, status, note, now, snapshot))

    def on_transition(self, proposal_id: int, status: Status, note: str, *, now: int | None = None) -> Ack:
        """Record a move the chain made: ``asserted`` (a result asserted), ``passed`` (that
        assertion overturned), ``queued``, ``executed`` or ``cancelled``; ``note`` says where
        (assertion id, transaction). Call it where the API calls the service (its worker thread,
        ``Api.run``) when an API is serving."""
        t = self.now(now)
        self.on_tick(t)
        if status not in _CHAIN_MOVES:
            raise GovernanceError(f"{status} is not decided on-chain", field="status")
        proposal = self._get(proposal_id)
        if status is Status.PASSED and proposal.status is not Status.ASSERTED:
            raise GovernanceError("only an asserted result can be overturned", field="status")
        process_transition(Forum(self.domain, {proposal_id: proposal}), proposal_id, status, t, note)  # dry run
        return self._move(proposal_id, status, note, t, None)

    def on_create_proposal(self, author: Address, title: str, body: str, actions: Sequence[Action], *,
                           now: int | None = None, idempotency_key: str | None = None) -> Ack:
        """A new draft by ``author`` (the session's account); its snapshot is the second before."""
        t = self.now(now)
        request = {"title": title, "body": body, "actions": [compute_action_json(a) for a in actions]}
        seen = self._seen(author, idempotency_key, "gov_proposal", request)
        if seen is not None:
            return seen
        self.on_tick(t)
        committee = None
        if any(a.kind is ActionKind.COMMITTEE for a in actions) and self.committee_reader is not None:
            committee = self.committee_reader()
        trial = Forum(self.domain)  # validate on a scratch forum: a refusal changes nothing
        trial.proposals = dict(self.forum.proposals)
        process_create_proposal(trial, author, title, body, actions, t, self.config.voting_delay,
                                self.config.voting_period, self.config.bounds, committee)
        payload: dict[str, Any] = {**request, "now": int(t)}
        if committee is not None:
            payload["committee"] = compute_committee_json(committee)
        return self._commit("gov_proposal", author, payload, idempotency_key, request,
                            lambda: self._apply_proposal(author, title, body, actions, t, committee))

    def on_post(self, post: Post, signature: bytes, *, now: int | None = None,
                idempotency_key: str | None = None) -> Ack:
        """A signed discussion post (a reply names a post of the same proposal)."""
        t = self.now(now)
        payload = encode_signed_payload(self.domain, post, signature, t)
        request = {"message": payload["message"], "signature": payload["signature"]}
        seen = self._seen(post.author, idempotency_key, "gov_post", request)
        if seen is not None:
            return seen
        self.on_tick(t)
        scratch = Forum(self.domain, {post.proposal_id: self._get(post.proposal_id)},
                        {post.proposal_id: dict(self.forum.posts.get(post.proposal_id, {}))})
        process_post(scratch, post, signature, t)  # dry run on a copy
        return self._commit("gov_post", post.author, payload, idempotency_key, request,
                            lambda: self._apply_post(post, signature, t))

    def on_vote(self, vote: Vote, signature: bytes, *, now: int | None = None,
                idempotency_key: str | None = None) -> Ack:
        """A signed vote: counted once, inside the voting window, with power from the snapshot."""
        t = self.now(now)
        payload = encode_signed_payload(self.domain, vote, signature, t)
        request = {"message": payload["message"], "signature": payload["signature"]}
        seen = self._seen(vote.voter, idempotency_key, "gov_vote", request)
        if seen is not None:
            return seen
        self.on_tick(t)
        proposal = self._get(vote.proposal_id)
        process_vote(self.domain, dict(self.ballots), proposal, vote, signature,
                     self.snapshots.get(proposal.id, {}), self.delegations, t)  # dry run on a copy
        return self._commit("gov_vote", vote.voter, payload, idempotency_key, request,
                            lambda: self._apply_vote(vote, signature, t))

    def on_delegate(self, delegation: Delegation, signature: bytes, *, now: int | None = None,
                    idempotency_key: str | None = None) -> Ack:
        """A signed delegation (a newer one from the same delegator replaces the older)."""
        t = self.now(now)
        request = {"delegation": _delegation_json(delegation), "signature": _hex(signature)}
        seen = self._seen(delegation.delegator, idempotency_key, "gov_delegation", request)
        if seen is not None:
            return seen
        if delegation.proposal_id:
            self._get(delegation.proposal_id)
        if delegation.delegator == delegation.delegate:
            raise GovernanceError("a delegation to oneself", field="delegate")
        if delegation.expiry < t:
            raise GovernanceError("the delegation has expired", field="expiry")
        verify_digest(compute_delegation_digest(self.domain, delegation), signature, delegation.delegator)
        return self._commit("gov_delegation", delegation.delegator, {**request, "now": int(t)}, idempotency_key,
                            request, lambda: self._apply_delegation(delegation, signature, t))

    # --- reads ---------------------------------------------------------------------------------

    def get_tally(self, proposal_id: int) -> Tally:
        """The tally of the accepted ballots over the snapshot (final once the vote closed)."""
        final = self.tallies.get(proposal_id)
        if final is not None:
            return final
        proposal = self._get(proposal_id)
        ballots = [b for (pid, _), b in self.ballots.items() if pid == proposal_id]
        return compute_tally(proposal, ballots, self.snapshots.get(proposal_id, {}), self.config.strategy,
                             self.delegations)

    def _summary_json(self, p: Proposal) -> dict[str, Any]:
        votes = sum(1 for (pid, _) in self.ballots if pid == p.id)
        tally = None if p.status is Status.DRAFT else compute_tally_json(self.get_tally(p.id))
        return {"id": p.id, "author": p.author, "title": p.title, "status": str(p.status),
                "actions": [compute_action_json(a) for a in p.actions], "snapshotTime": int(p.snapshot_time),
                "votingStart": int(p.voting_start), "votingEnd": int(p.voting_end), "votes": votes,
                "posts": len(self.forum.posts.get(p.id, {})), "tally": tally,
                "committee": None if p.committee is None else compute_committee_json(p.committee)}

    def get_proposal_json(self, proposal_id: int, now: int | None = None) -> dict[str, Any]:
        """One proposal: status, lifecycle, posts, votes, snapshot and tally (with its digest)."""
        self.on_tick(now)
        p = self._get(proposal_id)
        posts = [{"postId": _hex(pid), "author": post.author, "parent": _hex(post.parent), "body": post.body,
                  "expiry": str(post.expiry)} for pid, post in self.forum.posts.get(p.id, {}).items()]
        votes = [{"voter": b.vote.voter, "choice": int(b.vote.choice), "reason": b.vote.reason,
                  "expiry": str(b.vote.expiry), "signature": _hex(b.signature)}
                 for (pid, _), b in self.ballots.items() if pid == p.id]
        return {**self._summary_json(p), "body": p.body,
                "transitions": [{"previous": None if t.previous is None else str(t.previous),
                                 "status": str(t.status), "time": int(t.time), "note": t.note}
                                for t in p.transitions],
                "postList": posts, "voteList": votes,
                "snapshot": {who: str(s) for who, s in sorted(self.snapshots.get(p.id, {}).items())}}

    def list_proposals_json(self, now: int | None = None) -> list[dict[str, Any]]:
        """The latest proposals, newest first, without their posts and votes."""
        self.on_tick(now)
        latest = sorted(self.forum.proposals.values(), key=lambda p: -p.id)[:MAX_LIST]
        return [self._summary_json(p) for p in latest]

    def get_state_fingerprint(self) -> dict[str, Any]:
        """Everything replay must reproduce, as comparable plain data (tests, audits)."""
        return {"proposals": {pid: (p.status, p.transitions) for pid, p in sorted(self.forum.proposals.items())},
                "posts": {pid: sorted(_hex(k) for k in posts) for pid, posts in sorted(self.forum.posts.items())},
                "ballots": sorted((pid, who, int(b.vote.choice)) for (pid, who), b in self.ballots.items()),
                "delegations": {k: _delegation_json(d) for k, d in sorted(self.delegations.items())},
                "snapshots": {pid: dict(sorted(s.items())) for pid, s in sorted(self.snapshots.items())},
                "acks": {s: a.body for s, a in sorted(self.acks.items())}}


def _read_stake_at(bonds: Any, who: Address, role: int, timestamp: Timestamp) -> int:
    return int(bonds.call("stake_at", who, role, timestamp))


def build_governance_service(store: Store, domain: Domain, chain: Chain, deployment: Mapping[str, Any],
                             config: GovernanceConfig | None = None) -> GovernanceService | None:
    """The node's forum over ``store`` (replayed), its clock the chain's and its snapshot every
    ``Bonds`` of the deployment (stake of every address that ever bonded, all roles, summed);
    ``None`` if the deployment names no ``Bonds``."""
    addresses = list(dict.fromkeys(str(part["bonds"]) for part in (deployment.get("settlement", {}),
                                                                    deployment.get("oracle", {})) if "bonds" in part))
    if not addresses:
        return None
    registries = [chain.at("Bonds", a) for a in addresses]

    def reader(t: Timestamp) -> dict[Address, int]:
        total: dict[Address, int] = {}
        for bonds in registries:
            stakers = sorted({Address(e.args["who"]) for _, e in chain.get_events(bonds.address) if e.name == "Bonded"})
            stake = read_stake_snapshot(partial(_read_stake_at, bonds), stakers, t)
            for who, amount in stake.items():
                total[who] = total.get(who, 0) + amount
        return total

    service = GovernanceService(store, domain, reader, config or GovernanceConfig(), clock=chain.now,
                                committee_reader=build_committee_reader(chain, deployment))
    service.replay()
    return service


@dataclass
class GovernanceWatcher:
    """Follows the ``Assertions`` and the ``Governor`` on the chain and records in the forum the
    moves they make: a result asserted (an assertion aimed at the Governor whose claim is the one a
    passed proposal's true tally gives), that assertion overturned, queued, executed, cancelled.

    An assertion on the Governor that matches no passed proposal's true result is kept in
    :attr:`unmatched`: it is a wrong tally (or a result of another forum) and worth disputing.
    Each move's note names its assertion or event, so reading the chain again from block 0 (after a
    restart) records nothing twice.
    """

    service: GovernanceService
    chain: Chain
    governor: Contract
    assertions: Contract
    parameters: Contract
    """The ``ParameterStore`` the proposals' parameter and fee actions target."""
    hub: Contract | None = None
    """The ``OracleHub`` committee actions target (``None``: they match nothing)."""
    settlement: Contract | None = None
    """The ``Settlement`` coordinator actions target (``None``: they match nothing)."""
    matched: dict[int, int] = field(default_factory=dict)
    """Assertion id -> the proposal whose true result it claims."""
    unmatched: dict[int, bytes] = field(default_factory=dict)
    """Assertion id -> claim, for claims on the Governor no passed proposal's true result gives."""

    def compute_true_claim(self, proposal: Proposal) -> bytes:
        """The claim of ``proposal``'s tally as the node counted it, for its pinned actions."""
        actions = compute_onchain_actions(proposal.actions, self.get_targets(), proposal.committee)
        return compute_claim(proposal.id, actions, compute_tally_digest(self.service.get_tally(proposal.id)))

    def get_targets(self) -> ActionTargets:
        """The contracts actions execute against, with their runtime code hashes now."""
        def code_hash(c: Contract | None) -> bytes:
            return b"" if c is None else keccak256(self.chain.get_code(c.address))
        return ActionTargets(self.parameters.address, code_hash(self.parameters),
                             None if self.hub is None else self.hub.address, code_hash(self.hub),
                             None if self.settlement is None else self.settlement.address, code_hash(self.settlement))

    def _record(self, proposal_id: int, status: Status, note: str) -> Ack | None:
        proposal = self.service.forum.proposals.get(proposal_id)
        if proposal is None or any(t.note == note for t in proposal.transitions):
            return None
        try:
            return self.service.on_transition(proposal_id, status, note, now=self.chain.now())
        except GovernanceError:  # not a legal move from where the forum stands (e.g. already executed)
            return None

    def on_tick(self) -> list[Ack]:
        """Move the forum to chain time, then read every event of the two contracts in chain order
        and record the moves not yet recorded; returns the acks of everything logged."""
        ticks = self.service.on_tick(self.chain.now())
        events = sorted([*self.chain.get_events(self.assertions.address), *self.chain.get_events(self.governor.address)],
                        key=lambda pair: (pair[0].block_number, pair[0].log_index))
        acks: list[Ack | None] = []
        for _, event in events:
            args = event.args
            if event.name == "ClaimAsserted" and str(args["target"]).lower() == self.governor.address.lower():
                acks.append(self._on_asserted(int(args["assertion_id"]), bytes(args["claim"])))
            elif event.name == "ClaimSettled" and not args["truthful"] and int(args["assertion_id"]) in self.matched:
                aid = int(args["assertion_id"])
                acks.append(self._record(self.matched[aid], Status.PASSED, f"assertion {aid} overturned"))
            elif event.name == "Queued":
                acks.append(self._record(int(args["proposal_id"]), Status.QUEUED,
                                         f"queued on assertion {args['assertion_id']}, executable at {args['eta']}"))
            elif event.name == "Executed":
                acks.append(self._record(int(args["proposal_id"]), Status.EXECUTED, "executed on-chain"))
            elif event.name == "Cancelled":
                acks.append(self._record(int(args["proposal_id"]), Status.CANCELLED, "cancelled by the guardian"))
        return [*ticks, *(a for a in acks if a is not None)]

    def _on_asserted(self, assertion_id: int, claim: bytes) -> Ack | None:
        if assertion_id in self.matched or assertion_id in self.unmatched:
            return None
        for proposal in self.service.forum.proposals.values():
            if proposal.id not in self.service.tallies or not self.service.tallies[proposal.id].passed:
                continue
            try:
                true_claim = self.compute_true_claim(proposal)
            except InvalidProposal:  # committee / coordinator actions: no hub or settlement named
                continue
            if true_claim == claim:
                self.matched[assertion_id] = proposal.id
                return self._record(proposal.id, Status.ASSERTED, f"assertion {assertion_id}")
        self.unmatched[assertion_id] = claim
        return None


def build_governance_watcher(service: GovernanceService, chain: Chain,
                             deployment: Mapping[str, Any]) -> GovernanceWatcher | None:
    """The watcher of the deployment's Governor (``deployment["governance"]``: ``governor``,
    ``assertions``, ``parameters`` and, if governed, ``hub`` and ``settlement``, as ``clearhouse
    devnet`` writes them) recording into ``service``'s forum; ``None`` if it names no Governor."""
    g = deployment.get("governance", {})
    if not {"governor", "assertions", "parameters"} <= set(g):
        return None
    return GovernanceWatcher(service, chain, chain.at("Governor", str(g["governor"])),
                             chain.at("Assertions", str(g["assertions"])),
                             chain.at("ParameterStore", str(g["parameters"])),
                             chain.at("OracleHub", str(g["hub"])) if "hub" in g else None,
                             chain.at("Settlement", str(g["settlement"])) if "settlement" in g else None)


def build_committee_reader(chain: Chain, deployment: Mapping[str, Any]) -> CommitteeReader | None:
    """Reads the governed feed's committee from the deployment's hub (``deployment["governance"]``:
    ``hub`` and ``feed_id``); ``None`` if it names none."""
    g = deployment.get("governance", {})
    if not {"hub", "feed_id"} <= set(g):
        return None
    hub = chain.at("OracleHub", str(g["hub"]))
    feed = bytes.fromhex(str(g["feed_id"])[2:])

    def read() -> PinnedCommittee:
        return PinnedCommittee(feed, tuple(str(m) for m in hub.call("members", feed)))
    return read


def run_governance_loop(watcher: GovernanceWatcher, executor: Executor, stop: threading.Event,
                        seconds: float = 1.0) -> None:
    """Tick ``watcher`` on ``executor`` (the node's worker thread: the forum shares the
    coordinator's store) every ``seconds`` until ``stop`` is set; a failed tick is logged and
    retried at the next one."""
    while not stop.is_set():
        try:
            executor.submit(watcher.on_tick).result()
        except Exception:  # the watcher keeps running through one bad tick; the log says why
            if stop.is_set():
                return  # the executor shut down with the server
            logging.getLogger("clearhouse.governance").exception("governance tick failed")
        stop.wait(seconds)
