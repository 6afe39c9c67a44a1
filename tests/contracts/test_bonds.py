"""Bonds.vy: one test per code path (bond, unbond, withdraw, slash, admin, snapshots), both backends."""

from __future__ import annotations

import pytest
from dispute_system import DAY, PARAMS, USDC, DisputeSystem, deploy_dispute_system

from clearhouse.chain import Chain
from clearhouse.disputes import Role, Stake, compute_slash, compute_stake_at
from clearhouse.errors import ContractRevert
from clearhouse.types import Amount, Timestamp

ARB = int(Role.ARBITRATOR)
COORD = int(Role.COORDINATOR)


@pytest.fixture
def system(chain: Chain) -> DisputeSystem:
    """The dispute contracts, with ``accounts[9]`` registered as a coordinator-role slasher."""
    s = deploy_dispute_system(chain)
    s.bonds.transact("set_slasher", chain.accounts[9].address, COORD, True)
    return s


def _slash(s: DisputeSystem, who: str, amount: int, reward_to: str, reward: int,
           role: int = COORD) -> dict[str, object]:
    receipt = s.bonds.transact("slash", who, role, amount, reward_to, reward, sender=s.chain.accounts[9])
    return receipt.events_named("Slashed")[0].args


# --- construction --------------------------------------------------------------------------


def test_constructor_rejects_zero_token_and_zero_delay(chain: Chain) -> None:
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    with pytest.raises(ContractRevert, match="bonds: zero token"):
        chain.deploy("Bonds", "0x" + "00" * 20, DAY)
    with pytest.raises(ContractRevert, match="bonds: zero unbonding delay"):
        chain.deploy("Bonds", token.address, 0)


def test_roles_and_parameters_are_public(system: DisputeSystem) -> None:
    b = system.bonds
    assert [b.call(f"ROLE_{r.name}") for r in Role] == [r.value for r in Role]
    assert b.call("ROLE_COUNT") == len(Role)
    assert b.call("token") == system.token.address
    assert b.call("unbonding_delay") == PARAMS.unbonding_delay
    assert b.call("admin") == system.admin.address


# --- bond ----------------------------------------------------------------------------------


def test_bond_moves_tokens_and_counts_stake(system: DisputeSystem) -> None:
    alice = system.chain.accounts[1]
    system.fund(alice, 500 * USDC, system.bonds)
    receipt = system.bonds.transact("bond", ARB, 300 * USDC, sender=alice)
    assert receipt.events_named("Bonded")[0].args == {
        "who": alice.address, "role": ARB, "amount": 300 * USDC, "stake": 300 * USDC}
    system.bonds.transact("bond", ARB, 200 * USDC, sender=alice)
    assert system.bonds.call("stake_of", alice.address, ARB) == 500 * USDC
    assert system.bonds.call("stake_of", alice.address, COORD) == 0
    assert system.bonds.call("total_stake", ARB) == 500 * USDC
    assert system.balance(system.bonds.address) == 500 * USDC
    assert system.balance(alice.address) == 0


def test_bond_rejects_unknown_role_zero_amount_and_missing_allowance(system: DisputeSystem) -> None:
    alice = system.chain.accounts[1]
    system.fund(alice, 10 * USDC, system.bonds)
    with pytest.raises(ContractRevert, match="bonds: unknown role"):
        system.bonds.transact("bond", 4, USDC, sender=alice)
    with pytest.raises(ContractRevert, match="bonds: zero amount"):
        system.bonds.transact("bond", ARB, 0, sender=alice)
    with pytest.raises(ContractRevert, match="token: insufficient allowance"):
        system.bonds.transact("bond", ARB, 11 * USDC, sender=alice)


def test_bond_above_the_stake_cap_reverts(system: DisputeSystem) -> None:
    alice = system.chain.accounts[1]
    cap = system.bonds.call("MAX_TOTAL_STAKE")
    assert cap == 2**128 - 1
    system.bond(alice, Role.WATCHER, cap)
    system.fund(alice, 1, system.bonds)
    with pytest.raises(ContractRevert, match="bonds: stake cap"):
        system.bonds.transact("bond", int(Role.WATCHER), 1, sender=alice)


