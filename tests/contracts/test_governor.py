"""Governor and ParameterStore on the EVM: an asserted result is queued, waits out a timelock
longer than the exit time, and executes against pinned code; bounds, versions from a batch
boundary, cancel, and the timelock invariants under random schedules (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from dispute_system import DisputeSystem, deploy_dispute_system
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from clearhouse.chain import Chain, Contract
from clearhouse.chain.inprocess import InProcessChain
from clearhouse.errors import ContractRevert
from clearhouse.messages.keccak import keccak256
from clearhouse.settlement import TickOp
from clearhouse.sim.settlement_chain import deploy as deploy_settlement
from clearhouse.sim.settlement_world import NOW, deposit
from clearhouse.types import Timestamp

KEYS = {name: keccak256(name.encode()) for name in ("checkpoint_interval", "max_fee_bps")}
BOUNDS = {"checkpoint_interval": (1, 16, 16), "max_fee_bps": (0, 100, 10)}
_SET = function_signature_to_4byte_selector("set(bytes32,uint256)")


class Governance:
    """Dispute system, a settlement, the Governor and its ParameterStore."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.disputes: DisputeSystem = deploy_dispute_system(chain)
        self.system = deploy_settlement(chain, users=1)
        self.settlement = self.system.settlement
        # T_force + W + MAX_PAUSE: an emergency pause can delay an exit by up to MAX_PAUSE
        self.exit_time = int(self.settlement.call("t_force")) + int(self.settlement.call("challenge_window")) + \
            int(self.settlement.call("MAX_PAUSE"))
        self.delay = self.exit_time + 3600
        self.guardian = chain.accounts[5]
        self.governor = chain.deploy("Governor", self.disputes.assertions.address, self.delay, self.exit_time,
                                     self.guardian.address)
        names = list(BOUNDS)
        self.params = chain.deploy("ParameterStore", self.governor.address, self.settlement.address,
                                   [KEYS[n] for n in names], [BOUNDS[n][0] for n in names],
                                   [BOUNDS[n][1] for n in names], [BOUNDS[n][2] for n in names])
        self.code_hash = keccak256(chain.get_code(self.params.address))

    def post_batch(self) -> None:
        """One batch (a deposit credited), so versions have a batch behind them."""
        self.system.deposit(0, 100)
        self.system.post([deposit(0, 100), TickOp(Timestamp(NOW))])

    def action(self, name: str, value: int, code_hash: bytes | None = None) -> tuple[str, bytes, bytes]:
        return (self.params.address, code_hash or self.code_hash,
                _SET + abi_encode(["bytes32", "uint256"], [KEYS[name], value]))

    def assert_result(self, proposal_id: int, actions: list[Any], tally: bytes = b"\x07" * 32,
                      target: str | None = None) -> int:
        actions_hash = bytes(self.governor.call("compute_actions_hash", actions))
        claim = keccak256(abi_encode(["uint256", "bytes32", "bytes32"], [proposal_id, actions_hash, tally]))
        who = self.chain.accounts[4]
        bond = int(self.disputes.params.min_bond)
        self.disputes.fund(who, bond, self.disputes.assertions)
        receipt = self.disputes.assertions.transact("assert_claim", claim, bond, int(self.disputes.params.min_liveness),
                                                    target or self.governor.address, sender=who)
        return int(receipt.events_named("ClaimAsserted")[0].args["assertion_id"])

    def settle(self, assertion_id: int) -> None:
        self.chain.time_travel(int(self.disputes.params.min_liveness) + 1)
        self.disputes.assertions.transact("settle", assertion_id)


def _reverts(reason: str, contract: Contract, fn: str, *args: Any, **kw: Any) -> None:
    with pytest.raises(ContractRevert) as info:
        contract.transact(fn, *args, **kw)
    assert info.value.reason == reason


@pytest.fixture
def gov(chain: Chain) -> Governance:
    return Governance(chain)


def test_a_parameter_change_runs_after_the_timelock_from_the_next_batch(gov: Governance) -> None:
    gov.post_batch()
    actions = [gov.action("checkpoint_interval", 12)]
    assertion = gov.assert_result(1, actions)
    _reverts("governor: result not asserted", gov.governor, "queue", 1, b"\x07" * 32, actions, assertion)
    gov.settle(assertion)
    _reverts("governor: wrong claim", gov.governor, "queue", 1, b"\x07" * 32,
             [gov.action("checkpoint_interval", 8)], assertion)
    gov.governor.transact("queue", 1, b"\x07" * 32, actions, assertion)
    _reverts("governor: proposal already queued", gov.governor, "queue", 1, b"\x07" * 32, actions, assertion)
    _reverts("governor: timelock", gov.governor, "execute", 1, actions)
    gov.chain.time_travel(gov.delay)
    receipt = gov.governor.transact("execute", 1, actions)
    changed = receipt.events_named("ParameterChanged")[0].args
    last_batch = int(gov.settlement.call("last_batch"))
    assert (changed["value"], changed["version"], changed["from_batch"]) == (12, 2, last_batch + 1)
    key = KEYS["checkpoint_interval"]
    assert gov.params.call("get", key, 2) == 12 and gov.params.call("get", key, 1) == 16
    assert last_batch == 1 and gov.params.call("version_at", 1) == 1 and gov.params.call("version_at", 2) == 2
    assert gov.params.call("get", KEYS["max_fee_bps"], 2) == 10  # unchanged keys carry over
    _reverts("governor: not queued", gov.governor, "execute", 1, actions)


