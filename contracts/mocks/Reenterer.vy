# pragma version ~=0.4.3
"""
@title Reenterer
@notice Calls back into a ReentrancyProbe from its hook. Test-only.
"""

interface Probe:
    def guarded(_hook: address): nonpayable
    def other_guarded(): nonpayable
    def unguarded(): nonpayable

target: public(address)
mode: public(uint256)


@external
def configure(_target: address, _mode: uint256):
    """
    @notice Choose the probe and which entry point `poke` re-enters (0: guarded, 1: other, 2: unguarded).
    """
    self.target = _target
    self.mode = _mode


@external
def poke():
    """
    @notice The hook: re-enter the probe.
    """
    if self.mode == 0:
        extcall Probe(self.target).guarded(self)
    elif self.mode == 1:
        extcall Probe(self.target).other_guarded()
    else:
        extcall Probe(self.target).unguarded()
