"""``contracts/lib/stf.vy`` (the window fraud proof) against the Python spec.

Replays ``tests/vectors/settlement.json`` operation by operation (every root equal, every refused
operation reverts with ``"stf: <code>"``), then random windows built by the Python STF (valid ones
give Python's ``verify_window`` root; mutated ones revert or give another root).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearhouse.chain import Chain, Contract, InProcessChain
from clearhouse.errors import ContractRevert, SettlementError
from clearhouse.market.instruments import OptionKind
from clearhouse.settlement import (
    ListedExpiry,
    Operation,
    SettlementContext,
    SettlementState,
    StateCommitment,
    TickOp,
    TradeOp,
    apply_batch,
    apply_operation,
    compute_genesis_state,
    compute_window_witness,
    decode_operations,
    encode_auth,
    encode_core,
    get_state_root,
    verify_window,
)
from clearhouse.settlement.witness import WindowWitness, encode_operation_witness
from clearhouse.sim.settlement_world import (
    E1,
    E2,
    NOW,
    STRIKE,
    USDC,
    deposit,
    make_ctx,
    order_terms,
    px,
    trade,
    withdrawal,
)
from clearhouse.types import Amount, Price, Quantity, Timestamp

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "settlement.json").read_text())


def _expiry(e: ListedExpiry) -> tuple[Any, ...]:
    price = e.settlement_price
    return (e.expiry_id, e.underlying_word, e.quote_word, e.timestamp, e.cap, price is not None, price or 0)


def ctx_args(ctx: SettlementContext) -> tuple[Any, ...]:
    """A :class:`SettlementContext` as the contract's ``Context`` tuple."""
    return (ctx.domain.separator, ctx.timestamp, ctx.contract_unit, ctx.max_positions,
            ctx.checkpoint_interval, ctx.max_clock_lag, ctx.fee_account, ctx.max_fee_bps,
            [_expiry(e) for e in ctx.expiries.values()])


def commitment_args(c: StateCommitment) -> tuple[Any, ...]:
    """A :class:`StateCommitment` as the contract's ``Commitment`` tuple."""
    k = c.counters
    return (c.accounts_root, c.consumed_root,
            (k.deposit_count, k.deposit_hash, k.forced_count, k.forced_hash, k.clock, k.fee_pool))


def window_args(state: SettlementState, ops: list[Operation], ctx: SettlementContext,
                witness: WindowWitness | None = None) -> tuple[Any, ...]:
    """``verify_window``'s arguments for ``ops`` from ``state`` (the Python witness by default)."""
    witness = witness or compute_window_witness(state, ops, ctx)
    return (get_state_root(state), ctx_args(ctx), commitment_args(witness.checkpoint),
            b"".join(encode_core(op) for op in ops), b"".join(encode_auth(op) for op in ops),
            [encode_operation_witness(w) for w in witness.operations])


def deploy_stf(chain: Chain) -> tuple[Contract, Contract]:
    """The verifier harness over its two rule contracts (the fraud proof exceeds EIP-170 in one),
    and the rules contract that exposes the leaf helpers."""
    trade_rules = chain.deploy("StfTradeRules")
    rules = chain.deploy("StfRules")
    return chain.deploy("mocks/StfHarness", trade_rules.address, rules.address), rules


@pytest.fixture(scope="module")
def harness_module() -> tuple[Contract, Contract]:
    """One in-process harness shared by the module's fast tests."""
    return deploy_stf(InProcessChain())


@pytest.fixture
def stf(harness_module: tuple[Contract, Contract]) -> Contract:
    return harness_module[0]


@pytest.fixture
def rules(harness_module: tuple[Contract, Contract]) -> Contract:
    return harness_module[1]


def _root(stf: Contract, args: tuple[Any, ...]) -> bytes:
    """The root of a window the contract finds valid (fails otherwise)."""
    invalid, root, reason = stf.call("verify_window", *args)
    assert (invalid, reason) == (False, "")
    return bytes(root)


def _refusal(stf: Contract, args: tuple[Any, ...]) -> str | None:
    """Why the contract refuses a window: the broken rule it reports (fraud), or its revert
    reason (a bad witness); ``None`` if it returns a root."""
    try:
        invalid, root, reason = stf.call("verify_window", *args)
    except ContractRevert as exc:
        return exc.reason
    if invalid:
        assert bytes(root) == bytes(32)
        return str(reason)
    return None


# --- vectors ------------------------------------------------------------------------------------


