# pragma version ~=0.4.3
"""
@title Bonds
@custom:contract-name Bonds
@license MIT
@notice Stake per bonded role (coordinator, oracle member, arbitrator, watcher),
        held in one ERC-20, with delayed exits and slashing by registered
        slasher modules only.
        - `bond` deposits stake; it counts as active stake (voting power) at once.
        - `request_unbond` moves active stake to the caller's unbonding balance;
          `withdraw` pays it out once `unbonding_delay` has passed. Unbonding stake
          is still slashable until it is withdrawn.
        - `slash` (a registered slasher for that role) takes stake, active first,
          clamped to what is there; of what is taken, a reward goes to a
          beneficiary and the rest stays here as the insurance fund. Nothing is
          ever minted: the token balance of this contract always equals the sum of
          active stake, unbonding stake and the insurance fund.
        - Active stake is checkpointed by timestamp per account and per role, so
          `stake_at` / `total_stake_at` give voting power at a past second that
          no later deposit (or flash loan) can change.
        The admin (later the governor) registers slasher modules and spends the
        insurance fund. See docs/protocol.md, "Bonds, assertions and arbitration".
"""

from ethereum.ercs import IERC20
from interfaces import IBonds

implements: IBonds


# @dev Role ids. A role is a separate stake: slashing in one never touches another.
ROLE_COORDINATOR: public(constant(uint8)) = 0
ROLE_ORACLE: public(constant(uint8)) = 1
ROLE_ARBITRATOR: public(constant(uint8)) = 2
ROLE_WATCHER: public(constant(uint8)) = 3
# @dev Number of roles; every role id is below it.
ROLE_COUNT: public(constant(uint8)) = 4

# @dev Largest total stake per role (active + unbonding). Keeps every checkpoint
#      amount in 128 bits and every product of a stake weight and a bond-sized
#      amount (Arbitration's reward shares) in 256 bits.
MAX_TOTAL_STAKE: public(constant(uint256)) = 2**128 - 1
# @dev Checkpoint layout (one storage slot each). A history entry is
#      `timestamp << 128 | amount`; a head (the latest checkpoint) is
#      `count << 192 | timestamp << 128 | amount`, where `count` is the number of
#      older entries in the history. Amounts fit in 128 bits (MAX_TOTAL_STAKE).
TIMESTAMP_SHIFT: constant(uint256) = 128
COUNT_SHIFT: constant(uint256) = 192
AMOUNT_MASK: constant(uint256) = (1 << 128) - 1
TIMESTAMP_MASK: constant(uint256) = (1 << 64) - 1
# @dev Binary search steps: enough for any history (its length is a 64-bit count).
MAX_SEARCH_STEPS: constant(uint256) = 64


struct Unbonding:
    amount: uint256
    ready_at: uint256


event Bonded:
    who: indexed(address)
    role: indexed(uint8)
    amount: uint256
    stake: uint256

event UnbondRequested:
    who: indexed(address)
    role: indexed(uint8)
    amount: uint256
    unbonding: uint256
    ready_at: uint256

event Withdrawn:
    who: indexed(address)
    role: indexed(uint8)
    amount: uint256

event Slashed:
    who: indexed(address)
    role: indexed(uint8)
    slasher: indexed(address)
    requested: uint256
    slashed: uint256
    reward: uint256
    reward_to: address
    insurance: uint256

event SlasherSet:
    slasher: indexed(address)
    role: indexed(uint8)
    enabled: bool

event AdminTransferred:
    previous: indexed(address)
    admin: indexed(address)

event InsuranceSpent:
    to: indexed(address)
    amount: uint256


token: public(immutable(address))
unbonding_delay: public(immutable(uint256))

admin: public(address)
is_slasher: public(HashMap[address, HashMap[uint8, bool]])

# @dev Stake on its way out: slashable until withdrawn, not voting power.
_unbonding: HashMap[address, HashMap[uint8, Unbonding]]
total_unbonding: public(HashMap[uint8, uint256])
# @dev Slashed stake not paid as a reward; spent only by the admin.
insurance_fund: public(uint256)

