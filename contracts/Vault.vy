# pragma version ~=0.4.3
"""
@title Vault
@custom:contract-name Vault
@license MIT
@notice Custody of the quote token for the settlement layer.
        - `deposit` takes tokens, assigns the caller an account id on its first
          deposit (ids count up from 0 in first-deposit order) and appends
          `(id, owner, amount)` to the deposit queue, a hash chain
          `d_i = keccak(d_{i-1} ++ uint32 id ++ owner ++ uint128 amount)`.
        - `request_forced_withdrawal` appends `(id, owner, requested)` to the
          forced queue `f_i` (same shape) with its request time; a coordinator
          must serve it within `T_force` or anyone may freeze `Settlement`.
        - The chains are stored at every count, so `Settlement` checks a batch's
          claimed `(count, hash)` with one read each.
        - Only `Settlement` moves tokens out: claims of finalised withdrawals
          through `pay_capped`, within the window outflow cap (below); exits after
          a freeze and refunds of deposits that no finalised batch consumed through
          `pay`, uncapped (the escape hatch is never throttled).
        - Window outflow cap: time is cut into epochs of `outflow_window` seconds
          (the settlement's challenge window `W`); what `pay_capped` pays in an
          epoch plus what it paid in the epoch before is at most `outflow_cap`, so
          no interval of `W` seconds (it meets at most two epochs) pays out more.
          `window_budget()` is what may still be paid now.
        Conservation: `token.balanceOf(vault) == total_deposited - total_paid`.
        See docs/protocol.md, "Settlement contracts".
"""

from ethereum.ercs import IERC20


# @dev Balances in the state are `uint128`; no account can exceed what the vault
#      holds for everyone, so capping the outstanding total keeps every balance
#      (and the fee pool) below 2**128.
MAX_OUTSTANDING: public(constant(uint256)) = 2**128 - 1
# @dev Account ids are `uint32` in the state and the queue encoding.
MAX_ACCOUNTS: public(constant(uint256)) = 2**32


event Deposited:
    account: indexed(uint256)
    owner: indexed(address)
    amount: uint256
    index: uint256
    queue_hash: bytes32

event AccountRegistered:
    account: indexed(uint256)
    owner: indexed(address)

event ForcedWithdrawalRequested:
    account: indexed(uint256)
    owner: indexed(address)
    requested: uint256
    index: uint256
    queue_hash: bytes32

event Paid:
    to: indexed(address)
    amount: uint256

event SettlementSet:
    settlement: indexed(address)


token: public(immutable(address))
# @dev Most `pay_capped` may pay in any `outflow_window` seconds, token base units.
outflow_cap: public(immutable(uint256))
# @dev Epoch length, seconds: the settlement's challenge window `W`.
outflow_window: public(immutable(uint256))
admin: public(address)
settlement: public(address)

# @dev Account registry: id + 1 per owner (0 = none), and owner per id.
_id_plus_one: HashMap[address, uint256]
owner_of: public(HashMap[uint256, address])
account_count: public(uint256)

# @dev deposit_hash_at[n] is the chain after n entries (deposit_hash_at[0] = 0).
deposit_count: public(uint256)
deposit_hash_at: public(HashMap[uint256, bytes32])
# @dev forced_hash_at[n] is the chain after n entries; forced_time[i] the time entry i was queued.
forced_count: public(uint256)
forced_hash_at: public(HashMap[uint256, bytes32])
forced_time: public(HashMap[uint256, uint256])

total_deposited: public(uint256)
total_paid: public(uint256)

# @dev Capped outflow: the epoch of the last capped payment (`timestamp // outflow_window`),
#      what was paid in it, and what was paid in the epoch before it.
outflow_epoch: public(uint256)
outflow_current: public(uint256)
outflow_previous: public(uint256)