# --- unbond and withdraw -------------------------------------------------------------------


def test_request_unbond_moves_stake_out_of_voting_power(system: DisputeSystem) -> None:
    chain, alice = system.chain, system.chain.accounts[1]
    system.bond(alice, Role.ARBITRATOR, 100 * USDC)
    receipt = system.bonds.transact("request_unbond", ARB, 40 * USDC, sender=alice)
    ready_at = chain.now() + PARAMS.unbonding_delay
    assert receipt.events_named("UnbondRequested")[0].args == {
        "who": alice.address, "role": ARB, "amount": 40 * USDC, "unbonding": 40 * USDC,
        "ready_at": ready_at}
    assert system.bonds.call("stake_of", alice.address, ARB) == 60 * USDC
    assert system.bonds.call("total_stake", ARB) == 60 * USDC
    assert system.bonds.call("total_unbonding", ARB) == 40 * USDC
    assert system.bonds.call("unbonding_of", alice.address, ARB) == (40 * USDC, ready_at)
    assert system.bonds.call("slashable_of", alice.address, ARB) == 100 * USDC


def test_a_second_unbond_request_adds_and_restarts_the_delay(system: DisputeSystem) -> None:
    chain, alice = system.chain, system.chain.accounts[1]
    system.bond(alice, Role.ARBITRATOR, 100 * USDC)
    system.bonds.transact("request_unbond", ARB, 10 * USDC, sender=alice)
    chain.time_travel(DAY)
    system.bonds.transact("request_unbond", ARB, 5 * USDC, sender=alice)
    assert system.bonds.call("unbonding_of", alice.address, ARB) == (
        15 * USDC, chain.now() + PARAMS.unbonding_delay)


def test_request_unbond_rejects_zero_and_more_than_active(system: DisputeSystem) -> None:
    alice = system.chain.accounts[1]
    system.bond(alice, Role.ARBITRATOR, 100 * USDC)
    with pytest.raises(ContractRevert, match="bonds: zero amount"):
        system.bonds.transact("request_unbond", ARB, 0, sender=alice)
    with pytest.raises(ContractRevert, match="bonds: insufficient stake"):
        system.bonds.transact("request_unbond", ARB, 100 * USDC + 1, sender=alice)
    with pytest.raises(ContractRevert, match="bonds: unknown role"):
        system.bonds.transact("request_unbond", 7, 1, sender=alice)


def test_withdraw_before_the_delay_reverts_then_pays_once(system: DisputeSystem) -> None:
    chain, alice = system.chain, system.chain.accounts[1]
    system.bond(alice, Role.ARBITRATOR, 100 * USDC)
    system.bonds.transact("request_unbond", ARB, 30 * USDC, sender=alice)
    chain.time_travel(PARAMS.unbonding_delay - 10)
    with pytest.raises(ContractRevert, match="bonds: unbonding not over"):
        system.bonds.transact("withdraw", ARB, sender=alice)
    chain.time_travel(10)
    receipt = system.bonds.transact("withdraw", ARB, sender=alice)
    assert receipt.events_named("Withdrawn")[0].args == {
        "who": alice.address, "role": ARB, "amount": 30 * USDC}
    assert system.balance(alice.address) == 30 * USDC
    assert system.bonds.call("unbonding_of", alice.address, ARB) == (0, 0)
    assert system.bonds.call("total_unbonding", ARB) == 0
    with pytest.raises(ContractRevert, match="bonds: nothing unbonding"):
        system.bonds.transact("withdraw", ARB, sender=alice)


# --- slash ---------------------------------------------------------------------------------


