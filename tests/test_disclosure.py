"""Personal fields that never go above a tier (node/disclosure.py, setting NEVER_ABOVE).

The village limits a petitioner's ID number to the town and the phone to the
area; the case climbs to the city. Each node gets exactly the values its tier
may have, every origin signature still verifies at the top, and the values
that stop below are nowhere in the higher nodes' database files.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest
from conftest import LIAISON, build_chain, case_fields
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from test_routing import act, settle
from test_session import Loopback

from node import cases, disclosure, events, log, store
from node.errors import EventRefused, ValidationError
from node.sync import outbox, session

PERSON = {"name": "李四", "id_number": "11010519491231002X", "phone": "13800138000",
          "address": "东山村三组12号"}
RULES = {"id_number": "town", "phone": "area"}


def chain_with(make_node, village_rules=None, town_rules=None):
    """The test chain (conftest.build_chain) with the given NEVER_ABOVE."""
    return build_chain(make_node, village={"NEVER_ABOVE": village_rules or {}},
                       town={"NEVER_ABOVE": town_rules or {}})


def escalate_to_city(chain) -> str:
    city, town, area, village = chain
    with store.write(village.db):
        case_id = cases.register(village, LIAISON, case_fields(petitioners=[PERSON])).subject
    act(village, case_id, "escalate", actor=LIAISON, to="pian", reason="村里解决不了")
    settle(chain)
    act(area, case_id, "escalate", to="zhen", reason="需镇协调")
    settle(chain)
    act(town, case_id, "escalate", to="shi", reason="需市局协调")
    settle(chain)
    assert cases.get(city, case_id)["holder"] == "shi"
    return case_id


def file_bytes(node) -> bytes:
    """Everything of the node's database on disk: the file and its write-ahead log."""
    node.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = node.dir / node.settings["DATABASE"]
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_each_tier_gets_exactly_the_values_it_may_have(make_node):
    chain = city, town, area, village = chain_with(make_node, RULES)
    case_id = escalate_to_city(chain)
    seen = {node.tier: cases.petitioners(node, case_id)[0] for node in chain}
    assert seen["village"] == {**PERSON, "representative": 0, "withheld": {}}
    assert seen["area"] == {**PERSON, "representative": 0, "withheld": {}}
    assert seen["town"] == {**PERSON, "phone": None, "representative": 0,
                            "withheld": {"phone": "area"}}
    assert seen["city"] == {**PERSON, "id_number": None, "phone": None, "representative": 0,
                            "withheld": {"id_number": "town", "phone": "area"}}
    # the city holds the case and decides on it; what stayed below is not in its file
    assert cases.get(city, case_id)["summary"] == case_fields()["summary"]
    raw = file_bytes(city)
    assert PERSON["id_number"].encode() not in raw and PERSON["phone"].encode() not in raw
    assert PERSON["name"].encode() in raw  # (the check can find what is there)
    assert PERSON["phone"].encode() not in file_bytes(town)
    assert PERSON["id_number"].encode() in file_bytes(town)


def test_every_origin_signature_still_verifies_at_the_top(make_node):
    chain = city, _, _, village = chain_with(make_node, RULES)
    case_id = escalate_to_city(chain)
    registered = log.subject_events(city.db, case_id)[0]
    assert registered.type == "case.registered" and registered.disclosed == {}
    at_village = log.subject_events(village.db, case_id)[0]
    assert registered.body == at_village.body  # the same signed bytes, commitments and all
    assert set(at_village.disclosed) == {"petitioners/0/id_number", "petitioners/0/phone"}
    key = village.signer.public_key()
    for ev in log.subject_events(city.db, case_id):
        if ev.origin == "cun":
            assert events.verify(ev, key)


def test_a_relay_applies_its_own_stricter_rule(make_node):
    # the village limits nothing below the city; the town keeps ID numbers itself
    chain = city, town, _, _ = chain_with(make_node, {"id_number": "city"}, {"id_number": "town"})
    case_id = escalate_to_city(chain)
    assert cases.petitioners(town, case_id)[0]["id_number"] == PERSON["id_number"]
    assert cases.petitioners(city, case_id)[0]["withheld"] == {"id_number": "city"}
    assert PERSON["id_number"].encode() not in file_bytes(city)


