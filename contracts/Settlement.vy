# pragma version ~=0.4.3
"""
@title Settlement
@custom:contract-name Settlement
@license MIT
@notice Batch commitments, challenges, finality, payouts and the escape hatch.
        - `post_batch(header, ops_data)`: the admitted, bonded coordinator posts the
          next batch with its operations as calldata (data availability). The
          contract checks the number, `prevRoot`, the queue positions against the
          vault's chains, the timestamp, `K`, the checkpoint count, that the new
          root is `keccak(0x02 ++ preimage)` and that `ops_data` hashes to
          `opsHash`; it stores the header's hash and a few counters.
        - For `W` seconds anyone may prove the batch wrong:
          `challenge_queues` (the data does not consume exactly the queue entries
          the header claims, or cannot be decoded) and `challenge_payouts` (the
          withdrawals root is not the data's payouts) are decided here; an execution
          challenge is taken by the window verifier (`IWindowVerifier`), which calls
          `report_execution_fraud` when it proves one.
          A proven fraud reverts the batch and every later one, slashes the
          poster's coordinator bond (part to the challenger), and pauses posting
          until the admin re-admits a coordinator.
        - A batch names the parameter version of its number in the parameter store
          the window verifier reads (`ParameterStore.version_at`, the store read once
          when the verifier is wired) and that version's `K`; with no store, version 1
          and the deployment's `K`. Its window `W` is its version's `challenge_window`
          (never closing before its predecessor's), and `freeze` waits the latest
          version's `t_force`; with no store, the deployment's (decision 0011).
        - `pause(duration)` (admin or guardian): an emergency pause of posting for at
          most MAX_PAUSE seconds, never again until `pause_cooldown` (the largest
          `t_force` any version may take) after it ended; it
          blocks nothing else, and a forced withdrawal's `freeze` deadline moves by
          the paused time it overlapped (docs/decisions/0006).
        - `finalize(n)` (anyone, after the window); `claim` pays one payout of a
          finalised batch against its withdrawals root, once, pull-style, through
          the vault's window outflow cap (`Vault.pay_capped`): what the cap does not
          let out now stays claimable (`claim_paid`). Exits and refunds after a
          freeze are not capped.
        - A forced withdrawal unserved for `T_force` lets anyone `freeze`; then
          every account `exit`s once from the last finalised root with a proof and
          is paid its free collateral; an account with open positions is paid the
          rest by `exit_positions` once every expiry of them has a price in the
          `ExpiryRegistry` the window verifier reads (one registry judges batches
          and values exits). Deposits no finalised batch consumed are refunded.
        ops_data layout, per window in order:
          `uint32 coreLength ++ uint32 authLength ++ core ++ auth`.
        See docs/protocol.md, "Settlement contracts".
"""

from interfaces import IBonds
from interfaces import IExpiryRegistry
from lib import merkle_claims
from lib import sparse_merkle


interface IPayoutsChecker:
    def compute_payouts(header: Bytes[4396], ops_data: Bytes[400000], order: DynArray[uint256, 4096]) -> (uint256, bytes32): view
    def compute_queue_fault(header: Bytes[4396], ops_data: Bytes[400000], deposits_before: uint256, deposit_hash: bytes32,
                            forced_before: uint256, forced_hash: bytes32) -> String[32]: view


interface IVerifierExpiries:
    def expiry_registry() -> address: view
    def PARAMETER_STORE() -> address: view


struct Bound:
    minimum: uint256
    maximum: uint256
    listed: bool


interface IParameterStore:
    def version_at(batch: uint256) -> uint256: view
    def get(key: bytes32, version: uint256) -> uint256: view
    def version() -> uint256: view
    def bounds(key: bytes32) -> Bound: view


interface IVault:
    def deposit_count() -> uint256: view
    def forced_count() -> uint256: view
    def deposit_hash(n: uint256) -> bytes32: view
    def forced_hash(n: uint256) -> bytes32: view
    def forced_time(i: uint256) -> uint256: view
    def pay(to: address, amount: uint256): nonpayable
    def pay_capped(to: address, amount: uint256): nonpayable
    def window_budget() -> uint256: view


