"""The event log: local append, remote receive and its refusals, the inbox, rebuild."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import HANDLER, LEADER, LIAISON, case_fields, deliver, pin
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node import cases, events, log, store, warnings
from node.errors import EventRefused, IllegalTransition


def dump(node) -> dict:
    """Every derived row, for comparing two nodes or before/after."""
    tables = {"cases": "id", "petitioners": "case_id, idx", "supervision_orders": "case_id, id",
              "warnings": "id", "warning_acks": "warning_id, node_id",
              "warning_receipts": "warning_id, node_id", "warning_alarms": "warning_id, node_id"}
    out = {}
    for table, order in tables.items():
        cur = node.db.conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
        cols = [c[0] for c in cur.description]
        out[table] = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    return out


def count(node, table="events") -> int:
    return node.db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def register(node, actor=LIAISON, **fields):
    with store.write(node.db):
        return cases.register(node, actor, case_fields(**fields))


def act(node, case_id, action, actor=LIAISON, **fields):
    with store.write(node.db):
        return cases.act(node, actor, case_id, action, fields)


def test_local_events_are_numbered_signed_and_chained(village):
    first = register(village)
    second = act(village, first.subject, "note", text="已上门了解情况")
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev == (first.id,)
    public = village.signer.public_key()
    assert events.verify(log.get_event(village.db, second.id), public)


def test_receive_applies_once_and_duplicates_are_no_ops(chain):
    city, town, area, village = chain
    ev = register(village)
    assert deliver(village, area) == ["applied"]
    before = dump(area)
    assert deliver(village, area) == ["duplicate"]
    assert dump(area) == before
    assert count(area) == 1
    assert ev.subject in [c["id"] for c in cases.listing(area)]


def test_event_waits_in_inbox_until_its_dependency_arrives(chain):
    city, town, area, village = chain
    first = register(village)
    second = act(village, first.subject, "note", text="补充材料")
    third = act(village, first.subject, "note", text="再补充")
    for ev in (third, second):
        with store.write(area.db):
            assert log.receive(area, log.get_event(village.db, ev.id)) == "waiting"
    assert count(area) == 0 and count(area, "inbox") == 2
    with store.write(area.db):
        assert log.receive(area, log.get_event(village.db, first.id)) == "applied"
    assert count(area) == 3 and count(area, "inbox") == 0
    assert cases.get(area, first.subject)["event_count"] == 3


def forge(node_key, **overrides):
    fields = dict(origin="cun", seq=99, ts="2026-11-23T02:00:00Z", actor="liu", role="liaison",
                  type="case.registered", subject="C-cun-2026-0099", prev=(),
                  body=cases.RULES["register"].clean(case_fields(query_code="ABCDEFGH")))
    fields.update(overrides)
    return events.sign(node_key, **fields)


def assert_refused(node, event, code_fragment):
    before, refusals = dump(node), count(node, "refusals")
    with pytest.raises(EventRefused) as info, store.write(node.db):
        log.receive(node, event)
    assert code_fragment in str(info.value)
    assert dump(node) == before and count(node) == 0 and count(node, "inbox") == 0
    with store.write(node.db):
        log.record_refusal(node, event.origin, event.seq, info.value)
    assert count(node, "refusals") == refusals + 1


def test_bad_signature_is_refused_and_changes_nothing(chain):
    city, town, area, village = chain
    assert_refused(area, forge(Ed25519PrivateKey.generate()), "signature")


@pytest.mark.parametrize("forged_at", [(), (0,), (7,), (3, 40, 79)])
def test_a_forgery_in_a_large_run_undoes_only_itself(chain, forged_at):
    """A run is folded and stored while its signatures are checked on the other cores; a
    forgery found then undoes the pass, and the run is applied again without it."""
    city, town, area, village = chain
    evs = []
    for n in range(40):  # 80 events: more than the verifier checks inline
        registered = register(village, summary=f"第{n}件")
        evs += [registered, act(village, registered.subject, "note", text="已走访")]
    sent = [dataclasses.replace(e, sig=bytes(64)) if i in forged_at else e
            for i, e in enumerate(evs)]
    with store.write(area.db):
        outcomes = log.receive_many(area, sent)
    for i, outcome in enumerate(outcomes):
        if i in forged_at:
            assert isinstance(outcome, EventRefused) and "signature" in outcome.english()
        elif i - 1 in forged_at and i % 2:  # its note builds on a refused registration
            assert outcome == "waiting"
        else:
            assert outcome == "applied", (i, outcome)
    registrations = [i for i in forged_at if i % 2 == 0]  # a forged note loses itself alone
    assert count(area) == 80 - len(forged_at) - len(registrations)
    assert count(area, "cases") == 40 - len(registrations)
    assert count(area, "inbox") == len(registrations)
    for i in forged_at:
        assert log.get_event(area.db, evs[i].id) is None


@pytest.mark.parametrize("together", [True, False])
def test_an_event_built_on_another_subjects_event_is_refused(chain, together):
    """Signed by its origin, but ``prev`` names an event of another case: it can never be
    folded, so it is refused (arriving with that event or after it), and nothing breaks."""
    city, town, area, village = chain
    first = forge(village.signer, seq=1, subject="C-cun-2026-0001")
    stray = forge(village.signer, seq=2, subject="C-cun-2026-0002", type="case.note",
                  prev=(first.id,), body={"text": "挂错了案件"})
    if not together:
        with store.write(area.db):
            assert log.receive(area, first) == "applied"
    with store.write(area.db):
        outcomes = log.receive_many(area, [first, stray] if together else [stray])
    assert isinstance(outcomes[-1], EventRefused) and "another" in outcomes[-1].english()
    assert count(area) == 1 and count(area, "cases") == 1 and count(area, "inbox") == 0


def test_an_event_with_no_canonical_form_is_refused_alone(chain):
    """A lone surrogate parses from JSON ("\\ud800") but has no UTF-8 form, so the
    event can have no signing bytes: it is refused, and the rest of the run applied."""
    city, town, area, village = chain
    good = [register(village, summary=f"第{n}件") for n in range(3)]
    bad = dataclasses.replace(good[1], seq=99, body={**good[1].body, "summary": "\ud800"})
    with store.write(area.db):
        outcomes = log.receive_many(area, [good[0], bad, good[1], good[2]])
    assert outcomes[0] == outcomes[2] == outcomes[3] == "applied"
    assert isinstance(outcomes[1], EventRefused) and "malformed" in outcomes[1].english()
    assert count(area) == 3


def test_tampered_body_is_refused(chain):
    city, town, area, village = chain
    good = forge(village.signer)
    tampered = dataclasses.replace(good, body={**good.body, "summary": "改了"})
    assert_refused(area, tampered, "signature")


def test_unknown_origin_is_refused(chain, make_node):
    city, town, area, village = chain
    stranger = make_node("village", "stranger")
    assert_refused(area, forge(stranger.signer, origin="stranger"), "unknown node")


def test_revoked_origin_is_refused(chain):
    city, town, area, village = chain
    with store.write(area.db):
        area.db.conn.execute("UPDATE nodes SET status = 'revoked' WHERE node_id = 'cun'")
    assert_refused(area, forge(village.signer), "revoked")


def test_invalid_body_is_refused(chain):
    city, town, area, village = chain
    bad = forge(village.signer, body={"category": "dibao", "summary": "x",
                                      "petitioners": [{"name": "<script>x</script>"}]})
    assert_refused(area, bad, "invalid body")


def test_action_illegal_in_its_own_past_is_refused(chain):
    city, town, area, village = chain
    ev = register(village)
    deliver(village, area)
    # A village signing an acceptance (a town's decision) is refused wherever it arrives.
    bad = events.sign(village.signer, origin="cun", seq=50, ts="2026-11-23T03:00:00Z",
                      actor="wang", role="handler", type="case.accepted", subject=ev.subject,
                      prev=(ev.id,), body={})
    before = dump(area)
    with pytest.raises(EventRefused, match="not allowed"), store.write(area.db):
        log.receive(area, bad)
    assert dump(area) == before


def test_two_different_events_under_one_number_are_refused(chain):
    city, town, area, village = chain
    ev = register(village)
    deliver(village, area)
    fields = {f.name: getattr(ev, f.name) for f in dataclasses.fields(ev)}
    twin = events.sign(village.signer, **fields | {"ts": "2026-11-23T09:09:09Z", "sig": b"",
                                                   "prev": ()})
    with pytest.raises(EventRefused, match="conflicts"), store.write(area.db):
        log.receive(area, twin)


def test_local_illegal_action_rolls_back_seq_and_rows(village):
    ev = register(village)
    before = dump(village)
    with pytest.raises(IllegalTransition):
        act(village, ev.subject, "followup", actor=LIAISON, rating="satisfied")
    assert dump(village) == before
    assert act(village, ev.subject, "note", text="x").seq == 2  # no number was used up


def test_rebuild_gives_exactly_the_same_rows(chain, clock):
    city, town, area, village = chain
    ev = register(village)
    act(village, ev.subject, "escalate", reason="村内无法解决")
    deliver(village, area)
    act(area, ev.subject, "escalate", actor=HANDLER, reason="需镇里协调")
    deliver(area, town)
    act(town, ev.subject, "accept", actor=HANDLER)
    act(town, ev.subject, "assign", actor=LEADER, assignee="王办理", lead_leader="赵领导")
    clock.advance(days=3)
    act(town, ev.subject, "reply", actor=HANDLER, decision="support", reply="已补发低保金")
    other = register(village, category="funeral", summary="公墓收费")
    act(village, other.subject, "settle", reply="已当场解释收费依据")
    with store.write(village.db):
        w = warnings.raise_warning(village, LIAISON, {
            "subject": "征地补偿款分配", "place": "村委会", "expected_size": 30,
            "destination": "city", "expected_date": "2026-12-01"})
        warnings.act(village, LIAISON, w.subject, "handle", {"measures": "村干部上门劝导"})
    for node in chain:
        before = dump(node)
        assert before["cases"] or before["warnings"] or node is city
        with store.write(node.db):
            log.rebuild(node)
        assert dump(node) == before, node.id


def test_rebuild_recovers_rows_deleted_by_hand(village):
    ev = register(village)
    before = dump(village)
    with store.write(village.db):
        village.db.conn.execute("DELETE FROM cases")
    with store.write(village.db):
        counts = log.rebuild(village)
    assert counts == {"cases": 1, "warnings": 0, "membership": 0, "figures": 0,
                      "supervision requests": 0}
    assert dump(village) == before
    assert json.loads(cases.get(village, ev.subject)["heads"]) == [ev.id]


def test_heads_and_causal_order_are_deterministic(chain):
    city, town, area, village = chain
    ev = register(village)
    up = act(village, ev.subject, "escalate", reason="需片区协调")
    deliver(village, area)
    a = act(village, ev.subject, "note", text="村里备注")
    pin(area, village)
    b = act(area, ev.subject, "note", actor=HANDLER, text="片区已受理协调")
    evs = [log.get_event(village.db, ev.id), log.get_event(village.db, up.id),
           log.get_event(village.db, a.id), log.get_event(area.db, b.id)]
    orders = {tuple(e.id for e, _ in log.causal_order(p))
              for p in (evs, evs[::-1], [evs[2], evs[3], evs[0], evs[1]])}
    assert len(orders) == 1
    assert log.heads(evs) == tuple(sorted((a.id, b.id)))


@pytest.mark.parametrize("subject", ["Z-zhen-2026-0001", "C-zhen-2026-0001", "C-cun-2026",
                                     "C-cun-abcd-0001"])
def test_a_node_cannot_number_another_nodes_case(chain, subject):
    city, town, area, village = chain
    assert_refused(area, forge(village.signer, subject=subject), "does not belong")


def test_a_node_cannot_number_another_nodes_warning(chain):
    city, town, area, village = chain
    body = warnings.RULES["raise"].clean({"subject": "x", "place": "y", "expected_size": 3})
    ev = forge(village.signer, type="warning.raised", subject="YJ-zhen-2026-0001", body=body)
    assert_refused(area, ev, "does not belong")