def test_only_a_registered_slasher_for_that_role_can_slash(system: DisputeSystem) -> None:
    accounts = system.chain.accounts
    system.bond(accounts[1], Role.COORDINATOR, 100 * USDC)
    system.bond(accounts[1], Role.ARBITRATOR, 100 * USDC)
    with pytest.raises(ContractRevert, match="bonds: not a slasher"):
        system.bonds.transact("slash", accounts[1].address, COORD, 1, accounts[2].address, 0,
                              sender=accounts[2])
    with pytest.raises(ContractRevert, match="bonds: not a slasher"):  # registered for another role
        system.bonds.transact("slash", accounts[1].address, ARB, 1, accounts[2].address, 0,
                              sender=accounts[9])
    with pytest.raises(ContractRevert, match="bonds: unknown role"):
        system.bonds.transact("slash", accounts[1].address, 9, 1, accounts[2].address, 0,
                              sender=accounts[9])
    system.bonds.transact("set_slasher", accounts[9].address, COORD, False)
    with pytest.raises(ContractRevert, match="bonds: not a slasher"):
        system.bonds.transact("slash", accounts[1].address, COORD, 1, accounts[2].address, 0,
                              sender=accounts[9])


def test_slash_splits_reward_and_insurance_exactly(system: DisputeSystem) -> None:
    coordinator, watcher = system.chain.accounts[1], system.chain.accounts[2]
    system.bond(coordinator, Role.COORDINATOR, 1_000 * USDC)
    system.bond(coordinator, Role.ARBITRATOR, 50 * USDC)
    args = _slash(system, coordinator.address, 400 * USDC, watcher.address, 150 * USDC)
    assert args == {"who": coordinator.address, "role": COORD, "slasher": system.chain.accounts[9].address,
                    "requested": 400 * USDC, "slashed": 400 * USDC, "reward": 150 * USDC,
                    "reward_to": watcher.address, "insurance": 250 * USDC}
    assert system.balance(watcher.address) == 150 * USDC
    assert system.bonds.call("insurance_fund") == 250 * USDC
    assert system.bonds.call("stake_of", coordinator.address, COORD) == 600 * USDC
    assert system.bonds.call("stake_of", coordinator.address, ARB) == 50 * USDC  # other role untouched
    assert system.balance(system.bonds.address) == 600 * USDC + 50 * USDC + 250 * USDC


def test_slash_more_than_stake_clamps_and_reports_what_was_taken(system: DisputeSystem) -> None:
    coordinator, watcher = system.chain.accounts[1], system.chain.accounts[2]
    system.bond(coordinator, Role.COORDINATOR, 100 * USDC)
    system.bonds.transact("request_unbond", COORD, 30 * USDC, sender=coordinator)
    # active (70) is taken first, then unbonding (30); the reward clamps to what was slashed
    args = _slash(system, coordinator.address, 10**30, watcher.address, 10**30)
    assert (args["slashed"], args["reward"], args["insurance"]) == (100 * USDC, 100 * USDC, 0)
    expected = compute_slash(Stake(Amount(70 * USDC), Amount(30 * USDC)), Amount(10**30), Amount(10**30))
    assert (expected.slashed, expected.reward, expected.insurance) == (100 * USDC, 100 * USDC, 0)
    assert system.bonds.call("slashable_of", coordinator.address, COORD) == 0
    assert system.bonds.call("unbonding_of", coordinator.address, COORD)[0] == 0
    assert system.bonds.call("total_unbonding", COORD) == 0
    with pytest.raises(ContractRevert, match="bonds: nothing unbonding"):
        system.bonds.transact("withdraw", COORD, sender=coordinator)
    # nothing left: slashing again moves nothing and does not revert
    args = _slash(system, coordinator.address, 5, watcher.address, 5)
    assert (args["slashed"], args["reward"]) == (0, 0)


def test_unbonding_stake_stays_slashable_until_withdrawn(system: DisputeSystem) -> None:
    chain, coordinator = system.chain, system.chain.accounts[1]
    system.bond(coordinator, Role.COORDINATOR, 100 * USDC)
    system.bonds.transact("request_unbond", COORD, 100 * USDC, sender=coordinator)
    chain.time_travel(PARAMS.unbonding_delay - 1)
    args = _slash(system, coordinator.address, 60 * USDC, "0x" + "00" * 20, 0)
    assert args["slashed"] == 60 * USDC and args["insurance"] == 60 * USDC
    chain.time_travel(1)
    system.bonds.transact("withdraw", COORD, sender=coordinator)
    assert system.balance(coordinator.address) == 40 * USDC


