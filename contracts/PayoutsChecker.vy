# pragma version ~=0.4.3
"""
@title PayoutsChecker
@custom:contract-name PayoutsChecker
@license MIT
@notice Recomputes a batch's payouts from its posted data, for `Settlement.challenge_payouts`
        (kept apart: Settlement is near the contract size limit). Payouts are, in
        operation order, every `Withdrawal` `(recipient, amount)` and every
        `ForcedWithdrawal` with `paid > 0` `(owner, paid)`; their claims tree is
        OpenZeppelin's `StandardMerkleTree` over `(uint64 batch, uint32 index, address,
        uint256)`: leaves sorted ascending, stored backwards at the end of a heap-ordered
        array, parents `keccak(min ++ max)`. Sorting is not done on-chain: the caller
        passes the ascending order as a permutation, which is checked (strictly
        increasing leaf hashes, so every index appears once). It also walks a batch's
        queue entries and structure for `Settlement.challenge_queues`. Stateless.
"""

MAX_HEADER: constant(uint256) = 300 + 32 * 128
MAX_OPS_DATA: constant(uint256) = 400000
MAX_WINDOWS: constant(uint256) = 128
MAX_K: constant(uint256) = 32
# @dev A valid batch makes at most this many payouts (`clearhouse.settlement.header.MAX_PAYOUTS`):
#      rebuilding that many leaves and their tree stays well under half a block.
MAX_PAYOUTS: public(constant(uint256)) = 1024
# @dev The count reported for a batch with more: no 4-byte `withdrawalCount` equals it, so the
#      challenge always proves such a batch wrong.
TOO_MANY: constant(uint256) = max_value(uint256)
MAX_NODES: constant(uint256) = 2 * MAX_PAYOUTS - 1
U32_MASK: constant(uint256) = 2**32 - 1
CORE_SIZES: constant(uint256[10]) = [0, 41, 221, 0, 53, 57, 57, 17, 37, 9]
AUTH_SIZES: constant(uint256[10]) = [0, 0, 130, 130, 65, 65, 0, 0, 0, 0]
OP_DEPOSIT: constant(uint256) = 1
OP_RFQ_FILL: constant(uint256) = 3
OP_WITHDRAWAL: constant(uint256) = 5
OP_FORCED: constant(uint256) = 6


@external
@view
def compute_payouts(
    header: Bytes[MAX_HEADER], ops_data: Bytes[MAX_OPS_DATA], order: DynArray[uint256, MAX_PAYOUTS]
) -> (uint256, bytes32):
    """
    @notice The payout count and claims root of the batch `header` commits to.
    @dev Reverts if `ops_data` does not hash to the header's `opsHash`, if an operation
         cannot be walked (that is a queue/structure fault, proven by `challenge_queues`),
         or if `order` is not the ascending order of the leaves.
    @param header The batch header.
    @param ops_data Its windows (`uint32 coreLength ++ uint32 authLength ++ core ++ auth` each).
    @param order Payout indices in ascending order of their leaf hashes.
    @return (uint256, bytes32) (payout count, withdrawals root; zero when there are none);
            (`2**256 - 1`, zero) for a batch with more than `MAX_PAYOUTS` payouts (the data is
            still authenticated against the header first).
    """
    number: uint256 = extract32(header, 0, output_type=uint256) >> 192
    m: uint256 = extract32(header, 296, output_type=uint256) >> 224
    pos: uint256 = 0
    window_hashes: DynArray[bytes32, MAX_WINDOWS] = []
    leaves: DynArray[bytes32, MAX_PAYOUTS] = []
    too_many: bool = False
    for j: uint256 in range(m, bound=MAX_WINDOWS):
        assert pos + 8 <= len(ops_data), "payouts: bad ops data"
        lens: uint256 = convert(slice(ops_data, pos, 8), uint256)
        core_end: uint256 = pos + 8 + (lens >> 32)
        auth_len: uint256 = lens & U32_MASK
        assert core_end + auth_len <= len(ops_data), "payouts: bad ops data"
        window_hashes.append(keccak256(concat(keccak256(slice(ops_data, pos + 8, lens >> 32)),
                                              keccak256(slice(ops_data, core_end, auth_len)))))
        p: uint256 = pos + 8
        for _: uint256 in range(MAX_K + 1):
            if p >= core_end:
                break
            t: uint256 = convert(slice(ops_data, p, 1), uint256)
            assert t != 0 and t < 10, "payouts: bad operation"
            size: uint256 = CORE_SIZES[t]
            if t == OP_RFQ_FILL:
                size = 139 + 70 * convert(slice(ops_data, p + 138, 1), uint256)
            assert p + size <= core_end, "payouts: bad operation"
            if t == OP_WITHDRAWAL or (t == OP_FORCED and convert(slice(ops_data, p + 41, 16), uint256) != 0):
                if len(leaves) == MAX_PAYOUTS:
                    too_many = True
                elif not too_many:
                    if t == OP_WITHDRAWAL:
                        leaves.append(self._leaf(number, len(leaves), slice(ops_data, p + 13, 20),
                                                 convert(slice(ops_data, p + 33, 16), uint256)))
                    else:
                        leaves.append(self._leaf(number, len(leaves), slice(ops_data, p + 5, 20),
                                                 convert(slice(ops_data, p + 41, 16), uint256)))
            p += size
        assert p == core_end, "payouts: bad operation"
        pos = core_end + auth_len
    assert pos == len(ops_data), "payouts: bad ops data"
    assert keccak256(slice(abi_encode(window_hashes), 64, 32 * m)) == extract32(header, 228), \
        "payouts: wrong ops hash"
    if too_many:
        return TOO_MANY, empty(bytes32)
    return len(leaves), self._root(leaves, order)


