"""The same-day chain of a warning (issue 5, item 3): receipts, acknowledgements, alarms.

Four in-process tiers (city shi <- town zhen <- area pian <- village cun) sync
with test_routing's ``settle``. Time is the shared test clock, moved by hand;
the alarm job is ``jobs.check_warnings``, called directly.
"""

from __future__ import annotations

import pytest
from conftest import HANDLER, LIAISON, build_chain
from test_log import dump
from test_routing import events_of, settle
from test_web import Web, text

from node import events, log, store, warnings
from node.errors import NodeError
from node.sync import jobs

LOW = {"subject": "低保评议不公开", "place": "东山村二组", "expected_size": 8}     # 一般
HIGH = {"subject": "征地补偿款分配", "place": "东山村一组", "expected_size": 60}   # 较大


def raise_warning(node, **fields) -> str:
    with store.write(node.db):
        return warnings.raise_warning(node, LIAISON, fields).subject


def acknowledge(node, warning_id: str) -> None:
    with store.write(node.db):
        warnings.act(node, HANDLER, warning_id, "acknowledge", {"note": "已知悉"})


def of_type(node, warning_id: str, type_: str) -> list[str]:
    return [r[0] for r in node.db.conn.execute(
        "SELECT origin FROM events WHERE subject = ? AND type = ? ORDER BY origin",
        (warning_id, type_))]


def check_all(chain) -> dict[str, dict]:
    return {node.id: jobs.check_warnings(node) for node in chain}


def chain_rows(node, warning_id: str) -> list[tuple]:
    return [(c["node_id"], c["received_at"], c["acknowledged_at"], c["alarmed_at"])
            for c in warnings.chain(node, warning_id)]


def test_each_level_records_its_receipt_once_and_the_whole_path_sees_it(chain, clock):
    city, town, area, village = chain
    warning_id = raise_warning(village, **HIGH)
    settle(chain)
    assert of_type(city, warning_id, warnings.RECEIVED) == ["pian", "shi", "zhen"]
    for node in chain:  # the same receipts, signed by each receiver, at every level
        assert events_of(node, warning_id) == events_of(village, warning_id), node.id
        assert {r["node_id"]: r["at"] for r in warnings.receipts(node, warning_id)} == {
            "pian": "2026-11-23 10:00", "zhen": "2026-11-23 10:00", "shi": "2026-11-23 10:00"}
        receipt = log.get_event(node.db, next(f"{o}:{s}" for o, s in events_of(
            node, warning_id) if o == "zhen"))
        assert (receipt.type, receipt.actor) == (warnings.RECEIVED, log.SYSTEM.username)
    # idempotent: syncing and the job again add nothing; the origin never receives its own
    clock.advance(minutes=5)
    assert check_all(chain) == {n.id: {"received": [], "alarmed": []} for n in chain}
    settle(chain)
    assert len(of_type(village, warning_id, warnings.RECEIVED)) == 3
    assert [c["node_id"] for c in warnings.chain(village, warning_id)] == [
        "cun", "pian", "zhen", "shi"]


def test_the_fold_refuses_receipts_and_alarms_that_do_not_belong(chain):
    city, town, area, village = chain
    warning_id = raise_warning(village, **HIGH)
    settle(chain)
    system = log.SYSTEM
    refused = [
        (village, system, warnings.RECEIVED, {}),                  # the origin
        (town, system, warnings.RECEIVED, {}),                     # a second receipt
        (town, HANDLER, warnings.RECEIVED, {}),                    # a person
        (town, system, warnings.ALARMED, {"node": "pian", "hours": 2}),  # someone else's
    ]
    for node, actor, type_, body in refused:
        with pytest.raises(NodeError), store.write(node.db):
            log.append(node, actor, type_, warning_id, body)
    acknowledge(town, warning_id)
    with pytest.raises(NodeError), store.write(town.db):  # acknowledged: no alarm
        log.append(town, system, warnings.ALARMED, warning_id, {"node": "zhen", "hours": 2})
    with pytest.raises(NodeError):  # people cannot post the automatic actions
        warnings.act(town, HANDLER, warning_id, "receive", {})


def test_a_town_that_does_not_acknowledge_alarms_the_city_even_for_a_low_warning(chain, clock):
    city, town, area, village = chain
    warning_id = raise_warning(village, **LOW)
    settle(chain)
    assert events_of(city, warning_id) == []  # 一般: it stops at the town
    acknowledge(area, warning_id)
    settle(chain)
    clock.advance(hours=1, minutes=59)
    assert check_all(chain)["zhen"]["alarmed"] == []
    town_row = next(c for c in warnings.chain(town, warning_id) if c["node_id"] == "zhen")
    assert (town_row["ack_due"], town_row["late"]) == ("2026-11-23 12:00", False)
    clock.advance(minutes=1)
    assert {n: done["alarmed"] for n, done in check_all(chain).items()} == {
        "shi": [], "zhen": [warning_id], "pian": [], "cun": []}
    settle(chain)
    # the city now has the warning, its whole history, and the alarm naming the town
    assert events_of(city, warning_id) == events_of(village, warning_id)
    assert [(a["node_id"], a["hours"], a["at"]) for a in warnings.alarms(city, warning_id)] == [
        ("zhen", 2, "2026-11-23 12:00")]
    assert [(w["id"], w["late_node"]) for w in warnings.alarms_below(city)] == [
        (warning_id, "zhen")]
    assert warnings.alarms_below(town) == []  # the town's own lapse goes up, not to itself
    for node in chain:  # the same chain at every level
        assert chain_rows(node, warning_id) == [
            ("cun", None, None, None),
            ("pian", "2026-11-23 10:00", "2026-11-23 10:00", None),
            ("zhen", "2026-11-23 10:00", None, "2026-11-23 12:00"),
            ("shi", "2026-11-23 12:00", None, None)], node.id
    # once: later checks raise no second alarm, and the city, at the top, raises none
    clock.advance(hours=5)
    assert all(not done["alarmed"] for done in check_all(chain).values())
    settle(chain)
    assert of_type(city, warning_id, warnings.ALARMED) == ["zhen"]
    # the town acknowledges late: the alarm stays in the chain, and leaves the city's to-do
    acknowledge(town, warning_id)
    settle(chain)
    assert warnings.alarms_below(city) == []
    assert warnings.alarms(village, warning_id)[0]["node_id"] == "zhen"


