"""Emit ``tests/vectors/settlement.json`` from the settlement rules and keep it current.

The vectors are what the Vyper settlement contract and fraud proof will be checked against: ids,
leaf and entry encodings with their value hashes, every operation's core and signature bytes with
the leaves it touches and the state root after it, window hashes, batch headers (encoding and
hash), a window witness per batch (multi-key proofs) with the root it recomputes, and refused
operations with their error code. Deterministic (fixed keys, RFC 6979 signatures). Regenerate with
``CLEARHOUSE_WRITE_VECTORS=1 pytest tests/unit/test_settlement_vectors.py`` after a deliberate change.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path
from typing import Any

from clearhouse.errors import SettlementError
from clearhouse.market.instruments import OptionKind
from clearhouse.merkle.sparse_multi import MultiCompactProof
from clearhouse.messages import Side
from clearhouse.settlement import (
    ACCOUNT_TREE_DEPTH,
    CORE_SIZES,
    ENTRY_TREE_DEPTH,
    LEG_SIZE,
    WITHDRAWAL_LEAF_ENCODING,
    Account,
    ConsumedEntry,
    Counters,
    EntryStatus,
    FeeOp,
    ForcedWithdrawalOp,
    Operation,
    Position,
    SettleExpiryOp,
    SettlementContext,
    SettlementState,
    StateCommitment,
    TickOp,
    WindowWitness,
    apply_batch,
    apply_operation,
    compute_account_hash,
    compute_commitment_root,
    compute_entry_hash,
    compute_entry_key,
    compute_genesis_state,
    compute_header_hash,
    compute_series_id_of,
    compute_window_hash,
    compute_window_witness,
    compute_windows,
    decode_account,
    decode_operations,
    encode_account,
    encode_auth,
    encode_core,
    encode_entry,
    encode_header,
    get_op_type,
    get_state_root,
    get_touched_accounts,
    get_touched_entries,
    verify_window,
)
from clearhouse.settlement.header import HEADER_FIXED_SIZE
from clearhouse.settlement.state import MAX_UINT128
from clearhouse.sim.settlement_world import (
    ADDRESSES,
    CAP,
    DOMAIN,
    E1,
    E2,
    EXPIRY,
    NOW,
    STRIKE,
    USDC,
    cancel,
    deposit,
    leg,
    make_ctx,
    order_terms,
    px,
    rfq_fill,
    trade,
    withdrawal,
)
from clearhouse.types import (
    AccountId,
    Amount,
    BatchNumber,
    Digest,
    Nonce,
    Price,
    Quantity,
    Timestamp,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "settlement.json"
K = 4


def _json(value: Any) -> Any:
    """Integers as decimal strings, bytes as 0x-hex, enums by value, dataclasses by field."""
    if isinstance(value, enum.Enum):
        return int(value.value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    return value


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _account(account_id: int, leaf: Account | None) -> dict[str, Any]:
    return {"id": account_id, "encoding": None if leaf is None else _hex(encode_account(leaf)),
            "valueHash": _hex(compute_account_hash(leaf))}


def _entry(key: int, entry: ConsumedEntry | None) -> dict[str, Any]:
    return {"key": str(key), "encoding": None if entry is None else _hex(encode_entry(entry)),
            "valueHash": _hex(compute_entry_hash(entry))}


def _proof(proof: MultiCompactProof | None) -> dict[str, Any] | None:
    if proof is None:
        return None
    return {"keys": [str(k) for k in proof.keys], "flags": str(proof.flags),
            "siblings": [_hex(s) for s in proof.siblings]}


def _commitment(c: StateCommitment) -> dict[str, Any]:
    return {"accountsRoot": _hex(c.accounts_root), "consumedRoot": _hex(c.consumed_root),
            "counters": _json(c.counters)}


def _operation(op: Operation, before: SettlementState, after: SettlementState,
               ctx: SettlementContext) -> dict[str, Any]:
    accounts = get_touched_accounts(op, ctx.fee_account)
    entries = get_touched_entries(op)
    return {
        "type": get_op_type(op).name, "fields": _json(op),
        "core": _hex(encode_core(op)), "auth": _hex(encode_auth(op)),
        "accountsBefore": [_account(k, before.accounts.get(k)) for k in accounts],
        "accountsAfter": [_account(k, after.accounts.get(k)) for k in accounts],
        "entriesBefore": [_entry(k, before.entries.get(k)) for k in entries],
        "entriesAfter": [_entry(k, after.entries.get(k)) for k in entries],
        "countersAfter": _json(after.counters), "stateRootAfter": _hex(get_state_root(after)),
    }


def _witness(witness: WindowWitness, ops: list[Operation], ctx: SettlementContext) -> dict[str, Any]:
    return {
        "checkpoint": _commitment(witness.checkpoint),
        "operations": [{"accounts": [_account(k, a) for k, a in w.accounts],
                        "accountProof": _proof(w.account_proof),
                        "entries": [_entry(k, e) for k, e in w.entries], "entryProof": _proof(w.entry_proof)}
                       for w in witness.operations],
        "result": _hex(verify_window(compute_commitment_root(witness.checkpoint), ops, witness, ctx)),
    }


def _batch(state: SettlementState, ops: list[Operation], ctx: SettlementContext, number: int
           ) -> tuple[dict[str, Any], SettlementState]:
    result = apply_batch(state, ops, ctx, K, number=BatchNumber(number))
    rendered, current = [], state
    for op in ops:
        after = apply_operation(current, op, ctx)
        rendered.append(_operation(op, current, after, ctx))
        current = after
    header = result.header
    windows = compute_windows(ops, K)
    return {
        "number": number,
        "context": {"timestamp": str(ctx.timestamp),
                    "settlementPrices": {_hex(e.expiry_id): None if e.settlement_price is None
                                         else str(e.settlement_price) for e in ctx.expiries.values()}},
        "prevRoot": _hex(get_state_root(state)),
        "operations": rendered,
        "windows": [{"core": _hex(w.core), "auth": _hex(w.auth), "hash": _hex(compute_window_hash(w))}
                    for w in windows],
        "payouts": _json(result.payouts),
        "header": {**_json(header), "encoding": _hex(encode_header(header)),
                   "hash": _hex(compute_header_hash(header))},
        "witness": _witness(compute_window_witness(state, ops[:K], ctx), ops[:K], ctx),
    }, result.state


def _scenario() -> tuple[list[Operation], list[Operation]]:
    first = [deposit(0, 1000), deposit(1, 100_000), deposit(2, 100_000), deposit(3, 500),
             TickOp(Timestamp(NOW)),
             trade(1, 2, 300, px(40), maker_fee=1_200_000, taker_fee=600_000,
                   maker_terms=order_terms(11, px(40), 500, EXPIRY), taker_terms=order_terms(21, px(41), 300)),
             rfq_fill(1, 2, 2, [leg(3000, OptionKind.CALL, 100, True, px(50)),
                                leg(3200, OptionKind.CALL, 100, False, px(20))], quote_size=5),
             trade(3, 1, 5, px(40), maker_side=Side.BUY, kind=OptionKind.PUT, nonces=(31, 12)),
             cancel(1, 11),
             withdrawal(2, 1234.5, nonce=22),
             FeeOp(Amount(1_000_000)),
             ForcedWithdrawalOp(AccountId(3), ADDRESSES[3], Amount(10**12), Amount(498 * USDC))]
    second = [TickOp(Timestamp(EXPIRY)), SettleExpiryOp(AccountId(1), E1.expiry_id),
              SettleExpiryOp(AccountId(2), E1.expiry_id), SettleExpiryOp(AccountId(3), E1.expiry_id),
              withdrawal(1, 10, nonce=13, expiry=EXPIRY + 60)]
    return first, second


def _rejections(state: SettlementState, ctx: SettlementContext) -> list[dict[str, Any]]:
    cases: list[Operation] = [
        trade(1, 2, 201, px(40), maker_terms=order_terms(11, px(40), 500, EXPIRY), nonces=(11, 23)),
        trade(1, 2, 1, px(40), taker_terms=order_terms(21, px(41), 300), nonces=(50, 21)),
        trade(2, 1, 100, px(40), nonces=(24, 14), maker_signer=1),
        trade(1, 2, 100, px(40), maker_terms=order_terms(15, px(40), 100, NOW - 1), nonces=(15, 25)),
        trade(3, 2, 100, px(40), nonces=(32, 26)),
        trade(1, 2, 100, px(40), nonces=(12, 27)),
        trade(1, 2, 1, Price(150), nonces=(16, 28)),
        trade(1, 2, 100, px(40), maker_fee=40 * USDC // 100 + 1, nonces=(17, 29)),
        trade(1, 1, 100, px(40), nonces=(18, 19)),
        trade(1, 2, 100, px(40), strike=Price(CAP), nonces=(40, 41)),
        withdrawal(2, 1234.5, nonce=22),
        ForcedWithdrawalOp(AccountId(1), ADDRESSES[1], Amount(1), Amount(0)),
        TickOp(Timestamp(NOW - 1)),
        FeeOp(Amount(10**9)),
        SettleExpiryOp(AccountId(1), E1.expiry_id),
    ]
    out = []
    for op in cases:
        try:
            apply_operation(state, op, ctx)
        except SettlementError as exc:
            out.append({"type": get_op_type(op).name, "core": _hex(encode_core(op)), "auth": _hex(encode_auth(op)),
                        "error": exc.code})
        else:  # pragma: no cover - the scenario is fixed
            raise AssertionError(f"{op} was accepted")
    return out


def build_vectors() -> dict[str, Any]:
    ctx1 = make_ctx(NOW + 100, k=K)
    ctx2 = make_ctx(EXPIRY, prices={E1.expiry_id: 3_150_123_456}, k=K)
    genesis = compute_genesis_state()
    first, second = _scenario()
    batch1, state1 = _batch(genesis, first, ctx1, 1)
    batch2, _ = _batch(state1, second, ctx2, 2)
    leaf = Account(ADDRESSES[1], Amount(MAX_UINT128), tuple(sorted(
        (Position(E1.expiry_id, STRIKE, OptionKind.CALL, Quantity(-(2**95))),
         Position(E2.expiry_id, Price(1), OptionKind.PUT, Quantity(2**95))), key=lambda p: p.expiry_id)))
    entry = ConsumedEntry(Digest(b"\xab" * 32), Quantity(7), EntryStatus.CANCELLED)
    return {
        "description": "clearhouse settlement vectors: see docs/protocol.md § Settlement",
        "constants": {
            "accountTreeDepth": ACCOUNT_TREE_DEPTH, "entryTreeDepth": ENTRY_TREE_DEPTH, "stateRootPrefix": "0x02",
            "checkpointInterval": K, "contractUnit": ctx1.contract_unit, "maxPositions": ctx1.max_positions,
            "maxFeeBps": int(ctx1.max_fee_bps), "maxClockLag": int(ctx1.max_clock_lag),
            "feeAccount": int(ctx1.fee_account), "parameterVersion": ctx1.parameter_version,
            "coreSizes": {t.name: n for t, n in CORE_SIZES.items()}, "legSize": LEG_SIZE,
            "headerFixedSize": HEADER_FIXED_SIZE, "withdrawalLeafEncoding": list(WITHDRAWAL_LEAF_ENCODING),
        },
        "domain": {**DOMAIN.to_typed_data(), "separator": _hex(DOMAIN.separator)},
        "expiries": [{"underlying": e.pair.underlying, "quote": e.pair.quote, "timestamp": str(e.timestamp),
                      "cap": str(e.cap), "expiryId": _hex(e.expiry_id)} for e in (E1, E2)],
        "seriesIds": [{"expiryId": _hex(E1.expiry_id), "strike": str(k * USDC), "kind": int(kind),
                       "seriesId": _hex(compute_series_id_of(E1, Price(k * USDC), kind))}
                      for k in (3000, 3200) for kind in OptionKind],
        "genesis": {"accountsRoot": _hex(genesis.accounts_root), "consumedRoot": _hex(genesis.consumed_root),
                    "counters": _json(Counters()), "stateRoot": _hex(get_state_root(genesis))},
        "leaves": [{"account": _json(leaf), **_account(1, leaf)},
                   {"account": _json(Account(ADDRESSES[2], Amount(0), ())),
                    **_account(2, Account(ADDRESSES[2], Amount(0), ()))}],
        "entries": [{"accountId": 5, "nonce": str(2**64 - 1),
                     **_entry(compute_entry_key(AccountId(5), Nonce(2**64 - 1)), entry), "entry": _json(entry)}],
        "batches": [batch1, batch2],
        "rejections": _rejections(state1, make_ctx(NOW + 100, k=K)),
    }


def _render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1) + "\n"


def test_vectors_file_is_current() -> None:
    text = _render(build_vectors())
    if os.environ.get("CLEARHOUSE_WRITE_VECTORS") or not VECTORS.exists():
        VECTORS.parent.mkdir(parents=True, exist_ok=True)
        VECTORS.write_text(text)
    assert VECTORS.read_text() == text, (
        "tests/vectors/settlement.json is stale: regenerate it with "
        "CLEARHOUSE_WRITE_VECTORS=1 pytest tests/unit/test_settlement_vectors.py")


def test_vectors_replay_from_bytes_alone() -> None:
    """What the contracts will do: decode each window's bytes, apply, compare every root."""
    vectors = json.loads(VECTORS.read_text())
    state = compute_genesis_state()
    contexts = [make_ctx(NOW + 100, k=K), make_ctx(EXPIRY, prices={E1.expiry_id: 3_150_123_456}, k=K)]
    for batch, ctx in zip(vectors["batches"], contexts, strict=True):
        assert batch["prevRoot"] == _hex(get_state_root(state))
        ops = [op for w in batch["windows"]
               for op in decode_operations(bytes.fromhex(w["core"][2:]), bytes.fromhex(w["auth"][2:]))]
        for op, rendered in zip(ops, batch["operations"], strict=True):
            state = apply_operation(state, op, ctx)
            assert rendered["stateRootAfter"] == _hex(get_state_root(state))
            for account in rendered["accountsAfter"]:
                if account["encoding"]:
                    assert decode_account(bytes.fromhex(account["encoding"][2:])) == state.accounts[account["id"]]
        assert batch["header"]["checkpoint_roots"][-1] == _hex(get_state_root(state))
    for case in vectors["rejections"]:
        assert case["error"] != "settlement_error"


def test_vectors_cover_every_operation_type_and_many_refusals() -> None:
    vectors = json.loads(VECTORS.read_text())
    types = {op["type"] for b in vectors["batches"] for op in b["operations"]}
    assert types == {"DEPOSIT", "TRADE", "RFQ_FILL", "CANCEL", "WITHDRAWAL", "FORCED_WITHDRAWAL", "FEE",
                     "SETTLE_EXPIRY", "TICK"}
    assert len({case["error"] for case in vectors["rejections"]}) >= 12
    assert all(b["witness"]["result"] == b["header"]["checkpoint_roots"][0] for b in vectors["batches"])
