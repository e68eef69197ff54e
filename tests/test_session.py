"""Sync sessions over an in-process transport: exactly once, whatever the link does."""

from __future__ import annotations

import pytest
from conftest import HANDLER, LIAISON, case_fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_log import count, dump

from node import cases, envelope, store
from node.envelope import EnvelopeError
from node.sync import inbox, outbox, session


class Loopback:
    """Carries bytes straight to the parent's handlers, as HTTP would."""

    def __init__(self, parent, max_bytes=None):
        self.parent, self.max_bytes, self.pushed = parent, max_bytes, []

    def push(self, out, pace=None):
        data = out.data
        if self.max_bytes and len(data) > self.max_bytes:
            raise session.TooLarge("too large")
        self.pushed.append(data)
        return session.serve_push(self.parent, data)

    def pull(self, ack, into=None, pace=None):
        return session.serve_pull(self.parent, ack)


class Flaky(Loopback):
    """Fails at chosen calls: before the parent sees the request, or after (reply lost)."""

    def __init__(self, parent, plan):
        super().__init__(parent)
        self.plan, self.calls = list(plan), 0

    def _fault(self, handler, data):
        self.calls += 1
        fault = self.plan.pop(0) if self.plan else None
        if fault == "before":
            raise ConnectionError("dropped before delivery")
        reply = handler(data)
        if fault == "after":
            raise ConnectionError("dropped after delivery: the reply is lost")
        return reply

    def push(self, out, pace=None):
        return self._fault(lambda d: session.serve_push(self.parent, d), out.data)

    def pull(self, ack, into=None, pace=None):
        return self._fault(lambda d: session.serve_pull(self.parent, d), ack)


@pytest.fixture
def pair(make_node):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    return town, village


def register_many(node, n, actor=LIAISON, escalate=True):
    """``n`` cases registered and escalated to the parent: two events each, all sent up
    (a case that stays in the village never leaves it: node.sync.policy).
    ``escalate=False``: registered and noted, and kept here."""
    ids = []
    for i in range(n):
        with store.write(node.db):
            cid = cases.register(node, actor, case_fields(summary=f"第{i}件")).subject
            if escalate:
                cases.act(node, actor, cid, "escalate", {"to": node.settings["PARENT_ID"],
                                                         "reason": "需上级处理"})
            else:
                cases.act(node, actor, cid, "note", {"text": "补充"})
        ids.append(cid)
    return ids


def event_ids(node):
    return sorted(f"{o}:{s}" for o, s in node.db.conn.execute("SELECT origin, seq FROM events"))


def test_push_delivers_everything_once_and_moves_the_checkpoint(pair):
    town, village = pair
    register_many(village, 5)
    summary = session.run(village, Loopback(town))
    assert summary.sent == 10 and event_ids(town) == event_ids(village)
    assert outbox.link(village.db, "zhen")["acked"] == 10
    assert outbox.backlog(village, "zhen") == (0, 0)
    again = session.run(village, Loopback(town))
    assert again.sent == 0 and again.bundles_out == 0
    assert count(town) == 10


def test_replayed_bundle_changes_nothing(pair):
    town, village = pair
    register_many(village, 3)
    transport = Loopback(town)
    session.run(village, transport)
    before = dump(town)
    ack = envelope.open_ack(session.serve_push(town, transport.pushed[0]), me="cun",
                            sender_key=inbox.neighbour_key(village))
    assert ack.upto == 6 and dump(town) == before and count(town) == 6


def test_a_bundle_past_a_gap_applies_nothing_and_says_where_to_resume(pair):
    town, village = pair
    register_many(village, 2)
    with store.write(village.db):
        outbox.queue(village, "zhen")
    first, evs = outbox.pending(village, "zhen", 10)
    late = envelope.seal(evs[2:], sender="cun", recipient="zhen", first=first + 2,
                         sender_key=village.signer,
                         recipient_key=town.enc_key.public_key())
    ack = envelope.open_ack(session.serve_push(town, late), me="cun",
                            sender_key=inbox.neighbour_key(village))
    assert ack.upto == 0 and count(town) == 0


class LosesFirst(Loopback):
    """The parent loses the first bundle but answers (a short acknowledgement): the
    next bundle is already on its way, and lands past a gap."""

    def push(self, out, pace=None):
        self.pushed.append(out.data)
        if len(self.pushed) == 1:
            return inbox.current_ack(self.parent, "cun")
        return session.serve_push(self.parent, out.data)


