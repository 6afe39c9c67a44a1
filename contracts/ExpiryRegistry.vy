# pragma version ~=0.4.3
"""
@title ExpiryRegistry
@custom:contract-name ExpiryRegistry
@license MIT
@notice The on-chain expiry registry: what the settlement rules read besides the state.
        - `list_expiry` (admin until governance exists) registers an expiry: its id is
          `keccak256(abi.encode(underlying, quote, uint256 timestamp))`, its settlement cap
          and the `OracleHub` feed it settles on.
        - `settle_expiry(id)` (anyone, after the expiry) records the settlement price once:
          the hub's TWAP over `[timestamp - twap_window, timestamp]` clamped to the cap. The
          hub reverts until the window is past its dispute window, while a round in it is
          disputed, and when the feed is stale or has no round there ("oracle: ...").
        - `listed()` is the context's expiry list the window verifier re-executes with;
          `exit_amounts(leaf)` values a frozen account leaf for `Settlement`'s exits with the
          spec's rules (`clearhouse.settlement.exits`): free collateral, and what the
          positions return once every expiry of the leaf has its price.
        See docs/protocol.md, "Expiry registry" and "Exits".
"""

from .lib import stf


interface IOracleTwap:
    def twap(feed_id: bytes32, start: uint256, end: uint256, cap: uint256) -> uint256: view


event ExpiryListed:
    expiry_id: indexed(bytes32)
    timestamp: uint64
    cap: uint256
    feed_id: bytes32

event ExpirySettled:
    expiry_id: indexed(bytes32)
    price: uint256


# @dev Caps and quantities are 128-bit in the leaf encoding.
MAX_CAP: constant(uint256) = 2**128 - 1

oracle_hub: public(immutable(address))
twap_window: public(immutable(uint256))
contract_unit: public(immutable(uint256))

admin: public(address)
# @dev The listed expiries in listing order (the fraud proof's context list), at most
#      `stf.MAX_EXPIRIES`; `_index[id]` is an expiry's position plus one (0 = not listed).
_expiries: DynArray[stf.ListedExpiry, stf.MAX_EXPIRIES]
_index: HashMap[bytes32, uint256]
feed_of: public(HashMap[bytes32, bytes32])


@deploy
def __init__(oracle_hub_: address, twap_window_: uint256, contract_unit_: uint256):
    """
    @notice Create the registry over `oracle_hub_`.
    @param oracle_hub_ The `OracleHub` whose TWAP settles expiries.
    @param twap_window_ Seconds of the TWAP window ending at an expiry (at most the hub's
           `max_twap_window`, or settlement reverts "oracle: window too long").
    @param contract_unit_ `Params.contract_unit`: quantities are in `1 / contract_unit` contract.
    """
    assert oracle_hub_ != empty(address), "expiries: zero address"
    assert twap_window_ != 0 and contract_unit_ != 0, "expiries: bad parameters"
    oracle_hub = oracle_hub_
    twap_window = twap_window_
    contract_unit = contract_unit_
    self.admin = msg.sender


@external
def list_expiry(underlying: bytes32, quote: bytes32, timestamp: uint64, cap: uint256, feed_id: bytes32):
    """
    @notice List an expiry (admin until governance exists).
    @param underlying `bytes32` of the underlying symbol ("ETH").
    @param quote `bytes32` of the quote (collateral) symbol ("USDC").
    @param timestamp Expiry time, unix seconds.
    @param cap Settlement prices are clamped to `[0, cap]`, quote base units per contract.
    @param feed_id The `OracleHub` feed of the pair.
    """
    assert msg.sender == self.admin, "expiries: not admin"
    assert cap != 0 and cap <= MAX_CAP, "expiries: bad cap"
    assert convert(timestamp, uint256) > twap_window, "expiries: bad timestamp"
    expiry_id: bytes32 = keccak256(abi_encode(underlying, quote, convert(timestamp, uint256)))
    assert self._index[expiry_id] == 0, "expiries: listed"
    assert len(self._expiries) < stf.MAX_EXPIRIES, "expiries: registry full"
    self._expiries.append(stf.ListedExpiry(
        expiry_id=expiry_id, underlying=underlying, quote=quote, timestamp=timestamp, cap=cap,
        has_price=False, settlement_price=0))
    self._index[expiry_id] = len(self._expiries)
    self.feed_of[expiry_id] = feed_id
    log ExpiryListed(expiry_id=expiry_id, timestamp=timestamp, cap=cap, feed_id=feed_id)


