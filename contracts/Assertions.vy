# pragma version ~=0.4.3
"""
@title Assertions
@custom:contract-name Assertions
@license MIT
@notice Generic optimistic assertions with a bond, a liveness and escalation
        to `Arbitration`. What is asserted is opaque here: `claim` is a hash of
        it, `target` names the consumer it is meant for (oracle disputes,
        governance), and consumers read the outcome with `resolved(id)`.
        - `assert_claim` posts a bond (at least `min_bond`) for a liveness (at
          least `min_liveness`).
        - `dispute` during the liveness posts an equal bond and opens an
          arbitration; a second dispute is refused.
        - `settle`: undisputed after the liveness -> truthful, the asserter gets
          its bond back. Disputed, after the arbitration's reveal phase:
          decided -> the winner gets both bonds minus the voters' pool
          `loser_bond * voter_reward_bps / 10000` (rounded down: the rounding
          goes to the winner), the pool goes to `Arbitration` for the winning
          voters; no decision -> both bonds are returned, the claim is not
          truthful.
        - `claim` pays what `settle` assigned (pull: one refusing receiver
          never blocks a settlement). Once every party has claimed, no token of
          that assertion is left here.
        See docs/protocol.md, "Bonds, assertions and arbitration".
"""

from ethereum.ercs import IERC20
from interfaces import IArbitration


# @dev Denominator of `voter_reward_bps`.
BPS: constant(uint256) = 10_000
# @dev Largest bond (with stake below 2**128, pool x weight products fit in 256 bits).
MAX_BOND: public(constant(uint256)) = 2**128 - 1


# @dev How an assertion ended (one storage slot).
flag Status:
    SETTLED
    TRUTHFUL

# @dev Stored per assertion; payouts drop to zero as they are claimed.
struct Assertion:
    asserter: address
    target: address
    claim: bytes32
    bond: uint256
    asserted_at: uint256
    expires_at: uint256
    disputer: address
    dispute_id: uint256
    status: Status
    asserter_payout: uint256
    disputer_payout: uint256

# @dev `get_assertion`'s answer: the stored record with its status spelled out.
struct AssertionView:
    asserter: address
    target: address
    claim: bytes32
    bond: uint256
    asserted_at: uint256
    expires_at: uint256
    disputer: address
    dispute_id: uint256
    settled: bool
    truthful: bool
    asserter_payout: uint256
    disputer_payout: uint256


event ClaimAsserted:
    assertion_id: indexed(uint256)
    asserter: indexed(address)
    target: indexed(address)
    claim: bytes32
    bond: uint256
    expires_at: uint256

event ClaimDisputed:
    assertion_id: indexed(uint256)
    disputer: indexed(address)
    dispute_id: uint256

event ClaimSettled:
    assertion_id: indexed(uint256)
    truthful: bool
    disputed: bool
    asserter_payout: uint256
    disputer_payout: uint256
    voter_pool: uint256

event PayoutClaimed:
    assertion_id: indexed(uint256)
    who: indexed(address)
    amount: uint256


token: public(immutable(address))
arbitration: public(immutable(address))
min_bond: public(immutable(uint256))
min_liveness: public(immutable(uint256))
voter_reward_bps: public(immutable(uint256))

assertion_count: public(uint256)
_assertions: HashMap[uint256, Assertion]


@deploy
def __init__(
    arbitration_: address, min_bond_: uint256, min_liveness_: uint256, voter_reward_bps_: uint256
):
    """
    @notice Create the assertion registry; bonds are in the arbitration's token.
            It must then be registered as a requester in `Arbitration`.
    @param arbitration_ The `Arbitration` disputes escalate to.
    @param min_bond_ Smallest bond, token base units (> 0; make it exceed the cost to grief).
    @param min_liveness_ Shortest liveness, seconds (> 0).
    @param voter_reward_bps_ Share of the losing bond paid to the winning voters, bps.
    """
    assert arbitration_ != empty(address), "assertions: zero arbitration"
    assert min_bond_ != 0 and min_bond_ <= MAX_BOND, "assertions: bad min bond"
    assert min_liveness_ != 0, "assertions: zero min liveness"
    assert voter_reward_bps_ <= BPS, "assertions: bps above 100%"
    arbitration = arbitration_
    token = staticcall IArbitration(arbitration_).token()
    min_bond = min_bond_
    min_liveness = min_liveness_
    voter_reward_bps = voter_reward_bps_


