# pragma version ~=0.4.3
"""
@title ChainProbe
@notice Exercises what the chain backends must agree on: events, reverts with reasons,
        storage refunds, block time and chain id. Test-only.
"""

event Stored:
    key: indexed(uint256)
    value: uint256
    note: String[32]

slots: public(HashMap[uint256, uint256])
deadline: public(uint256)


@deploy
def __init__(_delay: uint256):
    """
    @notice Set a deadline `_delay` seconds from deployment.
    """
    self.deadline = block.timestamp + _delay


@external
@nonreentrant
def store(_key: uint256, _value: uint256):
    """
    @notice Write a slot (zero clears it and earns a refund) and log it.
    """
    assert _value != 13, "probe: unlucky value"
    self.slots[_key] = _value
    log Stored(key=_key, value=_value, note="stored")


@external
def store_many(_values: DynArray[uint256, 256]):
    """
    @notice Write several slots in one transaction (calldata-heavy).
    """
    for i: uint256 in range(len(_values), bound=256):
        self.slots[i] = _values[i]


@external
def after_deadline():
    """
    @notice Succeeds only once the chain clock is past the deadline.
    """
    assert block.timestamp > self.deadline, "probe: too early"


@external
@view
def chain_id() -> uint256:
    """
    @notice The chain id the EVM reports (CHAINID opcode).
    """
    return chain.id


@external
@view
def now() -> uint256:
    """
    @notice The current block timestamp.
    """
    return block.timestamp


@external
@view
def fail_view(_x: uint256) -> uint256:
    """
    @notice A view that reverts with a reason for odd inputs.
    """
    assert _x % 2 == 0, "probe: odd"
    return _x // 2
