"""Attacks that must stay refused: a cloned directory, a restored backup, a flood of events
that never become applicable, unverifiable requests, a stranger naming a real child, a
replayed acknowledgement. Real keys, real stores; the in-process transport of test_session
and the Flask app's own test client."""

from __future__ import annotations

import shutil

import pytest
from conftest import LIAISON, case_fields
from test_session import Loopback, register_many

from node import cases, core, events, evidence, log, store, trust
from node.envelope import EnvelopeError
from node.sync import outbox, session
from node.sync import status as sync_status


@pytest.fixture
def pair(make_node):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    return town, village


def copy_of(node, where):
    """Another copy of ``node``'s directory, opened: the same keys, the same numbers."""
    node.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copytree(node.dir, where)
    return core.open_node(where, clock=node.clock)


def rows(node, table):
    return node.db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_cloned_directory_is_caught_and_the_real_node_told_what_to_do(pair, tmp_path):
    town, village = pair
    register_many(village, 1)
    session.run(village, Loopback(town))
    clone = copy_of(village, tmp_path / "clone")
    try:
        register_many(clone, 1)  # the copy writes under the numbers the original will use
        session.run(clone, Loopback(town))
    finally:
        clone.close()
    register_many(village, 1)
    before = {t: rows(town, t) for t in ("events", "cases")}
    with pytest.raises(evidence.Equivocation) as info:
        session.run(village, Loopback(town))
    assert info.value.http_status == 409 and info.value.reason == "equivocation"
    assert "enroll this node again" in info.value.english()
    # nothing of the refused bundle is applied; the evidence and the flag are kept
    assert {t: rows(town, t) for t in ("events", "cases")} == before
    (kind, origin, other), = town.db.conn.execute(
        "SELECT kind, origin, other FROM evidence").fetchall()
    assert (kind, origin) == ("event", "cun") and '"seq":' in other
    flags = {(f["node_id"], f["kind"]) for f in trust.flags(town.db)}
    assert ("cun", "suspect") in flags
    # the village sees the reason on its link, and the town its flag, in status
    assert "equivocation" in outbox.link(village.db, "zhen")["last_error"]
    assert any(f["node_id"] == "cun" for f in sync_status.summary(town)["flags"])


def test_a_node_restored_from_an_old_backup_cannot_reuse_its_numbers(pair, tmp_path):
    town, village = pair
    backup = copy_of(village, tmp_path / "backup")
    backup.close()
    register_many(village, 2)
    session.run(village, Loopback(town))
    village.close()
    restored = core.open_node(tmp_path / "backup", clock=town.clock)  # the old copy, back
    try:
        register_many(restored, 1)
        with pytest.raises(EnvelopeError) as info:
            session.run(restored, Loopback(town))
        assert info.value.reason in ("equivocation", "ahead")
        assert rows(town, "cases") == 2  # the restored copy's case did not get in
    finally:
        restored.close()


def forged_chain(node, n: int) -> list[events.Event]:
    """``n`` validly signed notes, each on a case whose registration never comes."""
    body = cases.RULES["note"].clean({"text": "x" * 200})
    return [events.sign(node.signer, origin=node.id, seq=100_000 + i, ts=node.now(),
                        actor="liu", role="liaison", type="case.note",
                        subject=f"C-{node.id}-2026-{i:04d}", prev=(f"{node.id}:{90_000 + i}",),
                        body=body) for i in range(n)]


def test_events_waiting_for_what_never_comes_are_bounded_per_link(pair):
    town, village = pair
    town.settings.update(INBOX_MAX_EVENTS=50)
    evs = forged_chain(village, 80)
    with store.write(town.db):
        outcomes = log.receive_many(town, evs, source="cun")
    assert outcomes.count("waiting") == 50
    refused = [o for o in outcomes if not isinstance(o, str)]
    assert len(refused) == 30 and "INBOX_MAX_EVENTS" in refused[0].english()
    assert rows(town, "inbox") == 50


@pytest.fixture
def client(make_node, clock):
    from node import create_app
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    app = create_app(town.dir, clock=clock)
    return app.test_client(), town, village


def test_unverifiable_requests_change_no_link_and_leave_only_a_sample(client):
    http, town, village = client
    before = rows(town, "links")
    for i in range(300):
        answer = http.post("/sync/push", data=b"\x00\x00\x00\x05hello" + bytes([i % 256]) * 70,
                           environ_base={"REMOTE_ADDR": f"10.0.{i // 250}.{i % 250}"})
        assert answer.status_code in (422, 413)
    assert rows(town, "links") == before
    assert rows(town, "refusals") <= 10 + 3  # the first ten of the reason, then one in 100
    counted = town.db.conn.execute(
        "SELECT sum(value) FROM counters WHERE name LIKE 'unverified:%'").fetchone()[0]
    assert counted == 300