# @dev Active stake (voting power, slashable) is its latest checkpoint, the head;
#      older checkpoints are in the history, in time order (see TIMESTAMP_SHIFT).
#      Totals per role live under the zero address, which can never bond (it
#      sends no transactions).
_heads: HashMap[address, HashMap[uint8, uint256]]
_history: HashMap[address, HashMap[uint8, HashMap[uint256, uint256]]]


@deploy
def __init__(token_: address, unbonding_delay_: uint256):
    """
    @notice Create the registry; the deployer is the first admin.
    @dev `unbonding_delay_` MUST be longer than every window in which a fault
         by a bonded party can still be proven and slashed (the batch challenge
         window, the oracle dispute liveness, an arbitration's commit + reveal
         phases plus its penalty window). The deployer chooses it; slasher
         modules that know their own window check it against this value.
    @param token_ The ERC-20 stake is held in.
    @param unbonding_delay_ Seconds from an unbonding request to the withdrawal.
    """
    assert token_ != empty(address), "bonds: zero token"
    assert unbonding_delay_ != 0, "bonds: zero unbonding delay"
    token = token_
    unbonding_delay = unbonding_delay_
    self.admin = msg.sender
    log AdminTransferred(previous=empty(address), admin=msg.sender)


# --- staking -----------------------------------------------------------------------------


@external
@nonreentrant
def bond(role: uint8, amount: uint256):
    """
    @notice Deposit `amount` of the token as the caller's stake in `role`
            (needs an allowance). It is voting power from the next second on.
    @param role A role id (`ROLE_*`).
    @param amount Token base units, more than zero.
    """
    self._bond(msg.sender, role, amount)


@external
@nonreentrant
def request_unbond(role: uint8, amount: uint256):
    """
    @notice Start the exit of `amount` of the caller's active stake in `role`.
            It stops being voting power now and stays slashable until withdrawn.
            A new request adds to what is already unbonding and restarts the delay.
    @param role A role id (`ROLE_*`).
    @param amount Token base units, at most the caller's active stake.
    """
    self._request_unbond(msg.sender, role, amount)


@external
@nonreentrant
def withdraw(role: uint8) -> uint256:
    """
    @notice Pay out the caller's unbonding stake in `role` once the delay is over.
    @param role A role id (`ROLE_*`).
    @return uint256 The amount paid.
    """
    return self._withdraw(msg.sender, role)


# --- slashing ----------------------------------------------------------------------------


@external
@nonreentrant
def slash(
    who: address, role: uint8, amount: uint256, reward_to: address, reward_amount: uint256
) -> (uint256, uint256):
    """
    @notice Take up to `amount` of `who`'s stake in `role` (active stake first,
            then unbonding stake), pay up to `reward_amount` of what was taken to
            `reward_to` and keep the rest in the insurance fund.
    @dev Registered slashers for `role` only. Never reverts for lack of stake:
         both amounts clamp, and the return value says what really happened, so
         `slashed == reward + (insurance fund increase)` and `reward <= slashed`.
    @param who The bonded party at fault.
    @param role The role whose stake is slashed.
    @param amount The most to take, token base units.
    @param reward_to Who receives the reward (ignored if the reward is zero).
    @param reward_amount The most to pay `reward_to` out of what was taken.
    @return (uint256, uint256) (slashed, reward) actually moved.
    """
    self._check_role(role)
    assert self.is_slasher[msg.sender][role], "bonds: not a slasher"
    return self._slash(who, role, amount, reward_to, reward_amount)


# --- administration ----------------------------------------------------------------------


@external
@nonreentrant
def set_slasher(slasher: address, role: uint8, enabled: bool):
    """
    @notice Allow or forbid `slasher` to slash stake in `role`. Admin only.
    @param slasher A module that proves faults (fraud proofs, equivocation, arbitration).
    @param role A role id (`ROLE_*`).
    @param enabled True to register, false to revoke.
    """
    self._check_admin()
    self._check_role(role)
    assert slasher != empty(address), "bonds: zero slasher"
    self.is_slasher[slasher][role] = enabled
    log SlasherSet(slasher=slasher, role=role, enabled=enabled)


