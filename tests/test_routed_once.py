"""Routed once: the routing decided once per event numbers what a scan of every event did.

node/sync/outbox.py keeps, for each neighbour, the events it may be owed
(``link_due``), decided once as events arrive, so that a pull reads what is
owed to that child and not every event that arrived for its siblings. The
promise checked here: for any order of cases, escalations, referrals, warnings,
acknowledgements, partial numberings and sessions, every link numbers the same
events in the same order as the scan of every event (``route`` switched off),
and the network ends in the same state.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from conftest import HANDLER, LIAISON, Clock, NodeFactory, case_fields, pin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_session import Loopback

from node import cases, store, warnings
from node.errors import NodeError
from node.sync import outbox, session

# town zhen with two areas, a village under each
TREE = (("town", "zhen", None), ("area", "pa", "zhen"), ("area", "pb", "zhen"),
        ("village", "ca", "pa"), ("village", "cb", "pb"))
LINKS = (("pa", "zhen"), ("pb", "zhen"), ("ca", "pa"), ("cb", "pb"))
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

SIDE = st.integers(0, 1)  # which branch: pa/ca or pb/cb
STEPS = st.lists(st.one_of(
    st.tuples(st.just("case"), SIDE, st.booleans()),     # registered, escalated or kept
    st.tuples(st.just("up"), SIDE, st.just(False)),       # the area escalates to the town
    st.tuples(st.just("refer"), SIDE, st.booleans()),     # the town refers a case down
    st.tuples(st.just("note"), SIDE, st.just(False)),     # the town notes a case it holds
    st.tuples(st.just("warn"), SIDE, st.booleans()),      # a warning, to the city or not
    st.tuples(st.just("ack"), SIDE, st.just(False)),      # the town acknowledges one
    st.tuples(st.just("sync"), st.integers(0, 3), st.just(False)),
    st.tuples(st.just("queue"), SIDE, st.booleans()),     # a partial numbering at a parent
), min_size=1, max_size=30)


def _act(node, actor, case_id, action, fields) -> None:
    try:
        with store.write(node.db):
            cases.act(node, actor, case_id, action, fields)
    except NodeError:
        pass  # not allowed in this case's state: the same in both worlds


def _play(steps) -> tuple[dict, dict]:
    """Play ``steps`` on a fresh network: (every link's numbering, (node, peer, link number)
    -> (origin, seq), and each node's events)."""
    with tempfile.TemporaryDirectory() as base:
        factory = NodeFactory(Path(base), Clock(NOW))
        try:
            nodes = {}
            for tier, node_id, parent in TREE:
                nodes[node_id] = factory(tier, node_id, parent=nodes.get(parent))
            for a in nodes.values():
                for b in nodes.values():
                    if a is not b:
                        pin(a, b)
            numbered: dict[tuple, tuple] = {}
            held = {"zhen": [], "pa": [], "pb": []}
            raised = []
            deadline = (NOW.date() + timedelta(days=20)).isoformat()
            for step, k, flag in steps:
                area, village = ("pa", "ca") if k == 0 else ("pb", "cb")
                if step == "case":
                    with store.write(nodes[village].db):
                        cid = cases.register(nodes[village], LIAISON, case_fields()).subject
                    if flag:
                        _act(nodes[village], LIAISON, cid, "escalate",
                             {"to": area, "reason": "需片区协调"})
                        held[area].append(cid)
                elif step == "up" and held[area]:
                    cid = held[area].pop()
                    _act(nodes[area], HANDLER, cid, "escalate",
                         {"to": "zhen", "reason": "需镇协调"})
                    held["zhen"].append(cid)
                elif step == "refer":
                    town = nodes["zhen"]
                    cid = held["zhen"][-1] if flag and held["zhen"] else None
                    if cid is None:
                        with store.write(town.db):
                            cid = cases.register(town, HANDLER, case_fields()).subject
                    _act(town, HANDLER, cid, "refer", {"to": area, "instruction": "请核实",
                                                       "deadline": deadline})
                elif step == "note" and held["zhen"]:
                    _act(nodes["zhen"], HANDLER, held["zhen"][k % len(held["zhen"])], "note",
                         {"text": "镇里跟进"})
                elif step == "warn":
                    with store.write(nodes[village].db):
                        raised.append(warnings.raise_warning(nodes[village], LIAISON, {
                            "subject": "征地补偿", "place": "村委会",
                            "expected_size": 60 if flag else 30}).subject)
                elif step == "ack" and raised:
                    try:
                        with store.write(nodes["zhen"].db):
                            warnings.act(nodes["zhen"], HANDLER, raised[k % len(raised)],
                                         "acknowledge", {"note": "已知悉"})
                    except NodeError:
                        pass
                elif step == "sync":
                    child, parent = LINKS[k]
                    session.run(nodes[child], Loopback(nodes[parent]))
                elif step == "queue":
                    parent = nodes["zhen"] if flag else nodes[area]
                    with store.write(parent.db):
                        outbox.queue(parent, area if flag else village, limit=3)
                for node in nodes.values():
                    for peer, lseq, origin, seq in node.db.conn.execute(
                            "SELECT o.peer, o.lseq, e.origin, e.seq FROM outbox o JOIN events e "
                            "ON e.lsn = o.lsn"):
                        numbered[(node.id, peer, lseq)] = (origin, seq)
            for _ in range(3):  # settle: every link up, then down
                for child, parent in LINKS[::-1] + LINKS:
                    session.run(nodes[child], Loopback(nodes[parent]))
            held_events = {node_id: sorted(node.db.conn.execute(
                "SELECT origin, seq, type FROM events").fetchall())
                for node_id, node in nodes.items()}
            return numbered, held_events
        finally:
            factory.close()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS)