def _batch_states() -> list[tuple[SettlementState, list[Operation], SettlementContext]]:
    """Rebuild the vector batches from their bytes (state before, operations, context)."""
    k = VECTORS["constants"]["checkpointInterval"]
    out = []
    state = compute_genesis_state()
    for batch in VECTORS["batches"]:
        prices = {bytes.fromhex(e[2:]): int(p) for e, p in batch["context"]["settlementPrices"].items()
                  if p is not None}
        ctx = make_ctx(int(batch["context"]["timestamp"]), prices=prices or None, k=k)
        ops = [decode_operations(bytes.fromhex(o["core"][2:]), bytes.fromhex(o["auth"][2:]))[0]
               for o in batch["operations"]]
        out.append((state, ops, ctx))
        state = apply_batch(state, ops, ctx).state
    return out


def test_leaf_and_entry_hashes_match_vectors(stf: Contract, rules: Contract) -> None:
    for leaf in VECTORS["leaves"]:
        assert rules.call("account_hash", bytes.fromhex(leaf["encoding"][2:])).hex() == leaf["valueHash"][2:]
    for e in VECTORS["entries"]:
        entry = e["entry"]
        got = stf.call("entry_hash", bytes.fromhex(entry["digest"][2:]), int(entry["filled"]), entry["status"])
        assert got.hex() == e["valueHash"][2:]


def test_genesis_state_root_matches(stf: Contract) -> None:
    genesis = compute_genesis_state()
    root = stf.call("state_root", commitment_args(StateCommitment(
        genesis.accounts_root, genesis.consumed_root, genesis.counters)))
    assert root.hex() == VECTORS["genesis"]["stateRoot"][2:]


def test_every_vector_operation_gives_the_same_root(stf: Contract) -> None:
    for (state, ops, ctx), batch in zip(_batch_states(), VECTORS["batches"], strict=True):
        for op, vector in zip(ops, batch["operations"], strict=True):
            root = _root(stf, window_args(state, [op], ctx))
            assert root.hex() == vector["stateRootAfter"][2:], vector["type"]
            state = apply_operation(state, op, ctx)


def test_every_vector_window_gives_its_checkpoint(stf: Contract) -> None:
    for state, ops, ctx in _batch_states():
        k = ctx.checkpoint_interval
        for start in range(0, len(ops), k):
            window = ops[start:start + k]
            expected = verify_window(get_state_root(state), window, compute_window_witness(state, window, ctx), ctx)
            assert _root(stf, window_args(state, window, ctx)) == expected
            state = apply_batch(state, window, ctx).state


def test_every_vector_rejection_reverts_with_its_code(stf: Contract) -> None:
    state = _batch_states()[1][0]
    ctx = make_ctx(NOW + 100, k=VECTORS["constants"]["checkpointInterval"])
    for case in VECTORS["rejections"]:
        op = decode_operations(bytes.fromhex(case["core"][2:]), bytes.fromhex(case["auth"][2:]))[0]
        invalid, root, reason = stf.call("verify_window", *window_args(state, [op], ctx))
        assert (invalid, bytes(root), reason) == (True, bytes(32), f"stf: {case['error']}"), case["type"]


def test_a_field_out_of_range_is_reported_as_fraud(stf: Contract) -> None:
    state, ops, ctx = _batch_states()[0]
    trade_op = next(op for op in ops if isinstance(op, TradeOp))
    state = apply_batch(state, ops[:ops.index(trade_op)], ctx).state
    args = list(window_args(state, [trade_op], ctx))
    core = bytearray(args[3])
    core[58] = 3  # makerSide must be BUY (1) or SELL (2): `decode_operations` refuses it
    args[3] = bytes(core)
    assert stf.call("verify_window", *args) == (True, bytes(32), "stf: malformed_operation")


def test_a_forged_leaf_is_an_invalid_witness(stf: Contract) -> None:
    state, ops, ctx = _batch_states()[0]
    args = list(window_args(state, ops[:1], ctx))
    wit = bytearray(args[5][0])
    wit[-1] ^= 1  # a sibling byte of the account proof (or the last flag byte)
    args[5] = [bytes(wit)]
    assert _refusal(stf, tuple(args)) == "stf: invalid_witness"
    args = list(window_args(state, ops[:1], ctx))
    args[0] = b"\x01" * 32
    assert _refusal(stf, tuple(args)) == "stf: invalid_witness"


