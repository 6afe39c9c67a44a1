# pragma version ~=0.4.3
"""
@title OracleHub
@custom:contract-name OracleHub
@license MIT
@notice Settlement prices from a bonded oracle committee (DESIGN §8).
        - Per feed (a bytes32 id), the admin (later the governor) sets price
          bounds and a committee of exactly `n = 3f+1` members, each holding at
          least `min_stake` of oracle-role stake in `Bonds`. Every committee
          change bumps the feed's config version and its config digest
          `keccak256(abi_encode(feed_id, version, f, members))`; reports must
          name the current digest.
        - `transmit` stores one round: a report carries the EIP-712-signed
          `Observation`s of at least `2f+1` distinct members (sorted by price,
          the reported price is their lower median, the reported timestamp the
          lower median of their timestamps) and the signatures of at least
          `f+1` distinct members over the report digest. With at most `f`
          faulty members every stored price lies inside the honest range.
        - `twap` gives the time-weighted average over a window for expiry
          settlement; it reverts on a stale or empty feed. Exits never call it.
        - `prove_equivocation`: two different signed observations by one member
          for one (feed, round) slash that member through `Bonds`, pay the
          prover, ban the member and remove it from the feed, once.
        The rules are mirrored in `clearhouse/oracle` (the spec); see
        docs/protocol.md, "Oracle".
"""

from lib import eip712
from interfaces import IOracleBonds

initializes: eip712


# @dev Largest committee: n = 3f+1 <= 31, so f <= 10 and a member's position fits a uint256 bitmap.
MAX_MEMBERS: public(constant(uint256)) = 31
# @dev Most rounds one TWAP window can hold; the constructor makes it a hard bound
#      (`max_twap_window <= (MAX_TWAP_ROUNDS - 1) * min_round_interval`).
MAX_TWAP_ROUNDS: public(constant(uint256)) = 256
# @dev Prices are stored in 128 bits (packed with round and timestamp in one slot).
MAX_PRICE: public(constant(uint256)) = 2**128 - 1
# @dev Denominator of every `*_bps` value.
BPS: constant(uint256) = 10_000
# @dev Largest deviation limit a feed may set (100x).
MAX_DEVIATION_BPS: public(constant(uint256)) = 1_000_000
# @dev Binary search steps: enough for 2**64 stored rounds.
MAX_SEARCH_STEPS: constant(uint256) = 64

# @dev A stored round is one slot: `round << 192 | timestamp << 128 | price`.
ROUND_SHIFT: constant(uint256) = 192
TIME_SHIFT: constant(uint256) = 128
PRICE_MASK: constant(uint256) = 2**128 - 1
U64_MASK: constant(uint256) = 2**64 - 1

# @dev EIP-712 type of the report the committee signs (in this contract's domain).
REPORT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Report(bytes32 configDigest,bytes32 feedId,uint64 round,uint256 price,uint64 timestamp,bytes32 observationsHash)"
)


# @dev One member's observation inside a report: the report supplies feed and round,
#      so a signature over any other feed or round recovers to a non-member.
struct ReportObservation:
    price: uint256
    timestamp: uint64
    expiry: uint64
    signature: Bytes[65]


struct Report:
    config_digest: bytes32
    feed_id: bytes32
    round: uint64
    price: uint256
    timestamp: uint64
    observations: DynArray[ReportObservation, MAX_MEMBERS]


struct RoundData:
    round: uint64
    price: uint256
    timestamp: uint64


struct Feed:
    # @dev Price bounds of a stored round (inclusive); `max_price != 0` marks a configured feed.
    min_price: uint256
    max_price: uint256
    # @dev Largest move from the previous round in basis points; 0 switches the check off.
    max_deviation_bps: uint256
    # @dev Oldest observation a report may carry, in seconds before the block.
    max_age: uint256
    # @dev Seconds after its last round at which the feed counts as stale.
    max_staleness: uint256
    # @dev Committee: fault tolerance (0 = no committee yet), config version and digest.
    f: uint256
    version: uint256
    config_digest: bytes32
    # @dev Number of stored rounds.
    round_count: uint256


event FeedConfigured:
    feed_id: indexed(bytes32)
    min_price: uint256
    max_price: uint256
    max_deviation_bps: uint256
    max_age: uint256
    max_staleness: uint256

event CommitteeSet:
    feed_id: indexed(bytes32)
    version: uint256
    config_digest: bytes32
    f: uint256
    members: DynArray[address, MAX_MEMBERS]

