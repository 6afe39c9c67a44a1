# pragma version ~=0.4.3
"""
@title Execution fraud-proof verifier
@custom:contract-name WindowVerifier
@license MIT
@notice `IWindowVerifier` over `lib/stf.vy`: the challenger sends one window of a
        pending batch with its witnesses; this contract checks the window against the
        batch header `Settlement` stores, re-executes it from its start checkpoint, and
        reports fraud to `Settlement` when an operation breaks a rule of the STF or the
        window ends at a root other than its committed checkpoint. An invalid witness
        reverts (the challenger's fault). The batch context's domain is this
        contract's; its governed parameters (`max_positions`, `max_fee_bps`; `K` is the
        header's, checked at posting) are those of the version the header names, read
        from the `ParameterStore` given at deployment (`Settlement` reads the same store
        to refuse a batch naming another version than its number's), or this contract's
        own values (version 1 only) when there is none; the expiries (caps, settlement
        prices) are the `ExpiryRegistry`'s once `set_expiry_registry` wired it (then this
        contract's own admin-set list is closed), the admin-set list before that.
"""


from interfaces import IWindowVerifier
from .lib import stf

implements: IWindowVerifier
initializes: stf


interface IExpiryRegistry:
    def listed() -> DynArray[stf.ListedExpiry, stf.MAX_EXPIRIES]: view


interface ISettlement:
    def batch_header_hash(n: uint256) -> bytes32: view
    def checkpoint_interval() -> uint256: view
    def challenge_window() -> uint256: view
    def t_force() -> uint256: view
    def report_execution_fraud(n: uint256, header: Bytes[MAX_HEADER], challenger: address): nonpayable


# @dev `ParameterStore.Bound`, field for field.
struct Bound:
    minimum: uint256
    maximum: uint256
    listed: bool


interface IParameterStore:
    def SETTLEMENT() -> address: view
    def version() -> uint256: view
    def bounds(key: bytes32) -> Bound: view
    def get(key: bytes32, version: uint256) -> uint256: view


# @dev Parameter-store keys (`keccak256` of the name) of the governed context fields.
K_KEY: constant(bytes32) = keccak256("checkpoint_interval")
MAX_POSITIONS_KEY: constant(bytes32) = keccak256("max_positions")
MAX_FEE_BPS_KEY: constant(bytes32) = keccak256("max_fee_bps")
# @dev ... and of the windows `Settlement` reads.
W_KEY: constant(bytes32) = keccak256("challenge_window")
T_FORCE_KEY: constant(bytes32) = keccak256("t_force")
BPS: constant(uint256) = 10000

# @dev Header layout (docs/protocol.md, "Settlement"): fixed part, then 32 x m checkpoints.
MAX_HEADER: constant(uint256) = 4396
MAX_WINDOWS: constant(uint256) = 128
HEADER_FIXED: constant(uint256) = 300


event ExpiryListed:
    expiry_id: indexed(bytes32)
    cap: uint256


event SettlementPriceSet:
    expiry_id: indexed(bytes32)
    price: uint256


SETTLEMENT: public(immutable(address))
DOMAIN_SEPARATOR: public(immutable(bytes32))
CONTRACT_UNIT: public(immutable(uint256))
MAX_POSITIONS: public(immutable(uint256))
MAX_CLOCK_LAG: public(immutable(uint256))
FEE_ACCOUNT: public(immutable(uint32))
MAX_FEE_BPS: public(immutable(uint256))
PARAMETER_STORE: public(immutable(address))
admin: public(address)
expiries: public(DynArray[stf.ListedExpiry, stf.MAX_EXPIRIES])
expiry_registry: public(address)


