"""Revocation travels like any event; a revoked or expired neighbour is refused."""

from __future__ import annotations

import json

import pytest
from conftest import HANDLER, LIAISON
from test_session import Loopback, register_many

from node import cases, enroll, events, log, membership, store
from node.envelope import EnvelopeError
from node.errors import EventRefused, NotAllowed
from node.log import Actor
from node.sync import session

ADMIN = Actor("admin", "admin")


def enroll_under(parent, child):
    with store.write(parent.db):
        code = enroll.new_code(parent)
        answer = enroll.accept_request(parent, enroll.make_request(child, code))
    with store.write(child.db):
        enroll.install(child, answer, code)


@pytest.fixture
def trio(make_node):
    """city > town > village, enrolled for real: membership travels as events."""
    city, town, village = make_node("city", "shi"), make_node("town", "zhen"), make_node(
        "village", "cun")
    enroll_under(city, town)
    enroll_under(town, village)
    return city, town, village


def revoke(node, target, actor=ADMIN):
    with store.write(node.db):
        return membership.revoke(node, actor, target, "设备丢失")


def status(node, target):
    return node.db.conn.execute("SELECT status FROM nodes WHERE node_id = ?",
                                (target,)).fetchone()[0]


def test_a_revoked_child_can_no_longer_sync(trio):
    city, town, village = trio
    register_many(village, 1)
    session.run(village, Loopback(town))
    revoke(town, "cun")
    assert status(town, "cun") == "revoked"
    register_many(village, 1)
    with pytest.raises(EnvelopeError) as info:
        session.run(village, Loopback(town))
    assert info.value.reason == "unknown_sender"
    assert town.db.conn.execute(  # its join (node.joined) and the first case (with its
        # petitioner's keyed digests, repeat.seen), not the second
        "SELECT type FROM events WHERE origin = 'cun' ORDER BY seq").fetchall() == [
        ("node.joined",), ("case.registered",), ("repeat.seen",), ("case.escalated",)]


def test_the_revocation_travels_up_and_is_honoured_there(trio):
    city, town, village = trio
    revoke(town, "cun")
    register_many(town, 1)
    session.run(town, Loopback(city))
    assert status(city, "cun") == "revoked"
    register_many(village, 1)
    with store.write(city.db), pytest.raises(EventRefused, match="revoked"):
        log.receive(city, log.get_event(village.db, "cun:1"))


def test_only_a_node_above_may_revoke(trio):
    city, town, village = trio
    with pytest.raises(NotAllowed):
        revoke(town, "zhen", actor=LIAISON)
    bad = events.sign(village.signer, origin="cun", seq=1, ts="2026-11-23T02:00:00Z",
                      actor="admin", role="admin", type="node.revoked", subject="N-zhen",
                      prev=(), body={"reason": "篡权"})
    with store.write(town.db), pytest.raises(EventRefused, match="only a node above"):
        log.receive(town, bad)
    assert status(town, "zhen") == "active"


def test_rebuild_keeps_revocations(trio):
    city, town, village = trio
    revoke(town, "cun")
    with store.write(town.db):
        log.rebuild(town)
    assert status(town, "cun") == "revoked"


def test_an_expired_neighbour_is_refused(trio, clock):
    city, town, village = trio
    cert = {"not_before": "2020-01-01", "not_after": "2026-11-30"}
    with store.write(town.db):
        town.db.conn.execute("UPDATE nodes SET cert = ? WHERE node_id = 'cun'",
                             (json.dumps(cert),))
    register_many(village, 1)
    session.run(village, Loopback(town))  # still valid today
    clock.advance(days=8)
    register_many(village, 1)
    with pytest.raises(EnvelopeError) as info:
        session.run(village, Loopback(town))
    assert info.value.reason == "unknown_sender"


def test_the_city_learns_every_node_below_by_enrollment_events(trio):
    city, town, village = trio
    session.run(town, Loopback(city))
    row = city.db.conn.execute("SELECT parent_id, tier FROM nodes WHERE node_id = 'cun'"
                               ).fetchone()
    assert row == ("zhen", "village")
    cid = register_many(village, 1)[0]  # escalated to the town, which holds it
    session.run(village, Loopback(town))
    session.run(town, Loopback(city))
    assert city.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 0
    with store.write(town.db):  # escalated again: the city gets it with its history
        cases.act(town, HANDLER, cid, "escalate", {"to": "shi", "reason": "需市局协调"})
    session.run(town, Loopback(city))
    assert cases.get(city, cid)["holder"] == "shi"
    assert city.db.conn.execute("SELECT count(*) FROM events WHERE subject = ?",
                                (cid,)).fetchone()[0] == 3


def test_a_forged_enrollment_is_refused(trio, make_node):
    city, town, village = trio
    stranger = make_node("village", "fake")
    cert = json.loads((village.dir / "keys" / "node.cert").read_text("utf-8"))
    forged = {**cert, "node": "fake", "sign_pub": cert["sign_pub"]}  # signature no longer fits
    ev = events.sign(town.signer, origin="zhen", seq=999, ts="2026-11-23T02:00:00Z",
                     actor="system", role="admin", type="node.enrolled", subject="N-fake",
                     prev=(), body={"certificate": forged})
    with store.write(city.db), pytest.raises(EventRefused, match="not its parent"):
        log.receive(city, ev)
    assert city.db.conn.execute("SELECT 1 FROM nodes WHERE node_id = 'fake'").fetchone() is None
    assert stranger.id == "fake"


def test_a_village_learns_the_nodes_above_its_parent_from_the_chain(trio):
    """A referral from the city reaches the village signed by the city: the village must
    know the city's key and where it sits, and it learns both at enrollment."""
    city, town, village = trio
    rows = dict(village.db.conn.execute("SELECT node_id, parent_id FROM nodes").fetchall())
    assert rows == {"cun": "zhen", "zhen": "shi", "shi": None}
    city_key = village.db.conn.execute("SELECT sign_pub FROM nodes WHERE node_id = 'shi'"
                                       ).fetchone()[0]
    assert bytes(city_key) == city.signer.public_key().public_bytes_raw()
