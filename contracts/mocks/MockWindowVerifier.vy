# pragma version ~=0.4.3
"""
@title MockWindowVerifier
@notice Stands in for the fraud-proof verifier in `Settlement` tests: `challenge_execution`
        reports fraud to the configured settlement when told to, reverts otherwise (an
        empty witness list reverts like an invalid witness). Checks nothing else. Test-only.
"""

from interfaces import IWindowVerifier

implements: IWindowVerifier

interface ISettlement:
    def report_execution_fraud(n: uint256, header: Bytes[4396], challenger: address): nonpayable

settlement: public(address)
fraud: public(bool)
# @dev No parameter store: `Settlement` takes version 1 and its own `K`.
PARAMETER_STORE: public(address)


@external
def configure(_settlement: address, _fraud: bool):
    """
    @notice Set the settlement to report to and the verdict.
    """
    self.settlement = _settlement
    self.fraud = _fraud


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
    @notice The configured verdict: report fraud crediting the caller, or revert.
    """
    assert len(witnesses) != 0, "stf: invalid_witness"
    assert self.fraud, "verifier: window is correct"
    extcall ISettlement(self.settlement).report_execution_fraud(n, header, msg.sender)
