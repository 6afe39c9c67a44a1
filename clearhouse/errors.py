"""The one exception tree of clearhouse.

Every error the project raises on purpose derives from :class:`ClearhouseError` and, where a
built-in fits, also from that built-in so callers can catch either::

    ClearhouseError
    ├── ConfigError(ValueError)                bad preset / network config
    ├── InvalidMessage(ValueError)             a signed message fails validation
    │   ├── InvalidSignature                   wrong length, v ∉ {27,28}, high s, zero signer
    │   ├── WrongSigner                        recovered signer is not the expected account
    │   ├── ExpiredMessage                     past its expiry
    │   ├── ReplayedMessage                    nonce or message hash already used
    │   └── MalformedMessage                   a field out of range or of the wrong type
    ├── MerkleError(ValueError)
    │   ├── InvalidProof                       a proof does not verify against the root
    │   └── UnknownLeaf(KeyError)              asked for a proof of a leaf not in the tree
    ├── ChainError(RuntimeError)               anything from a chain backend
    │   ├── ContractRevert                     a call or transaction reverted (carries the reason)
    │   ├── ChainUnavailable(ConnectionError)  the node cannot be reached
    │   └── CompileError                       a Vyper source failed to compile
    ├── InvalidInstrument(ValueError)          a pair, expiry or series breaks the listing rules
    │   ├── MalformedSeriesName                a series name does not parse (``field`` names the part)
    │   ├── OffGrid                            a strike, premium or quantity is off its grid or tick
    │   └── UnlistedInstrument(KeyError)       an expiry or series that is not listed
    ├── PricingError(ValueError)               analytics inputs outside their domain (not consensus)
    │   ├── PriceOutsideBounds                 a price outside the no-arbitrage bounds: no implied vol
    │   └── SmileFitError                      too few quotes for an SVI fit, or the fit failed
    ├── RiskError(ValueError)
    │   ├── InsufficientCollateral             an account would hold less than its exact max loss
    │   └── OpenInterestCapReached             a fill would take open interest above max_open_interest
    ├── MarketError(ValueError)                a trading rule refused an order, cancel, RFQ, quote or accept
    │   ├── InvalidOrder                       an order or RFQ that cannot be accepted as signed
    │   │   ├── PostOnlyWouldTake              a post-only order would cross the book
    │   │   ├── FillOrKillUnfilled             a fill-or-kill order cannot fill completely now
    │   │   └── DuplicateOrder                 an order with this hash is already resting
    │   ├── OrderExpired                       an order is past its expiry
    │   ├── OrderCancelled                     an order hash was cancelled or closed before
    │   ├── Overfill                           a fill beyond the signed size of an order, quote or RFQ
    │   ├── NotOrderOwner                      a cancel names another account's order or quote
    │   ├── SelfTrade                          a quote answers its own maker's RFQ
    │   ├── RFQExpired                         an RFQ is past its expiry
    │   ├── QuoteExpired                       a quote is past its expiry
    │   ├── AcceptExpired                      an accept is past its expiry
    │   ├── QuoteMismatch                      a quote's taker, maker, legs, side or size differ from its RFQ
    │   ├── QuoteAlreadyFilled                 a quote was accepted already (replay)
    │   ├── QuoteFaded                         an accepted quote cannot be honoured (a Fade is recorded)
    │   ├── UnknownRFQ(KeyError)               a quote names an RFQ that is not open
    │   ├── UnknownQuote(KeyError)             an accept names a quote that is not open
    │   └── MarketPaused                       new orders, RFQs, quotes and accepts wait out an emergency pause
    ├── DisputeError(ValueError)               an assertion, vote or claim breaks the dispute rules
    │   ├── InvalidAssertion                   a bond or liveness outside its bounds
    │   ├── OutsideWindow                      the action's phase is not open (liveness, commit, reveal)
    │   ├── CommitmentMismatch                 a revealed vote does not match its commitment
    │   └── DuplicateAction                    a second dispute, vote, reveal, claim or penalty
    ├── OracleError(ValueError)                an observation, report, committee or TWAP request breaks the oracle rules
    │   ├── UnknownFeed(KeyError)              a feed with no configuration or no committee
    │   ├── InvalidCommittee                   not 3f+1 distinct members, or bounds that make no sense
    │   ├── WrongConfig                        another feed, round or committee config digest
    │   ├── NotAMember                         a signer outside the feed's active committee
    │   ├── DuplicateSigner                    one member twice among a report's observations or signatures
    │   ├── InsufficientQuorum                 fewer than 2f+1 observations or f+1 report signatures
    │   ├── StaleRound                         an old round, a round too soon, an old or future timestamp
    │   ├── InvalidReport                      observations unsorted, or price / timestamp not their lower median
    │   ├── PriceRejected                      a price outside the feed's bounds or deviation limit
    │   ├── Equivocation                       one member signed two different observations for one round
    │   ├── StaleFeed                          no settlement TWAP: stale feed, no rounds in window, bad window,
    │   │                                       window not final or under dispute
    │   ├── InvalidDispute                     a round challenge or dispute that proves nothing, is late or repeated
    │   └── SourceUnavailable                  a price source has no price for that time
    ├── WindowOutflowCapReached(ValueError)    a claim finds no window outflow budget left (it waits, not lost)
    ├── SettlementError(ValueError)            an operation, batch or witness breaks the settlement rules
    │   ├── MalformedOperation                 bytes or fields that do not form an operation
    │   ├── InvalidBatch                       a batch header or window layout that contradicts itself
    │   ├── InvalidWitness                     a fraud-proof witness that proves nothing (challenger's fault)
    │   ├── UnknownAccount(KeyError)           an operation names an account id with no leaf
    │   ├── OwnerMismatch                      a deposit for a registered id names another owner
    │   ├── SameAccount                        a trade or RFQ fill between an account and itself
    │   ├── StaleClock                         the settlement clock lags the batch timestamp too much
    │   ├── ClockOutOfRange                    a tick before the clock or after the batch timestamp
    │   ├── MessageExpired                     a signed message past its expiry at the clock
    │   ├── SignatureInvalid                   a signature that is not canonical or recovers to no one
    │   ├── SignerMismatch                     a signature that is not the account owner's over the message
    │   ├── NonceUsed                          the nonce is held by another message of the account
    │   ├── MessageReplayed                    a one-shot message (accept, withdrawal) applied again
    │   ├── MessageCancelled                   the message's nonce was cancelled
    │   ├── FillExceedsSize                    a cumulative fill beyond an order's or quote's signed size
    │   ├── PriceOutsideLimit                  a trade price beyond an order's signed limit
    │   ├── UnlistedExpiry(KeyError)           an expiry id with no listing (cap) in the registry
    │   ├── InvalidSeries                      a strike that is zero, not below the cap or off the unit grid
    │   ├── SeriesExpired                      a trade at or after its series' expiry
    │   ├── InexactPremium                     price × quantity is not a whole number of base units
    │   ├── ExcessiveFee                       a fee above the fee schedule's bound
    │   ├── TooManyPositions                   an account would hold more than max_positions positions
    │   ├── Undercollateralised                an account would hold less than its exact requirement
    │   │                                       (also an InsufficientCollateral)
    │   ├── AmountOverflow                     a balance, position, fill or pool beyond its encoded width
    │   ├── InsufficientFeePool                a fee sweep larger than the fee pool
    │   ├── WrongPayout                        a forced withdrawal paying other than min(requested, free)
    │   ├── NotYetExpired                      an expiry settled before its expiry time
    │   ├── PriceUnavailable                   an expiry settled without a settlement price
    │   └── NothingToSettle                    an expiry settled for an account with no position in it
    ├── StoreError(RuntimeError)               the node's database refused or failed (rolled back)
    │   ├── StoreConfigError                   not durable as configured, bad URL, migration failure
    │   ├── IdempotencyConflict(ValueError)    an idempotency key reused with another payload
    │   ├── InvalidPayload(ValueError)         a payload that is not plain JSON
    │   ├── BatchConflict                      two different batches for one number
    │   ├── BatchOutOfOrder(ValueError)        a batch number that does not follow the last one
    │   ├── IllegalTransition(ValueError)      an outbox status change outside its state machine
    │   └── UnknownBatch(KeyError)             a batch number the outbox does not hold
    ├── ApiError(ValueError)                   an API request refused before any rule ran (HTTP 4xx)
    │   ├── InvalidRequest                     malformed JSON, wrong types, unknown fields, limits
    │   ├── PayloadTooLarge                    a body or WebSocket frame above its size limit
    │   ├── MissingIdempotencyKey              a POST without an ``Idempotency-Key`` header
    │   ├── Unauthorized                       no, unknown or expired session token; bad sign-in
    │   ├── Forbidden                          a signed message or channel of another account
    │   ├── NotFound(KeyError)                 no such route, series, RFQ or batch
    │   └── RateLimited                        the account's token bucket is empty
    ├── GovernanceError(ValueError)            a proposal, post, vote or delegation breaks the governance rules
    │   ├── InvalidProposal                    a title, body or action outside its bounds
    │   ├── UnknownProposal(KeyError)          no proposal with that id
    │   ├── VotingClosed                       a vote outside its proposal's voting window
    │   ├── DuplicateVote                      a second vote of one voter on one proposal
    │   └── NoVotingPower                      a voter with no stake in the snapshot and no delegation
    ├── ReputationError(ValueError)            a reputation event, committee request or recomputation refused
    │   ├── MalformedEvent                     a published reputation event that does not decode
    │   └── InsufficientCandidates             fewer eligible candidates than committee seats
    └── …                                      later packages add their own branches here

Errors carry context as attributes (``field``, ``account``, ``digest``…) and a machine-readable
``code`` so the API can turn any of them into ``{code, field, message}`` without string parsing.
"""

