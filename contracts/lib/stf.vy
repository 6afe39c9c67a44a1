# pragma version ~=0.4.3
"""
@title Settlement state-transition fraud proof
@custom:contract-name stf
@license MIT
@notice The on-chain mirror of `clearhouse.settlement.witness.verify_window`:
        from a checkpoint root, re-execute one window of at most K operations
        over account leaves and consumed entries opened by multi-key compact
        proofs, and return the state root after them. Every rule is the one of
        `clearhouse/settlement/stf.py`, checked in the same order:
          * a witness that does not open what it claims reverts with
            "stf: invalid_witness" (the challenger's fault);
          * an operation that breaks a rule ends the window with the verdict
            (True, 0, "stf: <code>"), `<code>` being the `code` of the Python
            `SettlementError` (the batch's fault);
          * otherwise (False, root, "") is returned, and the caller compares
            the root with the committed checkpoint.
        Byte layouts: docs/protocol.md, "Settlement" and "Fraud proofs".
        A verifier contract `initializes` it with the two rule contracts
        (`StfTradeRules`, `StfRules`: the rules exceed one contract's size) and
        exports `verify_window` or runs its loop inline (`WindowVerifier`); the
        rule contracts call its pure internals.
"""


from . import eip712


# @dev Most operations in one window (the `checkpoint_interval` of every preset).
MAX_K: constant(uint256) = 32
# @dev Most positions an account leaf may hold (`max_positions` of every preset).
MAX_POSITIONS: constant(uint256) = 16
# @dev Most listed expiries a context may carry.
MAX_EXPIRIES: constant(uint256) = 16
# @dev Most legs of an RFQ fill (`clearhouse.messages.schema.MAX_LEGS`).
MAX_LEGS: constant(uint256) = eip712.MAX_LEGS
# @dev Position scratch: the leaf's positions plus one new series per leg.
MAX_SCRATCH: constant(uint256) = MAX_POSITIONS + MAX_LEGS
# @dev Largest operation core: an RFQ fill with MAX_LEGS legs (139 + 70 * 8).
MAX_OP_CORE: constant(uint256) = 699
# @dev Window core bytes and signature bytes.
MAX_CORE: constant(uint256) = MAX_K * MAX_OP_CORE
MAX_AUTH: constant(uint256) = MAX_K * 130
# @dev Bytes of the largest operation witness: accounts 1 + 2 x (6 + 1077) + 34 + 64 x 32
# (two full leaves, every sibling of two depth-32 paths listed) plus entries
# 1 + 2 x (13 + 49) + 34 + 192 x 32 (two depth-96 paths): 4249 + 6307 = 10556; the
# bound is `IWindowVerifier`'s 12800.
MAX_OP_WITNESS: constant(uint256) = 12800
# @dev An operation witness padded with one zero word, so every `extract32` stays in bounds.
WBUF: constant(uint256) = MAX_OP_WITNESS + 32
# @dev Most listed siblings of one multi-key proof (2 keys x 96 levels).
MAX_SIBLINGS: constant(uint256) = 192
# @dev Depths of the two trees.
ACCOUNT_DEPTH: constant(uint256) = 32
ENTRY_DEPTH: constant(uint256) = 96
# @dev Account-leaf encoding: owner 20 || balance 16 || count 1 || count x 65.
LEAF_HEADER: constant(uint256) = 37
POSITION_SIZE: constant(uint256) = 65
MAX_LEAF: constant(uint256) = LEAF_HEADER + POSITION_SIZE * MAX_POSITIONS
ENTRY_SIZE: constant(uint256) = 49
MAX_UINT128: constant(uint256) = 2**128 - 1
MAX_QUANTITY: constant(uint256) = 2**95
BPS: constant(uint256) = 10_000

# @dev Operation type bytes (`OpType`).
DEPOSIT: constant(uint256) = 1
TRADE: constant(uint256) = 2
RFQ_FILL: constant(uint256) = 3
CANCEL: constant(uint256) = 4
WITHDRAWAL: constant(uint256) = 5
FORCED: constant(uint256) = 6
FEE: constant(uint256) = 7
SETTLE: constant(uint256) = 8
TICK: constant(uint256) = 9

# @dev Entry statuses (`EntryStatus`).
ACTIVE: constant(uint8) = 0
USED: constant(uint8) = 1
CANCELLED: constant(uint8) = 2
# @dev Sides (`Side`).
BUY: constant(uint256) = 1
SELL: constant(uint256) = 2

_SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168


struct ListedExpiry:
    expiry_id: bytes32
    underlying: bytes32
    quote: bytes32
    timestamp: uint64
    cap: uint256
    has_price: bool
    settlement_price: uint256


struct Context:
    domain_separator: bytes32
    timestamp: uint64
    contract_unit: uint256
    max_positions: uint256
    checkpoint_interval: uint256
    max_clock_lag: uint256
    fee_account: uint32
    max_fee_bps: uint256
    expiries: DynArray[ListedExpiry, MAX_EXPIRIES]


struct Counters:
    deposit_count: uint64
    deposit_hash: bytes32
    forced_count: uint64
    forced_hash: bytes32
    clock: uint64
    fee_pool: uint256


struct Commitment:
    accounts_root: bytes32
    consumed_root: bytes32
    counters: Counters


struct Position:
    expiry_id: bytes32
    strike: uint256
    kind: uint256
    quantity: int256


struct Account:
    exists: bool
    owner: address
    balance: uint256
    positions: DynArray[Position, MAX_POSITIONS]


struct Entry:
    exists: bool
    digest: bytes32
    filled: uint256
    status: uint8


struct Delta:
    expiry_id: bytes32
    strike: uint256
    kind: uint256
    delta: int256


struct Proof:
    count: uint256
    key0: uint256
    key1: uint256
    flags: uint256
    siblings: DynArray[bytes32, MAX_SIBLINGS]


# @dev The opened slots of one operation and its writes (what the rule contracts
# see: the proofs stay in the verifier, so they are not ABI-encoded twice per call).
struct Opened:
    accounts: Account[2]
    account_ids: uint256[2]
    account_written: bool[2]
    entries: Entry[2]
    entry_keys: uint256[2]
    entry_written: bool[2]
    counters: Counters


# @dev The canonical signature of the rule contracts' `apply_rule` (its selector is computed at compile time).
APPLY_RULE: constant(String[329]) = "apply_rule(((bool,address,uint256,(bytes32,uint256,uint256,int256)[])[2],uint256[2],bool[2],(bool,bytes32,uint256,uint8)[2],uint256[2],bool[2],(uint64,bytes32,uint64,bytes32,uint64,uint256)),(bytes32,uint64,uint256,uint256,uint256,uint256,uint32,uint256,(bytes32,bytes32,bytes32,uint64,uint256,bool,uint256)[]),bytes,bytes,bytes)"
# @dev ABI size of an `Opened` (2 full leaves) with room to spare, and of a revert reason.
MAX_RULE_RESPONSE: constant(uint256) = 6144
MAX_REASON: constant(uint256) = 64
# @dev `Error(string)`.
ERROR_SELECTOR: constant(Bytes[4]) = x"08c379a0"


# @dev `StfTradeRules` and `StfRules`: the rules do not fit one contract (EIP-170).
rules: public(address[2])


@deploy
def __init__(trade_rules: address, other_rules: address):
    """
    @dev Records the two rule contracts the verifier delegates to.
    @param trade_rules A `StfTradeRules` deployment.
    @param other_rules A `StfRules` deployment.
    """
    self.rules = [trade_rules, other_rules]


# --- byte readers -------------------------------------------------------------------------


@internal
@pure
def _core_uint(core: Bytes[800], pos: uint256, size: uint256) -> uint256:
    """
    @dev `_uint` over one operation's padded core.
    @param core The operation core (padded with zeros).
    @param pos The offset.
    @param size 1..32 bytes.
    @return uint256 The value.
    """
    return extract32(core, pos, output_type=uint256) >> (256 - 8 * size)


