"""Work on worker threads, each in a copy of the caller's context (its progress listener, a Prefect flow run's log
handler): independent queries, for every source (extract uses it; arg shares one quota), and one piece of work
beside the caller's (render writes the exports while it lays out the PDF)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from hotpatch_audit.catalog import QuerySpec

R = TypeVar("R")


def run_concurrently(specs: Sequence[QuerySpec], work: Callable[[QuerySpec], R], *,
                     max_workers: int = 4) -> dict[str, R]:
    """Apply `work` to each spec on up to `max_workers` threads; results by query name, in spec order.

    `work` should catch what it wants recorded (extract records HotpatchAuditError per query); anything
    else it raises is re-raised here after every query has finished.
    """
    if max_workers <= 1 or len(specs) <= 1:
        return {spec.name: work(spec) for spec in specs}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="query") as pool:
        # Each thread runs in a copy of the caller's context, so whatever the caller's context carries (a
        # Prefect flow run's, for its log handler) reaches the log lines written on the threads.
        futures = [(spec.name, pool.submit(contextvars.copy_context().run, work, spec)) for spec in specs]
        errors = [f.exception() for _, f in futures]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return {name: f.result() for name, f in futures}


@contextmanager
def in_background(work: Callable[[], R], name: str) -> Iterator[Future[R]]:
    """Run `work` on a worker thread while the block runs; the block gets its future (result() waits for it and
    raises what it raised). Leaving the block, error or not, waits for the work to finish."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        yield pool.submit(contextvars.copy_context().run, work)
