"""What every CLI module shares: the consoles, the guard that maps errors to exit codes, settings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from hotpatch_audit.config import Settings
from hotpatch_audit.errors import ConfigError, HotpatchAuditError

EXIT_USAGE, EXIT_FAILED = 2, 3  # as in hotpatch_audit.pipeline (0 ok, 1 incomplete)

# Messages carry paths and Azure text: never wrapped mid-word (soft_wrap), never highlighted. Callers
# pass untrusted text through rich.markup.escape so it is never read as markup.
err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console()


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Map errors to exit codes with one clear line, never a traceback for expected failures."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            err.print("[red]usage error:[/red]", escape(str(exc)))
            raise typer.Exit(EXIT_USAGE) from None
        except HotpatchAuditError as exc:
            err.print("[red]error:[/red]", escape(str(exc)))
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper


def settings_from(**overrides: Any) -> Settings:
    """Settings with the options a user gave (None and [] mean: not given); a bad value is a usage error."""
    values = {k: v for k, v in overrides.items() if v is not None and v != []}
    try:
        return Settings(**values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