@internal
@pure
def _core_word(core: Bytes[800], pos: uint256) -> bytes32:
    """
    @dev The 32 bytes at `pos` of one operation's padded core.
    @param core The operation core.
    @param pos The offset.
    @return bytes32 The word.
    """
    return extract32(core, pos)


@internal
@pure
def _core_address(core: Bytes[800], pos: uint256) -> address:
    """
    @dev The 20-byte address at `pos`.
    @param core The operation core.
    @param pos The offset.
    @return address The address.
    """
    return convert(convert(self._core_uint(core, pos, 20), uint160), address)


# --- leaf and entry encodings ---------------------------------------------------------------


@internal
@pure
def _position_bytes(p: Position) -> Bytes[65]:
    """
    @dev `expiryId 32 || strike uint128 || kind uint8 || quantity int128`.
    @param p The position.
    @return Bytes[65] Its encoding.
    """
    return concat(
        p.expiry_id,
        convert(convert(p.strike, uint128), bytes16),
        convert(convert(p.kind, uint8), bytes1),
        convert(convert(p.quantity, int128), bytes16),
    )


@internal
@pure
def _encode_account(a: Account) -> Bytes[MAX_LEAF]:
    """
    @dev `encode_account`: owner 20 || balance uint128 || count uint8 || positions.
    @param a The leaf (must exist).
    @return Bytes[MAX_LEAF] The leaf's bytes.
    """
    p: DynArray[Bytes[65], MAX_POSITIONS] = []
    for i: uint256 in range(MAX_POSITIONS):
        if i < len(a.positions):
            p.append(self._position_bytes(a.positions[i]))
        else:
            p.append(b"")
    # Missing positions are empty byte strings, so one fixed concat is exact.
    return concat(
        convert(a.owner, bytes20),
        convert(convert(a.balance, uint128), bytes16),
        convert(convert(len(a.positions), uint8), bytes1),
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
        p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15],
    )


@internal
@pure
def _account_hash(a: Account) -> bytes32:
    """
    @dev `compute_account_hash`: keccak of the leaf, zero for no leaf.
    @param a The leaf.
    @return bytes32 The accounts-tree value.
    """
    if not a.exists:
        return empty(bytes32)
    return keccak256(self._encode_account(a))


@internal
@pure
def _entry_hash(e: Entry) -> bytes32:
    """
    @dev `compute_entry_hash`: keccak(digest || uint128 filled || uint8 status), zero for none.
    @param e The entry.
    @return bytes32 The consumed-tree value.
    """
    if not e.exists:
        return empty(bytes32)
    return keccak256(
        concat(e.digest, convert(convert(e.filled, uint128), bytes16), convert(e.status, bytes1))
    )


@internal
@pure
def _counters_bytes(c: Counters) -> Bytes[104]:
    """
    @dev `encode_counters`.
    @param c The counters.
    @return Bytes[104] Their encoding.
    """
    return concat(
        convert(c.deposit_count, bytes8), c.deposit_hash, convert(c.forced_count, bytes8),
        c.forced_hash, convert(c.clock, bytes8), convert(convert(c.fee_pool, uint128), bytes16),
    )


@internal
@pure
def _state_root(c: Commitment) -> bytes32:
    """
    @dev `compute_commitment_root`: keccak(0x02 || accounts_root || consumed_root || counters).
    @param c The commitment.
    @return bytes32 The state root.
    """
    return keccak256(concat(x"02", c.accounts_root, c.consumed_root, self._counters_bytes(c.counters)))


@internal
@pure
def _entry_key(account_id: uint256, nonce: uint256) -> uint256:
    """
    @dev `compute_entry_key`: account_id * 2**64 + nonce.
    @param account_id The account.
    @param nonce The nonce.
    @return uint256 The consumed-tree key.
    """
    return (account_id << 64) | nonce


@internal
@pure
def _decode_account(w: Bytes[WBUF], pos: uint256, size: uint256) -> Account:
    """
    @dev `decode_account`: the canonical leaf at `w[pos:pos+size]`.
    @param w The operation witness (padded).
    @param pos Where the leaf starts.
    @param size Its length in bytes.
    @return Account The leaf.
    """
    assert size >= LEAF_HEADER, "stf: invalid_witness"
    count: uint256 = (extract32(w, pos + 36, output_type=uint256) >> 248)
    assert count <= MAX_POSITIONS and size == LEAF_HEADER + count * POSITION_SIZE, "stf: invalid_witness"
    a: Account = Account(
        exists=True,
        owner=convert(convert((extract32(w, pos, output_type=uint256) >> 96), uint160), address),
        balance=(extract32(w, pos + 20, output_type=uint256) >> 128),
        positions=[],
    )
    for i: uint256 in range(count, bound=MAX_POSITIONS):
        at: uint256 = pos + LEAF_HEADER + i * POSITION_SIZE
        raw: uint256 = (extract32(w, at + 49, output_type=uint256) >> 128)
        q: int256 = convert(raw, int256)
        if raw >= 2**127:
            # two's complement of a 16-byte integer; raw < 2**128 so this cannot wrap
            q = q - 2**128
        p: Position = Position(
            expiry_id=extract32(w, at), strike=(extract32(w, at + 32, output_type=uint256) >> 128),
            kind=(extract32(w, at + 48, output_type=uint256) >> 248), quantity=q,
        )
        assert p.kind <= 1 and q != 0, "stf: invalid_witness"
        if i > 0:
            assert self._less(a.positions[i - 1], p), "stf: invalid_witness"
        a.positions.append(p)
    return a


@internal
@pure
def _less(a: Position, b: Position) -> bool:
    """
    @dev The leaf order: by (expiry_id, strike, kind).
    @param a One position.
    @param b Another.
    @return bool True if `a` sorts strictly before `b`.
    """
    ae: uint256 = convert(a.expiry_id, uint256)
    be: uint256 = convert(b.expiry_id, uint256)
    if ae != be:
        return ae < be
    if a.strike != b.strike:
        return a.strike < b.strike
    return a.kind < b.kind


# --- multi-key compact proofs ---------------------------------------------------------------


@internal
@pure
def _multi_root(proof: Proof, v0: bytes32, v1: bytes32, depth: uint256) -> bytes32:
    """
    @dev `process_multi_compact_proof` for one or two keys: the root implied by
         `key0 -> v0` (and `key1 -> v1`, key0 < key1), walking levels from the
         leaves and, within a level, nodes by ascending index; every sibling the
         walk cannot derive is a slot, listed iff its bit in `flags` is set.
    @param proof The proof (keys sorted, distinct).
    @param v0 The value hash at `key0`.
    @param v1 The value hash at `key1` (ignored for one key).
    @param depth The tree depth.
    @return bytes32 The implied root.
    """
    a: bytes32 = empty(bytes32)
    if v0 != empty(bytes32):
        a = keccak256(concat(x"00", convert(proof.key0, bytes32), v0))
    b: bytes32 = empty(bytes32)
    if proof.count == 2 and v1 != empty(bytes32):
        b = keccak256(concat(x"00", convert(proof.key1, bytes32), v1))
    merged: bool = proof.count == 1
    dflt: bytes32 = empty(bytes32)
    slot: uint256 = 0
    used: uint256 = 0
    sibling: bytes32 = empty(bytes32)
    for level: uint256 in range(depth, bound=ENTRY_DEPTH):
        ia: uint256 = proof.key0 >> level
        if not merged and (ia ^ 1) == (proof.key1 >> level):
            a = keccak256(concat(x"01", a, b))
            merged = True
        else:
            sibling = dflt
            if (proof.flags >> slot) & 1 == 1:
                assert used < len(proof.siblings), "stf: invalid_witness"
                sibling = proof.siblings[used]
                used += 1
            slot += 1
            if ia & 1 == 1:
                a = keccak256(concat(x"01", sibling, a))
            else:
                a = keccak256(concat(x"01", a, sibling))
            if not merged:
                sibling = dflt
                if (proof.flags >> slot) & 1 == 1:
                    assert used < len(proof.siblings), "stf: invalid_witness"
                    sibling = proof.siblings[used]
                    used += 1
                slot += 1
                if (proof.key1 >> level) & 1 == 1:
                    b = keccak256(concat(x"01", sibling, b))
                else:
                    b = keccak256(concat(x"01", b, sibling))
        if level + 1 < depth:
            dflt = keccak256(concat(x"01", dflt, dflt))
    assert used == len(proof.siblings), "stf: invalid_witness"
    # slot <= 2 * 96 < 256, so the shift is exact
    assert proof.flags >> slot == 0, "stf: invalid_witness"
    return a


