"""Disputes: bonded stake and slashing, optimistic assertions, commit-reveal arbitration.

The rules the contracts ``Bonds``, ``Assertions`` and ``Arbitration`` implement, as pure functions
over values: ``bonds`` (slashing splits, stake snapshots), ``assertions`` (bounds, liveness,
payouts), ``arbitration`` (commitments, phases, tally, verdict, voter rewards and penalties),
``config`` (their parameters and the relations between them).
"""

from clearhouse.disputes.arbitration import (
    Ballot,
    Phase,
    Reveal,
    Tally,
    Verdict,
    compute_reveal,
    compute_snapshot_time,
    compute_tally,
    compute_verdict,
    compute_vote_commitment,
    compute_voter_penalty,
    compute_voter_rewards,
    get_phase,
    is_voter_at_fault,
)
from clearhouse.disputes.assertions import (
    MAX_BOND,
    SettlementPayouts,
    compute_assertion_expiry,
    compute_dispute_payouts,
    compute_undisputed_payouts,
    is_dispute_open,
    process_dispute,
)
from clearhouse.disputes.bonds import (
    Role,
    SlashOutcome,
    Stake,
    compute_slash,
    compute_stake_at,
    is_withdrawable,
)
from clearhouse.disputes.config import BPS, DisputeParams

__all__ = [
    "BPS",
    "MAX_BOND",
    "Ballot",
    "DisputeParams",
    "Phase",
    "Reveal",
    "Role",
    "SettlementPayouts",
    "SlashOutcome",
    "Stake",
    "Tally",
    "Verdict",
    "compute_assertion_expiry",
    "compute_dispute_payouts",
    "compute_reveal",
    "compute_slash",
    "compute_snapshot_time",
    "compute_stake_at",
    "compute_tally",
    "compute_undisputed_payouts",
    "compute_verdict",
    "compute_vote_commitment",
    "compute_voter_penalty",
    "compute_voter_rewards",
    "get_phase",
    "is_dispute_open",
    "is_voter_at_fault",
    "is_withdrawable",
    "process_dispute",
]
