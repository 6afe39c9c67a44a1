"""The demo report: every plot with data is drawn, empty ones are left out, the summary is escaped."""

from __future__ import annotations

import json
from pathlib import Path

from clearhouse.sim.report import DemoTrace, TimelineEvent, render_report, write_report


def _trace() -> DemoTrace:
    return DemoTrace(
        price_path=[(1_000 + 60 * i, 3000.0 + 5 * i) for i in range(10)],
        settlement_price=3021.5,
        pnl={"alice": 120.5, "bob": -120.5},
        gas_per_trade=[(1, 9_500.0), (2, 9_480.0)],
        timeline=[TimelineEvent(1_000, "batches", "#1 posted"),
                  TimelineEvent(1_200, "batches", "#2 challenged", ok=False),
                  TimelineEvent(1_300, "disputes", "round 7 disputed")],
    )


def test_report_has_every_plot_and_the_summary(tmp_path: Path) -> None:
    summary = {"batches_posted": 3, "settlement_price": "3,021.50 USDC", "note": "<b>x</b>"}
    summary_path, report_path = write_report(summary, _trace(), tmp_path)
    assert json.loads(summary_path.read_text()) == summary
    page = report_path.read_text()
    assert page.count("<svg") == 4
    for title in ("Oracle price path", "Gas per settled trade", "P&amp;L per account", "Batches and disputes"):
        assert title in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "<script" not in page


def test_empty_trace_draws_nothing() -> None:
    page = render_report({"accounts": 4}, DemoTrace())
    assert "<svg" not in page and "<th>accounts</th><td>4</td>" in page
