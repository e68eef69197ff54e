"""The routing policy across four tiers (node.sync.policy), over in-process sessions.

city shi <- town zhen <- area pian <- village cun. Each link syncs as it would
over HTTP (session.run with a loopback transport); `settle` runs the links up
and then down until nothing moves.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import HANDLER, LIAISON, case_fields
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from test_session import Loopback

from node import cases, events, log, store, warnings
from node.errors import IllegalTransition, NodeError, NotAllowed
from node.sync import outbox, policy, session


def settle(chain) -> None:
    """Sync every link, bottom-up then top-down, until a round moves nothing."""
    city, town, area, village = chain
    links = [(village, area), (area, town), (town, city)]
    for _ in range(6):
        moved = 0
        for child, parent in links + links[::-1]:
            summary = session.run(child, Loopback(parent))
            moved += summary.sent + summary.received
        if not moved:
            return
    raise AssertionError("the network did not settle")


def events_of(node, subject: str) -> list[tuple[str, int]]:
    return node.db.conn.execute("SELECT origin, seq FROM events WHERE subject = ? "
                                "ORDER BY origin, seq", (subject,)).fetchall()


def register(node, actor=LIAISON, **fields) -> str:
    with store.write(node.db):
        return cases.register(node, actor, case_fields(**fields)).subject


def act(node, case_id, action, actor=HANDLER, **fields):
    with store.write(node.db):
        return cases.act(node, actor, case_id, action, fields)


def test_a_case_the_village_keeps_never_leaves_it(chain):
    city, town, area, village = chain
    kept = register(village)
    act(village, kept, "note", actor=LIAISON, text="村里调解")
    settle(chain)
    for node in (area, town, city):
        assert events_of(node, kept) == [], node.id
        assert node.db.conn.execute("SELECT count(*) FROM petitioners").fetchone()[0] == 0


def test_an_escalated_case_climbs_with_its_history_and_signatures(chain):
    city, town, area, village = chain
    case_id = register(village)
    act(village, case_id, "escalate", actor=LIAISON, to="pian", reason="村里解决不了")
    settle(chain)
    assert cases.get(area, case_id)["holder"] == "pian"
    assert events_of(town, case_id) == [] and events_of(city, case_id) == []
    act(area, case_id, "escalate", to="zhen", reason="需镇协调")
    settle(chain)
    assert cases.get(town, case_id)["holder"] == "zhen" and events_of(city, case_id) == []
    act(town, case_id, "escalate", to="shi", reason="需市局协调")
    settle(chain)
    at_city = cases.get(city, case_id)
    assert at_city["holder"] == "shi" and at_city["summary"] == case_fields()["summary"]
    history = events_of(city, case_id)
    assert history == events_of(village, case_id) and len(history) == 4
    for origin, seq in history:  # every origin signature still verifies at the top
        event = log.get_event(city.db, f"{origin}:{seq}")
        key = city.db.conn.execute("SELECT sign_pub FROM nodes WHERE node_id = ?",
                                   (origin,)).fetchone()[0]
        assert events.verify(event, Ed25519PublicKey.from_public_bytes(bytes(key)))
    # the city decides; the village that registered it sees the outcome
    act(city, case_id, "accept")
    settle(chain)
    assert cases.get(village, case_id)["state"] == "accepted"


def test_a_city_referral_reaches_the_village_and_the_sign_off_comes_back(chain, clock):
    city, town, area, village = chain
    case_id = register(city, actor=HANDLER, summary="市局来信转办")
    deadline = (clock().date() + timedelta(days=20)).isoformat()
    act(city, case_id, "refer", to="zhen", instruction="请镇里核实", deadline=deadline)
    settle(chain)
    act(town, case_id, "sign")
    act(town, case_id, "refer", to="pian", instruction="请片区核实", deadline=deadline)
    settle(chain)
    act(area, case_id, "sign")
    act(area, case_id, "refer", to="cun", instruction="请村里核实", deadline=deadline)
    settle(chain)
    assert cases.get(village, case_id)["handover"] == "pending"
    act(village, case_id, "sign", actor=LIAISON)
    settle(chain)
    for node in chain:  # the same record everywhere on the path, sign-off included
        case = cases.get(node, case_id)
        assert (case["holder"], case["handover"]) == ("cun", "signed"), node.id
        assert events_of(node, case_id) == events_of(city, case_id)


@pytest.mark.parametrize("fields,reaches_city", [
    ({"expected_size": 30}, False),                                      # 一般: stops at town
    ({"expected_size": 60}, True),                                       # 较大
    ({"expected_size": 60, "beijing_risk": True, "destination": "beijing"}, True),  # 重大
])
def test_warnings_go_to_the_town_and_on_to_the_city_by_risk(chain, fields, reaches_city):
    city, town, area, village = chain
    with store.write(village.db):
        warning_id = warnings.raise_warning(village, LIAISON, {
            "subject": "征地补偿款分配", "place": "东山村", **fields}).subject
    settle(chain)
    assert events_of(town, warning_id) and events_of(area, warning_id)
    assert bool(events_of(city, warning_id)) == reaches_city
    with store.write(town.db):  # the town acknowledges; the chain below sees it
        warnings.act(town, HANDLER, warning_id, "acknowledge", {"note": "已知悉"})
    settle(chain)
    assert [a["node_id"] for a in warnings.acks(village, warning_id)] == ["zhen"]


def test_a_low_warning_escalated_by_the_town_goes_on_to_the_city(chain):
    city, town, area, village = chain
    with store.write(village.db):
        warning_id = warnings.raise_warning(village, LIAISON, {
            "subject": "低保评议", "place": "东山村", "expected_size": 8}).subject
    settle(chain)
    assert events_of(city, warning_id) == []
    with store.write(town.db):
        warnings.act(town, HANDLER, warning_id, "escalate", {"note": "情况有变化"})
    settle(chain)
    # the whole history: raised, the area's and the town's receipts, escalated; and the
    # city's own receipt
    assert events_of(city, warning_id) == [("cun", 1), ("pian", 1), ("shi", 1), ("zhen", 1),
                                           ("zhen", 2)]
    assert {r["node_id"] for r in warnings.receipts(city, warning_id)} == {"pian", "zhen", "shi"}


def test_a_report_against_a_unit_never_reaches_that_unit(chain):
    """Art. 30: the town's official is reported at the area; the town never sees the case,
    neither handed to it nor relayed through it."""
    city, town, area, village = chain
    case_id = register(area, actor=HANDLER, nature="accusation", accused_unit="zhen",
                       summary="反映镇干部截留低保金")
    act(area, case_id, "note", text="已核实部分情况")
    settle(chain)
    assert events_of(town, case_id) == [] and events_of(city, case_id) == []
    with pytest.raises(NotAllowed, match="Art. 30"):
        act(area, case_id, "escalate", to="zhen", reason="需镇协调")
    assert events_of(town, case_id) == []


def test_routing_reads_the_accused_unit_of_every_registration_that_names_one(chain):
    city, town, area, village = chain
    accused = register(area, actor=HANDLER, nature="accusation", accused_unit="zhen",
                       summary="反映镇干部截留低保金")
    plain = register(area, actor=HANDLER, summary="低保评议不公开")
    router = policy.Router.for_peer(area, "zhen")
    assert [e[2] for e in router._subject_events(accused)] == ["zhen"]
    assert [e[2] for e in router._subject_events(plain)] == [None]


def test_the_circle_leaves_out_the_accused_unit_even_as_a_relay(chain):
    city, town, area, village = chain
    case_id = register(city, actor=HANDLER, nature="accusation", accused_unit="pian",
                       summary="反映片区干部问题")
    deadline = "2099-12-31"
    act(city, case_id, "refer", to="zhen", instruction="请镇里核实", deadline=deadline)
    settle(chain)
    assert events_of(town, case_id) and events_of(area, case_id) == []
    with pytest.raises(NotAllowed, match="Art. 30"):
        act(town, case_id, "refer", to="pian", instruction="请片区核实", deadline=deadline)


def test_an_urge_from_above_is_acknowledged_once_and_the_urger_sees_it(chain, clock):
    city, town, area, village = chain
    case_id = register(town, actor=HANDLER, summary="镇登记，交村核实")
    act(town, case_id, "refer", to="pian", instruction="请片区核实", deadline="2099-12-31")
    settle(chain)
    act(area, case_id, "sign")
    act(town, case_id, "urge", message="请加快办理")
    settle(chain)
    urge = [e for e in log.subject_events(area.db, case_id) if e.type == "case.urged"][0]
    with pytest.raises(IllegalTransition, match="no urge"):
        act(area, case_id, "urge_ack", urge="zhen:999")
    act(area, case_id, "urge_ack", urge=urge.id, note="已收到，正在办理")
    with pytest.raises(IllegalTransition, match="already acknowledged"):
        act(area, case_id, "urge_ack", urge=urge.id)
    settle(chain)
    assert [e.body["urge"] for e in log.subject_events(town.db, case_id)
            if e.type == "case.urge_acknowledged"] == [urge.id]


def test_status_counts_what_waits_for_a_neighbour_before_any_session(chain, monkeypatch):
    """A child that has not dialled for days still shows, at its parent, what waits for it;
    what the policy keeps here never counts as waiting."""
    from node.sync import status
    city, town, area, village = chain
    case_id = register(town)
    register(town)  # the town keeps this one
    act(town, case_id, "refer", to="pian", instruction="请片区核实", deadline="2099-12-31")
    changes = town.db.conn.total_changes
    links = {link["peer"]: link for link in status.links(town)}
    assert links["pian"]["backlog_events"] == 2  # the case and its referral, not the other
    assert not links["pian"]["backlog_at_least"]
    assert links["shi"]["backlog_events"] == 0 and status.summary(town)["waiting"] == 0
    assert town.db.conn.total_changes == changes  # reading status writes nothing
    # a new link's look at a long log stops at the scan budget, and says the count is a floor
    monkeypatch.setattr(outbox, "SCAN_BUDGET", 2)  # (of the three new events)
    first = {link["peer"]: link for link in status.links(town)}["pian"]
    assert first["backlog_at_least"] and 0 < first["backlog_events"] <= 2
    monkeypatch.setattr(outbox, "SCAN_BUDGET", 3)  # a budget that ends with the log: whole
    exact = {link["peer"]: link for link in status.links(town)}["pian"]
    assert not exact["backlog_at_least"] and exact["backlog_events"] == 2
    monkeypatch.undo()
    with store.write(town.db):  # a revoked child shows only what was numbered for it
        town.db.conn.execute("UPDATE nodes SET status = 'revoked' WHERE node_id = 'pian'")
    assert "pian" not in {link["peer"] for link in status.links(town)}
    with store.write(town.db):
        town.db.conn.execute("UPDATE nodes SET status = 'active' WHERE node_id = 'pian'")
    session.run(area, Loopback(town))
    assert {link["peer"]: link for link in status.links(town)}["pian"]["backlog_events"] == 0
    assert cases.get(area, case_id)["holder"] == "pian"


class _Undo(Exception):
    pass


@pytest.mark.parametrize("limit", [1, 3, 7, 200])
def test_numbering_a_bundle_at_a_time_gives_the_same_link_order(chain, limit):
    """A session numbers events for its link a bundle's worth at a time (outbox.queue with
    a limit); the link's order is the same as numbering everything at once."""
    from node.sync import outbox
    city, town, area, village = chain
    for n in range(6):
        case_id = register(village, summary=f"第{n}件")
        act(village, case_id, "note", actor=LIAISON, text="先在村里调解")  # history, kept here
        if n % 2 == 0:  # escalated: the case goes up with its history
            act(village, case_id, "escalate", actor=LIAISON, to="pian", reason="村里解决不了")

    def link_order() -> list[int]:
        return [r[0] for r in village.db.conn.execute(
            "SELECT lsn FROM outbox WHERE peer = 'pian' ORDER BY lseq")]
    try:
        with store.write(village.db):
            assert outbox.queue(village, "pian") == 9
            at_once = link_order()
            raise _Undo
    except _Undo:
        pass
    assert link_order() == []
    with store.write(village.db):
        rounds = 0
        while outbox.queue(village, "pian", limit=limit):
            rounds += 1
    # (an escalation is urgent: it is numbered with its history at once, node/sync/outbox.py)
    assert link_order() == at_once and 1 <= rounds <= -(-9 // limit)



# -- issue 17: Art. 30 past the accused unit, collective petitions up the same day ---------

def test_a_report_against_the_village_goes_to_the_area_and_not_back(chain):
    city, town, area, village = chain
    case_id = register(village, nature="accusation", accused_unit="cun",
                       summary="反映村干部优亲厚友")
    assert cases.get(village, case_id)["holder"] == "pian"
    settle(chain)
    assert cases.get(area, case_id)["holder"] == "pian"
    act(area, case_id, "note", text="片区已接手")
    settle(chain)
    assert len(events_of(area, case_id)) == 2 and len(events_of(village, case_id)) == 1
    assert events_of(town, case_id) == []


def test_a_report_against_the_town_goes_past_it_to_the_city_by_hand(chain, tmp_path):
    """Art. 30: the area's report against the town goes to the city. Sync between the area
    and the town never carries it; files carried by hand go from the area to the city, and
    the city's answer comes back the same way."""
    from node.sync import files
    city, town, area, village = chain
    case_id = register(area, actor=HANDLER, nature="accusation", accused_unit="zhen",
                       summary="反映镇干部截留低保金")
    act(area, case_id, "escalate", reason="反映镇干部问题，报市")
    settle(chain)
    assert events_of(town, case_id) == [] and events_of(city, case_id) == []
    stick = tmp_path / "stick"
    assert files.export_bundles(area, "shi", stick)
    files.import_dir(city, stick)
    assert cases.get(city, case_id)["holder"] == "shi"
    act(city, case_id, "accept")
    act(city, case_id, "reply", decision="support", reply="已责成纪检部门核查")
    files.import_dir(area, stick)  # the city's acknowledgement, carried back
    assert files.export_bundles(city, "pian", stick)
    files.import_dir(area, stick)
    assert cases.get(area, case_id)["state"] == "replied"
    settle(chain)
    assert events_of(town, case_id) == []  # never through the accused town
    with pytest.raises(NodeError, match="not a neighbour"):
        files.export_bundles(village, "shi", stick)  # three levels: no


def test_a_collective_petition_reaches_the_city_the_same_day(chain):
    city, town, area, village = chain
    case_id = register(village, people_count=30, summary="30余村民反映征地补偿")
    settle(chain)
    for node in (area, town, city):
        assert [t for (t,) in node.db.conn.execute(
            "SELECT type FROM events WHERE subject = ? ORDER BY lsn", (case_id,))] == [
            "case.registered", "case.reported"], node.id
        assert cases.get(node, case_id)["holder"] == "cun"
    act(town, case_id, "urge", message="请村里当日稳控")
    settle(chain)
    assert cases.get(village, case_id)["urge_count"] == 1
    small = register(village, people_count=3)
    settle(chain)
    assert events_of(area, small) == []
