"""``OracleHub.twap`` and ``clearhouse.oracle.compute_twap`` (the spec) agree on random feeds and
windows: same price to the unit, or the same revert reason."""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st
from oracle_system import honest_report

from clearhouse.chain import InProcessChain
from clearhouse.errors import ContractRevert, StaleFeed
from clearhouse.oracle import compute_twap
from clearhouse.sim.oracle_hub import (
    DEFAULT_FEED,
    DEFAULT_HUB,
    USDC,
    OracleSystem,
    deploy_oracle_system,
)
from clearhouse.types import Price, Timestamp

_SYSTEM: list[OracleSystem] = []


def _system() -> OracleSystem:
    if not _SYSTEM:
        _SYSTEM.append(deploy_oracle_system(InProcessChain(), 1))
    return _SYSTEM[0]


@given(
    steps=st.lists(st.tuples(st.integers(DEFAULT_HUB.min_round_interval, 400),
                             st.integers(DEFAULT_FEED.min_price, 100_000 * USDC)),
                   min_size=0, max_size=8),
    tail=st.integers(1, 900),
    windows=st.lists(st.tuples(st.integers(-4_000, -60), st.integers(-50, 1_900),
                               st.integers(0, 200_000 * USDC)), min_size=1, max_size=6),
)
def test_contract_twap_equals_the_spec(steps: list[tuple[int, int]], tail: int,
                                       windows: list[tuple[int, int, int]]) -> None:
    s = _system()
    snap = s.chain.snapshot()
    try:
        for round_id, (gap, price) in enumerate(steps, 1):
            s.transmit(honest_report(s, round_id, [price] * 3))
            s.chain.time_travel(gap)
        s.chain.time_travel(tail)
        rounds = s.rounds()
        now = int(s.now())
        for offset, length, cap in windows:
            start, end = now + offset, now + offset + length
            try:
                expected: int | str = compute_twap(rounds, Timestamp(start), Timestamp(end), Price(cap),
                                                   Timestamp(now), DEFAULT_FEED,
                                                   DEFAULT_HUB.max_twap_window)
            except StaleFeed as error:
                expected = error.message
            try:
                got: int | str = s.hub.call("twap", s.committee.feed_id, max(start, 0), max(end, 0), cap)
            except ContractRevert as error:
                got = str(error.reason)
            event(f"{got if isinstance(got, str) else 'price'}")
            assert got == expected, (start, end, cap, rounds)
    finally:
        s.chain.revert_to(snap)
