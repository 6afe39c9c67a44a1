"""The SDK's chain side against a coordinator settling on the in-process chain, through the real
API: deposit → trade → batch posted and finalised → the trader verifies its account against the
root it reads from the Settlement contract; tampered proofs, a wrong root, a stale batch and a node
that lies about the balance are refused; the proof endpoint's errors are strict; force-withdraw and
claim pay out; after a freeze, ``exit_after_freeze`` pays the proven free collateral."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from clearhouse.chain import InProcessChain
from clearhouse.errors import ConfigError, ContractRevert, InvalidProof
from clearhouse.messages import Side, TimeInForce
from clearhouse.sdk import ChainAccess, Client
from clearhouse.settlement.exits import compute_exit_free
from clearhouse.settlement.state import decode_account
from clearhouse.sim import market_world as mw
from clearhouse.sim.chain_node import ChainNode, start_chain_node
from clearhouse.sim.expiry_chain import deploy_expiry_system
from clearhouse.sim.settlement_chain import T_FORCE, WINDOW, SettlementSystem, deploy
from clearhouse.sim.settlement_world import make_ctx
from clearhouse.types import Address, Amount

USDC = mw.USDC


@pytest.fixture(scope="module")
def deployed() -> tuple[SettlementSystem, object]:
    s = deploy(InProcessChain(), users=4)
    return s, s.chain.snapshot()


@pytest.fixture
def node(deployed: tuple[SettlementSystem, object], tmp_path: Path) -> Iterator[ChainNode]:
    s, snap = deployed
    s.chain.revert_to(snap)
    n = start_chain_node(tmp_path / "node.db", s)
    yield n
    n.stop()
    s.chain.revert_to(snap)


def _client(n: ChainNode, i: int) -> Client:
    s = n.system
    s.token.transact("mint", s.users[i].address, 100_000 * USDC)
    side = ChainAccess(s.chain, s.settlement.address, s.vault.address, mw.KEYS[i])
    return Client(n.url, mw.KEYS[i], chain=side)


def _side(c: Client) -> ChainAccess:
    side = cast(ChainAccess, c.chain)
    assert isinstance(side, ChainAccess)
    return side


def _trade_and_finalise(n: ChainNode, alice: Client, bob: Client) -> None:
    alice.deposit(60_000 * USDC)
    bob.deposit(40_000 * USDC)
    n.tick()  # the vault's events credited
    for c in (alice, bob):
        c.sign_in()
    _, series = mw.build_listings()
    alice.submit_order(series[0], Side.SELL, mw.px(120), 300)
    fill = bob.submit_order(series[0], Side.BUY, mw.px(121), 100, TimeInForce.IOC)["result"]
    assert [t["quantity"] for t in fill["trades"]] == ["100"]
    n.tick()  # batch 2 (the trade) posted after batch 1 (the deposits)
    assert [b["status"] for b in bob.get_batches()] == ["included", "included"]
    n.system.chain.time_travel(WINDOW)
    n.tick()  # finalised
    assert [b["status"] for b in bob.get_batches()] == ["final", "final"]


def test_a_trader_verifies_its_account_against_the_chain(node: ChainNode) -> None:
    with _client(node, 0) as alice, _client(node, 1) as bob:
        _trade_and_finalise(node, alice, bob)
        assert bob.verify_account() and alice.verify_account()
        side = _side(bob)
        proof = bob.get_account_proof()
        verified = side.check_account_proof(bob.account, proof)
        live = node.coordinator.get_account_json(Address(bob.account))
        assert str(verified.balance) == live["balance"] == proof["balance"]  # nothing pending: equal
        assert verified.balance == 40_000 * USDC - 100 * mw.px(120) // mw.UNIT
        assert verified.leaf is not None and [p.quantity for p in verified.leaf.positions] == [100]
        assert bytes(node.system.settlement.call("batch_root", verified.batch)) == verified.state_root


def _flip(hex_value: str) -> str:
    raw = bytearray(bytes.fromhex(hex_value[2:]))
    raw[-1] ^= 1
    return "0x" + raw.hex()


def _inflated_leaf(proof: dict[str, Any]) -> str:
    raw = bytearray(bytes.fromhex(proof["leaf"][2:]))
    balance = int.from_bytes(raw[20:36], "big") + 1_000 * USDC
    raw[20:36] = balance.to_bytes(16, "big")
    return "0x" + raw.hex()


def test_tampered_proofs_a_wrong_root_and_a_lying_node_are_refused(node: ChainNode) -> None:
    with _client(node, 0) as alice, _client(node, 1) as bob:
        _trade_and_finalise(node, alice, bob)
        side = _side(bob)
        good = bob.get_account_proof()
        inflated = _inflated_leaf(good)
        cases: dict[str, dict[str, Any]] = {
            "siblings": {**good, "siblings": [_flip(good["siblings"][0]), *good["siblings"][1:]]},
            "stateRoot": {**good, "stateRoot": _flip(good["stateRoot"])},
            "preimage": {**good, "preimage": _flip(good["preimage"])},
            "balance": {**good, "balance": str(int(good["balance"]) + 1)},  # lies beside a true leaf
            "positions": {**good, "positions": []},
            "leaf": {**good, "leaf": good["leaf"] + "00"},  # not a canonical encoding
            "address": alice.get_account_proof(),  # alice's true proof shown as bob's
            "accountId": {**good, "accountId": good["accountId"] + 1},
            "batch": {**good, "batch": 0, "stateRoot": "0x" + bytes(node.system.settlement.call(
                "batch_root", 0)).hex()},  # a true but stale root
            "proof": {k: v for k, v in good.items() if k != "bitmap"},
        }
        for field, proof in cases.items():
            with pytest.raises(InvalidProof) as err:
                side.check_account_proof(bob.account, proof)
            assert err.value.field == field, (field, err.value)
            assert bob.verify_account(proof) is False
        # a node that lies about the balance in the leaf too: the path no longer reaches the root
        lie = {**good, "leaf": inflated, "balance": str(decode_account(bytes.fromhex(inflated[2:])).balance)}
        with pytest.raises(InvalidProof) as err:
            side.check_account_proof(bob.account, lie)
        assert err.value.field == "siblings"
        assert bob.verify_account(good)  # and the untouched proof still passes


def test_the_proof_endpoint_is_strict(node: ChainNode) -> None:
    with _client(node, 0) as alice, _client(node, 1) as bob:
        alice.deposit(1_000 * USDC)
        node.tick()
        genesis = alice.get_account_proof()  # deposited, not finalised yet: proven absent at batch 0
        assert genesis["batch"] == 0 and genesis["leaf"] is None and alice.verify_account(genesis)
        for bad in ("0x1234", "0x" + "zz" * 20, "alice"):
            r = httpx.get(f"{node.url}/v1/accounts/{bad}/proof")
            assert r.status_code == 422 and r.json()["field"] and r.json()["code"]
        r = httpx.get(f"{node.url}/v1/accounts/{bob.account}/proof")  # bob never deposited
        assert r.status_code == 404 and r.json()["code"] == "not_found" and r.json()["field"] == "address"
        r = httpx.get(f"{node.url}/v1/accounts/0x{'aB' * 20}/proof")  # a bad EIP-55 checksum
        assert r.status_code == 422 and r.json()["field"] == "address"
        with pytest.raises(ConfigError):
            _side(alice).deposit(Address(bob.account), Amount(1))  # a chain side signs for its own key only


def test_force_withdraw_and_claim_pay_out(node: ChainNode) -> None:
    with _client(node, 0) as alice, _client(node, 1) as bob:
        _trade_and_finalise(node, alice, bob)
        token = node.system.token
        before = int(token.call("balanceOf", bob.account))
        bob.withdraw(2_000 * USDC)  # signed withdrawal through the API
        bob.force_withdraw(500 * USDC)  # and a forced one through the vault
        node.tick()
        node.system.chain.time_travel(WINDOW)
        node.tick()
        assert bob.claim_withdrawal() == 2_500 * USDC
        assert int(token.call("balanceOf", bob.account)) == before + 2_500 * USDC
        assert bob.claim_withdrawal() == 0  # nothing left to claim, nothing paid twice
        assert bob.verify_account()
        assert _side(bob).check_account_proof(bob.account, bob.get_account_proof()).balance == int(
            node.coordinator.get_account_json(Address(bob.account))["balance"])


@pytest.fixture
def expiry_node(tmp_path: Path) -> Iterator[ChainNode]:
    """A node on a deployment whose verifier reads an ``ExpiryRegistry`` (exits with positions)."""
    n = start_chain_node(tmp_path / "node.db", deploy_expiry_system(InProcessChain(), users=4).s)
    yield n
    n.stop()


def test_exit_after_a_freeze_pays_the_proven_free_collateral(expiry_node: ChainNode) -> None:
    node = expiry_node
    with _client(node, 0) as alice, _client(node, 1) as bob:
        _trade_and_finalise(node, alice, bob)
        proof = alice.get_account_proof()  # the last final state, proven before the node stops serving
        with pytest.raises(InvalidProof):
            alice.exit_after_freeze(proof)  # not frozen yet
        # the coordinator stops ticking: alice's forced withdrawal is never served
        alice.force_withdraw(1_000 * USDC)
        s = node.system
        s.chain.time_travel(T_FORCE + 1)
        s.settlement.transact("freeze")
        leaf = decode_account(bytes.fromhex(proof["leaf"][2:]))
        expected = compute_exit_free(leaf, make_ctx())
        assert leaf.positions and 0 < expected < leaf.balance  # a short call locks collateral
        before = int(s.token.call("balanceOf", alice.account))
        assert alice.exit_after_freeze(proof) == expected
        assert int(s.token.call("balanceOf", alice.account)) == before + expected
        with pytest.raises(ContractRevert, match="already exited"):
            alice.exit_after_freeze(proof)
        bob_leaf = decode_account(bytes.fromhex(bob.get_account_proof()["leaf"][2:]))
        assert bob.exit_after_freeze() == compute_exit_free(bob_leaf, make_ctx()) == bob_leaf.balance  # long only