@deploy
def __init__(token_: address, outflow_cap_: uint256, outflow_window_: uint256):
    """
    @notice Create the vault for `token_`; the deployer is the admin who wires `Settlement` once.
    @param token_ The ERC-20 quote token.
    @param outflow_cap_ `max_window_outflow`: most claims may pay in any `outflow_window_` seconds.
    @param outflow_window_ The settlement's challenge window `W`, seconds.
    """
    assert token_ != empty(address), "vault: zero token"
    assert outflow_cap_ != 0 and outflow_window_ != 0, "vault: bad outflow cap"
    token = token_
    outflow_cap = outflow_cap_
    outflow_window = outflow_window_
    self.admin = msg.sender


@external
@nonreentrant
def set_settlement(settlement_: address):
    """
    @notice Name the settlement contract, once (the two contracts refer to each other).
    @param settlement_ The `Settlement` contract.
    """
    assert msg.sender == self.admin, "vault: not admin"
    assert self.settlement == empty(address), "vault: settlement already set"
    assert settlement_ != empty(address), "vault: zero settlement"
    self.settlement = settlement_
    log SettlementSet(settlement=settlement_)


@external
@nonreentrant
def deposit(amount: uint256) -> uint256:
    """
    @notice Deposit `amount` base units (approve the vault first); queued for the next batch.
    @param amount Token base units, > 0.
    @return uint256 The caller's account id.
    """
    return self._deposit(msg.sender, amount)


@external
@nonreentrant
def request_forced_withdrawal(requested: uint256) -> uint256:
    """
    @notice Queue a forced withdrawal of up to `requested` from the caller's account.
            A batch must serve it within `T_force`, else anyone may freeze settlement.
    @param requested Token base units, < 2**128.
    @return uint256 The entry's queue index.
    """
    return self._request_forced(msg.sender, requested)


@external
@nonreentrant
def pay(to: address, amount: uint256):
    """
    @notice Pay `amount` to `to`. The settlement contract only.
    @param to The recipient.
    @param amount Token base units.
    """
    assert msg.sender == self.settlement, "vault: not settlement"
    self._pay(to, amount)


@external
@nonreentrant
def pay_capped(to: address, amount: uint256):
    """
    @notice Pay `amount` to `to` within the window outflow cap. The settlement contract only.
    @param to The recipient.
    @param amount Token base units, at most `window_budget()`.
    """
    assert msg.sender == self.settlement, "vault: not settlement"
    epoch: uint256 = block.timestamp // outflow_window
    if epoch != self.outflow_epoch:
        previous: uint256 = 0
        if epoch == self.outflow_epoch + 1:
            previous = self.outflow_current
        self.outflow_previous = previous
        self.outflow_current = 0
        self.outflow_epoch = epoch
    assert self.outflow_previous + self.outflow_current + amount <= outflow_cap, \
        "vault: window outflow cap"
    self.outflow_current += amount
    self._pay(to, amount)


@external
@view
def window_budget() -> uint256:
    """
    @notice What `pay_capped` may still pay now: the cap less what the current and the
            previous epoch paid.
    @return uint256 Token base units.
    """
    epoch: uint256 = block.timestamp // outflow_window
    used: uint256 = 0
    if epoch == self.outflow_epoch:
        used = self.outflow_previous + self.outflow_current
    elif epoch == self.outflow_epoch + 1:
        used = self.outflow_current
    return outflow_cap - used


@external
@view
def account_of(owner: address) -> (bool, uint256):
    """
    @notice Whether `owner` has an account, and its id.
    @param owner The address.
    @return (bool, uint256) (registered, id).
    """
    plus_one: uint256 = self._id_plus_one[owner]
    if plus_one == 0:
        return False, 0
    return True, plus_one - 1


@external
@view
def deposit_hash(n: uint256) -> bytes32:
    """
    @notice The deposit chain after `n` entries (reverts past the queue).
    @param n Entries.
    @return bytes32 `d_n`.
    """
    assert n <= self.deposit_count, "vault: beyond deposit queue"
    return self.deposit_hash_at[n]


