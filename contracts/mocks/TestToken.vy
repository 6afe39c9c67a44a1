# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title TestToken
@notice A 6-decimal ERC-20 standing in for USDC as collateral on dev chains.
        Anyone may mint: it exists for tests, the demo and the devnet only.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(_name: String[32], _symbol: String[8]):
    """
    @notice Create the token with 6 decimals.
    @param _name Token name.
    @param _symbol Token symbol.
    """
    self.name = _name
    self.symbol = _symbol
    self.decimals = 6


@external
def transfer(_to: address, _value: uint256) -> bool:
    """
    @notice Move `_value` base units from the caller to `_to`.
    """
    self._transfer(msg.sender, _to, _value)
    return True


@external
def transferFrom(_from: address, _to: address, _value: uint256) -> bool:
    """
    @notice Move `_value` from `_from` to `_to` using the caller's allowance.
    """
    allowed: uint256 = self.allowance[_from][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= _value, "token: insufficient allowance"
        self.allowance[_from][msg.sender] = allowed - _value
    self._transfer(_from, _to, _value)
    return True


@external
def approve(_spender: address, _value: uint256) -> bool:
    """
    @notice Let `_spender` move up to `_value` of the caller's tokens.
    """
    self.allowance[msg.sender][_spender] = _value
    log IERC20.Approval(owner=msg.sender, spender=_spender, value=_value)
    return True


@external
def mint(_to: address, _value: uint256):
    """
    @notice Create `_value` new tokens for `_to` (dev chains only).
    """
    assert _to != empty(address), "token: mint to zero"
    self.totalSupply += _value
    self.balanceOf[_to] += _value
    log IERC20.Transfer(sender=empty(address), receiver=_to, value=_value)


@internal
def _transfer(_from: address, _to: address, _value: uint256):
    assert _to != empty(address), "token: transfer to zero"
    balance: uint256 = self.balanceOf[_from]
    assert balance >= _value, "token: insufficient balance"
    self.balanceOf[_from] = balance - _value
    self.balanceOf[_to] += _value
    log IERC20.Transfer(sender=_from, receiver=_to, value=_value)
