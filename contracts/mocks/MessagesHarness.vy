# pragma version ~=0.4.3
"""
@title eip712 module test harness
@custom:contract-name MessagesHarness
@license MIT
@notice Test-only: exposes the internals of `lib/eip712.vy` so the shared
        vectors in `tests/vectors/messages.json` can be replayed against them.
"""


from ..lib import eip712
initializes: eip712


ORDER_TYPEHASH: public(constant(bytes32)) = eip712.ORDER_TYPEHASH
RFQ_TYPEHASH: public(constant(bytes32)) = eip712.RFQ_TYPEHASH
QUOTE_TYPEHASH: public(constant(bytes32)) = eip712.QUOTE_TYPEHASH
ACCEPT_TYPEHASH: public(constant(bytes32)) = eip712.ACCEPT_TYPEHASH
CANCEL_TYPEHASH: public(constant(bytes32)) = eip712.CANCEL_TYPEHASH
WITHDRAWAL_TYPEHASH: public(constant(bytes32)) = eip712.WITHDRAWAL_TYPEHASH
OBSERVATION_TYPEHASH: public(constant(bytes32)) = eip712.OBSERVATION_TYPEHASH
VOTE_TYPEHASH: public(constant(bytes32)) = eip712.VOTE_TYPEHASH
POST_TYPEHASH: public(constant(bytes32)) = eip712.POST_TYPEHASH
DOMAIN_TYPEHASH: public(constant(bytes32)) = eip712.DOMAIN_TYPEHASH


@deploy
def __init__(name_: String[64], version_: String[32]):
    """
    @dev Initialises the module's domain.
    @param name_ The domain name.
    @param version_ The domain version.
    """
    eip712.__init__(name_, version_)


@external
@view
def domain_separator() -> bytes32:
    """
    @dev Returns the live domain separator.
    @return bytes32 The separator for `chain.id` and `self`.
    """
    return eip712._domain_separator()


@external
@view
def hash_domain(chain_id: uint256, verifying_contract: address) -> bytes32:
    """
    @dev Returns the separator of this domain on another chain or contract.
    @param chain_id The chain id.
    @param verifying_contract The verifying contract.
    @return bytes32 The separator.
    """
    return eip712._hash_domain(chain_id, verifying_contract)


@external
@view
def hash_typed_data(struct_hash: bytes32) -> bytes32:
    """
    @dev Returns the digest of a struct hash in the live domain.
    @param struct_hash The struct hash.
    @return bytes32 The digest.
    """
    return eip712._hash_typed_data(struct_hash)


@external
@pure
def compute_digest(domain_separator: bytes32, struct_hash: bytes32) -> bytes32:
    """
    @dev Exposes `eip712._compute_digest`.
    @param domain_separator The domain separator.
    @param struct_hash The struct hash.
    @return bytes32 The digest.
    """
    return eip712._compute_digest(domain_separator, struct_hash)


@external
@view
def block_timestamp() -> uint256:
    """
    @dev Returns the block time calls are evaluated at (for expiry vectors).
    @return uint256 `block.timestamp`.
    """
    return block.timestamp


@external
@pure
def hash_order(o: eip712.Order) -> bytes32:
    """
    @dev Exposes `eip712._hash_order`.
    @param o The order.
    @return bytes32 The struct hash.
    """
    return eip712._hash_order(o)


@external
@pure
def hash_rfq(r: eip712.RFQ) -> bytes32:
    """
    @dev Exposes `eip712._hash_rfq`.
    @param r The RFQ.
    @return bytes32 The struct hash.
    """
    return eip712._hash_rfq(r)


@external
@pure
def hash_quote(q: eip712.Quote) -> bytes32:
    """
    @dev Exposes `eip712._hash_quote`.
    @param q The quote.
    @return bytes32 The struct hash.
    """
    return eip712._hash_quote(q)


@external
@pure
def hash_accept(a: eip712.Accept) -> bytes32:
    """
    @dev Exposes `eip712._hash_accept`.
    @param a The acceptance.
    @return bytes32 The struct hash.
    """
    return eip712._hash_accept(a)


@external
@pure
def hash_cancel(c: eip712.Cancel) -> bytes32:
    """
    @dev Exposes `eip712._hash_cancel`.
    @param c The cancel.
    @return bytes32 The struct hash.
    """
    return eip712._hash_cancel(c)


@external
@pure
def hash_withdrawal(w: eip712.Withdrawal) -> bytes32:
    """
    @dev Exposes `eip712._hash_withdrawal`.
    @param w The withdrawal.
    @return bytes32 The struct hash.
    """
    return eip712._hash_withdrawal(w)


@external
@pure
def hash_observation(o: eip712.Observation) -> bytes32:
    """
    @dev Exposes `eip712._hash_observation`.
    @param o The observation.
    @return bytes32 The struct hash.
    """
    return eip712._hash_observation(o)


@external
@pure
def hash_vote(v: eip712.Vote) -> bytes32:
    """
    @dev Exposes `eip712._hash_vote`.
    @param v The vote.
    @return bytes32 The struct hash.
    """
    return eip712._hash_vote(v)


@external
@pure
def hash_post(p: eip712.Post) -> bytes32:
    """
    @dev Exposes `eip712._hash_post`.
    @param p The post.
    @return bytes32 The struct hash.
    """
    return eip712._hash_post(p)


@external
@view
def order_digest(o: eip712.Order) -> bytes32:
    """
    @dev Exposes `eip712._order_digest`.
    @param o The order.
    @return bytes32 The digest.
    """
    return eip712._order_digest(o)