def test_a_stranger_naming_a_real_child_changes_nothing_of_its_link(client):
    """A bundle under the village's name but signed by another key: refused, and the
    village's link keeps its state (no error, no contact)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from node import envelope
    http, town, village = client
    register_many(village, 1)
    session.run(village, Loopback(town))
    link = outbox.link(town.db, "cun")
    register_many(village, 1)
    first, wires = session.next_run(village, "zhen", 10, None)
    forged = envelope.seal(wires, sender="cun", recipient="zhen", first=first,
                           sender_key=Ed25519PrivateKey.generate(),
                           recipient_key=outbox.encryption_key(village, "zhen"))
    answer = http.post("/sync/push", data=forged)
    assert answer.status_code == 422 and answer.get_json()["error"]["reason"] == "bad_signature"
    assert outbox.link(town.db, "cun") == link


def test_too_many_sync_requests_from_one_address_are_turned_away(make_node, clock):
    from node import create_app
    town = make_node("town", "zhen")
    http = create_app(town.dir, config={"SYNC_REQUESTS_PER_MINUTE": 5},
                      clock=clock).test_client()
    codes = [http.post("/sync/pull", data=b"x").status_code for _ in range(8)]
    assert codes[:5] == [422] * 5 and codes[5:] == [429] * 3


def test_too_many_logins_from_one_address_are_turned_away(make_node, clock):
    from node import create_app
    town = make_node("town", "zhen")
    http = create_app(town.dir, config={"LOGIN_REQUESTS_PER_MINUTE": 3},
                      clock=clock).test_client()
    codes = [http.post("/api/login", json={"username": "wang", "password": "wrong-pw-1"}
                       ).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]


def test_a_case_registered_in_the_village_does_not_reach_a_sibling(make_node):
    """The routing policy and the authority agree: a sibling village never gets, and could
    not act on, a case of the village next door."""
    town = make_node("town", "zhen")
    area = make_node("area", "pian", parent=town)
    village = make_node("village", "cun", parent=area)
    with store.write(village.db):
        cid = cases.register(village, LIAISON, case_fields()).subject
    session.run(village, Loopback(area))
    assert rows(area, "cases") == 0 and cid


# -- time is not whatever the writer says -----------------------------------------------------

def test_an_event_dated_far_ahead_is_held_until_its_time_comes(pair, clock):
    town, village = pair
    clock.advance(days=2)  # the village's clock runs two days ahead of the town's
    with store.write(village.db):
        cid = cases.register(village, LIAISON, case_fields()).subject
        cases.act(village, LIAISON, cid, "escalate", {"to": "zhen", "reason": "需镇协调"})
    clock.advance(days=-2)
    session.run(village, Loopback(town))
    assert rows(town, "cases") == 0
    assert {h["why"] for h in log.held(town)} == {"future"}
    with store.write(town.db):
        assert log.release_held(town) == []  # not yet
    clock.advance(days=2)
    with store.write(town.db):
        assert len(log.release_held(town)) == 1  # the registration; the rest follows it
    assert cases.get(town, cid)["holder"] == "zhen" and log.held(town) == []


def test_an_event_dated_far_back_is_held_and_released_with_the_time_it_arrived(pair, clock):
    """A case registered 'a year ago' is not born 380 days overdue: held for review, and
    once released its deadlines count from the day the town received it."""
    town, village = pair
    clock.advance(days=-380)
    with store.write(village.db):
        cid = cases.register(village, LIAISON, case_fields()).subject
        cases.act(village, LIAISON, cid, "escalate", {"to": "zhen", "reason": "需镇协调"})
    clock.advance(days=380)
    session.run(village, Loopback(town))
    (held,) = [h for h in log.held(town) if h["type"] == "case.registered"]
    assert held["why"] == "past" and rows(town, "cases") == 0
    with store.write(town.db):
        log.release_held(town, held["id"])
    with store.write(town.db):
        log.release_held(town, next(h["id"] for h in log.held(town)))  # the escalation
    case = cases.get(town, cid)
    assert case["registered_on"] == town.today().isoformat()
    assert case["due_on"] > town.today().isoformat()  # not overdue on arrival


def test_a_replayed_acknowledgement_changes_nothing(pair, clock):
    town, village = pair
    register_many(village, 1)
    session.run(village, Loopback(town))
    old_ack = session.inbox.current_ack(village, "zhen")
    clock.advance(hours=1)
    session.run(village, Loopback(town))
    before = outbox.link(town.db, "cun")
    clock.advance(hours=1)
    session.serve_pull(town, old_ack)  # replayed by someone on the wire
    assert outbox.link(town.db, "cun") == before


def test_a_neighbour_whose_clock_is_off_is_flagged_and_cleared(pair, clock):
    town, village = pair
    register_many(village, 1)
    village.clock = lambda: clock() + __import__("datetime").timedelta(hours=30)
    session.run(village, Loopback(town))
    (flag,) = [f for f in trust.flags(town.db) if f["kind"] == "clock"]
    assert flag["node_id"] == "cun" and "ahead" in flag["detail"]
    village.clock = clock
    session.run(village, Loopback(town))
    assert not [f for f in trust.flags(town.db) if f["kind"] == "clock"]


# -- sessions live on the server ------------------------------------------------------------

@pytest.fixture
def api(make_node, clock):
    """Two API clients of one town, logged in as the same handler from two places."""
    from test_web import Web
    town = make_node("town", "zhen")
    here, there = Web(town, clock), Web(town, clock)
    here.api_login("wang")
    there.api_login("wang")
    return town, here, there


def cookie_of(web) -> str:
    return web.client.get_cookie(f"siji-{web.node.id}").value


def test_a_cookie_copied_before_logout_is_worth_nothing_after(api):
    town, here, there = api
    stolen = cookie_of(here)
    assert here.api("POST", "/api/logout").status_code == 200
    thief = here.app.test_client()
    thief.set_cookie(f"siji-{town.id}", stolen)
    assert thief.get("/api/me").status_code == 401
    assert there.api("GET", "/api/me").status_code == 200  # the other session lives on


def test_a_password_change_ends_every_other_session(api):
    from conftest import PASSWORD
    town, here, there = api
    changed = here.api("POST", "/api/password", {"old_password": PASSWORD,
                                                 "password": "another-pass-2"})
    assert changed.status_code == 200, changed.get_json()
    assert here.api("GET", "/api/me").status_code == 200
    assert there.api("GET", "/api/me").status_code == 401
    wrong = here.api("POST", "/api/password", {"old_password": "nope-nope",
                                               "password": "third-pass-3"})
    assert wrong.status_code == 403


def test_an_admin_ends_a_users_sessions(api, clock):
    from test_web import Web
    town, here, there = api
    admin = Web(town, clock)
    admin.api_login("admin")
    done = admin.api("POST", "/api/users/wang/sessions/end")
    assert done.get_json()["ended"] == 2
    assert here.api("GET", "/api/me").status_code == 401
    assert there.api("GET", "/api/me").status_code == 401


def test_behind_https_the_cookie_is_secure_and_browsers_keep_to_https(make_node, clock):
    from node import create_app
    town = make_node("town", "zhen")
    client = create_app(town.dir, config={"HTTPS": True}, clock=clock).test_client()
    answer = client.post("/api/login", json={"username": "wang", "password": "correct-horse-1"},
                         headers={"X-Forwarded-Proto": "https"})
    assert answer.status_code == 200
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


# -- one node id, one key: the city settles it -------------------------------------------------

def test_a_node_id_taken_elsewhere_is_settled_by_the_city(make_node, tmp_path):
    """pian2 enrolls a second 'cun' (another key) before it has heard of the first, under
    pian1. The city confirms the first it learns; its confirmation reaches pian2, which
    then trusts the first cun's key: the second is refused there, and the admin is told."""
    from test_revoke import enroll_under

    from node import core
    shi, zhen = make_node("city", "shi"), make_node("town", "zhen")
    pian1, pian2 = make_node("area", "pian1"), make_node("area", "pian2")
    for parent, child in ((shi, zhen), (zhen, pian1), (zhen, pian2)):
        enroll_under(parent, child)
    first = make_node("village", "cun")
    second = core.init_node(tmp_path / "other" / "cun", tier="village", node_id="cun",
                            name="另一个村", parent_url="http://127.0.0.1:9",
                            admin_password="admin-pass-1", clock=shi.clock)
    try:
        enroll_under(pian1, first)
        enroll_under(pian2, second)  # pian2 has not heard of the first cun yet

        def up(child, parent):
            return session.run(child, Loopback(parent))
        up(first, pian1)
        up(pian1, zhen)
        up(zhen, shi)   # the city learns the first cun, and confirms it
        up(second, pian2)
        up(pian2, zhen)
        up(zhen, shi)   # ... then the second: not confirmed
        up(pian2, zhen)  # the confirmation comes down to pian2
        up(pian2, zhen)
        key_of = {n.id: n.db.conn.execute("SELECT sign_pub FROM nodes WHERE node_id = 'cun'"
                                          ).fetchone()[0] for n in (shi, zhen, pian2)}
        first_key = first.signer.public_key().public_bytes_raw()
        assert all(bytes(k) == first_key for k in key_of.values()), key_of
        with pytest.raises(EnvelopeError):
            up(second, pian2)
        assert any(f["node_id"] == "cun" and f["kind"] == "membership"
                   for f in trust.flags(pian2.db))
    finally:
        second.close()
