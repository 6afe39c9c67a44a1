# pragma version ~=0.4.3
"""
@title OracleHub
@custom:contract-name OracleHub
@license MIT
@notice Settlement prices from a bonded oracle committee (DESIGN §8).
        - Per feed (a bytes32 id), the admin (later the governor) sets price
          bounds and a committee of exactly `n = 3f+1` members, each holding at
          least `min_stake` of oracle-role stake in `Bonds`. Every committee
          change bumps the feed's config version and fixes its config digest
          `keccak256(abi_encode(feed_id, version, f, members))`; every
          version's digest stays readable (`config_digest`).
        - `transmit` stores a fully verified round: the observations of at
          least `2f+1` distinct members (sorted by price, the reported price is
          their lower median, the reported timestamp the lower median of their
          timestamps), each attested by its member's one signature: at least
          `f+1` of them by a signature over the report digest (which binds every
          observation to its member, so it attests the signer's own), the others
          by the member's EIP-712 `Observation` signature. `2f+1` signatures in
          all. The member list comes in calldata and is checked against the
          stored digest, each signature names its signer's position, so no
          member is read from storage. With at most `f` faulty members every
          stored price lies inside the honest range.
        - `post` stores an optimistic round: one active member's price and
          timestamp, backed by its oracle stake. Within `dispute_window` of its
          timestamp anyone may prove it wrong with `2f+1` members' signed
          observations (`OracleDisputes.challenge`).
        - Any round may be disputed through `Assertions` within `dispute_window`
          of its timestamp (`OracleDisputes.dispute_round`); only the registered
          dispute module marks rounds disputed or invalid, and bans members it
          proves at fault.
        - Rounds live in a ring of `history_rounds` slots per feed (a power of
          two fixed at deployment): round `i` (0-based, dense) is in slot
          `i % history_rounds`, so in steady state a round overwrites a slot
          (~5,000 gas) instead of filling a new one (~22,100). The last
          `history_rounds` rounds stay readable; an older one reverts
          `"oracle: round overwritten"`. A disputed round is never overwritten
          (the round that would replace it reverts until the dispute is
          resolved), and rounds are `min_round_interval` apart, so a round
          stays readable for at least `(history_rounds - 1) *
          min_round_interval` seconds (docs/decisions/0004).
        - `twap` gives the time-weighted average over a window for expiry
          settlement: final only once no round can land in the window and every
          round in it is past its dispute window; it refuses while one of them
          is disputed and skips those found invalid. It reverts on a stale or
          empty feed, and once the window's rounds were overwritten (not before
          `start + (history_rounds - 1) * min_round_interval`). Exits never call it.
        - `prove_equivocation`: two different observations stated by one member
          for one (feed, round) slash that member through `Bonds`, pay the
          prover, ban the member and remove it from the feed, once per (feed,
          round, member). A statement is an `Observation` signature or a report
          signature (which states the signer's own entry).
        The rules are mirrored in `clearhouse/oracle` (the spec); see
        docs/protocol.md, "Oracle".
"""

from lib import eip712
from interfaces import IOracleBonds

initializes: eip712


# @dev Largest committee: n = 3f+1 <= 31, so f <= 10 and a position fits 5 bits.
MAX_MEMBERS: public(constant(uint256)) = 31
# @dev Most rounds one TWAP window can hold; the constructor makes it a hard bound
#      (`max_twap_window <= (MAX_TWAP_ROUNDS - 1) * min_round_interval`).
MAX_TWAP_ROUNDS: public(constant(uint256)) = 256
# @dev Prices are stored in 128 bits (packed with the rest of a round in one slot).
MAX_PRICE: public(constant(uint256)) = 2**128 - 1
# @dev A round number may exceed the last stored one by at most this much: a faulty
#      leader or poster cannot jump the feed to the end of the uint64 range.
MAX_ROUND_GAP: public(constant(uint256)) = 2**16
# @dev Committee versions fit 16 bits of a stored round.
MAX_VERSION: public(constant(uint256)) = 2**16 - 1
# @dev `max_age` and `max_staleness` fit 32 bits of a feed's head slot (136 years).
MAX_WINDOW: public(constant(uint256)) = 2**32 - 1
# @dev Denominator of every `*_bps` value.
BPS: constant(uint256) = 10_000
# @dev Largest deviation limit a feed may set (100x); fits 24 bits.
MAX_DEVIATION_BPS: public(constant(uint256)) = 1_000_000
# @dev Binary search steps: enough for 2**64 stored rounds.
MAX_SEARCH_STEPS: constant(uint256) = 64
# @dev Largest ring of round slots per feed (`history_rounds`); binary searches stay in bound.
MAX_HISTORY_ROUNDS: public(constant(uint256)) = 2**32

# @dev A stored round is one slot:
#      `round << 192 | version << 176 | status << 168 | timestamp << 128 | price`,
#      where `status` is `poster << 3 | INVALID | DISPUTED | OPTIMISTIC` (flags below).
#      Timestamps fit 40 bits: a stored timestamp is at most `block.timestamp`,
#      which stays below 2**40 until the year 36812.
ROUND_SHIFT: constant(uint256) = 192
VERSION_SHIFT: constant(uint256) = 176
STATUS_SHIFT: constant(uint256) = 168
TIME_SHIFT: constant(uint256) = 128
PRICE_MASK: constant(uint256) = 2**128 - 1
TIME_MASK: constant(uint256) = 2**40 - 1
U64_MASK: constant(uint256) = 2**64 - 1
STATUS_OPTIMISTIC: constant(uint256) = 1
STATUS_DISPUTED: constant(uint256) = 2
STATUS_INVALID: constant(uint256) = 4
POSTER_SHIFT: constant(uint256) = 3

# @dev A feed's head is one slot: `count | version << 64 | f << 80 | removed << 88 |
#      max_deviation_bps << 120 | max_age << 144 | max_staleness << 176`.
HEAD_VERSION_SHIFT: constant(uint256) = 64
HEAD_F_SHIFT: constant(uint256) = 80
HEAD_REMOVED_SHIFT: constant(uint256) = 88
HEAD_DEVIATION_SHIFT: constant(uint256) = 120
HEAD_AGE_SHIFT: constant(uint256) = 144
HEAD_STALENESS_SHIFT: constant(uint256) = 176
U8_MASK: constant(uint256) = 2**8 - 1
U16_MASK: constant(uint256) = 2**16 - 1
U24_MASK: constant(uint256) = 2**24 - 1
U32_MASK: constant(uint256) = 2**32 - 1

# @dev A signer reference byte: bits 0-4 the committee position, bit 6 (`REPORT_SIGNED`, report
#      observations only) set when the signature is over the report digest rather than the
#      observation's, bit 7 the parity of the signature's `y` (`v = 27 + parity`); bit 5 is ignored.
POSITION_MASK: constant(uint256) = 31
REPORT_SIGNED: constant(uint256) = 64
PARITY_SHIFT: constant(uint256) = 7