# @dev Bonds role of the coordinator.
ROLE_COORDINATOR: constant(uint8) = 0
# @dev Header layout (docs/protocol.md § Settlement, "Header").
HEADER_FIXED: constant(uint256) = 300
MAX_WINDOWS: public(constant(uint256)) = 128
MAX_HEADER: constant(uint256) = HEADER_FIXED + 32 * MAX_WINDOWS
# @dev Largest K: a window holds at most MAX_K operations.
MAX_K: public(constant(uint256)) = 32
# @dev All windows of a batch with their 8-byte length prefixes. Vyper places a
#      `Bytes[N]` argument and each variable-length slice of it in memory at their
#      full static size, so an entry point costs memory expansion for about 2·N
#      bytes whatever the batch: `post_batch` takes up to SMALL_OPS_DATA bytes
#      (≈ 45k gas of memory), `post_large_batch` up to MAX_OPS_DATA (≈ 1.3M gas).
SMALL_OPS_DATA: public(constant(uint256)) = 65536
MAX_OPS_DATA: public(constant(uint256)) = 400000
# @dev Largest operation count a batch may hold.
MAX_OPS: constant(uint256) = MAX_K * MAX_WINDOWS
# @dev Accounts tree depth (docs/protocol.md § Settlement, "State").
ACCOUNTS_DEPTH: constant(uint256) = 32
# @dev Largest account leaf: 37 + 65 × 16 positions.
MAX_LEAF: constant(uint256) = 1077
# @dev Batches `finalize` may close in one call.
MAX_FINALIZE: constant(uint256) = 64
BPS: constant(uint256) = 10000
U32_MASK: constant(uint256) = 2**32 - 1
U64_MASK: constant(uint256) = 2**64 - 1
# @dev The parameter-store key of `K`.
K_KEY: constant(bytes32) = keccak256("checkpoint_interval")
W_KEY: constant(bytes32) = keccak256("challenge_window")
T_FORCE_KEY: constant(bytes32) = keccak256("t_force")
# @dev Longest emergency pause, seconds.
MAX_PAUSE: public(constant(uint256)) = 3 * 86400



event BatchPosted:
    number: indexed(uint256)
    poster: indexed(address)
    header_hash: bytes32
    new_root: bytes32

event BatchFinalized:
    number: indexed(uint256)
    root: bytes32

event FraudProven:
    number: indexed(uint256)
    challenger: indexed(address)
    reason: String[32]
    slashed: uint256
    reward: uint256

event CoordinatorAdmitted:
    coordinator: indexed(address)

event AdminTransferred:
    admin: indexed(address)

event Frozen:
    root: bytes32
    forced_index: uint256

event Claimed:
    number: indexed(uint256)
    index: uint256
    recipient: indexed(address)
    amount: uint256

event Exited:
    account: indexed(uint256)
    owner: indexed(address)
    amount: uint256

event PositionsExited:
    account: indexed(uint256)
    owner: indexed(address)
    amount: uint256

event Paused:
    by: indexed(address)
    start: uint256
    end: uint256

event DepositRefunded:
    index: indexed(uint256)
    owner: indexed(address)
    amount: uint256


vault: public(immutable(address))
bonds: public(immutable(address))
# @dev `W` and `T_force` of version 1 (of every batch when there is no parameter store).
challenge_window: public(immutable(uint256))
t_force: public(immutable(uint256))
max_post_delay: public(immutable(uint256))
checkpoint_interval: public(immutable(uint256))
guardian: public(immutable(address))
min_stake: public(immutable(uint256))
reward_bps: public(immutable(uint256))
payouts_checker: public(immutable(address))

admin: public(address)
coordinator: public(address)
paused: public(bool)
frozen: public(bool)
window_verifier: public(address)
# @dev The window verifier's `PARAMETER_STORE` (immutable there), read once when it is wired.
parameter_store: public(address)
fee_recipient: public(address)
# @dev The last emergency pause: posting is closed while `pause_start <= now < pause_end`.
pause_start: public(uint256)
pause_end: public(uint256)
# @dev Seconds between the end of a pause and the next: the largest `T_force` any version may take.
pause_cooldown: public(uint256)

# @dev Batch 0 is genesis. Per batch: new root, header hash, poster, withdrawals root and
#      `meta = windowEnd | depositCount << 64 | forcedCount << 128 | timestamp << 192`
#      (`windowEnd`: when its challenge window closes).
last_batch: public(uint256)
last_finalized: public(uint256)
batch_root: public(HashMap[uint256, bytes32])
batch_header_hash: public(HashMap[uint256, bytes32])
batch_poster: public(HashMap[uint256, address])
batch_withdrawals_root: public(HashMap[uint256, bytes32])
batch_meta: public(HashMap[uint256, uint256])

# @dev Paid payouts by `batch << 32 | index`; exited accounts; refunded deposit indices;
#      the leaf hash of an exited account whose positions are not yet paid (0 = none).
claimed: public(HashMap[uint256, bool])
# @dev Paid so far of a claim the vault's window outflow cap split (0 once fully paid).
claim_paid: public(HashMap[uint256, uint256])
exited: public(HashMap[uint256, bool])
exit_pending: public(HashMap[uint256, bytes32])
refunded: public(HashMap[uint256, bool])
fee_pool_exited: public(bool)
frozen_root: public(bytes32)


