"""The SDK's chain side: custody actions signed with the trader's own key, and a light client that
checks what the node says about the account against the chain, never against the node.

:class:`ChainAccess` implements :class:`~clearhouse.sdk.client.ChainSide` over
``clearhouse.chain`` — the in-process EVM, or any JSON-RPC node (web3.py, transactions signed
locally with eth-account):

* ``deposit`` approves the vault and deposits; ``force_withdraw`` queues a forced withdrawal;
* ``claim_withdrawal`` finds the account's unclaimed payouts of finalised batches from chain data
  alone (the posting transactions' calldata, checked against the header hash and withdrawals root
  the contract keeps) and pulls them;
* ``verify_account`` / :meth:`ChainAccess.check_account_proof` take the node's
  ``GET /v1/accounts/{address}/proof`` answer and check it against ``Settlement.batch_root`` read
  from the chain: the root's preimage, the Merkle path of the leaf under the accounts root, the
  leaf's encoding and owner, the vault's account id of the address, and that the balance and
  positions the node states are the leaf's;
* ``exit_after_freeze`` proves the leaf under the frozen root and takes its free collateral.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract, Receipt, connect
from clearhouse.errors import ConfigError, InvalidBatch, InvalidProof, MalformedOperation
from clearhouse.merkle.sparse import CompactProof, is_excluded, is_included
from clearhouse.messages.keccak import keccak256
from clearhouse.settlement.encoding import decode_window
from clearhouse.settlement.header import compute_payout_tree
from clearhouse.settlement.state import (
    ACCOUNT_TREE_DEPTH,
    STATE_ROOT_PREFIX,
    Account,
    decode_account,
)
from clearhouse.settlement.watcher import (
    compute_payouts_of,
    decode_header,
    decode_ops_data,
    decode_posting,
)
from clearhouse.types import AccountId, Address, Amount, BatchNumber, Digest

__all__ = ["ChainAccess", "PayoutClaim", "VerifiedAccount", "parse_account_proof"]

_PREIMAGE_BYTES = 168
"""Bytes after ``0x02`` in a state root's preimage: accounts root, consumed root, counters."""


@dataclass(frozen=True, slots=True)
class ParsedProof:
    """A node's proof answer, parsed (nothing checked against the chain yet)."""

    address: Address
    account_id: AccountId
    batch: BatchNumber
    state_root: Digest
    preimage: bytes
    leaf: bytes | None
    proof: CompactProof
    balance: Amount
    positions: tuple[tuple[str, str, int, str], ...]
    """``(expiryId, strike, kind, quantity)`` as the node stated them."""


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    """An account's state as proven against the chain's root of a finalised batch."""

    account_id: AccountId
    """The vault's id of the address."""
    batch: BatchNumber
    """The finalised batch the proof is against (0: genesis)."""
    state_root: Digest
    """``Settlement.batch_root(batch)``, read from the chain."""
    leaf: Account | None
    """The proven leaf (``None``: proven absent, e.g. a deposit not batched yet)."""

    @property
    def balance(self) -> Amount:
        """Free plus locked collateral in the proven state, quote base units."""
        return Amount(0) if self.leaf is None else self.leaf.balance


@dataclass(frozen=True, slots=True)
class PayoutClaim:
    """One payout of a finalised batch and its claims-tree proof."""

    number: BatchNumber
    """The batch."""
    index: int
    """The payout's index in the batch."""
    recipient: Address
    """Who is paid."""
    amount: Amount
    """Quote base units."""
    proof: tuple[Digest, ...]
    """Proof of ``(number, index, recipient, amount)`` under the batch's withdrawals root."""


# --- parsing -----------------------------------------------------------------------------------


