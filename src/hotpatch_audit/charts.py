"""Report charts: matplotlib (Agg) figures returned as inline SVG, deterministic and offline."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

from markupsafe import Markup, escape  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

Row = Mapping[str, Any]

# Outcome colours are fixed so that a colour means the same thing in every report.
OUTCOME_SERIES: tuple[tuple[str, str, str], ...] = (
    ("avoided", "Avoided (no reboot)", "#2e7d32"),
    ("no_install", "No install", "#9e9e9e"),
    ("expected_reboot", "Expected reboot", "#1565c0"),
    ("unexpected_reboot", "Unexpected reboot", "#c62828"),
    ("avoidable_reboot", "Avoidable reboot", "#ef6c00"),
    ("unknown", "Unknown", "#d7ccc8"),
)

_RC: dict[Any, Any] = {
    "svg.hashsalt": "hotpatch-audit",  # stable element ids: same data, same SVG
    "svg.fonttype": "path",  # glyphs as paths: no font or text node depends on the viewer
    "font.family": "DejaVu Sans",
    "font.size": 8,
}
_STRIP = (
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
)


@dataclass(frozen=True)
class Chart:
    """One chart: inline <svg> for the HTML page, a data: URI of the same SVG for WeasyPrint."""

    svg: Markup
    data_uri: str
    label: str


def _to_svg(fig: Figure, label: str) -> Chart:
    """Serialise a figure to an inline <svg> element (no XML prolog, no metadata, no external refs)."""
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    for pattern in _STRIP:
        svg = pattern.sub("", svg)
    data_uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    svg = svg.replace("<svg ", f'<svg class="chart" role="img" aria-label="{escape(label)}" ', 1)
    # The SVG is produced here from numbers and fixed labels, never from Azure strings.
    return Chart(svg=Markup(svg), data_uri=data_uri, label=label)  # noqa: S704


def reboot_outcomes_svg(months: Sequence[Row]) -> Chart:
    """Stacked bars of machine-months by outcome per month of the period."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 3.0), layout="constrained")
        ax = fig.add_subplot()
        labels = [str(m["month"]) for m in months]
        bottom = [0] * len(months)
        for key, name, colour in OUTCOME_SERIES:
            values = [int(m[key]) for m in months]
            ax.bar(labels, values, bottom=bottom, label=name, color=colour, width=0.7)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_title("Machine-months by reboot outcome")
        ax.set_xlabel("Month (Patch Tuesday release)")
        ax.set_ylabel("Machine-months (count)")
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _to_svg(fig, "Machine-months by reboot outcome per month")


def readiness_funnel_svg(gates: Sequence[Row]) -> Chart:
    """Horizontal bars: machines passing each readiness gate (and every gate before it)."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 3.2), layout="constrained")
        ax = fig.add_subplot()
        labels = [f"{int(g['gate'])}. {g['label']}" for g in gates]
        values = [int(g["machines_passing"]) for g in gates]
        positions = list(range(len(gates)))
        ax.barh(positions, values, color="#1565c0", height=0.7)
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        for y, v in zip(positions, values, strict=True):
            ax.annotate(f"{v:,}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_title("Readiness funnel: machines passing each gate")
        ax.set_xlabel("Machines (count)")
        ax.spines[["top", "right"]].set_visible(False)
        return _to_svg(fig, "Readiness funnel: machines passing each gate")