from __future__ import annotations

__all__ = [
    "AcceptExpired",
    "AmountOverflow",
    "ApiError",
    "BatchConflict",
    "BatchOutOfOrder",
    "ChainError",
    "ChainUnavailable",
    "ClearhouseError",
    "ClockOutOfRange",
    "CommitmentMismatch",
    "CompileError",
    "ConfigError",
    "ContractRevert",
    "DisputeError",
    "DuplicateAction",
    "DuplicateOrder",
    "DuplicateSigner",
    "DuplicateVote",
    "Equivocation",
    "ExcessiveFee",
    "ExpiredMessage",
    "ExpiryAlreadySettled",
    "FillExceedsSize",
    "FillOrKillUnfilled",
    "Forbidden",
    "GovernanceError",
    "IdempotencyConflict",
    "IllegalTransition",
    "InexactPremium",
    "InsufficientCandidates",
    "InsufficientCollateral",
    "InsufficientFeePool",
    "InsufficientQuorum",
    "InvalidAssertion",
    "InvalidBatch",
    "InvalidCommittee",
    "InvalidDispute",
    "InvalidInstrument",
    "InvalidMessage",
    "InvalidOrder",
    "InvalidPayload",
    "InvalidProof",
    "InvalidProposal",
    "InvalidReport",
    "InvalidRequest",
    "InvalidSeries",
    "InvalidSignature",
    "InvalidWitness",
    "MalformedEvent",
    "MalformedMessage",
    "MalformedOperation",
    "MalformedSeriesName",
    "MarketError",
    "MarketPaused",
    "MerkleError",
    "MessageCancelled",
    "MessageExpired",
    "MessageReplayed",
    "MissingIdempotencyKey",
    "NoVotingPower",
    "NonceUsed",
    "NotAMember",
    "NotFound",
    "NotOrderOwner",
    "NotYetExpired",
    "NothingToSettle",
    "OffGrid",
    "OpenInterestCapReached",
    "OracleError",
    "OrderCancelled",
    "OrderExpired",
    "OutsideWindow",
    "Overfill",
    "OwnerMismatch",
    "PayloadTooLarge",
    "PostOnlyWouldTake",
    "PriceOutsideBounds",
    "PriceOutsideLimit",
    "PriceRejected",
    "PriceUnavailable",
    "PricingError",
    "QuoteAlreadyFilled",
    "QuoteExpired",
    "QuoteFaded",
    "QuoteMismatch",
    "RFQExpired",
    "RateLimited",
    "ReplayedMessage",
    "ReputationError",
    "RiskError",
    "SameAccount",
    "SelfTrade",
    "SeriesExpired",
    "SettlementError",
    "SignatureInvalid",
    "SignerMismatch",
    "SmileFitError",
    "SourceUnavailable",
    "StaleClock",
    "StaleFeed",
    "StaleRound",
    "StoreConfigError",
    "StoreError",
    "TooManyPositions",
    "Unauthorized",
    "Undercollateralised",
    "UnknownAccount",
    "UnknownBatch",
    "UnknownFeed",
    "UnknownLeaf",
    "UnknownProposal",
    "UnknownQuote",
    "UnknownRFQ",
    "UnlistedExpiry",
    "UnlistedInstrument",
    "VotingClosed",
    "WindowOutflowCapReached",
    "WrongConfig",
    "WrongPayout",
    "WrongSigner",
]