@internal
@pure
def _leaf(number: uint256, index: uint256, recipient: Bytes[20], amount: uint256) -> bytes32:
    """
    @dev The claims-tree leaf `keccak(keccak(abi.encode(uint64, uint32, address, uint256)))`.
    @param number The batch number.
    @param index The payout's index.
    @param recipient The recipient's 20 bytes.
    @param amount Base units.
    @return bytes32 The leaf hash.
    """
    who: address = convert(convert(recipient, bytes20), address)
    return keccak256(keccak256(abi_encode(number, index, who, amount)))


@internal
@pure
def _root(leaves: DynArray[bytes32, MAX_PAYOUTS], order: DynArray[uint256, MAX_PAYOUTS]) -> bytes32:
    """
    @dev The StandardMerkleTree root of `leaves` sorted by `order`.
    @param leaves Leaf hashes in payout order.
    @param order Their ascending order.
    @return bytes32 The root (zero for no leaves).
    """
    count: uint256 = len(leaves)
    if count == 0:
        return empty(bytes32)
    assert len(order) == count, "payouts: bad order"
    size: uint256 = 2 * count - 1
    tree: bytes32[MAX_NODES] = empty(bytes32[MAX_NODES])
    previous: uint256 = 0
    for i: uint256 in range(count, bound=MAX_PAYOUTS):
        leaf: bytes32 = leaves[order[i]]
        # strictly increasing: no index twice, so `order` is a permutation
        assert i == 0 or convert(leaf, uint256) > previous, "payouts: bad order"
        previous = convert(leaf, uint256)
        tree[size - 1 - i] = leaf
    for k: uint256 in range(count - 1, bound=MAX_PAYOUTS):
        i: uint256 = count - 2 - k
        a: bytes32 = tree[2 * i + 1]
        b: bytes32 = tree[2 * i + 2]
        if convert(a, uint256) <= convert(b, uint256):
            tree[i] = keccak256(concat(a, b))
        else:
            tree[i] = keccak256(concat(b, a))
    return tree[0]


