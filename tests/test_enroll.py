"""Enrollment: one-time codes, signed requests, certificates that chain to the root."""

from __future__ import annotations

import copy
import json

import pytest
from test_session import Loopback, register_many

from node import enroll, store, trust
from node.enroll import EnrollError
from node.sync import session


@pytest.fixture
def city(make_node):
    return make_node("city", "shi")


@pytest.fixture
def town_alone(tmp_path, clock):
    from node import core
    node = core.init_node(tmp_path / "zhen", tier="town", node_id="zhen", name="青水镇",
                          parent_url="http://127.0.0.1:9", admin_password="admin-pass-1",
                          clock=clock)
    yield node
    node.close()


def code_at(node, hours=72):
    with store.write(node.db):
        return enroll.new_code(node, hours)


def accept(parent, payload):
    with store.write(parent.db):
        return enroll.accept_request(parent, payload)


def install(child, answer, code):
    with store.write(child.db):
        return enroll.install(child, answer, code)


def nodes(node):
    return {r[0]: r[1] for r in node.db.conn.execute("SELECT node_id, parent_id FROM nodes")}


def test_enrollment_pins_both_sides_and_chains_to_the_root(city, town_alone):
    code = code_at(city)
    answer = accept(city, enroll.make_request(town_alone, code))
    result = install(town_alone, answer, code)
    assert nodes(city)["zhen"] == "shi" and nodes(town_alone)["shi"] is None
    assert town_alone.settings["PARENT_ID"] == "shi"
    assert 'PARENT_ID = "shi"' in (town_alone.dir / "siji.toml").read_text("utf-8")
    city_pub = city.signer.public_key().public_bytes_raw()
    town_pub = town_alone.signer.public_key().public_bytes_raw()
    assert result["fingerprint"] == enroll.pair_fingerprint(city_pub, town_pub)
    cert = json.loads((town_alone.dir / "keys" / "node.cert").read_text("utf-8"))
    assert trust.certificate_valid(cert, city_pub, town_alone.today())
    root = json.loads((city.dir / "keys" / "root.cert").read_text("utf-8"))
    city_cert = json.loads((city.dir / "keys" / "node.cert").read_text("utf-8"))
    root_pub = trust.b64decode(root["sign_pub"])
    assert trust.certificate_valid(city_cert, root_pub, city.today())
    chain = json.loads((town_alone.dir / "keys" / "chain.json").read_text("utf-8"))
    assert chain[0] == city_cert and chain[-1] == root


def test_an_enrolled_pair_syncs(city, town_alone):
    from conftest import STAFF

    from node import users
    code = code_at(city)
    install(town_alone, accept(city, enroll.make_request(town_alone, code)), code)
    with store.write(town_alone.db):
        for username, display, role in STAFF:
            users.add_user(town_alone, username, display, role, "correct-horse-1")
    register_many(town_alone, 2)
    assert session.run(town_alone, Loopback(city)).sent == 4


def refused(parent, payload, message):
    before = parent.db.conn.execute("SELECT * FROM enroll_codes").fetchall(), nodes(parent)
    with pytest.raises(EnrollError, match=message):
        accept(parent, payload)
    assert (parent.db.conn.execute("SELECT * FROM enroll_codes").fetchall(),
            nodes(parent)) == before


def test_a_code_works_once(city, town_alone, make_node):
    code = code_at(city)
    accept(city, enroll.make_request(town_alone, code))
    other = make_node("town", "other")
    refused(city, enroll.make_request(other, code), "already used")


def test_an_expired_code_is_refused(city, town_alone, clock):
    code = code_at(city, hours=72)
    clock.advance(hours=73)
    refused(city, enroll.make_request(town_alone, code), "expired")


def test_a_wrong_code_is_refused(city, town_alone):
    code = code_at(city)
    wrong = code[:5] + ("2222-2222" if code[5:] != "2222-2222" else "3333-3333")
    refused(city, enroll.make_request(town_alone, wrong), "wrong")
    refused(city, enroll.make_request(town_alone, "ZZZZ-ZZZZ-ZZZZ"), "wrong")


def test_a_request_changed_on_the_way_is_refused(city, town_alone):
    code = code_at(city)
    payload = enroll.make_request(town_alone, code)
    changed = copy.deepcopy(payload)
    changed["request"]["name"] = "冒名镇"
    refused(city, changed, "wrong")


def test_a_request_not_signed_by_its_key_is_refused(city, town_alone, make_node):
    code = code_at(city)
    payload = enroll.make_request(town_alone, code)
    other = make_node("town", "other")
    payload["request"]["sign_pub"] = trust.b64(other.signer.public_key().public_bytes_raw())
    signed = {k: payload[k] for k in ("code_id", "request", "sig")}
    payload["mac"] = enroll._mac(enroll._mac_key(code), signed)  # even with the code
    refused(city, payload, "not signed")


def test_tier_rules(city, make_node):
    village = make_node("village", "cun")
    refused(city, enroll.make_request(village, code_at(city)), "may not enroll")
    with pytest.raises(Exception, match="no children"):
        code_at(village)


def test_a_taken_node_id_is_refused(city, town_alone, tmp_path, clock):
    from node import core
    code = code_at(city)
    accept(city, enroll.make_request(town_alone, code))
    impostor = core.init_node(tmp_path / "fake", tier="town", node_id="zhen", name="假镇",
                              parent_url="http://x", admin_password="admin-pass-1", clock=clock)
    refused(city, enroll.make_request(impostor, code_at(city)), "already taken")
    impostor.close()


@pytest.mark.parametrize("change", ["mac", "certificate", "parent"])
def test_the_child_refuses_an_answer_that_does_not_check_out(city, town_alone, change):
    code = code_at(city)
    answer = accept(city, enroll.make_request(town_alone, code))
    if change == "mac":
        answer["mac"] = answer["mac"][::-1]
    elif change == "certificate":
        answer["certificate"]["name"] = "x"
    else:
        answer["parent"]["node"] = "elsewhere"
    if change != "mac":  # even under a correct MAC the certificate itself must check out
        unsigned = {k: answer[k] for k in ("certificate", "parent", "chain")}
        answer["mac"] = enroll._mac(enroll._mac_key(code), unsigned)
    with pytest.raises(EnrollError, match={"mac": "does not match the code",
                                           "certificate": "not signed by the parent",
                                           "parent": "not signed by the parent"}[change]):
        install(town_alone, answer, code)
    assert "shi" not in nodes(town_alone) and town_alone.settings["PARENT_ID"] == ""


@pytest.mark.parametrize("payload", [None, [], {"request": {}}, {"code_id": "A", "request": {},
                                                                 "sig": "", "mac": ""}])
def test_malformed_requests(city, payload):
    refused(city, payload, "malformed")
