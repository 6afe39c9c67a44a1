# pragma version ~=0.4.3
"""
@title Oracle rewards by work: a transmit relay that counts who observed each stored round
@custom:contract-name OracleRewards
@license MIT
@notice The oracle role's fees (`notify`) and emissions (`fund_emissions`) are credited per epoch
        and paid to committee members pro rata to the observations they contributed to rounds
        stored through this contract in that epoch, not to their stake (docs/decisions/0008).
        - `transmit` forwards a report to `OracleHub.transmit`, which verifies it completely
          (quorum, every signature, the committee digest) or reverts; then each observation's
          member (`config.members[position]`, the position the hub checked the signature
          against) earns one unit of work for the current epoch. A member that skips a round,
          or whose observation the leader leaves out, earns nothing for it; a member not on the
          committee earns nothing at all.
        - Epoch `e`'s rewards go to its workers as `floor(work * rewards / total_work)`: one
          reward-per-work fraction per epoch, no loop over members, the remainder stays in the
          contract (the protocol's favour). An epoch with no work keeps its rewards.
        - Claims are pull-based, walk at most `MAX_CLAIM_EPOCHS` epochs per call, and only reach
          epochs that ended at least `CLAIM_DELAY` ago, so a fault in a round (equivocation,
          a round ruled wrong) is proven before the work is paid; a member the hub has banned
          can claim nothing more.
        Rounds stored directly at the hub (bypassing this relay) and optimistic `post`s earn no
        work. The rules are mirrored in `clearhouse/incentives/oracle_rewards.py`.
"""

from ethereum.ercs import IERC20


# @dev Must match OracleHub.MAX_MEMBERS: a committee has at most 31 members.
MAX_MEMBERS: constant(uint256) = 31
MAX_CLAIM_EPOCHS: public(constant(uint256)) = 52
MAX_EMISSION_EPOCHS: public(constant(uint256)) = 520
# @dev OracleHub's reference byte: bits 0-4 are the observation's committee position.
POSITION_MASK: constant(uint256) = 31
U8_MASK: constant(uint256) = 255


# @dev The hub's transmit arguments, field for field (same ABI).
struct Config:
    version: uint256
    f: uint256
    members: DynArray[uint256, MAX_MEMBERS]


struct ReportObservation:
    packed: uint256
    r: uint256
    s: uint256


struct Report:
    feed_id: bytes32
    round: uint256
    price: uint256
    timestamp: uint256
    observations: DynArray[ReportObservation, MAX_MEMBERS]


interface IOracleHub:
    def transmit(report: Report, config: Config, observers: uint256): nonpayable
    def is_banned(member: address) -> bool: view


event WorkRecorded:
    feed_id: indexed(bytes32)
    round: indexed(uint64)
    epoch: indexed(uint256)
    members: DynArray[address, MAX_MEMBERS]


event Notified:
    epoch: indexed(uint256)
    amount: uint256
    source: address


event Claimed:
    who: indexed(address)
    amount: uint256
    through_epoch: uint256


TOKEN: public(immutable(address))
HUB: public(immutable(address))
START: public(immutable(uint256))
EPOCH: public(immutable(uint256))
CLAIM_DELAY: public(immutable(uint256))

work: public(HashMap[uint256, HashMap[address, uint256]])
# @notice Observations a member contributed to rounds stored in an epoch.
total_work: public(HashMap[uint256, uint256])
# @notice All members' work in an epoch.
rewards: public(HashMap[uint256, uint256])
# @notice Rewards credited to an epoch.
next_epoch: public(HashMap[address, uint256])
# @notice The first epoch a member has not claimed yet.
paid: public(uint256)
# @notice Everything claimed so far.
funded: public(uint256)
# @notice Everything ever credited.


@deploy
def __init__(token: address, hub: address, start: uint256, epoch: uint256, claim_delay: uint256):
    """
    @param token The reward token.
    @param hub The OracleHub whose verified reports count as work.
    @param start When epoch 0 begins (not in the future).
    @param epoch Epoch length in seconds.
    @param claim_delay Seconds after an epoch ends before its rewards can be claimed: at least the
           hub's dispute window plus the time a dispute takes to resolve.
    """
    assert epoch != 0 and start <= block.timestamp, "oracle rewards: bad epochs"
    assert token != empty(address) and hub != empty(address), "oracle rewards: zero address"
    TOKEN = token
    HUB = hub
    START = start
    EPOCH = epoch
    CLAIM_DELAY = claim_delay


@internal
@view
def _current_epoch() -> uint256:
    """
    @dev The epoch running now.
    """
    return (block.timestamp - START) // EPOCH


@internal
@view
def _claimable_end() -> uint256:
    """
    @dev The first epoch not yet claimable.
    """
    # epoch e is claimable once START + (e + 1) * EPOCH + CLAIM_DELAY <= now
    if block.timestamp < START + CLAIM_DELAY:
        return 0
    return (block.timestamp - START - CLAIM_DELAY) // EPOCH


