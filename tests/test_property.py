"""Any delivery order and any duplication of a valid event set give the same state.

The scenario runs on a city-town-area-village chain and yields every event
any node wrote, including path actions made concurrently on two nodes and
two concurrent decisions (as a node restored from an old backup would
make). Each hypothesis example delivers a permutation of that set, with
duplicates, to a fresh node; events that arrive before what they depend on
wait in the inbox. The final rows must equal those of in-order delivery.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from conftest import HANDLER, LEADER, LIAISON, Clock, NodeFactory, build_chain, case_fields, deliver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_log import dump

from node import cases, core, events, log, store, trust, warnings


def act(node, case_id, action, actor=LIAISON, **fields):
    with store.write(node.db):
        return cases.act(node, actor, case_id, action, fields)


def scenario(make) -> tuple[list, tuple]:
    city, town, area, village = build_chain(make)
    with store.write(village.db):
        c1 = cases.register(village, LIAISON, case_fields()).subject
        c2 = cases.register(village, LIAISON, case_fields(category="funeral")).subject
        c4 = cases.register(village, LIAISON, case_fields(category="elderly")).subject
        w1 = warnings.raise_warning(village, LIAISON, {
            "subject": "征地补偿", "place": "村委会", "expected_size": 40,
            "destination": "beijing", "expected_date": "2026-12-03"}).subject
        warnings.act(village, LIAISON, w1, "handle", {"measures": "村干部上门劝导"})
    act(village, c1, "note", text="已上门了解")
    act(village, c1, "escalate", reason="村内无法解决")
    act(village, c2, "settle", reply="当场解释")
    act(village, c2, "followup", rating="satisfied")
    act(village, c2, "close", actor=LEADER, report="已办结", signers=["赵领导"])
    deliver(village, area)
    act(area, c1, "note", actor=HANDLER, text="片区已约谈")     # concurrent with the next
    act(village, c1, "note", text="群众又来电询问")               # ... village note
    with store.write(area.db):
        warnings.act(area, HANDLER, w1, "acknowledge", {})
        warnings.act(area, HANDLER, w1, "handle", {"measures": "包案领导上门"})
    act(area, c1, "escalate", actor=HANDLER, reason="需镇协调")
    deliver(area, town)
    deliver(village, town)
    act(town, c1, "accept", actor=HANDLER)
    act(town, c1, "assign", actor=LEADER, assignee="王办理", lead_leader="赵领导")
    act(town, c1, "refer", actor=HANDLER, to="pian", instruction="请片区核实",
        deadline="2026-12-10")
    with store.write(town.db):
        warnings.act(town, HANDLER, w1, "acknowledge", {})
        warnings.act(town, HANDLER, w1, "defuse", {"note": "已化解"})
    deliver(town, area)
    act(area, c1, "sign", actor=HANDLER)
    act(town, c1, "urge", actor=HANDLER, message="请片区尽快办理")
    act(town, c1, "supervise", actor=LEADER, instruction="限期办结", deadline="2026-12-20")
    deliver(town, city)
    deliver(area, city)
    # Two concurrent decisions by the village on c4, as a node restored from an old backup
    # would sign them: each is legal in its own past; together the case needs review.
    reg = next(e for e in log.subject_events(village.db, c4))
    top = village.db.conn.execute("SELECT max(seq) FROM events WHERE origin = 'cun'").fetchone()[0]
    forked = [
        events.sign(village.signer, origin="cun", seq=top + 1, ts="2026-11-23T05:00:00Z",
                    actor="liu", role="liaison", type="case.escalated", subject=c4,
                    prev=(reg.id,), body={"to": "pian", "reason": "上报"}),
        events.sign(village.signer, origin="cun", seq=top + 2, ts="2026-11-23T05:00:01Z",
                    actor="liu", role="liaison", type="case.settled", subject=c4,
                    prev=(reg.id,), body={"reply": "当场化解"}),
    ]
    everything = {}
    for node in (village, area, town, city):
        for (origin, seq) in node.db.conn.execute("SELECT origin, seq FROM events ORDER BY lsn"):
            everything.setdefault(f"{origin}:{seq}", log.get_event(node.db, f"{origin}:{seq}"))
    for ev in forked:
        everything[ev.id] = ev
    return list(everything.values()), (city, town, area, village)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("property")
    clock = Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    factory = NodeFactory(base, clock)
    evs, chain = scenario(factory)
    counter = itertools.count()

    def fresh() -> core.Node:
        path = base / f"observer{next(counter)}.db"
        db = store.create(path)
        with store.write(db):
            for n in chain:
                trust.add_node(db, node_id=n.id, name=n.id, tier=n.tier,
                               parent_id=n.settings["PARENT_ID"] or None,
                               sign_pub=n.signer.public_key().public_bytes_raw(), enc_pub=None,
                               added_at="2026-11-23T00:00:00Z")
        return core.Node(base, dict(chain[0].settings), db, chain[0].signer, clock)

    reference = fresh()
    for ev in evs:
        with store.write(reference.db):
            assert log.receive(reference, ev) == "applied", ev.id
    yield evs, fresh, dump(reference)
    factory.close()


def test_scenario_exercises_conflict_and_every_subject(world):
    evs, fresh, expected = world
    assert len(expected["cases"]) == 3 and len(expected["warnings"]) == 1
    flagged = [c for c in expected["cases"] if c["needs_review"]]
    assert len(flagged) == 1 and '"cun:' in flagged[0]["conflicts"]
    assert [o["status"] for o in expected["supervision_orders"]] == ["issued"]
    assert len(expected["warning_acks"]) == 2  # the area and the town; never the raiser


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_and_duplication_gives_the_same_state(world, data):
    evs, fresh, expected = world
    order = data.draw(st.permutations(range(len(evs))), label="order")
    extra = data.draw(st.lists(st.integers(0, len(evs) - 1), max_size=15), label="duplicates")
    sequence = list(order)
    for i, dup in enumerate(extra):
        sequence.insert(data.draw(st.integers(0, len(sequence)), label=f"at{i}"), dup)
    node = fresh()
    try:
        for i in sequence:
            with store.write(node.db):
                assert log.receive(node, evs[i]) in ("applied", "duplicate", "waiting")
        assert node.db.conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0
        assert node.db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == len(evs)
        assert dump(node) == expected
    finally:
        node.close()
