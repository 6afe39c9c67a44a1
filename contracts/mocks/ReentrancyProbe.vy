# pragma version ~=0.4.3
"""
@title ReentrancyProbe
@notice Proves the pinned compiler's `@nonreentrant` lock holds (the 0.2.15–0.3.0 miscompilation
        class): `guarded` calls out to `_hook`, which tries to re-enter. Test-only.
"""

interface Hook:
    def poke(): nonpayable

counter: public(uint256)


@external
@nonreentrant
def guarded(_hook: address):
    """
    @notice Increment, then let `_hook` run (it may try to re-enter).
    """
    self.counter += 1
    extcall Hook(_hook).poke()


@external
@nonreentrant
def other_guarded():
    """
    @notice A second guarded entry point sharing the same lock.
    """
    self.counter += 100


@external
def unguarded():
    """
    @notice An entry point without the lock.
    """
    self.counter += 10000