def test_a_short_acknowledgement_resumes_where_the_parent_stands(pair):
    town, village = pair
    register_many(village, 3)
    with store.write(village.db):
        outbox.ensure_link(village.db, "zhen")
        village.db.conn.execute("UPDATE links SET batch = 2 WHERE peer = 'zhen'")
    transport = LosesFirst(town)
    summary = session.run(village, transport)
    assert event_ids(town) == event_ids(village) and count(town) == 6
    assert outbox.link(village.db, "zhen")["acked"] == 6 and summary.sent == 6
    # sent: bundle 1 (lost), bundle 2 (past the gap, applied nothing), then 1, 2, 3
    firsts = [envelope.read_header(b).first for b in transport.pushed]
    assert firsts == [1, 3, 1, 3, 5]


def test_a_parent_behind_its_own_acknowledgement_stops_the_session(pair):
    """A parent restored from a backup acknowledges less than it did before. The child
    pruned what was acknowledged and cannot resend it: the session stops at once with
    the reason on the link, instead of sending the same bundle round after round."""
    town, village = pair
    register_many(village, 3)
    session.run(village, Loopback(town))
    with store.write(town.db):  # the parent's state of a while ago
        town.db.conn.execute("UPDATE links SET applied = 2 WHERE peer = 'cun'")
    register_many(village, 1)
    transport = Loopback(town)
    with pytest.raises(outbox.ParentBehind):
        session.run(village, transport)
    assert len(transport.pushed) == 1
    row = outbox.link(village.db, "zhen")
    assert row["acked"] == 6 and row["last_error"].startswith("parent_behind: ")
    assert "(6)" in row["last_error"] and count(town) == 6


def refer_down(town) -> str:
    """A case the town registers, accepts and refers to the village (three events)."""
    with store.write(town.db):
        cid = cases.register(town, HANDLER, case_fields()).subject
        cases.act(town, HANDLER, cid, "accept", {})
        cases.act(town, HANDLER, cid, "refer", {"to": "cun", "instruction": "请核实",
                                               "deadline": "2026-12-10"})
    return cid


def test_a_child_that_lost_what_it_sent_up_stops(pair):
    """Restored from a backup, the child would number new events with link numbers the
    parent has applied already, and the parent would drop them as duplicates. The
    parent's acknowledgement shows it: the session stops and nothing is acknowledged."""
    town, village = pair
    register_many(village, 3)
    session.run(village, Loopback(town))
    with store.write(village.db):  # its link as it was when two events were numbered
        village.db.conn.execute("UPDATE links SET next_out = 3, acked = 2, scanned_lsn = "
                                "(SELECT max(lsn) FROM events) WHERE peer = 'zhen'")
        village.db.conn.execute("DELETE FROM outbox")
    register_many(village, 1)  # numbered 3 and 4, which the parent applied already
    with pytest.raises(EnvelopeError) as refused:
        session.run(village, Loopback(town))
    assert refused.value.reason == "ahead" and "up to 6" in refused.value.english()
    row = outbox.link(village.db, "zhen")
    assert row["acked"] == 2 and row["last_error"].startswith("bundle_refused: node zhen")
    assert count(town) == 6


def test_a_parent_that_lost_what_it_sent_down_sends_nothing_more(pair):
    """Restored from a backup, the parent would number new events with link numbers the
    child has applied already, and the child would drop them as duplicates. The child's
    acknowledgement shows it: the parent refuses to go on, and both sides say why."""
    town, village = pair
    refer_down(town)
    assert session.run(village, Loopback(town)).received == 3
    with store.write(town.db):  # the parent's state before it sent anything
        town.db.conn.execute("UPDATE links SET next_out = 1, acked = 0, scanned_lsn = 0 "
                             "WHERE peer = 'cun'")
        town.db.conn.execute("DELETE FROM outbox")
    with pytest.raises(EnvelopeError) as refused:
        session.run(village, Loopback(town))
    assert refused.value.reason == "ahead" and "(0)" in refused.value.english()
    assert outbox.link(town.db, "cun")["next_out"] == 1  # nothing numbered, nothing sent
    assert outbox.link(village.db, "zhen")["last_error"].startswith("bundle_refused: node cun")


def test_referral_down_carries_the_case_history(pair):
    town, village = pair
    cid = refer_down(town)
    with store.write(town.db):
        other = cases.register(town, HANDLER, case_fields(summary="与该村无关")).subject
    summary = session.run(village, Loopback(town))
    assert summary.received == 3
    assert cases.get(village, cid)["holder"] == "cun"
    assert count(village, "cases") == 1 and other not in event_ids(village)
    with store.write(village.db):
        cases.act(village, LIAISON, cid, "sign", {})
    session.run(village, Loopback(town))
    assert cases.get(town, cid)["handover"] == "signed"
    assert cases.get(village, cid) | {"updated_at": 0} == cases.get(town, cid) | {
        "updated_at": 0}