@external
@view
def rfq_digest(r: eip712.RFQ) -> bytes32:
    """
    @dev Exposes `eip712._rfq_digest`.
    @param r The RFQ.
    @return bytes32 The digest.
    """
    return eip712._rfq_digest(r)


@external
@view
def quote_digest(q: eip712.Quote) -> bytes32:
    """
    @dev Exposes `eip712._quote_digest`.
    @param q The quote.
    @return bytes32 The digest.
    """
    return eip712._quote_digest(q)


@external
@view
def accept_digest(a: eip712.Accept) -> bytes32:
    """
    @dev Exposes `eip712._accept_digest`.
    @param a The acceptance.
    @return bytes32 The digest.
    """
    return eip712._accept_digest(a)


@external
@view
def cancel_digest(c: eip712.Cancel) -> bytes32:
    """
    @dev Exposes `eip712._cancel_digest`.
    @param c The cancel.
    @return bytes32 The digest.
    """
    return eip712._cancel_digest(c)


@external
@view
def withdrawal_digest(w: eip712.Withdrawal) -> bytes32:
    """
    @dev Exposes `eip712._withdrawal_digest`.
    @param w The withdrawal.
    @return bytes32 The digest.
    """
    return eip712._withdrawal_digest(w)


@external
@view
def observation_digest(o: eip712.Observation) -> bytes32:
    """
    @dev Exposes `eip712._observation_digest`.
    @param o The observation.
    @return bytes32 The digest.
    """
    return eip712._observation_digest(o)


@external
@view
def vote_digest(v: eip712.Vote) -> bytes32:
    """
    @dev Exposes `eip712._vote_digest`.
    @param v The vote.
    @return bytes32 The digest.
    """
    return eip712._vote_digest(v)


@external
@view
def post_digest(p: eip712.Post) -> bytes32:
    """
    @dev Exposes `eip712._post_digest`.
    @param p The post.
    @return bytes32 The digest.
    """
    return eip712._post_digest(p)


@external
@pure
def recover(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @dev Exposes `eip712._recover`.
    @param digest The digest.
    @param signature The signature.
    @return address The signer.
    """
    return eip712._recover(digest, signature)


@external
@view
def verify(digest: bytes32, signature: Bytes[65], signer: address, expiry: uint64) -> bool:
    """
    @dev Exposes `eip712._verify`; reverts with the failed check's reason.
    @param digest The digest.
    @param signature The signature.
    @param signer The expected signer.
    @param expiry The message's expiry.
    @return bool True (it reverts otherwise).
    """
    eip712._verify(digest, signature, signer, expiry)
    return True


@external
@view
def verify_order(o: eip712.Order, signature: Bytes[65]) -> bytes32:
    """
    @dev Exposes `eip712._verify_order`.
    @param o The order.
    @param signature The account's signature.
    @return bytes32 The digest.
    """
    return eip712._verify_order(o, signature)


@external
@view
def verify_rfq(r: eip712.RFQ, signature: Bytes[65]) -> bytes32:
    """
    @dev Exposes `eip712._verify_rfq`.
    @param r The RFQ.
    @param signature The taker's signature.
    @return bytes32 The digest.
    """
    return eip712._verify_rfq(r, signature)


@external
@view
def verify_quote(q: eip712.Quote, signature: Bytes[65]) -> bytes32:
    """
    @dev Exposes `eip712._verify_quote`.
    @param q The quote.
    @param signature The maker's signature.
    @return bytes32 The digest.
    """
    return eip712._verify_quote(q, signature)


@external
@view
def verify_accept(a: eip712.Accept, signature: Bytes[65]) -> bytes32:
    """
    @dev Exposes `eip712._verify_accept`.
    @param a The acceptance.
    @param signature The taker's signature.
    @return bytes32 The digest.
    """
    return eip712._verify_accept(a, signature)


@external
@view
def verify_cancel(c: eip712.Cancel, signature: Bytes[65]) -> bytes32:
    """
    @dev Exposes `eip712._verify_cancel`.
    @param c The cancel.
    @param signature The account's signature.
    @return bytes32 The digest.
    """
    return eip712._verify_cancel(c, signature)


@external
@view
def verify_withdrawal(w: eip712.Withdrawal, signature: Bytes[65]) -> bytes32:
    """
    @dev Exposes `eip712._verify_withdrawal`.
    @param w The withdrawal.
    @param signature The account's signature.
    @return bytes32 The digest.
    """
    return eip712._verify_withdrawal(w, signature)


@external
@view
def verify_observation(o: eip712.Observation, signature: Bytes[65], member: address) -> bytes32:
    """
    @dev Exposes `eip712._verify_observation`.
    @param o The observation.
    @param signature The member's signature.
    @param member The committee member.
    @return bytes32 The digest.
    """
    return eip712._verify_observation(o, signature, member)


@external
@view
def verify_vote(v: eip712.Vote, signature: Bytes[65]) -> bytes32:
    """
    @dev Exposes `eip712._verify_vote`.
    @param v The vote.
    @param signature The voter's signature.
    @return bytes32 The digest.
    """
    return eip712._verify_vote(v, signature)


@external
@view
def verify_post(p: eip712.Post, signature: Bytes[65]) -> bytes32:
    """
    @dev Exposes `eip712._verify_post`.
    @param p The post.
    @param signature The author's signature.
    @return bytes32 The digest.
    """
    return eip712._verify_post(p, signature)