@deploy
def __init__(
    settlement: address,
    trade_rules: address,
    other_rules: address,
    domain_separator: bytes32,
    contract_unit: uint256,
    max_positions: uint256,
    max_clock_lag: uint256,
    fee_account: uint32,
    max_fee_bps: uint256,
    parameter_store: address,
):
    """
    @dev One verifier per settlement deployment; `max_positions` and `max_fee_bps` are
         parameter version 1 (a store's version 1 must agree).
    @param settlement The `Settlement` it reports to.
    @param trade_rules A `StfTradeRules`.
    @param other_rules A `StfRules`.
    @param domain_separator The EIP-712 domain every settled message is signed in.
    @param contract_unit `Params.contract_unit`.
    @param max_positions `Params.max_positions` (at most 16).
    @param max_clock_lag Seconds the clock may lag a batch's timestamp for signed messages.
    @param fee_account The account a fee sweep credits.
    @param max_fee_bps Fee bound per side, basis points of a fill's premium.
    @param parameter_store A `ParameterStore` of `settlement` still at version 1 with these
           values and `settlement`'s `K`, `W` and `T_force`, listing `K`, `max_positions` and
           `max_fee_bps` within what the fraud proof supports, and `W` and `T_force` with every
           `T_force` above every `W` (> 0); or empty (no governed parameters).
    """
    assert contract_unit != 0 and max_positions <= stf.MAX_POSITIONS, "verifier: bad parameters"
    stf.__init__(trade_rules, other_rules)
    SETTLEMENT = settlement
    DOMAIN_SEPARATOR = domain_separator
    CONTRACT_UNIT = contract_unit
    MAX_POSITIONS = max_positions
    MAX_CLOCK_LAG = max_clock_lag
    FEE_ACCOUNT = fee_account
    MAX_FEE_BPS = max_fee_bps
    self.admin = msg.sender
    PARAMETER_STORE = parameter_store
    if parameter_store != empty(address):
        store: IParameterStore = IParameterStore(parameter_store)
        assert staticcall store.SETTLEMENT() == settlement, "verifier: store of another settlement"
        assert staticcall store.version() == 1, "verifier: store past version 1"
        assert staticcall store.get(K_KEY, 1) == staticcall ISettlement(settlement).checkpoint_interval() \
            and staticcall store.get(MAX_POSITIONS_KEY, 1) == max_positions \
            and staticcall store.get(MAX_FEE_BPS_KEY, 1) == max_fee_bps, "verifier: store version 1 differs"
        k: Bound = staticcall store.bounds(K_KEY)
        positions: Bound = staticcall store.bounds(MAX_POSITIONS_KEY)
        fee: Bound = staticcall store.bounds(MAX_FEE_BPS_KEY)
        assert k.minimum >= 1 and k.maximum <= stf.MAX_K and positions.maximum <= stf.MAX_POSITIONS \
            and fee.maximum <= BPS, "verifier: store bounds unsupported"
        w: Bound = staticcall store.bounds(W_KEY)
        t: Bound = staticcall store.bounds(T_FORCE_KEY)
        assert w.listed and t.listed and w.minimum != 0 and t.minimum > w.maximum, "verifier: bad window bounds"
        assert staticcall store.get(W_KEY, 1) == staticcall ISettlement(settlement).challenge_window() \
            and staticcall store.get(T_FORCE_KEY, 1) == staticcall ISettlement(settlement).t_force(), \
            "verifier: store windows differ"


@external
def list_expiry(expiry: stf.ListedExpiry):
    """
    @notice Register an expiry (its id must be `keccak256(abi.encode(underlying, quote, timestamp))`).
    @param expiry The registry entry (no settlement price yet).
    """
    assert msg.sender == self.admin, "verifier: not admin"
    assert self.expiry_registry == empty(address), "verifier: registry wired"
    assert expiry.expiry_id == keccak256(
        abi_encode(expiry.underlying, expiry.quote, convert(expiry.timestamp, uint256))
    ), "verifier: wrong expiry id"
    assert expiry.cap != 0 and not expiry.has_price, "verifier: bad expiry"
    for e: stf.ListedExpiry in self.expiries:
        assert e.expiry_id != expiry.expiry_id, "verifier: listed"
    self.expiries.append(expiry)
    log ExpiryListed(expiry_id=expiry.expiry_id, cap=expiry.cap)