@external
@nonreentrant
def transfer_admin(new_admin: address):
    """
    @notice Hand the admin role to `new_admin` (the governor, eventually). Admin only.
    @param new_admin The next admin.
    """
    self._check_admin()
    assert new_admin != empty(address), "bonds: zero admin"
    log AdminTransferred(previous=self.admin, admin=new_admin)
    self.admin = new_admin


@external
@nonreentrant
def spend_insurance(to: address, amount: uint256):
    """
    @notice Pay `amount` out of the insurance fund (e.g. to cover a loss). Admin only.
    @param to The recipient.
    @param amount Token base units, at most the fund.
    """
    self._check_admin()
    assert amount <= self.insurance_fund, "bonds: insufficient insurance"
    self.insurance_fund -= amount
    self._pay(to, amount)
    log InsuranceSpent(to=to, amount=amount)


# --- views -------------------------------------------------------------------------------


@external
@view
def stake_of(who: address, role: uint8) -> uint256:
    """
    @notice Active stake of `who` in `role`: voting power from the next second, slashable.
    @param who The bonded party.
    @param role A role id.
    @return uint256 Token base units.
    """
    if who == empty(address):
        return 0
    return self._latest(who, role)


@external
@view
def total_stake(role: uint8) -> uint256:
    """
    @notice Active stake of everyone in `role`.
    @param role A role id.
    @return uint256 Token base units.
    """
    return self._latest(empty(address), role)


@external
@view
def unbonding_of(who: address, role: uint8) -> (uint256, uint256):
    """
    @notice Stake of `who` in `role` that is unbonding, and when it can be withdrawn.
    @param who The bonded party.
    @param role A role id.
    @return (uint256, uint256) (amount, ready_at timestamp); (0, 0) if none.
    """
    pending: Unbonding = self._unbonding[who][role]
    return pending.amount, pending.ready_at


@external
@view
def slashable_of(who: address, role: uint8) -> uint256:
    """
    @notice Everything a slasher could take from `who` in `role` now.
    @param who The bonded party.
    @param role A role id.
    @return uint256 Active plus unbonding stake.
    """
    if who == empty(address):
        return 0
    return self._latest(who, role) + self._unbonding[who][role].amount


@external
@view
def stake_at(who: address, role: uint8, timestamp: uint256) -> uint256:
    """
    @notice Active stake of `who` in `role` as it stood at the end of second
            `timestamp`: the voting power an arbitration or a vote snapshots.
    @dev Only strictly past seconds: the current second can still change.
    @param who The bonded party (not the zero address).
    @param role A role id.
    @param timestamp A unix time before the current block's.
    @return uint256 The stake then.
    """
    assert who != empty(address), "bonds: zero address"
    assert timestamp < block.timestamp, "bonds: future lookup"
    return self._value_at(who, role, timestamp)


@external
@view
def total_stake_at(role: uint8, timestamp: uint256) -> uint256:
    """
    @notice Active stake of everyone in `role` at the end of second `timestamp`.
    @param role A role id.
    @param timestamp A unix time before the current block's.
    @return uint256 The total then.
    """
    assert timestamp < block.timestamp, "bonds: future lookup"
    return self._value_at(empty(address), role, timestamp)


@external
@view
def checkpoint_count(who: address, role: uint8) -> uint256:
    """
    @notice How many stake checkpoints `who` has in `role` (the zero address: the total).
    @param who The bonded party, or the zero address for the role's total.
    @param role A role id.
    @return uint256 The number of checkpoints (history plus head).
    """
    head: uint256 = self._heads[who][role]
    if head == 0:
        return 0
    return (head >> COUNT_SHIFT) + 1


# --- internals ---------------------------------------------------------------------------


