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

from hotpatch_audit.finding_text import translate_phrase  # noqa: E402
from hotpatch_audit.i18n import N_, _  # noqa: E402

Row = Mapping[str, Any]

# Outcome colours are fixed so that a colour means the same thing in every report.
OUTCOME_SERIES: tuple[tuple[str, str, str], ...] = (
    ("avoided", N_("Avoided (no reboot)"), "#2e7d32"),
    ("no_install", N_("No install"), "#9e9e9e"),
    ("expected_reboot", N_("Expected reboot"), "#1565c0"),
    ("unexpected_reboot", N_("Unexpected reboot"), "#c62828"),
    ("avoidable_reboot", N_("Avoidable reboot"), "#ef6c00"),
    ("unknown", N_("Unknown"), "#d7ccc8"),
)

_RC: dict[Any, Any] = {
    "svg.hashsalt": "hotpatch-audit",  # stable element ids: same data, same SVG
    "svg.fonttype": "path",  # glyphs as paths: no font or text node depends on the viewer
    # Noto Sans CJK JP is the fallback for the glyphs DejaVu lacks (Japanese reports, hotpatch_audit.i18n)
    "font.family": ["DejaVu Sans", "Noto Sans CJK JP"],
    "font.size": 8,
    "text.parse_math": False,  # owner names are untrusted text: '$' is a dollar sign, never mathtext
}
_STRIP = (
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
    re.compile(r"<!-- .*? -->\s*", re.S),  # matplotlib repeats each text as a comment; glyphs are paths
)
LABEL_CHARS = 32  # owner names longer than this are cut with '…' on a chart axis (the table has them whole)
SEVERITY_SERIES: tuple[tuple[str, str, str], ...] = (
    ("critical", N_("Critical"), "#b71c1c"),
    ("high", N_("High"), "#ef6c00"),
    ("medium", N_("Medium"), "#f9a825"),
    ("low", N_("Low"), "#1565c0"),
    ("info", N_("Info"), "#9e9e9e"),
)
REBOOT_SERIES = ("avoided", "expected_reboot", "unexpected_reboot", "avoidable_reboot")


@dataclass(frozen=True)
class Chart:
    """One chart: inline <svg> for the HTML page, a data: URI of the same SVG for WeasyPrint."""

    svg: Markup
    data_uri: str
    label: str


def _ensure_cjk_font() -> None:
    """Make Noto Sans CJK JP (fonts-noto-cjk) known to matplotlib even when its font cache predates the font."""
    from matplotlib import font_manager

    if any(f.name == "Noto Sans CJK JP" for f in font_manager.fontManager.ttflist):
        return
    for path in font_manager.findSystemFonts():
        if "NotoSansCJK" in path:
            font_manager.fontManager.addfont(path)


def _to_svg(fig: Figure, label: str) -> Chart:
    """Serialise a figure to an inline <svg> element (no XML prolog, no metadata, no external refs).

    label is the chart's title: the figure does not draw it; the report prints it as text in the chart's
    caption (searchable, selectable, in the PDF's text) and it is the SVG's aria-label."""
    _ensure_cjk_font()
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    for pattern in _STRIP:
        svg = pattern.sub("", svg)
    data_uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    svg = svg.replace("<svg ", f'<svg class="chart" role="img" aria-label="{escape(label)}" ', 1)
    # The SVG is produced here from numbers, fixed labels and (findings by owner) owner names drawn as glyph
    # paths: no text node and no comment carries them, and mathtext is off.
    return Chart(svg=Markup(svg), data_uri=data_uri, label=label)  # noqa: S704


def reboots_avoided_taken_svg(months: Sequence[Row]) -> Chart:
    """Stacked bars per month of the period: reboots avoided (avoided machine-months) and reboots taken
    (expected, unexpected, avoidable). No-install and unknown machine-months are in the table only."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 3.0), layout="constrained")
        ax = fig.add_subplot()
        labels = [str(m["month"]) for m in months]
        bottom = [0] * len(months)
        for key, name, colour in OUTCOME_SERIES:
            if key not in REBOOT_SERIES:
                continue
            values = [int(m[key]) for m in months]
            ax.bar(labels, values, bottom=bottom, label=_(name), color=colour, width=0.7)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_xlabel(_("Month (Patch Tuesday release)"))
        ax.set_ylabel(_("Machine-months (count)"))
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _to_svg(fig, _("Reboots avoided and taken per month"))


def _count_bars(labels: Sequence[str], values: Sequence[int], *, colour: str, height: float, title: str,
                ylabel: str | None = None) -> Chart:
    """Horizontal bars of machine counts, first row on top, each bar annotated with its number."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, height), layout="constrained")
        ax = fig.add_subplot()
        positions = list(range(len(values)))
        ax.barh(positions, values, color=colour, height=0.7)
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        for y, v in zip(positions, values, strict=True):
            ax.annotate(f"{v:,}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_xlabel(_("Machines (count)"))
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.spines[["top", "right"]].set_visible(False)
        return _to_svg(fig, title)


def readiness_funnel_svg(gates: Sequence[Row]) -> Chart:
    """Horizontal bars: machines passing each readiness gate (and every gate before it)."""
    return _count_bars(
        [f"{int(g['gate'])}. {translate_phrase(g['label'])}" for g in gates],
        [int(g["machines_passing"]) for g in gates],
        colour="#1565c0", height=3.2, title=_("Readiness funnel: machines passing each gate"),
    )


def _short(text: object) -> str:
    """An axis label of untrusted text, cut to LABEL_CHARS."""
    value = str(text)
    return value if len(value) <= LABEL_CHARS else value[: LABEL_CHARS - 1] + "…"


def _percent_axis(ax: Any) -> None:
    ax.set_ylim(0, 105)
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0f} %")