# @dev `0x1901` as a word: `slice(abi_encode(EIP712_PREFIX, separator, hash), 30, 66)` is the
#      EIP-712 digest preimage `0x1901 || separator || hash`, cheaper to build than a `concat`.
EIP712_PREFIX: constant(uint256) = 6401
# @dev secp256k1 group order and its half (`eip712`'s canonical-signature bounds).
SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

# @dev EIP-712 type of the report the committee signs (in this contract's domain).
REPORT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Report(bytes32 configDigest,bytes32 feedId,uint64 round,uint256 price,uint64 timestamp,bytes32 observationsHash)"
)


# @dev The committee a report was built under, checked against the stored config digest.
#      Members travel as words (an address in the low 160 bits): a type the ABI decoder need
#      not clamp stays in calldata instead of being copied word by word into memory. A word
#      with dirty high bits changes the digest, so it is refused as `"oracle: wrong config"`.
struct Config:
    version: uint256
    f: uint256
    members: DynArray[uint256, MAX_MEMBERS]


# @dev One observation of a report with its member's signature: `packed` is
#      `price << 128 | timestamp << 64 | expiry` (price below 2**128); feed and round
#      come from the report, so a signature over any other feed or round recovers to
#      someone else. The signature is over the observation's digest, or (its reference
#      byte has `REPORT_SIGNED`) over the report digest.
struct ReportObservation:
    packed: uint256
    r: uint256
    s: uint256


# @dev A member's signed statement of its own observation for (feed, round): an `Observation`
#      it signed (`members` empty; `observation` is `price << 128 | timestamp << 64 | expiry`),
#      or its signature over a report of that (feed, round) built under `config_digest` with
#      `price` and `timestamp` (`digests` and `members` are the report's observation digests and
#      their members, in report order; entry `index` is the signer's own).
struct Statement:
    feed_id: bytes32
    round: uint64
    observation: uint256
    config_digest: bytes32
    price: uint256
    timestamp: uint64
    index: uint256
    digests: DynArray[bytes32, MAX_MEMBERS]
    members: DynArray[address, MAX_MEMBERS]
    signature: Bytes[65]


# @dev `round` and `timestamp` are uint64 values carried as words (unclamped, so the report
#      stays in calldata): `transmit` refuses a round above 2**64 - 1 and the timestamp must equal
#      an observation's (below 2**64).
struct Report:
    feed_id: bytes32
    round: uint256
    price: uint256
    timestamp: uint256
    observations: DynArray[ReportObservation, MAX_MEMBERS]


struct RoundData:
    round: uint64
    price: uint256
    timestamp: uint64


# @dev Everything stored about a round (`round_state`).
struct RoundState:
    round: uint64
    price: uint256
    timestamp: uint64
    version: uint256
    optimistic: bool
    disputed: bool
    invalid: bool
    poster: uint256


# @dev `get_feed`'s answer.
struct Feed:
    min_price: uint256
    max_price: uint256
    max_deviation_bps: uint256
    max_age: uint256
    max_staleness: uint256
    f: uint256
    version: uint256
    config_digest: bytes32
    round_count: uint256
    removed: uint256


# @dev A feed's head slot, unpacked in memory.
struct Head:
    count: uint256
    version: uint256
    f: uint256
    removed: uint256
    max_deviation_bps: uint256
    max_age: uint256
    max_staleness: uint256


# @dev A stored round, unpacked in memory (`status` without the poster bits).
struct Round:
    round: uint256
    price: uint256
    timestamp: uint256
    version: uint256
    status: uint256
    poster: uint256


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

event OptimisticRound:
    feed_id: indexed(bytes32)
    round: indexed(uint64)
    price: uint256
    timestamp: uint64
    poster: indexed(address)

event RoundStatusChanged:
    feed_id: indexed(bytes32)
    index: indexed(uint256)
    round: uint64
    disputed: bool
    invalid: bool

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

event DisputeModuleSet:
    module: indexed(address)

event AdminTransferred:
    previous: indexed(address)
    admin: indexed(address)


bonds: public(immutable(address))
oracle_role: public(immutable(uint8))
min_round_interval: public(immutable(uint256))
max_twap_window: public(immutable(uint256))
dispute_window: public(immutable(uint256))
# @dev Round slots per feed (a power of two): the last `history_rounds` rounds are readable.
history_rounds: public(immutable(uint256))
# @dev `history_rounds - 1`: `index & history_mask` is round `index`'s slot.
history_mask: immutable(uint256)

admin: public(address)
dispute_module: public(address)
min_stake: public(uint256)
slash_amount: public(uint256)
prover_reward_bps: public(uint256)
is_banned: public(HashMap[address, bool])