event NewRound:
    feed_id: indexed(bytes32)
    round: indexed(uint64)
    price: uint256
    timestamp: uint64
    transmitter: address

event EquivocationProven:
    feed_id: indexed(bytes32)
    round: indexed(uint64)
    member: indexed(address)
    prover: address
    slashed: uint256
    reward: uint256

event MemberRemoved:
    feed_id: indexed(bytes32)
    member: indexed(address)
    banned: bool

event SlashingSet:
    slash_amount: uint256
    prover_reward_bps: uint256

event MinStakeSet:
    min_stake: uint256

event AdminTransferred:
    previous: indexed(address)
    admin: indexed(address)


bonds: public(immutable(address))
oracle_role: public(immutable(uint8))
min_round_interval: public(immutable(uint256))
max_twap_window: public(immutable(uint256))

admin: public(address)
min_stake: public(uint256)
slash_amount: public(uint256)
prover_reward_bps: public(uint256)
is_banned: public(HashMap[address, bool])

_feeds: HashMap[bytes32, Feed]
_members: HashMap[bytes32, DynArray[address, MAX_MEMBERS]]
# @dev Position + 1 of an active member in `_members[feed]`; 0 = not an active member.
_member_slot: HashMap[bytes32, HashMap[address, uint256]]
# @dev Ever a member of the feed: equivocation stays provable after removal.
_ever_member: HashMap[bytes32, HashMap[address, bool]]
# @dev Packed rounds per feed, dense and in round order (see ROUND_SHIFT).
_rounds: HashMap[bytes32, HashMap[uint256, uint256]]
# @dev keccak256(feed, round, member) of every proven equivocation.
_proven: HashMap[bytes32, bool]


@deploy
def __init__(
    bonds_: address,
    name_: String[64],
    version_: String[32],
    min_stake_: uint256,
    slash_amount_: uint256,
    prover_reward_bps_: uint256,
    min_round_interval_: uint256,
    max_twap_window_: uint256,
):
    """
    @notice Create the hub; the deployer is the first admin.
    @dev The TWAP loop bound is fixed here for the contract's life: any window
         of at most `max_twap_window_` seconds holds at most `MAX_TWAP_ROUNDS`
         rounds because stored rounds are at least `min_round_interval_` apart.
    @param bonds_ The `Bonds` registry; this hub must be a slasher for its oracle role.
    @param name_ EIP-712 domain name (`Params.eip712_name`).
    @param version_ EIP-712 domain version (`Params.eip712_version`).
    @param min_stake_ Oracle-role stake a member needs, token base units.
    @param slash_amount_ Stake taken per proven equivocation, token base units.
    @param prover_reward_bps_ Share of what is slashed paid to the prover.
    @param min_round_interval_ Least seconds between two stored rounds' timestamps.
    @param max_twap_window_ Longest TWAP window, seconds.
    """
    assert bonds_ != empty(address), "oracle: zero bonds"
    assert prover_reward_bps_ <= BPS, "oracle: reward above 100%"
    assert min_round_interval_ != 0, "oracle: zero round interval"
    assert max_twap_window_ != 0, "oracle: zero twap window"
    assert max_twap_window_ <= (MAX_TWAP_ROUNDS - 1) * min_round_interval_, \
        "oracle: twap window too long for the loop bound"
    eip712.__init__(name_, version_)
    bonds = bonds_
    oracle_role = staticcall IOracleBonds(bonds_).ROLE_ORACLE()
    min_round_interval = min_round_interval_
    max_twap_window = max_twap_window_
    self.admin = msg.sender
    self.min_stake = min_stake_
    self.slash_amount = slash_amount_
    self.prover_reward_bps = prover_reward_bps_
    log AdminTransferred(previous=empty(address), admin=msg.sender)


# --- reports -----------------------------------------------------------------------------


@external
@nonreentrant
def transmit(report: Report, signatures: DynArray[Bytes[65], MAX_MEMBERS]):
    """
    @notice Store a round from a committee report. Anyone may send it (the
            round's leader usually does): everything is checked here.
    @dev Checks, in order (each with its own revert reason): feed has a
         committee, config digest, round newer than the last, at least `2f+1`
         observations and `f+1` signatures, each observation unexpired, not in
         the future, not older than `max_age`, sorted by price, signed by a
         distinct active member; the price and timestamp are the lower medians;
         the timestamp is `min_round_interval` after the last round's; bounds;
         deviation; each report signature from a distinct active member.
    @param report The report (see `Report`; digest in `report_digest`).
    @param signatures Member signatures over the report digest, in any order.
    """
    self._transmit(report, signatures)


