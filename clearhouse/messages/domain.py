"""The EIP-712 domain of one clearhouse deployment, with its separator computed once.

A :class:`Domain` binds signatures to one chain and one contract. The caller builds it from the
chain id it has just read from the chain (``Chain.chain_id``) and never keeps one across a fork.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from clearhouse.messages.checks import check_address, check_string, check_uint
from clearhouse.messages.eip712 import compute_type_hash, keccak256
from clearhouse.messages.schema import DOMAIN_FIELDS
from clearhouse.params import Params
from clearhouse.types import Address, ChainId, Digest

__all__ = ["DOMAIN_TYPEHASH", "MAX_NAME_BYTES", "MAX_VERSION_BYTES", "Domain", "compute_domain"]

DOMAIN_TYPEHASH: Final = compute_type_hash(
    "EIP712Domain", {"EIP712Domain": [{"name": n, "type": t} for _, n, t in DOMAIN_FIELDS]})
"""``keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")``."""
MAX_NAME_BYTES: Final = 64
"""Longest domain ``name`` (``String[64]`` in the contracts)."""
MAX_VERSION_BYTES: Final = 32
"""Longest domain ``version`` (``String[32]`` in the contracts)."""


@dataclass(frozen=True, slots=True)
class Domain:
    """``EIP712Domain(name, version, chainId, verifyingContract)`` of one deployment.

    Build it per use from a chain id read live from the chain: a domain cached across a fork
    would accept signatures meant for the other chain.
    """

    name: str
    """Human-readable protocol name (``Params.eip712_name``)."""
    version: str
    """Message-layout version (``Params.eip712_version``)."""
    chain_id: ChainId
    """EIP-155 chain id, read from the chain by the caller, never cached across forks."""
    verifying_contract: Address
    """The contract that verifies these signatures (the settlement contract); checksummed."""
    separator: Digest = field(init=False, repr=False, compare=False)
    """``hashStruct(EIP712Domain)``, computed once at construction."""

    def __post_init__(self) -> None:
        check_string(self.name, MAX_NAME_BYTES, "domain.name")
        check_string(self.version, MAX_VERSION_BYTES, "domain.version")
        check_uint(self.chain_id, 256, "domain.chainId", minimum=1)
        object.__setattr__(self, "verifying_contract",
                           check_address(self.verifying_contract, "domain.verifyingContract"))
        packed = b"".join((
            DOMAIN_TYPEHASH,
            keccak256(self.name.encode()),
            keccak256(self.version.encode()),
            self.chain_id.to_bytes(32, "big"),
            bytes.fromhex(self.verifying_contract[2:]).rjust(32, b"\x00"),
        ))
        object.__setattr__(self, "separator", keccak256(packed))

    def to_typed_data(self) -> dict[str, Any]:
        """The ``domain`` object of ``eth_signTypedData_v4`` JSON (``chainId`` as a JSON number)."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": int(self.chain_id),
            "verifyingContract": self.verifying_contract,
        }


def compute_domain(params: Params, chain_id: ChainId, verifying_contract: Address) -> Domain:
    """The deployment's domain from its parameters and a chain id the caller read live."""
    return Domain(params.eip712_name, params.eip712_version, chain_id, verifying_contract)
