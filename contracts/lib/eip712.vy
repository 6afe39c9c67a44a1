# pragma version ~=0.4.3
"""
@title clearhouse EIP-712 messages
@custom:contract-name eip712
@license MIT
@notice The on-chain mirror of `clearhouse/messages`: the deployment's EIP-712
        domain separator (chain id read live, verifying contract = `self`),
        one struct hash and one digest function per message type, and
        canonical signature recovery (exactly 65 bytes, `v` in {27, 28},
        `0 < r < n`, `0 < s <= n/2`, non-zero signer) plus expiry checks.
        The type strings below must equal `clearhouse/messages/schema.py`;
        `tests/vectors/messages.json` (emitted by the Python rules) proves
        both compute the same digests and reject with the same reasons.
        A contract that uses it declares `initializes: eip712` and calls
        `eip712.__init__(name, version)` from its constructor.
"""


# @dev Bounds of the dynamic members (same limits as the Python schema).
MAX_LEGS: constant(uint256) = 8
MAX_REASON_BYTES: constant(uint256) = 1024
MAX_POST_BYTES: constant(uint256) = 4096


# @dev secp256k1 group order and its half (the low-s bound of EIP-2).
_SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168


struct Leg:
    series_id: bytes32
    ratio: uint32
    is_buy: bool


struct QuoteLeg:
    series_id: bytes32
    ratio: uint32
    is_buy: bool
    price: uint256


struct Order:
    account: address
    series_id: bytes32
    side: uint8
    price: uint256
    quantity: uint256
    time_in_force: uint8
    nonce: uint256
    expiry: uint64


struct RFQ:
    taker: address
    legs: DynArray[Leg, MAX_LEGS]
    size: uint256
    side: uint8
    nonce: uint256
    expiry: uint64


struct Quote:
    maker: address
    taker: address
    rfq_id: bytes32
    legs: DynArray[QuoteLeg, MAX_LEGS]
    side: uint8
    size: uint256
    nonce: uint256
    expiry: uint64


struct Accept:
    taker: address
    quote_id: bytes32
    size: uint256
    nonce: uint256
    expiry: uint64


struct Cancel:
    account: address
    order_hash: bytes32
    nonce: uint256
    expiry: uint64


struct Withdrawal:
    account: address
    recipient: address
    amount: uint256
    nonce: uint256
    expiry: uint64


struct Observation:
    feed_id: bytes32
    round: uint64
    price: uint256
    timestamp: uint64
    expiry: uint64


struct Vote:
    voter: address
    proposal_id: uint256
    choice: uint8
    reason: String[MAX_REASON_BYTES]
    expiry: uint64


struct Post:
    author: address
    proposal_id: uint256
    parent: bytes32
    body: String[MAX_POST_BYTES]
    expiry: uint64


# @dev The type hashes: keccak256 of each EIP-712 `encodeType` string.
DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
LEG_TYPEHASH: constant(bytes32) = keccak256("Leg(bytes32 seriesId,uint32 ratio,bool isBuy)")
QUOTE_LEG_TYPEHASH: constant(bytes32) = keccak256(
    "QuoteLeg(bytes32 seriesId,uint32 ratio,bool isBuy,uint256 price)"
)
ORDER_TYPEHASH: constant(bytes32) = keccak256(
    "Order(address account,bytes32 seriesId,uint8 side,uint256 price,uint256 quantity,uint8 timeInForce,uint256 nonce,uint64 expiry)"
)
RFQ_TYPEHASH: constant(bytes32) = keccak256(
    "RFQ(address taker,Leg[] legs,uint256 size,uint8 side,uint256 nonce,uint64 expiry)Leg(bytes32 seriesId,uint32 ratio,bool isBuy)"
)
QUOTE_TYPEHASH: constant(bytes32) = keccak256(
    "Quote(address maker,address taker,bytes32 rfqId,QuoteLeg[] legs,uint8 side,uint256 size,uint256 nonce,uint64 expiry)QuoteLeg(bytes32 seriesId,uint32 ratio,bool isBuy,uint256 price)"
)
ACCEPT_TYPEHASH: constant(bytes32) = keccak256(
    "Accept(address taker,bytes32 quoteId,uint256 size,uint256 nonce,uint64 expiry)"
)
CANCEL_TYPEHASH: constant(bytes32) = keccak256(
    "Cancel(address account,bytes32 orderHash,uint256 nonce,uint64 expiry)"
)
WITHDRAWAL_TYPEHASH: constant(bytes32) = keccak256(
    "Withdrawal(address account,address recipient,uint256 amount,uint256 nonce,uint64 expiry)"
)
OBSERVATION_TYPEHASH: constant(bytes32) = keccak256(
    "Observation(bytes32 feedId,uint64 round,uint256 price,uint64 timestamp,uint64 expiry)"
)
VOTE_TYPEHASH: constant(bytes32) = keccak256(
    "Vote(address voter,uint256 proposalId,uint8 choice,string reason,uint64 expiry)"
)
POST_TYPEHASH: constant(bytes32) = keccak256(
    "Post(address author,uint256 proposalId,bytes32 parent,string body,uint64 expiry)"
)