@deploy
def __init__(
    vault_: address,
    bonds_: address,
    genesis_root: bytes32,
    coordinator_: address,
    min_stake_: uint256,
    challenge_window_: uint256,
    t_force_: uint256,
    max_post_delay_: uint256,
    checkpoint_interval_: uint256,
    guardian_: address,
    reward_bps_: uint256,
    fee_recipient_: address,
    payouts_checker_: address,
):
    """
    @notice Create the settlement contract over `vault_` and `bonds_`.
    @param vault_ The `Vault` (which must name this contract as its settlement).
    @param bonds_ The `Bonds` registry (this contract must be a coordinator-role slasher).
    @param genesis_root The state root every deployment starts from.
    @param coordinator_ The first admitted coordinator.
    @param min_stake_ Coordinator stake needed to post, token base units.
    @param challenge_window_ `W`, seconds between posting and finality.
    @param t_force_ `T_force`, seconds a forced withdrawal may wait before `freeze`; > `W`.
    @param max_post_delay_ How far behind `block.timestamp` a header's timestamp may be.
    @param checkpoint_interval_ `K`, 1..MAX_K.
    @param guardian_ May trigger an emergency pause (besides the admin).
    @param reward_bps_ Share of a slashed bond paid to the challenger, basis points.
    @param fee_recipient_ Who receives the fee pool after a freeze.
    @param payouts_checker_ The `PayoutsChecker` that recomputes a batch's withdrawals root.
    """
    assert vault_ != empty(address) and bonds_ != empty(address), "settlement: zero address"
    assert checkpoint_interval_ != 0 and checkpoint_interval_ <= MAX_K, "settlement: bad K"
    assert challenge_window_ != 0 and t_force_ > challenge_window_, "settlement: bad windows"
    assert reward_bps_ <= BPS, "settlement: bad reward"
    vault = vault_
    bonds = bonds_
    challenge_window = challenge_window_
    t_force = t_force_
    max_post_delay = max_post_delay_
    checkpoint_interval = checkpoint_interval_
    guardian = guardian_
    min_stake = min_stake_
    reward_bps = reward_bps_
    payouts_checker = payouts_checker_
    self.admin = msg.sender
    self.coordinator = coordinator_
    self.fee_recipient = fee_recipient_
    self.pause_cooldown = t_force_
    self.batch_root[0] = genesis_root


# --- batches ------------------------------------------------------------------------------


@external
@nonreentrant
def post_batch(header: Bytes[MAX_HEADER], ops_data: Bytes[SMALL_OPS_DATA]):
    """
    @notice Post the next batch: its header and its operations (calldata, per window
            `uint32 coreLength ++ uint32 authLength ++ core ++ auth`), at most
            SMALL_OPS_DATA bytes; larger batches use `post_large_batch`.
    @param header `encode_header` of the batch.
    @param ops_data The batch's windows.
    """
    self._check_poster(msg.sender)
    # Inlined (not an internal call): passing `ops_data` on would copy it into another
    # full-size memory frame.
    m: uint256 = self._u(header, 296, 4)
    pos: uint256 = 0
    hashes: DynArray[bytes32, MAX_WINDOWS] = []
    for j: uint256 in range(m, bound=MAX_WINDOWS):
        assert pos + 8 <= len(ops_data), "settlement: bad ops data"
        lens: uint256 = convert(slice(ops_data, pos, 8), uint256)
        core_len: uint256 = lens >> 32
        auth_len: uint256 = lens & U32_MASK
        assert pos + 8 + core_len + auth_len <= len(ops_data), "settlement: bad ops data"
        hashes.append(keccak256(concat(keccak256(slice(ops_data, pos + 8, core_len)),
                                       keccak256(slice(ops_data, pos + 8 + core_len, auth_len)))))
        pos += 8 + core_len + auth_len
    assert pos == len(ops_data), "settlement: bad ops data"
    assert self._hash_all(hashes) == extract32(header, 228), "settlement: wrong ops hash"
    self._post(msg.sender, header)