def _bytes(value: object, field: str, size: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise InvalidProof(f"{field} must be 0x-hex", field=field)
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise InvalidProof(f"{field} must be 0x-hex", field=field) from None
    if size is not None and len(raw) != size:
        raise InvalidProof(f"{field} must be {size} bytes", field=field)
    return raw


def _int(value: object, field: str, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise InvalidProof(f"{field} must be a uint{bits}", field=field)
    return value


def _decimal(value: object, field: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 78:
        raise InvalidProof(f"{field} must be a decimal string", field=field)
    return int(value)


def parse_account_proof(data: Mapping[str, Any]) -> ParsedProof:
    """The node's proof answer, strictly parsed; :class:`InvalidProof` (with ``field``) if a
    field is missing or malformed."""
    if not isinstance(data, Mapping):
        raise InvalidProof("a proof must be a JSON object", field="proof")
    try:
        bitmap_hex = data["bitmap"]
        if not isinstance(bitmap_hex, str) or not bitmap_hex.startswith("0x"):
            raise InvalidProof("bitmap must be 0x-hex", field="bitmap")
        try:
            bitmap = int(bitmap_hex, 16)
        except ValueError:
            raise InvalidProof("bitmap must be 0x-hex", field="bitmap") from None
        siblings = data["siblings"]
        if not isinstance(siblings, list) or len(siblings) != bin(bitmap).count("1") or bitmap >> 256:
            raise InvalidProof("one sibling per set bit of a 256-bit bitmap", field="siblings")
        positions = data["positions"]
        if not isinstance(positions, list):
            raise InvalidProof("positions must be a list", field="positions")
        address = data["address"]
        if not isinstance(address, str) or len(_bytes(address, "address")) != 20:
            raise InvalidProof("address must be a 20-byte address", field="address")
        return ParsedProof(
            Address(address), AccountId(_int(data["accountId"], "accountId", 32)),
            BatchNumber(_int(data["batch"], "batch", 64)),
            Digest(_bytes(data["stateRoot"], "stateRoot", 32)),
            _bytes(data["preimage"], "preimage", _PREIMAGE_BYTES),
            None if data["leaf"] is None else _bytes(data["leaf"], "leaf"),
            CompactProof(bitmap, tuple(Digest(_bytes(s, "siblings", 32)) for s in siblings)),
            Amount(_decimal(data["balance"], "balance")),
            tuple((str(p["expiryId"]).lower(), str(p["strike"]), int(p["kind"]), str(p["quantity"]))
                  for p in positions))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidProof(f"malformed proof: {exc}", field="proof") from None


def _stated_positions(leaf: Account) -> tuple[tuple[str, str, int, str], ...]:
    return tuple(("0x" + bytes(p.expiry_id).hex(), str(p.strike), int(p.kind), str(p.quantity))
                 for p in leaf.positions)


# --- the chain side ----------------------------------------------------------------------------


class ChainAccess:
    """One trader's access to a deployment: signs with ``private_key`` (never leaves the process)."""

    def __init__(self, chain: Chain, settlement: str, vault: str, private_key: bytes, *,
                 token: str | None = None) -> None:
        self.chain = chain
        self.settlement: Contract = chain.at("Settlement", settlement)
        self.vault: Contract = chain.at("Vault", vault)
        self.token: Contract = chain.at("mocks/TestToken", token or str(self.vault.call("token")))
        self.signer: LocalAccount = EthAccount.from_key(private_key)

    @classmethod
    def connect(cls, target: str | Chain, deployment: Mapping[str, Any], private_key: bytes) -> ChainAccess:
        """Over ``target`` (a JSON-RPC URL, ``inprocess`` or a chain) with a deployment
        description's ``settlement.{settlement,vault,token}`` addresses."""
        chain = connect(target) if isinstance(target, str) else target
        try:
            s = deployment["settlement"]
            return cls(chain, s["settlement"], s["vault"], private_key, token=s.get("token"))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"the deployment lacks the settlement addresses: {exc}",
                              field="deployment") from exc

    @property
    def address(self) -> Address:
        return Address(self.signer.address)

    def _own(self, account: Address) -> None:
        if account.lower() != self.signer.address.lower():
            raise ConfigError(f"this chain side signs for {self.signer.address}, not {account}",
                              field="account")

    # --- custody -------------------------------------------------------------------------------

    def get_account_id(self, account: Address) -> AccountId | None:
        """The vault's id of ``account`` (``None`` before its first deposit)."""
        exists, account_id = self.vault.call("account_of", account)
        return AccountId(int(account_id)) if exists else None

    def deposit(self, account: Address, amount: Amount) -> Receipt:
        """Approve the vault for ``amount`` quote base units and deposit them (queued for the next
        batch; the coordinator credits it from the ``Deposited`` event)."""
        self._own(account)
        self.token.transact("approve", self.vault.address, int(amount), sender=self.signer)
        return self.vault.transact("deposit", int(amount), sender=self.signer)

    def force_withdraw(self, account: Address, amount: Amount) -> Receipt:
        """Queue a forced withdrawal of up to ``amount``: a batch must serve it within
        ``T_force`` or anyone may freeze the settlement."""
        self._own(account)
        return self.vault.transact("request_forced_withdrawal", int(amount), sender=self.signer)

    # --- payouts -------------------------------------------------------------------------------

    def find_payouts(self, account: Address) -> list[PayoutClaim]:
        """Unclaimed payouts to ``account`` in finalised batches, from chain data only: each
        batch's posting calldata must hash to the header the contract keeps, and its payouts must
        rebuild the withdrawals root the contract keeps."""
        last_final = int(self.settlement.call("last_finalized"))
        postings: dict[bytes, str] = {}
        for entry, event in self.chain.get_events(self.settlement.address):
            if event.name == "BatchPosted":
                postings.setdefault(bytes(event.args["header_hash"]), entry.tx_hash)
        claims = []
        for number in range(1, last_final + 1):
            claims.extend(self._batch_payouts(BatchNumber(number), postings, account))
        return claims

    def _batch_payouts(self, number: BatchNumber, postings: Mapping[bytes, str], account: Address
                       ) -> list[PayoutClaim]:
        root = bytes(self.settlement.call("batch_withdrawals_root", number))
        if root == bytes(32):
            return []
        header_hash = bytes(self.settlement.call("batch_header_hash", number))
        tx_hash = postings.get(header_hash)
        if tx_hash is None:
            raise InvalidBatch(f"no posting of batch {number}'s header on chain", field="number")
        header_bytes, ops_data = decode_posting(self.chain.get_transaction_input(tx_hash))
        if keccak256(header_bytes) != header_hash:
            raise InvalidBatch(f"batch {number}'s posting is not its header", field="header")
        header = decode_header(header_bytes)
        windows = decode_ops_data(ops_data, len(header.checkpoint_roots))
        payouts = compute_payouts_of([op for w in windows for op in decode_window(w)])
        tree = compute_payout_tree(number, payouts)
        if tree is None or tree.root != root:
            raise InvalidBatch(f"batch {number}'s payouts do not rebuild its withdrawals root",
                               field="withdrawalsRoot")
        return [PayoutClaim(number, i, p.recipient, p.amount, tuple(tree.get_proof(i)))
                for i, p in enumerate(payouts)
                if p.recipient.lower() == account.lower()
                and not self.settlement.call("claimed", number << 32 | i)]

    def claim_withdrawal(self, account: Address, proof: PayoutClaim | None = None) -> Amount:
        """Pull ``proof``'s payout, or every unclaimed payout to ``account`` (anyone may send a
        claim; this sends it from the trader's key). Returns the amount paid, base units."""
        self._own(account)
        claims = [proof] if proof is not None else self.find_payouts(account)
        paid = 0
        for c in claims:
            receipt = self.settlement.transact("claim", c.number, c.index, c.recipient, c.amount,
                                               list(c.proof), sender=self.signer)
            paid += sum(int(e.args["amount"]) for e in receipt.events_named("Claimed"))
        return Amount(paid)

    # --- the light client ----------------------------------------------------------------------

    def check_account_proof(self, account: Address, data: Mapping[str, Any], *, latest: bool = True
                            ) -> VerifiedAccount:
        """Check the node's proof answer for ``account`` against the chain; :class:`InvalidProof`
        (its ``field`` says which check) unless every check passes. ``latest``: the proof must be
        against the last finalised batch (an older one may be true but stale)."""
        p = parse_account_proof(data)
        if p.address.lower() != account.lower():
            raise InvalidProof("the proof is for another address", field="address")
        if self.get_account_id(account) != p.account_id:
            raise InvalidProof("the vault gives this address another account id", field="accountId")
        last_final = int(self.settlement.call("last_finalized"))
        if p.batch > last_final or (latest and p.batch != last_final):
            raise InvalidProof(f"batch {p.batch} is not the last final batch ({last_final}) on chain",
                               field="batch")
        root = Digest(bytes(self.settlement.call("batch_root", p.batch)))
        self._check_leaf(p, root)
        leaf = None if p.leaf is None else decode_account(p.leaf)
        return VerifiedAccount(p.account_id, p.batch, root, leaf)

    @staticmethod
    def _check_leaf(p: ParsedProof, root: Digest) -> None:
        if p.state_root != root:
            raise InvalidProof("the stated root is not the chain's", field="stateRoot")
        if keccak256(STATE_ROOT_PREFIX + p.preimage) != root:
            raise InvalidProof("the preimage does not hash to the chain's root", field="preimage")
        accounts_root = Digest(p.preimage[:32])
        if p.leaf is None:
            if not is_excluded(accounts_root, p.account_id, p.proof, ACCOUNT_TREE_DEPTH):
                raise InvalidProof("the path does not prove the account absent", field="siblings")
            if p.balance or p.positions:
                raise InvalidProof("a balance stated for an absent leaf", field="balance")
            return
        try:
            leaf = decode_account(p.leaf)
        except MalformedOperation as exc:
            raise InvalidProof(f"the leaf is not a canonical account encoding: {exc}", field="leaf") from None
        if leaf.owner.lower() != p.address.lower():
            raise InvalidProof("the leaf belongs to another owner", field="leaf")
        if not is_included(accounts_root, p.account_id, Digest(keccak256(p.leaf)), p.proof, ACCOUNT_TREE_DEPTH):
            raise InvalidProof("the Merkle path does not lead to the accounts root", field="siblings")
        if p.balance != leaf.balance:
            raise InvalidProof(f"the node states {p.balance}, the proven leaf {leaf.balance}", field="balance")
        if p.positions != _stated_positions(leaf):
            raise InvalidProof("the stated positions are not the proven leaf's", field="positions")

    def verify_account(self, account: Address, state: Any) -> bool:
        """True iff ``state`` (the node's proof answer) proves ``account``'s state against the
        last finalised root on chain (:meth:`check_account_proof` says why not)."""
        try:
            self.check_account_proof(account, state)
        except InvalidProof:
            return False
        return True

    # --- the escape hatch ----------------------------------------------------------------------

    def exit_after_freeze(self, account: Address, proof: Any) -> Amount:
        """After a freeze, prove ``account``'s leaf (``proof``: a proof answer against the last
        finalised batch, from the node or any watcher) under the frozen root and take its free
        collateral; positions are paid by ``exit_positions`` once their expiries are priced.
        Returns the amount paid, base units."""
        self._own(account)
        if not self.settlement.call("frozen"):
            raise InvalidProof("the settlement is not frozen: nothing to exit from", field="frozen")
        verified = self.check_account_proof(account, proof)
        if verified.state_root != Digest(bytes(self.settlement.call("frozen_root"))):
            raise InvalidProof("the proof is not against the frozen root", field="stateRoot")
        if verified.leaf is None:
            raise InvalidProof("the frozen state has no leaf for this account", field="leaf")
        p = parse_account_proof(proof)
        receipt = self.settlement.transact("exit", p.preimage, int(p.account_id), p.leaf,
                                           p.proof.bitmap, list(p.proof.siblings), sender=self.signer)
        return Amount(sum(int(e.args["amount"]) for e in receipt.events_named("Exited")))