# @dev Per feed: the head (see HEAD_VERSION_SHIFT) and `min_price | max_price << 128`
#      (`max_price != 0` marks a configured feed).
_heads: HashMap[bytes32, uint256]
_limits: HashMap[bytes32, uint256]
# @dev Config digest of every committee version of a feed.
_digests: HashMap[bytes32, HashMap[uint256, bytes32]]
_members: HashMap[bytes32, DynArray[address, MAX_MEMBERS]]
# @dev Position + 1 of an active member in the current committee; 0 = not active.
_member_slot: HashMap[bytes32, HashMap[address, uint256]]
# @dev Ever a member of the feed: equivocation stays provable after removal.
_ever_member: HashMap[bytes32, HashMap[address, bool]]
# @dev Packed rounds per feed (see ROUND_SHIFT): round `index` (dense, in round order) is in
#      slot `index & history_mask` until round `index + history_rounds` overwrites it.
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
    dispute_window_: uint256,
    history_rounds_: uint256,
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
    @param slash_amount_ Stake taken per proven fault of one member, token base units.
    @param prover_reward_bps_ Share of what is slashed paid to whoever proves the fault.
    @param min_round_interval_ Least seconds between two stored rounds' timestamps.
    @param max_twap_window_ Longest TWAP window, seconds.
    @param dispute_window_ Seconds after a round's timestamp during which it can be
           disputed or challenged; at least every feed's `max_age`, and shorter than
           `Bonds.unbonding_delay` (checked by `OracleDisputes`).
    @param history_rounds_ Round slots kept per feed, a power of two with
           `(history_rounds_ - 1) * min_round_interval_ > max_twap_window_ + dispute_window_`:
           every TWAP window stays readable for a while once it is final.
    """
    assert bonds_ != empty(address), "oracle: zero bonds"
    assert prover_reward_bps_ <= BPS, "oracle: reward above 100%"
    assert min_round_interval_ != 0, "oracle: zero round interval"
    assert max_twap_window_ != 0, "oracle: zero twap window"
    assert max_twap_window_ <= (MAX_TWAP_ROUNDS - 1) * min_round_interval_, \
        "oracle: twap window too long for the loop bound"
    assert dispute_window_ != 0 and dispute_window_ <= MAX_WINDOW, "oracle: bad dispute window"
    # A power of two from 2 up: `history_rounds_ & (history_rounds_ - 1)` clears its one set bit.
    assert history_rounds_ >= 2 and history_rounds_ <= MAX_HISTORY_ROUNDS and \
        history_rounds_ & (history_rounds_ - 1) == 0, "oracle: history not a power of two"
    assert (history_rounds_ - 1) * min_round_interval_ > max_twap_window_ + dispute_window_, \
        "oracle: history too short"
    eip712.__init__(name_, version_)
    bonds = bonds_
    oracle_role = staticcall IOracleBonds(bonds_).ROLE_ORACLE()
    min_round_interval = min_round_interval_
    max_twap_window = max_twap_window_
    dispute_window = dispute_window_
    history_rounds = history_rounds_
    history_mask = history_rounds_ - 1
    self.admin = msg.sender
    self.min_stake = min_stake_
    self.slash_amount = slash_amount_
    self.prover_reward_bps = prover_reward_bps_
    log AdminTransferred(previous=empty(address), admin=msg.sender)


# --- rounds --------------------------------------------------------------------------------


@external
@nonreentrant
def transmit(report: Report, config: Config, observers: uint256):
    """
    @notice Store a round from a committee report. Anyone may send it (the
            round's leader usually does): everything is checked here.
    @dev Checks, in order (each with its own revert reason): feed has a
         committee, `config` is the current committee (its digest), round newer
         than the last and at most `MAX_ROUND_GAP` ahead, at least `2f+1`
         observations; each observation unexpired, not in the future, not older
         than `max_age`, sorted by price, by an active member at the position it
         names (an observation signature: canonical and recovering to that
         member), no member twice; the price and timestamp are the lower
         medians; the timestamp is `min_round_interval` after the last round's;
         bounds; deviation; at least `f+1` observations attested by report
         signatures; each of those canonical and recovering to its member.
    @param report The report (digest in `report_digest`).
    @param config The committee the report was built under.
    @param observers Byte `j` (least significant first): position, `REPORT_SIGNED` flag
           and parity of observation `j`'s signature (see POSITION_MASK).
    """
    # Written out here, not in an internal function: passing `report` and `config` to one
    # would copy them from calldata into memory, which costs more than the checks themselves.
    feed_id: bytes32 = report.feed_id
    head: Head = self._unpack_head(self._heads[feed_id])
    assert head.version != 0, "oracle: unknown feed"
    config_digest: bytes32 = keccak256(abi_encode(feed_id, config.version, config.f, config.members))
    assert config.version == head.version and config_digest == self._digests[feed_id][head.version], \
        "oracle: wrong config"
    last: Round = self._last_round(feed_id, head.count)
    round_id: uint256 = report.round
    self._check_round_number(round_id, head.count, last)
    f: uint256 = config.f
    k: uint256 = len(report.observations)
    # f <= 10 (3f+1 <= MAX_MEMBERS): 2f+1 cannot overflow.
    assert k >= unsafe_add(unsafe_add(f, f), 1), "oracle: too few observations"

    # Observations: an observation signature is checked here, a report signature after the
    # report digest is known; the medians are checked after the loop.
    separator: bytes32 = eip712._domain_separator()
    n: uint256 = len(config.members)
    removed: uint256 = head.removed
    max_age: uint256 = head.max_age
    t: uint256 = report.timestamp
    # k >= 3, so k - 1 cannot underflow.
    m: uint256 = unsafe_sub(k, 1) >> 1
    seen: uint256 = 0
    previous_price: uint256 = 0
    at_or_below: uint256 = 0
    at_or_above: uint256 = 0
    report_signed: uint256 = 0
    pending: uint256 = 0
    j: uint256 = 0
    # The `observationsHash` preimage: observation digests in report order, then their members.
    words: uint256[2 * MAX_MEMBERS] = empty(uint256[2 * MAX_MEMBERS])
    for o: ReportObservation in report.observations:
        packed: uint256 = o.packed
        price: uint256 = packed >> 128
        ts: uint256 = (packed >> 64) & U64_MASK
        assert block.timestamp <= packed & U64_MASK, "eip712: expired"
        assert ts <= block.timestamp, "oracle: future timestamp"
        # ts < 2**64 and max_age < 2**32: no overflow.
        assert unsafe_add(ts, max_age) >= block.timestamp, "oracle: stale observation"
        assert price >= previous_price, "oracle: observations not sorted"
        previous_price = price
        digest: bytes32 = keccak256(slice(abi_encode(EIP712_PREFIX, separator, keccak256(abi_encode(
            eip712.OBSERVATION_TYPEHASH, feed_id, round_id, price, ts, packed & U64_MASK))), 30, 66))
        # j < 31, so 8 * j < 248 stays inside the word.
        reference: uint256 = (observers >> unsafe_mul(j, 8)) & U8_MASK
        position: uint256 = reference & POSITION_MASK
        if reference & REPORT_SIGNED == 0:
            r: uint256 = o.r
            s: uint256 = o.s
            # The canonical checks of `eip712._recover`, in its order (`v` is 27 or 28 by construction).
            # 0 < r < n as one comparison: r - 1 wraps to 2**256 - 1 for r == 0.
            assert unsafe_sub(r, 1) < SECP256K1_N - 1, "eip712: bad r"
            assert s != 0, "eip712: bad s"
            assert s <= HALF_N, "eip712: high s"
            # reference < 256, so reference >> 7 is 0 or 1.
            signer: address = ecrecover(digest, unsafe_add(27, reference >> PARITY_SHIFT), r, s)
            assert signer != empty(address), "eip712: zero signer"
            assert position < n and (removed >> position) & 1 == 0 and \
                config.members[position] == convert(signer, uint256), "oracle: not a member"
            # k + j < 2 * MAX_MEMBERS: no overflow.
            words[unsafe_add(k, j)] = convert(signer, uint256)
        else:
            # Its signer is recovered from the report digest below.
            assert position < n and (removed >> position) & 1 == 0, "oracle: not a member"
            # k + j < 2 * MAX_MEMBERS: no overflow.
            words[unsafe_add(k, j)] = config.members[position]
            # Observation j signs the report: remember j (< 32, one byte) for the second pass.
            # At most 31 observations: no overflow, and 8 * report_signed < 248.
            pending |= j << unsafe_mul(report_signed, 8)
            report_signed = unsafe_add(report_signed, 1)
        bit: uint256 = 1 << position
        assert seen & bit == 0, "oracle: duplicate observation"
        seen |= bit
        # Counters stay below 32: unsafe additions cannot overflow.
        if ts <= t:
            at_or_below = unsafe_add(at_or_below, 1)
        if ts >= t:
            at_or_above = unsafe_add(at_or_above, 1)
        words[j] = convert(digest, uint256)
        j = unsafe_add(j, 1)
    assert report.price == report.observations[m].packed >> 128, "oracle: wrong median"
    # T is the lower median of k values iff at least m + 1 are <= T and at least k - m are >= T;
    # m < k, so k - m cannot underflow.
    assert at_or_below > m and at_or_above >= unsafe_sub(k, m), "oracle: wrong timestamp"

    self._check_next(feed_id, report.price, t, head, last)

    # Report signatures: each attests its signer's own observation (the digest binds it to its member).
    assert report_signed > f, "oracle: too few signatures"
    # `abi_encode` of a static array is its elements; the first 2k are the preimage.
    digest: bytes32 = self._report_digest(separator, config_digest, feed_id, round_id, report.price,
                                          t, keccak256(slice(abi_encode(words), 0, 64 * k)))
    for i: uint256 in range(report_signed, bound=MAX_MEMBERS):
        # Byte i of `pending` is the index of the i-th report-signed observation (in report order).
        j = (pending >> unsafe_mul(i, 8)) & U8_MASK
        o: ReportObservation = report.observations[j]
        # As above: the canonical checks of `eip712._recover`.
        assert unsafe_sub(o.r, 1) < SECP256K1_N - 1, "eip712: bad r"
        assert o.s != 0, "eip712: bad s"
        assert o.s <= HALF_N, "eip712: high s"
        # j < 31, so 8 * j < 248 stays inside the word; the reference's parity bit gives v.
        signer: address = ecrecover(digest, unsafe_add(27, (observers >> unsafe_add(unsafe_mul(j, 8),
                                                                                    PARITY_SHIFT)) & 1),
                                    o.r, o.s)
        assert signer != empty(address), "eip712: zero signer"
        # Its member (an active one's position, checked in the first pass) is in the preimage.
        # k + j < 2 * MAX_MEMBERS: no overflow.
        assert convert(words[unsafe_add(k, j)], address) == signer, "oracle: not a member"

    self._store(feed_id, head, round_id, report.price, t, 0)
    # round_id <= 2**64 - 1 (checked above) and t equals an observation's timestamp (< 2**64).
    log NewRound(feed_id=feed_id, round=convert(round_id, uint64), price=report.price,
                 timestamp=convert(t, uint64), transmitter=msg.sender)


@external
@nonreentrant
def post(feed_id: bytes32, round_id: uint64, price: uint256, timestamp: uint64):
    """
    @notice Store an optimistic round: the caller, an active member, states the
            round's price and timestamp on its own, backed by its oracle stake.
            It counts like any round unless it is proven wrong within
            `dispute_window` of `timestamp` (`OracleDisputes.challenge`), which
            slashes and bans the poster.
    @dev Checks, in order: feed has a committee, caller is an active member with
         at least `min_stake` of active oracle stake, round newer and at most
         `MAX_ROUND_GAP` ahead, timestamp not in the future, not older than
         `max_age`, `min_round_interval` after the last round's; bounds;
         deviation. No signature other than the transaction's.
    @param feed_id The feed.
    @param round_id The round (newer than the last stored one).
    @param price The price the poster states, in the feed's units.
    @param timestamp When it was observed (the round's time in the TWAP).
    """
    self._post(feed_id, round_id, price, timestamp)


@external
@view
def report_digest(config_digest: bytes32, report: Report, members: DynArray[address, MAX_MEMBERS]) -> bytes32:
    """
    @notice The EIP-712 digest members sign for `report` (in this hub's domain).
    @param config_digest The digest of the committee it is built under.
    @param report The report (the signatures it carries do not enter the digest).
    @param members The member of each observation, in report order.
    @return bytes32 `hashTypedData(Report(configDigest, feedId, round, price, timestamp, observationsHash))`
            with `observationsHash = keccak256(digest_1 ‖ … ‖ digest_k ‖ member_1 ‖ … ‖ member_k)`.
    """
    assert len(members) == len(report.observations), "oracle: one member per observation"
    separator: bytes32 = eip712._domain_separator()
    words: uint256[2 * MAX_MEMBERS] = empty(uint256[2 * MAX_MEMBERS])
    k: uint256 = len(members)
    j: uint256 = 0
    for o: ReportObservation in report.observations:
        words[j] = convert(self._observation_digest(separator, report.feed_id,
                                                    report.round, o.packed), uint256)
        # k + j < 2 * MAX_MEMBERS: no overflow.
        words[unsafe_add(k, j)] = convert(members[j], uint256)
        j = unsafe_add(j, 1)
    return self._report_digest(separator, config_digest, report.feed_id, report.round,
                               report.price, report.timestamp,
                               keccak256(slice(abi_encode(words), 0, 64 * k)))


# --- equivocation --------------------------------------------------------------------------


@external
@nonreentrant
def prove_equivocation(a: Statement, b: Statement) -> (uint256, uint256):
    """
    @notice Prove that one member stated two different observations for the
            same (feed, round), each by an `Observation` signature or by a
            signature over a report (which states the signer's own entry): the
            member's oracle stake is slashed by up to `slash_amount`,
            `prover_reward_bps` of what is taken goes to the caller, the member
            is banned and removed from the feed. One proof per (feed, round,
            member): a replay, with the same or other statements, reverts.
    @dev Expiry is not checked, nor whether the reports were ever stored or
         valid: a member signs only a report whose entry at its position is
         its own observation, so two different stated observations are a fault.
    @param a One statement.
    @param b Another statement of the same member for the same feed and round.
    @return (uint256, uint256) (slashed, reward) as moved by `Bonds`.
    """
    assert a.feed_id == b.feed_id and a.round == b.round, "oracle: not the same round"
    separator: bytes32 = eip712._domain_separator()
    member: address = empty(address)
    stated_a: bytes32 = empty(bytes32)
    member, stated_a = self._statement(separator, a)
    other: address = empty(address)
    stated_b: bytes32 = empty(bytes32)
    other, stated_b = self._statement(separator, b)
    assert stated_a != stated_b, "oracle: same observation"
    assert other == member, "oracle: different signers"
    return self._punish_equivocation(a.feed_id, a.round, member)


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


# --- dispute module ------------------------------------------------------------------------


@external
@nonreentrant
def set_round_status(feed_id: bytes32, index: uint256, disputed: bool, invalid: bool):
    """
    @notice Mark a stored round disputed (the TWAP refuses windows holding it)
            and/or invalid (the TWAP skips it). The dispute module only.
    @dev An invalid round never becomes valid again: the module only sets
         `invalid` on a proof or a decided dispute.
    @param feed_id The feed.
    @param index The round's position (`round_at`).
    @param disputed Whether a dispute about it is open.
    @param invalid Whether it was found wrong.
    """
    assert msg.sender == self.dispute_module, "oracle: not the dispute module"
    packed: uint256 = self._retained(feed_id, index)
    assert (packed >> STATUS_SHIFT) & STATUS_INVALID == 0, "oracle: round invalid"
    status: uint256 = 0
    if disputed:
        status |= STATUS_DISPUTED
    if invalid:
        status |= STATUS_INVALID
    clear: uint256 = (STATUS_DISPUTED | STATUS_INVALID) << STATUS_SHIFT
    self._rounds[feed_id][index & history_mask] = (packed & ~clear) | (status << STATUS_SHIFT)
    log RoundStatusChanged(feed_id=feed_id, index=index, round=convert(packed >> ROUND_SHIFT, uint64),
                           disputed=disputed, invalid=invalid)


@external
@nonreentrant
def ban_member(feed_id: bytes32, member: address):
    """
    @notice Ban `member` (it can never be put on a committee again) and remove
            it from `feed_id` if active. The dispute module only, for a member
            it slashed for a wrong round.
    @param feed_id The feed of the wrong round.
    @param member The member at fault.
    """
    assert msg.sender == self.dispute_module, "oracle: not the dispute module"
    self.is_banned[member] = True
    if self._member_slot[feed_id][member] != 0:
        self._remove_member(feed_id, member, True)


# --- administration ------------------------------------------------------------------------


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
    @param max_deviation_bps Largest move from the previous valid round; 0 = unchecked. A
           circuit breaker: after a real move beyond it the feed halts until the admin widens it.
    @param max_age Oldest observation a report may carry, seconds; at most `dispute_window`.
    @param max_staleness Seconds after the last round at which the feed is stale.
    """
    self._check_admin()
    assert min_price <= max_price and max_price != 0 and max_price <= MAX_PRICE, \
        "oracle: bad price bounds"
    # max_age <= dispute_window: a TWAP final for disputes is final for late reports too.
    assert max_age != 0 and max_age <= dispute_window, "oracle: bad max age"
    assert max_staleness != 0 and max_staleness <= MAX_WINDOW, "oracle: bad max staleness"
    # A deviation limit relative to a zero price would freeze the feed at zero.
    assert max_deviation_bps == 0 or min_price != 0, "oracle: deviation needs a positive min price"
    # At most 100x: keeps `last_price * max_deviation_bps` far inside 256 bits.
    assert max_deviation_bps <= MAX_DEVIATION_BPS, "oracle: bad deviation"
    head: Head = self._unpack_head(self._heads[feed_id])
    head.max_deviation_bps = max_deviation_bps
    head.max_age = max_age
    head.max_staleness = max_staleness
    self._heads[feed_id] = self._pack_head(head)
    self._limits[feed_id] = min_price | (max_price << 128)
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
    assert self._limits[feed_id] != 0, "oracle: unknown feed"
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
    head: Head = self._unpack_head(self._heads[feed_id])
    version: uint256 = head.version + 1
    assert version <= MAX_VERSION, "oracle: too many versions"
    digest: bytes32 = keccak256(abi_encode(feed_id, version, f, members))
    self._members[feed_id] = members
    self._digests[feed_id][version] = digest
    head.version = version
    head.f = f
    head.removed = 0
    self._heads[feed_id] = self._pack_head(head)
    log CommitteeSet(feed_id=feed_id, version=version, config_digest=digest, f=f, members=members)


@external
@nonreentrant
def set_dispute_module(module: address):
    """
    @notice Register the `OracleDisputes` module that may mark rounds disputed
            or invalid and ban members. Admin only.
    @param module The module (zero to switch disputes off).
    """
    self._check_admin()
    self.dispute_module = module
    log DisputeModuleSet(module=module)


@external
@nonreentrant
def set_slashing(slash_amount_: uint256, prover_reward_bps_: uint256):
    """
    @notice Set the stake taken per proven fault and the prover's share. Admin only.
    @param slash_amount_ Token base units taken per member and proven fault.
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
            set and on every optimistic post; members below it can be ejected
            by anyone). Admin only.
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


# --- views ---------------------------------------------------------------------------------


@external
@view
def twap(feed_id: bytes32, start: uint256, end: uint256, cap: uint256) -> uint256:
    """
    @notice Time-weighted average price of the valid rounds stored in
            `[start, end]`, clamped to `[0, cap]`, for expiry settlement.
            Valid round `i` (timestamp `t_i`) weighs `t_{i+1} - t_i` up to the
            next valid round, the last one `end - t_last`; the result is
            `floor(sum(p_i * w_i) / sum(w_i))`, or the last valid price if every
            weight is zero. Rounds found invalid are skipped (the price before
            them holds).
    @dev Settlement only: exits never call this, so a stale feed blocks
         settlement of an expiry, never an exit. Reverts `"oracle: window not
         final"` until `dispute_window` seconds after `end` (until then a late
         report could still land in the window, or a round in it be disputed),
         `"oracle: no rounds in window"` when no round is at or before `end`,
         `"oracle: window overwritten"` when the round at or before `end`, or
         the one before the window's first, is no longer readable (the ring
         keeps the last `history_rounds`: a window is readable until at least
         `start + (history_rounds - 1) * min_round_interval`), `"oracle:
         stale"` when the last round at or before `end` is more than
         `max_staleness` older than `end`, `"oracle: window under dispute"`
         while a round in the window is disputed, `"oracle: no rounds in
         window"` when no valid round lies in the window. Loop bound: a window
         is at most `max_twap_window` seconds and rounds are
         `min_round_interval` apart, so at most `MAX_TWAP_ROUNDS` iterations.
    @param feed_id The feed.
    @param start Window start, unix seconds (inclusive).
    @param end Window end, unix seconds (inclusive), more than `dispute_window` before the block.
    @param cap The expiry's settlement cap.
    @return uint256 The clamped TWAP, in the feed's price units.
    """
    return self._twap(feed_id, start, end, cap)


@external
@view
def latest(feed_id: bytes32) -> RoundData:
    """
    @notice The last stored round, fresh, valid or not (all zeros if none).
    @param feed_id The feed.
    @return RoundData (round, price, timestamp).
    """
    count: uint256 = self._heads[feed_id] & U64_MASK
    if count == 0:
        return empty(RoundData)
    # count >= 1 here, so count - 1 cannot underflow.
    return self._round_data(self._rounds[feed_id][unsafe_sub(count, 1) & history_mask])


@external
@view
def fresh_price(feed_id: bytes32) -> uint256:
    """
    @notice The last stored price, if the feed is not stale and that round is
            neither disputed nor invalid. An optimistic round still in its
            challenge period counts: this is a fresh price, not a final one.
    @dev Reverts `"oracle: stale"` when the last round is more than
         `max_staleness` old or there is none, `"oracle: last round disputed"`
         when it is disputed or invalid. Exits never call this.
    @param feed_id The feed.
    @return uint256 The price.
    """
    head: uint256 = self._heads[feed_id]
    count: uint256 = head & U64_MASK
    assert count != 0, "oracle: stale"
    last: Round = self._unpack_round(self._rounds[feed_id][(count - 1) & history_mask])
    assert block.timestamp <= last.timestamp + ((head >> HEAD_STALENESS_SHIFT) & U32_MASK), \
        "oracle: stale"
    assert last.status & (STATUS_DISPUTED | STATUS_INVALID) == 0, "oracle: last round disputed"
    return last.price


@external
@view
def round(feed_id: bytes32, round_id: uint64) -> RoundData:
    """
    @notice A stored round by its round number.
    @dev Binary search over the feed's readable rounds (at most 64 steps); reverts
         `"oracle: unknown round"` if that round was never stored or was overwritten.
    @param feed_id The feed.
    @param round_id The round number.
    @return RoundData (round, price, timestamp).
    """
    count: uint256 = self._heads[feed_id] & U64_MASK
    lo: uint256 = self._oldest(count)
    hi: uint256 = count
    # Invariant: rounds below `lo` have numbers below `round_id` (or are overwritten), rounds at or
    # above `hi` at or above it.
    for _: uint256 in range(MAX_SEARCH_STEPS):
        if lo >= hi:
            break
        # lo + hi < 2 * count < 2**65: the addition cannot overflow.
        mid: uint256 = unsafe_add(lo, hi) >> 1
        if (self._rounds[feed_id][mid & history_mask] >> ROUND_SHIFT) < convert(round_id, uint256):
            lo = mid + 1
        else:
            hi = mid
    assert lo < count, "oracle: unknown round"
    found: RoundData = self._round_data(self._rounds[feed_id][lo & history_mask])
    assert found.round == round_id, "oracle: unknown round"
    return found


@external
@view
def round_at(feed_id: bytes32, index: uint256) -> RoundData:
    """
    @notice The `index`-th stored round of a feed (0 = oldest).
    @param feed_id The feed.
    @dev Reverts `"oracle: unknown round"` at or past `round_count`, `"oracle: round
         overwritten"` below `round_count - history_rounds`.
    @param index Position, below `round_count(feed_id)`.
    @return RoundData (round, price, timestamp).
    """
    return self._round_data(self._retained(feed_id, index))


@external
@view
def round_state(feed_id: bytes32, index: uint256) -> RoundState:
    """
    @notice Everything stored about the `index`-th round of a feed: its data,
            the committee version it was stored under, how it was stored
            (optimistic, and by whom) and its dispute status.
    @param feed_id The feed.
    @dev Reverts like `round_at` for an index never stored or overwritten.
    @param index Position, below `round_count(feed_id)`.
    @return RoundState The round; `poster` is a committee position (optimistic rounds only).
    """
    r: Round = self._unpack_round(self._retained(feed_id, index))
    return RoundState(round=convert(r.round, uint64), price=r.price,
                      timestamp=convert(r.timestamp, uint64), version=r.version,
                      optimistic=r.status & STATUS_OPTIMISTIC != 0,
                      disputed=r.status & STATUS_DISPUTED != 0,
                      invalid=r.status & STATUS_INVALID != 0, poster=r.poster)


@external
@view
def round_count(feed_id: bytes32) -> uint256:
    """
    @notice How many rounds a feed has stored (the last `history_rounds` of them readable).
    @param feed_id The feed.
    @return uint256 The count.
    """
    return self._heads[feed_id] & U64_MASK


@external
@view
def get_feed(feed_id: bytes32) -> Feed:
    """
    @notice A feed's configuration, committee version and digest, round count,
            and the positions removed from its current committee (a bitmap).
    @param feed_id The feed.
    @return Feed The stored configuration.
    """
    head: Head = self._unpack_head(self._heads[feed_id])
    limits: uint256 = self._limits[feed_id]
    return Feed(min_price=limits & PRICE_MASK, max_price=limits >> 128,
                max_deviation_bps=head.max_deviation_bps, max_age=head.max_age,
                max_staleness=head.max_staleness, f=head.f, version=head.version,
                config_digest=self._digests[feed_id][head.version], round_count=head.count,
                removed=head.removed)


@external
@view
def config_digest(feed_id: bytes32, version: uint256) -> bytes32:
    """
    @notice The config digest of one committee version of a feed (zero if none).
    @param feed_id The feed.
    @param version The version, from 1.
    @return bytes32 `keccak256(abi_encode(feed_id, version, f, members))`.
    """
    return self._digests[feed_id][version]


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


# --- internals: reports --------------------------------------------------------------------


@internal
@view
def _check_round_number(round_id: uint256, count: uint256, last: Round):
    """
    @dev A new round is newer than the last stored one and at most `MAX_ROUND_GAP` ahead of it
         (of zero for a feed's first round).
    @param round_id The new round number.
    @param count The feed's round count.
    @param last The last stored round (zeros if none).
    """
    if count != 0:
        assert round_id > last.round, "oracle: old round"
    # last.round < 2**64, so the sum cannot overflow; a round number is a uint64.
    assert round_id <= unsafe_add(last.round, MAX_ROUND_GAP) and round_id <= U64_MASK, \
        "oracle: round too far ahead"


@internal
@view
def _check_next(feed_id: bytes32, price: uint256, timestamp: uint256, head: Head, last: Round):
    """
    @dev The checks a new round makes against the last one and the feed's
         limits: `min_round_interval` after it, inside the bounds, within the
         deviation limit of the last round (unless that one was found invalid).
    @param feed_id The feed.
    @param price The new price.
    @param timestamp The new timestamp.
    @param head The feed's head.
    @param last The last stored round (zeros if none).
    """
    if head.count != 0:
        assert timestamp >= last.timestamp + min_round_interval, "oracle: too soon"
    limits: uint256 = self._limits[feed_id]
    assert price >= limits & PRICE_MASK and price <= limits >> 128, "oracle: price out of bounds"
    if head.count != 0 and head.max_deviation_bps != 0 and last.status & STATUS_INVALID == 0:
        move: uint256 = max(price, last.price) - min(price, last.price)
        assert move * BPS <= last.price * head.max_deviation_bps, "oracle: deviation too large"


@internal
def _store(feed_id: bytes32, head: Head, round_id: uint256, price: uint256, timestamp: uint256,
           status: uint256):
    """
    @dev Appends a round in its ring slot and bumps the count. Overwriting a disputed
         round reverts: its dispute must be resolved first (anyone may, once `Assertions`
         can settle it), so a dispute never loses its round.
    @param feed_id The feed.
    @param head The feed's head (count and version used, count written back).
    @param round_id The round number.
    @param price The price (below 2**128: within the feed's bounds).
    @param timestamp The timestamp (below 2**40: at most block.timestamp).
    @param status Status bits (poster included) of an optimistic round, 0 otherwise.
    """
    slot: uint256 = head.count & history_mask
    # A slot is reused only after `history_rounds` rounds; until then it reads zero (no status).
    assert (self._rounds[feed_id][slot] >> STATUS_SHIFT) & STATUS_DISPUTED == 0, \
        "oracle: overwrites a disputed round"
    self._rounds[feed_id][slot] = (round_id << ROUND_SHIFT) | (head.version << VERSION_SHIFT) | \
        (status << STATUS_SHIFT) | (timestamp << TIME_SHIFT) | price
    head.count += 1
    self._heads[feed_id] = self._pack_head(head)


@internal
def _post(feed_id: bytes32, round_id_: uint64, price: uint256, timestamp_: uint64):
    """
    @dev See `post`.
    @param feed_id The feed.
    @param round_id_ The round.
    @param price The stated price.
    @param timestamp_ The stated timestamp.
    """
    head: Head = self._unpack_head(self._heads[feed_id])
    assert head.version != 0, "oracle: unknown feed"
    slot: uint256 = self._member_slot[feed_id][msg.sender]
    assert slot != 0, "oracle: not a member"
    assert self._stake_of(msg.sender) >= self.min_stake, "oracle: insufficient stake"
    last: Round = self._last_round(feed_id, head.count)
    round_id: uint256 = convert(round_id_, uint256)
    self._check_round_number(round_id, head.count, last)
    timestamp: uint256 = convert(timestamp_, uint256)
    assert timestamp <= block.timestamp, "oracle: future timestamp"
    assert timestamp + head.max_age >= block.timestamp, "oracle: stale observation"
    self._check_next(feed_id, price, timestamp, head, last)
    # slot - 1 < 31 fits the 5 poster bits.
    self._store(feed_id, head, round_id, price, timestamp,
                STATUS_OPTIMISTIC | (unsafe_sub(slot, 1) << POSTER_SHIFT))
    log OptimisticRound(feed_id=feed_id, round=round_id_, price=price, timestamp=timestamp_,
                        poster=msg.sender)


@internal
@pure
def _observation_digest(separator: bytes32, feed_id: bytes32, round_id: uint256, packed: uint256) -> bytes32:
    """
    @dev The EIP-712 digest of a packed report observation as the member signed it.
    @param separator The hub's domain separator.
    @param feed_id The report's feed.
    @param round_id The report's round.
    @param packed `price << 128 | timestamp << 64 | expiry`.
    @return bytes32 The `Observation` digest.
    """
    return keccak256(slice(abi_encode(EIP712_PREFIX, separator, keccak256(abi_encode(
        eip712.OBSERVATION_TYPEHASH, feed_id, round_id, packed >> 128, (packed >> 64) & U64_MASK,
        packed & U64_MASK))), 30, 66))


@internal
@pure
def _report_digest(
    separator: bytes32,
    config_digest: bytes32,
    feed_id: bytes32,
    round_id: uint256,
    price: uint256,
    timestamp: uint256,
    observations_hash: bytes32,
) -> bytes32:
    """
    @dev The EIP-712 digest of a report in this hub's domain.
    @param separator The hub's domain separator.
    @param config_digest The committee's digest.
    @param feed_id The feed.
    @param round_id The round.
    @param price The price.
    @param timestamp The timestamp.
    @param observations_hash Its `observationsHash`.
    @return bytes32 The digest members sign.
    """
    return keccak256(slice(abi_encode(EIP712_PREFIX, separator, keccak256(abi_encode(
        REPORT_TYPEHASH, config_digest, feed_id, round_id, price, timestamp, observations_hash))),
        30, 66))


# --- internals: equivocation, members ------------------------------------------------------


@internal
def _statement(separator: bytes32, st: Statement) -> (address, bytes32):
    """
    @dev Who made a statement, and the digest of the observation it states.
    @param separator The hub's domain separator.
    @param st The statement.
    @return (address, bytes32) (signer, stated observation digest).
    """
    round_id: uint256 = convert(st.round, uint256)
    if len(st.members) == 0:
        digest: bytes32 = self._observation_digest(separator, st.feed_id, round_id, st.observation)
        return eip712._recover(digest, st.signature), digest
    k: uint256 = len(st.members)
    assert len(st.digests) == k and st.index < k, "oracle: bad statement"
    words: uint256[2 * MAX_MEMBERS] = empty(uint256[2 * MAX_MEMBERS])
    for j: uint256 in range(k, bound=MAX_MEMBERS):
        words[j] = convert(st.digests[j], uint256)
        # k + j < 2 * MAX_MEMBERS: no overflow.
        words[unsafe_add(k, j)] = convert(st.members[j], uint256)
    report: bytes32 = self._report_digest(separator, st.config_digest, st.feed_id, round_id, st.price,
                                          convert(st.timestamp, uint256),
                                          keccak256(slice(abi_encode(words), 0, 64 * k)))
    signer: address = eip712._recover(report, st.signature)
    assert st.members[st.index] == signer, "oracle: not the signer's observation"
    return signer, st.digests[st.index]


@internal
def _punish_equivocation(feed_id: bytes32, round_id: uint64, member: address) -> (uint256, uint256):
    """
    @dev Records a proven equivocation of `member` in (feed, round), removes and
         bans it, then slashes through `Bonds` (the only external call, last).
    @param feed_id The feed.
    @param round_id The round.
    @param member The member at fault.
    @return (uint256, uint256) (slashed, reward).
    """
    assert self._ever_member[feed_id][member], "oracle: not a member"
    key: bytes32 = self._offence_key(feed_id, round_id, member)
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
    log EquivocationProven(feed_id=feed_id, round=round_id, member=member, prover=msg.sender,
                           slashed=slashed, reward=paid)
    return slashed, paid


@internal
def _remove_member(feed_id: bytes32, member: address, banned: bool):
    """
    @dev Stops counting `member`'s observations and signatures for the feed:
         clears its slot and marks its position removed in the head.
    @param feed_id The feed.
    @param member An active member.
    @param banned Whether it is removed for a proven fault.
    """
    # slot >= 1 for an active member (the callers check), so slot - 1 cannot underflow.
    position: uint256 = unsafe_sub(self._member_slot[feed_id][member], 1)
    self._member_slot[feed_id][member] = 0
    self._heads[feed_id] |= 1 << (HEAD_REMOVED_SHIFT + position)
    log MemberRemoved(feed_id=feed_id, member=member, banned=banned)


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
def _offence_key(feed_id: bytes32, round_id: uint64, member: address) -> bytes32:
    """
    @dev The replay key of an equivocation proof.
    @param feed_id The feed.
    @param round_id The round.
    @param member The member.
    @return bytes32 keccak256(abi_encode(feed, round, member)).
    """
    return keccak256(abi_encode(feed_id, round_id, member))


# --- internals: storage layout -------------------------------------------------------------


@internal
@pure
def _unpack_head(packed: uint256) -> Head:
    """
    @dev Unpacks a feed's head slot (see HEAD_VERSION_SHIFT).
    @param packed The slot.
    @return Head The fields.
    """
    return Head(
        count=packed & U64_MASK,
        version=(packed >> HEAD_VERSION_SHIFT) & U16_MASK,
        f=(packed >> HEAD_F_SHIFT) & U8_MASK,
        removed=(packed >> HEAD_REMOVED_SHIFT) & U32_MASK,
        max_deviation_bps=(packed >> HEAD_DEVIATION_SHIFT) & U24_MASK,
        max_age=(packed >> HEAD_AGE_SHIFT) & U32_MASK,
        max_staleness=(packed >> HEAD_STALENESS_SHIFT) & U32_MASK,
    )


@internal
@pure
def _pack_head(head: Head) -> uint256:
    """
    @dev Packs a feed's head; every field is within its width (checked where it is set).
    @param head The fields.
    @return uint256 The slot.
    """
    return head.count | (head.version << HEAD_VERSION_SHIFT) | (head.f << HEAD_F_SHIFT) | \
        (head.removed << HEAD_REMOVED_SHIFT) | (head.max_deviation_bps << HEAD_DEVIATION_SHIFT) | \
        (head.max_age << HEAD_AGE_SHIFT) | (head.max_staleness << HEAD_STALENESS_SHIFT)


@internal
@pure
def _unpack_round(packed: uint256) -> Round:
    """
    @dev Unpacks a stored round (see ROUND_SHIFT).
    @param packed The slot.
    @return Round The fields.
    """
    status: uint256 = (packed >> STATUS_SHIFT) & U8_MASK
    return Round(
        round=packed >> ROUND_SHIFT,
        price=packed & PRICE_MASK,
        timestamp=(packed >> TIME_SHIFT) & TIME_MASK,
        version=(packed >> VERSION_SHIFT) & U16_MASK,
        status=status & 7,
        poster=status >> POSTER_SHIFT,
    )


@internal
@pure
def _round_data(packed: uint256) -> RoundData:
    """
    @dev The public view of a stored round.
    @param packed The slot.
    @return RoundData (round, price, timestamp).
    """
    return RoundData(
        round=convert(packed >> ROUND_SHIFT, uint64),
        price=packed & PRICE_MASK,
        timestamp=convert((packed >> TIME_SHIFT) & TIME_MASK, uint64),
    )


@internal
@view
def _last_round(feed_id: bytes32, count: uint256) -> Round:
    """
    @dev The last stored round of a feed (zeros if none).
    @param feed_id The feed.
    @param count Its round count.
    @return Round The round.
    """
    if count == 0:
        return empty(Round)
    # count >= 1 here, so count - 1 cannot underflow.
    return self._unpack_round(self._rounds[feed_id][unsafe_sub(count, 1) & history_mask])


@internal
@view
def _oldest(count: uint256) -> uint256:
    """
    @dev The index of a feed's oldest readable round.
    @param count The feed's round count.
    @return uint256 `max(0, count - history_rounds)`.
    """
    if count > history_rounds:
        # count > history_rounds: no underflow.
        return unsafe_sub(count, history_rounds)
    return 0


@internal
@view
def _retained(feed_id: bytes32, index: uint256) -> uint256:
    """
    @dev The packed round `index` of a feed, if stored and not overwritten.
    @param feed_id The feed.
    @param index The round's position.
    @return uint256 Its slot.
    """
    count: uint256 = self._heads[feed_id] & U64_MASK
    assert index < count, "oracle: unknown round"
    assert index >= self._oldest(count), "oracle: round overwritten"
    return self._rounds[feed_id][index & history_mask]


# --- internals: TWAP -----------------------------------------------------------------------


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
    assert self._limits[feed_id] != 0, "oracle: unknown feed"
    assert start <= end, "oracle: bad window"
    assert end - start <= max_twap_window, "oracle: window too long"
    # A round stored at block time B has a timestamp of at least B - max_age >= B - dispute_window,
    # and can be disputed until its timestamp + dispute_window: once block.timestamp > end +
    # dispute_window no round can land in the window or be disputed there. The TWAP is final.
    assert end + dispute_window < block.timestamp, "oracle: window not final"
    head: uint256 = self._heads[feed_id]
    count: uint256 = head & U64_MASK
    oldest: uint256 = self._oldest(count)
    hi: uint256 = 0
    if count != 0:
        hi = self._last_at_or_before(feed_id, oldest, count, end)
    # `hi` is one past the last readable round at or before `end`: `oldest` means none is readable.
    assert hi != 0, "oracle: no rounds in window"
    assert hi != oldest, "oracle: window overwritten"
    # hi > oldest >= 0, so hi - 1 cannot underflow.
    last_time: uint256 = (self._rounds[feed_id][unsafe_sub(hi, 1) & history_mask] >> TIME_SHIFT) & \
        TIME_MASK
    assert end <= last_time + ((head >> HEAD_STALENESS_SHIFT) & U32_MASK), "oracle: stale"

    weighted: uint256 = 0
    total: uint256 = 0
    next_time: uint256 = end
    latest_price: uint256 = 0
    found: bool = False
    index: uint256 = hi
    for _: uint256 in range(MAX_TWAP_ROUNDS):
        if index == oldest:
            # Every readable round back to the oldest is in the window; the one before it may be
            # too, and it was overwritten.
            assert oldest == 0, "oracle: window overwritten"
            break
        # index > oldest >= 0 here, so index - 1 cannot underflow.
        index = unsafe_sub(index, 1)
        r: Round = self._unpack_round(self._rounds[feed_id][index & history_mask])
        if r.timestamp < start:
            break
        assert r.status & STATUS_DISPUTED == 0, "oracle: window under dispute"
        if r.status & STATUS_INVALID != 0:
            continue
        if not found:
            found = True
            latest_price = r.price
        # Stored timestamps strictly increase and `next_time` starts at `end >= t`, so no underflow.
        weight: uint256 = unsafe_sub(next_time, r.timestamp)
        weighted += r.price * weight
        total += weight
        next_time = r.timestamp
    assert found, "oracle: no rounds in window"
    price: uint256 = latest_price
    if total != 0:
        price = weighted // total
    return min(price, cap)


@internal
@view
def _last_at_or_before(feed_id: bytes32, oldest: uint256, count: uint256, time: uint256) -> uint256:
    """
    @dev One past the index of the last readable round with timestamp `<= time`
         (`oldest` if none): the latest round first (the usual case at
         settlement), then a binary search over the readable rounds.
    @param feed_id The feed.
    @param oldest The index of its oldest readable round.
    @param count The feed's round count (at least 1).
    @param time The cut-off, unix seconds.
    @return uint256 The number of rounds at or before `time`.
    """
    if (self._rounds[feed_id][(count - 1) & history_mask] >> TIME_SHIFT) & TIME_MASK <= time:
        return count
    lo: uint256 = oldest
    hi: uint256 = count - 1
    # Invariant: readable rounds below `lo` are at or before `time`; rounds at or above `hi` are after it.
    for _: uint256 in range(MAX_SEARCH_STEPS):
        if lo >= hi:
            break
        # lo + hi < 2 * count < 2**65: the addition cannot overflow.
        mid: uint256 = unsafe_add(lo, hi) >> 1
        if (self._rounds[feed_id][mid & history_mask] >> TIME_SHIFT) & TIME_MASK > time:
            hi = mid
        else:
            lo = mid + 1
    return lo