@external
@nonreentrant
def post_large_batch(header: Bytes[MAX_HEADER], ops_data: Bytes[MAX_OPS_DATA]):
    """
    @notice `post_batch` for up to MAX_OPS_DATA bytes of operations.
    @param header `encode_header` of the batch.
    @param ops_data The batch's windows.
    """
    self._check_poster(msg.sender)
    m: uint256 = self._u(header, 296, 4)
    pos: uint256 = 0
    hashes: DynArray[bytes32, MAX_WINDOWS] = []
    for j: uint256 in range(m, bound=MAX_WINDOWS):
        assert pos + 8 <= len(ops_data), "settlement: bad ops data"
        lens: uint256 = convert(slice(ops_data, pos, 8), uint256)
        core_len: uint256 = lens >> 32
        auth_len: uint256 = lens & U32_MASK
        assert pos + 8 + core_len + auth_len <= len(ops_data), "settlement: bad ops data"
        hashes.append(keccak256(concat(keccak256(slice(ops_data, pos + 8, core_len)),
                                       keccak256(slice(ops_data, pos + 8 + core_len, auth_len)))))
        pos += 8 + core_len + auth_len
    assert pos == len(ops_data), "settlement: bad ops data"
    assert self._hash_all(hashes) == extract32(header, 228), "settlement: wrong ops hash"
    self._post(msg.sender, header)


@external
@nonreentrant
def finalize(n: uint256):
    """
    @notice Finalise every pending batch up to `n` whose challenge window has passed.
    @param n The last batch to finalise (at most MAX_FINALIZE past the last final one).
    """
    self._finalize(n)


@external
@nonreentrant
def claim(n: uint256, index: uint256, recipient: address, amount: uint256,
          proof: DynArray[bytes32, 32]):
    """
    @notice Pay payout `index` of finalised batch `n` to its recipient (anyone may call;
            one bad receiver only fails its own claim), as much of it as the vault's window
            outflow cap lets out now; the rest stays claimable (`claim_paid`).
    @param n The batch.
    @param index The payout's index in the batch.
    @param recipient Who is paid.
    @param amount Base units.
    @param proof Claims-tree proof of `(uint64 n, uint32 index, recipient, amount)`.
    """
    self._claim(n, index, recipient, amount, proof)


# --- challenges ---------------------------------------------------------------------------


@external
@nonreentrant
def challenge_queues(n: uint256, header: Bytes[MAX_HEADER], ops_data: Bytes[MAX_OPS_DATA]):
    """
    @notice Prove that pending batch `n`'s data does not consume exactly the deposit and
            forced-withdrawal entries its header claims (a skipped, extra or altered
            entry), or has the wrong operation count or undecodable windows.
            Reverts if the batch is correct in these respects.
    @param n The batch.
    @param header Its header.
    @param ops_data Its posted windows (same layout as `post_batch`).
    """
    self._check_challengeable(n, header)
    prev_meta: uint256 = self.batch_meta[n - 1]
    deposits: uint256 = (prev_meta >> 64) & U64_MASK
    forced: uint256 = (prev_meta >> 128) & U64_MASK
    reason: String[32] = staticcall IPayoutsChecker(payouts_checker).compute_queue_fault(
        header, ops_data, deposits, staticcall IVault(vault).deposit_hash(deposits), forced,
        staticcall IVault(vault).forced_hash(forced))
    assert reason != "", "settlement: no queue fault"
    self._punish(n, msg.sender, reason)


@external
@nonreentrant
def challenge_payouts(n: uint256, header: Bytes[MAX_HEADER], ops_data: Bytes[MAX_OPS_DATA],
                      order: DynArray[uint256, MAX_OPS]):
    """
    @notice Prove that pending batch `n`'s `withdrawalCount` or `withdrawalsRoot` is not the
            claims tree of the payouts its data makes (`PayoutsChecker`). Reverts if they match.
    @param n The batch.
    @param header Its header.
    @param ops_data Its windows.
    @param order The payouts' indices in ascending order of their leaf hashes.
    """
    self._check_challengeable(n, header)
    count: uint256 = 0
    root: bytes32 = empty(bytes32)
    count, root = staticcall IPayoutsChecker(payouts_checker).compute_payouts(header, ops_data, order)
    assert count != self._u(header, 292, 4) or root != extract32(header, 260), \
        "settlement: payouts are correct"
    self._punish(n, msg.sender, "payouts")


@external
@nonreentrant
def report_execution_fraud(n: uint256, header: Bytes[MAX_HEADER], challenger: address):
    """
    @notice The registered window verifier (`IWindowVerifier.challenge_execution`, called by
            the challenger, so the window and its witness stay in the verifier's calldata)
            reports that it re-executed a window of batch `n` under `header` and found fraud.
    @dev The verifier is trusted to have checked the window against `opsHash` and the
         checkpoints of `header`; this contract checks that `header` is batch `n`'s and
         that `n` is still challengeable.
    @param n The batch.
    @param header Its header.
    @param challenger Who proved it (receives the reward).
    """
    assert msg.sender == self.window_verifier and msg.sender != empty(address), "settlement: not verifier"
    self._check_challengeable(n, header)
    self._punish(n, challenger, "execution")


# --- escape hatch -------------------------------------------------------------------------


