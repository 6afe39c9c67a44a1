"""Parameter invariants over governance's bounds (STYLE 5): no value governance may set lets a user's
exit or a slashable fault outlast what protects it.

- every ``(W, T_force)`` within ``DEFAULT_BOUNDS`` is a valid settlement (``T_force > W``) whose exit
  time with the longest emergency pause, ``W + T_force + MAX_PAUSE``, stays under the deployed 7-day
  unbonding delay: stake can never unbond while it is still slashable for a forced exit;
- a timelock an hour above that exit time is accepted by ``Params`` and ``SlashingParams``;
- the timelock relation names the pause: ``T_force + W`` alone is refused, with a specific error.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.errors import ConfigError
from clearhouse.governance.proposals import DEFAULT_BOUNDS, ParameterBound
from clearhouse.incentives.slashing import SlashingParams, compute_slashable_windows
from clearhouse.params import MAX_PAUSE, PRESETS, compute_exit_bound, load_params
from clearhouse.sim.governance_chain import GOVERNANCE_DISPUTES, INITIAL_VALUES
from clearhouse.sim.oracle_hub import DEFAULT_DISPUTES, DEFAULT_HUB
from clearhouse.sim.settlement_chain import REWARD_BPS
from clearhouse.types import BasisPoints, Seconds

HOUR, DAY = 3_600, 86_400
UNBONDING = Seconds(7 * DAY)
"""The deployed unbonding delay: ``Bonds`` in ``sim.settlement_chain``, the devnet preset, the
governance disputes."""

W, T = DEFAULT_BOUNDS["challenge_window"], DEFAULT_BOUNDS["t_force"]


def _in(bound: ParameterBound) -> st.SearchStrategy[int]:
    return st.integers(min_value=bound.minimum, max_value=bound.maximum)


def _slashing(window: int, t_force: int, timelock: int) -> SlashingParams:
    return SlashingParams(BasisPoints(REWARD_BPS), Seconds(window), Seconds(t_force), Seconds(timelock), UNBONDING,
                          DEFAULT_HUB, DEFAULT_DISPUTES)


def test_the_deployed_unbonding_delay_is_seven_days() -> None:
    assert load_params("devnet").unbonding_delay == UNBONDING == GOVERNANCE_DISPUTES.unbonding_delay
    assert MAX_PAUSE == 3 * DAY  # Settlement.MAX_PAUSE (tests/node/test_devnet_governance.py reads it)


def test_the_extremes_of_the_bounds_hold() -> None:
    """The worst case: the longest W with the longest T_force, and the shortest T_force with the
    longest W (the invariants are monotone, so the corners decide)."""
    assert compute_exit_bound(Seconds(T.maximum), Seconds(W.maximum)) < UNBONDING
    assert T.minimum > W.maximum
    assert all(DEFAULT_BOUNDS[name].minimum <= value <= DEFAULT_BOUNDS[name].maximum
               for name, value in INITIAL_VALUES.items())


@given(_in(W), _in(T))
def test_every_window_within_bounds_keeps_stake_slashable_through_an_exit(window: int, t_force: int) -> None:
    assert t_force > window  # Settlement's constructor: T_force > W
    exit_bound = compute_exit_bound(Seconds(t_force), Seconds(window))
    assert exit_bound == window + t_force + MAX_PAUSE < UNBONDING
    p = _slashing(window, t_force, exit_bound + HOUR)  # validate_slashing_params accepts it
    for name, (_, length) in compute_slashable_windows(p).items():
        assert length < p.settlement_unbonding_delay, name
    params = load_params("devnet", challenge_window=window, force_withdrawal_delay=t_force,
                         timelock=exit_bound + HOUR)
    assert params.unbonding_delay > params.timelock > exit_bound


def test_the_old_bounds_would_let_stake_unbond_while_slashable() -> None:
    """What the bounds were (W up to 7 days, T_force up to 14): the invariant test catches them."""
    assert compute_exit_bound(Seconds(14 * DAY), Seconds(7 * DAY)) >= UNBONDING
    # even a T_force of 5 days (within the old bounds) with the longest W of today's: the pause
    # carries the forced exit past the unbonding delay, and the slashing validation names it
    with pytest.raises(ConfigError, match="forced exit") as info:
        _slashing(W.maximum, 5 * DAY, compute_exit_bound(Seconds(5 * DAY), Seconds(W.maximum)) + 1)
    assert info.value.field == "settlement_unbonding_delay"


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_timelock_covers_the_longest_pause(preset: str) -> None:
    p = load_params(preset)
    assert p.timelock > compute_exit_bound(p.force_withdrawal_delay, p.challenge_window)
    assert p.unbonding_delay > p.timelock


def test_a_timelock_that_ignores_the_pause_is_refused() -> None:
    p = load_params("devnet")
    exit_bound = compute_exit_bound(p.force_withdrawal_delay, p.challenge_window)
    for timelock in (p.force_withdrawal_delay + p.challenge_window + 1, exit_bound):
        with pytest.raises(ConfigError, match="T_force \\+ W \\+ MAX_PAUSE") as info:
            load_params("devnet", timelock=timelock)
        assert info.value.field == "timelock"
    assert load_params("devnet", timelock=exit_bound + 1).timelock == exit_bound + 1
    assert dataclasses.replace(p, timelock=Seconds(exit_bound + 1)).timelock == exit_bound + 1