def test_slash_with_a_reward_to_the_zero_address_reverts(system: DisputeSystem) -> None:
    coordinator = system.chain.accounts[1]
    system.bond(coordinator, Role.COORDINATOR, 100 * USDC)
    with pytest.raises(ContractRevert, match="bonds: reward to zero address"):
        _slash(system, coordinator.address, 10, "0x" + "00" * 20, 1)


def test_the_zero_address_has_no_stake_to_slash(system: DisputeSystem) -> None:
    """The role totals are kept under the zero address; they are not anyone's stake."""
    system.bond(system.chain.accounts[1], Role.COORDINATOR, 100 * USDC)
    zero = "0x" + "00" * 20
    assert system.bonds.call("stake_of", zero, COORD) == 0
    assert system.bonds.call("slashable_of", zero, COORD) == 0
    with pytest.raises(ContractRevert, match="bonds: zero address"):
        _slash(system, zero, 10, zero, 0)
    assert system.bonds.call("total_stake", COORD) == 100 * USDC


# --- administration ------------------------------------------------------------------------


def test_admin_only_functions(system: DisputeSystem) -> None:
    accounts = system.chain.accounts
    mallory = accounts[5]
    with pytest.raises(ContractRevert, match="bonds: not admin"):
        system.bonds.transact("set_slasher", mallory.address, COORD, True, sender=mallory)
    with pytest.raises(ContractRevert, match="bonds: not admin"):
        system.bonds.transact("transfer_admin", mallory.address, sender=mallory)
    with pytest.raises(ContractRevert, match="bonds: not admin"):
        system.bonds.transact("spend_insurance", mallory.address, 0, sender=mallory)
    with pytest.raises(ContractRevert, match="bonds: zero slasher"):
        system.bonds.transact("set_slasher", "0x" + "00" * 20, COORD, True)
    with pytest.raises(ContractRevert, match="bonds: unknown role"):
        system.bonds.transact("set_slasher", mallory.address, 4, True)
    with pytest.raises(ContractRevert, match="bonds: zero admin"):
        system.bonds.transact("transfer_admin", "0x" + "00" * 20)


def test_set_slasher_and_transfer_admin_emit_and_take_effect(system: DisputeSystem) -> None:
    accounts = system.chain.accounts
    governor = accounts[8]
    receipt = system.bonds.transact("set_slasher", accounts[7].address, int(Role.ORACLE), True)
    assert receipt.events_named("SlasherSet")[0].args == {
        "slasher": accounts[7].address, "role": int(Role.ORACLE), "enabled": True}
    assert system.bonds.call("is_slasher", accounts[7].address, int(Role.ORACLE))
    receipt = system.bonds.transact("transfer_admin", governor.address)
    assert receipt.events_named("AdminTransferred")[0].args == {
        "previous": system.admin.address, "admin": governor.address}
    with pytest.raises(ContractRevert, match="bonds: not admin"):
        system.bonds.transact("set_slasher", accounts[7].address, COORD, True)
    system.bonds.transact("set_slasher", accounts[7].address, COORD, True, sender=governor)


def test_spend_insurance_pays_from_the_fund_only(system: DisputeSystem) -> None:
    accounts = system.chain.accounts
    system.bond(accounts[1], Role.COORDINATOR, 100 * USDC)
    system.bond(accounts[2], Role.COORDINATOR, 100 * USDC)
    _slash(system, accounts[1].address, 30 * USDC, accounts[3].address, 10 * USDC)
    assert system.bonds.call("insurance_fund") == 20 * USDC
    with pytest.raises(ContractRevert, match="bonds: insufficient insurance"):
        system.bonds.transact("spend_insurance", accounts[4].address, 20 * USDC + 1)
    receipt = system.bonds.transact("spend_insurance", accounts[4].address, 20 * USDC)
    assert receipt.events_named("InsuranceSpent")[0].args == {"to": accounts[4].address, "amount": 20 * USDC}
    assert system.bonds.call("insurance_fund") == 0
    assert system.balance(system.bonds.address) == 70 * USDC + 100 * USDC


