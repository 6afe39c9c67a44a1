# pragma version ~=0.4.3
"""
@title Arbitration
@custom:contract-name Arbitration
@license MIT
@notice Stake-weighted commit-reveal voting by bonded arbitrators on disputes
        opened by registered requesters (`Assertions`), with voter rewards and
        voter penalties.
        - Voting power is the voter's active arbitrator stake in `Bonds` at
          `snapshot = opened_at - 1`, a second that is over before the dispute
          exists: stake bonded after a dispute is seen never votes on it.
        - Commit phase `[opened_at, commit_end)`: commit
          `keccak256(abi_encode(vote, salt, voter))`. Reveal phase
          `[commit_end, reveal_end)`: anyone holding `(vote, salt)` reveals it.
        - Verdict once `reveal_end` has passed: the side with strictly more
          revealed weight wins if revealed weight reaches `quorum_bps` of the
          total arbitrator stake at the snapshot; a tie or no quorum is
          "no decision".
        - The requester funds the winning voters' reward pool after a decision;
          each winning revealed voter claims
          `floor(P*(C+w)/W) - floor(P*C/W)` (`C`: winning weight revealed before
          theirs), so the claims add up to exactly `P`: no dust stays here.
        - Voters who committed but did not reveal, and (after a decision) voters
          who revealed for the losing side, lose `slash_bps` of their voting
          weight via `Bonds.slash` (to the insurance fund); anyone may apply it.
        See docs/protocol.md, "Bonds, assertions and arbitration".
"""

from ethereum.ercs import IERC20
from interfaces import IArbitration
from interfaces import IBonds

implements: IArbitration


# @dev Role id of arbitrators in `Bonds` (`Bonds.ROLE_ARBITRATOR`).
ROLE_ARBITRATOR: constant(uint8) = 2
# @dev Denominator of every basis-point parameter.
BPS: constant(uint256) = 10_000
# @dev Largest reward pool; with stake below 2**128 (`Bonds.MAX_TOTAL_STAKE`)
#      every `pool * weight` product fits in 256 bits.
MAX_POOL: constant(uint256) = 2**128 - 1


# @dev What happened to a ballot after its commit (one storage slot).
flag BallotState:
    REVEALED
    VOTED_TRUE
    REWARDED
    PENALIZED

# @dev Stored per dispute; phase ends derive from `opened_at` (see `_phases`).
struct Dispute:
    requester: address
    opened_at: uint256
    total_weight: uint256
    weight_true: uint256
    weight_false: uint256
    reward_pool: uint256
    funded: bool

# @dev Stored per (dispute, voter).
struct Ballot:
    commitment: bytes32
    weight: uint256
    # Weight revealed for the same side before this ballot (orders reward rounding).
    weight_before: uint256
    state: BallotState

# @dev `get_dispute`'s answer: the stored record with its phases spelled out.
struct DisputeView:
    requester: address
    snapshot: uint256
    commit_end: uint256
    reveal_end: uint256
    total_weight: uint256
    weight_true: uint256
    weight_false: uint256
    reward_pool: uint256
    funded: bool

# @dev `get_ballot`'s answer: the stored record with its state spelled out.
struct BallotView:
    commitment: bytes32
    weight: uint256
    revealed: bool
    vote: bool
    weight_before: uint256
    rewarded: bool
    penalized: bool


event DisputeOpened:
    dispute_id: indexed(uint256)
    requester: indexed(address)
    ref: bytes32
    snapshot: uint256
    commit_end: uint256
    reveal_end: uint256
    total_weight: uint256

event VoteCommitted:
    dispute_id: indexed(uint256)
    voter: indexed(address)
    weight: uint256

event VoteRevealed:
    dispute_id: indexed(uint256)
    voter: indexed(address)
    vote: bool
    weight: uint256

event RewardsFunded:
    dispute_id: indexed(uint256)
    amount: uint256

event RewardClaimed:
    dispute_id: indexed(uint256)
    voter: indexed(address)
    amount: uint256

