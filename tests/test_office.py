"""Issue 21, the office's own work: repeats by keyed digests, search, the receipt and the
public lookup, screening rounds and the register (with .xlsx), reception days, 包案 and
appointments, attachments and their bytes between two real processes."""

from __future__ import annotations

import io
import itertools
import json
import signal
from datetime import date

import pytest
from conftest import (
    HANDLER,
    LEADER,
    LIAISON,
    build_chain,
    case_fields,
    deliver,
    pin,
    share_network_key,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from test_session import Loopback
from test_web import Web

from node import (
    attachments,
    bigrams,
    cases,
    core,
    digests,
    events,
    log,
    netkeys,
    paging,
    receipts,
    reception,
    repeats,
    rounds,
    search,
    store,
    trust,
)
from node.errors import EventRefused, NodeError, NotAllowed, ValidationError
from node.sync import files, outbox, session

ID = "11010519491231002X"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def reg(node, actor=LIAISON, **fields):
    with store.write(node.db):
        return cases.register(node, actor, case_fields(**fields)).subject


def act(node, cid, action, actor=HANDLER, **fields):
    with store.write(node.db):
        return cases.act(node, actor, cid, action, fields)


@pytest.fixture
def net(make_node):
    """city <- town <- area <- village cun and its sibling cun2, all with the network key."""
    city, town, area, village = build_chain(make_node)
    sibling = make_node("village", "cun2", parent=area)
    for a in (city, town, area, village):
        pin(a, sibling)
        pin(sibling, a)
    share_network_key(city, town, area, village, sibling)
    return city, town, area, village, sibling


# -- repeats -------------------------------------------------------------------------------

def test_a_repeat_is_found_at_once_where_it_is_registered(net):
    village = net[3]
    first = reg(village)
    assert cases.get(village, first)["first_time"] == 1
    found = repeats.matches(village, case_fields()["petitioners"])
    assert [m["case"] for m in found] == [first]
    again = reg(village, petitioners=[{"name": "张三丰", "phone": "138 0013 8000"}])
    assert cases.get(village, again)["first_time"] == 0  # the same phone, written otherwise


def test_digests_go_up_without_the_numbers_and_the_area_links_a_pair(net):
    city, town, area, village, sibling = net
    mine, theirs = reg(village), reg(sibling, petitioners=[{"name": "张三", "id_number": ID}])
    assert cases.get(sibling, theirs)["first_time"] == 1  # the sibling holds no digest of mine
    for node in (village, sibling):
        deliver(node, area)
    seen = [e for e in log.subject_events(area.db, repeats.subject_of(mine))]
    assert [e.type for e in seen] == [repeats.SEEN]
    assert ID not in json.dumps(seen[0].body) and "13800138000" not in json.dumps(seen[0].body)
    pair, following = repeats.pairs(area)
    assert [(p["newer"], p["older"]) for p in pair] == [(theirs, mine)]
    with store.write(area.db):
        link = repeats.link(area, HANDLER, theirs, mine, "同一人同一事项")
    with store.write(sibling.db):
        assert log.receive(sibling, link) == "applied"  # the link comes down to the registrant
    assert [x["of"] for x in repeats.links_of(sibling, theirs)] == [mine]
    assert repeats.pairs(area) == ([], None)


def repeat_events(node) -> list[tuple[str, str]]:
    """(type, origin) of the repeat events this node received, in order."""
    return node.db.conn.execute(
        "SELECT type, origin FROM events WHERE type LIKE 'repeat.%' AND source IS NOT NULL "
        "ORDER BY lsn").fetchall()


def sync_up(*pairs) -> None:
    for child, parent in pairs:
        session.run(child, Loopback(parent), reports_first=True)


def test_digests_reach_the_city_in_relays_not_one_event_a_petition(net):
    """Issue 19: the registrant's parent gets its ``seen``; above that each node relays its
    children's digests in events of its own, so the city's events grow with the towns'
    sessions, not with the petitions below them; repeats are still found at every level."""
    city, town, area, village, sibling = net
    mine = [reg(village, petitioners=[{"name": f"张{i}", "id_number": ID if i == 0 else None,
                                       "phone": f"1390000000{i}"}]) for i in range(4)]
    theirs = reg(sibling, petitioners=[{"name": "张三", "id_number": ID}])
    own = reg(area, petitioners=[{"name": "张三", "phone": "13900000003"}])
    up = ((village, area), (sibling, area), (area, town), (town, city))
    sync_up(*up)
    assert [t for t, _ in repeat_events(area)] == [repeats.SEEN] * 5  # as they were written
    assert repeat_events(town) == [(repeats.SEEN, "pian"), (repeats.RELAYED, "pian")]
    assert repeat_events(city) == [(repeats.RELAYED, "zhen")]  # one event for six cases
    for node in (area, town, city):  # each holds every case's digests and finds the pairs
        pairs = {(p["newer"], p["older"]) for p in repeats.pairs(node, limit=50)[0]}
        assert {(theirs, mine[0]), (own, mine[3])} <= pairs, node.id
    with store.write(city.db):  # the city links a pair it knows by a relay only
        repeats.link(city, HANDLER, theirs, mine[0], "同一人")
    more = reg(village, petitioners=[{"name": "李四", "phone": "13700000000"}])
    sync_up(*up)
    sync_up(*up)  # nothing new to relay: no empty relay
    assert repeat_events(city) == [(repeats.RELAYED, "zhen")] * 2
    assert city.db.conn.execute("SELECT count(DISTINCT case_id) FROM person_digests"
                                ).fetchone()[0] == 7 and more
    for child, parent in reversed(up):  # the link comes down to the registrant
        session.run(child, Loopback(parent))
    assert [x["of"] for x in repeats.links_of(sibling, theirs)] == [mine[0]]
    with store.write(town.db):  # a rebuild folds the relays again, to the same rows
        before = town.db.conn.execute("SELECT * FROM person_digests ORDER BY 1, 2, 3, 4, 9"
                                      ).fetchall()
        log.rebuild(town)
        assert town.db.conn.execute("SELECT * FROM person_digests ORDER BY 1, 2, 3, 4, 9"
                                    ).fetchall() == before


_OBSERVERS = itertools.count()  # (a fresh file for each observer of every example)


@pytest.fixture
def repeat_history(net):
    """Every repeat event of a small network: two villages' cases of one person, relayed up
    to the city, linked at the city and at the area."""
    city, town, area, village, sibling = net
    mine = reg(village)
    theirs = reg(sibling, petitioners=[{"name": "张三", "id_number": ID}])
    sync_up((village, area), (sibling, area), (area, town), (town, city))
    with store.write(city.db):
        repeats.link(city, HANDLER, theirs, mine)
    with store.write(area.db):
        repeats.link(area, HANDLER, mine, theirs, "同一人")
    evs = {}
    for node in net:
        for origin, seq in node.db.conn.execute("SELECT origin, seq FROM events WHERE type "
                                                "LIKE 'repeat.%' ORDER BY lsn"):
            evs.setdefault(f"{origin}:{seq}", log.get_event(node.db, f"{origin}:{seq}"))
    return net, list(evs.values())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_digests_and_links_come_to_the_same_rows_in_any_order(repeat_history, tmp_path, data):
    """The registrants' seen, the relays and the links, delivered in any order and any of
    them twice, leave the same digests and links as in order (a link before the digests it
    names, a case known by a relay and by its own seen)."""
    net, evs = repeat_history
    city = net[0]
    assert {e.type for e in evs} == {repeats.SEEN, repeats.RELAYED, repeats.LINKED}
    def rows(order) -> tuple:
        db = store.create(tmp_path / f"observer{next(_OBSERVERS)}.db")
        with store.write(db):
            for n in net:
                trust.add_node(db, node_id=n.id, name=n.id, tier=n.tier,
                               parent_id=n.settings["PARENT_ID"] or None,
                               sign_pub=n.signer.public_key().public_bytes_raw(),
                               enc_pub=None, added_at="2026-01-01T00:00:00Z")
        node = core.Node(tmp_path, dict(city.settings), db, city.signer, city.clock)
        for i in order:
            with store.write(db):
                log.receive(node, evs[i])
        out = tuple(db.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4, 5").fetchall()
                    for t in ("person_digests", "repeat_links"))
        db.close()
        return out

    order = list(data.draw(st.permutations(range(len(evs))), label="order"))
    for i, dup in enumerate(data.draw(st.lists(st.integers(0, len(evs) - 1), max_size=5),
                                      label="twice")):
        order.insert(data.draw(st.integers(0, len(order)), label=f"at{i}"), dup)
    expected = rows(range(len(evs)))
    assert len(expected[1]) == 2 and expected[0]
    assert rows(order) == expected


def test_many_digests_go_in_several_relays_each_case_once(net, monkeypatch):
    city, town, area, village, sibling = net
    monkeypatch.setattr(repeats, "RELAY_CASES", 2)
    made = [reg(village, petitioners=[{"name": "王", "phone": f"1370000000{i}"}])
            for i in range(5)]
    sync_up((village, area), (area, town))
    relays = [json.loads(b) for (b,) in town.db.conn.execute(
        "SELECT body FROM events WHERE type = ? ORDER BY lsn", (repeats.RELAYED,))]
    assert [[e["case"] for e in r["seen"]] for r in relays] == [made[:2], made[2:4], made[4:]]
    assert [s for (s,) in town.db.conn.execute("SELECT subject FROM events WHERE type = ? "
                                               "ORDER BY lsn", (repeats.RELAYED,))] == [
        "DR-pian-1", "DR-pian-2", "DR-pian-3"]


def test_a_case_left_out_of_a_childs_relay_goes_no_further(net, make_node):
    """A relay's case not registered below its writer is not taken, and the next relay up,
    made from what was taken, does not carry it under a better name."""
    city, town, area, village, sibling = net
    other = make_node("area", "pian9", parent=town)  # the town's other area
    for node in (town, city):
        pin(node, other)
    mine = reg(village)
    up = ((village, area), (area, town))
    sync_up(*up)
    good = json.loads(town.db.conn.execute("SELECT body FROM events WHERE type = ?",
                                           (repeats.RELAYED,)).fetchone()[0])["seen"][0]
    stray = {**good, "case": "C-pian9-2026-0777"}  # the other area's: the town may relay it
    forged = events.sign(area.signer, origin="pian", seq=777, ts=area.now(), actor="system",
                         role="admin", type=repeats.RELAYED, subject="DR-pian-777", prev=(),
                         body={"seen": [stray, {**good, "case": "C-cun-2026-0777"}]})
    with store.write(town.db):
        assert log.receive(town, forged) == "applied"
    assert not town.db.conn.execute("SELECT 1 FROM person_digests WHERE case_id = ?",
                                    (stray["case"],)).fetchone()
    sync_up((town, city))
    assert city.db.conn.execute("SELECT count(DISTINCT case_id) FROM person_digests WHERE "
                                "case_id IN (?, ?, ?)", (mine, stray["case"], "C-cun-2026-0777")
                                ).fetchone()[0] == 2  # mine and the area's other case


def test_a_relay_that_fails_is_made_at_the_next_session(net, monkeypatch):
    """The relay's first mark is written before the push scans on, so a relay that fails
    (it is logged; the cases and warnings go up) loses nothing: the next session makes it."""
    city, town, area, village, sibling = net
    mine = reg(village)
    sync_up((village, area))

    def fails(node):
        raise NodeError("no relay this time")
    monkeypatch.setattr(repeats, "relay", fails)
    session.run(area, Loopback(town), reports_first=True)
    assert not town.db.conn.execute("SELECT 1 FROM person_digests WHERE case_id = ?",
                                    (mine,)).fetchone()
    monkeypatch.undo()
    sync_up((area, town))
    assert town.db.conn.execute("SELECT 1 FROM person_digests WHERE case_id = ?",
                                (mine,)).fetchone()


def test_a_stick_to_the_parent_carries_the_relay_and_an_upgrade_relays_only_the_unsent(
        net, tmp_path):
    """The children's digests go up on a USB stick as in a session. A node that scanned its
    parent's link before relays existed sent what it had scanned as it was: its first relay
    starts from there (no digest twice)."""
    city, town, area, village, sibling = net
    sent_before = reg(village)
    session.run(village, Loopback(area))
    with store.write(area.db):  # as the code before relays left it: scanned (which then
        outbox.queue(area, "zhen")  # queued the seen for the town as it was), and no mark
        area.db.conn.execute("DELETE FROM counters WHERE name = ?", (repeats.relay_mark(area),))
    later = reg(sibling, petitioners=[{"name": "李四", "phone": "13700000001"}])
    session.run(sibling, Loopback(area))
    stick = tmp_path / "stick"
    assert files.export_bundles(area, "zhen", stick)
    files.import_dir(town, stick)
    relays = town.db.conn.execute("SELECT body FROM events WHERE type = ?",
                                  (repeats.RELAYED,)).fetchall()
    assert [[e["case"] for e in json.loads(b)["seen"]] for (b,) in relays] == [[later]]
    assert area.db.conn.execute("SELECT count(*) FROM events WHERE type = ? AND subject = ?",
                                (repeats.SEEN, repeats.subject_of(sent_before))).fetchone()[0]
    assert store.counter(area.db, repeats.relay_mark(area)) == area.db.conn.execute(
        "SELECT max(lsn) FROM events WHERE type != ?", (repeats.RELAYED,)).fetchone()[0]
    with store.write(area.db):  # nothing new: nothing relayed, and the mark moves on
        assert repeats.relay(area) == []  # (past the relay, which it never relays itself)
    assert store.counter(area.db, repeats.relay_mark(area)) == area.db.conn.execute(
        "SELECT max(lsn) FROM events").fetchone()[0]


def test_the_pairs_come_a_page_at_a_time_each_once_in_order(net):
    city, town, area, village, sibling = net
    phone = {"name": "李四", "phone": "139 0000 0001"}
    made = [reg(node, petitioners=[{"name": "张三", "id_number": ID}, phone])
            for node in (village, sibling, village, sibling)]
    for node in (village, sibling):
        deliver(node, area)
    whole, following = repeats.pairs(area, limit=paging.MAX_PAGE)
    assert following is None
    assert len(whole) == 6  # every two of four cases, once, though they share two digests
    assert {p["by"] for p in whole} == {"id"}
    assert all((p["newer_on"], p["newer"]) > (p["older_on"], p["older"]) for p in whole)
    assert {p["newer"] for p in whole} | {p["older"] for p in whole} == set(made)
    for size in (1, 2, 4):
        walked, after = [], None
        while True:
            page, after = repeats.pairs(area, after=after, limit=size)
            assert len(page) <= size
            walked += page
            if after is None:
                break
        assert walked == whole, size
    theirs = {p["newer"] for p in whole if p["newer_origin"] == "cun2"}
    only = repeats.pairs(area, {"cun2"}, limit=paging.MAX_PAGE)[0]
    assert len(only) == 5  # all but the pair of the two cases of cun
    assert all("cun2" in (p["newer_origin"], p["older_origin"]) for p in only)
    assert theirs <= {p["newer"] for p in only}
    with pytest.raises(ValidationError):
        repeats.pairs(area, after=paging.cursor("2026-01-01", "no-bars-here"))
    w = Web(area, area.clock)  # the page and the API page the same way
    w.api_login("wang")
    first = w.api("GET", "/api/repeats?limit=4").get_json()
    rest = w.api("GET", f"/api/repeats?limit=4&after={first['next']}").get_json()
    pairs = [(p["newer"], p["older"]) for p in first["pairs"] + rest["pairs"]]
    assert pairs == [(p["newer"], p["older"]) for p in whole] and rest["next"] is None
    assert w.api("GET", "/api/repeats?after=nonsense").status_code == 400
    w.login("wang")
    page = w.get("/repeats?limit=2").get_data(as_text=True)
    assert page.count('name="case"') == 2 and "after=" in page and "下一页" in page


def test_a_node_that_is_not_above_cannot_link(net):
    city, town, area, village, sibling = net
    theirs = reg(sibling)
    deliver(sibling, village)  # (a misrouted copy)
    forged = events.sign(village.signer, origin="cun", seq=999, ts=village.now(), actor="x",
                         role="liaison", type=repeats.LINKED, subject=repeats.subject_of(theirs),
                         prev=tuple(log.heads(log.subject_events(village.db,
                                                                 repeats.subject_of(theirs)))),
                         body={"of": "C-cun-2026-0001"})
    with pytest.raises(EventRefused), store.write(area.db):
        deliver(sibling, area)
        log.receive(area, forged)


def test_the_city_rotates_the_key_and_each_node_opens_only_its_own_copy(net):
    city, town, area, village, sibling = net
    with store.write(city.db):
        version = netkeys.rotate(city, log.Actor("admin", "admin"))
    assert version == 2
    deliver(city, town)
    assert sorted(netkeys.held(town)) == [1, 2] and netkeys.held(town)[2] == netkeys.held(city)[2]
    issued = log.subject_events(town.db, "NK-2-1")[0]
    assert set(issued.body["sealed"]) == {"zhen", "pian", "cun", "cun2"}
    with pytest.raises(ValueError):  # the town's copy does not open with the area's key
        digests.unseal(issued.body["sealed"]["zhen"], 2, "zhen", area.enc_key)
    forged = events.sign(town.signer, origin="zhen", seq=999, ts=town.now(), actor="system",
                         role="admin", type=netkeys.ISSUED, subject="NK-3-1",
                         prev=(), body={"version": 3, "sealed": {}})
    with pytest.raises(EventRefused), store.write(area.db):
        log.receive(area, forged)
    with pytest.raises(NotAllowed), store.write(town.db):
        netkeys.rotate(town, log.Actor("admin", "admin"))


@given(st.text(alphabet="0123456789 -+", min_size=11, max_size=20))
def test_a_phone_digests_the_same_however_it_is_written(text):
    digits = "".join(c for c in text if c.isdigit())
    assert digests.normal("phone", text) == (digests.normal("phone", digits) or None)


# -- search --------------------------------------------------------------------------------

@given(st.text(min_size=1, max_size=30))
def test_any_text_makes_a_query_or_none_and_finds_itself(text):
    query = bigrams.query(text)
    assert query is None or query.count('"') % 2 == 0


def test_search_finds_by_words_name_number_and_code_and_logs_it(make_node):
    town = make_node("town", "qingshui")
    cid = reg(town, HANDLER, summary="低保金三个月未发放，老人生活困难")
    other = reg(town, HANDLER, summary="殡葬补贴", petitioners=[{"name": "李四"}])
    code = cases.get(town, cid)["query_code"]

    def find(text, how="full"):
        with store.write(town.db):
            return [c["id"] for c in search.search(town, text, lambda c: how, "wang")]
    assert find("低保金") == [cid] and find("老人 困难") == [cid] and find("金低保") == []
    assert find("张三") == [cid] and find(ID) == [cid] and find("1380013") == [cid]
    assert find(code) == [cid] and find(other) == [other] and find("李") == [other]
    assert find(ID, "masked") == [] and find("13800138000", "masked") == []  # identity hidden
    assert find("低保金", None) == []
    act(town, cid, "note", text="已电话联系，答应下周上门")
    assert find("上门") == [cid]  # notes too, reindexed as the case changes
    logged = town.db.conn.execute("SELECT target FROM audit_log WHERE action = 'search'").fetchall()
    assert ID not in json.dumps(logged, ensure_ascii=False) and len(logged) == 13
    with pytest.raises(ValidationError):
        find("，。")


def test_the_search_page_reindexes_in_short_transactions_and_logs_the_search(make_node,
                                                                              monkeypatch):
    """The page brings the index up to date a few cases per transaction (a bundle's apply
    never waits for a whole search), then finds and logs as search.search does."""
    from node.web import search as search_page
    town = make_node("town", "qingshui")
    ids = [reg(town, HANDLER, summary=f"低保金未发放第{i}户") for i in range(5)]
    monkeypatch.setattr(search_page, "REFRESH", 2)
    found = search_page.find(town, {"username": "wang"}, "低保金")
    assert sorted(c["id"] for c in found) == sorted(ids)
    assert town.db.conn.execute("SELECT count(*) FROM search_state").fetchone()[0] == 5
    logged = town.db.conn.execute("SELECT target FROM audit_log WHERE action = 'search'"
                                  ).fetchall()
    assert logged == [("低保金 -> 5",)]
    with pytest.raises(ValidationError):
        search_page.find(town, {"username": "wang"}, "，。")


def test_a_search_with_nothing_new_looks_at_no_case_and_one_after_a_change_does(
        make_node, monkeypatch):
    town = make_node("town", "qingshui")
    cid = reg(town, HANDLER, summary="低保金三个月未发放")
    looked = []
    catch_up = search._catch_up
    monkeypatch.setattr(search, "_catch_up", lambda node, limit: looked.append(limit) or
                        catch_up(node, limit))

    def find(text):
        with store.write(town.db):
            return [c["id"] for c in search.search(town, text, lambda c: "full", "wang")]
    assert find("低保金") == [cid] and len(looked) == 1
    assert find("低保金") == [cid] and len(looked) == 1  # nothing new: the index stands
    act(town, cid, "note", text="已电话联系，答应下周上门")
    assert find("上门") == [cid] and len(looked) == 2
    with store.write(town.db):  # the index emptied (as a migration that changes it would)
        town.db.conn.execute("DELETE FROM search_index")
        town.db.conn.execute("DELETE FROM search_state")
    assert find("上门") == [cid] and len(looked) == 3
    log.rebuild(town)  # a rebuild may mend rows without an event: looked at again
    assert find("上门") == [cid] and len(looked) == 4
    with store.write(town.db):  # a case gone with its events (as after forgetting them)
        town.db.conn.execute("DELETE FROM petitioners WHERE case_id = ?", (cid,))
        town.db.conn.execute("DELETE FROM cases WHERE id = ?", (cid,))
    assert find("上门") == [] and len(looked) == 5


# -- the receipt and the lookup ----------------------------------------------------------

def test_the_lookup_answers_state_and_deadline_only_and_is_throttled(make_node):
    town = make_node("town", "qingshui")
    cid = reg(town, HANDLER)
    code = cases.get(town, cid)["query_code"]
    assert receipts.receipt(town, cid)["query_code"] == code

    def ask(c, digits, who="addr:1.2.3.4"):
        with store.write(town.db):
            return receipts.lookup(town, c, digits, who)
    answer = ask(code.lower(), "8000")
    assert set(answer) == {"state", "due_on", "due_kind", "due_provisional"}
    assert answer["state"] == "registered"
    assert ask(code, "1234") is None and ask("ABCDEFGH", "8000") is None
    for _ in range(4):
        ask(code, "0000", "addr:5.6.7.8")
    with pytest.raises(receipts.LookupThrottled):  # the code is locked, even for the right digits
        ask(code, "8000", "addr:9.9.9.9")


# -- rounds and the register ---------------------------------------------------------------

def test_a_round_goes_to_its_villages_who_report_and_the_town_sees_who_has_not(net):
    city, town, area, village, sibling = net
    with store.write(town.db):
        rid = rounds.schedule(town, HANDLER, {"title": "年末排查", "start": "2026-11-24",
                                              "end": "2026-12-10", "deadline": "2026-12-15"}
                              ).subject
    assert rounds.get(town, rid)["missing"] == ["cun", "cun2"]
    deliver(town, area)
    deliver(area, village)
    with store.write(village.db):
        entry = rounds.record(village, LIAISON, {
            "kind": "person", "title": "低保争议", "risk": "major", "responsible": "刘信息员",
            "people": [{"name": "张三", "id_number": ID}], "round": rid}).subject
        rounds.report(village, LIAISON, rid, {"note": "已逐户排查"})
    deliver(village, area)
    deliver(area, town)
    found = rounds.get(town, rid)
    assert found["missing"] == ["cun2"]
    mine = next(u for u in found["units"] if u["unit"] == "cun")
    assert (mine["checked"], mine["added"], mine["high"]) == (1, 1, 0)
    assert [e["id"] for e in rounds.register(town, {"cun"})] == [entry]  # up to the town
    from node.sync import policy  # the register goes up to the town, and no further
    assert policy.Router.for_peer(village, "pian").allows(None, "entry.recorded", entry)
    assert policy.Router.for_peer(area, "zhen").allows(None, "entry.recorded", entry)
    assert not policy.Router.for_peer(town, "shi").allows(None, "entry.recorded", entry)
    assert not policy.Router.for_peer(area, "cun2").allows(None, "entry.recorded", entry)


def test_the_register_goes_out_and_back_as_xlsx_all_or_nothing(make_node):
    village = make_node("village", "dongshan")
    with store.write(village.db):
        entry = rounds.record(village, LIAISON, {"kind": "hotspot", "title": "征地补偿分配",
                                                 "risk": "serious", "responsible": "刘信息员",
                                                 "place": "东山村二组"}).subject
    data = rounds.book.export(village, rounds.register(village))
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet["A2"].value == "序号" and sheet["B3"].value == entry
    assert sheet["J3"].value == "重大"
    sheet["J3"] = "一般"  # the office lowers the risk in Excel, and adds two rows
    sheet.append([None, None, "重点人员", "低保争议", "李四", ID, "", "",
                  "低保", "较大", "刘信息员"])
    sheet.append([None, None, "不稳定因素", "", "", "", "", "", "", "", "刘信息员"])  # no title
    out = io.BytesIO()
    sheet.parent.save(out)
    with pytest.raises(ValidationError) as refused, store.write(village.db):
        rounds.book.import_rows(village, LIAISON, out.getvalue())
    assert "5:" in refused.value.english() and "title" in refused.value.english()
    assert len(rounds.register(village)) == 1  # nothing half-imported
    sheet.delete_rows(5)
    out = io.BytesIO()
    sheet.parent.save(out)
    with store.write(village.db):
        done = rounds.book.import_rows(village, LIAISON, out.getvalue())
    assert done == {"recorded": 1, "updated": 1, "unchanged": 0}
    assert rounds.get_entry(village, entry)["risk"] == "general"
    assert [h["action"] for h in rounds.history(village, entry)] == ["recorded", "updated"]


# -- reception, 包案, appointments ------------------------------------------------------------

def test_reception_days_move_to_a_working_day_and_a_leader_sees_their_work(make_node, clock):
    town = make_node("town", "qingshui")
    days = reception.days(town, 6, date(2026, 12, 1))
    on = [d["date"] for d in days]
    assert on[0] == "2026-12-25" and "2027-04-26" in on  # the 25th of April 2027 is a Sunday
    with store.write(town.db):
        reception.set_duty(town, "admin", "2026-12-25", "zhao")
    cid = reg(town, HANDLER, channel="leader_day", received_by="赵领导")
    assert cases.get(town, cid)["received_by"] == "赵领导"
    act(town, cid, "accept")
    act(town, cid, "lead", leader="zhao")
    act(town, cid, "appoint", leader="zhao", at="2026-12-02T09:30", place="镇信访办")
    act(town, cid, "appointment", appointment="YF-qingshui-2026-0001", outcome="已当面解释")
    with pytest.raises(ValidationError):
        act(town, cid, "lead", leader="wang")  # a handler is no 包案 leader
    work = reception.leader_work(town, "zhao")
    assert [d["date"] for d in work["days"]] == ["2026-12-25"]
    assert [a["status"] for a in work["appointments"]] == ["held"]
    assert [c["id"] for c in work["lead_cases"]] == [cid] and work["figures"]["lead"] == 1
    act(town, cid, "reply", decision="support", reply="已补发")
    act(town, cid, "close", LEADER, report="已办结", signers=["赵领导"])
    assert reception.leader_work(town, "zhao")["figures"]["concluded"] == 1
    from node import metrics  # 包案 is a measure of the figures, with its rates
    assert metrics.counted_by(town, "lead_done", "1", {}) == [cid]


# -- attachments ------------------------------------------------------------------------------

def test_attachments_are_kept_once_by_content_and_checked(make_node):
    village = make_node("village", "dongshan", NEVER_ABOVE={"id_number": "area"})
    cid = reg(village)
    with store.write(village.db):
        attachments.attach(village, LIAISON, cid, PNG, "id_photo", "身份证.png")
        with pytest.raises(ValidationError):
            attachments.attach(village, LIAISON, cid, b"GIF89a....", "other")
        with pytest.raises(NodeError):
            attachments.attach(village, LIAISON, cid, PNG, "site")  # the same bytes twice
    row = attachments.listing(village, cid)[0]
    assert row["up_to"] == "area" and row["present"] and row["type"] == "image/png"
    assert attachments.tier_allows(village, row, "area") and not attachments.tier_allows(
        village, row, "town")
    path = attachments.blob_path(village, row["sha256"])
    assert path.read_bytes() == PNG and oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_attachment_bytes_follow_the_case_resumably_but_an_id_photo_stays_down(tmp_path):
    """Two real processes: the village's photo of a letter goes up with the escalated case,
    in pieces, resuming after a dropped link; its ID photo does not (NEVER_ABOVE)."""
    from test_serve import free_port, run, start_server
    from test_sync_http import ENV, pin_files

    from node import core
    from node.sync import blobs
    from node.sync.http import HttpTransport

    port = free_port()
    town, village = tmp_path / "zhen", tmp_path / "cun"
    run("--dir", str(town), "init", "--tier", "town", "--id", "zhen", "--name", "青水镇",
        "--parent", "http://127.0.0.1:9", "--parent-id", "shi", env=ENV)
    run("--dir", str(village), "init", "--tier", "village", "--id", "cun", "--name", "东山村",
        "--parent", f"http://127.0.0.1:{port}", "--parent-id", "zhen", env=ENV)
    (village / "siji.toml").write_text((village / "siji.toml").read_text("utf-8").replace(
        "NEVER_ABOVE = {}", 'NEVER_ABOVE = {id_number = "village"}'), "utf-8")
    run("--dir", str(village), "user", "add", "liu", "--role", "liaison", "--name", "刘", env=ENV)
    pin_files(town, village)
    letter, photo = tmp_path / "letter.jpg", tmp_path / "id.png"
    letter.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3000)  # 3 pieces of 256 KiB
    photo.write_bytes(PNG)
    cid = json.loads(run("--dir", str(village), "--json", "case", "add", "--as", "liu",
                         "--category", "低保", "--summary", "来信反映低保", "--petitioner",
                         "张三").stdout)["id"]
    run("--dir", str(village), "attach", "add", cid, str(letter), "--as", "liu", "--kind",
        "letter")
    run("--dir", str(village), "attach", "add", cid, str(photo), "--as", "liu", "--kind",
        "id_photo")
    run("--dir", str(village), "case", "act", cid, "escalate", "--as", "liu", "-f", "reason=x")
    proc = start_server(town, port)
    try:
        node = core.open_node(village)
        transport = HttpTransport(f"http://127.0.0.1:{port}")
        real_put = transport.http.put
        puts = []

        def flaky_put(*args, **kwargs):  # the link drops after the first piece
            puts.append(1)
            if len(puts) == 2:
                raise OSError("link dropped")
            return real_put(*args, **kwargs)
        transport.http.put = flaky_put
        session.run(node, transport)
        listed = json.loads(run("--dir", str(town), "--json", "attach", "list", cid).stdout)
        assert [r["present"] for r in listed] == [False, False]  # nothing whole yet
        have = next(p for p in (town / "attachments" / ".partial").iterdir()).stat().st_size
        assert have == blobs.CHUNK  # the first piece stayed
        summary = session.run(node, transport)  # the next session resumes
        assert summary.counts.get("blobs_up") == 1
        node.close()
        listed = json.loads(run("--dir", str(town), "--json", "attach", "list", cid).stdout)
        by_kind = {r["kind"]: r for r in listed}
        assert by_kind["letter"]["present"] and not by_kind["id_photo"]["present"]
        assert by_kind["id_photo"]["up_to"] == "village"
        got = tmp_path / "got.jpg"
        run("--dir", str(town), "attach", "get", cid, by_kind["letter"]["sha256"][:12],
            str(got), "--as", "admin")
        assert got.read_bytes() == letter.read_bytes()
        assert not any(p.name.startswith(by_kind["id_photo"]["sha256"]) for p in
                       (town / "attachments").rglob("*"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
