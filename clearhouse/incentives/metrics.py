"""Concentration of stake: how few stakers it takes to reach a threshold, and the HHI.

Pure and exact: stakes are integer base units and every ratio is compared by cross-multiplying,
so two nodes computing from the same chain state print the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

from clearhouse.errors import ConfigError

__all__ = ["BPS", "compute_hhi", "compute_nakamoto_coefficient", "compute_share_bps"]

BPS = 10_000


def _positive(stakes: Iterable[int]) -> list[int]:
    values = [int(s) for s in stakes]
    if any(s < 0 for s in values):
        raise ConfigError("stakes cannot be negative", field="stakes")
    return sorted((s for s in values if s > 0), reverse=True)


def compute_nakamoto_coefficient(stakes: Iterable[int], threshold_bps: int) -> int | None:
    """The fewest stakers whose stake together is strictly more than ``threshold_bps`` of the total
    (``5_000`` for a majority, ``3_334`` for more than a third). ``None`` when there is no stake."""
    if not 0 <= threshold_bps < BPS:
        raise ConfigError("threshold must be in [0, 10000) basis points", field="threshold_bps")
    values = _positive(stakes)
    total = sum(values)
    if total == 0:
        return None
    running = 0
    for count, stake in enumerate(values, start=1):
        running += stake
        if running * BPS > total * threshold_bps:
            return count
    raise AssertionError("unreachable: the whole stake exceeds any threshold below 100 %")


def compute_hhi(stakes: Iterable[int]) -> int:
    """Herfindahl–Hirschman index of the stake shares on the 0–10,000 scale (10,000: one staker),
    rounded down; 0 when there is no stake."""
    values = _positive(stakes)
    total = sum(values)
    if total == 0:
        return 0
    return sum(s * s for s in values) * BPS // (total * total)


def compute_share_bps(stake: int, total: int) -> int:
    """``stake`` as basis points of ``total``, rounded down (0 of an empty total)."""
    return 0 if total <= 0 else int(stake) * BPS // int(total)