@external
@view
def compute_queue_fault(header: Bytes[MAX_HEADER], ops_data: Bytes[MAX_OPS_DATA], deposits_before: uint256,
                        deposit_hash: bytes32, forced_before: uint256, forced_hash: bytes32) -> String[32]:
    """
    @notice For `Settlement.challenge_queues`: check `ops_data` against the header's `opsHash`
            (reverting if it differs), then walk every operation, re-chain its deposits and
            forced withdrawals from the previous batch's queue positions and compare with the
            header. Only the structure is decoded here (type, length, leg count, signature
            bytes, operations per window, the header's `K`); field ranges and every rule are
            the execution challenge's. Reverts carry Settlement's messages: they are its checks.
    @param header The batch header (authenticated by the caller).
    @param ops_data Its windows.
    @param deposits_before Deposit-queue position after the previous batch.
    @param deposit_hash The vault's deposit chain hash at that position.
    @param forced_before Forced-withdrawal queue position after the previous batch.
    @param forced_hash The vault's forced chain hash at that position.
    @return String[32] The fault, or "" if there is none.
    """
    m: uint256 = extract32(header, 296, output_type=uint256) >> 224
    k: uint256 = extract32(header, 220, output_type=uint256) >> 224
    pos: uint256 = 0
    hashes: DynArray[bytes32, MAX_WINDOWS] = []
    for j: uint256 in range(m, bound=MAX_WINDOWS):
        assert pos + 8 <= len(ops_data), "settlement: bad ops data"
        lens: uint256 = convert(slice(ops_data, pos, 8), uint256)
        core_len: uint256 = lens >> 32
        auth_len: uint256 = lens & U32_MASK
        assert pos + 8 + core_len + auth_len <= len(ops_data), "settlement: bad ops data"
        hashes.append(keccak256(concat(keccak256(slice(ops_data, pos + 8, core_len)),
                                       keccak256(slice(ops_data, pos + 8 + core_len, auth_len)))))
        pos += 8 + core_len + auth_len
    assert pos == len(ops_data), "settlement: bad ops data"
    # the items of an ABI-encoded dynamic array start after its offset and length words
    assert keccak256(slice(abi_encode(hashes), 64, 32 * len(hashes))) == extract32(header, 228), \
        "settlement: wrong ops hash"

    deposits: uint256 = deposits_before
    forced: uint256 = forced_before
    d_hash: bytes32 = deposit_hash
    f_hash: bytes32 = forced_hash
    pos = 0
    ops: uint256 = 0
    for j: uint256 in range(m, bound=MAX_WINDOWS):
        lens: uint256 = convert(slice(ops_data, pos, 8), uint256)
        core_end: uint256 = pos + 8 + (lens >> 32)
        auth_len: uint256 = lens & U32_MASK
        p: uint256 = pos + 8
        window_ops: uint256 = 0
        sig_bytes: uint256 = 0
        for _: uint256 in range(MAX_K + 1):
            if p == core_end:
                break
            if window_ops == k:
                return "window too long"
            t: uint256 = convert(slice(ops_data, p, 1), uint256)
            size: uint256 = 0
            sigs: uint256 = 0
            if t == OP_RFQ_FILL:
                if p + 139 > core_end:
                    return "truncated operation"
                legs: uint256 = convert(slice(ops_data, p + 138, 1), uint256)
                if legs == 0 or legs > 8:
                    return "bad leg count"
                size = 139 + 70 * legs
                sigs = 130
            elif t != 0 and t < 10:
                size = CORE_SIZES[t]
                sigs = AUTH_SIZES[t]
            else:
                return "unknown operation"
            if p + size > core_end:
                return "truncated operation"
            if t == OP_DEPOSIT:
                deposits += 1
                d_hash = keccak256(concat(d_hash, slice(ops_data, p + 1, 40)))
            elif t == OP_FORCED:
                forced += 1
                f_hash = keccak256(concat(f_hash, slice(ops_data, p + 1, 40)))
            p += size
            sig_bytes += sigs
            window_ops += 1
        if sig_bytes != auth_len:
            return "signature bytes"
        if window_ops == 0 or (j + 1 < m and window_ops != k):
            return "window size"
        ops += window_ops
        pos = core_end + auth_len
    if ops != extract32(header, 224, output_type=uint256) >> 224:
        return "op count"
    if deposits != extract32(header, 104, output_type=uint256) >> 192 or d_hash != extract32(header, 112):
        return "deposit queue"
    if forced != extract32(header, 144, output_type=uint256) >> 192 or f_hash != extract32(header, 152):
        return "forced queue"
    return ""
