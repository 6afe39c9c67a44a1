"""The demo: one complete session on a chain, printing what happened and writing a summary.

Every figure in ``out/demo/summary.json`` is measured from what actually happened on the chain
during the run. The demo grows with each capability; today it covers the foundation: contracts
deployed, accounts funded, every message type signed and verified off-chain (fast path, batch
across cores) and on-chain (the Vyper EIP-712 module), bad signatures refused on both sides, and
Merkle commitments built off-chain and verified on-chain.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clearhouse.chain import Chain, Contract, connect
from clearhouse.errors import ContractRevert, InvalidMessage
from clearhouse.market.instruments import compute_series_id, parse_series_name
from clearhouse.merkle import ClaimsTree, SparseMerkleTree
from clearhouse.messages import (
    RFQ,
    Accept,
    BatchItem,
    Cancel,
    Choice,
    Domain,
    Leg,
    Message,
    Observation,
    Order,
    Post,
    Quote,
    QuoteLeg,
    Side,
    SignIn,
    TimeInForce,
    Vote,
    Withdrawal,
    compute_domain,
    compute_quote_digest,
    compute_rfq_digest,
    sign,
    to_abi_tuple,
    verify,
    verify_batch,
)
from clearhouse.messages.keccak import keccak256
from clearhouse.params import load_params
from clearhouse.sim.governance_scenario import run_governance_scenario
from clearhouse.sim.market_scenario import NAMES as MARKET_NAMES
from clearhouse.sim.market_scenario import run_market_scenario
from clearhouse.sim.node_scenario import run_node_scenario
from clearhouse.sim.oracle_scenario import run_oracle_scenario
from clearhouse.sim.participants import (
    Participant,
    compute_participants,
    render_participants,
    summarize_participants,
)
from clearhouse.sim.report import DemoTrace, TimelineEvent, write_report
from clearhouse.sim.settlement_scenario import run_settlement_scenario
from clearhouse.types import Address, Amount, ChainId, Digest, Nonce, Price, Quantity, Timestamp

__all__ = ["run_demo"]

USDC = 10**6
PHASES = ("foundation", "market", "oracle", "settlement", "node", "governance", "report")
"""The demo's phases, in order (the progress bar's steps)."""


class _Log:
    """Numbered progress lines with elapsed time, printed above a progress bar of the phases."""

    def __init__(self, console: Console, progress: Progress | None = None) -> None:
        self.start = time.monotonic()
        self.step = 0
        self.console = console
        self.progress = progress
        self.task = progress.add_task("demo", total=len(PHASES)) if progress is not None else None

    def __call__(self, text: str) -> None:
        self.step += 1
        self.console.print(f"[{time.monotonic() - self.start:6.2f}s] {self.step:>2}. {text}",
                           markup=False, highlight=False, soft_wrap=True)

    def detail(self, text: str) -> None:
        self.console.print(f"{'':13}{text}", markup=False, highlight=False, soft_wrap=True)

    def phase(self, name: str) -> None:
        """Mark the start of phase ``name`` (one of :data:`PHASES`) on the progress bar."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=PHASES.index(name), description=name)

    def done(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=len(PHASES), description="done")


def _messages(domain: Domain, traders: list[LocalAccount], now: Timestamp
              ) -> list[tuple[Message, LocalAccount]]:
    """One message of every type, each signed by the account it speaks for (quotes bind the RFQ's
    digest, accepts the quote's)."""
    alice, bob, carol, dave = (Address(t.address) for t in traders)
    exp, soon = Timestamp(now + 3600), Timestamp(now + 30)
    call = compute_series_id(parse_series_name("ETH-27DEC26-3000-C", "USDC", 6))
    put = compute_series_id(parse_series_name("ETH-27DEC26-2800-P", "USDC", 6))
    ten = Quantity(10 * 100)  # 10 contracts in 0.01-contract units
    rfq = RFQ(taker=alice, legs=(Leg(call, 1, True), Leg(put, 1, False)), size=ten,
              side=Side.HIDDEN, nonce=Nonce(1), expiry=exp)
    quote = Quote(maker=bob, taker=alice, rfq_id=compute_rfq_digest(domain, rfq),
                  legs=(QuoteLeg(call, 1, False, Price(120 * USDC)), QuoteLeg(put, 1, True, Price(40 * USDC))),
                  side=Side.SELL, size=ten, nonce=Nonce((1 << 8) | 3), expiry=soon)
    feed = Digest(keccak256(b"ETH/USDC"))
    return [
        (Order(alice, call, Side.BUY, Price(125 * USDC), Quantity(500), TimeInForce.GTC, Nonce(7), exp),
         traders[0]),
        (rfq, traders[0]),
        (quote, traders[1]),
        (Accept(alice, compute_quote_digest(domain, quote), ten, Nonce(8), soon), traders[0]),
        (Cancel(carol, Digest(bytes(32)), Nonce(9), exp), traders[2]),
        (Withdrawal(dave, dave, Amount(1_000 * USDC), Nonce(10), exp), traders[3]),
        (Observation(feed, 1, Price(3_000 * USDC), now, Timestamp(now + 60)), traders[1]),
        (Vote(carol, 1, Choice.FOR, "tighter caps for short expiries", exp), traders[2]),
        (Post(dave, 1, Digest(bytes(32)), "I support this proposal.", exp), traders[3]),
        (SignIn(alice, "127.0.0.1:8000", "http://127.0.0.1:8000", Digest(keccak256(b"session")), now,
                Timestamp(now + 300)), traders[0]),
    ]


