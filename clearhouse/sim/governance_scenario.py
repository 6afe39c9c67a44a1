"""The governance part of the demo: a risk parameter changed in the open.

Four stakers bond; a proposal to lower ``max_positions`` (a risk limit every batch is judged by) is
opened in the node's forum
(a ``GovernanceService`` over SQLite, its clock the chain's), discussed with signed posts and voted
with signed EIP-712 votes whose power is the stake snapshot of the second before the proposal. A
wrong tally is asserted first, disputed by a staker who recomputed it from the signed votes and
overturned by the bonded arbitrators (the node's ``GovernanceWatcher`` flags the claim: it matches no
passed proposal's true result); the true tally is then asserted, settles undisputed, is
queued, waits out a timelock longer than a user's exit time (``T_force + W + MAX_PAUSE``) and
executes: the ``ParameterStore`` the settlement's window verifier reads records the new value as a
new version that applies from the next batch. Batches before it are built and verified under the old
version, the batch after it under the new one, and a batch still built under the old version after
the boundary is refused on-chain. The dashboard's governance view is computed from the chain and the
forum at the end, as the node would serve it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain
from clearhouse.dashboard.views import ChainSource, SystemContracts
from clearhouse.errors import ContractRevert
from clearhouse.governance.proposals import Action, ActionKind, Status
from clearhouse.governance.snapshot import read_stake_snapshot
from clearhouse.governance.votes import Ballot, Strategy, compute_tally, compute_tally_digest
from clearhouse.messages import Choice, Domain, Post, Vote, sign
from clearhouse.messages.fast import compute_post_digest
from clearhouse.node.governance import GovernanceConfig, GovernanceService, GovernanceWatcher
from clearhouse.params import load_params
from clearhouse.settlement import TickOp
from clearhouse.sim.governance_chain import (
    HOUR,
    USDC,
    GovernanceSystem,
    compute_claim,
    deploy_governance_system,
)
from clearhouse.store import Store, open_store
from clearhouse.types import Address, ChainId, Digest, Seconds, Timestamp

__all__ = ["PROPOSAL_ACTION", "STAKES", "play_governance_scenario", "run_governance_scenario"]

PROPOSAL_ACTION = Action(ActionKind.PARAMETER, "max_positions", 6)
"""The change voted on: an account may hold at most 6 open positions (was 8), a limit the
settlement's window verifier enforces on every batch from the one after execution."""
STAKES = (4_000, 3_000, 2_000, 1_000)
"""Whole USDC bonded by the four stakers (``accounts[2..5]``)."""
_CHOICES = (Choice.FOR, Choice.FOR, Choice.AGAINST, Choice.ABSTAIN)
_DISCUSSION: tuple[tuple[int, int | None, str], ...] = (
    (2, None, "Six positions cannot hold a condor and its hedge: makers will need two accounts."),
    (0, 0, "A second account is cheap; a smaller leaf keeps every fraud proof further from the gas limit."),
    (1, None, "Supported: open positions above six stay open, only new ones are refused."),
)
"""(staker, index of the post replied to, text)."""


def _post(service: GovernanceService, domain: Domain, who: LocalAccount, proposal_id: int, parent: Digest,
          text: str, now: int) -> Digest:
    post = Post(Address(who.address), proposal_id, parent, text, Timestamp(now + HOUR))
    service.on_post(post, sign(domain, post, bytes(who.key)))
    return compute_post_digest(domain, post)


def run_governance_scenario(chain: Chain, out_dir: Path, log: Callable[[str], None],
                            detail: Callable[[str], None], *, dispute: bool = True) -> dict[str, Any]:
    """Run the scenario on ``chain`` with the forum's database at ``out_dir/governance.db``
    (replaced); returns its figures. ``dispute`` adds the wrong tally and its overturning."""
    db = out_dir / "governance.db"
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = open_store(f"sqlite:///{db}")
    try:
        return play_governance_scenario(chain, store, log, detail, dispute=dispute)[2]
    finally:
        store.close()


