# pragma version ~=0.4.3
"""
@title Staker rewards per role, by epoch, from Bonds' stake checkpoints
@custom:contract-name Rewards
@license MIT
@notice Trading fees (`notify`) and protocol emissions (`fund_emissions`) are credited to a role
        for an epoch; each epoch's rewards go to that role's stakers pro rata to their stake at
        the epoch's start, read from `Bonds.stake_at` / `total_stake_at`. Per epoch this is a
        reward-per-share `rewards[e] / total_at(e)`; a staker's share is computed as one
        `floor(stake * rewards / total)`, so no loop ever runs over stakers and rounding always
        leaves the remainder in the contract (the protocol's favour). Claims are pull-based and
        walk at most `MAX_CLAIM_EPOCHS` completed epochs per call (like Curve's fee distributor
        walks weeks); stake bonded during an epoch earns from the next one.
"""

from ethereum.ercs import IERC20


interface IBonds:
    def stake_at(who: address, role: uint8, timestamp: uint256) -> uint256: view
    def total_stake_at(role: uint8, timestamp: uint256) -> uint256: view


MAX_CLAIM_EPOCHS: public(constant(uint256)) = 52
MAX_EMISSION_EPOCHS: public(constant(uint256)) = 520
ROLE_COUNT: constant(uint8) = 4


event Notified:
    role: indexed(uint8)
    epoch: indexed(uint256)
    amount: uint256
    source: address


event Claimed:
    who: indexed(address)
    role: indexed(uint8)
    amount: uint256
    through_epoch: uint256


TOKEN: public(immutable(address))
BONDS: public(immutable(address))
START: public(immutable(uint256))
EPOCH: public(immutable(uint256))

rewards: public(HashMap[uint8, HashMap[uint256, uint256]])
# @notice Rewards credited to a role for an epoch.
next_epoch: public(HashMap[address, HashMap[uint8, uint256]])
# @notice The first epoch a staker has not claimed yet, per role.
paid: public(uint256)
# @notice Everything claimed so far.
funded: public(uint256)
# @notice Everything ever credited.


@deploy
def __init__(token: address, bonds: address, start: uint256, epoch: uint256):
    """
    @param token The reward token.
    @param bonds The stake registry whose checkpoints weigh the rewards.
    @param start When epoch 0 begins (not in the future).
    @param epoch Epoch length in seconds.
    """
    assert epoch != 0 and start <= block.timestamp, "rewards: bad epochs"
    TOKEN = token
    BONDS = bonds
    START = start
    EPOCH = epoch


@internal
@view
def _current_epoch() -> uint256:
    return (block.timestamp - START) // EPOCH


@external
@view
def current_epoch() -> uint256:
    """
    @notice The epoch now running (its rewards can still grow; it is claimable once over).
    @return uint256 The epoch number.
    """
    return self._current_epoch()


@internal
def _pull(amount: uint256):
    assert extcall IERC20(TOKEN).transferFrom(msg.sender, self, amount, default_return_value=True), \
        "rewards: transfer failed"


@external
@nonreentrant
def notify(role: uint8, amount: uint256):
    """
    @notice Credit `amount` (pulled from the caller) to `role`'s stakers for the current epoch.
    @param role A Bonds role id.
    @param amount Token base units.
    """
    assert role < ROLE_COUNT, "rewards: unknown role"
    epoch: uint256 = self._current_epoch()
    self.rewards[role][epoch] += amount
    self.funded += amount
    self._pull(amount)
    log Notified(role=role, epoch=epoch, amount=amount, source=msg.sender)


@external
@nonreentrant
def fund_emissions(role: uint8, per_epoch: uint256, epochs: uint256):
    """
    @notice Emissions: `per_epoch` to `role` for each of the next `epochs` epochs (pulled now).
    @param role A Bonds role id.
    @param per_epoch Token base units per epoch.
    @param epochs How many epochs, starting with the next one.
    """
    assert role < ROLE_COUNT, "rewards: unknown role"
    assert epochs != 0 and epochs <= MAX_EMISSION_EPOCHS, "rewards: bad epoch count"
    first: uint256 = self._current_epoch() + 1
    for i: uint256 in range(epochs, bound=MAX_EMISSION_EPOCHS):
        self.rewards[role][first + i] += per_epoch
        log Notified(role=role, epoch=first + i, amount=per_epoch, source=msg.sender)
    self.funded += per_epoch * epochs
    self._pull(per_epoch * epochs)


@internal
@view
def _owed(who: address, role: uint8, first: uint256, last: uint256) -> uint256:
    """
    @dev `who`'s share of `role`'s rewards for epochs `first` up to (excluding) `last`.
    """
    total: uint256 = 0
    for i: uint256 in range(MAX_CLAIM_EPOCHS):
        epoch: uint256 = first + i
        if epoch >= last:
            break
        amount: uint256 = self.rewards[role][epoch]
        if amount == 0:
            continue
        at: uint256 = START + epoch * EPOCH
        staked: uint256 = staticcall IBonds(BONDS).total_stake_at(role, at)
        if staked == 0:
            continue
        mine: uint256 = staticcall IBonds(BONDS).stake_at(who, role, at)
        total += mine * amount // staked
    return total


@internal
@view
def _range(who: address, role: uint8) -> (uint256, uint256):
    first: uint256 = self.next_epoch[who][role]
    last: uint256 = min(self._current_epoch(), first + MAX_CLAIM_EPOCHS)
    return first, last


@external
@view
def claimable(who: address, role: uint8) -> (uint256, uint256):
    """
    @notice What `claim` would pay `who` now, and the epoch it would claim through (exclusive).
    @param who The staker.
    @param role The role.
    @return (uint256, uint256) The amount and the next unclaimed epoch after the claim.
    """
    first: uint256 = 0
    last: uint256 = 0
    first, last = self._range(who, role)
    return self._owed(who, role, first, last), last


@external
@nonreentrant
def claim(role: uint8) -> uint256:
    """
    @notice Pay the caller its rewards in `role` for up to `MAX_CLAIM_EPOCHS` completed epochs.
    @param role The role.
    @return uint256 The amount paid.
    """
    assert role < ROLE_COUNT, "rewards: unknown role"
    first: uint256 = 0
    last: uint256 = 0
    first, last = self._range(msg.sender, role)
    amount: uint256 = self._owed(msg.sender, role, first, last)
    self.next_epoch[msg.sender][role] = last
    self.paid += amount
    log Claimed(who=msg.sender, role=role, amount=amount, through_epoch=last)
    if amount != 0:
        assert extcall IERC20(TOKEN).transfer(msg.sender, amount, default_return_value=True), \
            "rewards: transfer failed"
    return amount
