# pragma version ~=0.4.3
"""
@title OracleDisputes
@custom:contract-name OracleDisputes
@license MIT
@notice Proving stored oracle rounds wrong (DESIGN §8, §9): the dispute module
        `OracleHub` registers, the only contract that marks its rounds disputed
        or invalid. Two paths, both open for `dispute_window` seconds after a
        round's timestamp:
        - `challenge` (optimistic rounds, by proof): signed observations of
          `2f+1` distinct members for the round's (feed, round) all lie
          strictly above, or all strictly below, its price, or all strictly
          after, or all strictly before, its timestamp. Against an honest
          poster (the lower medians of `2f+1` observations) no such set exists
          unless a member equivocated. The round becomes invalid at once, the
          poster is slashed `slash_amount` (the challenger gets
          `prover_reward_bps` of it) and banned.
        - `dispute_round` (any round, by arbitration): the disputer's bond of
          exactly `dispute_bond` goes through this module into `Assertions` as
          the claim "this round is wrong" with liveness `dispute_liveness`; the
          round is disputed (the settlement TWAP waits). Anyone may counter it
          in `Assertions` (an equal bond), which sends it to `Arbitration`.
          `resolve_dispute` once `Assertions` can settle it: truthful -> the
          round is invalid, every accused member (the report's signers, or the
          optimistic poster) is slashed `slash_amount` with `prover_reward_bps`
          of it for the disputer, and banned; otherwise the round stands. The
          disputer's share of the bonds and its rewards are credited here and
          paid by `withdraw` (pull: no receiver can block a resolution).
        Slashing parameters are the hub's; this module is a registered slasher
        for the oracle role in `Bonds`. See docs/protocol.md, "Oracle".
"""

from ethereum.ercs import IERC20
from interfaces import IArbitration
from interfaces import IAssertions
from interfaces import IBonds
from interfaces import IOracleHub


MAX_MEMBERS: constant(uint256) = 31
BPS: constant(uint256) = 10_000
U64_MASK: constant(uint256) = 2**64 - 1
U8_MASK: constant(uint256) = 2**8 - 1
POSITION_MASK: constant(uint256) = 31
PARITY_SHIFT: constant(uint256) = 7
EIP712_PREFIX: constant(uint256) = 6401
SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

# @dev The hub's EIP-712 types (`eip712.OBSERVATION_TYPEHASH`, `OracleHub.REPORT_TYPEHASH`).
OBSERVATION_TYPEHASH: constant(bytes32) = keccak256(
    "Observation(bytes32 feedId,uint64 round,uint256 price,uint64 timestamp,uint64 expiry)"
)
REPORT_TYPEHASH: constant(bytes32) = keccak256(
    "Report(bytes32 configDigest,bytes32 feedId,uint64 round,uint256 price,uint64 timestamp,bytes32 observationsHash)"
)
# @dev What a round dispute asserts: round `index` of `feedId` on `hub`, stored as
#      (round, price, timestamp), is wrong.
ROUND_CLAIM_TYPEHASH: public(constant(bytes32)) = keccak256(
    "RoundWrong(address hub,bytes32 feedId,uint256 index,uint64 round,uint256 price,uint64 timestamp)"
)


# @dev As in `OracleHub`: a signature without `v`, and the committee a message names.
struct Signature:
    r: uint256
    s: uint256


struct Config:
    version: uint256
    f: uint256
    members: DynArray[address, MAX_MEMBERS]


# @dev One dispute per round, kept after resolution (a round is disputed at most once).
struct Dispute:
    assertion_id: uint256
    disputer: address
    version: uint256
    accused: uint256
    resolved: bool
    invalid: bool


event RoundChallenged:
    feed_id: indexed(bytes32)
    index: indexed(uint256)
    poster: indexed(address)
    challenger: address
    slashed: uint256
    reward: uint256

event RoundDisputed:
    feed_id: indexed(bytes32)
    index: indexed(uint256)
    assertion_id: indexed(uint256)
    disputer: address
    claim: bytes32
    version: uint256
    accused: uint256

