# pragma version ~=0.4.3
"""
@title DirectSettlement
@notice Benchmark baseline, not a product contract: settles one order-book trade per
        transaction fully on-chain — both signed orders verified with `lib/eip712.vy`,
        fills tracked per order digest, premium moved between internal balances and
        positions updated. What `Settlement` is measured against (benchmarks/settlement.py).
"""

from lib import eip712

initializes: eip712

# @dev Premium = price × quantity / CONTRACT_UNIT (docs/protocol.md § Instruments).
CONTRACT_UNIT: constant(uint256) = 100
BUY: constant(uint8) = 1

balance_of: public(HashMap[address, uint256])
position: public(HashMap[address, HashMap[bytes32, int256]])
filled: public(HashMap[bytes32, uint256])


@deploy
def __init__(name_: String[64], version_: String[32]):
    """
    @notice Create the baseline with the EIP-712 domain `(name_, version_, chainid, self)`.
    @param name_ Domain name.
    @param version_ Domain version.
    """
    eip712.__init__(name_, version_)


@external
def credit(who: address, amount: uint256):
    """
    @notice Give `who` an internal balance (benchmark set-up only: no token moves).
    @param who The account.
    @param amount Base units.
    """
    self.balance_of[who] += amount


@external
@nonreentrant
def settle(maker: eip712.Order, maker_sig: Bytes[65], taker: eip712.Order, taker_sig: Bytes[65],
           quantity: uint256, price: uint256):
    """
    @notice Settle one fill of `quantity` at `price` between two signed orders.
    @param maker The maker's order.
    @param maker_sig Its signature.
    @param taker The taker's order.
    @param taker_sig Its signature.
    @param quantity Contracts filled.
    @param price Premium per contract unit.
    """
    maker_digest: bytes32 = eip712._verify_order(maker, maker_sig)
    taker_digest: bytes32 = eip712._verify_order(taker, taker_sig)
    assert maker.series_id == taker.series_id, "direct: different series"
    assert maker.side != taker.side, "direct: same side"
    buyer: eip712.Order = maker if maker.side == BUY else taker
    seller: eip712.Order = taker if maker.side == BUY else maker
    assert price <= buyer.price and price >= seller.price, "direct: price outside limit"
    self._fill(maker_digest, maker.quantity, quantity)
    self._fill(taker_digest, taker.quantity, quantity)
    premium: uint256 = price * quantity // CONTRACT_UNIT
    assert self.balance_of[buyer.account] >= premium, "direct: insufficient balance"
    self.balance_of[buyer.account] -= premium
    self.balance_of[seller.account] += premium
    self.position[buyer.account][buyer.series_id] += convert(quantity, int256)
    self.position[seller.account][seller.series_id] -= convert(quantity, int256)


@internal
def _fill(digest: bytes32, size: uint256, quantity: uint256):
    """
    @dev Add `quantity` to the order's fill, never beyond its signed size.
    @param digest The order's digest.
    @param size Its signed quantity.
    @param quantity This fill.
    """
    total: uint256 = self.filled[digest] + quantity
    assert total <= size, "direct: overfill"
    self.filled[digest] = total