@external
@nonreentrant
def assert_claim(
    claim: bytes32, bond: uint256, liveness: uint256, target: address = empty(address)
) -> uint256:
    """
    @notice Assert that `claim` is true, backed by `bond` (needs an allowance).
    @param claim A hash of what is asserted (its meaning is the consumer's).
    @param bond Token base units, at least `min_bond`; a disputer must match it.
    @param liveness Seconds during which it can be disputed, at least `min_liveness`.
    @param target The consumer meant to act on the outcome (informational; may be zero).
    @return uint256 The assertion id (from 1).
    """
    return self._assert_claim(msg.sender, claim, bond, liveness, target)


@external
@nonreentrant
def dispute(assertion_id: uint256) -> uint256:
    """
    @notice Dispute an assertion during its liveness with an equal bond (needs an
            allowance); it goes to arbitration at once.
    @param assertion_id The assertion.
    @return uint256 The arbitration dispute id.
    """
    return self._dispute(msg.sender, assertion_id)


@external
@nonreentrant
def settle(assertion_id: uint256) -> bool:
    """
    @notice Settle an assertion: undisputed after its liveness, or disputed after
            its arbitration's reveal phase. Anyone may call it, once.
    @param assertion_id The assertion.
    @return bool Whether the claim is settled as truthful.
    """
    return self._settle(assertion_id)


@external
@nonreentrant
def claim(assertion_id: uint256) -> uint256:
    """
    @notice Pay the caller what `settle` assigned them (as asserter, disputer or both).
    @param assertion_id The assertion.
    @return uint256 The amount paid.
    """
    return self._claim(msg.sender, assertion_id)


# --- views -------------------------------------------------------------------------------


@external
@view
def resolved(assertion_id: uint256) -> (bool, bool):
    """
    @notice What consumers read: whether the assertion is settled and, if so,
            whether its claim stands as truthful.
    @param assertion_id The assertion.
    @return (bool, bool) (settled, truthful); truthful is false until settled.
    """
    status: Status = self._assertions[assertion_id].status
    return Status.SETTLED in status, Status.TRUTHFUL in status


@external
@view
def get_assertion(assertion_id: uint256) -> AssertionView:
    """
    @notice Everything stored about an assertion (all zero if unknown).
    @param assertion_id The assertion.
    @return AssertionView The record; payouts drop to zero as they are claimed.
    """
    a: Assertion = self._assertions[assertion_id]
    return AssertionView(asserter=a.asserter, target=a.target, claim=a.claim, bond=a.bond,
                         asserted_at=a.asserted_at, expires_at=a.expires_at, disputer=a.disputer,
                         dispute_id=a.dispute_id, settled=Status.SETTLED in a.status,
                         truthful=Status.TRUTHFUL in a.status, asserter_payout=a.asserter_payout,
                         disputer_payout=a.disputer_payout)


# --- internals ---------------------------------------------------------------------------


@internal
def _assert_claim(
    asserter: address, claim: bytes32, bond: uint256, liveness: uint256, target: address
) -> uint256:
    """
    @dev See `assert_claim`.
    @param asserter The caller, who posts the bond.
    @param claim The asserted hash.
    @param bond Token base units.
    @param liveness Seconds.
    @param target The consumer.
    @return uint256 The assertion id.
    """
    assert bond >= min_bond, "assertions: bond below minimum"
    assert bond <= MAX_BOND, "assertions: bond too large"
    assert liveness >= min_liveness, "assertions: liveness too short"
    assertion_id: uint256 = self.assertion_count + 1
    self.assertion_count = assertion_id
    expires_at: uint256 = block.timestamp + liveness
    self._assertions[assertion_id] = Assertion(
        asserter=asserter, target=target, claim=claim, bond=bond, asserted_at=block.timestamp,
        expires_at=expires_at, disputer=empty(address), dispute_id=0, status=empty(Status),
        asserter_payout=0, disputer_payout=0)
    self._pull(asserter, bond)
    log ClaimAsserted(assertion_id=assertion_id, asserter=asserter, target=target, claim=claim,
                      bond=bond, expires_at=expires_at)
    return assertion_id


@internal
def _dispute(disputer: address, assertion_id: uint256) -> uint256:
    """
    @dev See `dispute`.
    @param disputer The caller, who posts the bond.
    @param assertion_id The assertion.
    @return uint256 The arbitration dispute id.
    """
    a: Assertion = self._get_assertion(assertion_id)
    assert a.disputer == empty(address), "assertions: already disputed"
    assert block.timestamp < a.expires_at, "assertions: liveness over"
    self._assertions[assertion_id].disputer = disputer
    self._pull(disputer, a.bond)
    dispute_id: uint256 = extcall IArbitration(arbitration).open_dispute(
        convert(assertion_id, bytes32)
    )
    self._assertions[assertion_id].dispute_id = dispute_id
    log ClaimDisputed(assertion_id=assertion_id, disputer=disputer, dispute_id=dispute_id)
    return dispute_id


