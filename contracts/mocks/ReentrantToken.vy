# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title ReentrantToken
@notice A malicious ERC-20 for tests: every `transfer` first replays a configured call
        into a configured target (e.g. `Settlement.claim` again) and records whether the
        re-entry succeeded. Test-only.
"""

from ethereum.ercs import IERC20

implements: IERC20

totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

target: public(address)
payload: public(Bytes[2048])
attempts: public(uint256)
successes: public(uint256)


@external
def arm(_target: address, _payload: Bytes[2048]):
    """
    @notice Re-enter `_target` with `_payload` on every transfer (empty target disarms).
    """
    self.target = _target
    self.payload = _payload


@external
def transfer(_to: address, _value: uint256) -> bool:
    """
    @notice Try the re-entry, then move `_value` to `_to`.
    """
    if self.target != empty(address):
        self.attempts += 1
        ok: bool = raw_call(self.target, self.payload, revert_on_failure=False)
        if ok:
            self.successes += 1
    self._transfer(msg.sender, _to, _value)
    return True


@external
def transferFrom(_from: address, _to: address, _value: uint256) -> bool:
    """
    @notice Plain allowance transfer.
    """
    allowed: uint256 = self.allowance[_from][msg.sender]
    assert allowed >= _value, "token: insufficient allowance"
    self.allowance[_from][msg.sender] = allowed - _value
    self._transfer(_from, _to, _value)
    return True


@external
def approve(_spender: address, _value: uint256) -> bool:
    """
    @notice Set an allowance.
    """
    self.allowance[msg.sender][_spender] = _value
    return True


@external
def mint(_to: address, _value: uint256):
    """
    @notice Create tokens (test-only).
    """
    self.totalSupply += _value
    self.balanceOf[_to] += _value


@internal
def _transfer(_from: address, _to: address, _value: uint256):
    assert self.balanceOf[_from] >= _value, "token: insufficient balance"
    self.balanceOf[_from] -= _value
    self.balanceOf[_to] += _value
    log IERC20.Transfer(sender=_from, receiver=_to, value=_value)