def test_routing_once_numbers_what_a_scan_of_every_event_numbered(steps):
    routed = _play(steps)
    with mock.patch.object(outbox, "route", lambda node: None):
        scanned = _play(steps)
    assert routed[0] == scanned[0]
    assert routed[1] == scanned[1]


def test_a_pull_reads_what_is_owed_to_that_child_not_what_its_siblings_sent(make_node):
    town = make_node("town", "zhen")
    villages = [make_node("village", f"cun{i}", parent=town) for i in range(3)]
    for v in villages:
        for w in villages:
            if v is not w:
                pin(v, w)
    for v in villages:  # each link set up
        session.run(v, Loopback(town))
    quiet = villages[0]
    for v in villages[1:]:
        for i in range(20):
            with store.write(v.db):
                cid = cases.register(v, LIAISON, case_fields(summary=f"第{i}件")).subject
                cases.act(v, LIAISON, cid, "escalate", {"to": "zhen", "reason": "需镇处理"})
        session.run(v, Loopback(town))
    # the siblings' 80 events are the town's, and none is due to the quiet village
    due = town.db.conn.execute("SELECT count(*) FROM link_due WHERE peer = ?",
                               (quiet.id,)).fetchone()[0]
    assert due == 0
    looked = []
    real = outbox._candidates

    def counting(*args, **kwargs):
        for rows in real(*args, **kwargs):
            looked.extend(r for r in rows if r[2] is not None)
            yield rows

    with mock.patch.object(outbox, "_candidates", counting), store.write(town.db):
        assert outbox.queue(town, quiet.id) == 0
    assert looked == []
    # and what is owed to it is found: the town refers a case down to it
    with store.write(town.db):
        cid = cases.register(town, HANDLER, case_fields()).subject
        cases.act(town, HANDLER, cid, "refer", {
            "to": quiet.id, "instruction": "请核实",
            "deadline": (NOW.date() + timedelta(days=20)).isoformat()})
    summary = session.run(quiet, Loopback(town))
    assert summary.received == 2
    assert cases.get(quiet, cid)["handover"] == "pending"


def test_a_new_links_first_scan_goes_a_budget_at_a_time_and_misses_nothing(make_node):
    """A new link looks at the whole log once (nothing was routed to it before it was
    made); a session does that a budget of events per write transaction, not all in one
    (7 s at a city of a million events, every other writer waiting), and still takes
    everything owed to the child, however deep in the log."""
    town = make_node("town", "zhen")
    busy, fresh = (make_node("village", f"cun{i}", parent=town) for i in range(2))
    pin(busy, fresh)
    pin(fresh, busy)
    for i in range(30):  # 60 events at the town, none of them the fresh village's
        with store.write(busy.db):
            cid = cases.register(busy, LIAISON, case_fields(summary=f"第{i}件")).subject
            cases.act(busy, LIAISON, cid, "escalate", {"to": "zhen", "reason": "需镇处理"})
    session.run(busy, Loopback(town))
    with store.write(town.db):  # and then one that is, behind them all
        cid = cases.register(town, HANDLER, case_fields()).subject
        cases.act(town, HANDLER, cid, "refer", {
            "to": fresh.id, "instruction": "请核实",
            "deadline": (NOW.date() + timedelta(days=20)).isoformat()})
    with store.write(town.db):
        outbox.ensure_link(town.db, fresh.id)  # made as a new link is: nothing routed to it
    with mock.patch.object(outbox, "SCAN_BUDGET", 7):  # a long-poll reads a budget at most
        owed, position = outbox.owes(town, fresh.id, 0)
    assert owed and position <= town.db.conn.execute(  # (said before the referral was seen)
        "SELECT min(lsn) FROM events WHERE subject = ?", (cid,)).fetchone()[0]
    calls = []
    real_plan, real_queue = outbox._plan, outbox.queue

    def plan(*args, **kwargs):
        for row in real_plan(*args, **kwargs):
            calls[-1] += 1
            yield row

    def queue(node, peer, limit=None):
        calls.append(0)
        return real_queue(node, peer, limit)

    with mock.patch.object(outbox, "SCAN_BUDGET", 7), \
            mock.patch.object(outbox, "_plan", plan), \
            mock.patch.object(outbox, "queue", queue):
        session.run(fresh, Loopback(town))
    assert cases.get(fresh, cid)["handover"] == "pending"  # the referral arrived
    looked = [n for n in calls if n]
    assert sum(looked) >= 60 and max(looked) <= 7 and len(looked) >= 9
    assert not outbox.behind(town.db, outbox.link(town.db, fresh.id)["scanned_lsn"])
    with mock.patch.object(outbox, "SCAN_BUDGET", 7):  # and then nothing more is owed
        assert outbox.owes(town, fresh.id, outbox.link(town.db, fresh.id)["acked"])[0] is False