@external
def set_settlement_price(expiry_id: bytes32, price: uint256):
    """
    @notice Record an expiry's settlement price, once.
    @param expiry_id The expiry.
    @param price The oracle's settlement price.
    """
    assert msg.sender == self.admin, "verifier: not admin"
    assert self.expiry_registry == empty(address), "verifier: registry wired"
    for i: uint256 in range(len(self.expiries), bound=stf.MAX_EXPIRIES):
        if self.expiries[i].expiry_id == expiry_id:
            assert not self.expiries[i].has_price, "verifier: price set"
            self.expiries[i].has_price = True
            self.expiries[i].settlement_price = price
            log SettlementPriceSet(expiry_id=expiry_id, price=price)
            return
    raise "verifier: unlisted expiry"


@external
def set_expiry_registry(registry: address):
    """
    @notice Read expiries and settlement prices from `registry` (an `ExpiryRegistry`) from now
            on, once; the admin-set list above is closed.
    @param registry The registry.
    """
    assert msg.sender == self.admin, "verifier: not admin"
    assert registry != empty(address) and self.expiry_registry == empty(address), \
        "verifier: registry already set"
    self.expiry_registry = registry


@internal
@view
def _expiry_list() -> DynArray[stf.ListedExpiry, stf.MAX_EXPIRIES]:
    """
    @dev The context's expiries: the registry's once wired, else the admin-set list.
    @return DynArray The listed expiries.
    """
    if self.expiry_registry != empty(address):
        return staticcall IExpiryRegistry(self.expiry_registry).listed()
    return self.expiries


@internal
@pure
def _u(data: Bytes[MAX_HEADER], pos: uint256, size: uint256) -> uint256:
    """
    @dev The `size`-byte big-endian integer at `pos` of a header (32 bytes must follow `pos`).
    @param data The header.
    @param pos The offset.
    @param size 1..32.
    @return uint256 The value.
    """
    return extract32(data, pos, output_type=uint256) >> (256 - 8 * size)


@internal
@pure
def _commitment(p: Bytes[168]) -> stf.Commitment:
    """
    @dev Decode a 168-byte root preimage (after `0x02`).
    @param p The preimage.
    @return stf.Commitment Its roots and counters.
    """
    z: bytes32 = empty(bytes32)
    b: Bytes[200] = concat(p, z)
    return stf.Commitment(
        accounts_root=extract32(b, 0), consumed_root=extract32(b, 32),
        counters=stf.Counters(
            deposit_count=convert(extract32(b, 64, output_type=uint256) >> 192, uint64),
            deposit_hash=extract32(b, 72),
            forced_count=convert(extract32(b, 104, output_type=uint256) >> 192, uint64),
            forced_hash=extract32(b, 112),
            clock=convert(extract32(b, 144, output_type=uint256) >> 192, uint64),
            fee_pool=extract32(b, 152, output_type=uint256) >> 128,
        ),
    )