@internal
@pure
def _read_proof(w: Bytes[WBUF], pos: uint256, k0: uint256, k1: uint256, count: uint256) -> (Proof, uint256):
    """
    @dev Read `flags 32 || n uint16 || n x 32` and sort the keys.
    @param w The operation witness.
    @param pos Where the proof starts.
    @param k0 The first touched key.
    @param k1 The second touched key (if `count` is 2).
    @param count 1 or 2.
    @return Proof The proof (keys ascending).
    @return uint256 The offset after it.
    """
    p: Proof = Proof(count=count, key0=k0, key1=k1, flags=extract32(w, pos, output_type=uint256), siblings=[])
    if count == 2 and k1 < k0:
        p.key0 = k1
        p.key1 = k0
    n: uint256 = (extract32(w, pos + 32, output_type=uint256) >> 240)
    assert n <= MAX_SIBLINGS, "stf: invalid_witness"
    at: uint256 = pos + 34
    for i: uint256 in range(n, bound=MAX_SIBLINGS):
        p.siblings.append(extract32(w, at))
        at += 32
    return p, at


@internal
@pure
def _proof_root(p: Proof, k0: uint256, h0: bytes32, h1: bytes32, depth: uint256) -> bytes32:
    """
    @dev `_multi_root` with the values given in touch order.
    @param p The proof (keys ascending).
    @param k0 The first touched key.
    @param h0 The value hash of the first touched key.
    @param h1 The value hash of the second touched key.
    @param depth The tree depth.
    @return bytes32 The root.
    """
    if p.count == 2 and p.key0 != k0:
        return self._multi_root(p, h1, h0, depth)
    return self._multi_root(p, h0, h1, depth)


# --- shared checks --------------------------------------------------------------------------


@internal
@pure
def _check_signer(digest: bytes32, sig: Bytes[65], owner: address):
    """
    @dev `verify_owner_signature`: a canonical signature (v in {27, 28},
         0 < r < n, 0 < s <= n/2) whose signer is the leaf's owner.
    @param digest The EIP-712 digest.
    @param sig The 65-byte `r || s || v`.
    @param owner The account owner.
    """
    r: uint256 = extract32(sig, 0, output_type=uint256)
    s: uint256 = extract32(sig, 32, output_type=uint256)
    v: uint256 = convert(slice(sig, 64, 1), uint256)
    assert v == 27 or v == 28, "stf: signature_invalid"
    assert r != 0 and r < _SECP256K1_N and s != 0 and s <= _HALF_N, "stf: signature_invalid"
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address), "stf: signature_invalid"
    assert signer == owner, "stf: signer_mismatch"


@internal
@pure
def _expiry(ctx: Context, expiry_id: bytes32) -> ListedExpiry:
    """
    @dev `get_listed_expiry`.
    @param ctx The context.
    @param expiry_id The expiry id.
    @return ListedExpiry Its registry entry (reverts "stf: unlisted_expiry").
    """
    for e: ListedExpiry in ctx.expiries:
        if e.expiry_id == expiry_id:
            return e
    raise "stf: unlisted_expiry"


@internal
@pure
def _tradable(ctx: Context, expiry_id: bytes32, strike: uint256, clock: uint64) -> ListedExpiry:
    """
    @dev `get_tradable_expiry`: listed, 0 < strike < cap on the unit grid, clock before expiry.
    @param ctx The context.
    @param expiry_id The expiry.
    @param strike The strike.
    @param clock The settlement clock.
    @return ListedExpiry The expiry.
    """
    e: ListedExpiry = self._expiry(ctx, expiry_id)
    assert strike > 0 and strike < e.cap and strike % ctx.contract_unit == 0, "stf: invalid_series"
    assert clock < e.timestamp, "stf: series_expired"
    return e


@internal
@pure
def _series_id(e: ListedExpiry, strike: uint256, kind: uint256) -> bytes32:
    """
    @dev `compute_series_id_of`: keccak(abi.encode(underlying, quote, expiry, strike, kind)).
    @param e The expiry.
    @param strike The strike.
    @param kind 0 call, 1 put.
    @return bytes32 The series id.
    """
    return keccak256(abi_encode(e.underlying, e.quote, convert(e.timestamp, uint256), strike, kind))


@internal
@pure
def _check_fresh(c: Counters, ctx: Context):
    """
    @dev `validate_clock_fresh`: signed messages apply only while clock + lag >= timestamp.
    @param c The counters.
    @param ctx The context.
    """
    assert convert(c.clock, uint256) + ctx.max_clock_lag >= convert(ctx.timestamp, uint256), "stf: stale_clock"


@internal
@pure
def _premium(price: uint256, quantity: uint256, unit: uint256) -> uint256:
    """
    @dev `compute_exact_premium`: price * quantity / unit, which must be exact.
    @param price Premium per whole contract (< 2**128).
    @param quantity Contract units (<= 2**127, so the product fits).
    @param unit The contract unit.
    @return uint256 The premium.
    """
    assert (price * quantity) % unit == 0, "stf: inexact_premium"
    return price * quantity // unit


@internal
@pure
def _check_fees(maker_fee: uint256, taker_fee: uint256, premium: uint256, ctx: Context):
    """
    @dev `validate_fees`: each fee at most max_fee_bps of the premium (rounded down).
    @param maker_fee The maker's fee.
    @param taker_fee The taker's fee.
    @param premium The fill's premium.
    @param ctx The context.
    """
    bound: uint256 = premium * ctx.max_fee_bps // BPS
    assert maker_fee <= bound and taker_fee <= bound, "stf: excessive_fee"


@internal
@pure
def _fee_pool(c: Counters, fees: uint256) -> Counters:
    """
    @dev `_compute_fee_pool`.
    @param c The counters.
    @param fees Fees collected by the fill.
    @return Counters The counters with the pool grown.
    """
    out: Counters = c
    out.fee_pool = c.fee_pool + fees
    assert out.fee_pool <= MAX_UINT128, "stf: amount_overflow"
    return out


@internal
@pure
def _filled(e: Entry, digest: bytes32, size: uint256, fill: uint256) -> Entry:
    """
    @dev `compute_filled_entry`.
    @param e The slot before.
    @param digest The order or quote digest.
    @param size Its signed size.
    @param fill Units filled now.
    @return Entry The slot after.
    """
    filled: uint256 = 0
    if e.exists:
        assert e.status != CANCELLED, "stf: message_cancelled"
        assert e.digest == digest and e.status == ACTIVE, "stf: nonce_used"
        filled = e.filled
    assert filled + fill <= size, "stf: fill_exceeds_size"
    return Entry(exists=True, digest=digest, filled=filled + fill, status=ACTIVE)


@internal
@pure
def _used(e: Entry, digest: bytes32) -> Entry:
    """
    @dev `compute_used_entry`.
    @param e The slot before.
    @param digest The one-shot message's digest.
    @return Entry The slot after.
    """
    if not e.exists:
        return Entry(exists=True, digest=digest, filled=0, status=USED)
    assert e.status != CANCELLED, "stf: message_cancelled"
    assert e.digest != digest, "stf: message_replayed"
    raise "stf: nonce_used"