def test_events_never_echo_back_to_where_they_came_from(pair):
    town, village = pair
    register_many(village, 2)
    session.run(village, Loopback(town))
    with store.write(town.db):
        outbox.queue(town, "cun")
    assert outbox.backlog(town, "cun")[0] == 0


def test_too_large_halves_the_batch_until_it_fits(pair):
    town, village = pair
    register_many(village, 20)
    one = len(envelope.seal([{"x": "低保" * 300}], sender="cun", recipient="zhen", first=1,
                            sender_key=village.signer, recipient_key=town.enc_key.public_key()))
    summary = session.run(village, Loopback(town, max_bytes=one * 6))
    assert summary.sent == 40 and event_ids(town) == event_ids(village)
    assert outbox.link(village.db, "zhen")["batch"] < outbox.BATCH


def test_bundles_stop_at_their_byte_budget_and_the_rest_follows(pair, monkeypatch):
    """A run of large events makes smaller bundles (outbox.BUNDLE_BYTES), never one the
    parent must refuse for what it expands to; a bundle still carries at least one."""
    town, village = pair
    register_many(village, 5)
    with store.write(village.db):
        outbox.queue(village, "zhen")
    _, wires = outbox.pending(village, "zhen", 100)
    assert len(wires) == 10
    budget = sum(len(w) + 1 for w in wires[:3])  # any 4 in a row take more
    monkeypatch.setattr(outbox, "BUNDLE_BYTES", budget)
    assert outbox.pending(village, "zhen", 100)[1] == wires[:3]
    monkeypatch.setattr(outbox, "BUNDLE_BYTES", 1)
    assert outbox.pending(village, "zhen", 100)[1] == wires[:1]
    monkeypatch.setattr(outbox, "BUNDLE_BYTES", budget)
    summary = session.run(village, Loopback(town))
    assert summary.sent == 10 and summary.bundles_out >= 4
    assert event_ids(town) == event_ids(village)


def test_a_failed_session_records_the_error_and_the_next_one_resumes(pair):
    town, village = pair
    register_many(village, 3)
    with pytest.raises(ConnectionError):
        session.run(village, Flaky(town, ["after"]))
    row = outbox.link(village.db, "zhen")
    assert row["last_error"].startswith("network") and row["errors"] == 1
    assert count(town) == 6 and row["acked"] == 0  # applied there, but the ack was lost
    session.run(village, Loopback(town))
    assert count(town) == 6 and outbox.link(village.db, "zhen")["acked"] == 6
    assert outbox.link(village.db, "zhen")["last_error"] is None


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.sampled_from([None, None, "before", "after"]), max_size=12),
       down=st.booleans())
def test_any_pattern_of_dropped_requests_converges_exactly_once(make_node, plan, down):
    town = make_node("town")
    village = make_node("village", parent=town)
    register_many(village, 4)
    if down:
        with store.write(town.db):
            cid = cases.register(town, HANDLER, case_fields()).subject
            cases.act(town, HANDLER, cid, "refer", {"to": village.id, "instruction": "核实",
                                                   "deadline": "2026-12-10"})
    transport = Flaky(town, plan)
    for _ in range(len(plan) + 2):
        try:
            session.run(village, transport)
            break
        except ConnectionError:
            continue
    session.run(village, Loopback(town))  # the link is good again
    assert event_ids(town) == event_ids(village)
    for node in (town, village):
        assert count(node, "inbox") == 0
    assert outbox.link(village.db, town.id)["acked"] == 8
    assert dump(town)["cases"] and {c["id"] for c in dump(village)["cases"]} == {
        c["id"] for c in dump(town)["cases"]}


def test_a_stranger_cannot_push(pair, make_node):
    town, village = pair
    stranger = make_node("village", "stranger")
    data = envelope.seal([{"x": 1}], sender="stranger", recipient="zhen", first=1,
                         sender_key=stranger.signer, recipient_key=town.enc_key.public_key())
    with pytest.raises(EnvelopeError) as info:
        session.serve_push(town, data)
    assert info.value.reason == "unknown_sender" and count(town) == 0


def test_queue_scans_only_what_is_new(pair):
    town, village = pair
    register_many(village, 3)
    with store.write(village.db):
        assert outbox.queue(village, "zhen") == 6
        assert outbox.queue(village, "zhen") == 0
    assert outbox.link(village.db, "zhen")["scanned_lsn"] == 6