event DisputeResolved:
    feed_id: indexed(bytes32)
    index: indexed(uint256)
    assertion_id: indexed(uint256)
    invalid: bool
    slashed: uint256
    reward: uint256
    bond_returned: uint256

event MemberSlashed:
    feed_id: indexed(bytes32)
    index: indexed(uint256)
    member: indexed(address)
    slashed: uint256
    reward: uint256

event Withdrawn:
    who: indexed(address)
    amount: uint256


hub: public(immutable(address))
assertions: public(immutable(address))
bonds: public(immutable(address))
token: public(immutable(address))
oracle_role: public(immutable(uint8))
dispute_window: public(immutable(uint256))
dispute_bond: public(immutable(uint256))
dispute_liveness: public(immutable(uint256))

# @dev Credited to disputers (their bond share, their slashing rewards), paid by `withdraw`.
owed: public(HashMap[address, uint256])
total_owed: public(uint256)
_disputes: HashMap[bytes32, HashMap[uint256, Dispute]]


@deploy
def __init__(hub_: address, assertions_: address, dispute_bond_: uint256, dispute_liveness_: uint256):
    """
    @notice Create the module; the hub's admin then registers it
            (`OracleHub.set_dispute_module`) and `Bonds` makes it a slasher
            for the oracle role.
    @dev Checks that stake a dispute can slash is still in `Bonds` when the
         dispute resolves: a round disputed at the end of its window resolves
         at the latest `dispute_liveness + commit + reveal` later.
    @param hub_ The `OracleHub`.
    @param assertions_ The `Assertions` registry (bonds in the same token as `Bonds`).
    @param dispute_bond_ The exact bond of a round dispute, at least `Assertions.min_bond`.
    @param dispute_liveness_ The exact liveness of a round dispute, at least `Assertions.min_liveness`.
    """
    assert hub_ != empty(address) and assertions_ != empty(address), "oracle: zero address"
    hub = hub_
    assertions = assertions_
    token = staticcall IAssertions(assertions_).token()
    bonds = staticcall IOracleHub(hub_).bonds()
    assert staticcall IBonds(bonds).token() == token, "oracle: bond token mismatch"
    oracle_role = staticcall IOracleHub(hub_).oracle_role()
    dispute_window = staticcall IOracleHub(hub_).dispute_window()
    assert dispute_bond_ >= staticcall IAssertions(assertions_).min_bond(), "oracle: bad dispute bond"
    assert dispute_liveness_ >= staticcall IAssertions(assertions_).min_liveness(), \
        "oracle: bad dispute liveness"
    arbitration: address = staticcall IAssertions(assertions_).arbitration()
    latest: uint256 = dispute_window + dispute_liveness_ + \
        staticcall IArbitration(arbitration).commit_period() + \
        staticcall IArbitration(arbitration).reveal_period()
    assert staticcall IBonds(bonds).unbonding_delay() > latest, "oracle: unbonding delay too short"
    dispute_bond = dispute_bond_
    dispute_liveness = dispute_liveness_


# --- optimistic rounds ---------------------------------------------------------------------


@external
@nonreentrant
def challenge(
    feed_id: bytes32,
    index: uint256,
    config: Config,
    observations: DynArray[uint256, MAX_MEMBERS],
    signatures: DynArray[Signature, MAX_MEMBERS],
    observers: uint256,
) -> (uint256, uint256):
    """
    @notice Prove an optimistic round wrong: `2f+1` distinct members' signed
            observations for its (feed, round) lie strictly on one side of its
            price or of its timestamp. The round is invalid from now on, its
            poster is slashed (the caller gets `prover_reward_bps` of it) and banned.
    @dev Checks, in order: the round is optimistic, not invalid, not disputed,
         within `dispute_window` of its timestamp; `config` is the committee it
         was stored under; at least `2f+1` observations, one signature each;
         each a canonical signature by the member at the position it names, no
         member twice (expiry is not checked: an observation is evidence here);
         they disagree with the round.
    @param feed_id The feed.
    @param index The round's position in the hub.
    @param config The committee the round was stored under (its version).
    @param observations `price << 128 | timestamp << 64 | expiry` each.
    @param signatures One per observation.
    @param observers Byte `j`: position and parity of observation `j`'s signer.
    @return (uint256, uint256) (slashed, reward) as moved by `Bonds`.
    """
    return self._challenge(feed_id, index, config, observations, signatures, observers)