@external
@view
def report_digest(report: Report) -> bytes32:
    """
    @notice The EIP-712 digest members sign for `report` (in this hub's domain).
    @param report The report; observation signatures enter through their digests only.
    @return bytes32 `hashTypedData(Report(configDigest, feedId, round, price, timestamp, observationsHash))`.
    """
    return self._report_digest(report, self._observations_hash(report))


# --- equivocation ------------------------------------------------------------------------


@external
@nonreentrant
def prove_equivocation(
    obs_a: eip712.Observation, sig_a: Bytes[65], obs_b: eip712.Observation, sig_b: Bytes[65]
) -> (uint256, uint256):
    """
    @notice Prove that one member signed two different observations for the
            same (feed, round): the member's oracle stake is slashed by up to
            `slash_amount`, `prover_reward_bps` of what is taken goes to the
            caller, the member is banned and removed from the feed. One proof
            per (feed, round, member): a replay reverts.
    @dev Expiry is not checked: an old equivocation is still a fault.
    @param obs_a One observation.
    @param sig_a Its signature.
    @param obs_b Another observation for the same feed and round.
    @param sig_b Its signature.
    @return (uint256, uint256) (slashed, reward) as moved by `Bonds`.
    """
    return self._prove_equivocation(obs_a, sig_a, obs_b, sig_b)


@external
@nonreentrant
def eject(feed_id: bytes32, member: address):
    """
    @notice Remove a member that is banned or whose active oracle stake fell
            below `min_stake` (e.g. it requested to unbond). Anyone may call.
    @dev `f` is unchanged: the feed keeps needing `2f+1` observations, so
         removals only ever cost liveness, never safety.
    @param feed_id The feed.
    @param member The member to remove.
    """
    assert self._member_slot[feed_id][member] != 0, "oracle: not a member"
    banned: bool = self.is_banned[member]
    assert banned or self._stake_of(member) < self.min_stake, "oracle: member in good standing"
    self._remove_member(feed_id, member, banned)


# --- administration ----------------------------------------------------------------------


@external
@nonreentrant
def configure_feed(
    feed_id: bytes32,
    min_price: uint256,
    max_price: uint256,
    max_deviation_bps: uint256,
    max_age: uint256,
    max_staleness: uint256,
):
    """
    @notice Set a feed's bounds and freshness limits. Admin only.
    @param feed_id The feed, e.g. `keccak256("ETH/USDC")`.
    @param min_price Lowest price a round may store (inclusive).
    @param max_price Highest price a round may store (inclusive, at most `MAX_PRICE`).
    @param max_deviation_bps Largest move from the previous round; 0 = unchecked. A
           circuit breaker: after a real move beyond it the feed halts until the admin widens it.
    @param max_age Oldest observation a report may carry, seconds.
    @param max_staleness Seconds after the last round at which the feed is stale.
    """
    self._check_admin()
    assert min_price <= max_price and max_price != 0 and max_price <= MAX_PRICE, \
        "oracle: bad price bounds"
    assert max_age != 0 and max_age <= U64_MASK, "oracle: bad max age"
    assert max_staleness != 0 and max_staleness <= U64_MASK, "oracle: bad max staleness"
    # A deviation limit relative to a zero price would freeze the feed at zero.
    assert max_deviation_bps == 0 or min_price != 0, "oracle: deviation needs a positive min price"
    # At most 100x: keeps `last_price * max_deviation_bps` far inside 256 bits.
    assert max_deviation_bps <= MAX_DEVIATION_BPS, "oracle: bad deviation"
    self._feeds[feed_id].min_price = min_price
    self._feeds[feed_id].max_price = max_price
    self._feeds[feed_id].max_deviation_bps = max_deviation_bps
    self._feeds[feed_id].max_age = max_age
    self._feeds[feed_id].max_staleness = max_staleness
    log FeedConfigured(feed_id=feed_id, min_price=min_price, max_price=max_price,
                       max_deviation_bps=max_deviation_bps, max_age=max_age,
                       max_staleness=max_staleness)