@external
@nonreentrant
def freeze():
    """
    @notice Freeze settlement because the oldest unserved forced withdrawal has waited
            `t_force`: pending batches are dropped and exits open from the last finalised root.
    """
    self._freeze()


@external
@nonreentrant
def exit(preimage: Bytes[168], account: uint256, leaf: Bytes[MAX_LEAF], bitmap: uint256,
         siblings: DynArray[bytes32, ACCOUNTS_DEPTH]):
    """
    @notice After a freeze, pay account `account` its free collateral from the frozen root,
            once: its balance, or with open positions `balance - requirement`
            (`ExpiryRegistry.exit_amounts`); the positions are paid by `exit_positions`.
    @param preimage The frozen root's preimage after its 0x02 prefix (168 bytes).
    @param account The account id.
    @param leaf The account leaf encoding (`owner ++ balance ++ n ++ positions`).
    @param bitmap The compact proof's bitmap under the accounts root.
    @param siblings The compact proof's siblings.
    """
    self._exit(preimage, account, leaf, bitmap, siblings)


@external
@nonreentrant
def exit_positions(account: uint256, leaf: Bytes[MAX_LEAF]):
    """
    @notice Pay an exited account what its positions return at expiry, once every expiry of
            them has a settlement price (anyone may call; paid to the leaf's owner).
    @param account The account id.
    @param leaf The leaf it exited with.
    """
    # a pending hash is never zero, and `keccak256` of a leaf never is: an account with
    # nothing pending matches no leaf
    assert self.exit_pending[account] == keccak256(leaf), "settlement: no positions to exit"
    rest: uint256 = 0
    priced: bool = False
    free: uint256 = 0
    free, rest, priced = staticcall IExpiryRegistry(self._expiry_registry()).exit_amounts(leaf)
    assert priced, "settlement: expiry price unavailable"
    self.exit_pending[account] = empty(bytes32)
    owner: address = convert(convert(slice(leaf, 0, 20), bytes20), address)
    log PositionsExited(account=account, owner=owner, amount=rest)
    if rest != 0:
        extcall IVault(vault).pay(owner, rest)


@external
@nonreentrant
def exit_fee_pool(preimage: Bytes[168]):
    """
    @notice After a freeze, pay the frozen state's fee pool to the fee recipient, once.
    @param preimage The frozen root's preimage after its 0x02 prefix.
    """
    assert self.frozen, "settlement: not frozen"
    assert keccak256(concat(b"\x02", preimage)) == self.frozen_root, "settlement: wrong preimage"
    assert not self.fee_pool_exited, "settlement: already exited"
    self.fee_pool_exited = True
    amount: uint256 = convert(slice(preimage, 152, 16), uint256)
    if amount != 0:
        extcall IVault(vault).pay(self.fee_recipient, amount)


@external
@nonreentrant
def refund_deposit(index: uint256, account: uint256, owner: address, amount: uint256):
    """
    @notice After a freeze, return deposit `index` of the queue to its owner if the frozen
            state did not consume it (anyone may call).
    @param index The deposit's queue index.
    @param account Its account id.
    @param owner Its depositor.
    @param amount Its amount.
    """
    assert self.frozen, "settlement: not frozen"
    frozen_deposits: uint256 = (self.batch_meta[self.last_finalized] >> 64) & U64_MASK
    assert index >= frozen_deposits, "settlement: deposit was credited"
    assert not self.refunded[index], "settlement: already refunded"
    link: bytes32 = keccak256(concat(
        staticcall IVault(vault).deposit_hash(index), convert(convert(account, uint32), bytes4),
        convert(owner, bytes20), convert(convert(amount, uint128), bytes16)))
    assert link == staticcall IVault(vault).deposit_hash(index + 1), "settlement: not that deposit"
    self.refunded[index] = True
    log DepositRefunded(index=index, owner=owner, amount=amount)
    extcall IVault(vault).pay(owner, amount)


# --- administration -----------------------------------------------------------------------


@external
@nonreentrant
def pause(duration: uint256):
    """
    @notice Emergency pause: no batch may be posted for `duration` seconds (admin or guardian).
            Challenges, finality, claims, freeze and exits go on; the pause ends by itself
            and another may start only `pause_cooldown` after it ended.
    @param duration Seconds, 1..MAX_PAUSE.
    """
    assert msg.sender == self.admin or msg.sender == guardian, "settlement: not guardian"
    assert duration != 0 and duration <= MAX_PAUSE, "settlement: bad pause duration"
    assert block.timestamp >= self.pause_end + self.pause_cooldown, "settlement: pause cooldown"
    self.pause_start = block.timestamp
    self.pause_end = block.timestamp + duration
    log Paused(by=msg.sender, start=block.timestamp, end=block.timestamp + duration)


