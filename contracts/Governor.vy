# pragma version ~=0.4.3
"""
@title Governor: timelocked execution of asserted governance results
@custom:contract-name Governor
@license MIT
@notice A proposal's off-chain result is asserted through `Assertions` with the claim
        `keccak256(abi.encode(proposal_id, actions_hash, tally_digest))` and this contract as
        the assertion's target. Once the assertion has settled truthful (undisputed after its
        liveness, or upheld by arbitration) anyone may `queue` the proposal; `delay` seconds
        later anyone may `execute` its actions, each against the runtime code hash pinned in
        the action. The delay is longer than the time a user needs to exit (`T_force + W +
        MAX_PAUSE` of the settlement: an emergency pause delays exits by up to `MAX_PAUSE`;
        checked at deployment), so nobody is ever bound by a change they could not leave
        before it applies. A guardian can cancel a queued proposal and nothing else; it can
        never execute, queue or change anything.
"""


interface IAssertions:
    def resolved(assertion_id: uint256) -> (bool, bool): view
    def get_assertion(assertion_id: uint256) -> AssertionView: view


# @dev `Assertions.AssertionView`, field for field.
struct AssertionView:
    asserter: address
    target: address
    claim: bytes32
    bond: uint256
    asserted_at: uint256
    expires_at: uint256
    disputer: address
    dispute_id: uint256
    settled: bool
    truthful: bool
    asserter_payout: uint256
    disputer_payout: uint256


MAX_ACTIONS: public(constant(uint256)) = 16
# @dev Fits `OracleHub.set_committee(feed, members, f)` with a full committee of `MAX_MEMBERS`
#      (31): 4 + 4 * 32 + 31 * 32 bytes.
MAX_CALLDATA: public(constant(uint256)) = 1124

# @dev A proposal's state.
UNQUEUED: constant(uint8) = 0
QUEUED: constant(uint8) = 1
EXECUTED: constant(uint8) = 2
CANCELLED: constant(uint8) = 3


struct Action:
    target: address
    code_hash: bytes32
    data: Bytes[MAX_CALLDATA]


event Queued:
    proposal_id: indexed(uint256)
    assertion_id: indexed(uint256)
    actions_hash: bytes32
    eta: uint256


event Executed:
    proposal_id: indexed(uint256)
    actions: uint256


event Cancelled:
    proposal_id: indexed(uint256)


ASSERTIONS: public(immutable(address))
DELAY: public(immutable(uint256))
# @notice Seconds between queue and the earliest execution.
EXIT_TIME: public(immutable(uint256))
# @notice `T_force + W + MAX_PAUSE` of the settlement this governs: `DELAY` is longer.
guardian: public(address)

state: public(HashMap[uint256, uint8])
actions_hash: public(HashMap[uint256, bytes32])
eta: public(HashMap[uint256, uint256])
assertion_used: public(HashMap[uint256, bool])


@deploy
def __init__(assertions: address, delay: uint256, exit_time: uint256, guardian: address):
    """
    @param assertions The `Assertions` contract results are asserted through.
    @param delay Timelock in seconds; must exceed `exit_time`.
    @param exit_time `T_force + W + MAX_PAUSE`: the longest a user needs to leave.
    @param guardian May cancel queued proposals (zero: nobody).
    """
    assert delay > exit_time, "governor: delay not longer than exit time"
    ASSERTIONS = assertions
    DELAY = delay
    EXIT_TIME = exit_time
    self.guardian = guardian


@external
@pure
def compute_actions_hash(actions: DynArray[Action, MAX_ACTIONS]) -> bytes32:
    """
    @notice `keccak256(abi.encode(actions))`, the hash a claim names.
    @param actions The proposal's actions.
    @return bytes32 Their hash.
    """
    return keccak256(abi_encode(actions))


@external
def queue(proposal_id: uint256, tally_digest: bytes32, actions: DynArray[Action, MAX_ACTIONS],
          assertion_id: uint256):
    """
    @notice Queue a proposal whose result settled truthful (anyone may call).
    @param proposal_id The proposal.
    @param tally_digest The asserted tally's digest.
    @param actions The proposal's actions.
    @param assertion_id The assertion of its result.
    """
    assert self.state[proposal_id] == UNQUEUED, "governor: proposal already queued"
    assert not self.assertion_used[assertion_id], "governor: assertion already used"
    assert len(actions) > 0, "governor: no actions"
    settled: bool = False
    truthful: bool = False
    settled, truthful = staticcall IAssertions(ASSERTIONS).resolved(assertion_id)
    assert settled and truthful, "governor: result not asserted"
    assertion: AssertionView = staticcall IAssertions(ASSERTIONS).get_assertion(assertion_id)
    assert assertion.target == self, "governor: assertion for another target"
    actions_hash: bytes32 = keccak256(abi_encode(actions))
    assert assertion.claim == keccak256(abi_encode(proposal_id, actions_hash, tally_digest)), \
        "governor: wrong claim"
    self.assertion_used[assertion_id] = True
    self.state[proposal_id] = QUEUED
    self.actions_hash[proposal_id] = actions_hash
    eta: uint256 = block.timestamp + DELAY
    self.eta[proposal_id] = eta
    log Queued(proposal_id=proposal_id, assertion_id=assertion_id, actions_hash=actions_hash, eta=eta)


@external
@nonreentrant
def execute(proposal_id: uint256, actions: DynArray[Action, MAX_ACTIONS]):
    """
    @notice Run a queued proposal's actions once its delay has passed (anyone may call). Every
            action must find its target's runtime code unchanged; one failing action reverts all.
    @param proposal_id The proposal.
    @param actions Its actions, exactly as queued.
    """
    assert self.state[proposal_id] == QUEUED, "governor: not queued"
    assert block.timestamp >= self.eta[proposal_id], "governor: timelock"
    assert keccak256(abi_encode(actions)) == self.actions_hash[proposal_id], "governor: wrong actions"
    self.state[proposal_id] = EXECUTED
    for action: Action in actions:
        assert action.target.codehash == action.code_hash, "governor: target code changed"
        raw_call(action.target, action.data)
    log Executed(proposal_id=proposal_id, actions=len(actions))


@external
def cancel(proposal_id: uint256):
    """
    @notice The guardian stops a queued proposal before it executes.
    @param proposal_id The proposal.
    """
    assert msg.sender == self.guardian, "governor: not guardian"
    assert self.state[proposal_id] == QUEUED, "governor: not queued"
    self.state[proposal_id] = CANCELLED
    log Cancelled(proposal_id=proposal_id)