# --- round disputes ------------------------------------------------------------------------


@external
@nonreentrant
def dispute_round(
    feed_id: bytes32,
    index: uint256,
    config: Config,
    observations_hash: bytes32,
    signatures: DynArray[Signature, MAX_MEMBERS],
    signers: uint256,
) -> uint256:
    """
    @notice Dispute a stored round: assert through `Assertions` (bond
            `dispute_bond` pulled from the caller, liveness `dispute_liveness`)
            that it is wrong. The round is disputed until `resolve_dispute`.
    @dev Checks, in order: not disputed before, the round exists and is not
         invalid, within `dispute_window` of its timestamp; for a fully
         verified round, the evidence of who vouched for it: `config` is the
         committee it was stored under and `signatures` (at least `f+1`,
         distinct members, canonical) sign the report digest of its (round,
         price, timestamp) with `observations_hash`. Those members are the
         accused; for an optimistic round, the poster (evidence ignored).
    @param feed_id The feed.
    @param index The round's position in the hub.
    @param config The committee the round was stored under.
    @param observations_hash The `observationsHash` of the report that stored it.
    @param signatures Member signatures over that report.
    @param signers Byte `i`: position and parity of signature `i`'s signer.
    @return uint256 The assertion id.
    """
    return self._dispute_round(feed_id, index, config, observations_hash, signatures, signers)


@external
@nonreentrant
def resolve_dispute(feed_id: bytes32, index: uint256, config: Config) -> bool:
    """
    @notice Apply the outcome of a round dispute once `Assertions` can settle
            it (settling it first if nobody has). Truthful: the round becomes
            invalid and every accused member is slashed and banned. Otherwise
            the round stands, for good. Anyone may call it, once.
    @param feed_id The feed.
    @param index The round's position in the hub.
    @param config The committee the round was stored under (read only when the
           round is found wrong, to name the accused).
    @return bool Whether the round was found wrong.
    """
    return self._resolve_dispute(feed_id, index, config)


@external
@nonreentrant
def withdraw() -> uint256:
    """
    @notice Pay the caller what disputes credited it.
    @return uint256 The amount paid.
    """
    amount: uint256 = self.owed[msg.sender]
    assert amount != 0, "oracle: nothing owed"
    self.owed[msg.sender] = 0
    self.total_owed -= amount
    assert extcall IERC20(token).transfer(msg.sender, amount, default_return_value=True), \
        "oracle: transfer failed"
    log Withdrawn(who=msg.sender, amount=amount)
    return amount


# --- views ---------------------------------------------------------------------------------


@external
@view
def get_dispute(feed_id: bytes32, index: uint256) -> Dispute:
    """
    @notice The dispute of a round (all zero if none).
    @param feed_id The feed.
    @param index The round's position in the hub.
    @return Dispute Its assertion, disputer, committee version, accused positions (a
            bitmap), and whether it is resolved and the round found wrong.
    """
    return self._disputes[feed_id][index]


@external
@view
def round_claim(feed_id: bytes32, index: uint256) -> bytes32:
    """
    @notice What a dispute of this round asserts (arbitrators check it).
    @param feed_id The feed.
    @param index The round's position in the hub.
    @return bytes32 `keccak256(abi_encode(ROUND_CLAIM_TYPEHASH, hub, feed, index, round, price, timestamp))`.
    """
    return self._round_claim(feed_id, index, staticcall IOracleHub(hub).round_state(feed_id, index))


# --- internals -----------------------------------------------------------------------------


