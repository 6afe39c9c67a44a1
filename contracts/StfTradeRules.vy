# pragma version ~=0.4.3
"""
@title Trade and RFQ-fill rules of the settlement fraud proof
@custom:contract-name StfTradeRules
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
    return stf._trade_rule(o, ctx, core, sig0, sig1)
