"""Frozen protocol parameters, loaded from a YAML preset.

Every protocol constant has one home: a field of :class:`Params` with its unit and the reason for
its value, and a value in each preset under ``clearhouse/presets/``. Presets (``mainnet``, ``devnet``)
hold protocol constants; per-network settings (RPC URL, addresses) live elsewhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from clearhouse.errors import ConfigError
from clearhouse.types import Amount, Seconds

__all__ = ["MAX_PAUSE", "PRESETS", "Params", "compute_exit_bound", "load_params"]

PRESETS = ("mainnet", "devnet")

MAX_PAUSE: Final = Seconds(3 * 86_400)
"""``Settlement.MAX_PAUSE``: the longest emergency pause, seconds. A pause stops posting and moves
every freeze deadline by the paused time, so it can delay a user's exit by this much."""


def compute_exit_bound(force_withdrawal_delay: Seconds, challenge_window: Seconds) -> Seconds:
    """The longest a user may need to leave, seconds: ``T_force + W`` plus one emergency pause
    (``MAX_PAUSE``). A governance timelock must exceed it (DESIGN §2.6) and so must every
    unbonding delay of stake that backs a forced exit."""
    return Seconds(force_withdrawal_delay + challenge_window + MAX_PAUSE)


@dataclass(frozen=True, slots=True)
class Params:
    """Protocol parameters. Changing one changes the protocol: they are versioned by governance."""

    eip712_name: str
    """EIP-712 domain ``name``: one domain per deployment, with ``chainId`` and ``verifyingContract``."""
    eip712_version: str
    """EIP-712 domain ``version``; bumped whenever a message layout changes."""
    collateral_decimals: int
    """Decimals of the collateral (quote) token; amounts are integers in its base units."""
    contract_unit: int
    """Contract granularity: quantities are integers in units of ``1 / contract_unit`` of the underlying."""
    challenge_window: Seconds
    """``W``: seconds a posted batch can be proven invalid before anyone may finalise it."""
    force_withdrawal_delay: Seconds
    """``T_force``: seconds a forced withdrawal may wait unserved before anyone may freeze the system."""
    timelock: Seconds
    """Seconds between a governance decision and its execution; must exceed ``T_force + W + MAX_PAUSE``
    (:func:`compute_exit_bound`) so users can exit even through the longest emergency pause."""
    checkpoint_interval: int
    """``K``: operations between committed intermediate state roots; bounds a fraud proof's gas."""
    max_positions: int
    """Open option positions an account may hold (bounded so one leaf fits a fraud proof)."""
    max_message_lifetime: Seconds
    """Longest expiry a signed order/quote may carry, counted from now (quotes are much shorter)."""
    min_coordinator_bond: Amount
    """Smallest coordinator bond, in collateral base units; must exceed the cost to grief a challenge."""
    unbonding_delay: Seconds
    """``Bonds.unbonding_delay``: seconds from an unbonding request to the withdrawal; longer than
    every window in which the stake can still be slashed (``W``, ``T_force + W``, the timelock)."""
    max_window_outflow: Amount
    """Most collateral the batches of one challenge window may pay out, base units: what a corrupt
    coordinator could move before anyone must notice; the bond must cover twice it (DESIGN §2.7).
    Enforced on-chain by the vault (``Vault.outflow_cap``: claims pay at most this in any ``W``
    seconds; ``clearhouse.settlement.outflow``)."""
    max_open_interest: Amount
    """Cap on open interest as settlement-price sensitivity: the sum over series of open contracts
    times one contract's payoff range over ``[0, cap]``, base units. A corrupt oracle quorum can move
    at most this at settlement; the committee's slashable stake must cover twice it. Enforced by the
    coordinator's risk check (``clearhouse.market.open_interest``)."""

    def __post_init__(self) -> None:
        # Relations between parameters are part of the protocol (DESIGN §2.6).
        exit_bound = compute_exit_bound(self.force_withdrawal_delay, self.challenge_window)
        if self.timelock <= exit_bound:
            raise ConfigError(f"timelock {self.timelock} s must exceed T_force + W + MAX_PAUSE ({exit_bound} s): "
                              "a user must be able to exit through the longest emergency pause",
                              field="timelock")
        for field in ("challenge_window", "force_withdrawal_delay", "checkpoint_interval",
                      "max_positions", "max_message_lifetime", "contract_unit"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"{field} must be positive", field=field)
        # Stake must stay slashable through every window a fault it backs can be proven in.
        if self.unbonding_delay <= self.timelock:
            raise ConfigError("unbonding_delay must exceed the timelock (itself > T_force + W + MAX_PAUSE)",
                              field="unbonding_delay")
        # Cost of corruption >= 2 x profit from corruption for the coordinator (DESIGN §2.7).
        if self.min_coordinator_bond < 2 * self.max_window_outflow:
            raise ConfigError("min_coordinator_bond must be at least 2 x max_window_outflow",
                              field="max_window_outflow")
        if self.max_window_outflow <= 0 or self.max_open_interest <= 0:
            raise ConfigError("caps must be positive", field="max_open_interest")


def load_params(preset: str | Path = "devnet", **overrides: Any) -> Params:
    """Load a preset by name (``mainnet``, ``devnet``) or from a YAML file, with optional overrides."""
    if isinstance(preset, Path) or str(preset).endswith((".yaml", ".yml")):
        text = Path(preset).read_text()
    elif preset in PRESETS:
        text = resources.files("clearhouse.presets").joinpath(f"{preset}.yaml").read_text()
    else:
        raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}", field="preset")
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise ConfigError("a preset must be a mapping", field="preset")
    raw.update(overrides)
    known = {f.name for f in dataclasses.fields(Params)}
    unknown = sorted(set(raw) - known)
    missing = sorted(known - set(raw))
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}", field=unknown[0])
    if missing:
        raise ConfigError(f"missing parameter(s): {', '.join(missing)}", field=missing[0])
    return Params(**raw)
