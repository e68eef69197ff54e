"""Two lanes of server threads, so that sync never waits behind the pages (issue 19).

waitress serves every request from one pool of threads fed by one queue: ten people
loading the city's heaviest pages fill all of its threads, and a village's urgent bundle
waits in the queue behind them. A limit inside the app (a semaphore around page renders)
cannot help: a page request waiting for it would still hold a server thread. So the
choice is made where waitress hands a whole request to a thread (its task dispatcher):
requests to ``/sync/`` (bundles, acknowledgements, enrollment, attachment bytes between
nodes) go to threads of their own, which no page can ever take; a page that finds every
page thread busy waits in the pages' queue, holding no thread. waitress reads a request's
body in its I/O thread before the request is handed over, so a slow upload holds no
thread of either lane.

A third lane holds the children's long-polls (``/sync/wait``, node/sync/http.py): each
waits there up to a minute for something owed, so they have threads of their own, as
many as the endpoint lets wait at once, and never take a thread from a bundle.

What the lanes do not divide is the interpreter: pages and sync still share the GIL and
the database, which is why the pages' lane is narrow (PAGE_THREADS). The sync lane is as
wide as the sync endpoints' own limit of requests at once (node/sync/http.py answers more
with 429); a bundle's apply waits for no page's transaction (pages only read, and write
briefly), and SQLite's WAL lets it write while pages read.
"""

from __future__ import annotations

import logging

from waitress import create_server
from waitress.task import ThreadedTaskDispatcher

from node.sync import http as sync_http

# Pages, the API and everything else. A page is Python under one interpreter lock: past a
# few threads more add no throughput, but each busy one is another the sync thread waits
# behind for that lock. Measured at the city under ten clients (docs/benchmarks.md, issue
# 19): an urgent sync took p95 787-886 ms with 8 page threads, 335-350 ms with 4, and the
# pages themselves were no slower.
PAGE_THREADS = 4
SYNC_THREADS = sync_http.CONCURRENT  # /sync/*: as many as node/sync/http.py serves at once
WAIT_THREADS = sync_http.WAITERS     # /sync/wait: the long-polls it lets wait at once
SYNC_PREFIX = "/sync/"
WAIT_PATH = "/sync/wait"


def path_of(task) -> str:
    """The path of the request a waitress channel is about to serve ("" if none)."""
    requests = getattr(task, "requests", None)
    if not requests:
        return ""
    return getattr(requests[0], "path", None) or ""


class Lanes:
    """A waitress task dispatcher with one pool of threads for ``/sync/`` and one for the
    rest. A channel (a connection) is handed to a lane one request at a time, by the path
    of its next request."""

    def __init__(self, page_threads: int = PAGE_THREADS, sync_threads: int = SYNC_THREADS,
                 wait_threads: int = WAIT_THREADS):
        self.pages, self.sync = ThreadedTaskDispatcher(), ThreadedTaskDispatcher()
        self.waits = ThreadedTaskDispatcher()
        self.pages.set_thread_count(page_threads)
        self.sync.set_thread_count(sync_threads)
        self.waits.set_thread_count(wait_threads)

    def lane(self, task) -> ThreadedTaskDispatcher:
        path = path_of(task)
        if path == WAIT_PATH:
            return self.waits
        return self.sync if path.startswith(SYNC_PREFIX) else self.pages

    def add_task(self, task) -> None:
        self.lane(task).add_task(task)

    def set_thread_count(self, count: int) -> None:
        """(waitress's interface) The pages' lane."""
        self.pages.set_thread_count(count)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        pages = self.pages.shutdown(cancel_pending, timeout)
        sync = self.sync.shutdown(cancel_pending, timeout)
        waits = self.waits.shutdown(cancel_pending, timeout)
        return pages and sync and waits


def server(app, host: str, port: int, page_threads: int = PAGE_THREADS,
           sync_threads: int = SYNC_THREADS, **adjustments):
    """A waitress server of ``app`` with the two lanes; ``.run()`` serves until stopped.

    waitress takes a dispatcher of its own only through ``create_server``'s
    ``_dispatcher`` (which it calls a test shim); pyproject.toml keeps waitress at 3.x for
    it, and tests/test_lanes.py fails if the hook stops serving the lanes."""
    return create_server(app, host=host, port=port, threads=page_threads, ident="siji",
                         _dispatcher=Lanes(page_threads, sync_threads), **adjustments)


def serve(app, host: str, port: int) -> None:
    """What ``waitress.serve`` does (logging to stderr, the address said), with the lanes."""
    logging.basicConfig()  # (does nothing if logging is set up already)
    running = server(app, host, port)
    running.print_listen("Serving on http://{}:{}")
    running.run()
