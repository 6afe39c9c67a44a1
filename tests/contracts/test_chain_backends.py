"""The chain interface behaves the same on the in-process EVM and on anvil (JSON-RPC)."""

from __future__ import annotations

import pytest

from clearhouse.chain import Chain, InProcessChain, RpcChain
from clearhouse.chain.inprocess import DEV_CHAIN_ID
from clearhouse.errors import ChainError, ContractRevert

USDC = 10**6


def test_token_has_six_decimals_and_moves_balances(chain: Chain) -> None:
    alice, bob = chain.accounts[1], chain.accounts[2]
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    assert token.call("decimals") == 6
    assert token.call("symbol") == "tUSD"
    token.transact("mint", alice.address, 1_000 * USDC)
    receipt = token.transact("transfer", bob.address, 250 * USDC, sender=alice)
    (event,) = receipt.events_named("Transfer")
    assert event.args == {"sender": alice.address, "receiver": bob.address, "value": 250 * USDC}
    assert event.address == token.address
    assert token.call("balanceOf", alice.address) == 750 * USDC
    assert token.call("balanceOf", bob.address) == 250 * USDC
    assert token.call("totalSupply") == 1_000 * USDC


def test_revert_surfaces_typed_with_reason_and_changes_nothing(chain: Chain) -> None:
    alice, bob = chain.accounts[1], chain.accounts[2]
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    token.transact("mint", alice.address, 5 * USDC)
    with pytest.raises(ContractRevert) as info:
        token.transact("transfer", bob.address, 6 * USDC, sender=alice)
    assert info.value.reason == "token: insufficient balance"
    assert info.value.code == "contract_revert"
    assert token.call("balanceOf", alice.address) == 5 * USDC
    with pytest.raises(ContractRevert, match="token: insufficient allowance"):
        token.transact("transferFrom", alice.address, bob.address, 1, sender=bob)


def test_view_revert_and_explicit_gas_revert_carry_reason(chain: Chain) -> None:
    probe = chain.deploy("mocks/ChainProbe", 100)
    assert probe.call("fail_view", 4) == 2
    with pytest.raises(ContractRevert) as info:
        probe.call("fail_view", 3)
    assert info.value.reason == "probe: odd"
    with pytest.raises(ContractRevert) as info:
        probe.transact("store", 1, 13, gas=200_000)  # sent and mined (anvil) despite reverting
    assert info.value.reason == "probe: unlucky value"


def test_chain_id_is_read_live_from_the_evm(chain: Chain) -> None:
    probe = chain.deploy("mocks/ChainProbe", 0)
    assert chain.chain_id == DEV_CHAIN_ID == probe.call("chain_id")


def test_time_travel_moves_block_timestamp(chain: Chain) -> None:
    probe = chain.deploy("mocks/ChainProbe", 3600)
    with pytest.raises(ContractRevert, match="probe: too early"):
        probe.transact("after_deadline")
    before = chain.now()
    chain.time_travel(3601)
    assert chain.now() >= before + 3601
    probe.transact("after_deadline")


def test_snapshot_and_revert_restore_state(chain: Chain) -> None:
    probe = chain.deploy("mocks/ChainProbe", 0)
    probe.transact("store", 1, 5)
    snap = chain.snapshot()
    probe.transact("store", 1, 0)
    probe.transact("store", 2, 7)
    chain.revert_to(snap)
    assert probe.call("slots", 1) == 5
    assert probe.call("slots", 2) == 0


def test_unknown_function_and_contract_are_clear_errors(chain: Chain) -> None:
    probe = chain.deploy("mocks/ChainProbe", 0)
    with pytest.raises(ChainError, match="no function nope"):
        probe.call("nope")
    with pytest.raises(ChainError, match="no contract source"):
        chain.deploy("mocks/DoesNotExist")


def _gas_script(chain: Chain) -> list[int]:
    """A fixed sequence of transactions touching every gas rule the backends must agree on."""
    alice, bob = chain.accounts[1], chain.accounts[2]
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    probe = chain.deploy("mocks/ChainProbe", 0)
    receipts = [
        token.transact("mint", alice.address, 10**12),               # cold slots, event
        token.transact("transfer", bob.address, 10**6, sender=alice),
        token.transact("transfer", bob.address, 10**12 - 10**6, sender=alice),  # clears a slot
        token.transact("approve", bob.address, 2**256 - 1, sender=bob),
        probe.transact("store", 1, 5),
        probe.transact("store", 1, 0),                                 # refund (EIP-3529 cap)
        probe.transact("store", 1, 0),                                 # no-op write
        probe.transact("store_many", list(range(1, 200))),            # calldata-heavy
        probe.transact("store_many", [0] * 200),                       # zero bytes, refunds
        chain.transact(bob.address, b"\x01" * 10_000, sender=alice),  # EIP-7623 calldata floor
    ]
    return [r.gas_used for r in receipts]


def test_gas_used_is_identical_on_both_backends(inprocess_chain: InProcessChain,
                                                rpc_chain: RpcChain) -> None:
    assert _gas_script(inprocess_chain) == _gas_script(rpc_chain)