def test_a_node_keeps_what_it_registers_and_not_what_its_own_rule_keeps_below(make_node):
    """One NEVER_ABOVE for every node: at a node above the limit, the cases it registers
    keep their values (limited to its own tier), and values from below are not kept."""
    chain = city, town, _, _ = chain_with(make_node, {"id_number": "city"}, {"id_number": "area"})
    with store.write(town.db):
        own = cases.register(town, LIAISON, case_fields(petitioners=[PERSON]))
    assert own.body["petitioners"][0]["id_number"]["up_to"] == "town"
    assert cases.petitioners(town, own.subject)[0]["id_number"] == PERSON["id_number"]
    from_below = escalate_to_city(chain)  # the village lets it go to the city
    assert cases.petitioners(town, from_below)[0]["withheld"] == {"id_number": "city"}
    assert cases.petitioners(city, from_below)[0]["id_number"] is None


def test_without_rules_nothing_is_committed(make_node):
    chain = city, _, _, _ = chain_with(make_node)
    case_id = escalate_to_city(chain)
    registered = log.subject_events(city.db, case_id)[0]
    assert registered.body["petitioners"][0]["id_number"] == PERSON["id_number"]
    assert cases.petitioners(city, case_id)[0]["withheld"] == {}


def test_a_node_drops_values_its_tier_may_not_have_even_if_sent(make_node):
    """Defence in depth: a neighbour that ignores the rule still cannot put them here."""
    city, town, area, village = chain_with(make_node, RULES)
    with store.write(village.db):
        event = cases.register(village, LIAISON, case_fields(petitioners=[PERSON]))
    assert set(event.disclosed) == {"petitioners/0/id_number", "petitioners/0/phone"}
    with store.write(city.db):
        assert log.receive(city, event, source="zhen") == "applied"
    stored = log.subject_events(city.db, event.subject)[0]
    assert stored.disclosed == {}
    assert cases.petitioners(city, event.subject)[0]["id_number"] is None
    assert PERSON["id_number"].encode() not in file_bytes(city)


def test_a_disclosure_that_opens_nothing_is_never_stored(make_node):
    """An Event handed over in-process (not parsed by from_wire) with a wrong value: the
    receiver keeps the commitment, not the value."""
    city, town, area, village = chain_with(make_node, RULES)
    with store.write(village.db):
        event = cases.register(village, LIAISON, case_fields(petitioners=[PERSON]))
    salt = event.disclosed["petitioners/0/id_number"][0]
    forged = dataclasses.replace(event, disclosed={
        "petitioners/0/id_number": [salt, "110105194912310039"],
        "petitioners/9/name": [salt, "王五"]})
    with store.write(area.db):
        assert log.receive(area, forged, source="cun") == "applied"
    person = cases.petitioners(area, event.subject)[0]
    assert person["id_number"] is None and person["withheld"] == {"id_number": "town",
                                                                   "phone": "area"}


def test_what_leaves_a_node_is_cut_to_the_recipients_tier(make_node):
    city, town, area, village = chain_with(make_node, RULES)
    with store.write(village.db):
        case_id = cases.register(village, LIAISON, case_fields(petitioners=[PERSON])).subject
    act(village, case_id, "escalate", actor=LIAISON, to="pian", reason="村里解决不了")
    with store.write(village.db):
        outbox.queue(village, "pian")
    _, wires = outbox.pending(village, "pian", 10)
    sent = [events.from_json(w) for w in wires]
    assert set(sent[0].disclosed) == {"petitioners/0/id_number", "petitioners/0/phone"}
    session.run(village, Loopback(area))
    act(area, case_id, "escalate", to="zhen", reason="需镇协调")
    with store.write(area.db):
        outbox.queue(area, "zhen")
    _, wires = outbox.pending(area, "zhen", 10)
    registered = next(events.from_json(w) for w in wires if b"case.registered" in w)
    assert set(registered.disclosed) == {"petitioners/0/id_number"}
    assert PERSON["phone"].encode() not in b"".join(wires)


