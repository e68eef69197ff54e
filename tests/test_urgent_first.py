"""Urgent first: warnings and escalations overtake a backlog of routine events on a link.

The outbox numbers urgent events (and what they build on) before the routine
ones that arrived earlier (node/sync/outbox.py). Whatever the order and the
bundle sizes, every event still arrives exactly once, and never before an
earlier event of its subject.
"""

from __future__ import annotations

import itertools
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from conftest import LIAISON, Clock, NodeFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_session import Loopback, register_many

from node import cases, store, warnings
from node.sync import outbox, session

WARNING = {"subject": "征地补偿", "place": "村委会", "expected_size": 30}


def _note(node, case_id: str, n: int) -> None:
    with store.write(node.db):
        for i in range(n):
            cases.act(node, LIAISON, case_id, "note", {"text": f"补充情况{i}"})


def _numbered(node, peer: str) -> list[tuple[str, str]]:
    """(type, subject) of what is numbered for ``peer``, in link order."""
    return node.db.conn.execute(
        "SELECT e.type, e.subject FROM outbox o JOIN events e ON e.lsn = o.lsn "
        "WHERE o.peer = ? ORDER BY o.lseq", (peer,)).fetchall()


def _sent_once_in_order(village, town) -> None:
    """Every event the village sent is at the town once; each subject's events arrived in
    the order the village wrote them; nothing waits for what it builds on."""
    here = dict(((o, s), lsn) for o, s, lsn in village.db.conn.execute(
        "SELECT origin, seq, lsn FROM events"))
    there = town.db.conn.execute(
        "SELECT origin, seq, subject, lsn FROM events WHERE origin = ? ORDER BY lsn",
        (village.id,)).fetchall()
    assert len(there) == len({(o, s) for o, s, _, _ in there})  # once
    by_subject: dict[str, list[int]] = {}
    for origin, seq, subject, _ in there:
        by_subject.setdefault(subject, []).append(here[(origin, seq)])
    assert all(order == sorted(order) for order in by_subject.values())
    assert town.db.conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0


def test_a_warning_goes_in_the_first_bundle_behind_a_backlog(make_node):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    case_id = register_many(village, 1)[0]
    session.run(village, Loopback(town))
    _note(village, case_id, 300)  # routine: the case's notes go up too
    with store.write(village.db):
        raised = warnings.raise_warning(village, LIAISON, WARNING)
    with store.write(village.db):
        outbox.queue(village, "zhen", limit=20)
    first = _numbered(village, "zhen")
    assert first[0] == ("warning.raised", raised.subject) and len(first) == 20
    # the next bundle holds the warning alone: the town applies and forwards it at once
    assert len(outbox.pending(village, "zhen", 400)[1]) == 1
    summary = session.run(village, Loopback(town))
    assert summary.sent == 301
    _sent_once_in_order(village, town)
    assert village.db.conn.execute("SELECT count(*) FROM link_ahead").fetchone()[0] == 0


def test_an_escalation_brings_its_case_history_ahead_of_other_routine_events(make_node):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    shared = register_many(village, 1)[0]
    session.run(village, Loopback(town))
    _note(village, shared, 50)
    with store.write(village.db):
        kept = cases.register(village, LIAISON, {**_fields(), "summary": "新的一件"}).subject
        cases.act(village, LIAISON, kept, "note", {"text": "先在村里"})
        cases.act(village, LIAISON, kept, "escalate", {"to": "zhen", "reason": "需镇处理"})
        outbox.queue(village, "zhen", limit=10)
    order = _numbered(village, "zhen")
    assert [t for t, s in order[:3]] == ["case.registered", "case.note", "case.escalated"]
    assert {s for _, s in order[:3]} == {kept}
    session.run(village, Loopback(town))
    _sent_once_in_order(village, town)


def _fields():
    from conftest import case_fields
    return case_fields()


STEPS = st.lists(st.one_of(
    st.tuples(st.just("note"), st.integers(0, 2), st.integers(1, 30)),
    st.tuples(st.just("escalate"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("warn"), st.just(0), st.just(0)),
    st.tuples(st.just("handle"), st.just(0), st.just(0)),
    st.tuples(st.just("queue"), st.integers(1, 40), st.just(0)),
    st.tuples(st.just("sync"), st.integers(1, 60), st.just(0)),
), min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS)
def test_any_mix_of_urgent_and_routine_arrives_once_and_in_causal_order(steps):
    with tempfile.TemporaryDirectory() as base:
        factory = NodeFactory(Path(base), Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC)))
        try:
            town = factory("town", "zhen")
            village = factory("village", "cun", parent=town)
            escalated = register_many(village, 3)  # shared with the town from the start
            local, raised = [], []
            counter = itertools.count()
            for step, k, n in steps:
                if step == "note":
                    _note(village, escalated[k], n)
                elif step == "escalate":
                    with store.write(village.db):
                        case = cases.register(village, LIAISON, _fields()).subject
                        cases.act(village, LIAISON, case, "note", {"text": f"{next(counter)}"})
                        cases.act(village, LIAISON, case, "escalate",
                                  {"to": "zhen", "reason": "需镇处理"})
                    local.append(case)
                elif step == "warn":
                    with store.write(village.db):
                        raised.append(warnings.raise_warning(village, LIAISON, WARNING).subject)
                elif step == "handle" and raised:
                    with store.write(village.db):
                        warnings.act(village, LIAISON, raised[-1], "handle",
                                     {"measures": "村干部上门劝导"})
                elif step == "queue":
                    with store.write(village.db):
                        outbox.queue(village, "zhen", limit=k)
                elif step == "sync":
                    session.run(village, Loopback(town))
            session.run(village, Loopback(town))
            _sent_once_in_order(village, town)
            assert outbox.backlog(village, "zhen")[0] == 0
            assert not outbox.owes(village, "zhen", outbox.link(village.db, "zhen")["acked"])[0]
        finally:
            factory.close()
