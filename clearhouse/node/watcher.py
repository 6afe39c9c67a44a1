"""The watcher role: rebuild the settlement state from chain data alone, re-execute every batch,
challenge a wrong one from its own account, and freeze when a forced withdrawal goes unserved.

Chain data only: ``BatchPosted`` events and the posting transactions' calldata (the batch's header
and operations), the vault's deposit and forced-withdrawal events, and a few public views
(``last_batch``, ``batch_header_hash``, ``forced_time``). No coordinator API is read. The rules are
:mod:`clearhouse.settlement.watcher`; this class is the store plus ``on_tick``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from clearhouse.chain import Chain, Contract, Receipt
from clearhouse.errors import ChainError, ConfigError, ContractRevert
from clearhouse.node.parameters import (
    compute_freeze_deadline,
    get_pause_window,
    load_chain_parameters,
)
from clearhouse.settlement import (
    BatchHeader,
    SettlementContext,
    SettlementState,
    compute_genesis_state,
)
from clearhouse.settlement.watcher import (
    BatchVerdict,
    FaultKind,
    compute_execution_proof,
    decode_header,
    decode_posting,
    process_batch,
)
from clearhouse.types import Address, Amount, Digest, Gas, Timestamp

__all__ = ["Challenge", "QueueEntry", "Watcher"]


@dataclass(frozen=True, slots=True)
class Challenge:
    """One proof the watcher submitted and what it earned."""

    number: int
    """The batch challenged."""
    kind: FaultKind
    """Which proof (queues, execution, payouts)."""
    reason: str
    """What the watcher found wrong (its own re-execution's words)."""
    succeeded: bool
    """True if the chain accepted the proof (``FraudProven``)."""
    slashed: Amount
    """Coordinator bond slashed, token base units (0 if it failed)."""
    reward: Amount
    """Paid to the watcher's account, token base units (0 if it failed)."""
    gas_used: Gas
    """Gas of the challenge transaction (0 if it reverted)."""
    error: str = ""
    """The revert reason when the chain refused the proof."""


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A vault queue entry as its event reports it."""

    index: int
    """Position in its queue."""
    account: int
    """The account id."""
    owner: Address
    """The depositor or requester."""
    amount: Amount
    """Deposited or requested, token base units."""


class Watcher:
    """An independent watcher over one deployment (``Settlement``, ``Vault``, ``WindowVerifier``).

    ``context(timestamp)`` is the deployment's settlement context (domain, parameters, listed
    expiries) at a batch's timestamp; each batch is re-executed with the governed parameters of the
    version its header names (``clearhouse.node.parameters``: the one ``Settlement`` accepted for its
    number). ``account`` signs the challenges and receives the rewards.
    """

    def __init__(self, chain: Chain, settlement: Contract, vault: Contract, verifier: Contract | None,
                 context: Callable[[Timestamp], SettlementContext], account: LocalAccount) -> None:
        self.chain, self.settlement, self.vault, self.verifier = chain, settlement, vault, verifier
        self.context, self.account = context, account
        self.states: dict[int, SettlementState] = {0: compute_genesis_state()}
        """Re-executed state after each verified batch still on-chain (0 = genesis)."""
        self.header_hashes: dict[int, Digest] = {}
        """Header hash of each verified batch."""
        self.postings: dict[bytes, str] = {}
        """Posting transaction by header hash, from ``BatchPosted`` events."""
        self.deposits: dict[int, QueueEntry] = {}
        """The vault's deposit queue, from ``Deposited`` events."""
        self.forced: dict[int, QueueEntry] = {}
        """The vault's forced-withdrawal queue, from ``ForcedWithdrawalRequested`` events."""
        self.challenges: list[Challenge] = []
        """Every challenge submitted, in order."""
        self.froze: bool = False
        """True once this watcher called ``freeze``."""
        self._cursor = 0
        self._acted: set[bytes] = set()
        self._parameters = load_chain_parameters(chain, settlement)

    def _context(self, header: BatchHeader) -> SettlementContext:
        """The context a posted batch is judged with: its timestamp, its parameter version."""
        return self._parameters.get_context(self.context(header.timestamp), version=header.parameter_version)

    @property
    def rewards(self) -> Amount:
        """Total reward collected from successful challenges, token base units."""
        return Amount(sum(c.reward for c in self.challenges))

    @property
    def verified(self) -> int:
        """The last batch re-executed and found correct."""
        return max(self.states)

    # --- the handler ---------------------------------------------------------------------------

    def on_tick(self) -> list[Challenge]:
        """Read what the chain did since the last tick, verify every new batch, challenge the first
        wrong one (later batches fall with it), freeze if a forced withdrawal is overdue."""
        self._scan()
        last = int(self.settlement.call("last_batch"))
        self._drop_reverted(last)
        submitted: list[Challenge] = []
        for n in range(self.verified + 1, last + 1):
            header_hash = bytes(self.settlement.call("batch_header_hash", n))
            if header_hash in self._acted:
                break  # challenged already (and the proof failed) or not provable: do not repeat
            tx_hash = self.postings.get(header_hash)
            if tx_hash is None:  # posted after the scan's head block: scan up to the new head once
                self._scan()
                tx_hash = self.postings.get(header_hash)
            if tx_hash is None:
                raise ChainError(f"no BatchPosted event for batch {n}'s header", number=n)
            header_bytes, ops_data = decode_posting(self.chain.get_transaction_input(tx_hash))
            header = decode_header(header_bytes)
            verdict = process_batch(self.states[n - 1], header, ops_data, self._context(header))
            if verdict.kind is FaultKind.NONE and verdict.state is not None:
                self.states[n], self.header_hashes[n] = verdict.state, Digest(header_hash)
                continue
            self._acted.add(header_hash)
            submitted.append(self._challenge(n, header_bytes, ops_data, verdict))
            break
        self._freeze_if_overdue()
        return submitted

    # --- reading the chain ---------------------------------------------------------------------

    def _scan(self) -> None:
        head = self.chain.block_number()
        for entry, event in self.chain.get_events(self.settlement.address, self._cursor, head):
            if event.name == "BatchPosted":  # a header hash names one posting (it holds the number)
                self.postings.setdefault(bytes(event.args["header_hash"]), entry.tx_hash)
        for _, event in self.chain.get_events(self.vault.address, self._cursor, head):
            a = event.args
            if event.name == "Deposited":
                self.deposits[int(a["index"])] = QueueEntry(int(a["index"]), int(a["account"]),
                                                            Address(a["owner"]), Amount(int(a["amount"])))
            elif event.name == "ForcedWithdrawalRequested":
                self.forced[int(a["index"])] = QueueEntry(int(a["index"]), int(a["account"]),
                                                          Address(a["owner"]), Amount(int(a["requested"])))
        self._cursor = head  # the head block is read again next time: it may still grow in-process

    def _drop_reverted(self, last: int) -> None:
        """Forget verified batches the chain no longer holds (reverted by a fraud proof, or a freeze)."""
        for n in sorted(self.header_hashes, reverse=True):
            if n <= last and bytes(self.settlement.call("batch_header_hash", n)) == self.header_hashes[n]:
                break
            del self.header_hashes[n], self.states[n]

    # --- acting --------------------------------------------------------------------------------

    def _challenge(self, n: int, header_bytes: bytes, ops_data: bytes, verdict: BatchVerdict) -> Challenge:
        try:
            receipt = self._submit(n, header_bytes, ops_data, verdict)
        except ContractRevert as exc:
            challenge = Challenge(n, verdict.kind, verdict.reason, False, Amount(0), Amount(0), Gas(0),
                                  exc.reason or "reverted")
        else:
            proven = receipt.events_named("FraudProven")
            slashed = Amount(sum(int(e.args["slashed"]) for e in proven))
            reward = Amount(sum(int(e.args["reward"]) for e in proven))
            challenge = Challenge(n, verdict.kind, verdict.reason, bool(proven), slashed, reward,
                                  receipt.gas_used)
        self.challenges.append(challenge)
        return challenge

    def _submit(self, n: int, header_bytes: bytes, ops_data: bytes, verdict: BatchVerdict) -> Receipt:
        if verdict.kind is FaultKind.QUEUES:
            return self.settlement.transact("challenge_queues", n, header_bytes, ops_data, sender=self.account)
        if verdict.kind is FaultKind.PAYOUTS:
            return self.settlement.transact("challenge_payouts", n, header_bytes, ops_data,
                                            list(verdict.payout_order), sender=self.account)
        if self.verifier is None:
            raise ConfigError("no window verifier to prove an execution fault", field="verifier", number=n)
        header = decode_header(header_bytes)
        proof = compute_execution_proof(verdict, header, ops_data, self._context(header))
        return self.verifier.transact(
            "challenge_execution", n, header_bytes, proof.window, proof.core, proof.auth,
            list(proof.window_hashes), proof.checkpoint, list(proof.witnesses), sender=self.account)

    def _freeze_if_overdue(self) -> None:
        """Call ``freeze`` once the oldest forced withdrawal no verified batch served is ``T_force`` old."""
        if self.froze or self.settlement.call("frozen"):
            return
        pending = self.states[self.verified].counters.forced_count
        if pending >= int(self.vault.call("forced_count")):
            return
        requested = Timestamp(int(self.vault.call("forced_time", pending)))
        t_force = self._parameters.get_windows(self.settlement)[1]
        if self.chain.now() < compute_freeze_deadline(requested, t_force, get_pause_window(self.settlement)):
            return
        if self.verified != int(self.settlement.call("last_batch")):
            return  # a pending wrong batch must be challenged first (it may be what serves it)
        self.settlement.transact("freeze", sender=self.account)
        self.froze = True