_ONCHAIN_VERIFIERS = {"Order": "verify_order", "RFQ": "verify_rfq", "Quote": "verify_quote",
                      "Accept": "verify_accept", "Cancel": "verify_cancel",
                      "Withdrawal": "verify_withdrawal", "Observation": "verify_observation",
                      "Vote": "verify_vote", "Post": "verify_post"}


def _verify_on_chain(harness: Contract, msg: Message, sig: bytes, signer: str) -> bytes | None:
    """The digest the Vyper module computes after verifying ``sig`` (None if it has no verifier)."""
    fn = _ONCHAIN_VERIFIERS.get(type(msg).__name__)
    if fn is None:
        return None
    extra = [signer] if isinstance(msg, Observation) else []  # a member's identity is not in the message
    return bytes(harness.call(fn, to_abi_tuple(msg), sig, *extra))


def _high_s(sig: bytes) -> bytes:
    """The same signature with s → n − s and v flipped: valid for ecrecover, non-canonical."""
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])


def run_demo(chain_target: str = "inprocess", out_dir: Path = Path("out/demo"),
             preset: str = "devnet") -> dict[str, Any]:
    """Run the demo and write ``out_dir/summary.json`` and ``out_dir/report.html``; returns the
    summary. Progress goes to stdout: numbered steps, and a bar of the phases on a terminal."""
    console = Console()
    columns = (TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        summary, trace = _run(_Log(console, progress), chain_target, preset, out_dir)
    display = _display(summary)
    summary_path, report_path = write_report(summary, trace, out_dir, display=display)
    console.print(_summary_table(display))
    console.print(render_participants([Participant(**p) for p in summary["participants"]]))
    console.print(f"summary written to {summary_path}; report with plots at {report_path}",
                  markup=False, highlight=False)
    return summary


def _run(log: _Log, chain_target: str, preset: str, out_dir: Path) -> tuple[dict[str, Any], DemoTrace]:
    log.phase("foundation")
    params = load_params(preset)
    chain: Chain = connect(chain_target)
    chain_id = chain.chain_id
    log(f"chain: {chain.backend} (chain id {chain_id}), block {chain.block_number()}, preset {preset}")

    token = chain.deploy("mocks/TestToken", "Test USD", "tUSD")
    harness = chain.deploy("mocks/MessagesHarness", params.eip712_name, params.eip712_version)
    merkle = chain.deploy("mocks/MerkleHarness")
    log(f"deployed collateral {token.call('symbol')} ({token.call('decimals')} decimals) at {token.address}")
    log.detail(f"EIP-712 verifier at {harness.address}, Merkle verifier at {merkle.address}")

    traders = chain.accounts[1:5]
    gas_mint = [token.transact("mint", t.address, 100_000 * USDC).gas_used for t in traders]
    log(f"funded {len(traders)} trader accounts with 100,000 tUSD each ({gas_mint[0]:,} gas per mint)")

    domain: Domain = compute_domain(params, ChainId(chain.chain_id), harness.address)
    onchain_separator = bytes(harness.call("domain_separator"))
    if onchain_separator != domain.separator:
        raise RuntimeError("domain separator differs between Python and the contract")
    log(f"EIP-712 domain {params.eip712_name} v{params.eip712_version}: separator "
        f"0x{domain.separator.hex()[:16]}… equal off-chain and on-chain")

    now = Timestamp(chain.now())
    signed = [(m, a, sign(domain, m, bytes(a.key))) for m, a in _messages(domain, list(traders), now)]
    onchain_ok = 0
    for msg, acct, sig in signed:
        digest = verify(domain, msg, sig, Address(acct.address), now)
        onchain = _verify_on_chain(harness, msg, sig, acct.address)
        if onchain is not None:
            if onchain != digest:
                raise RuntimeError(f"{type(msg).__name__}: on-chain digest differs")
            onchain_ok += 1
    log(f"signed {len(signed)} messages ({', '.join(sorted({type(m).__name__ for m, _, _ in signed}))})")
    log.detail(f"all verified off-chain; {onchain_ok} re-verified on-chain with identical digests")

    items = [BatchItem(m, s, Address(a.address)) for m, a, s in signed] * 200
    started = time.perf_counter()
    verdicts = verify_batch(domain, items, now)
    elapsed = time.perf_counter() - started
    log(f"batch-verified {len(items):,} messages across all cores: "
        f"{sum(v.ok for v in verdicts):,} ok in {elapsed * 1000:.0f} ms")

    order, alice, order_sig = signed[0]
    rejections: dict[str, str] = {}
    for label, bad_sig in (("high s", _high_s(order_sig)), ("64 bytes", order_sig[:64]),
                           ("v = 0", order_sig[:64] + b"\x00")):
        try:
            verify(domain, order, bad_sig, Address(alice.address), now)
        except InvalidMessage as exc:
            rejections[label] = exc.code
        try:
            harness.call("verify_order", to_abi_tuple(order), bad_sig)
        except ContractRevert as exc:
            rejections[label] += f" / {exc.reason}"
    other_domain = Domain(domain.name, domain.version, ChainId(chain_id + 1), domain.verifying_contract)
    try:
        verify(other_domain, order, order_sig, Address(alice.address), now)
    except InvalidMessage as exc:
        rejections["other chain id"] = exc.code
    try:
        verify(domain, order, order_sig, Address(alice.address), Timestamp(order.expiry + 1))
    except InvalidMessage as exc:
        rejections["expired"] = exc.code
    log(f"refused {len(rejections)} bad signatures/messages off-chain and on-chain:")
    for label, why in rejections.items():
        log.detail(f"{label:<15} → {why}")

    balances = [(t.address, token.call("balanceOf", t.address)) for t in traders]
    claims = ClaimsTree.of(balances, ["address", "uint256"])
    proof = claims.get_proof(0)
    ok_claim = merkle.call("claims_verify", list(proof), claims.root, claims.get_leaf_hash(0))
    state = SparseMerkleTree()
    state.update_many((i + 1, keccak256(abi_encode(["address", "uint256"], list(b))))
                      for i, b in enumerate(balances))
    sp = state.get_proof(2)
    ok_sparse = merkle.call("sparse_verify", state.root, 2, state.get(2), sp.bitmap, list(sp.siblings), 32)
    log(f"Merkle: claims root 0x{claims.root.hex()[:16]}… proof verified on-chain: {ok_claim}; "
        f"state root 0x{state.root.hex()[:16]}… proof verified on-chain: {ok_sparse}")

    log.phase("market")
    market = run_market_scenario(domain, chain.accounts[1:7], now, log)
    log.phase("oracle")
    oracle = run_oracle_scenario(chain, log)
    log.phase("settlement")
    settlement = run_settlement_scenario(log, log.detail)
    log.phase("node")
    node = run_node_scenario(out_dir, chain, log, log.detail)
    log.phase("governance")
    governance = run_governance_scenario(chain, out_dir, log, log.detail)
    log.phase("report")
    batches = settlement.pop("batches")
    events = settlement.pop("events")
    bonded = settlement.pop("bonded")

    summary: dict[str, Any] = {
        "chain": {"backend": chain.backend, "target": chain_target, "chain_id": chain_id},
        "accounts": len(traders),
        "contracts_deployed": 3,
        "messages_signed": len(signed),
        "messages_verified_onchain": onchain_ok,
        "batch_verified": sum(v.ok for v in verdicts),
        "bad_signatures_refused": len(rejections),
        "merkle_proofs_verified_onchain": int(bool(ok_claim)) + int(bool(ok_sparse)),
        **{k: market[k] for k in ("rfqs", "rfq_quotes", "rfq_fills", "book_trades")},
        **{k: oracle[k] for k in ("oracle_rounds", "equivocations_slashed", "disputes_arbitrated",
                                  "settlement_price")},
        **settlement,
        **node,
        **governance,
    }
    pnl = market["pnl_at"](oracle["settlement_price"])
    summary["pnl_at_settlement"] = pnl
    names = {name: Address(a.address) for name, a in zip(MARKET_NAMES, chain.accounts[1:7], strict=True)}
    summary["participants"] = summarize_participants(
        compute_participants(chain, market, names, pnl, oracle, bonded, batches))
    trace = DemoTrace(
        price_path=[(t, p / USDC) for t, p, invalid in oracle["price_path"] if not invalid],
        rejected_rounds=[(t, p / USDC) for t, p, invalid in oracle["price_path"] if invalid],
        settlement_price=oracle["settlement_price"] / USDC,
        pnl={name: value / USDC for name, value in pnl.items()},
        gas_per_trade=[(b["number"], b["gas"] / b["trades"]) for b in batches if b["trades"] and b["honest"]],
        timeline=[TimelineEvent(t, "batches", label, ok) for t, label, ok in events],
        participants=summary["participants"],
    )
    log.done()
    chain.close()
    return summary, trace


def _display(summary: dict[str, Any]) -> dict[str, str]:
    """The summary as readable text: amounts in whole USDC, thousands separated."""
    out = {}
    for key, value in summary.items():
        if key == "settlement_price":
            text = f"{value / USDC:,.2f} USDC"
        elif key == "participants":
            text = f"{len(value)} (rewards, slashes and reputation: the table below)"
        elif key == "pnl_at_settlement":
            text = ", ".join(f"{name} {v / USDC:+,.2f}" for name, v in value.items()) + " USDC"
        elif isinstance(value, dict):
            text = ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        out[key.replace("_", " ")] = text
    return out


def _summary_table(display: dict[str, str]) -> Table:
    """The headline figures as a two-column table."""
    table = Table(title="clearhouse demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in display.items():
        table.add_row(key, value)
    return table