@external
@view
def current_epoch() -> uint256:
    """
    @notice The epoch now running (its work and rewards can still grow).
    @return uint256 The epoch number.
    """
    return self._current_epoch()


@external
@nonreentrant
def transmit(report: Report, config: Config, observers: uint256):
    """
    @notice Store a round at the hub (which verifies everything or reverts) and credit one unit
            of work to each member whose observation the report carries.
    @param report The report, as `OracleHub.transmit` takes it.
    @param config The committee the report was built under.
    @param observers Byte `j`: position (bits 0-4), flags and parity of observation `j`'s signature.
    """
    extcall IOracleHub(HUB).transmit(report, config, observers)
    epoch: uint256 = self._current_epoch()
    credited: DynArray[address, MAX_MEMBERS] = []
    j: uint256 = 0
    for o: ReportObservation in report.observations:
        # the hub checked this position is < n, active, and that its member signed observation j
        member: address = convert(config.members[(observers >> (j * 8)) & POSITION_MASK], address)
        self.work[epoch][member] += 1
        credited.append(member)
        j += 1
    self.total_work[epoch] += j
    # The hub stored the round, so it is a uint64.
    log WorkRecorded(feed_id=report.feed_id, round=convert(report.round, uint64), epoch=epoch,
                     members=credited)


@internal
def _pull(amount: uint256):
    """
    @dev Take `amount` from the caller (it approved this contract).
    """
    assert extcall IERC20(TOKEN).transferFrom(msg.sender, self, amount, default_return_value=True), \
        "oracle rewards: transfer failed"


@external
@nonreentrant
def notify(amount: uint256):
    """
    @notice Credit `amount` (pulled from the caller) to the current epoch's workers.
    @param amount Token base units.
    """
    assert amount != 0, "oracle rewards: zero amount"
    epoch: uint256 = self._current_epoch()
    self.rewards[epoch] += amount
    self.funded += amount
    self._pull(amount)
    log Notified(epoch=epoch, amount=amount, source=msg.sender)


@external
@nonreentrant
def fund_emissions(per_epoch: uint256, epochs: uint256):
    """
    @notice Emissions: `per_epoch` for each of the next `epochs` epochs (pulled now).
    @param per_epoch Token base units per epoch.
    @param epochs How many epochs, starting with the next one.
    """
    assert per_epoch != 0, "oracle rewards: zero amount"
    assert epochs != 0 and epochs <= MAX_EMISSION_EPOCHS, "oracle rewards: bad epoch count"
    first: uint256 = self._current_epoch() + 1
    for i: uint256 in range(epochs, bound=MAX_EMISSION_EPOCHS):
        self.rewards[first + i] += per_epoch
        log Notified(epoch=first + i, amount=per_epoch, source=msg.sender)
    self.funded += per_epoch * epochs
    self._pull(per_epoch * epochs)


@internal
@view
def _owed(who: address, first: uint256, last: uint256) -> uint256:
    """
    @dev `who`'s share of the rewards of epochs `first` up to (excluding) `last`.
    """
    total: uint256 = 0
    for i: uint256 in range(MAX_CLAIM_EPOCHS):
        epoch: uint256 = first + i
        if epoch >= last:
            break
        mine: uint256 = self.work[epoch][who]
        if mine == 0:
            continue
        # total_work[epoch] >= mine > 0
        total += mine * self.rewards[epoch] // self.total_work[epoch]
    return total


@internal
@view
def _range(who: address) -> (uint256, uint256):
    """
    @dev The epochs `claim` would walk for `who`: from its next unclaimed one, at most
         `MAX_CLAIM_EPOCHS`, none still running or inside the claim delay.
    """
    first: uint256 = self.next_epoch[who]
    last: uint256 = max(first, min(self._claimable_end(), first + MAX_CLAIM_EPOCHS))
    return first, last


@external
@view
def claimable(who: address) -> (uint256, uint256):
    """
    @notice What `claim` would pay `who` now (zero if banned), and the epoch it would claim
            through (exclusive).
    @param who The member.
    @return (uint256, uint256) The amount and the next unclaimed epoch after the claim.
    """
    first: uint256 = 0
    last: uint256 = 0
    first, last = self._range(who)
    if staticcall IOracleHub(HUB).is_banned(who):
        return 0, first
    return self._owed(who, first, last), last


@external
@nonreentrant
def claim() -> uint256:
    """
    @notice Pay the caller its rewards for up to `MAX_CLAIM_EPOCHS` claimable epochs.
    @return uint256 The amount paid.
    """
    assert not staticcall IOracleHub(HUB).is_banned(msg.sender), "oracle rewards: banned"
    first: uint256 = 0
    last: uint256 = 0
    first, last = self._range(msg.sender)
    amount: uint256 = self._owed(msg.sender, first, last)
    self.next_epoch[msg.sender] = last
    self.paid += amount
    log Claimed(who=msg.sender, amount=amount, through_epoch=last)
    if amount != 0:
        assert extcall IERC20(TOKEN).transfer(msg.sender, amount, default_return_value=True), \
            "oracle rewards: transfer failed"
    return amount