event VoterPenalized:
    dispute_id: indexed(uint256)
    voter: indexed(address)
    requested: uint256
    slashed: uint256

event RequesterSet:
    requester: indexed(address)
    enabled: bool

event AdminTransferred:
    previous: indexed(address)
    admin: indexed(address)


bonds: public(immutable(address))
token: public(immutable(address))
commit_period: public(immutable(uint256))
reveal_period: public(immutable(uint256))
penalty_window: public(immutable(uint256))
quorum_bps: public(immutable(uint256))
slash_bps: public(immutable(uint256))

admin: public(address)
is_requester: public(HashMap[address, bool])
dispute_count: public(uint256)
_disputes: HashMap[uint256, Dispute]
_ballots: HashMap[uint256, HashMap[address, Ballot]]


@deploy
def __init__(
    bonds_: address,
    commit_period_: uint256,
    reveal_period_: uint256,
    penalty_window_: uint256,
    quorum_bps_: uint256,
    slash_bps_: uint256,
):
    """
    @notice Create the court; the deployer is the first admin. It must then be
            registered in `Bonds` as a slasher for the arbitrator role.
    @dev Checks `Bonds.unbonding_delay >= commit + reveal + penalty window`, so
         stake that voted is still in `Bonds` for `penalty_window_` seconds
         after the reveal phase ends, whatever its owner does after the snapshot.
    @param bonds_ The `Bonds` registry (voting power and slashing).
    @param commit_period_ Seconds of the commit phase.
    @param reveal_period_ Seconds of the reveal phase.
    @param penalty_window_ Seconds after `reveal_end` in which penalties are sure to find the stake.
    @param quorum_bps_ Revealed weight needed for a decision, in bps of total arbitrator stake.
    @param slash_bps_ Share of a faulty voter's weight slashed, in bps.
    """
    assert bonds_ != empty(address), "arbitration: zero bonds"
    assert commit_period_ != 0 and reveal_period_ != 0, "arbitration: zero phase"
    assert penalty_window_ != 0, "arbitration: zero penalty window"
    assert quorum_bps_ <= BPS and slash_bps_ <= BPS, "arbitration: bps above 100%"
    assert staticcall IBonds(bonds_).unbonding_delay() >= \
        commit_period_ + reveal_period_ + penalty_window_, "arbitration: unbonding delay too short"
    bonds = bonds_
    token = staticcall IBonds(bonds_).token()
    commit_period = commit_period_
    reveal_period = reveal_period_
    penalty_window = penalty_window_
    quorum_bps = quorum_bps_
    slash_bps = slash_bps_
    self.admin = msg.sender
    log AdminTransferred(previous=empty(address), admin=msg.sender)


# --- requesters --------------------------------------------------------------------------


@external
@nonreentrant
def open_dispute(ref: bytes32) -> uint256:
    """
    @notice Open a dispute; its commit phase starts now. Registered requesters only.
    @param ref The requester's reference (e.g. the assertion id).
    @return uint256 The new dispute id (from 1).
    """
    return self._open_dispute(msg.sender, ref)


@external
@nonreentrant
def fund_rewards(dispute_id: uint256, amount: uint256):
    """
    @notice Pull `amount` from the requester as the pool the winning voters share.
            Once per decided dispute; the dispute's requester only.
    @param dispute_id The dispute.
    @param amount Token base units (may be zero); needs an allowance.
    """
    self._fund_rewards(msg.sender, dispute_id, amount)


# --- voters ------------------------------------------------------------------------------


@external
@nonreentrant
def commit(dispute_id: uint256, commitment: bytes32):
    """
    @notice Commit a hidden vote during the commit phase; one per voter.
    @param dispute_id The dispute.
    @param commitment `keccak256(abi_encode(vote, salt, voter))`, see `vote_commitment`.
    """
    self._commit(msg.sender, dispute_id, commitment)


@external
@nonreentrant
def reveal(dispute_id: uint256, voter: address, vote: bool, salt: bytes32):
    """
    @notice Reveal `voter`'s vote during the reveal phase. Anyone holding the
            vote and salt may send it (e.g. a backup of the voter's node).
    @param dispute_id The dispute.
    @param voter Who committed.
    @param vote True: the assertion is truthful; false: it is not.
    @param salt The secret the commitment was made with.
    """
    self._reveal(dispute_id, voter, vote, salt)


