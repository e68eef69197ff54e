"""The parent's side of down-in-seconds and many children: /sync/wait and queued turns."""

from __future__ import annotations

import threading

import pytest
from conftest import HANDLER, LIAISON
from test_session import Loopback

from node import store, warnings
from node.sync import http, inbox, session

WARNING = {"subject": "征地补偿", "place": "村委会", "expected_size": 30}


@pytest.fixture
def linked(make_node, clock):
    """A town served by its Flask app (test client), and its village, synced."""
    from node import create_app
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    with store.write(village.db):
        raised = warnings.raise_warning(village, LIAISON, WARNING).subject
    session.run(village, Loopback(town))
    return create_app(town.dir, clock=clock).test_client(), town, village, raised


def _wait(client, village, seconds=0):
    return client.post("/sync/wait", data=inbox.current_ack(village, "zhen"),
                       headers={"Siji-Wait": str(seconds)})


def test_a_child_owed_nothing_is_told_so_when_its_time_is_up(linked):
    client, town, village, _ = linked
    assert _wait(client, village).status_code == 204


def test_a_child_is_answered_as_soon_as_the_parent_writes_for_it(linked):
    client, town, village, warning_id = linked
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(_wait(client, village, 30)))
    waiting.start()
    with store.write(town.db):
        warnings.act(town, HANDLER, warning_id, "acknowledge", {})
    waiting.join(30)
    assert not waiting.is_alive() and answers[0].status_code == 200
    session.run(village, Loopback(town))  # took it: nothing more is owed
    assert _wait(client, village).status_code == 204


def test_a_wait_proves_its_sender_or_is_refused(linked, make_node):
    client, town, village, _ = linked
    stranger = make_node("village", "cun2")
    answer = client.post("/sync/wait", data=inbox.current_ack(stranger, "zhen"),
                         headers={"Siji-Wait": "30"})
    assert answer.status_code in (401, 403, 422) and "error" in answer.get_json()
    assert client.post("/sync/wait", data=b"\x00\x00\x00\x05hello").status_code == 422
    assert client.post("/sync/wait", data=b"x" * (65 * 1024)).status_code == 413


def test_too_many_waiting_get_429_and_a_busy_parent_queues_a_sync_briefly(linked,
                                                                          monkeypatch):
    client, town, village, _ = linked
    for _ in range(http.WAITERS):
        http._waiters.acquire()
    try:
        assert _wait(client, village).status_code == 429
    finally:
        for _ in range(http.WAITERS):
            http._waiters.release()
    for _ in range(http.CONCURRENT):  # every turn taken
        http._slots.acquire()
    answers = []
    try:
        pulling = threading.Thread(target=lambda: answers.append(client.post(
            "/sync/pull", data=inbox.current_ack(village, "zhen"))))
        pulling.start()
        pulling.join(0.5)
        assert pulling.is_alive()  # queued for a turn, not turned away
        http._slots.release()       # a turn comes free
        pulling.join(30)
        assert answers[0].status_code == 204
        http._slots.acquire()       # taken again
        monkeypatch.setattr(http, "QUEUE_SECONDS", 0.01)
        assert client.post("/sync/pull", data=inbox.current_ack(village, "zhen")
                           ).status_code == 429  # none comes free in time
    finally:
        for _ in range(http.CONCURRENT):
            http._slots.release()


def test_a_database_kept_busy_by_another_process_answers_429_not_500(linked, monkeypatch):
    import sqlite3
    client, town, village, _ = linked
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 20)
    other = sqlite3.connect(town.dir / "siji.db")  # another process holds the write lock
    other.execute("BEGIN IMMEDIATE")
    try:
        answer = client.post("/sync/pull", data=inbox.current_ack(village, "zhen"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert answer.status_code == 429 and answer.headers["Retry-After"]
    assert answer.get_json()["error"]["code"] == "busy"
    assert client.post("/sync/pull", data=inbox.current_ack(village, "zhen")
                       ).status_code in (200, 204)  # and served once it is free