# @dev The hashed domain name and version, fixed at deployment.
_HASHED_NAME: immutable(bytes32)
_HASHED_VERSION: immutable(bytes32)


# @dev The separator for the chain and address of deployment; it is only
# used while `chain.id` (read live on every call) and `self` still match,
# so a fork with a new chain id gets a freshly computed separator.
_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)
_CACHED_CHAIN_ID: immutable(uint256)
_CACHED_SELF: immutable(address)


@deploy
def __init__(name_: String[64], version_: String[32]):
    """
    @dev Fixes the domain's name and version and caches the separator.
    @param name_ The domain `name` (at most 64 bytes, like the Python `Domain`).
    @param version_ The domain `version` (at most 32 bytes).
    """
    _HASHED_NAME = keccak256(name_)
    _HASHED_VERSION = keccak256(version_)
    _CACHED_CHAIN_ID = chain.id
    _CACHED_SELF = self
    _CACHED_DOMAIN_SEPARATOR = keccak256(
        abi_encode(DOMAIN_TYPEHASH, _HASHED_NAME, _HASHED_VERSION, chain.id, self)
    )


@internal
@view
def _hash_domain(chain_id: uint256, verifying_contract: address) -> bytes32:
    """
    @dev Computes the separator of this deployment's domain for any chain
         id and verifying contract (the same name and version).
    @param chain_id The EIP-155 chain id.
    @param verifying_contract The verifying contract.
    @return bytes32 `hashStruct(EIP712Domain)`.
    """
    return keccak256(
        abi_encode(DOMAIN_TYPEHASH, _HASHED_NAME, _HASHED_VERSION, chain_id, verifying_contract)
    )


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev Returns the domain separator for the current chain id (read
         live) and `self`, using the deployment-time cache when they match.
    @return bytes32 The domain separator.
    """
    if chain.id == _CACHED_CHAIN_ID and self == _CACHED_SELF:
        return _CACHED_DOMAIN_SEPARATOR
    return self._hash_domain(chain.id, self)


@internal
@pure
def _compute_digest(domain_separator: bytes32, struct_hash: bytes32) -> bytes32:
    """
    @dev Returns the EIP-712 digest of a struct hash in any domain.
    @param domain_separator The domain's `hashStruct(EIP712Domain)`.
    @param struct_hash The `hashStruct` of the message.
    @return bytes32 `keccak256(0x1901 || domain_separator || struct_hash)`.
    """
    return keccak256(concat(x"1901", domain_separator, struct_hash))


@internal
@view
def _hash_typed_data(struct_hash: bytes32) -> bytes32:
    """
    @dev Returns the EIP-712 digest of a struct hash in this domain.
    @param struct_hash The `hashStruct` of the message.
    @return bytes32 The digest for the live domain separator.
    """
    return self._compute_digest(self._domain_separator(), struct_hash)


@internal
@pure
def _hash_legs(legs: DynArray[Leg, MAX_LEGS]) -> bytes32:
    """
    @dev Hashes a `Leg[]` member: keccak256 of the concatenated leg hashes.
    @param legs The legs.
    @return bytes32 The array's `encodeData` word.
    """
    hashes: DynArray[bytes32, MAX_LEGS] = []
    for leg: Leg in legs:
        hashes.append(keccak256(abi_encode(LEG_TYPEHASH, leg.series_id, leg.ratio, leg.is_buy)))
    # @dev `abi_encode` of one dynamic array is head offset (32) || length
    # (32) || elements, so the elements alone start at byte 64.
    return keccak256(slice(abi_encode(hashes), 64, 32 * len(hashes)))


@internal
@pure
def _hash_quote_legs(legs: DynArray[QuoteLeg, MAX_LEGS]) -> bytes32:
    """
    @dev Hashes a `QuoteLeg[]` member: keccak256 of the concatenated leg hashes.
    @param legs The priced legs.
    @return bytes32 The array's `encodeData` word.
    """
    hashes: DynArray[bytes32, MAX_LEGS] = []
    for leg: QuoteLeg in legs:
        hashes.append(
            keccak256(abi_encode(QUOTE_LEG_TYPEHASH, leg.series_id, leg.ratio, leg.is_buy, leg.price))
        )
    return keccak256(slice(abi_encode(hashes), 64, 32 * len(hashes)))


@internal
@pure
def _hash_order(o: Order) -> bytes32:
    """
    @dev Returns `hashStruct(Order)`.
    @param o The order.
    @return bytes32 The struct hash.
    """
    return keccak256(
        abi_encode(
            ORDER_TYPEHASH, o.account, o.series_id, o.side, o.price, o.quantity, o.time_in_force,
            o.nonce, o.expiry,
        )
    )


@internal
@pure
def _hash_rfq(r: RFQ) -> bytes32:
    """
    @dev Returns `hashStruct(RFQ)`.
    @param r The request for quotes.
    @return bytes32 The struct hash.
    """
    return keccak256(
        abi_encode(RFQ_TYPEHASH, r.taker, self._hash_legs(r.legs), r.size, r.side, r.nonce, r.expiry)
    )


@internal
@pure
def _hash_quote(q: Quote) -> bytes32:
    """
    @dev Returns `hashStruct(Quote)`.
    @param q The quote.
    @return bytes32 The struct hash.
    """
    return keccak256(
        abi_encode(
            QUOTE_TYPEHASH, q.maker, q.taker, q.rfq_id, self._hash_quote_legs(q.legs), q.side,
            q.size, q.nonce, q.expiry,
        )
    )


@internal
@pure
def _hash_accept(a: Accept) -> bytes32:
    """
    @dev Returns `hashStruct(Accept)`.
    @param a The acceptance.
    @return bytes32 The struct hash.
    """
    return keccak256(abi_encode(ACCEPT_TYPEHASH, a.taker, a.quote_id, a.size, a.nonce, a.expiry))


@internal
@pure
def _hash_cancel(c: Cancel) -> bytes32:
    """
    @dev Returns `hashStruct(Cancel)`.
    @param c The cancel.
    @return bytes32 The struct hash.
    """
    return keccak256(abi_encode(CANCEL_TYPEHASH, c.account, c.order_hash, c.nonce, c.expiry))


@internal
@pure
def _hash_withdrawal(w: Withdrawal) -> bytes32:
    """
    @dev Returns `hashStruct(Withdrawal)`.
    @param w The withdrawal request.
    @return bytes32 The struct hash.
    """
    return keccak256(
        abi_encode(WITHDRAWAL_TYPEHASH, w.account, w.recipient, w.amount, w.nonce, w.expiry)
    )


@internal
@pure
def _hash_observation(o: Observation) -> bytes32:
    """
    @dev Returns `hashStruct(Observation)`.
    @param o The oracle observation.
    @return bytes32 The struct hash.
    """
    return keccak256(
        abi_encode(OBSERVATION_TYPEHASH, o.feed_id, o.round, o.price, o.timestamp, o.expiry)
    )


@internal
@pure
def _hash_vote(v: Vote) -> bytes32:
    """
    @dev Returns `hashStruct(Vote)`; the string member enters as its keccak256.
    @param v The vote.
    @return bytes32 The struct hash.
    """
    return keccak256(
        abi_encode(VOTE_TYPEHASH, v.voter, v.proposal_id, v.choice, keccak256(v.reason), v.expiry)
    )


@internal
@pure
def _hash_post(p: Post) -> bytes32:
    """
    @dev Returns `hashStruct(Post)`; the string member enters as its keccak256.
    @param p The forum post.
    @return bytes32 The struct hash.
    """
    return keccak256(
        abi_encode(POST_TYPEHASH, p.author, p.proposal_id, p.parent, keccak256(p.body), p.expiry)
    )


@internal
@view
def _order_digest(o: Order) -> bytes32:
    """
    @dev Returns the digest an `Order` is signed over.
    @param o The order.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_order(o))


