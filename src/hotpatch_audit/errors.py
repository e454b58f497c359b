"""The error hierarchy: every failure the user can act on has one type and a clear message."""

from __future__ import annotations


class HotpatchAuditError(Exception):
    """Base class of the project's errors."""


class ConfigError(HotpatchAuditError):
    """A setting, scope or parameter is wrong (usage error)."""


class QueryError(HotpatchAuditError):
    """A KQL file could not be read, validated or executed by a source."""

    def __init__(self, query_name: str, message: str) -> None:
        super().__init__(f"query {query_name}: {message}")
        self.query_name = query_name


class SourceError(HotpatchAuditError):
    """A data source (Azure, snapshot, demo) failed; keeps the cause as __cause__."""


class AuthError(SourceError):
    """Resource Graph refused the credential or the identity's rights (401/403, no usable credential): the
    message names the credential chain. A retry cannot fix it, so flows fail fast instead of retrying."""


class SnapshotError(HotpatchAuditError):
    """A snapshot directory is malformed; the message names the file (and row)."""


class LedgerError(HotpatchAuditError):
    """The DuckDB ledger could not be opened, locked or written."""


class LedgerBusyError(LedgerError):
    """Another process holds the ledger longer than the lock timeout allows."""


class RenderError(HotpatchAuditError):
    """A report could not be rendered."""


class SkipTokenExpiredError(SourceError):
    """Resource Graph refused a query's skip token (400 InvalidSkipToken / expired): the query must be read
    again from its first page. Raised by a source's pages(); extract discards the query's pages and restarts it
    (a bounded number of times)."""


class RunInterrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an Exception on purpose
    """The process was asked to stop (SIGINT / Ctrl-C, SIGTERM) while a run was in progress; names the signal."""