# --- exact max-loss collateral --------------------------------------------------------------


@internal
@pure
def _intrinsic(kind: uint256, strike: uint256, s: uint256) -> int256:
    """
    @dev max(0, S - K) for a call, max(0, K - S) for a put.
    @param kind 0 call, 1 put.
    @param strike K.
    @param s The settlement price.
    @return int256 The intrinsic value per whole contract.
    """
    if kind == 0:
        if s > strike:
            return convert(s - strike, int256)
        return 0
    if strike > s:
        return convert(strike - s, int256)
    return 0


@internal
@pure
def _group_requirement(ps: DynArray[Position, MAX_SCRATCH], start: uint256, cap: uint256, unit: uint256) -> uint256:
    """
    @dev `compute_expiry_requirement` of the group of positions of one expiry that
         starts at `start`: ceil(max(0, -min payoff)), the payoff evaluated exactly
         (unit x payoff = sum of q * intrinsic(S)) at S = 0, S = cap and every strike
         in (0, cap). The group is copied to fixed local arrays once, so the
         evaluation is a tight double loop with no internal calls.
    @param ps Positions sorted by expiry.
    @param start The group's first index.
    @param cap The expiry's cap.
    @param unit The contract unit.
    @return uint256 The group's requirement.
    """
    strikes: uint256[MAX_SCRATCH] = empty(uint256[MAX_SCRATCH])
    puts: bool[MAX_SCRATCH] = empty(bool[MAX_SCRATCH])
    qs: int256[MAX_SCRATCH] = empty(int256[MAX_SCRATCH])
    n: uint256 = 0
    e: bytes32 = ps[start].expiry_id
    for i: uint256 in range(start, start + MAX_SCRATCH, bound=MAX_SCRATCH):
        if i >= len(ps) or ps[i].expiry_id != e:
            break
        strikes[n] = ps[i].strike
        puts[n] = ps[i].kind == 1
        qs[n] = ps[i].quantity
        n += 1
    worst: int256 = max_value(int256)
    # critical point c: c == n is S = 0, c == n + 1 is S = cap, else strike c (if inside (0, cap))
    for c: uint256 in range(n + 2, bound=MAX_SCRATCH + 2):
        s: uint256 = cap
        if c == n:
            s = 0
        elif c < n:
            s = strikes[c]
            if s == 0 or s >= cap:
                continue
        total: int256 = 0
        for i: uint256 in range(n, bound=MAX_SCRATCH):
            k: uint256 = strikes[i]
            # |q| <= 2**95 and intrinsic < 2**128: every product and sum fits int256
            if puts[i]:
                if k > s:
                    total += qs[i] * convert(k - s, int256)
            elif s > k:
                total += qs[i] * convert(s - k, int256)
        worst = min(worst, total)
    if worst >= 0:
        return 0
    loss: uint256 = convert(-worst, uint256)
    return (loss + unit - 1) // unit


@internal
@pure
def _requirement(ps: DynArray[Position, MAX_SCRATCH], ctx: Context) -> uint256:
    """
    @dev `compute_account_requirement`: the sum over the account's expiries.
    @param ps Positions sorted by (expiry, strike, kind).
    @param ctx The context (caps).
    @return uint256 The exact max-loss requirement.
    """
    total: uint256 = 0
    for i: uint256 in range(len(ps), bound=MAX_SCRATCH):
        if i == 0 or ps[i].expiry_id != ps[i - 1].expiry_id:
            e: ListedExpiry = self._expiry(ctx, ps[i].expiry_id)
            total += self._group_requirement(ps, i, e.cap, ctx.contract_unit)
    return total


@internal
@pure
def _scratch(a: Account) -> DynArray[Position, MAX_SCRATCH]:
    """
    @dev The leaf's positions in the scratch array.
    @param a The leaf.
    @return DynArray The positions.
    """
    out: DynArray[Position, MAX_SCRATCH] = []
    for p: Position in a.positions:
        out.append(p)
    return out


@internal
@pure
def _add(ps: DynArray[Position, MAX_SCRATCH], d: Delta) -> DynArray[Position, MAX_SCRATCH]:
    """
    @dev Move one series by `d.delta`, keeping the order and dropping a zero.
    @param ps Sorted positions.
    @param d The series and its signed change.
    @return DynArray The positions after.
    """
    key: Position = Position(expiry_id=d.expiry_id, strike=d.strike, kind=d.kind, quantity=d.delta)
    out: DynArray[Position, MAX_SCRATCH] = []
    placed: bool = False
    for p: Position in ps:
        if not placed:
            if p.expiry_id == key.expiry_id and p.strike == key.strike and p.kind == key.kind:
                key.quantity = p.quantity + d.delta
                if key.quantity != 0:
                    out.append(key)
                placed = True
                continue
            if self._less(key, p):
                if key.quantity != 0:
                    out.append(key)
                placed = True
        out.append(p)
    if not placed and key.quantity != 0:
        out.append(key)
    return out


@internal
@pure
def _traded(a: Account, deltas: DynArray[Delta, MAX_LEGS], sign: int256, cash: int256, ctx: Context) -> Account:
    """
    @dev `_compute_traded`: positions moved by `sign * deltas`, balance by `cash`;
         the account must still cover its exact requirement.
    @param a The leaf.
    @param deltas Series changes (maker's view).
    @param sign 1 for the maker, -1 for the taker.
    @param cash Balance change (premiums and fee).
    @param ctx The context.
    @return Account The leaf after.
    """
    ps: DynArray[Position, MAX_SCRATCH] = self._scratch(a)
    for d: Delta in deltas:
        moved: Delta = d
        moved.delta = sign * d.delta
        ps = self._add(ps, moved)
    for p: Position in ps:
        assert p.quantity <= 2**95 and p.quantity >= -(2**95), "stf: amount_overflow"
    assert len(ps) <= ctx.max_positions, "stf: too_many_positions"
    required: uint256 = self._requirement(ps, ctx)
    balance: int256 = convert(a.balance, int256) + cash
    assert balance >= convert(required, int256), "stf: undercollateralised"
    assert balance <= convert(MAX_UINT128, int256), "stf: amount_overflow"
    out: Account = Account(exists=True, owner=a.owner, balance=convert(balance, uint256), positions=[])
    for p: Position in ps:
        out.positions.append(p)
    return out


@internal
@pure
def _free(a: Account, ctx: Context) -> uint256:
    """
    @dev `compute_free_collateral`: max(0, balance - requirement).
    @param a The leaf.
    @param ctx The context.
    @return uint256 Free collateral.
    """
    required: uint256 = self._requirement(self._scratch(a), ctx)
    if a.balance > required:
        return a.balance - required
    return 0


# --- operations -----------------------------------------------------------------------------


@internal
@pure
def _deposit(o: Opened, core: Bytes[800]) -> Opened:
    """
    @dev `compute_deposit_effect`: credit the next deposit; the first one creates the leaf.
    @param o The opened slots.
    @param core The operation core.
    @return Opened The slots after.
    """
    out: Opened = o
    owner: address = self._core_address(core, 5)
    amount: uint256 = self._core_uint(core, 25, 16)
    a: Account = o.accounts[0]
    if not a.exists:
        a = Account(exists=True, owner=owner, balance=amount, positions=[])
    else:
        assert a.owner == owner, "stf: owner_mismatch"
        a.balance += amount
        assert a.balance <= MAX_UINT128, "stf: amount_overflow"
    out.accounts[0] = a
    out.account_written[0] = True
    out.counters.deposit_count += 1
    out.counters.deposit_hash = keccak256(concat(o.counters.deposit_hash, slice(core, 1, 40)))
    return out