@external
@nonreentrant
def admit_coordinator(coordinator_: address):
    """
    @notice Admit `coordinator_` as the poster and resume posting (admin, later governance).
    @param coordinator_ The coordinator.
    """
    assert msg.sender == self.admin, "settlement: not admin"
    assert not self.frozen, "settlement: frozen"
    self.coordinator = coordinator_
    self.paused = False
    log CoordinatorAdmitted(coordinator=coordinator_)


@external
def transfer_admin(new_admin: address):
    """
    @notice Hand the admin role to `new_admin` (the Governor). Admin only; the guardian's
            pause is unaffected.
    @param new_admin The next admin.
    """
    assert msg.sender == self.admin, "settlement: not admin"
    assert new_admin != empty(address), "settlement: zero admin"
    self.admin = new_admin
    log AdminTransferred(admin=new_admin)


@external
@nonreentrant
def set_window_verifier(verifier: address):
    """
    @notice Wire the execution fraud-proof verifier, once; batches then name the parameter
            versions of its `PARAMETER_STORE` (if any), which governs `W` and `T_force` from
            this deployment's values with every `T_force` above every `W` (the verifier's
            constructor checks it).
    @param verifier An `IWindowVerifier`.
    """
    assert msg.sender == self.admin, "settlement: not admin"
    assert self.window_verifier == empty(address), "settlement: verifier already set"
    self.window_verifier = verifier
    store: address = staticcall IVerifierExpiries(verifier).PARAMETER_STORE()
    self.parameter_store = store
    if store != empty(address):
        self.pause_cooldown = max(t_force, (staticcall IParameterStore(store).bounds(T_FORCE_KEY)).maximum)


# --- internals ----------------------------------------------------------------------------


@internal
@pure
def _u(data: Bytes[MAX_HEADER], offset: uint256, size: uint256) -> uint256:
    """
    @dev The big-endian unsigned integer of `size` (1..32) bytes at `offset` of `data`;
         needs 32 readable bytes from `offset` (true of every header field: the header
         ends with at least one checkpoint root).
    @param data The bytes (at most a header long; longer inputs are sliced first).
    @param offset Byte offset.
    @param size Byte width.
    @return uint256 The value.
    """
    return extract32(data, offset, output_type=uint256) >> (256 - 8 * size)


@internal
@pure
def _hash_all(hashes: DynArray[bytes32, MAX_WINDOWS]) -> bytes32:
    """
    @dev `keccak(h_0 ++ … ++ h_{m-1})`: the ABI encoding of a dynamic array is its offset
         and length words followed by the items, so the items start at byte 64.
    @param hashes The window hashes.
    @return bytes32 The operations hash.
    """
    return keccak256(slice(abi_encode(hashes), 64, 32 * len(hashes)))


@internal
@view
def _check_poster(poster: address):
    """
    @dev Reverts unless `poster` is the admitted, sufficiently bonded coordinator and posting is open.
    @param poster The caller.
    """
    assert not self.frozen, "settlement: frozen"
    assert not self.paused, "settlement: paused"
    assert block.timestamp >= self.pause_end, "settlement: emergency pause"
    assert poster == self.coordinator, "settlement: not coordinator"
    assert staticcall IBonds(bonds).stake_of(poster, ROLE_COORDINATOR) >= min_stake, \
        "settlement: stake below minimum"