@internal
def _challenge(
    feed_id: bytes32,
    index: uint256,
    config: Config,
    observations: DynArray[uint256, MAX_MEMBERS],
    signatures: DynArray[Signature, MAX_MEMBERS],
    observers: uint256,
) -> (uint256, uint256):
    """
    @dev See `challenge`: reads the round, checks the evidence, then marks the round
         invalid, slashes and bans the poster (external calls last).
    @param feed_id The feed.
    @param index The round's position in the hub.
    @param config The committee the round was stored under.
    @param observations Packed observations.
    @param signatures One per observation.
    @param observers Their reference bytes.
    @return (uint256, uint256) (slashed, reward).
    """
    r: IOracleHub.RoundState = staticcall IOracleHub(hub).round_state(feed_id, index)
    assert r.optimistic, "oracle: not optimistic"
    assert not r.invalid, "oracle: round invalid"
    assert not r.disputed, "oracle: round disputed"
    t: uint256 = convert(r.timestamp, uint256)
    assert block.timestamp <= t + dispute_window, "oracle: challenge period over"
    self._check_config(feed_id, r.version, config)
    k: uint256 = len(observations)
    # f <= 10: 2f+1 cannot overflow.
    assert k >= unsafe_add(unsafe_add(config.f, config.f), 1), "oracle: too few observations"
    assert len(signatures) == k, "oracle: one signature per observation"
    separator: bytes32 = staticcall IOracleHub(hub).domain_separator()
    round_id: uint256 = convert(r.round, uint256)
    n: uint256 = len(config.members)
    seen: uint256 = 0
    above: bool = True
    below: bool = True
    later: bool = True
    earlier: bool = True
    j: uint256 = 0
    for packed: uint256 in observations:
        price: uint256 = packed >> 128
        ts: uint256 = (packed >> 64) & U64_MASK
        digest: bytes32 = keccak256(slice(abi_encode(EIP712_PREFIX, separator, keccak256(abi_encode(
            OBSERVATION_TYPEHASH, feed_id, round_id, price, ts, packed & U64_MASK))), 30, 66))
        # j < 31, so 8 * j < 248 stays inside the word.
        position: uint256 = self._check_signer(digest, config.members, n, signatures[j],
                                               (observers >> unsafe_mul(j, 8)) & U8_MASK)
        bit: uint256 = 1 << position
        assert seen & bit == 0, "oracle: duplicate observation"
        seen |= bit
        above = above and price > r.price
        below = below and price < r.price
        later = later and ts > t
        earlier = earlier and ts < t
        j = unsafe_add(j, 1)
    assert above or below or later or earlier, "oracle: quorum agrees"

    extcall IOracleHub(hub).set_round_status(feed_id, index, False, True)
    poster: address = config.members[r.poster]
    slashed: uint256 = 0
    reward: uint256 = 0
    slashed, reward = self._slash(poster, msg.sender)
    extcall IOracleHub(hub).ban_member(feed_id, poster)
    log RoundChallenged(feed_id=feed_id, index=index, poster=poster, challenger=msg.sender,
                        slashed=slashed, reward=reward)
    return slashed, reward


@internal
def _dispute_round(
    feed_id: bytes32,
    index: uint256,
    config: Config,
    observations_hash: bytes32,
    signatures: DynArray[Signature, MAX_MEMBERS],
    signers: uint256,
) -> uint256:
    """
    @dev See `dispute_round`: checks, names the accused, then moves the bond into
         `Assertions` and marks the round disputed.
    @param feed_id The feed.
    @param index The round's position in the hub.
    @param config The committee the round was stored under.
    @param observations_hash The report's `observationsHash`.
    @param signatures Signatures over the report.
    @param signers Their reference bytes.
    @return uint256 The assertion id.
    """
    assert self._disputes[feed_id][index].assertion_id == 0, "oracle: round already disputed"
    r: IOracleHub.RoundState = staticcall IOracleHub(hub).round_state(feed_id, index)
    assert not r.invalid, "oracle: round invalid"
    assert block.timestamp <= convert(r.timestamp, uint256) + dispute_window, "oracle: dispute window over"
    accused: uint256 = 0
    if r.optimistic:
        # poster < 31: the shift stays inside the word.
        accused = 1 << r.poster
    else:
        accused = self._report_signers(feed_id, r, config, observations_hash, signatures, signers)
    claim: bytes32 = self._round_claim(feed_id, index, r)

    assert extcall IERC20(token).transferFrom(msg.sender, self, dispute_bond, default_return_value=True), \
        "oracle: transfer failed"
    assert extcall IERC20(token).approve(assertions, dispute_bond, default_return_value=True), \
        "oracle: approve failed"
    assertion_id: uint256 = extcall IAssertions(assertions).assert_claim(claim, dispute_bond,
                                                                         dispute_liveness, self)
    self._disputes[feed_id][index] = Dispute(assertion_id=assertion_id, disputer=msg.sender,
                                             version=r.version, accused=accused, resolved=False,
                                             invalid=False)
    extcall IOracleHub(hub).set_round_status(feed_id, index, True, False)
    log RoundDisputed(feed_id=feed_id, index=index, assertion_id=assertion_id, disputer=msg.sender,
                      claim=claim, version=r.version, accused=accused)
    return assertion_id