@internal
def _bond(who: address, role: uint8, amount: uint256):
    """
    @dev See `bond`: checks, checkpoints, then pulls the tokens.
    @param who The depositor.
    @param role A role id.
    @param amount Token base units.
    """
    self._check_role(role)
    assert amount != 0, "bonds: zero amount"
    total: uint256 = self._latest(empty(address), role) + amount
    assert total + self.total_unbonding[role] <= MAX_TOTAL_STAKE, "bonds: stake cap"
    stake: uint256 = self._latest(who, role) + amount
    self._set_active(who, role, stake, total)
    assert extcall IERC20(token).transferFrom(who, self, amount, default_return_value=True), \
        "bonds: transfer failed"
    log Bonded(who=who, role=role, amount=amount, stake=stake)


@internal
def _request_unbond(who: address, role: uint8, amount: uint256):
    """
    @dev See `request_unbond`.
    @param who The bonded party.
    @param role A role id.
    @param amount Token base units.
    """
    self._check_role(role)
    assert amount != 0, "bonds: zero amount"
    stake: uint256 = self._latest(who, role)
    assert amount <= stake, "bonds: insufficient stake"
    self._set_active(who, role, stake - amount, self._latest(empty(address), role) - amount)
    pending: Unbonding = self._unbonding[who][role]
    pending.amount += amount
    pending.ready_at = block.timestamp + unbonding_delay
    self._unbonding[who][role] = pending
    self.total_unbonding[role] += amount
    log UnbondRequested(who=who, role=role, amount=amount, unbonding=pending.amount,
                        ready_at=pending.ready_at)


@internal
def _withdraw(who: address, role: uint8) -> uint256:
    """
    @dev See `withdraw`.
    @param who The bonded party.
    @param role A role id.
    @return uint256 The amount paid.
    """
    self._check_role(role)
    pending: Unbonding = self._unbonding[who][role]
    assert pending.amount != 0, "bonds: nothing unbonding"
    assert block.timestamp >= pending.ready_at, "bonds: unbonding not over"
    self._unbonding[who][role] = empty(Unbonding)
    self.total_unbonding[role] -= pending.amount
    self._pay(who, pending.amount)
    log Withdrawn(who=who, role=role, amount=pending.amount)
    return pending.amount


@internal
@pure
def _check_role(role: uint8):
    """
    @dev Reverts unless `role` is a known role id.
    @param role The role id to check.
    """
    assert role < ROLE_COUNT, "bonds: unknown role"


@internal
@view
def _check_admin():
    """
    @dev Reverts unless the caller is the admin.
    """
    assert msg.sender == self.admin, "bonds: not admin"


@internal
def _pay(to: address, amount: uint256):
    """
    @dev Transfer `amount` of the token to `to`, reverting if the token refuses.
    @param to The recipient.
    @param amount Token base units.
    """
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), \
        "bonds: transfer failed"


@internal
@view
def _latest(key: address, role: uint8) -> uint256:
    """
    @dev Current active stake of `key` in `role` (the zero address: the role's total).
    @param key The bonded party, or the zero address.
    @param role The role id.
    @return uint256 The amount in the head checkpoint.
    """
    return self._heads[key][role] & AMOUNT_MASK


@internal
def _set_active(who: address, role: uint8, stake: uint256, total: uint256):
    """
    @dev Store new active stake for `who` and the role's total, and checkpoint both.
    @param who The bonded party.
    @param role The role id.
    @param stake `who`'s new active stake.
    @param total The role's new total active stake.
    """
    self._write_checkpoint(who, role, stake)
    self._write_checkpoint(empty(address), role, total)