@external
def challenge_execution(
    n: uint256,
    header: Bytes[4396],
    checkpoint_index: uint256,
    core: Bytes[22368],
    auth: Bytes[4160],
    window_hashes: DynArray[bytes32, 128],
    checkpoint: Bytes[168],
    witnesses: DynArray[Bytes[12800], 32],
):
    """
    @notice Prove that window `checkpoint_index` of pending batch `n` is wrong; reverts
            "verifier: window is correct" if it is not.
    @param n The batch.
    @param header Its header (`encode_header`).
    @param checkpoint_index The window `j`.
    @param core Window `j`'s operation cores.
    @param auth Window `j`'s signatures.
    @param window_hashes Every window hash of the batch.
    @param checkpoint The start root's preimage after `0x02` (168 bytes).
    @param witnesses One witness per operation, up to and including an invalid one.
    """
    assert keccak256(header) == staticcall ISettlement(SETTLEMENT).batch_header_hash(n), "verifier: wrong header"
    assert len(header) >= HEADER_FIXED, "verifier: wrong header"
    m: uint256 = self._u(header, 296, 4)
    assert checkpoint_index < m and len(window_hashes) == m, "verifier: wrong window"
    assert keccak256(concat(keccak256(core), keccak256(auth))) == window_hashes[checkpoint_index], \
        "verifier: wrong window"
    # the items of an ABI-encoded dynamic array start after its offset and length words
    assert keccak256(slice(abi_encode(window_hashes), 64, 32 * m)) == extract32(header, 228), \
        "verifier: wrong ops hash"
    # `Settlement` accepted the header's version only if it applies to batch `n`
    version: uint256 = self._u(header, 216, 4)
    max_positions: uint256 = MAX_POSITIONS
    max_fee_bps: uint256 = MAX_FEE_BPS
    if PARAMETER_STORE != empty(address):
        max_positions = staticcall IParameterStore(PARAMETER_STORE).get(MAX_POSITIONS_KEY, version)
        max_fee_bps = staticcall IParameterStore(PARAMETER_STORE).get(MAX_FEE_BPS_KEY, version)
    start: bytes32 = extract32(header, 8)
    if checkpoint_index > 0:
        start = extract32(header, HEADER_FIXED + 32 * (checkpoint_index - 1))
    ctx: stf.Context = stf.Context(
        domain_separator=DOMAIN_SEPARATOR,
        timestamp=convert(self._u(header, 208, 8), uint64),
        contract_unit=CONTRACT_UNIT,
        max_positions=max_positions,
        checkpoint_interval=self._u(header, 220, 4),
        max_clock_lag=MAX_CLOCK_LAG,
        fee_account=FEE_ACCOUNT,
        max_fee_bps=max_fee_bps,
        expiries=self._expiry_list(),
    )
    # The window loop of `stf.verify_window`, inline: an internal call would copy the
    # bounded witness list (~410 kB) into memory.
    assert ctx.max_positions <= stf.MAX_POSITIONS and ctx.contract_unit != 0, "stf: unsupported context"
    z: bytes32 = empty(bytes32)
    padded: Bytes[stf.MAX_CORE + 800] = concat(
        core, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z
    )
    count: uint256 = 0
    pos: uint256 = 0
    sigs: uint256 = 0
    for i: uint256 in range(stf.MAX_K + 1):
        if pos >= len(core):
            break
        assert i < stf.MAX_K, "stf: invalid_witness"
        one: Bytes[800] = slice(padded, pos, 800)
        pos += stf._core_size(one)
        sigs += stf._signature_count(stf._core_uint(one, 0, 1))
        count += 1
    assert pos == len(core), "stf: malformed_operation"
    assert sigs * 65 == len(auth), "stf: malformed_operation"
    assert count >= 1 and count <= ctx.checkpoint_interval, "stf: invalid_witness"
    assert len(witnesses) <= count, "stf: invalid_witness"
    c: stf.Commitment = self._commitment(checkpoint)
    assert stf._state_root(c) == start, "stf: invalid_witness"
    pos = 0
    apos: uint256 = 0
    invalid: bool = False
    for i: uint256 in range(count, bound=stf.MAX_K):
        assert i < len(witnesses), "stf: invalid_witness"
        one: Bytes[800] = slice(padded, pos, 800)
        pos += stf._core_size(one)
        k: uint256 = stf._signature_count(stf._core_uint(one, 0, 1))
        sig0: Bytes[65] = b""
        sig1: Bytes[65] = b""
        if k >= 1:
            sig0 = slice(auth, apos, 65)
        if k == 2:
            sig1 = slice(auth, apos + 65, 65)
        apos += 65 * k
        reason: String[stf.MAX_REASON] = ""
        c, reason = stf._apply(c, ctx, one, sig0, sig1, concat(witnesses[i], z), len(witnesses[i]), stf.rules)
        if len(reason) != 0:
            invalid = True
            break
    assert invalid or stf._state_root(c) != extract32(header, HEADER_FIXED + 32 * checkpoint_index), \
        "verifier: window is correct"
    extcall ISettlement(SETTLEMENT).report_execution_fraud(n, header, msg.sender)
