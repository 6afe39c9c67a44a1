"""Helpers shared by the benchmarks: timing medians and the JSON result file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"


def git_commit() -> str:
    """The commit the figures belong to (``uncommitted`` when the tree is dirty or not a repo)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.CalledProcessError):
        return "uncommitted"


def machine(evm: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.machine()}
    if evm:
        info["evm"] = evm
    return info


def rate(fn: Callable[[], int], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median items/second of ``fn`` (which returns how many items it processed)."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def write_result(name: str, metrics: dict[str, Any], notes: str = "", evm: str | None = None) -> Path:
    """Write ``out/bench/<name>.json`` and print the figures."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    body = {"name": name, "commit": git_commit(), "machine": machine(evm), "metrics": metrics,
            "notes": notes}
    path.write_text(json.dumps(body, indent=2) + "\n")
    width = max(map(len, metrics), default=0)
    print(f"== {name} -> {path.relative_to(ROOT)}")
    for key, value in metrics.items():
        shown = f"{value:,.4g}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
        print(f"  {key:<{width}}  {shown}")
    return path