@external
@nonreentrant
def claim_reward(dispute_id: uint256) -> uint256:
    """
    @notice Pay the caller's share of the reward pool: revealed on the winning side.
    @param dispute_id The dispute.
    @return uint256 The amount paid.
    """
    return self._claim_reward(msg.sender, dispute_id)


@external
@nonreentrant
def penalize(dispute_id: uint256, voter: address) -> uint256:
    """
    @notice Slash a voter at fault: committed but did not reveal, or (after a
            decision) revealed for the losing side. Anyone may call it, once per
            voter, after the reveal phase; the slashed stake goes to the
            insurance fund of `Bonds`.
    @param dispute_id The dispute.
    @param voter The voter to penalise.
    @return uint256 The stake actually slashed (clamped to what is left).
    """
    return self._penalize(dispute_id, voter)


# --- administration ----------------------------------------------------------------------


@external
@nonreentrant
def set_requester(requester: address, enabled: bool):
    """
    @notice Allow or forbid `requester` to open disputes. Admin only.
    @param requester A contract that escalates disputes here (e.g. `Assertions`).
    @param enabled True to register, false to revoke.
    """
    self._check_admin()
    assert requester != empty(address), "arbitration: zero requester"
    self.is_requester[requester] = enabled
    log RequesterSet(requester=requester, enabled=enabled)


@external
@nonreentrant
def transfer_admin(new_admin: address):
    """
    @notice Hand the admin role to `new_admin` (the governor, eventually). Admin only.
    @param new_admin The next admin.
    """
    self._check_admin()
    assert new_admin != empty(address), "arbitration: zero admin"
    log AdminTransferred(previous=self.admin, admin=new_admin)
    self.admin = new_admin


# --- views -------------------------------------------------------------------------------


@external
@view
def outcome(dispute_id: uint256) -> (bool, bool, bool):
    """
    @notice The verdict of a dispute.
    @param dispute_id The dispute.
    @return (bool, bool, bool) (resolved: the reveal phase is over,
            decided: a strict majority with quorum, truthful: the winning vote).
            Only `(True, True, x)` is a decision; `(True, False, False)` is "no decision".
    """
    d: Dispute = self._get_dispute(dispute_id)
    if not self._is_resolved(d):
        return False, False, False
    decided: bool = False
    truthful: bool = False
    decided, truthful = self._verdict(d)
    return True, decided, truthful


@external
@view
def get_dispute(dispute_id: uint256) -> DisputeView:
    """
    @notice Everything about a dispute, with its voting-power snapshot and phase ends.
    @param dispute_id The dispute.
    @return DisputeView The record.
    """
    d: Dispute = self._get_dispute(dispute_id)
    snapshot: uint256 = 0
    commit_end: uint256 = 0
    reveal_end: uint256 = 0
    snapshot, commit_end, reveal_end = self._phases(d.opened_at)
    return DisputeView(requester=d.requester, snapshot=snapshot, commit_end=commit_end,
                       reveal_end=reveal_end, total_weight=d.total_weight,
                       weight_true=d.weight_true, weight_false=d.weight_false,
                       reward_pool=d.reward_pool, funded=d.funded)


@external
@view
def get_ballot(dispute_id: uint256, voter: address) -> BallotView:
    """
    @notice Everything about a voter's ballot (all zero if none).
    @param dispute_id The dispute.
    @param voter The voter.
    @return BallotView The record.
    """
    b: Ballot = self._ballots[dispute_id][voter]
    return BallotView(commitment=b.commitment, weight=b.weight,
                      revealed=BallotState.REVEALED in b.state,
                      vote=BallotState.VOTED_TRUE in b.state, weight_before=b.weight_before,
                      rewarded=BallotState.REWARDED in b.state,
                      penalized=BallotState.PENALIZED in b.state)


