"""Report translations: the one home of message catalogs, the gettext functions and locale formatting.

English is the source language: every user-visible string of the reports is written in English and
wrapped for translation (`{{ _("...") }}` / `{% trans %}` in templates, `_()` / `N_()` in Python).
The Japanese catalog is `locale/ja/LC_MESSAGES/messages.po` beside this module; it is compiled in
memory when first used (Babel `read_po` + `write_mo` into `gettext.GNUTranslations`), so nothing
generated is tracked. Untranslated and fuzzy entries fall back to English; a test keeps the catalog
complete. Maintainer commands are in docs/i18n.md.

Python code that builds report text (charts.py, finding_text.py) calls `_()`, which translates into the
language of the report being rendered: `render_reports` sets it with `use_language(settings.language)`.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LANGUAGES: tuple[str, ...] = ("en", "ja")
SOURCE_LANGUAGE = "en"
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).parent / "locale"
BABEL_LOCALES = {"en": "en", "ja": "ja_JP"}
# Times as the reader expects them: ISO-like in English reports (as before), Japanese in ja reports.
DATETIME_PATTERNS = {"en": "yyyy-MM-dd HH:mm", "ja": "y年M月d日 H:mm"}
DATE_PATTERNS = {"en": "yyyy-MM-dd", "ja": "y年M月d日"}

_language: ContextVar[str] = ContextVar("hotpatch_audit_report_language", default=SOURCE_LANGUAGE)


def po_path(lang: str) -> Path:
    """The tracked catalog of a language."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_catalog(lang: str) -> Catalog:
    """The Babel catalog of a language, read from its .po file."""
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=BABEL_LOCALES.get(lang, lang), domain=DOMAIN)


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> _gettext.NullTranslations:
    """gettext translations for a report language (English: the identity), compiled in memory from the .po."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown report language {lang!r} (one of {', '.join(LANGUAGES)})")
    if lang == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    buf = io.BytesIO()
    write_mo(buf, load_catalog(lang), use_fuzzy=False)  # untranslated and fuzzy entries are left out
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def current_language() -> str:
    """The language `_()` translates into (set by use_language; English by default)."""
    return _language.get()


@contextmanager
def use_language(lang: str) -> Iterator[None]:
    """Translate `_()` calls into lang inside the block (one report render)."""
    translations(lang)  # fail early on an unknown language or a broken catalog
    token = _language.set(lang)
    try:
        yield
    finally:
        _language.reset(token)


def gettext(message: str) -> str:
    """Translate message into the current report language."""
    return translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message with a count into the current report language."""
    return translations(_language.get()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the conventional name of the extraction-only marker
    """Mark a message for extraction without translating it here (translated where it is shown)."""
    return message


# --- locale formatting ---------------------------------------------------------------------------


def _in_zone(value: datetime, zone: ZoneInfo) -> datetime:
    """A ledger time (UTC, naive or aware) in zone."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)


def format_time(value: datetime | None, zone: ZoneInfo, lang: str) -> str:
    """A ledger time (UTC, naive or aware) shown in zone, in the language's format, with zone name and offset."""
    if value is None:
        return "—"
    local = _in_zone(value, zone)
    offset = f"{local:%z}"
    text = format_datetime(local, DATETIME_PATTERNS[lang], tzinfo=zone, locale=BABEL_LOCALES[lang])
    return f"{text} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def format_day(value: datetime | None, zone: ZoneInfo) -> str:
    """A ledger time's calendar day in zone, as YYYY-MM-DD (— when missing)."""
    if value is None:
        return "—"
    return _in_zone(value, zone).date().isoformat()


def format_number(value: float | None, lang: str) -> str:
    """A count or amount with the language's grouping (— when missing)."""
    if value is None:
        return "—"
    if lang == SOURCE_LANGUAGE:
        return f"{value:,}"
    return str(format_decimal(value, locale=BABEL_LOCALES[lang]))


def format_percent(value: float | None, lang: str) -> str:
    """A rate (0..1) as a percentage with one decimal ('n/a' translated when missing)."""
    if value is None:
        return translations(lang).gettext("n/a")
    pct = float(value) * 100
    if lang == SOURCE_LANGUAGE:
        return f"{pct:.1f} %"
    return f"{format_decimal(round(pct, 1), format='0.0', locale=BABEL_LOCALES[lang])}%"


def format_money(value: float | None, currency: str, lang: str, cents: bool = False) -> str:
    """An amount of money in whole units of currency (ISO 4217), or with two decimals (cents), in the language's
    format, thousands grouped (— when missing)."""
    if value is None:
        return "—"
    amount, pattern = (float(value), "¤#,##0.00") if cents else (round(float(value)), "¤#,##0")
    return str(format_currency(amount, currency, format=pattern, locale=BABEL_LOCALES[lang], currency_digits=False))
