"""Deploy and drive Bonds + Arbitration + Assertions for the contract and property tests.

Importable from any test (``tests/`` is on ``sys.path`` through the root conftest). Accounts:
``accounts[0]`` deploys and administers; tests pick the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from clearhouse.chain import Chain, Contract
from clearhouse.disputes import DisputeParams, Role, compute_vote_commitment
from clearhouse.sim.governance_chain import GOVERNANCE_DISPUTES
from clearhouse.types import Address, Seconds

USDC = 10**6
HOUR = 3600
DAY = 24 * HOUR

PARAMS = replace(GOVERNANCE_DISPUTES, unbonding_delay=Seconds(3 * DAY))
"""The governance deployment's parameters (one-hour phases, a 20 % quorum, 10 % voter slash, 25 % of
the losing bond to voters) with a three-day unbonding delay."""


@dataclass
class DisputeSystem:
    """The three contracts, wired: Arbitration slashes arbitrators, Assertions opens disputes."""

    chain: Chain
    params: DisputeParams
    token: Contract
    bonds: Contract
    arbitration: Contract
    assertions: Contract

    @property
    def admin(self) -> LocalAccount:
        return self.chain.accounts[0]

    def fund(self, who: LocalAccount, amount: int, spender: Contract) -> None:
        """Mint ``amount`` to ``who`` and approve ``spender`` for it."""
        self.token.transact("mint", who.address, amount)
        self.token.transact("approve", spender.address, amount, sender=who)

    def bond(self, who: LocalAccount, role: Role, amount: int) -> None:
        """Mint, approve and bond ``amount`` for ``who`` in ``role``."""
        self.fund(who, amount, self.bonds)
        self.bonds.transact("bond", int(role), amount, sender=who)

    def assert_claim(self, who: LocalAccount, bond: int, claim: bytes = b"\x11" * 32,
                     liveness: int | None = None) -> int:
        """Fund and post an assertion; return its id."""
        self.fund(who, bond, self.assertions)
        receipt = self.assertions.transact("assert_claim", claim, bond,
                                           liveness or self.params.min_liveness, sender=who)
        return int(receipt.events_named("ClaimAsserted")[0].args["assertion_id"])

    def dispute(self, who: LocalAccount, assertion_id: int) -> int:
        """Fund and dispute; return the arbitration dispute id."""
        bond = self.assertion(assertion_id)["bond"]
        self.fund(who, bond, self.assertions)
        receipt = self.assertions.transact("dispute", assertion_id, sender=who)
        return int(receipt.events_named("ClaimDisputed")[0].args["dispute_id"])

    def commit(self, who: LocalAccount, dispute_id: int, vote: bool, salt: bytes) -> None:
        """Commit ``vote`` with ``salt``."""
        commitment = compute_vote_commitment(vote, salt, Address(who.address))
        self.arbitration.transact("commit", dispute_id, commitment, sender=who)

    def reveal(self, who: LocalAccount, dispute_id: int, vote: bool, salt: bytes) -> None:
        """Reveal ``who``'s vote (sent by ``who``)."""
        self.arbitration.transact("reveal", dispute_id, who.address, vote, salt, sender=who)

    def assertion(self, assertion_id: int) -> dict[str, Any]:
        """``Assertions.get_assertion`` by field name."""
        return read_struct(self.assertions, "get_assertion", assertion_id)

    def dispute_record(self, dispute_id: int) -> dict[str, Any]:
        """``Arbitration.get_dispute`` by field name."""
        return read_struct(self.arbitration, "get_dispute", dispute_id)

    def ballot(self, dispute_id: int, voter: str) -> dict[str, Any]:
        """``Arbitration.get_ballot`` by field name."""
        return read_struct(self.arbitration, "get_ballot", dispute_id, voter)

    def balance(self, who: str) -> int:
        """Token balance of an address."""
        return int(self.token.call("balanceOf", who))


def read_struct(contract: Contract, fn: str, *args: Any) -> dict[str, Any]:
    """Call a view returning one struct and name its fields (addresses checksummed)."""
    (output,) = next(f for f in contract.artifact.abi if f.get("name") == fn)["outputs"]
    values = contract.call(fn, *args)
    return {c["name"]: to_checksum_address(v) if c["type"] == "address" else v
            for c, v in zip(output["components"], values, strict=True)}


def deploy_dispute_system(chain: Chain, params: DisputeParams = PARAMS) -> DisputeSystem:
    """Deploy the token and the three contracts and register them with each other."""
    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    bonds = chain.deploy("Bonds", *params.bonds_args(token.address))
    arbitration = chain.deploy("Arbitration", *params.arbitration_args(bonds.address))
    assertions = chain.deploy("Assertions", *params.assertions_args(arbitration.address))
    bonds.transact("set_slasher", arbitration.address, int(Role.ARBITRATOR), True)
    arbitration.transact("set_requester", assertions.address, True)
    return DisputeSystem(chain, params, token, bonds, arbitration, assertions)


def salt_for(*parts: object) -> bytes:
    """A deterministic 32-byte salt for tests (real voters use ``os.urandom(32)``)."""
    return hashlib.sha256(repr(parts).encode()).digest()