@external
def settle_expiry(expiry_id: bytes32) -> uint256:
    """
    @notice Record an expiry's settlement price from the oracle committee, once (anyone).
    @dev The hub's `twap` is final only once `block.timestamp > timestamp + dispute_window`
         and reverts with its reason ("oracle: window not final", "oracle: stale", "oracle:
         window under dispute", "oracle: no rounds in window"); nothing is stored then.
    @param expiry_id The expiry.
    @return uint256 The settlement price (clamped to the cap, not yet on the unit grid).
    """
    i: uint256 = self._index[expiry_id]
    assert i != 0, "expiries: unlisted expiry"
    e: stf.ListedExpiry = self._expiries[i - 1]
    assert not e.has_price, "expiries: settled"
    end: uint256 = convert(e.timestamp, uint256)
    assert block.timestamp >= end, "expiries: not yet expired"
    # end > twap_window at listing, so the subtraction cannot underflow
    price: uint256 = staticcall IOracleTwap(oracle_hub).twap(self.feed_of[expiry_id], end - twap_window, end, e.cap)
    e.has_price = True
    e.settlement_price = min(price, e.cap)
    self._expiries[i - 1] = e
    log ExpirySettled(expiry_id=expiry_id, price=e.settlement_price)
    return e.settlement_price


@external
@view
def listed() -> DynArray[stf.ListedExpiry, stf.MAX_EXPIRIES]:
    """
    @notice Every listed expiry with its price once settled (the fraud proof's context list).
    @return DynArray The registry.
    """
    return self._expiries


@external
@view
def get_expiry(expiry_id: bytes32) -> stf.ListedExpiry:
    """
    @notice One expiry's registry entry (reverts if unlisted).
    @param expiry_id The expiry.
    @return stf.ListedExpiry The entry.
    """
    i: uint256 = self._index[expiry_id]
    assert i != 0, "expiries: unlisted expiry"
    return self._expiries[i - 1]


@external
@view
def exit_amounts(leaf: Bytes[stf.MAX_LEAF]) -> (uint256, uint256, bool):
    """
    @notice Value a (proven) account leaf for an exit: `free = max(0, balance - requirement)`
            (exact max loss per expiry at its cap) and, when every expiry of its positions has
            a price, `rest = max(0, balance + sum of payoffs) - free`: the balance the
            spec's expiry settlement leaves, less what `free` paid.
    @dev The payoff of one expiry is `floor(sum q * intrinsic(S) / unit)` at the price
         rounded down to the unit grid, as `compute_settle_expiry_effect`; with strikes on the
         grid it is exact, so payoffs of one series sum to zero over all accounts. Positions
         are sorted by expiry, so each expiry is one contiguous group.
    @param leaf The account leaf (`owner ++ balance ++ n ++ positions`).
    @return uint256 Free collateral, base units.
    @return uint256 The rest (0 while `priced` is False).
    @return bool Whether every expiry of the leaf has a settlement price.
    """
    a: stf.Account = stf._decode_account(concat(leaf, empty(bytes32)), 0, len(leaf))
    ps: DynArray[stf.Position, stf.MAX_SCRATCH] = stf._scratch(a)
    required: uint256 = 0
    payoff: int256 = 0
    priced: bool = True
    unit: int256 = convert(contract_unit, int256)
    for i: uint256 in range(len(ps), bound=stf.MAX_SCRATCH):
        if i != 0 and ps[i].expiry_id == ps[i - 1].expiry_id:
            continue
        j: uint256 = self._index[ps[i].expiry_id]
        assert j != 0, "expiries: unlisted expiry"
        e: stf.ListedExpiry = self._expiries[j - 1]
        required += stf._group_requirement(ps, i, e.cap, contract_unit)
        if not e.has_price:
            priced = False
            continue
        s: uint256 = min(e.settlement_price, e.cap)
        s -= s % contract_unit
        group: int256 = 0
        for k: uint256 in range(i, i + stf.MAX_SCRATCH, bound=stf.MAX_SCRATCH):
            if k >= len(ps) or ps[k].expiry_id != e.expiry_id:
                break
            group += ps[k].quantity * stf._intrinsic(ps[k].kind, ps[k].strike, s)
        # floor division, as Python's `//` (Vyper's rounds towards zero)
        q: int256 = group // unit
        if group % unit != 0 and group < 0:
            q -= 1
        payoff += q
    free: uint256 = 0
    if a.balance > required:
        free = a.balance - required
    if not priced:
        return free, 0, False
    total: int256 = convert(a.balance, int256) + payoff
    if total <= convert(free, int256):
        return free, 0, True
    return free, convert(total, uint256) - free, True
