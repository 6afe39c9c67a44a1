"""Governance on a chain: Bonds + Arbitration + Assertions, the Governor, a settlement whose
window verifier reads the Governor's ParameterStore, and an oracle committee, deployed together and
driven step by step. The Governor administers the ParameterStore, the OracleHub and the Settlement.

Shared by the contract tests, the demo's governance scenario and the dashboard's browser test.
A proposal's result reaches the chain as an assertion of the claim
``keccak256(abi.encode(proposalId, actionsHash, tallyDigest))`` aimed at the Governor; the
off-chain actions (``clearhouse.governance.Action``) become ``ParameterStore.set``,
``OracleHub.set_committee`` and ``Settlement.admit_coordinator`` calls pinned to their targets'
runtime code hashes (``clearhouse.governance.execution``). Accounts: ``accounts[0]`` deploys; the callers pick the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract
from clearhouse.disputes import DisputeParams, Role, compute_vote_commitment
from clearhouse.governance.execution import (
    ActionTargets,
    OnchainAction,
    compute_actions_hash,
    compute_claim,
    compute_onchain_actions,
    compute_parameter_key,
)
from clearhouse.governance.proposals import (
    DEFAULT_BOUNDS,
    Action,
    PinnedCommittee,
    compute_longest_exit,
)
from clearhouse.messages.keccak import keccak256
from clearhouse.settlement import TickOp
from clearhouse.sim.oracle_hub import OracleSystem, deploy_oracle_system
from clearhouse.sim.settlement_chain import SettlementSystem
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.sim.settlement_world import NOW, deposit
from clearhouse.types import Address, Amount, BasisPoints, Seconds, Timestamp

__all__ = [
    "GOVERNANCE_DISPUTES",
    "INITIAL_VALUES",
    "GovernanceSystem",
    "OnchainAction",
    "compute_actions_hash",
    "compute_claim",
    "compute_parameter_key",
    "deploy_governance_system",
]

USDC: Final = 10**6
HOUR: Final = 3600
DAY: Final = 24 * HOUR

GOVERNANCE_DISPUTES: Final = DisputeParams(
    unbonding_delay=Seconds(7 * DAY),
    commit_period=Seconds(HOUR),
    reveal_period=Seconds(HOUR),
    penalty_window=Seconds(DAY),
    quorum_bps=BasisPoints(2_000),
    voter_slash_bps=BasisPoints(1_000),
    min_bond=Amount(100 * USDC),
    min_liveness=Seconds(HOUR),
    voter_reward_bps=BasisPoints(2_500),
)
"""One-hour liveness and arbitration phases, a 100 USDC minimum bond, 25 % of a losing bond to the
winning arbitrators."""

INITIAL_VALUES: Final[Mapping[str, int]] = {
    "checkpoint_interval": 8,
    "challenge_window": 3_600,
    "t_force": 2 * 86_400,
    "max_positions": 8,
    "max_fee_bps": 10,
    "maker_fee_bps": 0,
    "taker_fee_bps": 5,
}
"""Version 1 of every governed parameter (each inside its ``DEFAULT_BOUNDS``)."""

@dataclass
class GovernanceSystem:
    """The deployed contracts, wired: arbitration slashes arbitrators, assertions open disputes,
    the Governor alone sets parameters."""

    chain: Chain
    disputes: DisputeParams
    token: Contract
    bonds: Contract
    arbitration: Contract
    assertions: Contract
    settlement: SettlementSystem
    governor: Contract
    parameters: Contract
    """The ``ParameterStore``."""
    delay: int
    """The Governor's timelock, seconds (longer than ``exit_time``)."""
    exit_time: int
    """``T_force + W + MAX_PAUSE`` of the settlement: the longest a user may need to exit."""
    oracle: OracleSystem
    """An oracle committee (``f = 1``) whose ``OracleHub`` the Governor administers."""

    @property
    def code_hash(self) -> bytes:
        """The ParameterStore's runtime code hash, pinned in parameter and fee actions."""
        return keccak256(self.chain.get_code(self.parameters.address))

    @property
    def targets(self) -> ActionTargets:
        """The store, hub and settlement with their current runtime code hashes."""
        hub, settlement = self.oracle.hub.address, self.settlement.settlement.address
        return ActionTargets(self.parameters.address, self.code_hash, hub, keccak256(self.chain.get_code(hub)),
                             settlement, keccak256(self.chain.get_code(settlement)))

    @property
    def committee(self) -> PinnedCommittee:
        """The hub's current committee of the governed feed (what a new proposal pins)."""
        feed = self.oracle.committee.feed_id
        return PinnedCommittee(bytes(feed), tuple(str(m) for m in self.oracle.hub.call("members", feed)))

    def fund(self, who: LocalAccount, amount: int, spender: Contract) -> None:
        """Mint ``amount`` to ``who`` and approve ``spender`` for it."""
        self.token.transact("mint", who.address, amount)
        self.token.transact("approve", spender.address, amount, sender=who)

    def bond(self, who: LocalAccount, amount: int, role: Role = Role.ARBITRATOR) -> None:
        """Mint, approve and bond ``amount`` for ``who``: voting power from the next second."""
        self.fund(who, amount, self.bonds)
        self.bonds.transact("bond", int(role), amount, sender=who)

    def stake_at(self, who: Address, role: int, timestamp: Timestamp) -> int:
        """``Bonds.stake_at`` (the governance snapshot reader)."""
        return int(self.bonds.call("stake_at", who, role, timestamp))

    def onchain_actions(self, actions: Sequence[Action],
                        committee: PinnedCommittee | None = None) -> list[OnchainAction]:
        """The Governor actions of a proposal's ``actions`` (``committee``: the one it pinned)."""
        return compute_onchain_actions(actions, self.targets, committee)

    def assert_result(self, who: LocalAccount, proposal_id: int, actions: Sequence[Action],
                      tally_digest: bytes, bond: int | None = None, committee: PinnedCommittee | None = None) -> int:
        """``who`` bonds and asserts a proposal's result; returns the assertion id."""
        amount = int(self.disputes.min_bond) if bond is None else bond
        claim = compute_claim(proposal_id, self.onchain_actions(actions, committee), tally_digest)
        self.fund(who, amount, self.assertions)
        receipt = self.assertions.transact("assert_claim", claim, amount, int(self.disputes.min_liveness),
                                           self.governor.address, sender=who)
        return int(receipt.events_named("ClaimAsserted")[0].args["assertion_id"])

    def dispute(self, who: LocalAccount, assertion_id: int) -> int:
        """``who`` matches the bond and disputes; returns the arbitration's dispute id."""
        bond = int(self.assertions.call("get_assertion", assertion_id)[3])
        self.fund(who, bond, self.assertions)
        receipt = self.assertions.transact("dispute", assertion_id, sender=who)
        return int(receipt.events_named("ClaimDisputed")[0].args["dispute_id"])

    def arbitrate(self, dispute_id: int, votes: Mapping[LocalAccount, bool],
                  salts: Mapping[LocalAccount, bytes]) -> dict[str, int]:
        """Every arbitrator commits, the commit phase passes, all reveal, the reveal phase passes;
        returns each voter's revealed weight (token base units)."""
        for who, vote in votes.items():
            self.arbitration.transact("commit", dispute_id,
                                      compute_vote_commitment(vote, salts[who], Address(who.address)), sender=who)
        self.chain.time_travel(int(self.disputes.commit_period))
        weights: dict[str, int] = {}
        for who, vote in votes.items():
            receipt = self.arbitration.transact("reveal", dispute_id, who.address, vote, salts[who], sender=who)
            weights[who.address] = int(receipt.events_named("VoteRevealed")[0].args["weight"])
        self.chain.time_travel(int(self.disputes.reveal_period))
        return weights

    def settle(self, assertion_id: int) -> tuple[bool, bool]:
        """Settle an assertion (after its liveness or its arbitration); ``(settled, truthful)``."""
        self.assertions.transact("settle", assertion_id)
        settled, truthful = self.assertions.call("resolved", assertion_id)
        return bool(settled), bool(truthful)

    def queue(self, proposal_id: int, tally_digest: bytes, actions: Sequence[Action], assertion_id: int,
              committee: PinnedCommittee | None = None) -> int:
        """Queue a proposal whose result settled truthful; returns its eta (unix seconds)."""
        receipt = self.governor.transact("queue", proposal_id, tally_digest, self.onchain_actions(actions, committee),
                                         assertion_id)
        return int(receipt.events_named("Queued")[0].args["eta"])

    def execute(self, proposal_id: int, actions: Sequence[Action],
                onchain: Sequence[OnchainAction] | None = None) -> list[dict[str, Any]]:
        """Execute a queued proposal (``onchain``: its Governor actions as queued, when they are
        not those of ``actions`` now, e.g. a committee action); returns its ``ParameterChanged``
        events' arguments."""
        calls = self.onchain_actions(actions) if onchain is None else list(onchain)
        receipt = self.governor.transact("execute", proposal_id, calls)
        return [dict(e.args) for e in receipt.events_named("ParameterChanged")]

    def post_batch(self) -> int:
        """Post one settlement batch (a deposit credited); returns the new last batch number."""
        timestamp = max(NOW, self.chain.now() + 1)
        self.settlement.deposit(0, 100)
        self.settlement.post([deposit(0, 100), TickOp(Timestamp(timestamp))], timestamp)
        return int(self.settlement.settlement.call("last_batch"))

    def get_parameter(self, name: str, version: int | None = None) -> int:
        """A parameter's value under ``version`` (the latest when ``None``)."""
        v = int(self.parameters.call("version")) if version is None else version
        return int(self.parameters.call("get", compute_parameter_key(name), v))


