"""The demo's report: ``summary.json`` and a self-contained ``report.html`` with its plots.

The scenarios record what happened on the chain into a :class:`DemoTrace`; this module only draws
it. Plots are Matplotlib SVGs (figures made directly, without pyplot's global state) inlined into one HTML file (no network, no scripts), so the report
opens anywhere and can be attached to a ticket as it is.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

__all__ = ["DemoTrace", "TimelineEvent", "render_report", "write_report"]

_INK = "#1f2933"
_ACCENT = "#2563eb"
_GOOD = "#15803d"
_BAD = "#b91c1c"
_MUTED = "#9aa5b1"


@dataclass(frozen=True)
class TimelineEvent:
    """One dated event of the session: a batch posted, finalised or challenged, a dispute…"""

    timestamp: int
    """Chain time, seconds since the epoch."""
    lane: str
    """The row it is drawn on (``"batches"``, ``"disputes"``, ``"oracle"``…)."""
    label: str
    ok: bool = True
    """False for faults (a bad batch, a lost dispute): drawn in red."""


@dataclass
class DemoTrace:
    """What the scenarios measured, in display units (USDC, seconds)."""

    price_path: list[tuple[int, float]] = field(default_factory=list)
    """Oracle rounds as (chain time s, price in USDC)."""
    rejected_rounds: list[tuple[int, float]] = field(default_factory=list)
    """Rounds ruled wrong (and skipped by the TWAP), drawn as red crosses."""
    settlement_price: float | None = None
    """The expiry's settlement price in USDC, drawn over the path."""
    pnl: dict[str, float] = field(default_factory=dict)
    """Realised plus settled P&L per account label, USDC."""
    gas_per_trade: list[tuple[int, float]] = field(default_factory=list)
    """(batch number, gas per settled trade) for every batch that carried trades."""
    timeline: list[TimelineEvent] = field(default_factory=list)
    """Events in the order they happened."""
    participants: list[dict[str, Any]] = field(default_factory=list)
    """Rewards, slashes and reputation per participant (:mod:`clearhouse.sim.participants`, base units)."""


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(7.2, 3.0), dpi=100)
    ax = fig.subplots()
    ax.set_title(title, loc="left", fontsize=11, color=_INK)
    ax.set_xlabel(xlabel, fontsize=9, color=_INK)
    ax.set_ylabel(ylabel, fontsize=9, color=_INK)
    ax.tick_params(labelsize=8, colors=_INK)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _plot_price(trace: DemoTrace) -> str | None:
    if not trace.price_path:
        return None
    t0 = trace.price_path[0][0]
    fig, ax = _axes("Oracle price path", "minutes since the first round", "USDC")
    xs = [(t - t0) / 60 for t, _ in trace.price_path]
    ax.plot(xs, [p for _, p in trace.price_path], color=_ACCENT, marker="o", markersize=2.5, linewidth=1.2)
    prices = [p for _, p in trace.price_path] + ([trace.settlement_price] if trace.settlement_price else [])
    low, high = min(prices), max(prices)
    pad = (high - low) * 0.15 or 1.0
    ax.set_ylim(low - pad, high + pad)
    for i, (t, p) in enumerate(trace.rejected_rounds):
        # a wrong round can be far off the path: pin it to the edge and print its price
        y = min(max(p, low - pad * 0.6), high + pad * 0.6)
        ax.scatter([(t - t0) / 60], [y], color=_BAD, marker="x", s=40, zorder=3,
                   label="round ruled wrong (skipped by the TWAP)" if i == 0 else None)
        ax.annotate(f"{p:,.2f}", ((t - t0) / 60, y), xytext=(5, -3), textcoords="offset points",
                    fontsize=7, color=_BAD)
    if trace.settlement_price is not None:
        ax.axhline(trace.settlement_price, color=_GOOD, linestyle="--", linewidth=1,
                   label=f"settlement (TWAP) {trace.settlement_price:,.2f}")
    if trace.settlement_price is not None or trace.rejected_rounds:
        ax.legend(fontsize=8, frameon=False)
    return _svg(fig)


