"""The governance API end to end through the SDK against a real uvicorn server: a node over SQLite
whose stake snapshot is read from a real ``Bonds`` on the in-process chain (the chain's clock is the
node's governance clock). Proposals, signed posts, delegations and votes; every refusal (bad input,
bad signature, another account's message, early, late, duplicate or powerless vote) is a specific
4xx that stores nothing; the tally anyone recomputes from the published signed votes is the node's;
the ``governance`` channel carries every event; a restart replays to the same state."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from clearhouse.api.app import ApiLimits, create_app
from clearhouse.api.server import ServerThread
from clearhouse.chain import Contract
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.disputes import Role
from clearhouse.errors import (
    DuplicateVote,
    Forbidden,
    IdempotencyConflict,
    InvalidProposal,
    InvalidRequest,
    NoVotingPower,
    UnknownProposal,
    VotingClosed,
    WrongSigner,
)
from clearhouse.governance.proposals import Action, ActionKind, PinnedCommittee, Status
from clearhouse.governance.snapshot import read_stake_snapshot
from clearhouse.governance.votes import Ballot, Strategy, compute_tally, compute_tally_digest
from clearhouse.messages import Choice, Post, Vote, sign
from clearhouse.node.coordinator import Coordinator
from clearhouse.node.governance import GovernanceConfig, GovernanceService
from clearhouse.sdk import AsyncClient, Client
from clearhouse.sim import market_world as mw
from clearhouse.sim.oracle_hub import deploy_oracle_system
from clearhouse.store import Store, open_store
from clearhouse.types import Address, Digest, Seconds, Timestamp

HOUR, DAY = 3600, 86_400
EXAMPLES = max(4, int(os.environ.get("API_FUZZ_EXAMPLES", "12")) * 2 // 3)
"""Fewer than ``test_schemathesis.py``: every accepted proposal makes later fingerprints longer."""
TIGHTER = Action(ActionKind.PARAMETER, "max_positions", 4)
CONFIG = GovernanceConfig(voting_delay=Seconds(HOUR), voting_period=Seconds(DAY), strategy=Strategy.DELEGATED)


@dataclass
class GovNode:
    url: str
    chain: InProcessChain
    bonds: Contract
    store: Store
    coordinator: Coordinator
    governance: GovernanceService
    server: ServerThread
    accounts: list[LocalAccount]

    def stop(self) -> None:
        self.server.stop()
        self.store.close()

    def log_length(self) -> int:
        return self.store.get_last_action_seq()

    def bond(self, who: LocalAccount, amount: int) -> None:
        token = self.chain.at("mocks/TestToken", str(self.bonds.call("token")))
        token.transact("mint", who.address, amount)
        token.transact("approve", self.bonds.address, amount, sender=who)
        self.bonds.transact("bond", int(Role.ARBITRATOR), amount, sender=who)


def _service(store: Store, chain: InProcessChain, bonds: Contract, accounts: list[LocalAccount]) -> GovernanceService:
    def stake_at(who: Address, role: int, t: Timestamp) -> int:
        return int(bonds.call("stake_at", who, role, t))
    reader = lambda t: read_stake_snapshot(stake_at, [Address(a.address) for a in accounts], t)  # noqa: E731
    service = GovernanceService(store, mw.DOMAIN, reader, CONFIG, clock=chain.now)
    service.replay()
    return service


def _start(db: Path, chain: InProcessChain, bonds: Contract, accounts: list[LocalAccount]) -> GovNode:
    store = open_store(f"sqlite:///{db}")
    listings, _ = mw.build_listings()
    coordinator = Coordinator(store, mw.DOMAIN, listings, mw.UNIT)
    coordinator.replay()
    governance = _service(store, chain, bonds, accounts)
    app = create_app(coordinator, limits=ApiLimits(rate_per_second=1000, burst=1000), governance=governance)
    server = ServerThread.start(app)
    return GovNode(server.url, chain, bonds, store, coordinator, governance, server, accounts)


@pytest.fixture
def gov_node(tmp_path: Path) -> Iterator[GovNode]:
    chain = InProcessChain()
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bonds = chain.deploy("Bonds", token.address, 7 * DAY)
    node = _start(tmp_path / "node.db", chain, bonds, list(chain.accounts[1:7]))
    for who, stake in zip(node.accounts[:3], (400, 300, 200), strict=True):
        node.bond(who, stake * 10**6)
    chain.time_travel(10)
    yield node
    node.stop()


def _client(node: GovNode, i: int) -> Client:
    c = Client(node.url, bytes(node.accounts[i].key))
    c.sign_in()
    return c


def _refused(node: GovNode, error: type[Exception], fn: object, *args: object, **kwargs: object) -> Exception:
    """``fn`` raises ``error`` and the log does not grow."""
    node.governance.on_tick()  # lifecycle moves due now are not part of the refusal
    before = node.log_length()
    with pytest.raises(error) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert node.log_length() == before
    return info.value


def test_forum_votes_tally_and_refusals_through_the_sdk(gov_node: GovNode) -> None:
    node, chain = gov_node, gov_node.chain
    alice, bob, carol, eve = (_client(node, i) for i in (0, 1, 2, 4))
    try:
        # proposals: bad input refused with the field named, nothing stored
        err = _refused(node, InvalidProposal, alice.create_proposal, "Too far", "",
                       [Action(ActionKind.PARAMETER, "max_positions", 99)])
        assert err.field == "actions"  # type: ignore[attr-defined]
        _refused(node, InvalidProposal, alice.create_proposal, "Unknown", "", [Action(ActionKind.PARAMETER, "admin", 1)])
        bad_kind = _refused(node, InvalidRequest, alice.post, "/v1/governance/proposals",
                            {"title": "x", "body": "", "actions": [{"kind": "mint", "target": "x", "value": "1"}]})
        assert bad_kind.field == "actions[0].kind"  # type: ignore[attr-defined]
        created = alice.create_proposal("Fewer positions", "Halve the positions an account may hold.", [TIGHTER],
                                        key="p1")
        pid = created["result"]["proposalId"]
        assert (pid, created["result"]["status"]) == (1, "draft")
        again = alice.create_proposal("Fewer positions", "Halve the positions an account may hold.", [TIGHTER], key="p1")
        assert again["duplicate"] is True and again["seq"] == created["seq"]
        _refused(node, IdempotencyConflict, alice.create_proposal, "Another", "", [TIGHTER], key="p1")

        # signed posts: threaded, forged and foreign ones refused
        top = bob.forum_post(pid, "Is 10 % enough for a fast market?")["result"]
        reply = alice.forum_post(pid, "It is the 99th percentile move.", Digest(bytes.fromhex(top["postId"][2:])))
        assert reply["result"]["parent"] == top["postId"]
        domain = mw.DOMAIN
        forged = Post(Address(bob.account), pid, Digest(bytes(32)), "signed by carol", Timestamp(chain.now() + HOUR))
        body = {"message": forged.to_typed_data(domain)["message"],
                "signature": "0x" + sign(domain, forged, bytes(node.accounts[2].key)).hex()}
        assert _refused(node, WrongSigner, bob.post, "/v1/governance/posts", body).field == "signature"  # type: ignore[attr-defined]
        _refused(node, Forbidden, carol.post, "/v1/governance/posts", body)
        orphan = _refused(node, Exception, carol.forum_post, pid, "reply to nothing", Digest(b"\x01" * 32))
        assert getattr(orphan, "code", None) == "governance_error"
        _refused(node, UnknownProposal, carol.forum_post, 99, "no such proposal")

        # a flash staker bonds after the snapshot; bob delegates to alice before the vote opens
        node.bond(node.accounts[4], 10_000 * 10**6)
        bob.delegate(Address(alice.account), pid)
        _refused(node, VotingClosed, alice.vote, pid, Choice.FOR)  # not open yet
        chain.time_travel(HOUR + 1)
        alice.vote(pid, Choice.FOR, "limits protect the exit path")
        carol.vote(pid, Choice.AGAINST, "too tight for volatile weeks", key="v-carol")
        assert carol.vote(pid, Choice.AGAINST, "too tight for volatile weeks", key="v-carol")["duplicate"] is True
        _refused(node, DuplicateVote, carol.vote, pid, Choice.FOR)
        _refused(node, NoVotingPower, eve.vote, pid, Choice.AGAINST)
        with httpx.Client() as raw:  # the HTTP statuses a wallet would see
            r = raw.get(f"{node.url}/v1/governance/proposals/99")
            assert (r.status_code, r.json()["code"]) == (404, "unknown_proposal")

        live = alice.get_proposal(pid)
        assert live["status"] == "voting" and live["tally"]["for"] == str(700 * 10**6)
        assert live["snapshot"] == {a.address: str(s * 10**6) for a, s in zip(node.accounts[:3], (400, 300, 200),
                                                                             strict=True)}
        chain.time_travel(DAY)
        _refused(node, VotingClosed, bob.vote, pid, Choice.AGAINST)
        done = alice.get_proposal(pid)
        assert done["status"] == "passed"
        assert [t["status"] for t in done["transitions"]] == ["draft", "voting", "passed"]
        assert [p["postId"] for p in done["postList"]] == [top["postId"], reply["result"]["postId"]]
        # anyone recomputes the tally from the published signed votes and the snapshot
        proposal = node.governance.forum.proposals[pid]
        ballots = [Ballot(Vote(Address(v["voter"]), pid, Choice(v["choice"]), v["reason"], Timestamp(int(v["expiry"]))),
                          bytes.fromhex(v["signature"][2:])) for v in done["voteList"]]
        snapshot = {Address(k): int(v) for k, v in done["snapshot"].items()}
        recomputed = compute_tally(proposal, ballots, snapshot, Strategy.DELEGATED, node.governance.delegations)
        assert done["tally"]["digest"] == "0x" + compute_tally_digest(recomputed).hex()
        assert (done["tally"]["for"], done["tally"]["against"]) == (str(700 * 10**6), str(200 * 10**6))
        assert [p["id"] for p in alice.list_proposals()] == [pid]
        # the chain's moves are recorded by the node's watcher
        node.governance.on_transition(pid, Status.ASSERTED, "assertion 1")
        assert alice.get_proposal(pid)["status"] == "asserted"
        # every event went out on the governance channel, in order
        events = []
        for event in alice.subscribe(["governance"]):
            events.append(event["data"])
            if event["data"].get("status") == "asserted":
                break
        kinds = [e["kind"] for e in events]
        assert kinds.count("gov_vote") == 2 and kinds.count("gov_post") == 2 and kinds[0] == "gov_proposal"
    finally:
        for c in (alice, bob, carol, eve):
            c.close()


def test_async_client_and_replay_after_restart(gov_node: GovNode, tmp_path: Path) -> None:
    node = gov_node

    async def run() -> int:
        async with AsyncClient(node.url, bytes(node.accounts[0].key)) as c:
            await c.sign_in()
            ack = await c.create_proposal("Raise K", "Fewer checkpoints.", [
                Action(ActionKind.PARAMETER, "checkpoint_interval", 12)])
            await c.forum_post(ack["result"]["proposalId"], "cheaper batches")
            return int(ack["result"]["proposalId"])
    pid = asyncio.run(run())
    node.chain.time_travel(HOUR + 1)
    with _client(node, 1) as bob:
        bob.vote(pid, Choice.FOR)
    before = node.governance.get_state_fingerprint()
    node.stop()
    restarted = _start(tmp_path / "node.db", node.chain, node.bonds, node.accounts)
    gov_node.server, gov_node.store = restarted.server, restarted.store  # the fixture stops these
    assert restarted.governance.get_state_fingerprint() == before
    assert len(restarted.governance.ballots) == 1


def test_committee_and_coordinator_proposals_through_the_sdk(gov_node: GovNode, tmp_path: Path) -> None:
    """Membership kinds go through the same create-proposal path: a committee change is checked
    against the committee a real ``OracleHub`` holds and pinned in the proposal (and its log entry,
    so a restart replays it without the hub); one that would break ``3f+1`` is refused, storing nothing."""
    node = gov_node
    oracle = deploy_oracle_system(node.chain, 1)
    feed = bytes(oracle.committee.feed_id)
    node.governance.committee_reader = lambda: PinnedCommittee(
        feed, tuple(str(m) for m in oracle.hub.call("members", feed)))
    members, outsider = list(oracle.committee.members), node.accounts[5].address
    with _client(node, 0) as alice:
        err = _refused(node, InvalidProposal, alice.create_proposal, "One more", "",
                       [Action(ActionKind.COMMITTEE, outsider, 1)])
        assert err.field == "actions" and "3f+1" in str(err)  # type: ignore[attr-defined]
        dup = _refused(node, InvalidProposal, alice.create_proposal, "Twice", "",
                       [Action(ActionKind.COMMITTEE, members[1], 1)])
        assert dup.field == "actions"  # type: ignore[attr-defined]
        swap = [Action(ActionKind.COMMITTEE, members[0], 0), Action(ActionKind.COMMITTEE, outsider, 1)]
        pid = alice.create_proposal("Rotate a member", "", swap)["result"]["proposalId"]
        shown = alice.get_proposal(pid)
        assert shown["committee"] == {"feedId": "0x" + feed.hex(), "members": members}
        assert [a["kind"] for a in shown["actions"]] == ["committee", "committee"]
        cid = alice.create_proposal("New coordinator", "", [Action(ActionKind.COORDINATOR, outsider, 1)])["result"][
            "proposalId"]
        assert alice.get_proposal(cid)["committee"] is None
    before = node.governance.get_state_fingerprint()
    node.stop()
    restarted = _start(tmp_path / "node.db", node.chain, node.bonds, node.accounts)  # no hub reader
    gov_node.server, gov_node.store = restarted.server, restarted.store
    assert restarted.governance.get_state_fingerprint() == before
    assert restarted.governance.forum.proposals[pid].committee == PinnedCommittee(feed, tuple(members))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_fuzz_governance_routes(gov_node: GovNode, mode: GenerationMode) -> None:
    """Schemathesis over the governance operations only (the rest: ``test_schemathesis.py``): no
    5xx, every 4xx is ``{code, field, message}`` and leaves the log and the forum unchanged."""
    node = gov_node
    with _client(node, 0) as c:
        token = c.token
        c.create_proposal("Raise K", "", [Action(ActionKind.PARAMETER, "checkpoint_interval", 12)])
    schema = schemathesis.openapi.from_url(node.url + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/v1/governance")]
    assert len(operations) == 6
    statuses: Counter[int] = Counter()
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            before = (node.log_length(), node.governance.get_state_fingerprint())
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex,
                       **(case.headers or {})}
            response = case.call(base_url=node.url, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"code", "field", "message"} and body["code"] and body["field"], body
                assert (node.log_length(), node.governance.get_state_fingerprint()) == before, body
        with contextlib.suppress(Unsatisfiable):  # nothing to negate (no parameters, no body)
            run()
    assert sum(statuses.values()) >= EXAMPLES and not any(s >= 500 for s in statuses)
