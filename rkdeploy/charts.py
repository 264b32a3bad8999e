"""Charts for `inv report`, drawn by matplotlib as inline SVG: no JavaScript, nothing fetched, printable.

* Text stays text (`svg.fonttype: none`): the page can be searched and its figures read by a browser's DOM.
  Text, axes and ticks are drawn in `currentColor` (a sentinel colour replaced after rendering), so they
  follow the page's light or dark colour scheme; backgrounds are transparent; data colours are mid-tone
  colours readable on white and on near-black.
* Labels come from boards and models: they are `report.clean`ed, shortened, and matplotlib's mathtext is
  off (`text.parse_math: False`), so `$…$` in a board name is text, never a formula (or a parse error).
  matplotlib escapes the text it writes into the SVG.
* Every element id is prefixed per chart, so several charts in one page never share an id.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from html import escape
from typing import Iterable, Sequence

from cycler import cycler
from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from . import report

INK = "#010203"                 # replaced by currentColor in the SVG
PALETTE = ("#3b82f6", "#f59e0b", "#10b981", "#a855f7", "#ec4899", "#14b8a6", "#f97316", "#64748b")
BAD = "#ef4444"
GOOD = "#22c55e"
WARN = "#f59e0b"

_RC = {
    "svg.fonttype": "none", "text.parse_math": False, "text.usetex": False,
    "font.size": 9, "font.family": "sans-serif",
    "text.color": INK, "axes.labelcolor": INK, "axes.edgecolor": INK, "xtick.color": INK, "ytick.color": INK,
    "axes.titlecolor": INK, "legend.labelcolor": INK, "legend.edgecolor": INK, "legend.facecolor": "none",
    "legend.framealpha": 0.0, "grid.color": INK, "grid.alpha": 0.18,
    "figure.facecolor": "none", "axes.facecolor": "none", "savefig.facecolor": "none", "savefig.transparent": True,
    "axes.spines.top": False, "axes.spines.right": False, "axes.prop_cycle": cycler(color=PALETTE),
}


def label(value, limit: int = 42) -> str:
    """A board- or model-derived label: cleaned (no control characters) and shortened."""
    text = report.clean(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


_counter = 0


def to_svg(fig: Figure, title: str) -> str:
    """The figure as an `<svg>` element for inline use: no XML prolog, ids prefixed, currentColor text,
    scaling to the page's width, with an accessible title."""
    global _counter
    _counter += 1
    prefix = f"c{_counter}-"
    buf = io.StringIO()
    with rc_context({**_RC, "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)       # RDF boilerplate
    svg = svg.replace("*{stroke-linejoin", "svg.chart *{stroke-linejoin")  # matplotlib's style: this chart only
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}{m.group(1)})", svg)
    svg = re.sub(r'((?:xlink:)?href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', svg)
    svg = svg.replace(INK, "currentColor").replace(INK.upper(), "currentColor")
    svg = re.sub(r'<svg ([^>]*?)width="([\d.]+)pt" height="([\d.]+)pt"',      # natural size, shrunk to fit
                 lambda m: f'<svg {m.group(1)}width="{float(m.group(2)) * 4 / 3:.0f}" '
                           f'height="{float(m.group(3)) * 4 / 3:.0f}" class="chart" role="img"', svg, count=1)
    return svg.replace(">", f"><title>{escape(report.clean(title))}</title>", 1)


def _figure(width: float, height: float) -> Figure:
    with rc_context(_RC):
        return Figure(figsize=(width, height))


def latency_bars(title: str, bars: Sequence[dict]) -> str:
    """Horizontal bars, one per row: `label`, `value` (ms), optional `p90`/`p99` (whisker to p99, tick at p90),
    `baseline` (a hollow diamond), `regression` (text: the bar turns red, hatched, with the text beside it)."""
    with rc_context(_RC):
        fig = _figure(7.5, 0.9 + 0.34 * max(1, len(bars)))
        ax = fig.add_subplot()
        ys = list(range(len(bars)))[::-1]
        top = 0.0
        for y, bar in zip(ys, bars):
            value = bar.get("value") or 0.0
            regressed = bool(bar.get("regression"))
            ax.barh(y, value, height=0.6, color=BAD if regressed else PALETTE[0], hatch="//" if regressed else None,
                    edgecolor=INK if regressed else PALETTE[0], linewidth=0.6)
            end = value
            p90, p99 = bar.get("p90"), bar.get("p99")
            if p99 and p99 > value:
                ax.errorbar(value, y, xerr=[[0], [p99 - value]], fmt="none", ecolor=INK, elinewidth=0.9, capsize=3)
                end = p99
            if p90 and p90 > value:
                ax.plot([p90], [y], marker="|", markersize=9, markeredgewidth=1.5, color=INK, linestyle="none", zorder=4)
            base = bar.get("baseline")
            if base:
                ax.plot([base], [y], marker="D", markersize=6, markerfacecolor="none", markeredgecolor=INK,
                        markeredgewidth=1.4, linestyle="none", zorder=5)
                end = max(end, base)
            note = f"{value:g} ms" if value else "no result"
            if regressed:
                note += f"  ▲ {bar['regression']}"
            ax.text(end, y, "  " + note, va="center", fontsize=8, color=BAD if regressed else INK)
            top = max(top, end)
        ax.set_yticks(ys, [label(b.get("label")) for b in bars])
        ax.set_xlim(0, top * 1.45 if top else 1)
        ax.set_xlabel("latency (ms): bar p50 or the toolkit's time; whisker to p99, tick at p90; ◇ baseline")
        ax.set_title(label(title, 80), loc="left", fontsize=10)
        ax.grid(axis="x")
        return to_svg(fig, title)


def lines_over_time(title: str, series: dict[str, list[tuple[dt.datetime, float]]], ylabel: str, *,
                    colours: dict[str, str] | None = None, integer: bool = False) -> str:
    """One line per series over time (points marked), dates on the x axis."""
    with rc_context(_RC):
        fig = _figure(7.5, 2.8)
        ax = fig.add_subplot()
        for i, (name, points) in enumerate(series.items()):
            points = sorted(points)
            if not points:
                continue
            xs, ys = zip(*points)
            colour = (colours or {}).get(name) or PALETTE[i % len(PALETTE)]
            ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.4, color=colour, label=label(name, 48))
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        if integer:
            ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(ylabel)
        ax.set_title(label(title, 80), loc="left", fontsize=10)
        ax.grid(axis="y")
        if len(series) > 0:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        return to_svg(fig, title)


def bars_by_status(title: str, counts: Iterable[tuple[str, int, str]]) -> str:
    """A small horizontal bar per status: (name, count, colour)."""
    counts = list(counts)
    with rc_context(_RC):
        fig = _figure(4.0, 0.6 + 0.3 * len(counts))
        ax = fig.add_subplot()
        ys = list(range(len(counts)))[::-1]
        for y, (name, n, colour) in zip(ys, counts):
            ax.barh(y, n, height=0.6, color=colour)
            ax.text(n, y, f" {n}", va="center", fontsize=8)
        ax.set_yticks(ys, [label(c[0]) for c in counts])
        ax.set_xlim(0, max([c[1] for c in counts] + [1]) * 1.25)
        ax.xaxis.set_visible(False)
        ax.spines["bottom"].set_visible(False)
        ax.set_title(label(title, 80), loc="left", fontsize=10)
        return to_svg(fig, title)