@external
@nonreentrant
def set_committee(feed_id: bytes32, members: DynArray[address, MAX_MEMBERS], f: uint256):
    """
    @notice Replace a feed's committee. Admin only. Every member needs
            `min_stake` of active oracle stake and must not be banned.
    @param feed_id A configured feed.
    @param members Exactly `3f+1` distinct members; their order is the leader rotation.
    @param f Faults tolerated, at least 1. The new config digest is logged in `CommitteeSet`.
    """
    self._check_admin()
    assert self._feeds[feed_id].max_price != 0, "oracle: unknown feed"
    assert f != 0 and len(members) == 3 * f + 1, "oracle: committee is not 3f+1"
    for old: address in self._members[feed_id]:
        self._member_slot[feed_id][old] = 0
    min_stake_: uint256 = self.min_stake
    position: uint256 = 0
    for member: address in members:
        assert member != empty(address), "oracle: zero member"
        assert self._member_slot[feed_id][member] == 0, "oracle: duplicate member"
        assert not self.is_banned[member], "oracle: member banned"
        assert self._stake_of(member) >= min_stake_, "oracle: insufficient stake"
        position += 1
        self._member_slot[feed_id][member] = position
        self._ever_member[feed_id][member] = True
    version: uint256 = self._feeds[feed_id].version + 1
    digest: bytes32 = keccak256(abi_encode(feed_id, version, f, members))
    self._members[feed_id] = members
    self._feeds[feed_id].f = f
    self._feeds[feed_id].version = version
    self._feeds[feed_id].config_digest = digest
    log CommitteeSet(feed_id=feed_id, version=version, config_digest=digest, f=f, members=members)


@external
@nonreentrant
def set_slashing(slash_amount_: uint256, prover_reward_bps_: uint256):
    """
    @notice Set the stake taken per equivocation and the prover's share. Admin only.
    @param slash_amount_ Token base units taken per proven equivocation.
    @param prover_reward_bps_ Share of the slashed amount paid to the prover.
    """
    self._check_admin()
    assert prover_reward_bps_ <= BPS, "oracle: reward above 100%"
    self.slash_amount = slash_amount_
    self.prover_reward_bps = prover_reward_bps_
    log SlashingSet(slash_amount=slash_amount_, prover_reward_bps=prover_reward_bps_)


@external
@nonreentrant
def set_min_stake(min_stake_: uint256):
    """
    @notice Set the oracle stake a member needs (checked when a committee is
            set; members below it can be ejected by anyone). Admin only.
    @param min_stake_ Token base units.
    """
    self._check_admin()
    self.min_stake = min_stake_
    log MinStakeSet(min_stake=min_stake_)


@external
@nonreentrant
def transfer_admin(new_admin: address):
    """
    @notice Hand the admin role to `new_admin` (the governor, eventually). Admin only.
    @param new_admin The next admin.
    """
    self._check_admin()
    assert new_admin != empty(address), "oracle: zero admin"
    log AdminTransferred(previous=self.admin, admin=new_admin)
    self.admin = new_admin


# --- views -------------------------------------------------------------------------------


@external
@view
def twap(feed_id: bytes32, start: uint256, end: uint256, cap: uint256) -> uint256:
    """
    @notice Time-weighted average price of the rounds stored in
            `[start, end]`, clamped to `[0, cap]`, for expiry settlement.
            Round `i` (timestamp `t_i`) weighs `t_{i+1} - t_i`, the last one
            `end - t_last`; the result is `floor(sum(p_i * w_i) / sum(w_i))`,
            or the last price if every weight is zero.
    @dev Settlement only: exits never call this, so a stale feed blocks
         settlement of an expiry, never an exit. Reverts `"oracle: stale"`
         when the last round at or before `end` is more than `max_staleness`
         older than `end`, `"oracle: no rounds in window"` when no round lies
         in the window (including a feed that never reported), `"oracle: window
         not final"` until `max_age` seconds after `end` (until then a late
         report could still add a round to the window). Loop bound: a window is at most
         `max_twap_window` seconds and rounds are `min_round_interval` apart,
         so at most `MAX_TWAP_ROUNDS` (256) iterations.
    @param feed_id The feed.
    @param start Window start, unix seconds (inclusive).
    @param end Window end, unix seconds (inclusive), more than `max_age` before the current block.
    @param cap The expiry's settlement cap.
    @return uint256 The clamped TWAP, in the feed's price units.
    """
    return self._twap(feed_id, start, end, cap)


@external
@view
def latest(feed_id: bytes32) -> RoundData:
    """
    @notice The last stored round, fresh or not (all zeros if none).
    @param feed_id The feed.
    @return RoundData (round, price, timestamp).
    """
    count: uint256 = self._feeds[feed_id].round_count
    if count == 0:
        return empty(RoundData)
    # count >= 1 here, so count - 1 cannot underflow.
    return self._unpack(self._rounds[feed_id][unsafe_sub(count, 1)])