@internal
@pure
def _order_digest(ctx: Context, a: Account, series_id: bytes32, side: uint256, core: Bytes[800], at: uint256) -> bytes32:
    """
    @dev `_verify_order` (without the signature): unexpired, then the order's digest.
    @param ctx The context.
    @param a The signer's leaf.
    @param series_id The traded series.
    @param side The signer's side.
    @param core The trade core.
    @param at Offset of the order terms.
    @return bytes32 The order digest.
    """
    expiry: uint256 = self._core_uint(core, at + 41, 8)
    o: eip712.Order = eip712.Order(
        account=a.owner, series_id=series_id, side=convert(side, uint8),
        price=self._core_uint(core, at + 8, 16), quantity=self._core_uint(core, at + 24, 16),
        time_in_force=convert(self._core_uint(core, at + 40, 1), uint8),
        nonce=self._core_uint(core, at, 8), expiry=convert(expiry, uint64),
    )
    return eip712._compute_digest(ctx.domain_separator, eip712._hash_order(o))


@internal
@pure
def _trade(o: Opened, ctx: Context, core: Bytes[800], sig0: Bytes[65], sig1: Bytes[65]) -> Opened:
    """
    @dev `compute_trade_effect`: one book fill between two signed orders.
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @param sig0 The maker's signature.
    @param sig1 The taker's signature.
    @return Opened The slots after.
    """
    out: Opened = o
    assert o.account_ids[0] != self._core_uint(core, 5, 4), "stf: same_account"
    maker: Account = o.accounts[0]
    taker: Account = o.accounts[1]
    assert maker.exists and taker.exists, "stf: unknown_account"
    self._check_fresh(o.counters, ctx)
    expiry_id: bytes32 = self._core_word(core, 9)
    strike: uint256 = self._core_uint(core, 41, 16)
    kind: uint256 = self._core_uint(core, 57, 1)
    maker_side: uint256 = self._core_uint(core, 58, 1)
    quantity: uint256 = self._core_uint(core, 59, 16)
    price: uint256 = self._core_uint(core, 75, 16)
    maker_fee: uint256 = self._core_uint(core, 91, 16)
    taker_fee: uint256 = self._core_uint(core, 107, 16)
    e: ListedExpiry = self._tradable(ctx, expiry_id, strike, o.counters.clock)
    series_id: bytes32 = self._series_id(e, strike, kind)
    taker_side: uint256 = 3 - maker_side
    clock: uint256 = convert(o.counters.clock, uint256)
    assert clock <= self._core_uint(core, 123 + 41, 8), "stf: message_expired"
    maker_digest: bytes32 = self._order_digest(ctx, maker, series_id, maker_side, core, 123)
    self._check_signer(maker_digest, sig0, maker.owner)
    assert clock <= self._core_uint(core, 172 + 41, 8), "stf: message_expired"
    taker_digest: bytes32 = self._order_digest(ctx, taker, series_id, taker_side, core, 172)
    self._check_signer(taker_digest, sig1, taker.owner)
    maker_limit: uint256 = self._core_uint(core, 123 + 8, 16)
    taker_limit: uint256 = self._core_uint(core, 172 + 8, 16)
    if maker_side == BUY:
        assert price <= maker_limit, "stf: price_outside_limit"
        assert price >= taker_limit, "stf: price_outside_limit"
    else:
        assert price >= maker_limit, "stf: price_outside_limit"
        assert price <= taker_limit, "stf: price_outside_limit"
    premium: uint256 = self._premium(price, quantity, ctx.contract_unit)
    self._check_fees(maker_fee, taker_fee, premium, ctx)
    out.entries[0] = self._filled(o.entries[0], maker_digest, self._core_uint(core, 123 + 24, 16), quantity)
    out.entries[1] = self._filled(o.entries[1], taker_digest, self._core_uint(core, 172 + 24, 16), quantity)
    out.entry_written = [True, True]
    sign: int256 = -1
    if maker_side == BUY:
        sign = 1
    deltas: DynArray[Delta, MAX_LEGS] = [
        Delta(expiry_id=expiry_id, strike=strike, kind=kind, delta=sign * convert(quantity, int256))
    ]
    p: int256 = convert(premium, int256)
    out.accounts[0] = self._traded(maker, deltas, 1, -sign * p - convert(maker_fee, int256), ctx)
    out.accounts[1] = self._traded(taker, deltas, -1, sign * p - convert(taker_fee, int256), ctx)
    out.account_written = [True, True]
    out.counters = self._fee_pool(o.counters, maker_fee + taker_fee)
    return out


@internal
@pure
def _rfq_fill(o: Opened, ctx: Context, core: Bytes[800], sig0: Bytes[65], sig1: Bytes[65]) -> Opened:
    """
    @dev `compute_rfq_fill_effect`: every leg of an accepted quote at once.
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @param sig0 The maker's quote signature.
    @param sig1 The taker's accept signature.
    @return Opened The slots after.
    """
    out: Opened = o
    assert o.account_ids[0] != self._core_uint(core, 5, 4), "stf: same_account"
    maker: Account = o.accounts[0]
    taker: Account = o.accounts[1]
    assert maker.exists and taker.exists, "stf: unknown_account"
    self._check_fresh(o.counters, ctx)
    size: uint256 = self._core_uint(core, 9, 16)
    maker_fee: uint256 = self._core_uint(core, 25, 16)
    taker_fee: uint256 = self._core_uint(core, 41, 16)
    quote_side: uint256 = self._core_uint(core, 97, 1)
    legs: DynArray[eip712.QuoteLeg, MAX_LEGS] = []
    deltas: DynArray[Delta, MAX_LEGS] = []
    maker_cash: int256 = 0
    premium_total: uint256 = 0
    n: uint256 = self._core_uint(core, 138, 1)
    for i: uint256 in range(n, bound=MAX_LEGS):
        at: uint256 = 139 + 70 * i
        expiry_id: bytes32 = self._core_word(core, at)
        strike: uint256 = self._core_uint(core, at + 32, 16)
        kind: uint256 = self._core_uint(core, at + 48, 1)
        ratio: uint256 = self._core_uint(core, at + 49, 4)
        is_buy: bool = self._core_uint(core, at + 53, 1) == 1
        price: uint256 = self._core_uint(core, at + 54, 16)
        e: ListedExpiry = self._tradable(ctx, expiry_id, strike, o.counters.clock)
        quantity: uint256 = ratio * size
        assert quantity <= MAX_QUANTITY, "stf: amount_overflow"
        legs.append(eip712.QuoteLeg(
            series_id=self._series_id(e, strike, kind), ratio=convert(ratio, uint32), is_buy=is_buy,
            price=price,
        ))
        premium: uint256 = self._premium(price, quantity, ctx.contract_unit)
        sign: int256 = -1
        if (quote_side == BUY) == is_buy:
            sign = 1
        deltas.append(Delta(expiry_id=expiry_id, strike=strike, kind=kind, delta=sign * convert(quantity, int256)))
        maker_cash -= sign * convert(premium, int256)
        premium_total += premium
    clock: uint256 = convert(o.counters.clock, uint256)
    assert clock <= self._core_uint(core, 114, 8), "stf: message_expired"
    assert clock <= self._core_uint(core, 130, 8), "stf: message_expired"
    q: eip712.Quote = eip712.Quote(
        maker=maker.owner, taker=taker.owner, rfq_id=self._core_word(core, 65), legs=legs,
        side=convert(quote_side, uint8), size=self._core_uint(core, 98, 16),
        nonce=self._core_uint(core, 57, 8), expiry=convert(self._core_uint(core, 114, 8), uint64),
    )
    quote_digest: bytes32 = eip712._compute_digest(ctx.domain_separator, eip712._hash_quote(q))
    self._check_signer(quote_digest, sig0, maker.owner)
    a: eip712.Accept = eip712.Accept(
        taker=taker.owner, quote_id=quote_digest, size=size, nonce=self._core_uint(core, 122, 8),
        expiry=convert(self._core_uint(core, 130, 8), uint64),
    )
    accept_digest: bytes32 = eip712._compute_digest(ctx.domain_separator, eip712._hash_accept(a))
    self._check_signer(accept_digest, sig1, taker.owner)
    self._check_fees(maker_fee, taker_fee, premium_total, ctx)
    out.entries[0] = self._filled(o.entries[0], quote_digest, q.size, size)
    out.entries[1] = self._used(o.entries[1], accept_digest)
    out.entry_written = [True, True]
    out.accounts[0] = self._traded(maker, deltas, 1, maker_cash - convert(maker_fee, int256), ctx)
    out.accounts[1] = self._traded(taker, deltas, -1, -maker_cash - convert(taker_fee, int256), ctx)
    out.account_written = [True, True]
    out.counters = self._fee_pool(o.counters, maker_fee + taker_fee)
    return out