def test_both_backends_agree_on_one_window(chain: Chain) -> None:
    stf, _ = deploy_stf(chain)
    state, ops, ctx = _batch_states()[0]
    window = ops[:ctx.checkpoint_interval]
    expected = verify_window(get_state_root(state), window, compute_window_witness(state, window, ctx), ctx)
    assert _root(stf, window_args(state, window, ctx)) == expected


# --- random windows -------------------------------------------------------------------------------

_CTX = make_ctx(NOW + 100, k=8)
_BASE = apply_batch(compute_genesis_state(), [deposit(i, 1_000_000) for i in range(5)]
                    + [TickOp(Timestamp(NOW))], _CTX).state

_trade_spec = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 500), st.integers(1, 900),
                        st.sampled_from([(E1, STRIKE, OptionKind.CALL), (E1, STRIKE, OptionKind.PUT),
                                         (E2, STRIKE + 200 * USDC, OptionKind.CALL)]),
                        st.booleans())


def _random_ops(specs: list[Any]) -> list[Operation]:
    ops: list[Operation] = []
    nonce = 100
    for maker, taker, qty, price, (expiry, strike, kind), extra in specs:
        nonce += 2
        if extra and maker != taker:
            ops.append(withdrawal(maker, 1, nonce=nonce + 5000))
            continue
        ops.append(trade(maker, taker, qty * 100, px(price / 10), expiry=expiry, strike=strike, kind=kind,
                         nonces=(nonce, nonce + 1)))
    return ops


def _valid_prefix(ops: list[Operation]) -> list[Operation]:
    state, out = _BASE, []
    for op in ops:
        try:
            state = apply_operation(state, op, _CTX)
        except SettlementError:
            break
        out.append(op)
    return out


@settings(max_examples=12, deadline=None)
@given(st.lists(_trade_spec, min_size=1, max_size=6), st.integers(0, 4))
def test_random_windows_agree_with_python(harness_module: tuple[Contract, Contract], specs: list[Any], mutation: int) -> None:
    stf = harness_module[0]
    ops = _random_ops(specs)
    valid = _valid_prefix(ops)
    if valid:
        expected = verify_window(get_state_root(_BASE), valid, compute_window_witness(_BASE, valid, _CTX), _CTX)
        assert _root(stf, window_args(_BASE, valid, _CTX)) == expected
    if len(valid) < len(ops):  # the first refused operation reverts with the Python code
        bad = ops[:len(valid) + 1]
        with pytest.raises(SettlementError) as info:
            verify_window(get_state_root(_BASE), bad, compute_window_witness(_BASE, bad, _CTX), _CTX)
        assert _refusal(stf, window_args(_BASE, bad, _CTX)) == f"stf: {info.value.code}"
    if not valid:
        return
    # mutations of the last valid op: wrong amount, overfill, bad signature, under-collateralised
    last = valid[-1]
    if not isinstance(last, TradeOp):
        return
    mutated = [
        replace(last, quantity=Quantity(last.quantity + 100)),
        replace(last, quantity=Quantity(last.maker_order.quantity + 100)),
        replace(last, maker_signature=last.taker_signature),
        replace(last, price=Price(last.price + 1)),
        replace(last, maker_fee=Amount(last.maker_fee + 10**12)),
    ][mutation]
    window = [*valid[:-1], mutated]
    honest = verify_window(get_state_root(_BASE), valid, compute_window_witness(_BASE, valid, _CTX), _CTX)
    try:
        python_root = verify_window(get_state_root(_BASE), window, compute_window_witness(_BASE, window, _CTX),
                                    _CTX)
    except SettlementError as exc:
        assert _refusal(stf, window_args(_BASE, window, _CTX)) == f"stf: {exc.code}"
    else:
        assert _root(stf, window_args(_BASE, window, _CTX)) == python_root != honest


def test_undercollateralised_short_refusal(stf: Contract) -> None:
    state = apply_batch(compute_genesis_state(), [deposit(0, 10), deposit(1, 10), deposit(2, 1_000_000),
                                                   TickOp(Timestamp(NOW))], _CTX).state
    op = trade(1, 2, 100, px(40), maker_terms=order_terms(1, px(40), 100), nonces=(1, 2))
    with pytest.raises(SettlementError) as info:
        apply_operation(state, op, _CTX)
    assert info.value.code == "undercollateralised"
    assert _refusal(stf, window_args(state, [op], _CTX)) == "stf: undercollateralised"