@external
@view
def fresh_price(feed_id: bytes32) -> uint256:
    """
    @notice The last stored price, if the feed is not stale.
    @dev Reverts `"oracle: stale"` when the last round is more than
         `max_staleness` old or there is none. Exits never call this.
    @param feed_id The feed.
    @return uint256 The price.
    """
    count: uint256 = self._feeds[feed_id].round_count
    assert count != 0, "oracle: stale"
    last: RoundData = self._unpack(self._rounds[feed_id][count - 1])
    assert block.timestamp <= convert(last.timestamp, uint256) + self._feeds[feed_id].max_staleness, \
        "oracle: stale"
    return last.price


@external
@view
def round(feed_id: bytes32, round_id: uint64) -> RoundData:
    """
    @notice A stored round by its round number.
    @dev Binary search over the feed's rounds (at most 64 steps); reverts
         `"oracle: unknown round"` if that round was never stored.
    @param feed_id The feed.
    @param round_id The round number.
    @return RoundData (round, price, timestamp).
    """
    count: uint256 = self._feeds[feed_id].round_count
    lo: uint256 = 0
    hi: uint256 = count
    # Invariant: rounds below `lo` have numbers below `round_id`, rounds at or above `hi` at or above it.
    for _: uint256 in range(MAX_SEARCH_STEPS):
        if lo >= hi:
            break
        # lo + hi < 2 * count < 2**65: the addition cannot overflow.
        mid: uint256 = unsafe_add(lo, hi) >> 1
        if (self._rounds[feed_id][mid] >> ROUND_SHIFT) < convert(round_id, uint256):
            lo = mid + 1
        else:
            hi = mid
    assert lo < count, "oracle: unknown round"
    found: RoundData = self._unpack(self._rounds[feed_id][lo])
    assert found.round == round_id, "oracle: unknown round"
    return found


@external
@view
def round_at(feed_id: bytes32, index: uint256) -> RoundData:
    """
    @notice The `index`-th stored round of a feed (0 = oldest).
    @param feed_id The feed.
    @param index Position, below `round_count(feed_id)`.
    @return RoundData (round, price, timestamp).
    """
    assert index < self._feeds[feed_id].round_count, "oracle: unknown round"
    return self._unpack(self._rounds[feed_id][index])


@external
@view
def round_count(feed_id: bytes32) -> uint256:
    """
    @notice How many rounds a feed has stored.
    @param feed_id The feed.
    @return uint256 The count.
    """
    return self._feeds[feed_id].round_count


@external
@view
def get_feed(feed_id: bytes32) -> Feed:
    """
    @notice A feed's configuration, committee version and digest, round count.
    @param feed_id The feed.
    @return Feed The stored configuration.
    """
    return self._feeds[feed_id]


@external
@view
def members(feed_id: bytes32) -> DynArray[address, MAX_MEMBERS]:
    """
    @notice The committee as configured (removed members included: the config
            digest covers this list); see `is_member` for who still counts.
    @param feed_id The feed.
    @return DynArray[address, MAX_MEMBERS] Members in leader-rotation order.
    """
    return self._members[feed_id]


@external
@view
def is_member(feed_id: bytes32, who: address) -> bool:
    """
    @notice Whether `who` is an active member of the feed's committee.
    @param feed_id The feed.
    @param who The address.
    @return bool True if its observations and signatures count.
    """
    return self._member_slot[feed_id][who] != 0


@external
@view
def is_proven(feed_id: bytes32, round_id: uint64, member: address) -> bool:
    """
    @notice Whether an equivocation of `member` in (feed, round) was proven.
    @param feed_id The feed.
    @param round_id The round.
    @param member The member.
    @return bool True once slashed for it.
    """
    return self._proven[self._offence_key(feed_id, round_id, member)]


@external
@view
def domain_separator() -> bytes32:
    """
    @notice This hub's EIP-712 domain separator (chain id read live).
    @return bytes32 The separator observations and reports are signed in.
    """
    return eip712._domain_separator()


# --- internals ---------------------------------------------------------------------------


@internal
@view
def _check_admin():
    """
    @dev Reverts unless the caller is the admin.
    """
    assert msg.sender == self.admin, "oracle: not admin"


@internal
@view
def _stake_of(who: address) -> uint256:
    """
    @dev Active oracle-role stake of `who` in `Bonds`.
    @param who The (prospective) member.
    @return uint256 Token base units.
    """
    return staticcall IOracleBonds(bonds).stake_of(who, oracle_role)