@external
@view
def reward_of(dispute_id: uint256, voter: address) -> uint256:
    """
    @notice What `voter` can claim (or has claimed) from a funded dispute's pool; zero otherwise.
    @param dispute_id The dispute.
    @param voter The voter.
    @return uint256 Token base units.
    """
    d: Dispute = self._disputes[dispute_id]
    ballot: Ballot = self._ballots[dispute_id][voter]
    if not d.funded:
        return 0
    decided: bool = False
    truthful: bool = False
    decided, truthful = self._verdict(d)
    if not self._is_winner(ballot.state, truthful):
        return 0
    winning_weight: uint256 = d.weight_false
    if truthful:
        winning_weight = d.weight_true
    return self._reward_share(d.reward_pool, ballot.weight_before, ballot.weight, winning_weight)


@external
@pure
def vote_commitment(vote: bool, salt: bytes32, voter: address) -> bytes32:
    """
    @notice The commitment to send for `vote` with `salt` by `voter`.
    @dev Compute it off-chain (`clearhouse.disputes.arbitration.compute_vote_commitment`);
         calling a node with the salt reveals it to the node.
    @param vote True: truthful.
    @param salt A fresh random 32-byte secret.
    @param voter The voter's address (binds the commitment to them: no copying).
    @return bytes32 `keccak256(abi_encode(vote, salt, voter))`.
    """
    return self._commitment(vote, salt, voter)


# --- internals ---------------------------------------------------------------------------


@internal
def _open_dispute(requester: address, ref: bytes32) -> uint256:
    """
    @dev See `open_dispute`; `requester` is registered.
    @param requester The caller.
    @param ref The requester's reference.
    @return uint256 The new dispute id.
    """
    assert self.is_requester[requester], "arbitration: not a requester"
    dispute_id: uint256 = self.dispute_count + 1
    self.dispute_count = dispute_id
    snapshot: uint256 = 0
    commit_end: uint256 = 0
    reveal_end: uint256 = 0
    snapshot, commit_end, reveal_end = self._phases(block.timestamp)
    total_weight: uint256 = staticcall IBonds(bonds).total_stake_at(ROLE_ARBITRATOR, snapshot)
    self._disputes[dispute_id] = Dispute(requester=requester, opened_at=block.timestamp,
                                         total_weight=total_weight, weight_true=0, weight_false=0,
                                         reward_pool=0, funded=False)
    log DisputeOpened(dispute_id=dispute_id, requester=requester, ref=ref, snapshot=snapshot,
                      commit_end=commit_end, reveal_end=reveal_end, total_weight=total_weight)
    return dispute_id


@internal
def _fund_rewards(requester: address, dispute_id: uint256, amount: uint256):
    """
    @dev See `fund_rewards`.
    @param requester The caller.
    @param dispute_id The dispute.
    @param amount Token base units.
    """
    d: Dispute = self._get_dispute(dispute_id)
    assert requester == d.requester, "arbitration: not the requester"
    decided: bool = False
    truthful: bool = False
    decided, truthful = self._verdict(d)
    assert decided, "arbitration: no decision"
    assert not d.funded, "arbitration: already funded"
    assert amount <= MAX_POOL, "arbitration: pool too large"
    self._disputes[dispute_id].funded = True
    self._disputes[dispute_id].reward_pool = amount
    if amount != 0:
        assert extcall IERC20(token).transferFrom(
            requester, self, amount, default_return_value=True
        ), "arbitration: transfer failed"
    log RewardsFunded(dispute_id=dispute_id, amount=amount)


