"""Finding reasons and remediations in the report language (used only for non-English reports).

The audit views name each reason and remediation by a message key (`reason_key`, `remediation_key`) and
give the named values it quotes (`params`); the English template of each key lives in its audit's
metadata file (sql/audit/*.toml, read by hotpatch_audit.audit_meta), and the English text in the ledger
was rendered once from it (audit.message). For another language the template is translated through the
catalog (the template is the msgid) and filled with the same values: nothing parses English sentences.

A value that is itself a message (a fragment such as the KB with its calendar note) names its key in
`<name>.key` and is rendered the same way. Other values are translated when they are a known phrase
(PHRASES: calendar notes, causes from data/release_calendar.csv, fallbacks like 'the monthly update'),
except names, ids, dates and numbers (LITERAL_SLOTS). Findings judged before messages had keys
(reason_key null) keep their English text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from hotpatch_audit import audit_meta
from hotpatch_audit.i18n import N_, gettext

# Phrases: values that fill a message's placeholders, and labels and change details that come from report
# SQL. Known text is translated, anything else (KB numbers, months, Azure values) is kept as it is.
PHRASES: tuple[str, ...] = (
    # fallbacks inside reasons and remediations
    N_("hotpatch"),
    N_("baseline"),
    N_("unplanned baseline"),
    N_("the monthly update"),
    N_("the month's hotpatch"),
    N_("the cumulative update"),
    N_("none yet"),
    N_("a hotpatch"),
    N_("no non-hotpatch KB recorded"),
    N_("see evidence"),
    N_("none"),
    N_("%(kbs)s; off track since %(month)s (%(cause)s)"),
    # calendar notes (sql/audit/10_machine_months.sql)
    N_("calendar rule, not verified"),
    N_("calendar row without KB, not verified"),
    N_("calendar row, not verified"),
    N_("verified"),
    N_("%(note)s; recognised by title"),
    # causes quoted from data/release_calendar.csv (a test checks every cause there has a translation)
    N_("the October 2025 out-of-band update KB5070881, which Microsoft mis-offered to some hotpatch-enrolled machines"),
    N_("the October 2025 Arc hotpatch licence expiry (Microsoft feature-licensing issue after KB5066835)"),
    # month-over-month change details (sql/audit/96_finding_changes.sql)
    N_("open in both runs"),
    N_("open again; first open %(date)s, not open in the previous run"),
    N_("first time open in this scope"),
    N_("waived in this run"),
    N_("passes in this run"),
    N_("status unknown in this run (missing or stale data)"),
    N_("machine no longer in this run's scope"),
    N_("no finding in this run, but its data has gaps: %(issues)s"),
    N_("month %(month)s left the reporting period (starts %(start)s)"),
    N_("no longer found, machine in scope with complete data"),
    N_("closed by %(kb)s installed %(date)s"),
    N_("closed since the previous run"),
    N_("no longer open: a past month's outcome"),
    N_("no longer open: an opportunity, not a finding"),
    # coverage issue labels (sql/report/coverage_issues.sql)
    N_("No patch assessment"),
    N_("Patch assessment older than the stale limit"),
    N_("No guest facts (VBS, update source)"),
    N_("Guest facts older than the limit"),
    N_("No installation data"),
    N_("Hotpatch status unknown"),
    # readiness gate labels (sql/report/readiness_funnel.sql)
    N_("Eligible OS and edition"),
    N_("Build 26100.1742 or later (Arc)"),
    N_("Arc agent connected"),
    N_("UEFI, Secure Boot, Generation 2"),
    N_("VBS enabled"),
    N_("VBS running"),
    N_("Memory integrity (HVCI) configured"),
    N_("VBS verified by guest facts"),
    N_("Hotpatch enrollment"),
    N_("Update source is Windows Update"),
    N_("On the current baseline"),
)

# Placeholders holding names, ids, dates or Azure text: never translated.
LITERAL_SLOTS = frozenset(
    {
        "machine",
        "waiver",
        "approver",
        "code",
        "run",
        "date",
        "grace_end",
        "server",
        "path",
        "error",
        "month",
        "count",
        "days",
        "start",
        "closed_month",
        "base_month",
        "update_month",
        "current_month",
        "return_baseline",
        "baseline",
        "months",
        "all_kbs",
        "no_wu",
        "off_track_since",
        "build",
        "lost_run",
        "lost_date",
    }
)

_SLOT = audit_meta.PLACEHOLDER
# What a placeholder can hold in a phrase with placeholders (change details): keeps them unambiguous.
_SLOT_REGEX = {
    "month": r"\d{4}-\d{2}",
    "date": r"\d{4}-\d{2}-\d{2}[0-9:.+ T-]*?",
    "start": r"\d{4}-\d{2}",
}


class _Pattern:
    """A phrase with placeholders compiled to a regular expression (for the change details of
    96_finding_changes.sql and the labels of report views, which are not findings' messages)."""

    def __init__(self, msgid: str) -> None:
        self.msgid = msgid
        parts: list[str] = []
        pos = 0
        for m in _SLOT.finditer(msgid):
            parts.append(re.escape(msgid[pos : m.start()]))
            parts.append(f"(?P<{m.group(1)}>{_SLOT_REGEX.get(m.group(1), '.*?')})")
            pos = m.end()
        parts.append(re.escape(msgid[pos:]))
        self.regex = re.compile("".join(parts), re.S)
        self.literal = len(_SLOT.sub("", msgid))  # more fixed text = more specific: tried first

    def render(self, text: str) -> str | None:
        m = self.regex.fullmatch(text)
        if m is None:
            return None
        values = {k: v if k in LITERAL_SLOTS else translate_phrase(v) for k, v in m.groupdict().items()}
        return gettext(self.msgid) % values


@cache
def _compiled(msgids: tuple[str, ...]) -> tuple[_Pattern, ...]:
    return tuple(sorted((_Pattern(p) for p in msgids if _SLOT.search(p)), key=lambda p: -p.literal))


@cache
def _exact() -> frozenset[str]:
    return frozenset(p for p in PHRASES if not _SLOT.search(p))


def _translate(text: str, candidates: Iterable[_Pattern]) -> str | None:
    for pattern in candidates:
        if (out := pattern.render(text)) is not None:
            return out
    return None


def translate_phrase(text: str) -> str:
    """A value or report label in the report language when it is a known phrase; otherwise unchanged."""
    if not text:
        return text
    if text in _exact():
        return gettext(text)
    found = _translate(text, _compiled(PHRASES))
    return text if found is None else found


def _value(name: str, params: Mapping[str, Any]) -> str:
    if sub := params.get(f"{name}.key"):
        return render_message(str(sub), params) or ""
    value = params.get(name)
    if value is None:
        return ""
    return str(value) if name in LITERAL_SLOTS else translate_phrase(str(value))


def render_message(key: str | None, params: Mapping[str, Any] | None) -> str | None:
    """The message `key` in the current report language, filled from `params` (None for an unknown key)."""
    template = audit_meta.load().messages.get(key or "")
    if template is None:
        return None
    params = params or {}
    return gettext(template) % {name: _value(name, params) for name in audit_meta.placeholders(template)}


def translate_finding(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a finding row (report.action_items, finding_changes_items) with reason, remediation and
    change_detail in the current report language."""
    out = dict(row)
    params = row.get("params") or {}
    if out.get("reason") and (text := render_message(row.get("reason_key"), params)) is not None:
        out["reason"] = text
    if out.get("remediation") and (text := render_message(row.get("remediation_key"), params)) is not None:
        out["remediation"] = text
    if out.get("change_detail"):
        out["change_detail"] = translate_phrase(out["change_detail"])
    return out