@internal
@pure
def _unpack(packed: uint256) -> RoundData:
    """
    @dev Unpacks a stored round (see ROUND_SHIFT).
    @param packed The slot.
    @return RoundData The round.
    """
    return RoundData(
        round=convert(packed >> ROUND_SHIFT, uint64),
        price=packed & PRICE_MASK,
        timestamp=convert((packed >> TIME_SHIFT) & U64_MASK, uint64),
    )


@internal
@pure
def _offence_key(feed_id: bytes32, round_id: uint64, member: address) -> bytes32:
    """
    @dev The replay key of an equivocation proof.
    @param feed_id The feed.
    @param round_id The round.
    @param member The member.
    @return bytes32 keccak256(abi_encode(feed, round, member)).
    """
    return keccak256(abi_encode(feed_id, round_id, member))


@internal
@view
def _observation_digest(feed_id: bytes32, round_id: uint64, o: ReportObservation) -> bytes32:
    """
    @dev The EIP-712 digest of a report observation as the member signed it.
    @param feed_id The report's feed.
    @param round_id The report's round.
    @param o The observation.
    @return bytes32 The `Observation` digest.
    """
    return eip712._observation_digest(
        eip712.Observation(feed_id=feed_id, round=round_id, price=o.price, timestamp=o.timestamp,
                           expiry=o.expiry)
    )


@internal
@view
def _observations_hash(report: Report) -> bytes32:
    """
    @dev keccak256 of the concatenated observation digests, in report order.
    @param report The report.
    @return bytes32 The `observationsHash` member of the report digest.
    """
    digests: DynArray[bytes32, MAX_MEMBERS] = []
    for o: ReportObservation in report.observations:
        digests.append(self._observation_digest(report.feed_id, report.round, o))
    # `abi_encode` of one dynamic array is head offset (32) || length (32) || elements.
    return keccak256(slice(abi_encode(digests), 64, 32 * len(digests)))


@internal
@view
def _report_digest(report: Report, observations_hash: bytes32) -> bytes32:
    """
    @dev The EIP-712 digest of a report in this hub's domain.
    @param report The report.
    @param observations_hash Its `observationsHash`.
    @return bytes32 The digest members sign.
    """
    return eip712._hash_typed_data(
        keccak256(
            abi_encode(REPORT_TYPEHASH, report.config_digest, report.feed_id, report.round,
                       report.price, report.timestamp, observations_hash)
        )
    )


@internal
def _transmit(report: Report, signatures: DynArray[Bytes[65], MAX_MEMBERS]):
    """
    @dev Verifies a report (see `transmit` for the order of the checks) and stores its round.
    @param report The report.
    @param signatures Member signatures over the report digest.
    """
    feed_id: bytes32 = report.feed_id
    f: uint256 = self._feeds[feed_id].f
    assert f != 0, "oracle: unknown feed"
    assert report.config_digest == self._feeds[feed_id].config_digest, "oracle: wrong config"
    count: uint256 = self._feeds[feed_id].round_count
    last: RoundData = empty(RoundData)
    if count != 0:
        # count >= 1 here, so count - 1 cannot underflow.
        last = self._unpack(self._rounds[feed_id][unsafe_sub(count, 1)])
        assert report.round > last.round, "oracle: old round"
    # f <= 10 (3f+1 <= MAX_MEMBERS): 2f+1 cannot overflow.
    assert len(report.observations) >= unsafe_add(unsafe_add(f, f), 1), "oracle: too few observations"
    assert len(signatures) >= unsafe_add(f, 1), "oracle: too few signatures"

    observations_hash: bytes32 = self._check_observations(report)

    if count != 0:
        assert convert(report.timestamp, uint256) >= convert(last.timestamp, uint256) + min_round_interval, \
            "oracle: too soon"
    assert report.price >= self._feeds[feed_id].min_price and \
        report.price <= self._feeds[feed_id].max_price, "oracle: price out of bounds"
    max_deviation_bps: uint256 = self._feeds[feed_id].max_deviation_bps
    if count != 0 and max_deviation_bps != 0:
        move: uint256 = max(report.price, last.price) - min(report.price, last.price)
        assert move * BPS <= last.price * max_deviation_bps, "oracle: deviation too large"

    self._check_signatures(feed_id, self._report_digest(report, observations_hash), signatures)

    self._rounds[feed_id][count] = (convert(report.round, uint256) << ROUND_SHIFT) | \
        (convert(report.timestamp, uint256) << TIME_SHIFT) | report.price
    self._feeds[feed_id].round_count = count + 1
    log NewRound(feed_id=feed_id, round=report.round, price=report.price,
                 timestamp=report.timestamp, transmitter=msg.sender)