def reboot_free_rate_svg(months: Sequence[Row]) -> Chart:
    """Line per month of the period: the reboot-free month rate (hotpatch months; baseline months have no rate,
    so the line skips them) and the coverage the rate rests on (known / applicable machine-months)."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 2.8), layout="constrained")
        ax = fig.add_subplot()
        labels = [str(m["month"]) for m in months]
        positions = list(range(len(months)))
        rated = [
            (x, float(m["reboot_free_rate"]) * 100)
            for x, m in zip(positions, months, strict=True)
            if m["reboot_free_rate"] is not None
        ]
        covered = [
            (x, float(m["coverage_rate"]) * 100)
            for x, m in zip(positions, months, strict=True)
            if m["coverage_rate"] is not None
        ]
        if rated:
            xs, ys = zip(*rated, strict=True)
            ax.plot(xs, ys, marker="o", color="#2e7d32", label=_("Reboot-free month rate"))
            for x, y in rated:
                ax.annotate(f"{y:.1f}", (x, y), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=6)
        if covered:
            xs, ys = zip(*covered, strict=True)
            ax.plot(xs, ys, linestyle="--", marker=".", color="#757575", label=_("Coverage"))
        ax.set_xticks(positions, labels)
        _percent_axis(ax)
        ax.set_xlabel(_("Month (Patch Tuesday release)"))
        ax.set_ylabel(_("Rate (%)"))
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _to_svg(fig, _("Reboot-free month rate by month"))


def blockers_svg(blockers: Sequence[Row]) -> Chart:
    """Horizontal bars: machines stopped by each reason code (first failing readiness gate), in gate order."""
    return _count_bars(
        [f"{int(b['gate'])}. {b['gate_code']}" for b in blockers],
        [int(b["machines"]) for b in blockers],
        colour="#c62828", height=0.6 + 0.22 * max(len(blockers), 3), title=_("Blockers by reason code"),
        ylabel=_("Gate and reason code"),
    )


def findings_by_owner_svg(owners: Sequence[Row]) -> Chart:
    """Stacked horizontal bars: open findings (fail + warn) by severity for each owner, most first."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 0.8 + 0.22 * max(len(owners), 3)), layout="constrained")
        ax = fig.add_subplot()
        positions = list(range(len(owners)))
        left = [0] * len(owners)
        for key, name, colour in SEVERITY_SERIES:
            values = [int(o[key]) for o in owners]
            ax.barh(positions, values, left=left, label=_(name), color=colour, height=0.7)
            left = [a + v for a, v in zip(left, values, strict=True)]
        ax.set_yticks(positions, [_short(o["owner"]) for o in owners])
        ax.invert_yaxis()
        ax.set_xlabel(_("Open findings (count)"))
        ax.set_ylabel(_("Owner"))
        ax.legend(fontsize=7, loc="lower right", frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _to_svg(fig, _("Open findings by owner and severity"))


def enrollment_trend_svg(trend: Sequence[Row]) -> Chart:
    """Lines per month over the scope's monthly runs: machines eligible for hotpatch and machines enrolled."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 2.8), layout="constrained")
        ax = fig.add_subplot()
        labels = [str(t["month"]) for t in trend]
        positions = list(range(len(trend)))
        eligible = [int(t["eligible_machines"]) for t in trend]
        enrolled = [int(t["enrolled_machines"]) for t in trend]
        ax.plot(positions, eligible, marker="o", color="#1565c0", label=_("Eligible"))
        ax.plot(positions, enrolled, marker="o", color="#2e7d32", label=_("Enrolled"))
        ax.fill_between(positions, enrolled, eligible, color="#1565c0", alpha=0.08, linewidth=0)
        ax.set_xticks(positions, labels)
        ax.set_ylim(0, max([*eligible, *enrolled, 1]) * 1.1)
        ax.set_xlabel(_("Month (monthly run)"))
        ax.set_ylabel(_("Machines (count)"))
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _to_svg(fig, _("Enrolled versus eligible machines by month"))
