"""Bonds + Assertions + Arbitration against the Python rules, to the wei, on both backends.

1. Random disputes (stakes, votes, silent voters, reveal order, bond): every payout, reward and
   penalty the contracts make equals ``clearhouse.disputes``, and both contracts end empty.
2. A stateful machine over bonding, unbonding, withdrawing, slashing, asserting, disputing,
   voting, settling and claiming, with invariants after every step: slashing never mints
   (stakes + insurance + rewards paid == deposited - withdrawn, and the token balance of Bonds
   is exactly its stakes plus its insurance fund), every reward <= what was slashed, the token
   balances of Assertions and Arbitration equal what is still owed, every payout matches the
   rules, no second claim/reveal/penalty succeeds, and once every resolved dispute is fully
   claimed both contracts hold exactly zero.

Both run on the ``chain`` fixture (in-process EVM and anvil). Example counts are small (they scale
with the hypothesis profile); actions are skipped within ``MARGIN`` seconds of a phase boundary,
because anvil stamps a block with wall-clock time and the next block may be a second later.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from dispute_system import DAY, HOUR, PARAMS, DisputeSystem, deploy_dispute_system, salt_for
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from clearhouse.chain import Chain
from clearhouse.disputes import (
    Reveal,
    Role,
    SettlementPayouts,
    Stake,
    Verdict,
    compute_dispute_payouts,
    compute_slash,
    compute_stake_at,
    compute_tally,
    compute_undisputed_payouts,
    compute_verdict,
    compute_vote_commitment,
    compute_voter_penalty,
    is_voter_at_fault,
)
from clearhouse.errors import ContractRevert
from clearhouse.types import Address, Amount, Timestamp

ARB = Role.ARBITRATOR
MARGIN = 3
"""Seconds around a phase boundary in which an action's outcome is not predicted (anvil clock)."""