@internal
@view
def _check_observations(report: Report) -> bytes32:
    """
    @dev Checks every observation of a report (unexpired, not in the future,
         at most `max_age` old, sorted by price, signed by a distinct active
         member) and that the report's price and timestamp are their lower
         medians. The timestamp median is checked without sorting: `T` is the
         lower median of `k` values iff at least `m + 1` are `<= T` and at
         least `k - m` are `>= T`, with `m = (k - 1) // 2`.
    @param report The report.
    @return bytes32 The report's `observationsHash`.
    """
    feed_id: bytes32 = report.feed_id
    max_age: uint256 = self._feeds[feed_id].max_age
    k: uint256 = len(report.observations)
    # k >= 2f+1 >= 3 (checked by the caller), so k - 1 cannot underflow.
    m: uint256 = unsafe_sub(k, 1) >> 1
    t: uint256 = convert(report.timestamp, uint256)
    seen: uint256 = 0
    previous_price: uint256 = 0
    at_or_below: uint256 = 0
    at_or_above: uint256 = 0
    digests: DynArray[bytes32, MAX_MEMBERS] = []
    for o: ReportObservation in report.observations:
        eip712._check_expiry(o.expiry)
        ts: uint256 = convert(o.timestamp, uint256)
        assert ts <= block.timestamp, "oracle: future timestamp"
        assert ts + max_age >= block.timestamp, "oracle: stale observation"
        assert o.price >= previous_price, "oracle: observations not sorted"
        previous_price = o.price
        digest: bytes32 = self._observation_digest(feed_id, report.round, o)
        slot: uint256 = self._member_slot[feed_id][eip712._recover(digest, o.signature)]
        assert slot != 0, "oracle: not a member"
        # 1 <= slot <= MAX_MEMBERS = 31: the shift stays inside the word.
        bit: uint256 = 1 << unsafe_sub(slot, 1)
        assert seen & bit == 0, "oracle: duplicate observation"
        seen |= bit
        if ts <= t:
            at_or_below += 1
        if ts >= t:
            at_or_above += 1
        digests.append(digest)
    assert report.price == report.observations[m].price, "oracle: wrong median"
    # m < k, so k - m cannot underflow.
    assert at_or_below > m and at_or_above >= unsafe_sub(k, m), "oracle: wrong timestamp"
    return keccak256(slice(abi_encode(digests), 64, 32 * len(digests)))


@internal
@view
def _check_signatures(feed_id: bytes32, digest: bytes32, signatures: DynArray[Bytes[65], MAX_MEMBERS]):
    """
    @dev Every report signature recovers to a distinct active member.
    @param feed_id The feed.
    @param digest The report digest.
    @param signatures The signatures.
    """
    seen: uint256 = 0
    for signature: Bytes[65] in signatures:
        slot: uint256 = self._member_slot[feed_id][eip712._recover(digest, signature)]
        assert slot != 0, "oracle: not a member"
        # 1 <= slot <= MAX_MEMBERS = 31: the shift stays inside the word.
        bit: uint256 = 1 << unsafe_sub(slot, 1)
        assert seen & bit == 0, "oracle: duplicate signer"
        seen |= bit


@internal
def _prove_equivocation(
    obs_a: eip712.Observation, sig_a: Bytes[65], obs_b: eip712.Observation, sig_b: Bytes[65]
) -> (uint256, uint256):
    """
    @dev Verifies an equivocation proof, records it, removes and bans the
         member, then slashes through `Bonds` (the only external call, last).
    @param obs_a One observation.
    @param sig_a Its signature.
    @param obs_b The other observation.
    @param sig_b Its signature.
    @return (uint256, uint256) (slashed, reward).
    """
    assert obs_a.feed_id == obs_b.feed_id and obs_a.round == obs_b.round, "oracle: not the same round"
    digest_a: bytes32 = eip712._observation_digest(obs_a)
    digest_b: bytes32 = eip712._observation_digest(obs_b)
    assert digest_a != digest_b, "oracle: same observation"
    member: address = eip712._recover(digest_a, sig_a)
    assert eip712._recover(digest_b, sig_b) == member, "oracle: different signers"
    feed_id: bytes32 = obs_a.feed_id
    assert self._ever_member[feed_id][member], "oracle: not a member"
    key: bytes32 = self._offence_key(feed_id, obs_a.round, member)
    assert not self._proven[key], "oracle: already proven"
    self._proven[key] = True
    self.is_banned[member] = True
    if self._member_slot[feed_id][member] != 0:
        self._remove_member(feed_id, member, True)

    amount: uint256 = min(self.slash_amount, staticcall IOracleBonds(bonds).slashable_of(member, oracle_role))
    reward: uint256 = amount * self.prover_reward_bps // BPS
    slashed: uint256 = 0
    paid: uint256 = 0
    slashed, paid = extcall IOracleBonds(bonds).slash(member, oracle_role, amount, msg.sender, reward)
    log EquivocationProven(feed_id=feed_id, round=obs_a.round, member=member, prover=msg.sender,
                           slashed=slashed, reward=paid)
    return slashed, paid


