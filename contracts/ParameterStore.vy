# pragma version ~=0.4.3
"""
@title Versioned protocol parameters with bounds, changed only by the Governor
@custom:contract-name ParameterStore
@license MIT
@notice Each governed parameter has fixed bounds set at deployment. A change (only from the
        Governor, only within bounds) creates a new version that applies from the batch after
        the last one posted, so every batch is verified with the parameters it was built under
        and older versions stay readable for fraud proofs on older batches.
"""


interface ISettlement:
    def last_batch() -> uint256: view


MAX_PARAMETERS: public(constant(uint256)) = 32


struct Bound:
    minimum: uint256
    maximum: uint256
    listed: bool


event ParameterChanged:
    key: indexed(bytes32)
    value: uint256
    version: indexed(uint256)
    from_batch: uint256


GOVERNOR: public(immutable(address))
SETTLEMENT: public(immutable(address))

bounds: public(HashMap[bytes32, Bound])
version: public(uint256)
# @notice The latest version (1 at deployment).
from_batch: public(HashMap[uint256, uint256])
# @notice The first batch each version applies to.
_values: HashMap[uint256, HashMap[bytes32, uint256]]
_changed_in: HashMap[bytes32, DynArray[uint256, 256]]


@deploy
def __init__(governor: address, settlement: address, keys: DynArray[bytes32, MAX_PARAMETERS],
             minimums: DynArray[uint256, MAX_PARAMETERS], maximums: DynArray[uint256, MAX_PARAMETERS],
             values: DynArray[uint256, MAX_PARAMETERS]):
    """
    @param governor The only address that may change a parameter.
    @param settlement The settlement whose batches versions apply to.
    @param keys Parameter names (`keccak256` of the name).
    @param minimums Lowest allowed value of each.
    @param maximums Highest allowed value of each.
    @param values Initial values (version 1, from batch 1).
    """
    assert len(keys) == len(minimums) and len(keys) == len(maximums) and len(keys) == len(values), \
        "parameters: lengths differ"
    GOVERNOR = governor
    SETTLEMENT = settlement
    for i: uint256 in range(len(keys), bound=MAX_PARAMETERS):
        key: bytes32 = keys[i]
        assert not self.bounds[key].listed, "parameters: duplicate key"
        assert minimums[i] <= values[i] and values[i] <= maximums[i], "parameters: value out of bounds"
        self.bounds[key] = Bound(minimum=minimums[i], maximum=maximums[i], listed=True)
        self._values[1][key] = values[i]
        self._changed_in[key].append(1)
    self.version = 1
    self.from_batch[1] = 1


@external
def set(key: bytes32, new_value: uint256):
    """
    @notice Change one parameter (Governor only, within its bounds) as a new version that applies
            from the next batch (every change is its own version, so a version's values never
            change; `Settlement` reads them through the window verifier, decision 0006).
    @param key The parameter.
    @param new_value Its new value.
    """
    assert msg.sender == GOVERNOR, "parameters: not governor"
    bound: Bound = self.bounds[key]
    assert bound.listed, "parameters: unknown key"
    assert bound.minimum <= new_value and new_value <= bound.maximum, "parameters: out of bounds"
    next_batch: uint256 = staticcall ISettlement(SETTLEMENT).last_batch() + 1
    # Every change is a new version, even before the same batch: a version's values never change
    # once it exists, so a batch built under it cannot be judged with other values (a batch
    # built under the previous one is refused at posting: it names the wrong version).
    version: uint256 = self.version + 1
    self.version = version
    self.from_batch[version] = next_batch
    self._values[version][key] = new_value
    self._changed_in[key].append(version)
    log ParameterChanged(key=key, value=new_value, version=version, from_batch=next_batch)


@external
@view
def get(key: bytes32, version: uint256) -> uint256:
    """
    @notice A parameter's value under `version`: its last change at or before that version.
    @param key The parameter.
    @param version A version from 1 to `version`.
    @return uint256 The value.
    """
    assert self.bounds[key].listed, "parameters: unknown key"
    assert version >= 1 and version <= self.version, "parameters: unknown version"
    changes: DynArray[uint256, 256] = self._changed_in[key]
    for i: uint256 in range(len(changes), bound=256):
        v: uint256 = changes[len(changes) - 1 - i]
        if v <= version:
            return self._values[v][key]
    raise "parameters: unreachable"


@external
@view
def version_at(batch: uint256) -> uint256:
    """
    @notice The version a batch was built under: the latest whose first batch is at or before it.
    @param batch A batch number (from 1).
    @return uint256 The version.
    """
    assert batch >= 1, "parameters: batch numbers start at 1"
    version: uint256 = self.version
    for i: uint256 in range(256):
        if self.from_batch[version] <= batch:
            return version
        version -= 1
    raise "parameters: too many versions"
