"""The devnet's governance, deployed on the in-process chain (no anvil, no processes): the Governor
asserts results through the oracle committee's Assertions, its timelock covers ``T_force + W +
MAX_PAUSE`` at their largest governed values, it alone changes the ParameterStore the settlement's window verifier reads, and the
node's forum (``build_governance_service``) with its watcher (``build_governance_watcher``) follows
a proposal from the deployment description to execution; the dashboard's governance view shows it
and the settlement's next batch is built under the new version."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from clearhouse.chain import Contract, InProcessChain
from clearhouse.dashboard.views import ChainSource, load_contracts
from clearhouse.errors import ContractRevert
from clearhouse.governance.execution import (
    compute_claim,
    compute_onchain_action,
    compute_onchain_actions,
    compute_parameter_key,
)
from clearhouse.governance.proposals import Action, ActionKind, Status, compute_longest_exit
from clearhouse.governance.votes import compute_tally_digest
from clearhouse.market.trades import FeeSchedule
from clearhouse.messages import Choice, Domain, Vote, sign
from clearhouse.messages.keccak import keccak256
from clearhouse.node.devnet import compute_parameter_values, deploy_devnet
from clearhouse.node.governance import (
    GovernanceConfig,
    GovernanceService,
    GovernanceWatcher,
    build_governance_service,
    build_governance_watcher,
)
from clearhouse.node.parameters import load_chain_parameters
from clearhouse.params import MAX_PAUSE
from clearhouse.sim.oracle_hub import compute_member_keys
from clearhouse.store import Store
from clearhouse.types import Address, ChainId, Seconds, Timestamp

HOUR, DAY = 3_600, 86_400
MORE = Action(ActionKind.PARAMETER, "max_positions", 12)
TAKER_FEE = Action(ActionKind.FEES, "taker_fee_bps", 8)
LONGER_W = Action(ActionKind.PARAMETER, "challenge_window", 2 * HOUR)


@pytest.fixture(scope="module")
def devnet() -> tuple[InProcessChain, dict[str, Any]]:
    chain = InProcessChain()
    return chain, deploy_devnet(chain)



def _assert_and_queue(chain: InProcessChain, g: dict[str, Any], watcher: GovernanceWatcher,
                      service: GovernanceService, pid: int, actions: list[Any]) -> Contract:
    """A keeper asserts the proposal's tally and actions through the Assertions contract (the
    node's watcher matches the assertion to the proposal), it settles after liveness, and the
    Governor queues the actions; returns the Governor."""
    assertions = chain.at("Assertions", g["assertions"])
    token = chain.at("mocks/TestToken", str(assertions.call("token")))
    digest = compute_tally_digest(service.get_tally(pid))
    keeper, bond = chain.accounts[7], int(assertions.call("min_bond"))
    token.transact("mint", keeper.address, bond)
    token.transact("approve", assertions.address, bond, sender=keeper)
    receipt = assertions.transact("assert_claim", compute_claim(pid, actions, digest), bond,
                                  int(assertions.call("min_liveness")), g["governor"], sender=keeper)
    aid = int(receipt.events_named("ClaimAsserted")[0].args["assertion_id"])
    watcher.on_tick()
    assert watcher.matched == {aid: pid}
    chain.time_travel(int(assertions.call("min_liveness")) + 1)
    assertions.transact("settle", aid)
    governor = chain.at("Governor", g["governor"])
    governor.transact("queue", pid, digest, actions, aid)
    return governor


def test_the_devnet_wires_a_governor_to_its_settlement(devnet: tuple[InProcessChain, dict[str, Any]]) -> None:
    chain, deployment = devnet
    g, s = deployment["governance"], deployment["settlement"]
    settlement = chain.at("Settlement", s["settlement"])
    governor = chain.at("Governor", g["governor"])
    store = chain.at("ParameterStore", g["parameters"])
    assert int(settlement.call("MAX_PAUSE")) == MAX_PAUSE
    # the timelock outlasts the longest exit any governed W and T_force allow, not just today's
    exit_time = int(settlement.call("t_force")) + int(settlement.call("challenge_window")) + MAX_PAUSE
    assert int(governor.call("EXIT_TIME")) == g["exit_time"] == compute_longest_exit() > exit_time
    assert int(governor.call("DELAY")) == g["timelock"] > g["exit_time"]
    assert str(governor.call("ASSERTIONS")).lower() == deployment["oracle"]["assertions"].lower() == \
        g["assertions"].lower()
    assert str(store.call("GOVERNOR")).lower() == g["governor"].lower()
    assert str(store.call("SETTLEMENT")).lower() == s["settlement"].lower()
    assert str(chain.at("WindowVerifier", s["verifier"]).call("PARAMETER_STORE")).lower() == g["parameters"].lower()
    assert str(settlement.call("guardian")).lower() == s["guardian"].lower() == g["guardian"].lower()
    assert str(governor.call("guardian")).lower() == g["guardian"].lower()
    # version 1 is what the coordinator builds with; every governed parameter is listed
    values = compute_parameter_values()
    for name, value in values.items():
        assert int(store.call("get", compute_parameter_key(name), 1)) == value, name
    assert int(settlement.call("checkpoint_interval")) == values["checkpoint_interval"]
    # nobody but the Governor changes a parameter
    with pytest.raises(ContractRevert, match="parameters: not governor"):
        store.transact("set", compute_parameter_key("max_positions"), 4, sender=chain.accounts[0])


def test_the_node_follows_a_proposal_to_execution_on_the_devnet(
        devnet: tuple[InProcessChain, dict[str, Any]], store: Store) -> None:
    chain, deployment = devnet
    g = deployment["governance"]
    domain = Domain("clearhouse", "1", ChainId(chain.chain_id), Address(g["governor"]))
    service = build_governance_service(store, domain, chain, deployment,
                                       GovernanceConfig(voting_delay=Seconds(HOUR), voting_period=Seconds(DAY)))
    assert service is not None
    watcher = build_governance_watcher(service, chain, deployment)
    assert watcher is not None and build_governance_watcher(service, chain, {"settlement": {}}) is None
    members = [Account.from_key(k) for k in deployment["oracle"]["keys"]]
    chain.time_travel(1)
    proposed = [MORE, TAKER_FEE, LONGER_W]
    pid = int(service.on_create_proposal(Address(members[0].address), "More positions, a taker fee, a longer W",
                                         "", proposed).body["proposalId"])
    chain.time_travel(HOUR + 1)
    watcher.on_tick()
    for who in members:
        vote = Vote(Address(who.address), pid, Choice.FOR, "", Timestamp(chain.now() + HOUR))
        service.on_vote(vote, sign(domain, vote, bytes(who.key)))
    chain.time_travel(DAY)
    watcher.on_tick()
    assert service.forum.proposals[pid].status is Status.PASSED
    # anyone asserts the result through the committee's Assertions, aimed at the Governor
    parameters = chain.at("ParameterStore", g["parameters"])
    code_hash = keccak256(chain.get_code(parameters.address))
    actions = [compute_onchain_action(a, parameters.address, code_hash) for a in proposed]
    governor = _assert_and_queue(chain, g, watcher, service, pid, actions)
    watcher.on_tick()
    assert service.forum.proposals[pid].status is Status.QUEUED
    chain.time_travel(int(g["timelock"]))
    governor.transact("execute", pid, actions)
    watcher.on_tick()
    assert service.forum.proposals[pid].status is Status.EXECUTED
    # the settlement's next batch is built and judged under the new versions (one per change);
    # the coordinator matches with the new fee schedule and the next batch gets the longer window
    settlement = chain.at("Settlement", deployment["settlement"]["settlement"])
    chain_parameters = load_chain_parameters(chain, settlement)
    next_batch = int(settlement.call("last_batch")) + 1
    assert chain_parameters.get_version_at(next_batch) == 4
    assert int(parameters.call("get", compute_parameter_key("max_positions"), 2)) == 12
    assert chain_parameters.get_fee_schedule() == FeeSchedule(maker_bps=0, taker_bps=8)
    assert chain_parameters.get_windows(settlement) == (2 * HOUR, int(settlement.call("t_force")))
    # the dashboard reads the deployment description and shows the change
    view = ChainSource(chain, load_contracts(chain, deployment), governance=service.list_proposals_json).get_governance()
    assert view["timelock_seconds"] == g["timelock"] and view["exit_time_seconds"] == g["exit_time"]
    assert [(c["parameter"], c["value"], c["version"], c["from_batch"], c["proposal"]) for c in view["changes"]] == [
        ("max_positions", "12", 2, next_batch, pid), ("taker_fee_bps", "8", 3, next_batch, pid),
        ("challenge_window", "7200", 4, next_batch, pid)]
    store.close()


def test_the_node_follows_committee_and_coordinator_actions_on_the_devnet(store: Store) -> None:
    """The devnet hands the hub and settlement admin to the Governor; a proposal that rotates one
    oracle member and admits another coordinator pins the hub's committee when created, the watcher
    recognises its claim (hub and settlement code hashes pinned) and the Governor executes it."""
    chain = InProcessChain()
    deployment = deploy_devnet(chain)
    g, o = deployment["governance"], deployment["oracle"]
    hub, settlement = chain.at("OracleHub", g["hub"]), chain.at("Settlement", g["settlement"])
    assert str(hub.call("admin")) == str(settlement.call("admin")) == g["governor"]
    domain = Domain("clearhouse", "1", ChainId(chain.chain_id), Address(g["governor"]))
    service = build_governance_service(store, domain, chain, deployment,
                                       GovernanceConfig(voting_delay=Seconds(HOUR), voting_period=Seconds(DAY)))
    assert service is not None
    watcher = build_governance_watcher(service, chain, deployment)
    assert watcher is not None
    members = [Account.from_key(k) for k in o["keys"]]
    newcomer = Account.from_key(compute_member_keys(5)[4])
    bonds, token = chain.at("Bonds", o["bonds"]), chain.at("mocks/TestToken", o["token"])
    stake = int(hub.call("min_stake"))
    chain.transact(newcomer.address, b"", sender=chain.accounts[0], value=10**18)
    token.transact("mint", newcomer.address, stake)
    token.transact("approve", bonds.address, stake, sender=newcomer)
    bonds.transact("bond", int(bonds.call("ROLE_ORACLE")), stake, sender=newcomer)
    coordinator = chain.accounts[8]
    actions = [Action(ActionKind.COMMITTEE, members[0].address, 0), Action(ActionKind.COMMITTEE, newcomer.address, 1),
               Action(ActionKind.COORDINATOR, coordinator.address, 1)]
    chain.time_travel(1)
    pid = int(service.on_create_proposal(Address(members[1].address), "Rotate", "", actions).body["proposalId"])
    pinned = service.forum.proposals[pid].committee
    assert pinned is not None and list(pinned.members) == list(o["members"])
    chain.time_travel(HOUR + 1)
    watcher.on_tick()
    for who in members[1:]:
        vote = Vote(Address(who.address), pid, Choice.FOR, "", Timestamp(chain.now() + HOUR))
        service.on_vote(vote, sign(domain, vote, bytes(who.key)))
    chain.time_travel(DAY)
    watcher.on_tick()
    assert service.forum.proposals[pid].status is Status.PASSED
    onchain = compute_onchain_actions(actions, watcher.get_targets(), pinned)
    assert [t for t, _, _ in onchain] == [g["hub"], g["settlement"]]
    governor = _assert_and_queue(chain, g, watcher, service, pid, onchain)
    chain.time_travel(int(g["timelock"]))
    governor.transact("execute", pid, onchain)
    watcher.on_tick()
    assert service.forum.proposals[pid].status is Status.EXECUTED
    feed = bytes.fromhex(g["feed_id"][2:])
    assert list(hub.call("members", feed)) == [*o["members"][1:], newcomer.address]
    assert str(settlement.call("coordinator")) == coordinator.address
    store.close()