def test_the_page_says_where_a_withheld_field_stays(make_node, clock):
    from test_web import Web, text
    chain = city, _, _, _ = chain_with(make_node, RULES)
    case_id = escalate_to_city(chain)
    web = Web(city, clock)
    web.login("wang")
    page = text(web.get(f"/cases/{case_id}?lang=zh"))
    assert "身份证号码不上报（留在镇级）" in page and "电话不上报（留在片级）" in page
    assert PERSON["name"] in page
    page = text(web.get(f"/cases/{case_id}?lang=en"))
    assert "ID number stays at the town level" in page


def test_rebuild_keeps_what_was_withheld(make_node):
    chain = city, _, _, _ = chain_with(make_node, RULES)
    case_id = escalate_to_city(chain)
    before = cases.petitioners(city, case_id)
    with store.write(city.db):
        log.rebuild(city)
    assert cases.petitioners(city, case_id) == before


# -- the event format ------------------------------------------------------------

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def registered(rules=RULES, people=(PERSON,)) -> events.Event:
    body = cases.RULES["register"].clean(case_fields(petitioners=list(people),
                                                     query_code="ABCD2345"))
    body, disclosed = disclosure.commit(body, rules, "village")
    return events.sign(KEY, origin="cun", seq=1, ts="2026-11-23T02:00:00Z", actor="liu",
                       role="liaison", type="case.registered", subject="C-cun-2026-0001",
                       body=body, disclosed=disclosed)


VECTOR = json.loads((Path(__file__).parent / "vectors" / "disclosure-v1.json").read_text("utf-8"))


def test_the_vector_reproduces_and_the_protocol_doc_carries_it():
    hashed = disclosure.CONTEXT + events.canonical([VECTOR["salt"], VECTOR["path"],
                                                    VECTOR["value"]])
    assert hashed.hex() == VECTOR["hashed_hex"]
    assert disclosure.digest(VECTOR["salt"], VECTOR["path"], VECTOR["value"]) == VECTOR["sd"]
    body = {"petitioners": [{"id_number": VECTOR["commitment"]}]}
    disclosure.check(body, {VECTOR["path"]: VECTOR["disclosure"]})
    doc = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text("utf-8")
    for key in ("salt", "path", "value", "sd"):
        assert VECTOR[key] in doc, f"docs/protocol.md lacks the vector's {key}"


def test_the_wire_form_carries_disclosures_beside_the_signed_event():
    event = registered()
    wire = events.to_json(event)
    back = events.from_json(wire)
    assert back == event and back.disclosed == event.disclosed
    assert events.verify(back, KEY.public_key())
    stored_body = events.canonical(event.body)
    built = events.wire_bytes(event.origin, event.seq, event.ts, event.actor, event.role,
                              event.type, event.subject, list(event.prev), stored_body,
                              event.sig, event.disclosed)
    assert built == wire.encode()
    # taking disclosures away keeps the event and its signature whole
    bare = events.from_json(events.to_json(dataclasses.replace(event, disclosed={})))
    assert bare.digest() == event.digest() and events.verify(bare, KEY.public_key())


@pytest.mark.parametrize("change, problem", [
    (lambda sd: {**sd, "petitioners/0/id_number": [sd["petitioners/0/id_number"][0],
                                                   "110105194912310039"]}, "does not match"),
    (lambda sd: {**sd, "petitioners/0/phone": [base64.b64encode(b"x" * 16).decode(),
                                               PERSON["phone"]]}, "does not match"),
    (lambda sd: {**sd, "petitioners/0/name": ["c2FsdA==", "王五"]}, "opens no commitment"),
    (lambda sd: {"petitioners/0/phone": sd["petitioners/0/id_number"]}, "does not match"),
    (lambda sd: {**sd, "petitioners/0/phone": "13800138000"}, "not [salt, value]"),
    (lambda sd: {}, "empty sd"),
    (lambda sd: ["petitioners/0/phone"], "must be an object"),
])
def test_a_forged_or_misplaced_disclosure_refuses_the_event(change, problem):
    wire = events.to_wire(registered())
    wire["sd"] = change(wire["sd"])
    with pytest.raises(EventRefused) as info:
        events.from_wire(wire)
    assert problem in str(info.value)