@internal
def _slash(
    who: address, role: uint8, amount: uint256, reward_to: address, reward_amount: uint256
) -> (uint256, uint256):
    """
    @dev See `slash`: the caller is an authorised slasher for `role`.
    @param who The bonded party at fault (not the zero address).
    @param role The role id.
    @param amount The most to take.
    @param reward_to Who receives the reward.
    @param reward_amount The most to pay as reward.
    @return (uint256, uint256) (slashed, reward).
    """
    # The zero address holds the role totals (see `_heads`): it has no stake of its own.
    assert who != empty(address), "bonds: zero address"
    slashed: uint256 = 0
    reward: uint256 = 0
    slashed, reward = self._take_stake(who, role, amount, reward_amount)
    if reward != 0:
        assert reward_to != empty(address), "bonds: reward to zero address"
        self._pay(reward_to, reward)
    log Slashed(who=who, role=role, slasher=msg.sender, requested=amount, slashed=slashed,
                reward=reward, reward_to=reward_to, insurance=slashed - reward)
    return slashed, reward


@internal
def _take_stake(
    who: address, role: uint8, amount: uint256, reward_amount: uint256
) -> (uint256, uint256):
    """
    @dev The accounting of a slash: clamp, take active stake then unbonding stake,
         split into reward and insurance. Moves no tokens.
    @param who The bonded party.
    @param role The role id.
    @param amount The most to take.
    @param reward_amount The most to pay as reward.
    @return (uint256, uint256) (slashed, reward).
    """
    active: uint256 = self._latest(who, role)
    unbonding: uint256 = self._unbonding[who][role].amount
    slashed: uint256 = min(amount, active + unbonding)
    from_active: uint256 = min(slashed, active)
    from_unbonding: uint256 = slashed - from_active
    if from_active != 0:
        total: uint256 = self._latest(empty(address), role)
        self._set_active(who, role, active - from_active, total - from_active)
    if from_unbonding != 0:
        self._unbonding[who][role].amount = unbonding - from_unbonding
        self.total_unbonding[role] -= from_unbonding
    reward: uint256 = min(reward_amount, slashed)
    self.insurance_fund += slashed - reward
    return slashed, reward


@internal
def _write_checkpoint(key: address, role: uint8, amount: uint256):
    """
    @dev Make `amount` the head checkpoint of `key` in `role` from this second on;
         the previous head (if any) moves into the history. Writes within one
         second are not merged: that would make the gas of a transaction depend on
         the second it lands in, and a gas estimate taken in an earlier second
         would fall short. Lookups take the last entry of a second.
    @param key The bonded party, or the zero address for the role's total.
    @param role The role id.
    @param amount The new value (below 2**128: see MAX_TOTAL_STAKE).
    """
    head: uint256 = self._heads[key][role]
    count: uint256 = head >> COUNT_SHIFT
    if head != 0:
        # `head` without its count bits is exactly a history entry.
        self._history[key][role][count] = head & ((1 << COUNT_SHIFT) - 1)
        count += 1
    self._heads[key][role] = (count << COUNT_SHIFT) | (block.timestamp << TIMESTAMP_SHIFT) | amount


@internal
@view
def _value_at(key: address, role: uint8, timestamp: uint256) -> uint256:
    """
    @dev The value of the last checkpoint at or before `timestamp` (zero if none):
         the head first (the usual case), then a binary search of the history.
    @param key The bonded party, or the zero address for the role's total.
    @param role The role id.
    @param timestamp The second to look up.
    @return uint256 The checkpointed amount.
    """
    head: uint256 = self._heads[key][role]
    if (head >> TIMESTAMP_SHIFT) & TIMESTAMP_MASK <= timestamp:
        return head & AMOUNT_MASK  # also covers "no checkpoint at all" (head == 0)
    # Invariant: every entry below `lo` is at or before `timestamp`, every one at
    # or above `hi` is after it; the answer is the entry just below `lo` (the last
    # write of its second).
    lo: uint256 = 0
    hi: uint256 = head >> COUNT_SHIFT
    for _: uint256 in range(MAX_SEARCH_STEPS):
        if lo >= hi:
            break
        # lo + hi < 2**65: the addition cannot overflow.
        mid: uint256 = unsafe_add(lo, hi) >> 1
        if self._history[key][role][mid] >> TIMESTAMP_SHIFT > timestamp:
            hi = mid
        else:
            lo = mid + 1
    if lo == 0:
        return 0
    return self._history[key][role][lo - 1] & AMOUNT_MASK