# --- snapshots -----------------------------------------------------------------------------


def test_stake_at_reads_past_seconds_only(system: DisputeSystem) -> None:
    chain, alice = system.chain, system.chain.accounts[1]
    system.bond(alice, Role.ARBITRATOR, 100 * USDC)
    t1 = chain.now()
    chain.time_travel(100)
    system.bond(alice, Role.ARBITRATOR, 50 * USDC)
    t2 = chain.now()
    chain.time_travel(100)
    system.bonds.transact("request_unbond", ARB, 120 * USDC, sender=alice)
    t3 = chain.now()
    chain.time_travel(1)
    expected = {t1 - 1: 0, t1: 100, t2 - 1: 100, t2: 150, t3 - 1: 150, t3: 30}
    for t, value in expected.items():
        assert system.bonds.call("stake_at", alice.address, ARB, t) == value * USDC, t
        assert system.bonds.call("total_stake_at", ARB, t) == value * USDC, t
    assert system.bonds.call("stake_at", alice.address, COORD, t3) == 0
    with pytest.raises(ContractRevert, match="bonds: future lookup"):
        system.bonds.call("stake_at", alice.address, ARB, chain.now() + 10)
    with pytest.raises(ContractRevert, match="bonds: future lookup"):
        system.bonds.call("total_stake_at", ARB, chain.now() + 10)
    with pytest.raises(ContractRevert, match="bonds: zero address"):
        system.bonds.call("stake_at", "0x" + "00" * 20, ARB, t1)


def test_checkpoints_binary_search_matches_the_reference(system: DisputeSystem) -> None:
    chain, alice, bob = system.chain, system.chain.accounts[1], system.chain.accounts[2]
    system.fund(alice, 10_000 * USDC, system.bonds)
    system.bond(bob, Role.ARBITRATOR, 7 * USDC)
    bob_at = chain.now()
    chain.time_travel(5)
    history: list[tuple[Timestamp, Amount]] = []
    totals: list[tuple[Timestamp, Amount]] = []
    for i in range(13):
        writes = [("bond", (i + 1) * USDC)] + ([("request_unbond", 2 * USDC)] if i % 4 == 3 else [])
        for fn, amount in writes:  # sometimes two writes in one second (in-process, always)
            system.bonds.transact(fn, ARB, amount, sender=alice)
            stake = Amount(system.bonds.call("stake_of", alice.address, ARB))
            history.append((chain.now(), stake))
            totals.append((chain.now(), Amount(stake + 7 * USDC)))
        chain.time_travel(7 + i)
    # one checkpoint per write (13 bonds, 3 unbonds), whatever the seconds they landed in
    assert system.bonds.call("checkpoint_count", alice.address, ARB) == 13 + 3
    totals.insert(0, (bob_at, Amount(7 * USDC)))
    for t in range(bob_at - 2, chain.now() - 1, 3):
        ts = Timestamp(t)
        assert system.bonds.call("stake_at", alice.address, ARB, ts) == compute_stake_at(history, ts)
        assert system.bonds.call("total_stake_at", ARB, ts) == compute_stake_at(totals, ts)


def test_slashing_reduces_voting_power_from_then_on(system: DisputeSystem) -> None:
    chain, alice = system.chain, system.chain.accounts[1]
    system.bonds.transact("set_slasher", chain.accounts[9].address, ARB, True)
    system.bond(alice, Role.ARBITRATOR, 100 * USDC)
    chain.time_travel(10)
    before = chain.now()
    _slash(system, alice.address, 25 * USDC, alice.address, 0, role=ARB)
    after = chain.now()
    chain.time_travel(1)
    assert system.bonds.call("stake_at", alice.address, ARB, before - 1) == 100 * USDC
    assert system.bonds.call("stake_at", alice.address, ARB, after) == 75 * USDC
    assert system.bonds.call("total_stake_at", ARB, after) == 75 * USDC