@internal
def _commit(voter: address, dispute_id: uint256, commitment: bytes32):
    """
    @dev See `commit`.
    @param voter The caller.
    @param dispute_id The dispute.
    @param commitment The hidden vote.
    """
    d: Dispute = self._get_dispute(dispute_id)
    snapshot: uint256 = 0
    commit_end: uint256 = 0
    reveal_end: uint256 = 0
    snapshot, commit_end, reveal_end = self._phases(d.opened_at)
    assert block.timestamp < commit_end, "arbitration: not in commit phase"
    assert commitment != empty(bytes32), "arbitration: empty commitment"
    assert self._ballots[dispute_id][voter].commitment == empty(bytes32), \
        "arbitration: already committed"
    weight: uint256 = staticcall IBonds(bonds).stake_at(voter, ROLE_ARBITRATOR, snapshot)
    assert weight != 0, "arbitration: no voting power"
    self._ballots[dispute_id][voter].commitment = commitment
    self._ballots[dispute_id][voter].weight = weight
    log VoteCommitted(dispute_id=dispute_id, voter=voter, weight=weight)


@internal
def _reveal(dispute_id: uint256, voter: address, vote: bool, salt: bytes32):
    """
    @dev See `reveal`.
    @param dispute_id The dispute.
    @param voter Who committed.
    @param vote The vote.
    @param salt The secret.
    """
    d: Dispute = self._get_dispute(dispute_id)
    snapshot: uint256 = 0
    commit_end: uint256 = 0
    reveal_end: uint256 = 0
    snapshot, commit_end, reveal_end = self._phases(d.opened_at)
    assert block.timestamp >= commit_end and block.timestamp < reveal_end, \
        "arbitration: not in reveal phase"
    ballot: Ballot = self._ballots[dispute_id][voter]
    assert ballot.commitment != empty(bytes32), "arbitration: no commitment"
    assert BallotState.REVEALED not in ballot.state, "arbitration: already revealed"
    assert self._commitment(vote, salt, voter) == ballot.commitment, \
        "arbitration: commitment mismatch"
    if vote:
        self._ballots[dispute_id][voter].state = BallotState.REVEALED | BallotState.VOTED_TRUE
        self._ballots[dispute_id][voter].weight_before = d.weight_true
        self._disputes[dispute_id].weight_true = d.weight_true + ballot.weight
    else:
        self._ballots[dispute_id][voter].state = BallotState.REVEALED
        self._ballots[dispute_id][voter].weight_before = d.weight_false
        self._disputes[dispute_id].weight_false = d.weight_false + ballot.weight
    log VoteRevealed(dispute_id=dispute_id, voter=voter, vote=vote, weight=ballot.weight)


@internal
def _claim_reward(voter: address, dispute_id: uint256) -> uint256:
    """
    @dev See `claim_reward`.
    @param voter The caller.
    @param dispute_id The dispute.
    @return uint256 The amount paid.
    """
    d: Dispute = self._get_dispute(dispute_id)
    assert d.funded, "arbitration: rewards not funded"
    ballot: Ballot = self._ballots[dispute_id][voter]
    decided: bool = False
    truthful: bool = False
    decided, truthful = self._verdict(d)
    assert self._is_winner(ballot.state, truthful), "arbitration: not a winning voter"
    assert BallotState.REWARDED not in ballot.state, "arbitration: already claimed"
    self._ballots[dispute_id][voter].state = ballot.state | BallotState.REWARDED
    winning_weight: uint256 = d.weight_false
    if truthful:
        winning_weight = d.weight_true
    amount: uint256 = self._reward_share(d.reward_pool, ballot.weight_before, ballot.weight,
                                         winning_weight)
    if amount != 0:
        assert extcall IERC20(token).transfer(voter, amount, default_return_value=True), \
            "arbitration: transfer failed"
    log RewardClaimed(dispute_id=dispute_id, voter=voter, amount=amount)
    return amount


@internal
def _penalize(dispute_id: uint256, voter: address) -> uint256:
    """
    @dev See `penalize`.
    @param dispute_id The dispute.
    @param voter The voter to penalise.
    @return uint256 The stake slashed.
    """
    d: Dispute = self._get_dispute(dispute_id)
    assert self._is_resolved(d), "arbitration: not resolved"
    ballot: Ballot = self._ballots[dispute_id][voter]
    assert ballot.commitment != empty(bytes32), "arbitration: no commitment"
    assert BallotState.PENALIZED not in ballot.state, "arbitration: already penalized"
    decided: bool = False
    truthful: bool = False
    decided, truthful = self._verdict(d)
    revealed: bool = BallotState.REVEALED in ballot.state
    assert not revealed or (decided and not self._is_winner(ballot.state, truthful)), \
        "arbitration: voter not at fault"
    self._ballots[dispute_id][voter].state = ballot.state | BallotState.PENALIZED
    requested: uint256 = ballot.weight * slash_bps // BPS
    slashed: uint256 = 0
    reward: uint256 = 0
    slashed, reward = extcall IBonds(bonds).slash(
        voter, ROLE_ARBITRATOR, requested, empty(address), 0
    )
    log VoterPenalized(dispute_id=dispute_id, voter=voter, requested=requested, slashed=slashed)
    return slashed


