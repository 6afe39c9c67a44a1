"""Vault.vy: one test per code path (registry, deposit queue, forced queue, payouts), both backends."""

from __future__ import annotations

import pytest

from clearhouse.chain import Chain
from clearhouse.errors import ContractRevert
from clearhouse.merkle.hashing import ZERO_DIGEST
from clearhouse.settlement.state import compute_deposit_hash, compute_forced_hash
from clearhouse.sim.settlement_chain import USDC, SettlementSystem, deploy
from clearhouse.types import AccountId, Address, Amount, Digest


@pytest.fixture
def system(chain: Chain) -> SettlementSystem:
    return deploy(chain, users=3)


def test_deposits_register_ids_in_order_and_extend_the_hash_chain(system: SettlementSystem) -> None:
    system.deposit(1, 50)
    system.deposit(0, 20)
    system.deposit(1, 7)
    v = system.vault
    u = [user.address for user in system.users]
    assert v.call("account_of", u[1]) == (True, 0)
    assert v.call("account_of", u[0]) == (True, 1)
    assert v.call("account_of", u[2]) == (False, 0)
    assert v.call("owner_of", 1) == u[0]
    assert v.call("account_count") == 2
    expected = ZERO_DIGEST
    for n, (account, owner, amount) in enumerate([(0, u[1], 50), (1, u[0], 20), (0, u[1], 7)], start=1):
        expected = compute_deposit_hash(Digest(expected), AccountId(account), Address(owner),
                                        Amount(amount * USDC))
        assert v.call("deposit_hash", n) == expected
    assert v.call("deposit_count") == 3
    assert system.balance(v.address) == 77 * USDC == v.call("outstanding")


def test_deposit_event_carries_the_link(system: SettlementSystem) -> None:
    user = system.users[0]
    system.token.transact("mint", user.address, USDC)
    system.token.transact("approve", system.vault.address, USDC, sender=user)
    receipt = system.vault.transact("deposit", USDC, sender=user)
    args = receipt.events_named("Deposited")[0].args
    assert args["account"] == 0 and args["index"] == 0 and args["amount"] == USDC
    assert args["queue_hash"] == system.vault.call("deposit_hash", 1)
    assert receipt.events_named("AccountRegistered")[0].args == {"account": 0, "owner": user.address}


def test_deposit_rejects_zero_missing_allowance_and_the_cap(system: SettlementSystem) -> None:
    user = system.users[0]
    with pytest.raises(ContractRevert, match="vault: zero amount"):
        system.vault.transact("deposit", 0, sender=user)
    with pytest.raises(ContractRevert, match="token: insufficient allowance"):
        system.vault.transact("deposit", USDC, sender=user)
    cap = 2**128 - 1
    system.token.transact("mint", user.address, cap + 1)
    system.token.transact("approve", system.vault.address, cap + 1, sender=user)
    system.vault.transact("deposit", cap, sender=user)
    with pytest.raises(ContractRevert, match="vault: deposit cap"):
        system.vault.transact("deposit", 1, sender=user)


def test_queue_reads_past_the_end_revert(system: SettlementSystem) -> None:
    with pytest.raises(ContractRevert, match="vault: beyond deposit queue"):
        system.vault.call("deposit_hash", 1)
    with pytest.raises(ContractRevert, match="vault: beyond forced queue"):
        system.vault.call("forced_hash", 1)
    assert system.vault.call("deposit_hash", 0) == ZERO_DIGEST


def test_forced_withdrawal_queue_records_entry_and_time(system: SettlementSystem) -> None:
    system.deposit(0, 10)
    user = system.users[0]
    receipt = system.vault.transact("request_forced_withdrawal", 4 * USDC, sender=user)
    args = receipt.events_named("ForcedWithdrawalRequested")[0].args
    assert args["index"] == 0 and args["account"] == 0 and args["requested"] == 4 * USDC
    expected = compute_forced_hash(Digest(ZERO_DIGEST), AccountId(0), Address(user.address),
                                   Amount(4 * USDC))
    assert system.vault.call("forced_hash", 1) == expected == args["queue_hash"]
    assert system.vault.call("forced_count") == 1
    assert abs(system.vault.call("forced_time", 0) - system.chain.now()) <= 2


def test_forced_withdrawal_needs_an_account_and_a_sane_amount(system: SettlementSystem) -> None:
    with pytest.raises(ContractRevert, match="vault: no account"):
        system.vault.transact("request_forced_withdrawal", USDC, sender=system.users[0])
    system.deposit(0, 1)
    with pytest.raises(ContractRevert, match="vault: zero amount"):
        system.vault.transact("request_forced_withdrawal", 0, sender=system.users[0])
    with pytest.raises(ContractRevert, match="vault: amount too large"):
        system.vault.transact("request_forced_withdrawal", 2**128, sender=system.users[0])


def test_only_settlement_pays_and_settlement_is_set_once(system: SettlementSystem) -> None:
    system.deposit(0, 1)
    with pytest.raises(ContractRevert, match="vault: not settlement"):
        system.vault.transact("pay", system.users[0].address, 1)
    with pytest.raises(ContractRevert, match="vault: settlement already set"):
        system.vault.transact("set_settlement", system.users[0].address)
    with pytest.raises(ContractRevert, match="vault: not admin"):
        system.vault.transact("set_settlement", system.users[0].address, sender=system.chain.accounts[2])


def test_constructor_and_wiring_checks(chain: Chain) -> None:
    with pytest.raises(ContractRevert, match="vault: zero token"):
        chain.deploy("Vault", "0x" + "00" * 20, 1, 1)
    token = chain.deploy("mocks/TestToken", "T", "T")
    for cap, window in ((0, 1), (1, 0)):
        with pytest.raises(ContractRevert, match="vault: bad outflow cap"):
            chain.deploy("Vault", token.address, cap, window)
    vault = chain.deploy("Vault", token.address, 1, 1)
    with pytest.raises(ContractRevert, match="vault: zero settlement"):
        vault.transact("set_settlement", "0x" + "00" * 20)
