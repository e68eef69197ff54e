"""Sync never waits behind the pages (issue 19): /sync/* has server threads no page takes."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import requests

from node import create_app
from node.web import lanes


def channel(path: str):
    """What waitress hands its dispatcher: a connection with its next request parsed."""
    return SimpleNamespace(requests=[SimpleNamespace(path=path)])


def test_each_request_goes_to_its_lane_by_path():
    two = lanes.Lanes(page_threads=1, sync_threads=1)
    try:
        for path in ("/sync/push", "/sync/pull", "/sync/enroll", "/sync/blobs/x"):
            assert two.lane(channel(path)) is two.sync
        for path in ("/", "/city", "/api/cases", "/syncing", "/sync", "/healthz"):
            assert two.lane(channel(path)) is two.pages
        assert two.lane(SimpleNamespace()) is two.pages  # nothing parsed: a page's lane
        assert two.lane(SimpleNamespace(requests=[])) is two.pages
    finally:
        two.shutdown()


def test_a_bundle_is_answered_while_every_page_thread_is_busy(town):
    """More pages in flight than page threads (each held by a test hook until released):
    a push to /sync/ is still taken and answered by the sync endpoint, and the pages all
    finish once released."""
    app = create_app(town.dir)
    release, entered = threading.Event(), threading.Semaphore(0)
    inner = app.wsgi_app

    def slowed(environ, start_response):  # the test hook: every page waits for release
        if not environ["PATH_INFO"].startswith(lanes.SYNC_PREFIX):
            entered.release()
            release.wait(120)
        return inner(environ, start_response)

    app.wsgi_app = slowed
    server = lanes.server(app, "127.0.0.1", 0, page_threads=2, sync_threads=1)
    url = f"http://127.0.0.1:{server.effective_port}"

    def run():
        with contextlib.suppress(OSError):  # its socket closed by the test, under the loop
            server.run()

    threading.Thread(target=run, daemon=True).start()
    pool = ThreadPoolExecutor(6)
    try:
        pages = [pool.submit(requests.get, f"{url}/healthz", timeout=120) for _ in range(5)]
        for _ in range(2):  # both page threads hold a page; three more pages queue
            assert entered.acquire(timeout=60)
        answer = requests.post(f"{url}/sync/push", data=b"not a bundle", timeout=60)
        # refused by the sync endpoint itself: it was taken and served
        assert answer.json()["error"]["code"] == "bundle_refused", answer.text
        assert not any(p.done() for p in pages)  # every page still waits
        release.set()
        assert [p.result().status_code for p in pages] == [200] * 5
    finally:
        release.set()
        pool.shutdown(wait=False)
        server.close()