@internal
def _remove_member(feed_id: bytes32, member: address, banned: bool):
    """
    @dev Stops counting `member`'s observations and signatures for the feed.
    @param feed_id The feed.
    @param member An active member.
    @param banned Whether it is removed for a proven fault.
    """
    self._member_slot[feed_id][member] = 0
    log MemberRemoved(feed_id=feed_id, member=member, banned=banned)


@internal
@view
def _twap(feed_id: bytes32, start: uint256, end: uint256, cap: uint256) -> uint256:
    """
    @dev See `twap`. Walks back from the last round at or before `end`.
    @param feed_id The feed.
    @param start Window start (inclusive).
    @param end Window end (inclusive).
    @param cap The settlement cap.
    @return uint256 The clamped TWAP.
    """
    assert self._feeds[feed_id].max_price != 0, "oracle: unknown feed"
    assert start <= end, "oracle: bad window"
    assert end - start <= max_twap_window, "oracle: window too long"
    # A round stored at block time B has a timestamp of at least B - max_age, so once
    # block.timestamp > end + max_age no later round can land in the window: the TWAP is final.
    assert end + self._feeds[feed_id].max_age < block.timestamp, "oracle: window not final"
    count: uint256 = self._feeds[feed_id].round_count
    assert count != 0, "oracle: no rounds in window"
    hi: uint256 = self._last_at_or_before(feed_id, count, end)
    # `hi` is one past the last round at or before `end`: 0 means none.
    assert hi != 0, "oracle: no rounds in window"
    last: RoundData = self._unpack(self._rounds[feed_id][hi - 1])
    assert end <= convert(last.timestamp, uint256) + self._feeds[feed_id].max_staleness, "oracle: stale"
    assert convert(last.timestamp, uint256) >= start, "oracle: no rounds in window"

    weighted: uint256 = 0
    total: uint256 = 0
    next_time: uint256 = end
    index: uint256 = hi
    for _: uint256 in range(MAX_TWAP_ROUNDS):
        if index == 0:
            break
        # index >= 1 here, so index - 1 cannot underflow.
        index = unsafe_sub(index, 1)
        r: RoundData = self._unpack(self._rounds[feed_id][index])
        t: uint256 = convert(r.timestamp, uint256)
        if t < start:
            break
        # Stored timestamps strictly increase and `next_time` starts at `end >= t`, so no underflow.
        weight: uint256 = unsafe_sub(next_time, t)
        weighted += r.price * weight
        total += weight
        next_time = t
    price: uint256 = last.price
    if total != 0:
        price = weighted // total
    return min(price, cap)


@internal
@view
def _last_at_or_before(feed_id: bytes32, count: uint256, time: uint256) -> uint256:
    """
    @dev One past the index of the last round with timestamp `<= time` (0 if
         none): the latest round first (the usual case at settlement), then a
         binary search.
    @param feed_id The feed.
    @param count The feed's round count (at least 1).
    @param time The cut-off, unix seconds.
    @return uint256 The number of rounds at or before `time`.
    """
    if (self._rounds[feed_id][count - 1] >> TIME_SHIFT) & U64_MASK <= time:
        return count
    lo: uint256 = 0
    hi: uint256 = count - 1
    # Invariant: rounds below `lo` are at or before `time`; rounds at or above `hi` are after it.
    for _: uint256 in range(MAX_SEARCH_STEPS):
        if lo >= hi:
            break
        # lo + hi < 2 * count < 2**65: the addition cannot overflow.
        mid: uint256 = unsafe_add(lo, hi) >> 1
        if (self._rounds[feed_id][mid] >> TIME_SHIFT) & U64_MASK > time:
            hi = mid
        else:
            lo = mid + 1
    return lo
