# pragma version ~=0.4.3
"""
@title Every rule but trade and RFQ fill, of the settlement fraud proof
@custom:contract-name StfRules
@license MIT
@notice One part of `lib/stf.vy` deployed on its own: the whole fraud proof does not
        fit one contract (EIP-170), so the window verifier calls this for the rules of
        these operation types over leaves it has already authenticated. Stateless.
"""


from .lib import stf


@external
@pure
def apply_rule(
    o: stf.Opened, ctx: stf.Context, core: Bytes[800], sig0: Bytes[65], sig1: Bytes[65]
) -> stf.Opened:
    """
    @dev Apply one operation's rule to its opened slots (reverts "stf: <code>").
    @param o The authenticated slots before the operation.
    @param ctx The batch context.
    @param core The operation core (zero-padded).
    @param sig0 First signature (or empty).
    @param sig1 Second signature (or empty).
    @return stf.Opened The slots after.
    """
    return stf._other_rule(o, ctx, core, sig0)


@external
@pure
def account_hash(leaf: Bytes[stf.MAX_LEAF]) -> bytes32:
    """
    @dev Decode a canonical leaf and hash its re-encoding (`compute_account_hash`).
    @param leaf The leaf bytes.
    @return bytes32 keccak of the re-encoded leaf.
    """
    a: stf.Account = stf._decode_account(concat(leaf, empty(bytes32)), 0, len(leaf))
    return stf._account_hash(a)


@external
@pure
def requirement(leaf: Bytes[stf.MAX_LEAF], ctx: stf.Context) -> uint256:
    """
    @dev The exact max-loss requirement of a leaf's positions.
    @param leaf The leaf bytes.
    @param ctx The context (caps, contract unit).
    @return uint256 The requirement.
    """
    a: stf.Account = stf._decode_account(concat(leaf, empty(bytes32)), 0, len(leaf))
    return stf._requirement(stf._scratch(a), ctx)