@internal
@pure
def _cancel(o: Opened, ctx: Context, core: Bytes[800], sig0: Bytes[65]) -> Opened:
    """
    @dev `compute_cancel_effect`: the slot (account, nonce) becomes cancelled.
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @param sig0 The owner's signature.
    @return Opened The slots after.
    """
    out: Opened = o
    a: Account = o.accounts[0]
    assert a.exists, "stf: unknown_account"
    self._check_fresh(o.counters, ctx)
    expiry: uint256 = self._core_uint(core, 45, 8)
    assert convert(o.counters.clock, uint256) <= expiry, "stf: message_expired"
    order_hash: bytes32 = self._core_word(core, 13)
    c: eip712.Cancel = eip712.Cancel(
        account=a.owner, order_hash=order_hash, nonce=self._core_uint(core, 5, 8),
        expiry=convert(expiry, uint64),
    )
    self._check_signer(eip712._compute_digest(ctx.domain_separator, eip712._hash_cancel(c)), sig0, a.owner)
    e: Entry = o.entries[0]
    if not e.exists:
        e = Entry(exists=True, digest=order_hash, filled=0, status=CANCELLED)
    elif e.status == ACTIVE:
        e.status = CANCELLED
    out.entries[0] = e
    out.entry_written[0] = True
    return out


@internal
@pure
def _withdrawal(o: Opened, ctx: Context, core: Bytes[800], sig0: Bytes[65]) -> Opened:
    """
    @dev `compute_withdrawal_effect`: pay free collateral on the owner's signed request.
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @param sig0 The owner's signature.
    @return Opened The slots after.
    """
    out: Opened = o
    a: Account = o.accounts[0]
    assert a.exists, "stf: unknown_account"
    self._check_fresh(o.counters, ctx)
    expiry: uint256 = self._core_uint(core, 49, 8)
    assert convert(o.counters.clock, uint256) <= expiry, "stf: message_expired"
    amount: uint256 = self._core_uint(core, 33, 16)
    w: eip712.Withdrawal = eip712.Withdrawal(
        account=a.owner, recipient=self._core_address(core, 13), amount=amount,
        nonce=self._core_uint(core, 5, 8), expiry=convert(expiry, uint64),
    )
    digest: bytes32 = eip712._compute_digest(ctx.domain_separator, eip712._hash_withdrawal(w))
    self._check_signer(digest, sig0, a.owner)
    out.entries[0] = self._used(o.entries[0], digest)
    out.entry_written[0] = True
    required: uint256 = self._requirement(self._scratch(a), ctx)
    assert a.balance >= amount and a.balance - amount >= required, "stf: undercollateralised"
    out.accounts[0].balance = a.balance - amount
    out.account_written[0] = True
    return out


@internal
@pure
def _forced(o: Opened, ctx: Context, core: Bytes[800]) -> Opened:
    """
    @dev `compute_forced_withdrawal_effect`: consume the next forced-withdrawal
         entry, paying min(requested, free) (0 unless the leaf is the owner's).
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @return Opened The slots after.
    """
    out: Opened = o
    a: Account = o.accounts[0]
    owner: address = self._core_address(core, 5)
    requested: uint256 = self._core_uint(core, 25, 16)
    paid: uint256 = self._core_uint(core, 41, 16)
    free: uint256 = 0
    if a.exists and a.owner == owner:
        free = self._free(a, ctx)
    assert paid == min(requested, free), "stf: wrong_payout"
    out.counters.forced_count += 1
    out.counters.forced_hash = keccak256(concat(o.counters.forced_hash, slice(core, 1, 40)))
    if a.exists and paid != 0:
        out.accounts[0].balance = a.balance - paid
        out.account_written[0] = True
    return out


@internal
@pure
def _fee(o: Opened, core: Bytes[800]) -> Opened:
    """
    @dev `compute_fee_effect`: move fees from the pool to the fee account.
    @param o The opened slots.
    @param core The operation core.
    @return Opened The slots after.
    """
    out: Opened = o
    amount: uint256 = self._core_uint(core, 1, 16)
    assert amount <= o.counters.fee_pool, "stf: insufficient_fee_pool"
    assert o.accounts[0].exists, "stf: unknown_account"
    out.accounts[0].balance = o.accounts[0].balance + amount
    assert out.accounts[0].balance <= MAX_UINT128, "stf: amount_overflow"
    out.account_written[0] = True
    out.counters.fee_pool = o.counters.fee_pool - amount
    return out


@internal
@pure
def _settle(o: Opened, ctx: Context, core: Bytes[800]) -> Opened:
    """
    @dev `compute_settle_expiry_effect`: one expiry's positions to balance at the
         clamped settlement price (rounded down to the unit grid).
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @return Opened The slots after.
    """
    out: Opened = o
    a: Account = o.accounts[0]
    assert a.exists, "stf: unknown_account"
    expiry_id: bytes32 = self._core_word(core, 5)
    e: ListedExpiry = self._expiry(ctx, expiry_id)
    assert o.counters.clock >= e.timestamp, "stf: not_yet_expired"
    assert e.has_price, "stf: price_unavailable"
    s: uint256 = min(e.settlement_price, e.cap)
    s -= s % ctx.contract_unit
    payoff: int256 = 0
    kept: DynArray[Position, MAX_POSITIONS] = []
    found: bool = False
    for p: Position in a.positions:
        if p.expiry_id == expiry_id:
            payoff += p.quantity * self._intrinsic(p.kind, p.strike, s)
            found = True
        else:
            kept.append(p)
    assert found, "stf: nothing_to_settle"
    unit: int256 = convert(ctx.contract_unit, int256)
    # floor division, as Python's `//` (exact when strikes are on the grid)
    q: int256 = payoff // unit
    if payoff % unit != 0 and payoff < 0:
        q -= 1
    balance: int256 = convert(a.balance, int256) + q
    assert balance >= 0, "stf: undercollateralised"
    assert balance <= convert(MAX_UINT128, int256), "stf: amount_overflow"
    out.accounts[0] = Account(exists=True, owner=a.owner, balance=convert(balance, uint256), positions=kept)
    out.account_written[0] = True
    return out


@internal
@pure
def _tick(o: Opened, ctx: Context, core: Bytes[800]) -> Opened:
    """
    @dev `compute_tick_effect`: clock <= time <= batch timestamp.
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @return Opened The slots after.
    """
    out: Opened = o
    time: uint64 = convert(self._core_uint(core, 1, 8), uint64)
    assert o.counters.clock <= time and time <= ctx.timestamp, "stf: clock_out_of_range"
    out.counters.clock = time
    return out


# --- witnesses and the window ---------------------------------------------------------------


