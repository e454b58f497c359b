"""Credentials for Resource Graph, and message text that never shows one.

DefaultAzureCredential (azure-identity) is the default: ArgSource creates it on first use, with the cloud's
authority (options.AUTHORITIES). A static bearer token (emulators, recording proxies) is StaticTokenCredential;
TenantCredential asks one credential for tokens of another tenant (multi-tenant runs). Tokens are never
printed: `redact` takes them, and anything shaped like one, out of every error text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from hotpatch_audit.errors import ConfigError

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# What DefaultAzureCredential tries, in order (named in the error when it finds nothing or its token is refused).
DAC_CHAIN = ("EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential, "
             "SharedTokenCacheCredential, AzureCliCredential, AzurePowerShellCredential, "
             "AzureDeveloperCliCredential")


def clean_token(token: str) -> str:
    """A static bearer token without the whitespace around it (`$(cat token.txt)`, secret files end in a newline).

    ConfigError when nothing is left, or when whitespace, control or non-ASCII characters remain inside (a
    bearer token is printable ASCII); the message never shows the token.
    """
    token = token.strip()
    if not token:
        raise ConfigError("the static token (setting arg_token / HOTPATCH_AUDIT_ARG_TOKEN) is empty")
    if not all("!" <= c <= "~" for c in token):
        raise ConfigError("the static token (setting arg_token / HOTPATCH_AUDIT_ARG_TOKEN) contains whitespace, "
                          "control or non-ASCII characters inside it; give the bearer token alone")
    return token


class StaticTokenCredential:
    """A TokenCredential returning a token the user gave (emulators, recording proxies). Never printed."""

    __slots__ = ("_token", "_expires_on")

    def __init__(self, token: str, expires_in: int = 3600 * 24) -> None:
        self._token = clean_token(token)
        self._expires_on = expires_in

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """An AccessToken for any scope, valid for a day from now."""
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + self._expires_on)

    def close(self) -> None:
        """Nothing to close."""

    def __repr__(self) -> str:
        return "StaticTokenCredential(token=***)"


class TenantCredential:
    """Asks one credential for tokens of one tenant (multi-tenant runs)."""

    def __init__(self, inner: Any, tenant_id: str) -> None:
        self._inner = inner
        self._tenant_id = tenant_id

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        kwargs.setdefault("tenant_id", self._tenant_id)
        return self._inner.get_token(*scopes, **kwargs)

    def close(self) -> None:
        """The shared inner credential is closed by its owner."""


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove given secrets and anything shaped like a JWT or bearer token from a message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _JWT_RE.sub("***", text)
    return re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)


def short_text(exc: BaseException, limit: int = 600) -> str:
    """An exception's message on one line, cut at `limit` characters (redact it before it is shown)."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())
    return text[:limit] + ("…" if len(text) > limit else "")