@internal
def _settle(assertion_id: uint256) -> bool:
    """
    @dev See `settle`.
    @param assertion_id The assertion.
    @return bool Whether the claim is settled as truthful.
    """
    a: Assertion = self._get_assertion(assertion_id)
    assert Status.SETTLED not in a.status, "assertions: already settled"
    decided: bool = False
    truthful: bool = False
    asserter_payout: uint256 = 0
    disputer_payout: uint256 = 0
    voter_pool: uint256 = 0
    if a.disputer == empty(address):
        assert block.timestamp >= a.expires_at, "assertions: liveness not over"
        truthful = True
        asserter_payout = a.bond
    else:
        decided, truthful, asserter_payout, disputer_payout, voter_pool = \
            self._disputed_payouts(a.dispute_id, a.bond)
    status: Status = Status.SETTLED
    if truthful:
        status |= Status.TRUTHFUL
    self._assertions[assertion_id].status = status
    self._assertions[assertion_id].asserter_payout = asserter_payout
    self._assertions[assertion_id].disputer_payout = disputer_payout
    if decided:
        # The pool goes to the winning voters, even when it is zero (it marks them payable).
        if voter_pool != 0:
            assert extcall IERC20(token).approve(
                arbitration, voter_pool, default_return_value=True
            ), "assertions: approve failed"
        extcall IArbitration(arbitration).fund_rewards(a.dispute_id, voter_pool)
    log ClaimSettled(assertion_id=assertion_id, truthful=truthful, disputed=a.dispute_id != 0,
                     asserter_payout=asserter_payout, disputer_payout=disputer_payout,
                     voter_pool=voter_pool)
    return truthful


@internal
def _claim(who: address, assertion_id: uint256) -> uint256:
    """
    @dev See `claim`.
    @param who The caller.
    @param assertion_id The assertion.
    @return uint256 The amount paid.
    """
    a: Assertion = self._get_assertion(assertion_id)
    assert Status.SETTLED in a.status, "assertions: not settled"
    amount: uint256 = 0
    if who == a.asserter:
        amount += a.asserter_payout
        self._assertions[assertion_id].asserter_payout = 0
    if who == a.disputer:
        amount += a.disputer_payout
        self._assertions[assertion_id].disputer_payout = 0
    assert amount != 0, "assertions: nothing to claim"
    assert extcall IERC20(token).transfer(who, amount, default_return_value=True), \
        "assertions: transfer failed"
    log PayoutClaimed(assertion_id=assertion_id, who=who, amount=amount)
    return amount


@internal
@view
def _get_assertion(assertion_id: uint256) -> Assertion:
    """
    @dev The assertion, reverting if it does not exist.
    @param assertion_id The assertion.
    @return Assertion The record.
    """
    a: Assertion = self._assertions[assertion_id]
    assert a.asserter != empty(address), "assertions: unknown assertion"
    return a


@internal
@view
def _disputed_payouts(
    dispute_id: uint256, bond: uint256
) -> (bool, bool, uint256, uint256, uint256):
    """
    @dev The outcome and payouts of a disputed assertion from its arbitration,
         which must be resolved. Both bonds equal `bond`:
         decided -> pool = bond * voter_reward_bps // BPS, winner = 2 * bond - pool;
         no decision -> each side gets its bond back, not truthful.
    @param dispute_id The arbitration dispute.
    @param bond Each side's bond.
    @return (bool, bool, uint256, uint256, uint256)
            (decided, truthful, asserter payout, disputer payout, voter pool).
    """
    resolved: bool = False
    decided: bool = False
    truthful: bool = False
    resolved, decided, truthful = staticcall IArbitration(arbitration).outcome(dispute_id)
    assert resolved, "assertions: arbitration pending"
    if not decided:
        return False, False, bond, bond, 0
    pool: uint256 = bond * voter_reward_bps // BPS
    # pool <= bond, so the winner's share is at least one bond.
    winner: uint256 = 2 * bond - pool
    if truthful:
        return True, True, winner, 0, pool
    return True, False, 0, winner, pool


@internal
def _pull(source: address, amount: uint256):
    """
    @dev Take `amount` of the token from `source` (needs its allowance).
    @param source The payer.
    @param amount Token base units.
    """
    assert extcall IERC20(token).transferFrom(source, self, amount, default_return_value=True), \
        "assertions: transfer failed"
