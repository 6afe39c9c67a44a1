"""``contracts/WindowVerifier.vy`` (``IWindowVerifier``): a window is checked against the stored
header, re-executed from its checkpoint, and fraud is reported to the settlement (a sink here)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from clearhouse.chain import Chain, Contract, InProcessChain
from clearhouse.errors import ContractRevert
from clearhouse.settlement import (
    Operation,
    SettlementContext,
    SettlementState,
    StateCommitment,
    TradeOp,
    apply_batch,
    compute_genesis_state,
    compute_header_hash,
    compute_ops_hash,
    compute_window_hash,
    compute_window_witness,
    compute_windows,
    decode_operations,
    encode_auth,
    encode_core,
    encode_header,
)
from clearhouse.settlement.header import BatchHeader
from clearhouse.settlement.state import encode_counters
from clearhouse.settlement.witness import encode_operation_witness
from clearhouse.sim.settlement_world import DOMAIN, E1, E2, NOW, make_ctx
from clearhouse.types import Digest

K = 4
VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "settlement.json").read_text())


def _preimage(c: StateCommitment) -> bytes:
    return c.accounts_root + c.consumed_root + encode_counters(c.counters)


def _deploy(chain: Chain, ctx: SettlementContext) -> tuple[Contract, Contract]:
    sink = chain.deploy("mocks/SettlementSink")
    trade_rules, rules = chain.deploy("StfTradeRules"), chain.deploy("StfRules")
    verifier = chain.deploy("WindowVerifier", sink.address, trade_rules.address, rules.address,
                            DOMAIN.separator, ctx.contract_unit, ctx.max_positions, ctx.max_clock_lag,
                            ctx.fee_account, ctx.max_fee_bps, "0x" + "00" * 20)
    for e in (E1, E2):
        verifier.transact("list_expiry", (e.expiry_id, e.underlying_word, e.quote_word, e.timestamp, e.cap,
                                          False, 0))
    return verifier, sink


def _ops() -> list[Operation]:
    batch = VECTORS["batches"][0]
    return [decode_operations(bytes.fromhex(o["core"][2:]), bytes.fromhex(o["auth"][2:]))[0]
            for o in batch["operations"]]


def _challenge(verifier: Contract, header: BatchHeader, j: int, ops: list[Operation],
               start: SettlementState, ctx: SettlementContext, window: list[Operation] | None = None) -> Any:
    windows = compute_windows(ops, K)
    window = window or ops[j * K:(j + 1) * K]
    witness = compute_window_witness(start, window, ctx)
    return verifier.transact(
        "challenge_execution", header.number, encode_header(header), j,
        b"".join(encode_core(op) for op in window), b"".join(encode_auth(op) for op in window),
        [compute_window_hash(w) for w in windows], _preimage(witness.checkpoint),
        [encode_operation_witness(w) for w in witness.operations])


@pytest.fixture(scope="module")
def world() -> tuple[Contract, Contract, SettlementContext, list[Operation], BatchHeader]:
    ctx = make_ctx(NOW + 100, k=K)
    ops = _ops()
    header = apply_batch(compute_genesis_state(), ops, ctx, K).header
    verifier, sink = _deploy(InProcessChain(), ctx)
    return verifier, sink, ctx, ops, header


def _post(sink: Contract, header: BatchHeader) -> None:
    sink.transact("set_header_hash", header.number, compute_header_hash(header))


def test_an_honest_window_is_not_fraud(world: Any) -> None:
    verifier, sink, ctx, ops, header = world
    _post(sink, header)
    for j in range(len(header.checkpoint_roots)):
        start = apply_batch(compute_genesis_state(), ops[:j * K], ctx, K).state if j else compute_genesis_state()
        with pytest.raises(ContractRevert) as info:
            _challenge(verifier, header, j, ops, start, ctx)
        assert info.value.reason == "verifier: window is correct"


def test_a_wrong_checkpoint_is_reported(world: Any) -> None:
    verifier, sink, ctx, ops, header = world
    roots = list(header.checkpoint_roots)
    roots[0] = Digest(bytes(31) + b"\x01")
    bad = replace(header, number=2, checkpoint_roots=tuple(roots))
    _post(sink, bad)
    before = sink.call("reports")
    _challenge(verifier, bad, 0, ops, compute_genesis_state(), ctx)
    assert sink.call("reports") == before + 1


def test_an_invalid_operation_is_reported(world: Any) -> None:
    verifier, sink, ctx, ops, header = world
    index = next(i for i, op in enumerate(ops) if isinstance(op, TradeOp))
    trade = ops[index]
    assert isinstance(trade, TradeOp)
    forged = [*ops[:index], replace(trade, maker_signature=trade.taker_signature), *ops[index + 1:]]
    bad = replace(header, number=3, ops_hash=compute_ops_hash(compute_windows(forged, K)))
    _post(sink, bad)
    j = index // K
    start = apply_batch(compute_genesis_state(), ops[:j * K], ctx, K).state
    before = sink.call("reports")
    _challenge(verifier, bad, j, forged, start, ctx)
    assert sink.call("reports") == before + 1


def test_a_bad_witness_reverts(world: Any) -> None:
    verifier, sink, ctx, ops, header = world
    _post(sink, header)
    with pytest.raises(ContractRevert) as info:  # window 1 with window 0's start state
        _challenge(verifier, header, 1, ops, compute_genesis_state(), ctx)
    assert info.value.reason == "stf: invalid_witness"
    with pytest.raises(ContractRevert) as info:
        _challenge(verifier, replace(header, number=9), 0, ops, compute_genesis_state(), ctx)
    assert info.value.reason == "verifier: wrong header"


def test_fraud_is_reported_on_both_backends(chain: Chain) -> None:
    ctx = make_ctx(NOW + 100, k=K)
    ops = _ops()
    header = apply_batch(compute_genesis_state(), ops, ctx, K).header
    verifier, sink = _deploy(chain, ctx)
    bad = replace(header, checkpoint_roots=(Digest(bytes(31) + b"\x01"), *header.checkpoint_roots[1:]))
    _post(sink, bad)
    _challenge(verifier, bad, 0, ops, compute_genesis_state(), ctx)
    assert sink.call("reports") == 1
    assert sink.call("last_challenger") == chain.accounts[0].address


def _registry_verifier(chain: Chain, ctx: SettlementContext, listed: tuple[Any, ...]) -> tuple[Contract, Contract]:
    """A verifier wired to an ``ExpiryRegistry`` (over a real oracle hub) listing ``listed``."""
    from clearhouse.sim.oracle_hub import deploy_oracle_system
    hub = deploy_oracle_system(chain, 1).hub
    registry = chain.deploy("ExpiryRegistry", hub.address, 1800, ctx.contract_unit)
    for e in listed:
        registry.transact("list_expiry", e.underlying_word, e.quote_word, e.timestamp, e.cap, bytes(32))
    verifier, sink = _deploy(chain, ctx)
    verifier.transact("set_expiry_registry", registry.address)
    return verifier, sink


def test_a_wired_registry_is_the_context(inprocess_chain: InProcessChain) -> None:
    """Once wired, the registry (not the verifier's own list, which still lists both expiries) is
    what windows are judged with: the same honest window is correct under a registry listing both
    expiries and fraud (an unlisted expiry) under one listing only the later expiry."""
    ctx = make_ctx(NOW + 100, k=K)
    ops = _ops()
    header = apply_batch(compute_genesis_state(), ops, ctx, K).header
    j = next(i for i, op in enumerate(ops) if isinstance(op, TradeOp)) // K
    start = apply_batch(compute_genesis_state(), ops[:j * K], ctx, K).state
    verifier, sink = _registry_verifier(inprocess_chain, ctx, (E1, E2))
    _post(sink, header)
    with pytest.raises(ContractRevert) as info:
        _challenge(verifier, header, j, ops, start, ctx)
    assert info.value.reason == "verifier: window is correct"
    verifier, sink = _registry_verifier(inprocess_chain, ctx, (E2,))
    _post(sink, header)
    _challenge(verifier, header, j, ops, start, ctx)
    assert sink.call("reports") == 1