@internal
def _resolve_dispute(feed_id: bytes32, index: uint256, config: Config) -> bool:
    """
    @dev See `resolve_dispute`: marks the dispute resolved first, then settles and
         claims the assertion, credits the disputer, and applies the outcome.
    @param feed_id The feed.
    @param index The round's position in the hub.
    @param config The committee the round was stored under.
    @return bool Whether the round was found wrong.
    """
    d: Dispute = self._disputes[feed_id][index]
    assert d.assertion_id != 0, "oracle: not disputed"
    assert not d.resolved, "oracle: dispute resolved"
    self._disputes[feed_id][index].resolved = True
    settled: bool = False
    truthful: bool = False
    settled, truthful = staticcall IAssertions(assertions).resolved(d.assertion_id)
    if not settled:
        # Reverts with Assertions' reason while the liveness or the arbitration is running.
        truthful = extcall IAssertions(assertions).settle(d.assertion_id)
    returned: uint256 = (staticcall IAssertions(assertions).get_assertion(d.assertion_id)).asserter_payout
    if returned != 0:
        assert extcall IAssertions(assertions).claim(d.assertion_id) == returned, "oracle: claim mismatch"
        self._credit(d.disputer, returned)

    slashed_total: uint256 = 0
    reward_total: uint256 = 0
    if truthful:
        self._disputes[feed_id][index].invalid = True
        self._check_config(feed_id, d.version, config)
        extcall IOracleHub(hub).set_round_status(feed_id, index, False, True)
        for position: uint256 in range(MAX_MEMBERS):
            if (d.accused >> position) & 1 == 0:
                continue
            member: address = config.members[position]
            slashed: uint256 = 0
            reward: uint256 = 0
            slashed, reward = self._slash(member, self)
            self._credit(d.disputer, reward)
            extcall IOracleHub(hub).ban_member(feed_id, member)
            slashed_total += slashed
            reward_total += reward
            log MemberSlashed(feed_id=feed_id, index=index, member=member, slashed=slashed, reward=reward)
    else:
        extcall IOracleHub(hub).set_round_status(feed_id, index, False, False)
    log DisputeResolved(feed_id=feed_id, index=index, assertion_id=d.assertion_id, invalid=truthful,
                        slashed=slashed_total, reward=reward_total, bond_returned=returned)
    return truthful