@external
@view
def forced_hash(n: uint256) -> bytes32:
    """
    @notice The forced chain after `n` entries (reverts past the queue).
    @param n Entries.
    @return bytes32 `f_n`.
    """
    assert n <= self.forced_count, "vault: beyond forced queue"
    return self.forced_hash_at[n]


@external
@view
def outstanding() -> uint256:
    """
    @notice What the vault owes in total: `total_deposited - total_paid` (its token balance).
    @return uint256 Token base units.
    """
    return self.total_deposited - self.total_paid


@internal
@pure
def _link(prev: bytes32, account: uint256, owner: address, amount: uint256) -> bytes32:
    """
    @dev One link of a queue chain: `keccak(prev ++ uint32 id ++ owner ++ uint128 amount)`.
    @param prev The chain so far.
    @param account The account id (< 2**32).
    @param owner The entry's owner.
    @param amount Base units (< 2**128).
    @return bytes32 The next link.
    """
    return keccak256(concat(
        prev, convert(convert(account, uint32), bytes4), convert(owner, bytes20),
        convert(convert(amount, uint128), bytes16),
    ))


@internal
def _register(owner: address) -> uint256:
    """
    @dev The id of `owner`, assigned now if it has none.
    @param owner The depositor.
    @return uint256 Its account id.
    """
    plus_one: uint256 = self._id_plus_one[owner]
    if plus_one != 0:
        return plus_one - 1
    account: uint256 = self.account_count
    assert account < MAX_ACCOUNTS, "vault: too many accounts"
    self._id_plus_one[owner] = account + 1
    self.owner_of[account] = owner
    self.account_count = account + 1
    log AccountRegistered(account=account, owner=owner)
    return account


@internal
def _deposit(owner: address, amount: uint256) -> uint256:
    """
    @dev Take `amount` from `owner`, register it and queue the deposit.
    @param owner The depositor.
    @param amount Base units.
    @return uint256 The account id.
    """
    assert amount != 0, "vault: zero amount"
    assert self.total_deposited - self.total_paid + amount <= MAX_OUTSTANDING, "vault: deposit cap"
    account: uint256 = self._register(owner)
    n: uint256 = self.deposit_count
    link: bytes32 = self._link(self.deposit_hash_at[n], account, owner, amount)
    self.deposit_hash_at[n + 1] = link
    self.deposit_count = n + 1
    self.total_deposited += amount
    log Deposited(account=account, owner=owner, amount=amount, index=n, queue_hash=link)
    # Effects first; the token is trusted only to move what it is told.
    assert extcall IERC20(token).transferFrom(owner, self, amount, default_return_value=True), \
        "vault: transfer failed"
    return account


@internal
def _request_forced(owner: address, requested: uint256) -> uint256:
    """
    @dev Queue `(id, owner, requested)` with the current time.
    @param owner The account owner.
    @param requested Base units.
    @return uint256 The entry's index.
    """
    plus_one: uint256 = self._id_plus_one[owner]
    assert plus_one != 0, "vault: no account"
    assert requested != 0, "vault: zero amount"
    assert requested <= MAX_OUTSTANDING, "vault: amount too large"
    n: uint256 = self.forced_count
    link: bytes32 = self._link(self.forced_hash_at[n], plus_one - 1, owner, requested)
    self.forced_hash_at[n + 1] = link
    self.forced_time[n] = block.timestamp
    self.forced_count = n + 1
    log ForcedWithdrawalRequested(account=plus_one - 1, owner=owner, requested=requested, index=n,
                                  queue_hash=link)
    return n


@internal
def _pay(to: address, amount: uint256):
    """
    @dev Transfer out and count it.
    @param to The recipient.
    @param amount Base units.
    """
    self.total_paid += amount
    log Paid(to=to, amount=amount)
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), \
        "vault: transfer failed"
