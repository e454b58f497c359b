"""What a run is doing, step by step, for whoever listens: the CLI's progress display (on a terminal) or its one
line per step (off one), and the log. Stages call step() as they finish a piece of work (a query extracted or
loaded, a table judged, a report file written); the listener is set for the current context (threads started
through hotpatch_audit.concurrency inherit it), so no stage passes callbacks around.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar

log = logging.getLogger(__name__)

# (stage, what, count, detail): detail steps (a report view read) are for a live display, not for one line each
Listener = Callable[[str, str, "int | None", bool], None]
_listener: ContextVar[Listener | None] = ContextVar("hotpatch_audit_progress", default=None)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the steps of the work done inside the block (in this context) to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def step(stage: str, what: str, count: int | None = None, *, detail: bool = False) -> None:
    """One piece of work done: `stage` (extract, load, judge, render), `what` (a query, a table, a file), and
    a count (rows) when there is one."""
    if not detail:
        log.info("%s %s%s", stage, what, "" if count is None else f": {count:,}")
    listener = _listener.get()
    if listener is not None:
        listener(stage, what, count, detail)