@internal
@pure
def _core_size(core: Bytes[800]) -> uint256:
    """
    @dev `compute_core_size` of the operation at the start of `core`: an unknown
         type or a leg count outside 1..8 is a structural fault ("stf: malformed_operation";
         `Settlement.challenge_queues` proves those). Field ranges are checked by the
         rules (`_check_fields`), so they are provable by this challenge.
    @param core The operation core (padded).
    @return uint256 Its size in bytes.
    """
    t: uint256 = self._core_uint(core, 0, 1)
    if t == RFQ_FILL:
        n: uint256 = self._core_uint(core, 138, 1)
        assert n >= 1 and n <= MAX_LEGS, "stf: malformed_operation"
        return 139 + 70 * n
    if t == TRADE:
        return 221
    if t == DEPOSIT:
        return 41
    if t == CANCEL:
        return 53
    if t == WITHDRAWAL or t == FORCED:
        return 57
    if t == FEE:
        return 17
    if t == SETTLE:
        return 37
    if t == TICK:
        return 9
    raise "stf: malformed_operation"


@internal
@pure
def _check_fields(core: Bytes[800]):
    """
    @dev The field ranges `decode_operations` enforces ("stf: malformed_operation").
    @param core The operation core (padded).
    """
    t: uint256 = self._core_uint(core, 0, 1)
    if t == DEPOSIT:
        assert self._core_uint(core, 25, 16) != 0, "stf: malformed_operation"
    elif t == TRADE:
        assert self._core_uint(core, 57, 1) <= 1, "stf: malformed_operation"
        side: uint256 = self._core_uint(core, 58, 1)
        assert side == BUY or side == SELL, "stf: malformed_operation"
        q: uint256 = self._core_uint(core, 59, 16)
        assert q != 0 and q <= MAX_QUANTITY, "stf: malformed_operation"
        for at: uint256 in [123, 172]:
            assert self._core_uint(core, at + 24, 16) != 0, "stf: malformed_operation"
            assert self._core_uint(core, at + 40, 1) <= 3, "stf: malformed_operation"
    elif t == RFQ_FILL:
        assert self._core_uint(core, 9, 16) != 0 and self._core_uint(core, 98, 16) != 0, "stf: malformed_operation"
        qs: uint256 = self._core_uint(core, 97, 1)
        assert qs == BUY or qs == SELL, "stf: malformed_operation"
        for i: uint256 in range(self._core_uint(core, 138, 1), bound=MAX_LEGS):
            at: uint256 = 139 + 70 * i
            assert self._core_uint(core, at + 48, 1) <= 1, "stf: malformed_operation"
            assert self._core_uint(core, at + 49, 4) != 0, "stf: malformed_operation"
            assert self._core_uint(core, at + 53, 1) <= 1, "stf: malformed_operation"
    elif t == WITHDRAWAL:
        assert self._core_uint(core, 13, 20) != 0, "stf: malformed_operation"
        assert self._core_uint(core, 33, 16) != 0, "stf: malformed_operation"
    elif t == FORCED:
        assert self._core_uint(core, 25, 16) != 0, "stf: malformed_operation"
    elif t == FEE:
        assert self._core_uint(core, 1, 16) != 0, "stf: malformed_operation"


@internal
@pure
def _signature_count(t: uint256) -> uint256:
    """
    @dev `SIGNATURE_COUNTS`.
    @param t The operation type.
    @return uint256 Signatures in its auth part.
    """
    if t == TRADE or t == RFQ_FILL:
        return 2
    if t == CANCEL or t == WITHDRAWAL:
        return 1
    return 0


@internal
@pure
def _touched(core: Bytes[800], fee_account: uint32) -> (uint256, uint256[2], uint256, uint256[2]):
    """
    @dev `get_touched_accounts` and `get_touched_entries`, in order, without repeats.
    @param core The operation core.
    @param fee_account The fee account.
    @return uint256 Number of accounts.
    @return uint256[2] Account ids.
    @return uint256 Number of entries.
    @return uint256[2] Entry keys.
    """
    t: uint256 = self._core_uint(core, 0, 1)
    if t == TRADE or t == RFQ_FILL:
        maker: uint256 = self._core_uint(core, 1, 4)
        taker: uint256 = self._core_uint(core, 5, 4)
        k0: uint256 = 0
        k1: uint256 = 0
        if t == TRADE:
            k0 = self._entry_key(maker, self._core_uint(core, 123, 8))
            k1 = self._entry_key(taker, self._core_uint(core, 172, 8))
        else:
            k0 = self._entry_key(maker, self._core_uint(core, 57, 8))
            k1 = self._entry_key(taker, self._core_uint(core, 122, 8))
        na: uint256 = 2
        if maker == taker:
            na = 1
        ne: uint256 = 2
        if k0 == k1:
            ne = 1
        return na, [maker, taker], ne, [k0, k1]
    if t == FEE:
        return 1, [convert(fee_account, uint256), 0], 0, [0, 0]
    if t == TICK:
        return 0, [0, 0], 0, [0, 0]
    account: uint256 = self._core_uint(core, 1, 4)
    if t == CANCEL or t == WITHDRAWAL:
        return 1, [account, 0], 1, [self._entry_key(account, self._core_uint(core, 5, 8)), 0]
    return 1, [account, 0], 0, [0, 0]


@internal
@pure
def _open(core: Bytes[800], w: Bytes[WBUF], size: uint256, c: Commitment, ctx: Context) -> (Opened, Proof, Proof):
    """
    @dev Read one operation witness and check it against the current roots
         (`_check_keys` and `_open` of witness.py). Layout (docs/protocol.md,
         "Fraud proofs"): na uint8, na x (id uint32, len uint16, leaf), proof if
         na > 0; ne uint8, ne x (key uint96, present uint8, entry 49 if present),
         proof if ne > 0; a proof is flags uint256, n uint16, n x bytes32.
    @param core The operation core.
    @param w The witness, zero-padded.
    @param size The witness's real length.
    @param c The commitment before the operation.
    @param ctx The context.
    @return Opened The opened slots.
    @return Proof The accounts proof (empty if no account is touched).
    @return Proof The entries proof (empty if no entry is touched).
    """
    account_proof: Proof = empty(Proof)
    entry_proof: Proof = empty(Proof)
    na: uint256 = 0
    ids: uint256[2] = empty(uint256[2])
    ne: uint256 = 0
    keys: uint256[2] = empty(uint256[2])
    na, ids, ne, keys = self._touched(core, ctx.fee_account)
    o: Opened = empty(Opened)
    o.account_ids = ids
    o.entry_keys = keys
    o.counters = c.counters
    assert (extract32(w, 0, output_type=uint256) >> 248) == na, "stf: invalid_witness"
    pos: uint256 = 1
    for i: uint256 in range(na, bound=2):
        assert (extract32(w, pos, output_type=uint256) >> 224) == ids[i], "stf: invalid_witness"
        n: uint256 = (extract32(w, pos + 4, output_type=uint256) >> 240)
        pos += 6
        if n != 0:
            o.accounts[i] = self._decode_account(w, pos, n)
        pos += n
    if na != 0:
        account_proof, pos = self._read_proof(w, pos, ids[0], ids[1], na)
        h: bytes32 = self._proof_root(
            account_proof, ids[0], self._account_hash(o.accounts[0]), self._account_hash(o.accounts[1]),
            ACCOUNT_DEPTH,
        )
        assert h == c.accounts_root, "stf: invalid_witness"
    assert (extract32(w, pos, output_type=uint256) >> 248) == ne, "stf: invalid_witness"
    pos += 1
    for i: uint256 in range(ne, bound=2):
        assert (extract32(w, pos, output_type=uint256) >> 160) == keys[i], "stf: invalid_witness"
        present: uint256 = (extract32(w, pos + 12, output_type=uint256) >> 248)
        pos += 13
        if present == 1:
            status: uint256 = (extract32(w, pos + 48, output_type=uint256) >> 248)
            assert status <= 2, "stf: invalid_witness"
            o.entries[i] = Entry(
                exists=True, digest=extract32(w, pos), filled=(extract32(w, pos + 32, output_type=uint256) >> 128),
                status=convert(status, uint8),
            )
            pos += ENTRY_SIZE
        else:
            assert present == 0, "stf: invalid_witness"
    if ne != 0:
        entry_proof, pos = self._read_proof(w, pos, keys[0], keys[1], ne)
        h: bytes32 = self._proof_root(
            entry_proof, keys[0], self._entry_hash(o.entries[0]), self._entry_hash(o.entries[1]),
            ENTRY_DEPTH,
        )
        assert h == c.consumed_root, "stf: invalid_witness"
    assert pos == size, "stf: invalid_witness"
    return o, account_proof, entry_proof


