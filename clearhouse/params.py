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
from typing import Any

import yaml

from clearhouse.errors import ConfigError
from clearhouse.types import Amount, Seconds

__all__ = ["PRESETS", "Params", "load_params"]

PRESETS = ("mainnet", "devnet")


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
    """Seconds between a governance decision and its execution; must exceed ``T_force + W`` so users can exit."""
    checkpoint_interval: int
    """``K``: operations between committed intermediate state roots; bounds a fraud proof's gas."""
    max_positions: int
    """Open option positions an account may hold (bounded so one leaf fits a fraud proof)."""
    max_message_lifetime: Seconds
    """Longest expiry a signed order/quote may carry, counted from now (quotes are much shorter)."""
    min_coordinator_bond: Amount
    """Smallest coordinator bond, in collateral base units; must exceed the cost to grief a challenge."""

    def __post_init__(self) -> None:
        # Relations between parameters are part of the protocol (DESIGN §2.6).
        if self.timelock <= self.force_withdrawal_delay + self.challenge_window:
            raise ConfigError("timelock must exceed T_force + W", field="timelock")
        for field in ("challenge_window", "force_withdrawal_delay", "checkpoint_interval",
                      "max_positions", "max_message_lifetime", "contract_unit"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"{field} must be positive", field=field)


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