def play_governance_scenario(chain: Chain, store: Store, log: Callable[[str], None], detail: Callable[[str], None],
                             *, dispute: bool = True) -> tuple[GovernanceSystem, GovernanceService, dict[str, Any]]:
    """The scenario over an open ``store``: the deployed system, the node's forum (left running on
    the chain's clock) and the figures."""
    gov = deploy_governance_system(chain)
    stakers = list(chain.accounts[2:6])
    for who, stake in zip(stakers, STAKES, strict=True):
        gov.bond(who, stake * USDC)
    chain.time_travel(1)
    gov.post_batch()
    params = load_params("devnet")
    domain = Domain(params.eip712_name, params.eip712_version, ChainId(chain.chain_id), Address(gov.governor.address))
    everyone = [Address(a.address) for a in chain.accounts[1:9]]
    service = GovernanceService(
        store, domain, lambda t: read_stake_snapshot(gov.stake_at, everyone, t),
        GovernanceConfig(voting_delay=Seconds(HOUR), voting_period=Seconds(86_400), strategy=Strategy.STAKE),
        clock=chain.now, committee_reader=lambda: gov.committee)
    return gov, service, _run(gov, service, domain, stakers, log, detail, dispute)


def _run(gov: GovernanceSystem, service: GovernanceService, domain: Domain, stakers: list[LocalAccount],
         log: Callable[[str], None], detail: Callable[[str], None], dispute: bool) -> dict[str, Any]:
    chain = gov.chain
    action = PROPOSAL_ACTION
    before = gov.get_parameter(action.target)
    created = service.on_create_proposal(Address(stakers[0].address), "Fewer open positions per account",
                                         "Lower max_positions from 8 to 6: smaller leaves, cheaper fraud proofs.",
                                         [action])
    pid = int(created.body["proposalId"])
    log(f"governance: proposal #{pid} '{action.target}' {before} → {action.value} opened in the node's forum; "
        f"{len(stakers)} stakers bonded {sum(STAKES):,} USDC (snapshot: the second before)")
    ids: list[Digest] = []
    for index, parent, text in _DISCUSSION:
        ids.append(_post(service, domain, stakers[index], pid, Digest(bytes(32)) if parent is None else ids[parent],
                         text, chain.now()))
    detail(f"discussed: {len(ids)} signed posts (one reply threaded under its parent)")
    chain.time_travel(HOUR + 1)
    service.on_tick()
    for who, choice in zip(stakers, _CHOICES, strict=True):
        vote = Vote(Address(who.address), pid, choice, "", Timestamp(chain.now() + HOUR))
        service.on_vote(vote, sign(domain, vote, bytes(who.key)))
    chain.time_travel(86_400)
    service.on_tick()
    tally = service.get_tally(pid)
    proposal = service.forum.proposals[pid]
    detail(f"voted by {len(stakers)} stakers (EIP-712): for {tally.votes_for // USDC:,}, against "
           f"{tally.votes_against // USDC:,}, abstain {tally.votes_abstain // USDC:,} USDC of stake → {proposal.status}")
    digest = compute_tally_digest(tally)
    keeper = chain.accounts[8]
    watcher = GovernanceWatcher(service, chain, gov.governor, gov.assertions, gov.parameters, gov.oracle.hub,
                                gov.settlement.settlement)
    overturned = False
    if dispute:
        wrong = replace(tally, votes_against=0, votes_abstain=0)
        wrong_id = gov.assert_result(chain.accounts[7], pid, [action], compute_tally_digest(wrong))
        watcher.on_tick()
        if wrong_id not in watcher.unmatched:
            raise RuntimeError("the node's watcher took the wrong tally for the proposal's result")
        ballots = [Ballot(b.vote, b.signature) for b in service.ballots.values()]
        recomputed = compute_tally(proposal, ballots, service.snapshots[pid], Strategy.STAKE)
        asserted = bytes(gov.assertions.call("get_assertion", wrong_id)[2])
        truth = compute_claim(pid, gov.onchain_actions([action]), compute_tally_digest(recomputed))
        dispute_id = gov.dispute(stakers[2], wrong_id)
        gov.arbitrate(dispute_id, {w: asserted == truth for w in stakers}, {w: os.urandom(32) for w in stakers})
        overturned = gov.settle(wrong_id) == (True, False)
        if not overturned:
            raise RuntimeError("the wrong tally was not overturned")
        payout = int(gov.assertions.call("get_assertion", wrong_id)[11])
        detail(f"a wrong tally (against and abstain dropped) asserted: the node's watcher finds its claim matches "
               f"no passed proposal's signed votes; a staker recomputes, disputes, and {len(stakers)} arbitrators "
               f"rule it false (commit-reveal): disputer paid {payout / USDC:,.0f} USDC of the asserter's bond")
    assertion_id = gov.assert_result(keeper, pid, [action], digest)
    watcher.on_tick()
    chain.time_travel(int(gov.disputes.min_liveness) + 1)
    if gov.settle(assertion_id) != (True, True):
        raise RuntimeError("the true tally did not settle truthful")
    gov.queue(pid, digest, [action], assertion_id)
    watcher.on_tick()
    log(f"governance: tally 0x{digest.hex()[:12]}… asserted with a {gov.disputes.min_bond // USDC:,} USDC bond, "
        f"undisputed for {gov.disputes.min_liveness // 60} min, queued behind a {gov.delay / 3600:.0f} h timelock "
        f"(longer than the longest exit time, T_force + W + max pause at their largest governed values, "
        f"{gov.exit_time / 3600:.0f} h)")
    gov.post_batch()
    chain.time_travel(gov.delay)
    changed = gov.execute(pid, [action])[0]
    watcher.on_tick()
    version = int(changed["version"])
    from_batch = int(changed["from_batch"])
    refused = _refuse_stale_batch(gov, version - 1)
    batch = gov.post_batch()
    if int(gov.parameters.call("version_at", from_batch)) != version or \
            int(gov.parameters.call("version_at", from_batch - 1)) != version - 1:
        raise RuntimeError("the new version does not apply exactly from its batch")
    built = {p.result.header.number: p.result.header.parameter_version for p in gov.settlement.posted}
    before_batches = [int(n) for n, v in built.items() if v == version - 1]
    after_batches = [int(n) for n, v in built.items() if v == version]
    if batch != from_batch or after_batches != [from_batch] or max(before_batches) != from_batch - 1 or \
            gov.settlement.context(batch).max_positions != action.value:
        raise RuntimeError("the batch after the boundary was not built under the new version")
    if [t.status for t in service.forum.proposals[pid].transitions][-3:] != [
            Status.ASSERTED, Status.QUEUED, Status.EXECUTED]:
        raise RuntimeError("the node's forum did not follow the chain")
    view = ChainSource(chain, SystemContracts(token=gov.token, settlement=gov.settlement.settlement,
                                              governor=gov.governor, parameters=gov.parameters),
                       governance=service.list_proposals_json).get_governance()
    shown = view["changes"][-1]
    if (shown["parameter"], int(shown["value"]), shown["from_batch"], shown["proposal"]) != (
            action.target, action.value, from_batch, pid):
        raise RuntimeError("the dashboard's governance view does not show the change")
    applies = f"applies from batch {from_batch}, version {version}"
    log(f"governance: executed after the timelock: {action.target} = {changed['value']} {applies} "
        f"(batches {_span(before_batches)} built and judged under version {version - 1}, {action.target} {before}; "
        f"batch {batch} under version {version}, {action.target} {action.value})")
    detail(f"a batch {from_batch} still built under version {version - 1} is refused on-chain: {refused}")
    return {
        "governance_proposal": f"#{pid} {action.target} {before} → {action.value}",
        "governance_posts": len(ids),
        "governance_voters": len(service.ballots),
        "governance_tally_usdc_stake": {"for": tally.votes_for // USDC, "against": tally.votes_against // USDC,
                                        "abstain": tally.votes_abstain // USDC},
        "governance_passed": tally.passed,
        "governance_wrong_tally_overturned": overturned,
        "governance_timelock_seconds": gov.delay,
        "governance_parameter_version": version,
        "governance_applies_from_batch": from_batch,
        "governance_applies": f"{action.target} = {action.value} {applies}",
        "governance_batches_before": before_batches,
        "governance_batches_after": after_batches,
        "governance_stale_batch_refused": refused,
        "governance_exit_time_seconds": gov.exit_time,
        "governance_status": str(service.forum.proposals[pid].status),
    }


def _span(numbers: list[int]) -> str:
    """``1–2`` for consecutive batch numbers (``1`` for one)."""
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}–{numbers[-1]}"


def _refuse_stale_batch(gov: GovernanceSystem, version: int) -> str:
    """Build the next batch under ``version`` (the one before the change) and post it: the
    settlement must refuse it (it names a version that no longer applies to its number); returns
    the revert reason. Nothing is tracked: the batch never lands."""
    timestamp = max(gov.settlement.posted[-1].result.header.timestamp + 1, gov.chain.now() + 1)
    stale = gov.settlement.build([TickOp(Timestamp(timestamp))], timestamp, version=version)
    try:
        gov.settlement.post_raw(stale)
    except ContractRevert as exc:
        return str(exc.reason)
    raise RuntimeError("a batch built under the old parameter version was accepted after the boundary")
