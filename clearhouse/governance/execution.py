"""What a proposal's result looks like on-chain: the ``Governor`` actions its parameter, fee,
committee and coordinator changes become, their hash, and the claim asserted for the result.

Pure encodings shared by whoever asserts a result, whoever checks an assertion (the node's
governance watcher, a disputer, an arbitrator) and the tests that compare them with
``Governor.compute_actions_hash``::

    parameter / fee  -> (ParameterStore, code hash, set(keccak256(name), value))
    committee        -> (OracleHub, code hash, set_committee(feed, members, f))  one per proposal:
                        its committee actions applied in order to the committee pinned at creation
    coordinator      -> (Settlement, code hash, admit_coordinator(target))  admit (1)
                        (Settlement, code hash, admit_coordinator(0x0))     remove (0): nobody posts
    claim  = keccak256(abi.encode(proposalId, keccak256(abi.encode(actions)), tallyDigest))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from clearhouse.errors import InvalidProposal
from clearhouse.governance.proposals import (
    Action,
    ActionKind,
    PinnedCommittee,
    compute_committee_change,
)
from clearhouse.messages.keccak import keccak256

__all__ = [
    "ActionTargets",
    "OnchainAction",
    "compute_actions_hash",
    "compute_claim",
    "compute_committee_action",
    "compute_coordinator_action",
    "compute_onchain_action",
    "compute_onchain_actions",
    "compute_parameter_key",
]

_SET: Final = function_signature_to_4byte_selector("set(bytes32,uint256)")
_SET_COMMITTEE: Final = function_signature_to_4byte_selector("set_committee(bytes32,address[],uint256)")
_ADMIT: Final = function_signature_to_4byte_selector("admit_coordinator(address)")
_ACTIONS_TYPE: Final = "(address,bytes32,bytes)[]"
_ZERO: Final = "0x" + "00" * 20

OnchainAction = tuple[str, bytes, bytes]
"""``Governor.Action``: (target address, pinned runtime code hash, calldata)."""


def compute_parameter_key(name: str) -> bytes:
    """``ParameterStore`` key of a parameter: ``keccak256(name)``."""
    return keccak256(name.encode())


def compute_onchain_action(action: Action, store: str, code_hash: bytes) -> OnchainAction:
    """A parameter or fee change as ``ParameterStore.set(key, value)`` pinned to ``code_hash``."""
    if action.kind not in (ActionKind.PARAMETER, ActionKind.FEES):
        raise InvalidProposal(f"{action.kind} actions have no on-chain target in this deployment", field="actions")
    data = _SET + abi_encode(["bytes32", "uint256"], [compute_parameter_key(action.target), action.value])
    return (store, code_hash, data)


def compute_committee_action(actions: Sequence[Action], committee: PinnedCommittee | None, hub: str,
                             code_hash: bytes) -> OnchainAction:
    """The committee actions of ``actions``, applied in order to the proposal's pinned
    ``committee``, as one ``OracleHub.set_committee(feed, members, f)`` pinned to ``code_hash``."""
    if committee is None:
        raise InvalidProposal("committee actions need the committee pinned at creation", field="actions")
    members, f = compute_committee_change(committee, actions)
    data = _SET_COMMITTEE + abi_encode(["bytes32", "address[]", "uint256"],
                                       [committee.feed_id, [to_checksum_address(m) for m in members], f])
    return (hub, code_hash, data)


def compute_coordinator_action(action: Action, settlement: str, code_hash: bytes) -> OnchainAction:
    """Admit (1) ``action.target`` or remove (0) the admitted coordinator, as
    ``Settlement.admit_coordinator(target or 0x0)`` pinned to ``code_hash``."""
    if action.kind is not ActionKind.COORDINATOR:
        raise InvalidProposal(f"{action.kind} is not a coordinator action", field="actions")
    coordinator = to_checksum_address(action.target) if action.value == 1 else _ZERO
    return (settlement, code_hash, _ADMIT + abi_encode(["address"], [coordinator]))


@dataclass(frozen=True, slots=True)
class ActionTargets:
    """The contracts a deployment's proposals execute against, each with the runtime code hash the
    actions pin (``keccak256`` of the code when the result is asserted)."""

    store: str
    """The ``ParameterStore`` (parameter and fee actions)."""
    store_code_hash: bytes
    hub: str | None = None
    """The ``OracleHub`` (committee actions); ``None``: this deployment has none to govern."""
    hub_code_hash: bytes = b""
    settlement: str | None = None
    """The ``Settlement`` (coordinator actions); ``None``: this deployment has none to govern."""
    settlement_code_hash: bytes = b""


def compute_onchain_actions(actions: Sequence[Action], targets: ActionTargets,
                            committee: PinnedCommittee | None = None) -> list[OnchainAction]:
    """Every ``Governor`` action of a proposal's ``actions`` in their order (``committee``: the one
    it pinned, ``Proposal.committee``); its committee actions become one ``set_committee`` at the
    place of the first (intermediate committees need not be ``3f+1``)."""
    out: list[OnchainAction] = []
    committee_done = False
    for action in actions:
        if action.kind is ActionKind.COMMITTEE:
            if targets.hub is None:
                raise InvalidProposal("committee actions have no oracle hub in this deployment", field="actions")
            if not committee_done:
                out.append(compute_committee_action(actions, committee, targets.hub, targets.hub_code_hash))
            committee_done = True
        elif action.kind is ActionKind.COORDINATOR:
            if targets.settlement is None:
                raise InvalidProposal("coordinator actions have no settlement in this deployment", field="actions")
            out.append(compute_coordinator_action(action, targets.settlement, targets.settlement_code_hash))
        else:
            out.append(compute_onchain_action(action, targets.store, targets.store_code_hash))
    return out


def compute_actions_hash(actions: Sequence[OnchainAction]) -> bytes:
    """``Governor.compute_actions_hash``: ``keccak256(abi.encode(actions))``."""
    return keccak256(abi_encode([_ACTIONS_TYPE], [list(actions)]))


def compute_claim(proposal_id: int, actions: Sequence[OnchainAction], tally_digest: bytes) -> bytes:
    """The claim asserted for a proposal's result (what ``Governor.queue`` checks)."""
    return keccak256(abi_encode(["uint256", "bytes32", "bytes32"],
                                [proposal_id, compute_actions_hash(actions), tally_digest]))