@internal
@view
def _report_signers(
    feed_id: bytes32,
    r: IOracleHub.RoundState,
    config: Config,
    observations_hash: bytes32,
    signatures: DynArray[Signature, MAX_MEMBERS],
    signers: uint256,
) -> uint256:
    """
    @dev The members who signed the report that stored `r`: at least `f+1` distinct
         members of the committee `r` was stored under.
    @param feed_id The feed.
    @param r The round.
    @param config The committee of its version.
    @param observations_hash The report's `observationsHash`.
    @param signatures Signatures over the report digest.
    @param signers Their reference bytes.
    @return uint256 Their positions, as a bitmap.
    """
    self._check_config(feed_id, r.version, config)
    digest: bytes32 = keccak256(slice(abi_encode(
        EIP712_PREFIX, staticcall IOracleHub(hub).domain_separator(),
        keccak256(abi_encode(REPORT_TYPEHASH, staticcall IOracleHub(hub).config_digest(feed_id, r.version),
                             feed_id, r.round, r.price, r.timestamp, observations_hash))), 30, 66))
    n: uint256 = len(config.members)
    seen: uint256 = 0
    count: uint256 = 0
    i: uint256 = 0
    for signature: Signature in signatures:
        # i < 31, so 8 * i < 248 stays inside the word.
        position: uint256 = self._check_signer(digest, config.members, n, signature,
                                               (signers >> unsafe_mul(i, 8)) & U8_MASK)
        bit: uint256 = 1 << position
        assert seen & bit == 0, "oracle: duplicate signer"
        seen |= bit
        count = unsafe_add(count, 1)
        i = unsafe_add(i, 1)
    # f <= 10: f + 1 cannot overflow.
    assert count >= unsafe_add(config.f, 1), "oracle: too few signatures"
    return seen


@internal
@view
def _check_config(feed_id: bytes32, version: uint256, config: Config):
    """
    @dev Reverts unless `config` is the feed's committee at `version`.
    @param feed_id The feed.
    @param version The committee version.
    @param config The committee sent.
    """
    assert config.version == version and \
        keccak256(abi_encode(feed_id, config.version, config.f, config.members)) == \
        staticcall IOracleHub(hub).config_digest(feed_id, version), "oracle: wrong config"


@internal
@pure
def _check_signer(
    digest: bytes32,
    members: DynArray[address, MAX_MEMBERS],
    n: uint256,
    signature: Signature,
    reference: uint256,
) -> uint256:
    """
    @dev Recovers a signature under the canonical checks of `eip712._recover` (in its
         order; `v` is 27 or 28 by construction) and checks it is the member at the
         position its reference byte names (removals after the round do not matter here).
    @param digest The signed digest.
    @param members The committee.
    @param n Its size.
    @param signature `r` and `s`.
    @param reference Position (bits 0-4) and parity (bit 7).
    @return uint256 The position.
    """
    assert signature.r != 0 and signature.r < SECP256K1_N, "eip712: bad r"
    assert signature.s != 0, "eip712: bad s"
    assert signature.s <= HALF_N, "eip712: high s"
    # reference < 256, so reference >> 7 is 0 or 1.
    signer: address = ecrecover(digest, unsafe_add(27, reference >> PARITY_SHIFT), signature.r,
                                signature.s)
    assert signer != empty(address), "eip712: zero signer"
    position: uint256 = reference & POSITION_MASK
    assert position < n and members[position] == signer, "oracle: not a member"
    return position


@internal
@view
def _round_claim(feed_id: bytes32, index: uint256, r: IOracleHub.RoundState) -> bytes32:
    """
    @dev The claim a dispute of round `index` asserts.
    @param feed_id The feed.
    @param index The round's position in the hub.
    @param r The round.
    @return bytes32 The claim hash.
    """
    return keccak256(abi_encode(ROUND_CLAIM_TYPEHASH, hub, feed_id, index, r.round, r.price, r.timestamp))


@internal
def _slash(member: address, reward_to: address) -> (uint256, uint256):
    """
    @dev Slashes `member`'s oracle stake by up to the hub's `slash_amount`, paying
         `prover_reward_bps` of what is taken to `reward_to`.
    @param member The member at fault.
    @param reward_to Who receives the reward (the caller, or this module for a disputer).
    @return (uint256, uint256) (slashed, reward) as moved by `Bonds`.
    """
    amount: uint256 = min(staticcall IOracleHub(hub).slash_amount(),
                          staticcall IBonds(bonds).slashable_of(member, oracle_role))
    reward: uint256 = amount * staticcall IOracleHub(hub).prover_reward_bps() // BPS
    return extcall IBonds(bonds).slash(member, oracle_role, amount, reward_to, reward)


@internal
def _credit(who: address, amount: uint256):
    """
    @dev Owes `amount` (already held here) to `who`.
    @param who The disputer.
    @param amount Token base units.
    """
    if amount != 0:
        self.owed[who] += amount
        self.total_owed += amount
