"""Presets load into frozen params, and the economic relations between parameters hold."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clearhouse.errors import ConfigError
from clearhouse.params import PRESETS, Params, load_params


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_loads_and_is_frozen(preset: str) -> None:
    params = load_params(preset)
    assert isinstance(params, Params)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.timelock = 0  # type: ignore[misc]


@pytest.mark.parametrize("preset", PRESETS)
def test_timelock_exceeds_exit_time(preset: str) -> None:
    """DESIGN §2.6: users can always exit before a parameter change takes effect."""
    p = load_params(preset)
    assert p.timelock > p.force_withdrawal_delay + p.challenge_window


def test_timelock_too_short_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_params("devnet", timelock=1500)  # T_force + W = 1500 in devnet
    assert info.value.field == "timelock"


def test_unknown_and_missing_parameters_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown parameter") as info:
        load_params("devnet", bogus=1)
    assert info.value.field == "bogus"
    partial = tmp_path / "partial.yaml"
    partial.write_text("eip712_name: x\n")
    with pytest.raises(ConfigError, match="missing parameter"):
        load_params(partial)


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="devnet"):
        load_params("moonnet")


@pytest.mark.parametrize("field", ["challenge_window", "checkpoint_interval", "max_positions"])
def test_non_positive_windows_are_refused(field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_params("devnet", **{field: 0})
    assert info.value.field == field


@pytest.mark.parametrize("preset", PRESETS)
def test_fraud_proof_window_fits_half_a_block(preset: str) -> None:
    """DESIGN §7: K is chosen so the worst execution proof stays under half the block gas limit.

    benchmarks/fraud_proof.py measures ≈ 0.8M gas per worst-case operation plus ≈ 0.7M per window
    (K = 16 → 13.2M, K = 17 is the largest under 15M of a 30M block).
    """
    assert load_params(preset).checkpoint_interval <= 16