@internal
@view
def _check_admin():
    """
    @dev Reverts unless the caller is the admin.
    """
    assert msg.sender == self.admin, "arbitration: not admin"


@internal
@view
def _get_dispute(dispute_id: uint256) -> Dispute:
    """
    @dev The dispute, reverting if it was never opened.
    @param dispute_id The dispute.
    @return Dispute The record.
    """
    d: Dispute = self._disputes[dispute_id]
    assert d.requester != empty(address), "arbitration: unknown dispute"
    return d


@internal
@view
def _phases(opened_at: uint256) -> (uint256, uint256, uint256):
    """
    @dev The voting-power snapshot and phase ends of a dispute opened at `opened_at`.
    @param opened_at When the dispute was opened.
    @return (uint256, uint256, uint256) (snapshot, commit_end, reveal_end).
    """
    commit_end: uint256 = opened_at + commit_period
    return opened_at - 1, commit_end, commit_end + reveal_period


@internal
@view
def _is_resolved(d: Dispute) -> bool:
    """
    @dev Whether the reveal phase of `d` is over.
    @param d The dispute.
    @return bool True from `reveal_end` on.
    """
    return block.timestamp >= d.opened_at + commit_period + reveal_period


@internal
@view
def _is_winner(state: BallotState, truthful: bool) -> bool:
    """
    @dev Whether a ballot was revealed for the side `truthful`.
    @param state The ballot's state.
    @param truthful The side.
    @return bool True if revealed with that vote.
    """
    return BallotState.REVEALED in state and (BallotState.VOTED_TRUE in state) == truthful


@internal
@pure
def _commitment(vote: bool, salt: bytes32, voter: address) -> bytes32:
    """
    @dev `keccak256(abi_encode(vote, salt, voter))`.
    @param vote The vote.
    @param salt The secret.
    @param voter The voter.
    @return bytes32 The commitment.
    """
    return keccak256(abi_encode(vote, salt, voter))


@internal
@view
def _verdict(d: Dispute) -> (bool, bool):
    """
    @dev (decided, truthful) from the tallies; callers check the reveal phase is over
         (`fund_rewards` and `claim_reward` rely on `funded`, which needs a decision).
         No decision on a tie (including no reveals) or below quorum.
    @param d The dispute.
    @return (bool, bool) (decided, truthful); truthful is false when undecided.
    """
    if not self._is_resolved(d):
        return False, False
    if d.weight_true == d.weight_false:
        return False, False
    if (d.weight_true + d.weight_false) * BPS < quorum_bps * d.total_weight:
        return False, False
    return True, d.weight_true > d.weight_false


@internal
@pure
def _reward_share(
    pool: uint256, weight_before: uint256, weight: uint256, winning_weight: uint256
) -> uint256:
    """
    @dev A winning voter's share of `pool`: `floor(P*(C+w)/W) - floor(P*C/W)`.
         Summed over the winning voters in reveal order it telescopes to
         `floor(P*W/W) = P` exactly, and each share is within one unit of `P*w/W`.
    @param pool P, the reward pool.
    @param weight_before C, winning weight revealed before this voter.
    @param weight w, this voter's weight.
    @param winning_weight W, all winning weight (> 0 for a decided dispute).
    @return uint256 The share.
    """
    upto_mine: uint256 = pool * (weight_before + weight) // winning_weight
    return upto_mine - pool * weight_before // winning_weight