@internal
@view
def _apply(c: Commitment, ctx: Context, core: Bytes[800], sig0: Bytes[65], sig1: Bytes[65], w: Bytes[WBUF], size: uint256, rules: address[2]) -> (Commitment, String[MAX_REASON]):
    """
    @dev `_apply_witnessed`: open, apply the operation's rule, recompute the roots
         from the same proofs with the written values.
    @param c The commitment before.
    @param ctx The context.
    @param core The operation core (padded).
    @param sig0 First signature (or empty).
    @param sig1 Second signature (or empty).
    @param w The operation witness (padded).
    @param size Its real length.
    @param rules The trade-rules and the other-rules contracts.
    @return Commitment The commitment after.
    @return String The rule the operation breaks ("stf: <code>"), or empty.
    """
    o: Opened = empty(Opened)
    account_proof: Proof = empty(Proof)
    entry_proof: Proof = empty(Proof)
    o, account_proof, entry_proof = self._open(core, w, size, c, ctx)
    t: uint256 = self._core_uint(core, 0, 1)
    target: address = rules[1]
    if t == TRADE or t == RFQ_FILL:
        target = rules[0]
    # The rules see only authenticated slots, so a rule's "stf: <code>" revert is the
    # operation's fault (fraud), caught here; anything else (out of gas) reverts.
    ok: bool = False
    response: Bytes[MAX_RULE_RESPONSE] = b""
    ok, response = raw_call(
        target,
        abi_encode(o, ctx, core, sig0, sig1, method_id=method_id(APPLY_RULE)),
        max_outsize=MAX_RULE_RESPONSE,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok:
        assert len(response) > 4 and slice(response, 0, 4) == ERROR_SELECTOR, "stf: rule call failed"
        reason: String[MAX_REASON] = abi_decode(slice(response, 4, len(response) - 4), String[MAX_REASON])
        assert slice(reason, 0, 5) == "stf: ", "stf: rule call failed"
        return c, reason
    o = abi_decode(response, Opened)
    out: Commitment = Commitment(accounts_root=c.accounts_root, consumed_root=c.consumed_root, counters=o.counters)
    if o.account_written[0] or o.account_written[1]:
        out.accounts_root = self._proof_root(
            account_proof, o.account_ids[0], self._account_hash(o.accounts[0]),
            self._account_hash(o.accounts[1]), ACCOUNT_DEPTH,
        )
    if o.entry_written[0] or o.entry_written[1]:
        out.consumed_root = self._proof_root(
            entry_proof, o.entry_keys[0], self._entry_hash(o.entries[0]), self._entry_hash(o.entries[1]),
            ENTRY_DEPTH,
        )
    return out, ""


@external
@view
def verify_window(
    checkpoint_root: bytes32,
    ctx: Context,
    checkpoint: Commitment,
    core: Bytes[MAX_CORE],
    auth: Bytes[MAX_AUTH],
    witnesses: DynArray[Bytes[MAX_OP_WITNESS], MAX_K],
) -> (bool, bytes32, String[MAX_REASON]):
    """
    @dev `verify_window`: the state root after the window's operations, from the
         checkpoint preimage and one witness per operation. External (exported by
         the verifier contract) so the arguments stay in calldata: an internal
         call would copy ~450 kB of bounded buffers into memory (~2.5M gas).
    @param checkpoint_root The committed root the window starts from.
    @param ctx The batch's context (domain, registry, parameters).
    @param checkpoint The preimage of `checkpoint_root`.
    @param core The window's operation cores, concatenated.
    @param auth The window's signatures, concatenated.
    @param witnesses One witness per operation (up to an invalid one).
    @return bool True if an operation breaks a rule of the STF (fraud).
    @return bytes32 The recomputed root (zero when an operation is invalid).
    @return String The broken rule, "stf: <code>" (the Python error's `code`), or empty.
    """
    assert ctx.max_positions <= MAX_POSITIONS and ctx.contract_unit != 0, "stf: unsupported context"
    z: bytes32 = empty(bytes32)
    # 800 zero bytes of padding: every fixed-size read of the last operation stays in bounds.
    padded: Bytes[MAX_CORE + 800] = concat(
        core, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z
    )
    # decode pass: sizes, field checks, signature bytes (MalformedOperation comes first)
    count: uint256 = 0
    pos: uint256 = 0
    sigs: uint256 = 0
    for i: uint256 in range(MAX_K + 1):
        if pos >= len(core):
            break
        assert i < MAX_K, "stf: invalid_witness"
        one: Bytes[800] = slice(padded, pos, 800)
        pos += self._core_size(one)
        sigs += self._signature_count(self._core_uint(one, 0, 1))
        count += 1
    assert pos == len(core), "stf: malformed_operation"
    assert sigs * 65 == len(auth), "stf: malformed_operation"
    assert count >= 1 and count <= ctx.checkpoint_interval, "stf: invalid_witness"
    assert len(witnesses) <= count, "stf: invalid_witness"
    assert self._state_root(checkpoint) == checkpoint_root, "stf: invalid_witness"
    c: Commitment = checkpoint
    pos = 0
    apos: uint256 = 0
    for i: uint256 in range(count, bound=MAX_K):
        assert i < len(witnesses), "stf: invalid_witness"
        one: Bytes[800] = slice(padded, pos, 800)
        pos += self._core_size(one)
        n: uint256 = self._signature_count(self._core_uint(one, 0, 1))
        sig0: Bytes[65] = b""
        sig1: Bytes[65] = b""
        if n >= 1:
            sig0 = slice(auth, apos, 65)
        if n == 2:
            sig1 = slice(auth, apos + 65, 65)
        apos += 65 * n
        reason: String[MAX_REASON] = ""
        c, reason = self._apply(c, ctx, one, sig0, sig1, concat(witnesses[i], z), len(witnesses[i]), self.rules)
        if len(reason) != 0:
            return True, empty(bytes32), reason
    return False, self._state_root(c), ""


# --- rule dispatch (the rules are split over contracts: EIP-170) ----------------------------


@internal
@pure
def _trade_rule(o: Opened, ctx: Context, core: Bytes[800], sig0: Bytes[65], sig1: Bytes[65]) -> Opened:
    """
    @dev Trade and RFQ fill (`StfTradeRules`).
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @param sig0 First signature.
    @param sig1 Second signature.
    @return Opened The slots after.
    """
    self._check_fields(core)
    if self._core_uint(core, 0, 1) == TRADE:
        return self._trade(o, ctx, core, sig0, sig1)
    return self._rfq_fill(o, ctx, core, sig0, sig1)


@internal
@pure
def _other_rule(o: Opened, ctx: Context, core: Bytes[800], sig0: Bytes[65]) -> Opened:
    """
    @dev Every rule but trade and RFQ fill (`StfRules`).
    @param o The opened slots.
    @param ctx The context.
    @param core The operation core.
    @param sig0 The signature (cancel, withdrawal).
    @return Opened The slots after.
    """
    self._check_fields(core)
    t: uint256 = self._core_uint(core, 0, 1)
    if t == DEPOSIT:
        return self._deposit(o, core)
    if t == FEE:
        return self._fee(o, core)
    if t == TICK:
        return self._tick(o, ctx, core)
    if t == CANCEL:
        return self._cancel(o, ctx, core, sig0)
    if t == WITHDRAWAL:
        return self._withdrawal(o, ctx, core, sig0)
    if t == FORCED:
        return self._forced(o, ctx, core)
    return self._settle(o, ctx, core)