@internal
def _post(poster: address, header: Bytes[MAX_HEADER]):
    """
    @dev Check and record the next batch (its data already checked against `opsHash`).
    @param poster The coordinator.
    @param header The header.
    """
    assert len(header) > HEADER_FIXED, "settlement: bad header"
    n: uint256 = self.last_batch + 1
    assert self._u(header, 0, 8) == n, "settlement: wrong batch number"
    assert extract32(header, 8) == self.batch_root[n - 1], "settlement: wrong prev root"
    version: uint256 = self._u(header, 216, 4)
    k: uint256 = self._u(header, 220, 4)
    store: address = self.parameter_store
    window: uint256 = challenge_window
    if store == empty(address):
        assert version == 1, "settlement: wrong parameter version"
        assert k == checkpoint_interval, "settlement: wrong K"
    else:
        assert version == staticcall IParameterStore(store).version_at(n), "settlement: wrong parameter version"
        assert k == staticcall IParameterStore(store).get(K_KEY, version), "settlement: wrong K"
        window = staticcall IParameterStore(store).get(W_KEY, version)
    op_count: uint256 = self._u(header, 224, 4)
    m: uint256 = self._u(header, 296, 4)
    assert op_count != 0 and op_count <= MAX_OPS, "settlement: bad op count"
    assert m == (op_count + k - 1) // k, "settlement: wrong checkpoint count"
    assert len(header) == HEADER_FIXED + 32 * m, "settlement: bad header"
    new_root: bytes32 = extract32(header, HEADER_FIXED + 32 * (m - 1))
    assert keccak256(concat(b"\x02", slice(header, 40, 168))) == new_root, "settlement: wrong new root"

    prev_meta: uint256 = self.batch_meta[n - 1]
    deposits: uint256 = self._u(header, 104, 8)
    forced: uint256 = self._u(header, 144, 8)
    assert deposits >= (prev_meta >> 64) & U64_MASK, "settlement: deposit queue rewound"
    assert forced >= (prev_meta >> 128) & U64_MASK, "settlement: forced queue rewound"
    assert deposits <= staticcall IVault(vault).deposit_count(), "settlement: beyond deposit queue"
    assert forced <= staticcall IVault(vault).forced_count(), "settlement: beyond forced queue"
    assert extract32(header, 112) == staticcall IVault(vault).deposit_hash(deposits), \
        "settlement: wrong deposit hash"
    assert extract32(header, 152) == staticcall IVault(vault).forced_hash(forced), \
        "settlement: wrong forced hash"

    timestamp: uint256 = self._u(header, 208, 8)
    assert timestamp <= block.timestamp, "settlement: timestamp in the future"
    assert timestamp + max_post_delay >= block.timestamp, "settlement: timestamp too old"
    assert timestamp >= prev_meta >> 192, "settlement: timestamp before previous batch"
    assert self._u(header, 184, 8) <= timestamp, "settlement: clock past timestamp"

    header_hash: bytes32 = keccak256(header)
    self.last_batch = n
    self.batch_root[n] = new_root
    self.batch_header_hash[n] = header_hash
    self.batch_poster[n] = poster
    withdrawals_root: bytes32 = extract32(header, 260)
    if withdrawals_root != empty(bytes32) or self.batch_withdrawals_root[n] != empty(bytes32):
        self.batch_withdrawals_root[n] = withdrawals_root
    # Windows close in batch order: finalising a batch finalises its predecessors.
    window_end: uint256 = max(block.timestamp + window, prev_meta & U64_MASK)
    self.batch_meta[n] = window_end | deposits << 64 | forced << 128 | timestamp << 192
    log BatchPosted(number=n, poster=poster, header_hash=header_hash, new_root=new_root)


@internal
def _finalize(n: uint256):
    """
    @dev Finalise batches `last_finalized + 1 .. n`.
    @param n The last batch to finalise.
    """
    first: uint256 = self.last_finalized + 1
    assert n >= first and n <= self.last_batch, "settlement: nothing to finalize"
    assert n - first < MAX_FINALIZE, "settlement: too many batches"
    assert block.timestamp >= self.batch_meta[n] & U64_MASK, "settlement: challenge window open"
    self.last_finalized = n
    for i: uint256 in range(first, first + MAX_FINALIZE, bound=MAX_FINALIZE):
        if i > n:
            break
        log BatchFinalized(number=i, root=self.batch_root[i])


@internal
def _claim(n: uint256, index: uint256, recipient: address, amount: uint256,
           proof: DynArray[bytes32, 32]):
    """
    @dev Verify one payout of a finalised batch and pay what is left of it, up to the
         vault's window budget (reverts when that is zero and something is left).
    @param n The batch.
    @param index The payout index.
    @param recipient The recipient.
    @param amount Base units.
    @param proof The claims-tree proof.
    """
    assert n != 0 and n <= self.last_finalized, "settlement: batch not final"
    assert index < 2**32 and n < 2**64, "settlement: bad claim"
    key: uint256 = n << 32 | index
    assert not self.claimed[key], "settlement: already claimed"
    leaf: bytes32 = merkle_claims._leaf(keccak256(abi_encode(
        convert(n, uint64), convert(index, uint32), recipient, amount)))
    assert merkle_claims._verify(proof, self.batch_withdrawals_root[n], leaf), "settlement: invalid proof"
    paid: uint256 = self.claim_paid[key]
    part: uint256 = min(amount - paid, staticcall IVault(vault).window_budget())
    assert part != 0 or paid == amount, "settlement: window outflow cap"
    if paid + part == amount:
        self.claimed[key] = True
        if paid != 0:
            self.claim_paid[key] = 0
    else:
        self.claim_paid[key] = paid + part
    log Claimed(number=n, index=index, recipient=recipient, amount=part)
    extcall IVault(vault).pay_capped(recipient, part)


