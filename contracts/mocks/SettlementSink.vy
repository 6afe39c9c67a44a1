# pragma version ~=0.4.3
"""
@title SettlementSink
@custom:contract-name SettlementSink
@license MIT
@notice Test-only: the two `Settlement` functions `WindowVerifier` uses — the stored
        header hash per batch and `report_execution_fraud`, which only counts reports.
"""


batch_header_hash: public(HashMap[uint256, bytes32])
reports: public(uint256)
last_challenger: public(address)


@external
def set_header_hash(n: uint256, header_hash: bytes32):
    """
    @dev Record batch `n`'s header hash.
    @param n The batch.
    @param header_hash `keccak256(header)`.
    """
    self.batch_header_hash[n] = header_hash


@external
def report_execution_fraud(n: uint256, header: Bytes[4396], challenger: address):
    """
    @dev Count a fraud report (after checking the header, as `Settlement` does).
    @param n The batch.
    @param header Its header.
    @param challenger Who proved it.
    """
    assert keccak256(header) == self.batch_header_hash[n], "sink: wrong header"
    self.reports += 1
    self.last_challenger = challenger
