"""OracleRewards.vy: one test per code path. Rewards follow the observations each member
contributed to reports stored through the relay, not stake; amounts are the Python rules'
(``clearhouse.incentives.oracle_rewards``) to the base unit."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from oracle_system import build_report, honest_report, observe

from clearhouse.chain import Contract, InProcessChain
from clearhouse.errors import ContractRevert
from clearhouse.incentives.oracle_rewards import (
    ORACLE_REWARD_EPOCH,
    compute_claim_delay,
    compute_claimable_end,
    compute_work_credits,
    compute_work_share,
)
from clearhouse.incentives.slashing import compute_slashable_windows
from clearhouse.oracle import SignedReport, find_equivocations
from clearhouse.oracle.encoding import compute_transmit_args
from clearhouse.sim.incentives import Economy, compute_slashing_params
from clearhouse.sim.oracle_hub import (
    DEFAULT_DISPUTES,
    DEFAULT_HUB,
    USDC,
    OracleSystem,
    deploy_oracle_rewards,
    deploy_oracle_system,
)

EPOCH = 86_400
DELAY = 2 * 3_600
P = 3_000 * USDC


@pytest.fixture
def system() -> OracleSystem:
    return deploy_oracle_system(InProcessChain(), 1)


@pytest.fixture
def relay(system: OracleSystem) -> Contract:
    return system.chain.deploy("OracleRewards", system.token.address, system.hub.address, system.now(), EPOCH,
                               DELAY)


def _send(system: OracleSystem, relay: Contract, signed: SignedReport) -> tuple[str, ...]:
    args = compute_transmit_args(system.domain, system.committee, signed)
    relay.transact("transmit", *args.to_abi())
    return compute_work_credits(args.observers, len(signed.report.observations), system.committee.members)


def _report(system: OracleSystem, round_id: int, members: Sequence[int]) -> SignedReport:
    observations = [observe(system, system.keys[i], round_id, P + i) for i in members]
    signed: SignedReport = build_report(system, round_id, observations, [system.keys[i] for i in members[:2]])
    return signed


def _notify(system: OracleSystem, relay: Contract, amount: int) -> None:
    funder = system.chain.accounts[1]
    system.fund(funder.address, amount, relay, funder)
    relay.transact("notify", amount, sender=funder)


def _claim(system: OracleSystem, relay: Contract, i: int) -> int:
    who = system.account(system.keys[i])
    before = int(system.token.call("balanceOf", who.address))
    relay.transact("claim", sender=who)
    return int(system.token.call("balanceOf", who.address)) - before


def test_constructor_checks_its_parameters(system: OracleSystem) -> None:
    chain, token, hub = system.chain, system.token.address, system.hub.address
    for args, reason in (((token, hub, system.now(), 0, DELAY), "oracle rewards: bad epochs"),
                         ((token, hub, system.now() + 10, EPOCH, DELAY), "oracle rewards: bad epochs"),
                         (("0x" + "00" * 20, hub, system.now(), EPOCH, DELAY), "oracle rewards: zero address")):
        with pytest.raises(ContractRevert) as info:
            chain.deploy("OracleRewards", *args)
        assert info.value.reason == reason


def test_rewards_follow_work_not_stake(system: OracleSystem, relay: Contract) -> None:
    """Members 0-2 observe every round, member 3 (same stake) every other one: it earns for the
    rounds it observed, exactly ``⌊work · rewards / total⌋``; the remainder stays in the contract."""
    work = [0, 0, 0, 0]
    for r in range(1, 11):
        system.chain.time_travel(10)
        members = [0, 1, 2, 3] if r % 2 else [0, 1, 2]
        for member in _send(system, relay, _report(system, r, members)):
            work[system.committee.members.index(member)] += 1
    assert work == [10, 10, 10, 5]
    assert [int(relay.call("work", 0, m)) for m in system.committee.members] == work
    amount = 1_000 * USDC + 7
    _notify(system, relay, amount)
    assert tuple(relay.call("claimable", system.committee.members[0])) == (0, 0)  # epoch 0 still running
    system.chain.time_travel(EPOCH)
    assert tuple(relay.call("claimable", system.committee.members[0])) == (0, 0)  # not past the claim delay
    system.chain.time_travel(DELAY)
    paid = [_claim(system, relay, i) for i in range(4)]
    assert paid == [compute_work_share(w, 35, amount) for w in work]
    assert paid[3] < paid[0] == paid[1] == paid[2]
    assert int(system.token.call("balanceOf", relay.address)) == amount - sum(paid) < 35
    assert _claim(system, relay, 0) == 0  # claimed once


def test_rounds_stored_at_the_hub_directly_earn_nothing(system: OracleSystem, relay: Contract) -> None:
    system.chain.time_travel(10)
    system.transmit(honest_report(system, 1, [P, P, P, P]))
    assert int(relay.call("total_work", 0)) == 0
    _notify(system, relay, 100 * USDC)
    system.chain.time_travel(EPOCH + DELAY)
    assert _claim(system, relay, 0) == 0
    assert int(system.token.call("balanceOf", relay.address)) == 100 * USDC  # an epoch without work keeps it


def test_a_report_the_hub_refuses_credits_nothing(system: OracleSystem, relay: Contract) -> None:
    system.chain.time_travel(10)
    signed = _report(system, 1, [0, 1])  # two observations: below the 2f+1 quorum
    with pytest.raises(ContractRevert) as info:
        _send(system, relay, signed)
    assert info.value.reason is not None and info.value.reason.startswith("oracle: ")
    assert int(relay.call("total_work", 0)) == 0


def test_emissions_and_refusals(system: OracleSystem, relay: Contract) -> None:
    funder = system.chain.accounts[1]
    system.fund(funder.address, 300, relay, funder)
    for fn, args, reason in (("notify", (0,), "oracle rewards: zero amount"),
                             ("fund_emissions", (0, 3), "oracle rewards: zero amount"),
                             ("fund_emissions", (100, 0), "oracle rewards: bad epoch count"),
                             ("fund_emissions", (100, 521), "oracle rewards: bad epoch count")):
        with pytest.raises(ContractRevert) as info:
            relay.transact(fn, *args, sender=funder)
        assert info.value.reason == reason
    relay.transact("fund_emissions", 100, 3, sender=funder)
    assert [int(relay.call("rewards", e)) for e in range(5)] == [0, 100, 100, 100, 0]
    assert int(relay.call("funded")) == 300
    system.chain.time_travel(EPOCH + 10)  # epoch 1: only member 0..2 work
    _send(system, relay, _report(system, 1, [0, 1, 2]))
    system.chain.time_travel(EPOCH + DELAY)
    assert [_claim(system, relay, i) for i in range(4)] == [33, 33, 33, 0]


def test_a_banned_member_claims_nothing_more(system: OracleSystem, relay: Contract) -> None:
    system.chain.time_travel(10)
    _send(system, relay, _report(system, 1, [0, 1, 2, 3]))
    _notify(system, relay, 400)
    system.chain.time_travel(10)
    a, b = (observe(system, system.keys[3], 2, p) for p in (P, P + 1))
    (proof,) = find_equivocations([a, b])
    system.prove(proof, sender=system.chain.accounts[2])
    system.chain.time_travel(EPOCH + DELAY)
    member = system.committee.members[3]
    assert tuple(relay.call("claimable", member)) == (0, 0)
    with pytest.raises(ContractRevert) as info:
        _claim(system, relay, 3)
    assert info.value.reason == "oracle rewards: banned"
    assert [_claim(system, relay, i) for i in range(3)] == [100, 100, 100]
    assert int(system.token.call("balanceOf", relay.address)) == 100  # the banned member's share stays


def test_the_claim_delay_outlasts_a_round_dispute_and_the_rules_agree_with_the_contract(
        system: OracleSystem) -> None:
    """Work is paid only after any round of the epoch could have been ruled wrong (the oracle
    dispute window of the slashing rules), and the deployed delay is the rules' value."""
    windows = compute_slashable_windows(compute_slashing_params(Economy()))
    assert compute_claim_delay(DEFAULT_HUB, DEFAULT_DISPUTES) >= windows["oracle dispute"][1]
    relay = deploy_oracle_rewards(system)
    assert int(relay.call("CLAIM_DELAY")) == compute_claim_delay(system.params, system.dispute_params)
    assert int(relay.call("EPOCH")) == ORACLE_REWARD_EPOCH
    start, delay = int(relay.call("START")), int(relay.call("CLAIM_DELAY"))
    for now in (start, start + delay, start + EPOCH + delay - 1, start + EPOCH + delay, start + 3 * EPOCH + delay):
        assert compute_claimable_end(now, start, EPOCH, delay) == (max(0, now - start - delay) // EPOCH)
    assert compute_work_credits(0x03_00_01, 3, ("a", "b", "c", "d")) == ("b", "a", "d")  # type: ignore[arg-type]
