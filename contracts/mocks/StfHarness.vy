# pragma version ~=0.4.3
"""
@title stf module test harness
@custom:contract-name StfHarness
@license MIT
@notice Test-only: exposes `lib/stf.vy` (the window fraud proof) and its
        single-value helpers so the Python vectors can be replayed against them.
"""


from ..lib import stf


initializes: stf
exports: stf.verify_window


@deploy
def __init__(trade_rules: address, other_rules: address):
    """
    @dev Initialises the verifier with its rule contracts.
    @param trade_rules A `StfTradeRules`.
    @param other_rules A `StfRules`.
    """
    stf.__init__(trade_rules, other_rules)


@external
@pure
def state_root(c: stf.Commitment) -> bytes32:
    """
    @dev `compute_commitment_root`.
    @param c The commitment.
    @return bytes32 The state root.
    """
    return stf._state_root(c)


@external
@pure
def entry_hash(digest: bytes32, filled: uint256, status: uint8) -> bytes32:
    """
    @dev `compute_entry_hash` of an existing entry.
    @param digest The message digest.
    @param filled The cumulative fill.
    @param status 0 active, 1 used, 2 cancelled.
    @return bytes32 The consumed-tree value.
    """
    return stf._entry_hash(stf.Entry(exists=True, digest=digest, filled=filled, status=status))
