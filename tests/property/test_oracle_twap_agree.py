"""``OracleHub.twap`` and ``clearhouse.oracle.compute_twap`` (the spec) agree on random feeds and
windows — verified and optimistic rounds, some disputed, some found invalid — same price to the
unit, or the same revert reason."""

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
    """One deployment whose dispute module is a test account: statuses are set directly (the
    paths that set them are tested in ``tests/contracts/test_oracle_disputes.py``)."""
    if not _SYSTEM:
        s = deploy_oracle_system(InProcessChain(), 1)
        s.hub.transact("set_dispute_module", s.chain.accounts[9].address)
        _SYSTEM.append(s)
    return _SYSTEM[0]


STATUSES = st.sampled_from(["valid"] * 5 + ["optimistic", "disputed", "invalid", "invalid"])


@given(
    steps=st.lists(st.tuples(st.integers(DEFAULT_HUB.min_round_interval, 400),
                             st.integers(DEFAULT_FEED.min_price, 100_000 * USDC), STATUSES),
                   min_size=0, max_size=8),
    tail=st.integers(1, 1_500),
    data=st.data(),
)
def test_contract_twap_equals_the_spec(steps: list[tuple[int, int, str]], tail: int,
                                       data: st.DataObject) -> None:
    s = _system()
    snap = s.chain.snapshot()
    try:
        for round_id, (gap, price, status) in enumerate(steps, 1):
            if status == "optimistic":
                s.post(s.keys[round_id % 4], round_id, price)
            else:
                s.transmit(honest_report(s, round_id, [price] * 3))
            s.chain.time_travel(gap)
        for index, (_, _, status) in enumerate(steps):
            if status in ("disputed", "invalid"):
                s.hub.transact("set_round_status", s.committee.feed_id, index, status == "disputed",
                               status == "invalid", sender=s.chain.accounts[9])
        s.chain.time_travel(tail)
        rounds = s.rounds()
        now = int(s.now())
        # window ends from a little before the first round to now: around the rounds, some not final
        first = rounds[0].timestamp if rounds else now - 1_000
        for _ in range(data.draw(st.integers(1, 6))):
            end = data.draw(st.integers(first - 100, now - 1))
            start = end - data.draw(st.integers(-50, 1_900))
            cap = data.draw(st.integers(0, 200_000 * USDC))
            try:
                expected: int | str = compute_twap(rounds, Timestamp(start), Timestamp(end), Price(cap),
                                                   Timestamp(now), DEFAULT_FEED, DEFAULT_HUB)
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