@internal
@view
def _rfq_digest(r: RFQ) -> bytes32:
    """
    @dev Returns the digest an `RFQ` is signed over (also its RFQ id).
    @param r The request for quotes.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_rfq(r))


@internal
@view
def _quote_digest(q: Quote) -> bytes32:
    """
    @dev Returns the digest a `Quote` is signed over (also its quote id).
    @param q The quote.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_quote(q))


@internal
@view
def _accept_digest(a: Accept) -> bytes32:
    """
    @dev Returns the digest an `Accept` is signed over.
    @param a The acceptance.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_accept(a))


@internal
@view
def _cancel_digest(c: Cancel) -> bytes32:
    """
    @dev Returns the digest a `Cancel` is signed over.
    @param c The cancel.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_cancel(c))


@internal
@view
def _withdrawal_digest(w: Withdrawal) -> bytes32:
    """
    @dev Returns the digest a `Withdrawal` is signed over.
    @param w The withdrawal request.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_withdrawal(w))


@internal
@view
def _observation_digest(o: Observation) -> bytes32:
    """
    @dev Returns the digest an `Observation` is signed over.
    @param o The oracle observation.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_observation(o))


@internal
@view
def _vote_digest(v: Vote) -> bytes32:
    """
    @dev Returns the digest a `Vote` is signed over.
    @param v The vote.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_vote(v))


@internal
@view
def _post_digest(p: Post) -> bytes32:
    """
    @dev Returns the digest a `Post` is signed over.
    @param p The forum post.
    @return bytes32 The EIP-712 digest.
    """
    return self._hash_typed_data(self._hash_post(p))


@internal
@pure
def _recover(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @dev Recovers the signer of `digest`, accepting only canonical
         signatures: exactly 65 bytes `r || s || v`, `v` in {27, 28},
         `0 < r < n`, `0 < s <= n/2` (EIP-2 low s), non-zero signer.
         The checks run in the same order as the Python rules, so both
         reject a bad signature with the same reason.
    @param digest The 32-byte EIP-712 digest.
    @param signature The signature.
    @return address The signer (never the zero address).
    """
    assert len(signature) == 65, "eip712: bad signature length"
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    assert v == 27 or v == 28, "eip712: bad v"
    r: uint256 = extract32(signature, 0, output_type=uint256)
    assert r != 0 and r < _SECP256K1_N, "eip712: bad r"
    s: uint256 = extract32(signature, 32, output_type=uint256)
    assert s != 0, "eip712: bad s"
    assert s <= _HALF_N, "eip712: high s"
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address), "eip712: zero signer"
    return signer