@pytest.mark.parametrize("value", [
    {"sd": "A" * 43 + "=", "up_to": "village"},   # well formed: still the node's to make
    {"sd": "A" * 44, "up_to": "village"},
    {"sd": "A" * 43 + "=", "up_to": []},
])
def test_a_user_cannot_register_a_commitment_for_a_value(make_node, value):
    village = make_node("village", "cun")
    for key in ("name", "id_number"):
        fields = case_fields(petitioners=[{**PERSON, key: value}])
        with pytest.raises(ValidationError) as info, store.write(village.db):
            cases.register(village, LIAISON, fields)
        assert key in info.value.english()
    assert village.db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0


@pytest.mark.parametrize("person", [
    {"name": {"sd": "A" * 43 + "=", "up_to": []}},                 # unhashable limit
    {"name": {"sd": "é" * 43 + "=", "up_to": "city"}},             # not base64
    {"a/b": {"sd": "A" * 43 + "=", "up_to": "city"}, "name": "张三"},  # not a personal field
])
def test_a_malformed_commitment_refuses_the_event_and_blocks_nothing(make_node, person):
    """Received in a bundle, a bad commitment is one refused event, not a failed bundle."""
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    bad = events.sign(village.signer, origin="cun", seq=1, ts="2026-11-23T02:00:00Z",
                      actor="liu", role="liaison", type="case.registered",
                      subject="C-cun-2026-0001",
                      body={**registered().body, "petitioners": [person]})
    good = registered()
    good = events.sign(village.signer, origin="cun", seq=2, ts=good.ts, actor="liu",
                       role="liaison", type="case.registered", subject="C-cun-2026-0002",
                       body=good.body, disclosed=good.disclosed)
    with store.write(town.db):
        outcomes = log.receive_many(town, [events.from_json(events.to_json(bad)),
                                           events.from_json(events.to_json(good))])
    assert isinstance(outcomes[0], EventRefused) and outcomes[1] == "applied"


def test_a_commitment_where_none_may_be_refuses_the_body():
    event = registered()
    body = dict(event.body)
    body["summary"] = event.body["petitioners"][0]["id_number"]  # a commitment object
    with pytest.raises(ValidationError) as info:
        cases.validate_body("case.registered", body)
    assert "summary" in str(info.value)


def test_a_disclosed_value_is_validated_like_any_other():
    event = registered()
    salt = "c2FsdHNhbHRzYWx0c2FsdA=="
    path, bad = "petitioners/0/id_number", "not an id number"
    body = {**event.body, "petitioners": [{**event.body["petitioners"][0],
                                           path.rsplit("/", 1)[1]: {
                                               "sd": disclosure.digest(salt, path, bad),
                                               "up_to": "town"}}]}
    with pytest.raises(ValidationError) as info:
        cases.validate_body("case.registered", disclosure.reveal(body, {path: [salt, bad]}))
    assert "id_number" in str(info.value)


tiers = st.sampled_from(list(disclosure.TIER_RANK))


@given(rules=st.dictionaries(st.sampled_from(disclosure.FIELDS), tiers),
       relay=st.dictionaries(st.sampled_from(disclosure.FIELDS), tiers),
       tier=tiers, people=st.integers(1, 3))
def test_a_tier_gets_a_value_exactly_when_every_limit_allows_it(rules, relay, tier, people):
    event = registered(rules, [PERSON] * people)
    kept = disclosure.for_tier(event.body, event.disclosed, tier, relay)
    rank = disclosure.TIER_RANK
    for i in range(people):
        for key in disclosure.FIELDS:
            path = f"petitioners/{i}/{key}"
            allowed = key not in rules or (
                rank[tier] <= rank[rules[key]] and rank[tier] <= rank[relay.get(key, "city")])
            assert (path in kept) == (key in rules and allowed)
            value = disclosure.reveal(event.body, kept)["petitioners"][i][key]
            assert (value == PERSON[key]) == allowed
    disclosure.check(event.body, kept)  # what is passed on still opens its commitments