def test_an_acknowledged_warning_raises_no_alarm(chain, clock):
    city, town, area, village = chain
    warning_id = raise_warning(village, **HIGH)
    settle(chain)
    clock.advance(hours=1)
    for node in (area, town, city):
        acknowledge(node, warning_id)
    clock.advance(hours=3)
    assert all(not done["alarmed"] for done in check_all(chain).values())
    settle(chain)
    assert of_type(city, warning_id, warnings.ALARMED) == []
    assert all(not c["late"] for c in warnings.chain(city, warning_id))


def test_a_closed_warning_raises_no_alarm_and_the_setting_moves_the_time(make_node, clock):
    chain = build_chain(make_node, **{tier: {"WARNING_ACK_HOURS": 4}
                                      for tier in ("city", "town", "area", "village")})
    city, town, area, village = chain
    closed, still_open = raise_warning(village, **LOW), raise_warning(village, **LOW)
    settle(chain)
    with store.write(town.db):
        warnings.act(town, HANDLER, closed, "defuse", {"note": "已化解"})
    settle(chain)
    clock.advance(hours=3)
    assert check_all(chain)["zhen"]["alarmed"] == []
    clock.advance(hours=1)
    assert check_all(chain)["zhen"]["alarmed"] == [still_open]
    assert warnings.alarms(town, still_open)[0]["hours"] == 4


def test_rebuild_gives_the_same_chain(chain, clock):
    city, town, area, village = chain
    warning_id = raise_warning(village, **LOW)
    settle(chain)
    acknowledge(area, warning_id)
    clock.advance(hours=2)
    check_all(chain)
    settle(chain)
    for node in chain:
        before = dump(node)
        assert before["warning_receipts"] and before["warning_alarms"], node.id
        with store.write(node.db):
            log.rebuild(node)
        assert dump(node) == before, node.id


def test_receipts_missed_on_arrival_are_recorded_by_the_job(chain):
    """A warning that arrived other than in a bundle (here: straight into the log, as an
    upgraded node holds warnings from before receipts) gets its receipt from the job."""
    city, town, area, village = chain
    warning_id = raise_warning(village, **LOW)
    raised = log.get_event(village.db, f"cun:{events_of(village, warning_id)[0][1]}")
    with store.write(area.db):
        assert log.receive(area, events.from_json(events.to_json(raised))) == "applied"
    assert warnings.receipts(area, warning_id) == []
    assert jobs.check_warnings(area) == {"received": [warning_id], "alarmed": []}
    assert jobs.check_warnings(area) == {"received": [], "alarmed": []}


def test_the_pages_show_the_chain_and_the_alarm(chain, clock):
    city, town, area, village = chain
    warning_id = raise_warning(village, **LOW)
    settle(chain)
    acknowledge(area, warning_id)
    clock.advance(hours=2, minutes=30)
    check_all(chain)
    settle(chain)
    w = Web(city, clock)
    w.login("wang")
    page = text(w.get(f"/warnings/{warning_id}"))
    assert 'id="chain-zhen"' in page and 'id="chain-pian"' in page
    town_row = page.split('id="chain-zhen"')[1].split("</tr>")[0]
    assert "2026-11-23 10:00" in town_row and "2026-11-23 12:30" in town_row
    assert "超时未签收告警" in page  # the alarm in the timeline, labelled
    late = "zhen 名称在 2 小时内未签收"
    assert warning_id in text(w.get("/city")) and late in text(w.get("/city"))
    inbox = text(w.get("/inbox"))
    assert warning_id in inbox and late in inbox
    api = w.client.get(f"/api/warnings/{warning_id}").get_json()
    assert [(c["node_id"], c["alarmed_at"]) for c in api["chain"]] == [
        ("cun", None), ("pian", None), ("zhen", "2026-11-23 12:30"), ("shi", None)]
    assert [a["id"] for a in w.client.get("/api/inbox").get_json()["alarms"]] == [warning_id]
    # the town's own page: its row overdue before it acknowledges
    t = Web(town, clock)
    t.login("wang")
    row = text(t.get(f"/warnings/{warning_id}")).split('id="chain-zhen"')[1].split("</tr>")[0]
    assert 'class="overdue"' in row