@internal
@view
def _check_expiry(expiry: uint64):
    """
    @dev Reverts once the block time is past `expiry` (valid through it).
    @param expiry The message's expiry in unix seconds.
    """
    assert block.timestamp <= convert(expiry, uint256), "eip712: expired"


@internal
@view
def _verify(digest: bytes32, signature: Bytes[65], signer: address, expiry: uint64):
    """
    @dev The full check a signed message passes: unexpired, canonical
         signature, recovered signer equal to `signer`.
    @param digest The message's EIP-712 digest.
    @param signature The 65-byte signature.
    @param signer The account that must have signed.
    @param expiry The message's expiry in unix seconds.
    """
    self._check_expiry(expiry)
    assert self._recover(digest, signature) == signer, "eip712: wrong signer"


@internal
@view
def _verify_order(o: Order, signature: Bytes[65]) -> bytes32:
    """
    @dev Verifies an order signed by its `account`.
    @param o The order.
    @param signature The account's signature.
    @return bytes32 The order's digest (its replay key / order hash).
    """
    digest: bytes32 = self._order_digest(o)
    self._verify(digest, signature, o.account, o.expiry)
    return digest


@internal
@view
def _verify_rfq(r: RFQ, signature: Bytes[65]) -> bytes32:
    """
    @dev Verifies an RFQ signed by its `taker`.
    @param r The request for quotes.
    @param signature The taker's signature.
    @return bytes32 The RFQ's digest (its RFQ id).
    """
    digest: bytes32 = self._rfq_digest(r)
    self._verify(digest, signature, r.taker, r.expiry)
    return digest