def deploy_governance_system(chain: Chain, disputes: DisputeParams = GOVERNANCE_DISPUTES,
                             values: Mapping[str, int] = INITIAL_VALUES,
                             guardian: str | None = None) -> GovernanceSystem:
    """Deploy everything and register the contracts with each other: the Governor first, then the
    settlement with its ``ParameterStore`` (changed only by the Governor, holding every parameter of
    ``values`` within ``DEFAULT_BOUNDS``), which its window verifier reads: a change executed by the
    Governor is the version the settlement's next batches are built and judged under. The
    Governor's exit time is ``T_force + W + MAX_PAUSE`` at their largest values within bounds
    (:func:`~clearhouse.governance.proposals.compute_longest_exit`) and its delay an hour more.
    Last, the deployer hands the admin of the OracleHub (an ``f = 1`` committee, configured first)
    and of the Settlement to the Governor; the settlement's guardian can still pause."""
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bonds = chain.deploy("Bonds", *disputes.bonds_args(token.address))
    arbitration = chain.deploy("Arbitration", *disputes.arbitration_args(bonds.address))
    assertions = chain.deploy("Assertions", *disputes.assertions_args(arbitration.address))
    bonds.transact("set_slasher", arbitration.address, int(Role.ARBITRATOR), True)
    arbitration.transact("set_requester", assertions.address, True)
    exit_time = int(compute_longest_exit())
    delay = exit_time + HOUR
    governor = chain.deploy("Governor", assertions.address, delay, exit_time,
                            guardian or chain.accounts[0].address)
    bounds = {n: (DEFAULT_BOUNDS[n].minimum, DEFAULT_BOUNDS[n].maximum) for n in values}
    settlement = deploy_settlement(chain, users=1, k=values["checkpoint_interval"], parameter_bounds=bounds,
                                   governor=governor.address, parameter_values=values)
    if settlement.parameters.store is None:
        raise RuntimeError("the settlement was deployed without its parameter store")
    oracle = deploy_oracle_system(chain, 1)
    oracle.hub.transact("transfer_admin", governor.address)
    settlement.settlement.transact("transfer_admin", governor.address)
    return GovernanceSystem(chain, disputes, token, bonds, arbitration, assertions, settlement, governor,
                            settlement.parameters.store, delay, exit_time, oracle)