class ClearhouseError(Exception):
    """Base of every error clearhouse raises on purpose.

    ``code`` is a stable machine-readable identifier; ``field`` names the offending input field
    when there is one; ``context`` holds anything else useful (hashes, accounts, amounts).
    """

    code: str = "error"

    def __init__(self, message: str, *, field: str | None = None, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.context = context

    def to_dict(self) -> dict[str, object]:
        """The ``{code, field, message}`` body the API returns for this error."""
        return {"code": self.code, "field": self.field, "message": self.message}


class ConfigError(ClearhouseError, ValueError):
    code = "config_error"


class InvalidMessage(ClearhouseError, ValueError):
    code = "invalid_message"


class InvalidSignature(InvalidMessage):
    code = "invalid_signature"


class WrongSigner(InvalidMessage):
    code = "wrong_signer"


class ExpiredMessage(InvalidMessage):
    code = "expired"


class ReplayedMessage(InvalidMessage):
    code = "replayed"


class MalformedMessage(InvalidMessage):
    code = "malformed_message"


class MerkleError(ClearhouseError, ValueError):
    code = "merkle_error"


class InvalidProof(MerkleError):
    code = "invalid_proof"


class UnknownLeaf(MerkleError, KeyError):
    code = "unknown_leaf"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class ChainError(ClearhouseError, RuntimeError):
    code = "chain_error"


class ContractRevert(ChainError):
    """A call or transaction reverted. ``reason`` is the decoded ``Error(string)`` or ``None``."""

    code = "contract_revert"

    def __init__(self, reason: str | None, *, data: bytes = b"", field: str | None = None,
                 **context: object) -> None:
        super().__init__(f"reverted: {reason}" if reason else "reverted without reason",
                         field=field, **context)
        self.reason = reason
        self.data = data


class ChainUnavailable(ChainError, ConnectionError):
    code = "chain_unavailable"


class CompileError(ChainError):
    code = "compile_error"


class InvalidInstrument(ClearhouseError, ValueError):
    code = "invalid_instrument"


class MalformedSeriesName(InvalidInstrument):
    code = "malformed_series_name"


class OffGrid(InvalidInstrument):
    code = "off_grid"


class UnlistedInstrument(InvalidInstrument, KeyError):
    code = "unlisted_instrument"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class PricingError(ClearhouseError, ValueError):
    code = "pricing_error"


class PriceOutsideBounds(PricingError):
    code = "price_outside_bounds"


class SmileFitError(PricingError):
    code = "smile_fit_error"


class RiskError(ClearhouseError, ValueError):
    code = "risk_error"


class InsufficientCollateral(RiskError):
    """An account would hold less than its exact max-loss requirement (DESIGN §4, §6).

    ``account`` is whoever is short of collateral, ``required`` and ``available`` are amounts in
    collateral base units after the operation, so ``required - available`` is the shortfall.
    """

    code = "insufficient_collateral"

    def __init__(self, account: object, required: int, available: int, **context: object) -> None:
        super().__init__(f"account {account} needs {required} collateral, has {available}",
                         field="quantity", account=account, required=required,
                         available=available, **context)
        self.account = account
        self.required = required
        self.available = available


class OpenInterestCapReached(RiskError):
    """A fill would take the open interest (settlement-price sensitivity, quote base units) above
    ``Params.max_open_interest``; ``after`` is what it would reach, ``cap`` the cap."""

    code = "open_interest_cap_reached"

    def __init__(self, series_id: object, after: int, cap: int, **context: object) -> None:
        super().__init__(f"open interest would reach {after}, above the cap {cap}",
                         field="quantity", series_id=series_id, after=after, cap=cap, **context)
        self.series_id = series_id
        self.after = after
        self.cap = cap


class MarketError(ClearhouseError, ValueError):
    """A trading rule refused an order, cancel, RFQ, quote or accept; nothing was changed
    (except :class:`QuoteFaded`, whose fade event is the record of the refusal)."""

    code = "market_error"


class InvalidOrder(MarketError):
    code = "invalid_order"


class PostOnlyWouldTake(InvalidOrder):
    code = "post_only_would_take"


class FillOrKillUnfilled(InvalidOrder):
    code = "fill_or_kill_unfilled"


class DuplicateOrder(InvalidOrder):
    code = "duplicate_order"


class OrderExpired(MarketError):
    code = "order_expired"


class OrderCancelled(MarketError):
    code = "order_cancelled"


class Overfill(MarketError):
    code = "overfill"


class NotOrderOwner(MarketError):
    code = "not_order_owner"


class SelfTrade(MarketError):
    code = "self_trade"


class RFQExpired(MarketError):
    code = "rfq_expired"


class QuoteExpired(MarketError):
    code = "quote_expired"


class AcceptExpired(MarketError):
    code = "accept_expired"


class QuoteMismatch(MarketError):
    code = "quote_mismatch"


class QuoteAlreadyFilled(MarketError):
    code = "quote_already_filled"


class QuoteFaded(MarketError):
    code = "quote_faded"


class UnknownRFQ(MarketError, KeyError):
    code = "unknown_rfq"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class UnknownQuote(MarketError, KeyError):
    code = "unknown_quote"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class ExpiryAlreadySettled(MarketError):
    """The coordinator has already settled every position of that expiry."""

    code = "expiry_settled"


class MarketPaused(MarketError):
    """The settlement is under an emergency pause: no new trade until it ends (cancels and
    withdrawals still go through)."""

    code = "market_paused"


class DisputeError(ClearhouseError, ValueError):
    """An assertion, dispute, vote or claim breaks the rules of ``clearhouse.disputes``."""

    code = "dispute_error"


class InvalidAssertion(DisputeError):
    """A bond or liveness outside its bounds (``field`` names which)."""

    code = "invalid_assertion"


class OutsideWindow(DisputeError):
    """The action's window is not open: liveness over or not over, not the commit or reveal phase."""

    code = "outside_window"


class CommitmentMismatch(DisputeError):
    """A revealed ``(vote, salt)`` does not hash to the voter's commitment."""

    code = "commitment_mismatch"


class DuplicateAction(DisputeError):
    """A second dispute of one assertion, or a second commit, reveal, claim or penalty by one voter."""

    code = "duplicate_action"


class OracleError(ClearhouseError, ValueError):
    """An observation, report, committee or TWAP request breaks the rules of ``clearhouse.oracle``.

    ``message`` is the exact revert reason ``OracleHub.vy`` gives for the same fault (e.g.
    ``"oracle: too few observations"``), so a report refused off-chain is refused on-chain alike.
    """

    code = "oracle_error"


class UnknownFeed(OracleError, KeyError):
    """A feed with no configuration (bounds) or no committee yet."""

    code = "unknown_feed"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class InvalidCommittee(OracleError):
    """A committee that is not ``3f+1`` distinct non-zero members, or feed bounds that make no sense."""

    code = "invalid_committee"


class WrongConfig(OracleError):
    """A report or observation for another feed, another round or another committee config digest."""

    code = "wrong_config"


class NotAMember(OracleError):
    """A signature that recovers to an address outside the feed's active committee."""

    code = "not_a_member"


class DuplicateSigner(OracleError):
    """One member twice among a report's observations, or twice among its report signatures."""

    code = "duplicate_signer"


class InsufficientQuorum(OracleError):
    """Fewer than ``2f+1`` observations or fewer than ``f+1`` report signatures (or responders)."""

    code = "insufficient_quorum"


class StaleRound(OracleError):
    """A round not newer than the last, too soon after it, or an observation too old or in the future."""

    code = "stale_round"


class InvalidReport(OracleError):
    """Observations not sorted by price, or a reported price / timestamp that is not their lower median."""

    code = "invalid_report"


class PriceRejected(OracleError):
    """A median outside the feed's ``[min_price, max_price]`` or beyond its deviation limit."""

    code = "price_rejected"


class Equivocation(OracleError):
    """One member signed two different observations for one (feed, round): provable on-chain.

    ``context`` carries ``member``, ``feed_id`` and ``round``.
    """

    code = "equivocation"


class StaleFeed(OracleError):
    """No settlement TWAP: the feed is stale at the window's end, has no round in it, the window is
    bad, not final yet, or holds a disputed round."""

    code = "stale_feed"


class InvalidDispute(OracleError):
    """A challenge of an optimistic round or a round dispute that proves nothing, comes after the
    dispute window, or targets a round already disputed or found wrong."""

    code = "invalid_dispute"


class SourceUnavailable(OracleError):
    """A price source (simulated market, replay file, exchange adapter) has no price for that time."""

    code = "source_unavailable"


class WindowOutflowCapReached(ClearhouseError, ValueError):
    """Claims already paid ``Vault.outflow_cap`` in the current and the previous epoch of ``W``
    seconds (``clearhouse.settlement.outflow``): the claim waits, it stays claimable. Not a batch
    fault, so not a :class:`SettlementError`."""

    code = "window_outflow_cap_reached"


class SettlementError(ClearhouseError, ValueError):
    """An operation, batch or witness breaks the rules of ``clearhouse.settlement``; nothing changed.

    Every subclass except :class:`InvalidWitness` means *the operation is invalid*: a batch holding
    it is fraudulent. :class:`InvalidWitness` means the proof offered against a batch proves nothing.
    ``context`` carries what identifies the fault (``account``, ``nonce``, ``index`` in a batch…).
    """

    code = "settlement_error"


class MalformedOperation(SettlementError):
    """Bytes that do not decode to an operation, or a field outside its encoded width or range."""

    code = "malformed_operation"


class InvalidBatch(SettlementError):
    """A batch header, window layout or checkpoint list that contradicts itself or its operations."""

    code = "invalid_batch"


class InvalidWitness(SettlementError):
    """A window witness whose leaves, keys or proofs do not match the roots it claims to open.

    Raised by ``verify_window`` before any operation is judged: it blames the challenger, not the batch.
    """

    code = "invalid_witness"


class UnknownAccount(SettlementError, KeyError):
    """An operation names an account id with no leaf (never deposited)."""

    code = "unknown_account"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class OwnerMismatch(SettlementError):
    """A deposit for a registered account id names another owner than the leaf's."""

    code = "owner_mismatch"


class SameAccount(SettlementError):
    """A trade or RFQ fill whose maker and taker are the same account."""

    code = "same_account"


class StaleClock(SettlementError):
    """A signed-message operation while the clock lags the batch timestamp by more than allowed."""

    code = "stale_clock"


class ClockOutOfRange(SettlementError):
    """A tick that moves the clock backwards or past the batch timestamp."""

    code = "clock_out_of_range"


class MessageExpired(SettlementError):
    """A signed message whose expiry is before the settlement clock."""

    code = "message_expired"


class SignatureInvalid(SettlementError):
    """A signature that is not canonical (length, v, r, s, high s) or recovers to the zero address."""

    code = "signature_invalid"


class SignerMismatch(SettlementError):
    """A signature that recovers to someone other than the account owner over the rebuilt message."""

    code = "signer_mismatch"


class NonceUsed(SettlementError):
    """The (account, nonce) slot already holds another message: one message per nonce."""

    code = "nonce_used"


class MessageReplayed(SettlementError):
    """A one-shot message (accept, withdrawal) whose slot already records it as used."""

    code = "message_replayed"


class MessageCancelled(SettlementError):
    """The message's (account, nonce) slot was cancelled."""

    code = "message_cancelled"


class FillExceedsSize(SettlementError):
    """A fill that would take an order's or quote's cumulative fill beyond its signed size."""

    code = "fill_exceeds_size"


class PriceOutsideLimit(SettlementError):
    """A trade price above a buy order's limit or below a sell order's limit."""

    code = "price_outside_limit"


class UnlistedExpiry(SettlementError, KeyError):
    """An expiry id that the expiry registry does not list (no cap)."""

    code = "unlisted_expiry"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class InvalidSeries(SettlementError):
    """A strike that is zero, not below its expiry's cap, or not a multiple of ``contract_unit``."""

    code = "invalid_series"


class SeriesExpired(SettlementError):
    """A trade whose series expires at or before the settlement clock."""

    code = "series_expired"


class InexactPremium(SettlementError):
    """``price × quantity`` is not a multiple of ``contract_unit``: the premium would need rounding."""

    code = "inexact_premium"


class ExcessiveFee(SettlementError):
    """A trading fee above ``max_fee_bps`` of the fill's premium."""

    code = "excessive_fee"


class TooManyPositions(SettlementError):
    """An account would hold more than ``max_positions`` open positions."""

    code = "too_many_positions"


class Undercollateralised(SettlementError, InsufficientCollateral):
    """An account would hold less collateral than its exact max-loss requirement (DESIGN §4).

    Also an :class:`InsufficientCollateral`, so risk-aware callers catch it either way.
    """

    code = "undercollateralised"

    def __init__(self, account: object, required: int, available: int, *, field: str = "quantity",
                 **context: object) -> None:
        ClearhouseError.__init__(self, f"account {account} needs {required} collateral, has {available}",
                                 field=field, account=account, required=required, available=available,
                                 **context)
        self.account = account
        self.required = required
        self.available = available


class AmountOverflow(SettlementError):
    """A balance, position, cumulative fill or fee pool beyond the width its encoding gives it."""

    code = "amount_overflow"


class InsufficientFeePool(SettlementError):
    """A fee sweep larger than the fees collected so far."""

    code = "insufficient_fee_pool"


class WrongPayout(SettlementError):
    """A forced withdrawal whose ``paid`` is not ``min(requested, free collateral)``."""

    code = "wrong_payout"


class NotYetExpired(SettlementError):
    """An expiry settlement while the clock is before the expiry time."""

    code = "not_yet_expired"


class PriceUnavailable(SettlementError):
    """An expiry settlement for an expiry with no settlement price yet."""

    code = "price_unavailable"


class NothingToSettle(SettlementError):
    """An expiry settlement for an account holding no position of that expiry."""

    code = "nothing_to_settle"


class StoreError(ClearhouseError, RuntimeError):
    """The node's database refused or failed an operation; the transaction was rolled back."""

    code = "store_error"


class StoreConfigError(StoreError):
    """The database is not durable as configured (SQLite not WAL + ``synchronous=FULL``, PostgreSQL
    ``synchronous_commit`` not ``on``), the URL names an unsupported backend, or migrations failed."""

    code = "store_config_error"


class IdempotencyConflict(StoreError, ValueError):
    """An ``(account, idempotency_key)`` already used with another kind or payload (API: 409)."""

    code = "idempotency_conflict"


class InvalidPayload(StoreError, ValueError):
    """A payload that is not plain JSON (NaN, bytes, non-string keys…)."""

    code = "invalid_payload"


class BatchConflict(StoreError):
    """A batch number already stored with other header, data or root: never two batches per number."""

    code = "batch_conflict"


class BatchOutOfOrder(StoreError, ValueError):
    """A batch number that does not follow the outbox's last one (numbers are contiguous)."""

    code = "batch_out_of_order"


class IllegalTransition(StoreError, ValueError):
    """An outbox status change outside ``built → posted → included → final | challenged``."""

    code = "illegal_transition"


class UnknownBatch(StoreError, KeyError):
    """A batch number the outbox does not hold."""

    code = "unknown_batch"

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class ApiError(ClearhouseError, ValueError):
    """An API request refused before any rule ran; ``status`` is its HTTP status."""

    code = "api_error"
    status = 400


class InvalidRequest(ApiError):
    """Malformed JSON, a wrong type, an unknown field, NaN/Infinity, or an array above its limit."""

    code = "invalid_request"
    status = 422


class PayloadTooLarge(ApiError):
    """A request body or WebSocket frame above its size limit."""

    code = "payload_too_large"
    status = 413


class MissingIdempotencyKey(ApiError):
    """A POST without an ``Idempotency-Key`` header (1..128 printable ASCII characters)."""

    code = "missing_idempotency_key"
    status = 400


class Unauthorized(ApiError):
    """No session token, an unknown or expired one, or a sign-in that does not verify."""

    code = "unauthorized"
    status = 401


class Forbidden(ApiError):
    """A signed message or channel that belongs to another account than the session's."""

    code = "forbidden"
    status = 403


class NotFound(ApiError, KeyError):
    """No such route, series, RFQ or batch."""

    code = "not_found"
    status = 404

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class RateLimited(ApiError):
    """The account's (or address's) request budget is spent; retry after ``retry_after`` seconds."""

    code = "rate_limited"
    status = 429


# --- governance --------------------------------------------------------------------------------


class GovernanceError(ClearhouseError, ValueError):
    code = "governance_error"


class InvalidProposal(GovernanceError):
    code = "invalid_proposal"


class UnknownProposal(GovernanceError, KeyError):
    code = "unknown_proposal"

    def __str__(self) -> str:
        return self.message


class VotingClosed(GovernanceError):
    code = "voting_closed"


class DuplicateVote(GovernanceError):
    code = "duplicate_vote"


class NoVotingPower(GovernanceError):
    code = "no_voting_power"


# --- reputation --------------------------------------------------------------------------------


class ReputationError(ClearhouseError, ValueError):
    code = "reputation_error"


class MalformedEvent(ReputationError):
    code = "malformed_event"


class InsufficientCandidates(ReputationError):
    code = "insufficient_candidates"