@internal
@view
def _check_challengeable(n: uint256, header: Bytes[MAX_HEADER]):
    """
    @dev Reverts unless `n` is pending, inside its window, and `header` is its header.
    @param n The batch.
    @param header The claimed header.
    """
    assert n > self.last_finalized and n <= self.last_batch, "settlement: batch not pending"
    assert block.timestamp < self.batch_meta[n] & U64_MASK, "settlement: challenge window closed"
    assert keccak256(header) == self.batch_header_hash[n], "settlement: wrong header"


@internal
def _punish(n: uint256, challenger: address, reason: String[32]):
    """
    @dev Revert batch `n` and every later one, slash its poster, pay the challenger, pause.
    @param n The fraudulent batch.
    @param challenger Who proved it.
    @param reason The fault.
    """
    poster: address = self.batch_poster[n]
    self.last_batch = n - 1
    self.paused = True
    self.coordinator = empty(address)
    amount: uint256 = staticcall IBonds(bonds).slashable_of(poster, ROLE_COORDINATOR)
    slashed: uint256 = 0
    reward: uint256 = 0
    if amount != 0:
        slashed, reward = extcall IBonds(bonds).slash(
            poster, ROLE_COORDINATOR, amount, challenger, amount * reward_bps // BPS)
    log FraudProven(number=n, challenger=challenger, reason=reason, slashed=slashed, reward=reward)


@internal
def _freeze():
    """
    @dev Freeze if the oldest forced withdrawal no posted batch served is `T_force` old.
    """
    assert not self.frozen, "settlement: frozen"
    i: uint256 = (self.batch_meta[self.last_batch] >> 128) & U64_MASK
    assert i < staticcall IVault(vault).forced_count(), "settlement: no pending forced withdrawal"
    # `T_force` of open posting since the request: a pause overlapping it moves the deadline by
    # the overlap (pauses are `pause_cooldown` >= any `T_force` apart, so no earlier one can
    # still overlap it)
    requested: uint256 = staticcall IVault(vault).forced_time(i)
    t: uint256 = t_force
    store: address = self.parameter_store
    if store != empty(address):
        t = staticcall IParameterStore(store).get(T_FORCE_KEY, staticcall IParameterStore(store).version())
    deadline: uint256 = requested + t
    if self.pause_start < deadline and self.pause_end > requested:
        deadline += self.pause_end - max(self.pause_start, requested)
    assert block.timestamp >= deadline, "settlement: forced withdrawal not overdue"
    self.frozen = True
    self.last_batch = self.last_finalized
    root: bytes32 = self.batch_root[self.last_finalized]
    self.frozen_root = root
    log Frozen(root=root, forced_index=i)


@internal
@view
def _expiry_registry() -> address:
    """
    @dev The `ExpiryRegistry` of the window verifier: exits are valued with the caps and prices
         batches are judged with.
    @return address The registry (reverts if there is none).
    """
    assert self.window_verifier != empty(address), "settlement: no expiry registry"
    registry: address = staticcall IVerifierExpiries(self.window_verifier).expiry_registry()
    assert registry != empty(address), "settlement: no expiry registry"
    return registry


@internal
def _exit(preimage: Bytes[168], account: uint256, leaf: Bytes[MAX_LEAF], bitmap: uint256,
          siblings: DynArray[bytes32, ACCOUNTS_DEPTH]):
    """
    @dev Prove the account's leaf under the frozen root and pay its free collateral, once;
         with positions, remember the leaf for `exit_positions`.
    @param preimage The frozen root's preimage after 0x02.
    @param account The account id.
    @param leaf The leaf encoding.
    @param bitmap The proof bitmap.
    @param siblings The proof siblings.
    """
    assert self.frozen, "settlement: not frozen"
    assert keccak256(concat(b"\x02", preimage)) == self.frozen_root, "settlement: wrong preimage"
    assert not self.exited[account], "settlement: already exited"
    assert len(leaf) >= 37, "settlement: bad leaf"
    assert sparse_merkle._verify(extract32(preimage, 0), account, keccak256(leaf), bitmap,
                                 siblings, ACCOUNTS_DEPTH), "settlement: invalid proof"
    owner: address = convert(convert(slice(leaf, 0, 20), bytes20), address)
    amount: uint256 = convert(slice(leaf, 20, 16), uint256)
    self.exited[account] = True
    if convert(slice(leaf, 36, 1), uint256) != 0:
        rest: uint256 = 0
        priced: bool = False
        amount, rest, priced = staticcall IExpiryRegistry(self._expiry_registry()).exit_amounts(leaf)
        self.exit_pending[account] = keccak256(leaf)
    log Exited(account=account, owner=owner, amount=amount)
    if amount != 0:
        extcall IVault(vault).pay(owner, amount)