def _plot_pnl(trace: DemoTrace) -> str | None:
    if not trace.pnl:
        return None
    fig, ax = _axes("P&L per account", "", "USDC")
    names = list(trace.pnl)
    values = [trace.pnl[n] for n in names]
    ax.bar(names, values, color=[_GOOD if v >= 0 else _BAD for v in values])
    ax.axhline(0, color=_INK, linewidth=0.8)
    ax.tick_params(axis="x", labelrotation=30)
    return _svg(fig)


def _plot_gas(trace: DemoTrace) -> str | None:
    if not trace.gas_per_trade:
        return None
    fig, ax = _axes("Gas per settled trade, per batch", "batch", "gas / trade")
    ax.bar([str(n) for n, _ in trace.gas_per_trade], [g for _, g in trace.gas_per_trade], color=_ACCENT)
    return _svg(fig)


def _plot_timeline(trace: DemoTrace) -> str | None:
    """Events in the order they happened along x (their times are labels: clusters stay readable)."""
    if not trace.timeline:
        return None
    events = trace.timeline
    lanes = list(dict.fromkeys(e.lane for e in events))
    t0 = events[0].timestamp
    fig, ax = _axes("Batches and disputes", "event (minutes since the first)", "")
    ax.grid(axis="y", visible=False)
    for i, e in enumerate(events):
        y = lanes.index(e.lane)
        ax.scatter([i], [y], color=_GOOD if e.ok else _BAD, s=26, zorder=3)
        ax.annotate(f"{e.label} (+{(e.timestamp - t0) / 60:.0f} min)", (i, y), xytext=(4, 8 + 10 * (i % 3)),
                    textcoords="offset points", fontsize=7, color=_INK if e.ok else _BAD, rotation=25)
    ax.set_xticks(range(len(events)))
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlim(-0.5, len(events) + 1.5)
    ax.set_ylim(-0.5, len(lanes) + 0.3)
    return _svg(fig)


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_format(v)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(_format(v) for v in value)
    return str(value)


def _participants_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rewards, slashes and reputation per participant as an HTML table (amounts in USDC)."""
    if not rows:
        return ""

    def usdc(value: int | None) -> str:
        return "—" if value is None else f"{value / 10**6:+,.2f}" if value else "0"

    head = "".join(f"<th>{h}</th>" for h in ("participant", "role", "P&amp;L", "earned", "rewards", "slashed",
                                             "reputation"))
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
            str(r["name"]), str(r["role"]), usdc(r["pnl"]), usdc(r["earned"]), usdc(r["rewards"]),
            usdc(-r["slashed"]), "—" if r["reputation_ppm"] is None else f"{r['reputation_ppm'] / 10_000:.1f} %"))
        + "</tr>" for r in rows)
    return (f"<h2>Rewards, slashes and reputation per participant</h2>\n<table class=\"participants\">"
            f"<tr>{head}</tr>\n{body}\n</table>\n")


def render_report(summary: Mapping[str, Any], trace: DemoTrace) -> str:
    """The report page: the summary as a table, then each plot that has data."""
    rows = "\n".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_format(v))}</td></tr>"
                     for k, v in summary.items())
    plots = [p for p in (_plot_price(trace), _plot_gas(trace), _plot_pnl(trace), _plot_timeline(trace))
             if p is not None]
    figures = "\n".join(f"<figure>{p}</figure>" for p in plots)
    figures = _participants_table(trace.participants) + figures
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clearhouse demo report</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; color: {_INK}; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; margin-bottom: .2rem; }}
p.lead {{ color: #52606d; margin-top: 0; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0 2rem; }}
th, td {{ text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #e4e7eb; vertical-align: top; }}
th {{ font-weight: 600; white-space: nowrap; width: 16rem; }}
figure {{ margin: 0 0 1.5rem; }}
figure svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
<h1>clearhouse demo report</h1>
<p class="lead">Every figure below was measured from what happened on the chain during the run.</p>
<table>
{rows}
</table>
{figures}
</body></html>
"""


def write_report(summary: Mapping[str, Any], trace: DemoTrace, out_dir: Path,
                 display: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``summary.json`` (``summary``, exact) and ``report.html`` (``display`` if given: the
    same figures formatted for reading) into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "summary.json"
    report_path = out_dir / "report.html"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    report_path.write_text(render_report(summary if display is None else display, trace))
    return summary_path, report_path