def test_bounds_code_hash_target_cancel_and_deployment_rules(gov: Governance) -> None:
    # out of bounds: the whole execution reverts and the proposal stays queued
    actions = [gov.action("checkpoint_interval", 32)]
    a = gov.assert_result(1, actions)
    gov.settle(a)
    gov.governor.transact("queue", 1, b"\x07" * 32, actions, a)
    gov.chain.time_travel(gov.delay)
    _reverts("parameters: out of bounds", gov.governor, "execute", 1, actions)
    assert gov.governor.call("state", 1) == 1
    # a pinned code hash that does not match the target's code
    pinned = [gov.action("max_fee_bps", 20, code_hash=b"\x01" * 32)]
    a = gov.assert_result(2, pinned)
    gov.settle(a)
    gov.governor.transact("queue", 2, b"\x07" * 32, pinned, a)
    gov.chain.time_travel(gov.delay)
    _reverts("governor: target code changed", gov.governor, "execute", 2, pinned)
    # an assertion aimed at another target cannot be used
    other = [gov.action("max_fee_bps", 30)]
    a = gov.assert_result(3, other, target=gov.chain.accounts[6].address)
    gov.settle(a)
    _reverts("governor: assertion for another target", gov.governor, "queue", 3, b"\x07" * 32, other, a)
    # cancel: guardian only, then nothing executes
    a = gov.assert_result(4, other)
    gov.settle(a)
    gov.governor.transact("queue", 4, b"\x07" * 32, other, a)
    _reverts("governor: not guardian", gov.governor, "cancel", 4)
    gov.governor.transact("cancel", 4, sender=gov.guardian)
    gov.chain.time_travel(gov.delay)
    _reverts("governor: not queued", gov.governor, "execute", 4, other)
    # only the governor sets parameters; the delay must exceed the exit time
    _reverts("parameters: not governor", gov.params, "set", KEYS["max_fee_bps"], 5)
    with pytest.raises(ContractRevert, match="delay not longer than exit time"):
        gov.chain.deploy("Governor", gov.disputes.assertions.address, gov.exit_time, gov.exit_time,
                         gov.guardian.address)


class TimelockMachine(RuleBasedStateMachine):
    """Random queue / execute / cancel / wait schedules over pre-asserted proposals."""

    PROPOSALS = 3

    @initialize()
    def setup(self) -> None:
        self.gov = Governance(InProcessChain())
        self.actions = {p: [self.gov.action("max_fee_bps", p)] for p in range(1, self.PROPOSALS + 1)}
        self.assertions = {p: self.gov.assert_result(p, self.actions[p]) for p in self.actions}
        self.gov.chain.time_travel(int(self.gov.disputes.params.min_liveness) + 1)
        for a in self.assertions.values():
            self.gov.disputes.assertions.transact("settle", a)
        self.queued: dict[int, int] = {}
        self.cancelled: set[int] = set()
        self.executed: set[int] = set()

    @rule(p=st.integers(1, PROPOSALS))
    def queue(self, p: int) -> None:
        try:
            self.gov.governor.transact("queue", p, b"\x07" * 32, self.actions[p], self.assertions[p])
        except ContractRevert:
            assert p in self.queued
            return
        assert p not in self.queued
        self.queued[p] = self.gov.chain.now() + self.gov.delay

    @rule(p=st.integers(1, PROPOSALS))
    def execute(self, p: int) -> None:
        now = self.gov.chain.now()
        try:
            self.gov.governor.transact("execute", p, self.actions[p])
        except ContractRevert:
            assert p not in self.queued or p in self.cancelled or p in self.executed or now < self.queued[p]
            return
        assert p in self.queued and p not in self.cancelled and p not in self.executed
        assert self.gov.chain.now() >= self.queued[p]
        self.executed.add(p)

    @rule(p=st.integers(1, PROPOSALS))
    def cancel(self, p: int) -> None:
        try:
            self.gov.governor.transact("cancel", p, sender=self.gov.guardian)
        except ContractRevert:
            assert p not in self.queued or p in self.cancelled or p in self.executed
            return
        self.cancelled.add(p)

    @rule(seconds=st.sampled_from([60, 3600, 86_400, 3 * 86_400]))
    def wait(self, seconds: int) -> None:
        self.gov.chain.time_travel(seconds)

    @invariant()
    def executed_only_what_was_queued(self) -> None:
        if hasattr(self, "gov"):
            assert self.executed <= set(self.queued) and not (self.executed & self.cancelled)
            for p in range(1, self.PROPOSALS + 1):
                assert int(self.gov.governor.call("state", p)) == (
                    2 if p in self.executed else 3 if p in self.cancelled else 1 if p in self.queued else 0)


TestTimelock = TimelockMachine.TestCase
TestTimelock.settings = settings(max_examples=8, stateful_step_count=12, deadline=None)