@internal
@view
def _verify_quote(q: Quote, signature: Bytes[65]) -> bytes32:
    """
    @dev Verifies a quote signed by its `maker`.
    @param q The quote.
    @param signature The maker's signature.
    @return bytes32 The quote's digest (its quote id).
    """
    digest: bytes32 = self._quote_digest(q)
    self._verify(digest, signature, q.maker, q.expiry)
    return digest


@internal
@view
def _verify_accept(a: Accept, signature: Bytes[65]) -> bytes32:
    """
    @dev Verifies an acceptance signed by its `taker`.
    @param a The acceptance.
    @param signature The taker's signature.
    @return bytes32 The acceptance's digest.
    """
    digest: bytes32 = self._accept_digest(a)
    self._verify(digest, signature, a.taker, a.expiry)
    return digest


@internal
@view
def _verify_cancel(c: Cancel, signature: Bytes[65]) -> bytes32:
    """
    @dev Verifies a cancel signed by its `account`.
    @param c The cancel.
    @param signature The account's signature.
    @return bytes32 The cancel's digest.
    """
    digest: bytes32 = self._cancel_digest(c)
    self._verify(digest, signature, c.account, c.expiry)
    return digest


@internal
@view
def _verify_withdrawal(w: Withdrawal, signature: Bytes[65]) -> bytes32:
    """
    @dev Verifies a withdrawal request signed by its `account`.
    @param w The withdrawal request.
    @param signature The account's signature.
    @return bytes32 The request's digest.
    """
    digest: bytes32 = self._withdrawal_digest(w)
    self._verify(digest, signature, w.account, w.expiry)
    return digest


@internal
@view
def _verify_observation(o: Observation, signature: Bytes[65], member: address) -> bytes32:
    """
    @dev Verifies an observation signed by the committee member `member`.
    @param o The oracle observation.
    @param signature The member's signature.
    @param member The committee member that must have signed.
    @return bytes32 The observation's digest.
    """
    digest: bytes32 = self._observation_digest(o)
    self._verify(digest, signature, member, o.expiry)
    return digest


@internal
@view
def _verify_vote(v: Vote, signature: Bytes[65]) -> bytes32:
    """
    @dev Verifies a vote signed by its `voter`.
    @param v The vote.
    @param signature The voter's signature.
    @return bytes32 The vote's digest.
    """
    digest: bytes32 = self._vote_digest(v)
    self._verify(digest, signature, v.voter, v.expiry)
    return digest


@internal
@view
def _verify_post(p: Post, signature: Bytes[65]) -> bytes32:
    """
    @dev Verifies a forum post signed by its `author`.
    @param p The forum post.
    @param signature The author's signature.
    @return bytes32 The post's digest (its post id).
    """
    digest: bytes32 = self._post_digest(p)
    self._verify(digest, signature, p.author, p.expiry)
    return digest