EXAMPLES = max(3, settings().max_examples // 6)
"""Small by default (dev: 5, CI: 10); the ``soak`` profile scales it up."""


@pytest.fixture
def deployed(chain: Chain) -> Iterator[DisputeSystem]:
    """The system, plus ``accounts[9]`` registered as a slasher for every role (stands in for the
    fraud-proof and equivocation modules)."""
    s = deploy_dispute_system(chain)
    for role in Role:
        s.bonds.transact("set_slasher", chain.accounts[9].address, int(role), True)
    yield s


# --- 1. random disputes ---------------------------------------------------------------------

votes_st = st.lists(
    st.tuples(st.integers(1, 10**10),                        # stake, base units (odd sizes: rounding)
              st.sampled_from(["true", "false", "silent"])),  # revealed vote, or committed only
    min_size=1, max_size=5)  # accounts[3..7]; accounts[8] is the bystander


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(voters=votes_st, order=st.randoms(use_true_random=False),
       bond=st.integers(PARAMS.min_bond, 10**13), bystander=st.integers(0, 10**10))
def test_dispute_payouts_match_the_rules(deployed: DisputeSystem, voters: list[tuple[int, str]],
                                         order: random.Random, bond: int, bystander: int) -> None:
    s, chain = deployed, deployed.chain
    snap = chain.snapshot()
    try:
        asserter, disputer, extra = chain.accounts[1], chain.accounts[2], chain.accounts[8]
        accts = chain.accounts[3:3 + len(voters)]
        for acct, (stake, _) in zip(accts, voters, strict=True):
            s.bond(acct, ARB, stake)
        if bystander:  # stake that never votes still counts towards the quorum base
            s.bond(extra, ARB, bystander)
        chain.time_travel(1)
        aid = s.assert_claim(asserter, bond)
        did = s.dispute(disputer, aid)
        for acct, (_, vote) in zip(accts, voters, strict=True):
            s.commit(acct, did, vote == "true", salt_for(acct.address))
        chain.time_travel(PARAMS.commit_period)
        revealing = [(a, v) for a, (_, v) in zip(accts, voters, strict=True) if v != "silent"]
        order.shuffle(revealing)
        reveals = []
        for acct, vote in revealing:
            s.reveal(acct, did, vote == "true", salt_for(acct.address))
            reveals.append(Reveal(Address(acct.address), Amount(s.ballot(did, acct.address)["weight"]),
                                  vote == "true"))
        chain.time_travel(PARAMS.reveal_period)
        total = Amount(sum(stake for stake, _ in voters) + bystander)
        assert s.dispute_record(did)["total_weight"] == total
        expected = compute_dispute_payouts(Amount(bond), PARAMS.voter_reward_bps, reveals, total,
                                           PARAMS.quorum_bps)
        s.assertions.transact("settle", aid)
        assert s.assertions.call("resolved", aid) == (True, expected.truthful)
        before = {a.address: s.balance(a.address) for a in (asserter, disputer, *accts)}
        for who in (asserter, disputer):
            if s.assertion(aid)["asserter_payout" if who is asserter else "disputer_payout"]:
                s.assertions.transact("claim", aid, sender=who)
        for acct in accts:
            if s.arbitration.call("reward_of", did, acct.address):
                s.arbitration.transact("claim_reward", did, sender=acct)
        got = {a: s.balance(a) - b for a, b in before.items()}
        want: dict[str, int] = {a: 0 for a in before}
        want[asserter.address] += expected.asserter
        want[disputer.address] += expected.disputer
        for voter, amount in expected.voter_rewards.items():
            want[voter] += amount
        assert got == want
        assert sum(expected.voter_rewards.values()) == expected.voter_pool
        assert s.balance(s.assertions.address) == 0
        assert s.balance(s.arbitration.address) == 0
        # penalties: silent voters always, losing voters after a decision
        votes_by = {r.voter: r.vote for r in reveals}
        for acct, (stake, _) in zip(accts, voters, strict=True):
            revealed = votes_by.get(Address(acct.address))
            if is_voter_at_fault(revealed, expected.verdict or Verdict.NO_DECISION):
                r = s.arbitration.transact("penalize", did, acct.address)
                assert r.events_named("VoterPenalized")[0].args["slashed"] == compute_voter_penalty(
                    Amount(stake), PARAMS.voter_slash_bps)
            else:
                with pytest.raises(ContractRevert, match="arbitration: voter not at fault"):
                    s.arbitration.transact("penalize", did, acct.address)
    finally:
        chain.revert_to(snap)


# --- 2. the stateful machine ----------------------------------------------------------------

ACTORS = range(1, 9)
"""Indices of ``chain.accounts`` that bond, assert, dispute and vote (9 is the slasher, 0 admin)."""
VOTERS = range(3, 8)
"""Actors that start as bonded arbitrators."""
STEPS = [1, 60, 600, 600, HOUR // 2, HOUR // 2, HOUR, 2 * HOUR, DAY, PARAMS.unbonding_delay]
"""Time steps: mostly inside one phase, sometimes across several, sometimes past an unbonding."""
KINDS = ["bond", "unbond", "withdraw", "slash", "assert", "assert", "dispute", "dispute", "settle",
         "claim", "vote", "vote", "vote", "vote", "time", "time"]
"""Actions of a step, repeated to weight them: disputes need many votes and some time."""


@dataclass
class AssertionModel:
    asserter: LocalAccount
    bond: int
    expires_at: int
    disputer: LocalAccount | None = None
    dispute_id: int = 0
    settled: bool = False
    payouts: SettlementPayouts | None = None
    owed: dict[str, int] = field(default_factory=dict)


@dataclass
class DisputeModel:
    dispute_id: int
    assertion_id: int
    opened_at: int
    total_weight: int
    commits: dict[str, tuple[LocalAccount, bool, int]] = field(default_factory=dict)
    reveals: list[Reveal] = field(default_factory=list)
    funded: bool = False
    rewards_owed: dict[str, int] = field(default_factory=dict)
    """Winning voter -> reward still owed; -1 once claimed."""
    penalized: set[str] = field(default_factory=set)

    @property
    def commit_end(self) -> int:
        return self.opened_at + PARAMS.commit_period

    @property
    def reveal_end(self) -> int:
        return self.commit_end + PARAMS.reveal_period


class DisputeMachine(RuleBasedStateMachine):
    """The chain against a model built from the Python rules.

    Few rules, each a family of actions (hypothesis' swarm testing switches whole rules off per
    example, and a dispute needs several kinds of step to get anywhere). Every action predicts
    success or the exact revert reason before it is sent.
    """

    def __init__(self, system: DisputeSystem) -> None:
        super().__init__()
        self.s = system
        self.chain = system.chain
        self.snap = self.chain.snapshot()
        self.stakes: dict[tuple[str, Role], Stake] = {}
        self.ready_at: dict[tuple[str, Role], int] = {}
        self.history: dict[str, list[tuple[Timestamp, Amount]]] = {"total": []}
        self.deposited = self.withdrawn = self.rewards_paid = self.insurance = 0
        self.assertions: dict[int, AssertionModel] = {}
        self.disputes: dict[int, DisputeModel] = {}

    # --- helpers ------------------------------------------------------------------------

    def acct(self, i: int) -> LocalAccount:
        return self.chain.accounts[i]

    def stake(self, who: str, role: Role) -> Stake:
        return self.stakes.get((who, role), Stake(Amount(0), Amount(0)))

    def set_stake(self, who: str, role: Role, stake: Stake) -> None:
        self.stakes[(who, role)] = stake
        if role is ARB:  # voting power history, for the snapshot checks
            now = self.chain.now()
            self.history.setdefault(who, []).append((now, stake.active))
            total = sum(x.active for (_, r), x in self.stakes.items() if r is ARB)
            self.history["total"].append((now, Amount(total)))

    def near(self, boundary: int) -> bool:
        return abs(self.chain.now() - boundary) <= MARGIN

    def expect_revert(self, contract: str, reason: str, fn: str, *args: object,
                      sender: LocalAccount | None = None) -> None:
        with pytest.raises(ContractRevert, match=reason):
            getattr(self.s, contract).transact(fn, *args, sender=sender)
        event(f"revert: {reason}")

    # --- rules --------------------------------------------------------------------------

    @initialize(stakes=st.lists(st.integers(1, 10**9), min_size=len(VOTERS), max_size=len(VOTERS)))
    def arbitrators(self, stakes: list[int]) -> None:
        """Start with bonded arbitrators (others may join later), so disputes get votes."""
        for i, amount in zip(VOTERS, stakes, strict=True):
            self._bond(self.acct(i), ARB, amount)
        self.chain.time_travel(1)

    @rule(kind=st.sampled_from(KINDS), data=st.data())
    def step(self, kind: str, data: st.DataObject) -> None:
        """One action of the given kind, its arguments drawn here.

        One rule rather than one per kind: hypothesis' swarm testing switches whole rules off
        per example, and a dispute only gets anywhere with several kinds of step.
        """
        who = self.acct(data.draw(st.sampled_from(ACTORS), label="actor"))
        role = data.draw(st.sampled_from(Role), label="role")
        amount = data.draw(st.integers(0, 2 * 10**9), label="amount")
        if kind == "bond":
            self._bond(who, role, amount + 1)
        elif kind == "unbond":
            self._request_unbond(who, role, amount)
        elif kind == "withdraw":
            self._withdraw(who, role)
        elif kind == "slash":
            reward = data.draw(st.integers(0, 2 * 10**9), label="reward")
            self._slash(who, role, amount, reward,
                        self.acct(data.draw(st.sampled_from(ACTORS), label="beneficiary")))
        elif kind == "time":
            self.chain.time_travel(data.draw(st.sampled_from(STEPS), label="seconds"))
        elif kind == "assert" or not self.assertions:
            liveness = data.draw(st.sampled_from([HOUR, DAY]), label="liveness")
            self._assert(who, PARAMS.min_bond + amount // 2, liveness)
        elif kind == "vote" and self.disputes:
            self._vote(data)
        else:
            aid = data.draw(st.sampled_from(sorted(self.assertions)), label="assertion")
            if kind == "dispute":
                did = self._dispute(aid, who)
                if did and data.draw(st.booleans(), label="vote it through now"):
                    self._whole_vote(self.disputes[did], data)
            elif kind == "settle":
                self._try_settle(aid)
            else:
                self._claim(aid, who)

    def _vote(self, data: st.DataObject) -> None:
        """On one dispute: what its phase calls for (a round of commits, reveals in a random order
        with some tampering, or claims and penalties), possibly after skipping to its next phase;
        or the rest of its life at once; or one stray action of a random kind."""
        newest = data.draw(st.integers(0, 3), label="newest dispute?") > 0  # mostly the live one
        did = max(self.disputes) if newest else data.draw(st.sampled_from(sorted(self.disputes)))
        d = self.disputes[did]
        kind = data.draw(st.sampled_from(["by phase"] * 3 + ["whole vote", "commit", "reveal",
                                                             "penalize", "claim reward"]), label="kind")
        if kind == "whole vote":
            self._whole_vote(d, data)
            return
        if data.draw(st.booleans(), label="skip to the next phase first"):
            self._skip_to_next_phase(d)
        if kind == "by phase":
            self._vote_by_phase(d, data)
        else:
            self._vote_as(d, self.acct(data.draw(st.sampled_from(ACTORS), label="voter")), kind, data)

    def _whole_vote(self, d: DisputeModel, data: st.DataObject) -> None:
        """The rest of this dispute's life, phase after phase."""
        for _ in range(3):
            self._vote_by_phase(d, data)
            self._skip_to_next_phase(d)

    def _skip_to_next_phase(self, d: DisputeModel) -> None:
        now = self.chain.now()
        if now < d.reveal_end:
            nxt = d.commit_end if now < d.commit_end else d.reveal_end
            self.chain.time_travel(nxt - now + MARGIN + 1)

    def _vote_by_phase(self, d: DisputeModel, data: st.DataObject) -> None:
        now = self.chain.now()
        kind = "commit" if now < d.commit_end else "reveal" if now < d.reveal_end else "resolved"
        # commits from any actors; reveals, claims and penalties mostly from those who committed
        pool = [i for i in ACTORS if kind == "commit" or self.acct(i).address in d.commits]
        voters = [i for i in data.draw(st.permutations(pool), label="order")
                  if data.draw(st.integers(0, 4), label="takes part") > 0]  # most of them
        voters.append(data.draw(st.sampled_from(ACTORS), label="one more, anyone"))
        for i in voters:
            self._vote_as(d, self.acct(i), kind, data)

    def _vote_as(self, d: DisputeModel, who: LocalAccount, kind: str, data: st.DataObject) -> None:
        if kind == "commit":
            self._commit(d, who, data.draw(st.booleans(), label="vote"))
        elif kind == "reveal":
            self._reveal(d, who, tamper=data.draw(st.integers(0, 5), label="tamper") == 0)
        elif kind == "penalize":
            self._penalize(d, who)
        elif kind == "claim reward":
            self._claim_reward(d, who)
        else:  # resolved: the winners claim, the faulty are penalised
            self._claim_reward(d, who)
            self._penalize(d, who)

    # --- bonds --------------------------------------------------------------------------

    def _bond(self, who: LocalAccount, role: Role, amount: int) -> None:
        self.s.bond(who, role, amount)
        x = self.stake(who.address, role)
        self.set_stake(who.address, role, Stake(Amount(x.active + amount), x.unbonding))
        self.deposited += amount

    def _request_unbond(self, who: LocalAccount, role: Role, amount: int) -> None:
        x = self.stake(who.address, role)
        if amount == 0:
            self.expect_revert("bonds", "bonds: zero amount", "request_unbond", int(role), 0, sender=who)
            return
        amount = amount % (2 * x.active + 1) or 1  # about half the time within the stake
        if amount > x.active:
            self.expect_revert("bonds", "bonds: insufficient stake", "request_unbond", int(role),
                               amount, sender=who)
            return
        self.s.bonds.transact("request_unbond", int(role), amount, sender=who)
        self.set_stake(who.address, role, Stake(Amount(x.active - amount), Amount(x.unbonding + amount)))
        self.ready_at[(who.address, role)] = self.chain.now() + PARAMS.unbonding_delay

    def _withdraw(self, who: LocalAccount, role: Role) -> None:
        x = self.stake(who.address, role)
        ready = self.ready_at.get((who.address, role), 0)
        if x.unbonding == 0:
            self.expect_revert("bonds", "bonds: nothing unbonding", "withdraw", int(role), sender=who)
        elif self.near(ready):
            return
        elif self.chain.now() < ready:
            self.expect_revert("bonds", "bonds: unbonding not over", "withdraw", int(role), sender=who)
        else:
            r = self.s.bonds.transact("withdraw", int(role), sender=who)
            assert r.events_named("Withdrawn")[0].args["amount"] == x.unbonding
            self.set_stake(who.address, role, Stake(x.active, Amount(0)))
            self.withdrawn += x.unbonding
            event("withdrawn")

    def _slash(self, who: LocalAccount, role: Role, amount: int, reward: int,
               beneficiary: LocalAccount) -> None:
        expected = compute_slash(self.stake(who.address, role), Amount(amount), Amount(reward))
        r = self.s.bonds.transact("slash", who.address, int(role), amount, beneficiary.address,
                                  reward, sender=self.acct(9))
        args = r.events_named("Slashed")[0].args
        assert (args["slashed"], args["reward"], args["insurance"]) == (
            expected.slashed, expected.reward, expected.insurance)
        assert args["reward"] <= args["slashed"] <= amount
        self.set_stake(who.address, role, expected.stake_after)
        self.rewards_paid += expected.reward
        self.insurance += expected.insurance

    # --- assertions ---------------------------------------------------------------------

    def _assert(self, who: LocalAccount, bond: int, liveness: int) -> None:
        aid = self.s.assert_claim(who, bond, liveness=liveness)
        self.assertions[aid] = AssertionModel(who, bond, self.chain.now() + liveness)

    def _dispute(self, aid: int, who: LocalAccount) -> int:
        """Dispute ``aid``; the new dispute id, or 0 if it was refused (or skipped)."""
        a = self.assertions[aid]
        self.s.fund(who, a.bond, self.s.assertions)
        if a.disputer is not None:
            self.expect_revert("assertions", "assertions: already disputed", "dispute", aid, sender=who)
        elif self.near(a.expires_at):
            pass
        elif self.chain.now() > a.expires_at:
            self.expect_revert("assertions", "assertions: liveness over", "dispute", aid, sender=who)
        else:
            r = self.s.assertions.transact("dispute", aid, sender=who)
            did = r.events_named("ClaimDisputed")[0].args["dispute_id"]
            a.disputer, a.dispute_id = who, did
            opened = self.chain.now()
            total = compute_stake_at(self.history["total"], Timestamp(opened - 1))
            assert r.events_named("DisputeOpened")[0].args["total_weight"] == total
            self.disputes[did] = DisputeModel(did, aid, opened, total)
            event("disputed")
            return int(did)
        return 0

    def _try_settle(self, aid: int) -> None:
        a = self.assertions[aid]
        deadline = self.disputes[a.dispute_id].reveal_end if a.disputer else a.expires_at
        if a.settled:
            self.expect_revert("assertions", "assertions: already settled", "settle", aid)
        elif self.near(deadline):
            return
        elif self.chain.now() < deadline:
            reason = "arbitration pending" if a.disputer else "liveness not over"
            self.expect_revert("assertions", f"assertions: {reason}", "settle", aid)
        else:
            self._settle(aid)

    def _settle(self, aid: int) -> None:
        a = self.assertions[aid]
        r = self.s.assertions.transact("settle", aid)
        if a.disputer is None:
            p = compute_undisputed_payouts(Amount(a.bond))
        else:
            d = self.disputes[a.dispute_id]
            p = compute_dispute_payouts(Amount(a.bond), PARAMS.voter_reward_bps, d.reveals,
                                        Amount(d.total_weight), PARAMS.quorum_bps)
            if p.verdict is not Verdict.NO_DECISION:
                d.funded = True
                d.rewards_owed = {v: int(x) for v, x in p.voter_rewards.items()}
        args = r.events_named("ClaimSettled")[0].args
        assert (args["truthful"], args["asserter_payout"], args["disputer_payout"], args["voter_pool"]) \
            == (p.truthful, p.asserter, p.disputer, p.voter_pool)
        assert p.total == a.bond * (2 if a.disputer else 1)
        a.settled, a.payouts = True, p
        a.owed[a.asserter.address] = p.asserter
        if a.disputer is not None:
            a.owed[a.disputer.address] = a.owed.get(a.disputer.address, 0) + p.disputer
        event(f"settled: {p.verdict.value if p.verdict else 'undisputed'}")

    def _claim(self, aid: int, who: LocalAccount) -> None:
        a = self.assertions[aid]
        owed = a.owed.get(who.address, 0)
        if not a.settled:
            self.expect_revert("assertions", "assertions: not settled", "claim", aid, sender=who)
        elif owed == 0:  # never owed, or a second claim
            self.expect_revert("assertions", "assertions: nothing to claim", "claim", aid, sender=who)
        else:
            r = self.s.assertions.transact("claim", aid, sender=who)
            assert r.events_named("PayoutClaimed")[0].args["amount"] == owed
            a.owed[who.address] = 0

    # --- arbitration --------------------------------------------------------------------

    def _commit(self, d: DisputeModel, who: LocalAccount, vote: bool) -> None:
        weight = compute_stake_at(self.history.get(who.address, []), Timestamp(d.opened_at - 1))
        commitment = compute_vote_commitment(vote, salt_for(who.address, d.dispute_id),
                                             Address(who.address))
        if self.near(d.commit_end):
            return
        if self.chain.now() > d.commit_end:
            reason = "not in commit phase"
        elif who.address in d.commits:
            reason = "already committed"
        elif weight == 0:
            reason = "no voting power"
        else:
            r = self.s.arbitration.transact("commit", d.dispute_id, commitment, sender=who)
            assert r.events_named("VoteCommitted")[0].args["weight"] == weight
            d.commits[who.address] = (who, vote, weight)
            event("commit")
            return
        self.expect_revert("arbitration", f"arbitration: {reason}", "commit", d.dispute_id, commitment,
                           sender=who)

    def _reveal(self, d: DisputeModel, who: LocalAccount, tamper: bool) -> None:
        committed = d.commits.get(who.address)
        vote = committed[1] if committed else True
        args = (d.dispute_id, who.address, vote is not tamper, salt_for(who.address, d.dispute_id))
        if self.near(d.commit_end) or self.near(d.reveal_end):
            return
        if not d.commit_end <= self.chain.now() < d.reveal_end:
            reason = "not in reveal phase"
        elif committed is None:
            reason = "no commitment"
        elif any(r.voter == Address(who.address) for r in d.reveals):
            reason = "already revealed"
        elif tamper:
            reason = "commitment mismatch"
        else:
            self.s.arbitration.transact("reveal", *args, sender=who)
            d.reveals.append(Reveal(Address(who.address), Amount(committed[2]), vote))
            event("reveal")
            return
        self.expect_revert("arbitration", f"arbitration: {reason}", "reveal", *args, sender=who)

    def _claim_reward(self, d: DisputeModel, who: LocalAccount) -> None:
        owed = d.rewards_owed.get(who.address)
        if not d.funded:
            reason = "rewards not funded"
        elif owed is None:
            reason = "not a winning voter"
        elif owed < 0:
            reason = "already claimed"
        else:
            r = self.s.arbitration.transact("claim_reward", d.dispute_id, sender=who)
            assert r.events_named("RewardClaimed")[0].args["amount"] == owed
            d.rewards_owed[who.address] = -1
            event("reward claimed")
            return
        self.expect_revert("arbitration", f"arbitration: {reason}", "claim_reward", d.dispute_id,
                           sender=who)

    def _penalize(self, d: DisputeModel, who: LocalAccount) -> None:
        if self.near(d.reveal_end):
            return
        committed = d.commits.get(who.address)
        verdict = compute_verdict(compute_tally(d.reveals, Amount(d.total_weight)), PARAMS.quorum_bps)
        vote = next((r.vote for r in d.reveals if r.voter == Address(who.address)), None)
        if self.chain.now() < d.reveal_end:
            reason = "not resolved"
        elif committed is None:
            reason = "no commitment"
        elif who.address in d.penalized:
            reason = "already penalized"
        elif not is_voter_at_fault(vote, verdict):
            reason = "voter not at fault"
        else:
            penalty = compute_voter_penalty(Amount(committed[2]), PARAMS.voter_slash_bps)
            expected = compute_slash(self.stake(who.address, ARB), penalty, Amount(0))
            r = self.s.arbitration.transact("penalize", d.dispute_id, who.address)
            assert r.events_named("VoterPenalized")[0].args["slashed"] == expected.slashed
            self.set_stake(who.address, ARB, expected.stake_after)
            self.insurance += expected.insurance
            d.penalized.add(who.address)
            event("voter penalized")
            return
        self.expect_revert("arbitration", f"arbitration: {reason}", "penalize", d.dispute_id, who.address)

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def slashing_never_mints(self) -> None:
        b = self.s.bonds
        stakes = sum(x.active + x.unbonding for x in self.stakes.values())
        assert stakes + self.insurance + self.rewards_paid == self.deposited - self.withdrawn
        assert b.call("insurance_fund") == self.insurance
        assert self.s.balance(b.address) == stakes + self.insurance
        for role in Role:
            assert b.call("total_stake", int(role)) == sum(
                x.active for (_, r), x in self.stakes.items() if r is role)
            assert b.call("total_unbonding", int(role)) == sum(
                x.unbonding for (_, r), x in self.stakes.items() if r is role)

    @invariant()
    def stakes_match(self) -> None:
        for (who, role), x in self.stakes.items():
            assert self.s.bonds.call("stake_of", who, int(role)) == x.active
            assert self.s.bonds.call("unbonding_of", who, int(role))[0] == x.unbonding

    @invariant()
    def escrow_is_exactly_what_is_owed(self) -> None:
        held = 0
        for a in self.assertions.values():
            held += sum(a.owed.values()) if a.settled else a.bond * (2 if a.disputer else 1)
        assert self.s.balance(self.s.assertions.address) == held
        pools = sum(max(0, x) for d in self.disputes.values() for x in d.rewards_owed.values())
        assert self.s.balance(self.s.arbitration.address) == pools

    def teardown(self) -> None:
        """Resolve and claim everything: both escrow contracts must end at exactly zero."""
        try:
            ends = [a.expires_at for a in self.assertions.values()] + [
                d.reveal_end for d in self.disputes.values()]
            if ends:
                self.chain.time_travel(max(0, max(ends) - self.chain.now()) + MARGIN + 1)
            for aid, a in self.assertions.items():
                if not a.settled:
                    self._settle(aid)
                for who in {a.asserter, *([a.disputer] if a.disputer else [])}:
                    if a.owed.get(who.address):
                        self._claim(aid, who)
                        self._claim(aid, who)  # a second claim must fail
            for d in self.disputes.values():
                for who, *_ in list(d.commits.values()):
                    if d.rewards_owed.get(who.address, -1) >= 0:
                        self._claim_reward(d, who)
                        self._claim_reward(d, who)  # a second claim must fail
            assert self.s.balance(self.s.assertions.address) == 0
            assert self.s.balance(self.s.arbitration.address) == 0
        finally:
            self.chain.revert_to(self.snap)


def test_bonds_and_arbitration_stateful(deployed: DisputeSystem) -> None:
    run_state_machine_as_test(
        lambda: DisputeMachine(deployed),  # type: ignore[arg-type]  # a factory is accepted
        settings=settings(max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
