"""A village moved to another area (re-parented) keeps its history, once, everywhere.

city shi <- town zhen <- areas pian1, pian2; the village cun starts under pian1
and is enrolled again under pian2, for real (one-time codes, certificates).
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import HANDLER, LIAISON, case_fields, share_network_key
from test_revoke import enroll_under
from test_session import Loopback

from node import cases, events, log, membership, store, trust, warnings
from node.errors import EventRefused, NotAllowed
from node.sync import session


@pytest.fixture
def net(make_node):
    nodes = {name: make_node(tier, name) for name, tier in (
        ("shi", "city"), ("zhen", "town"), ("pian1", "area"), ("pian2", "area"),
        ("cun", "village"))}
    enroll_under(nodes["shi"], nodes["zhen"])
    enroll_under(nodes["zhen"], nodes["pian1"])
    enroll_under(nodes["zhen"], nodes["pian2"])
    enroll_under(nodes["pian1"], nodes["cun"])
    return nodes


def settle(net) -> None:
    """Sync every enrolled link (each child with its current parent) until nothing moves."""
    for _ in range(6):
        moved = 0
        for child in ("cun", "pian1", "pian2", "zhen"):
            node = net[child]
            parent = net[node.settings["PARENT_ID"]]
            summary = session.run(node, Loopback(parent))
            moved += summary.sent + summary.received
        if not moved:
            return
    raise AssertionError("the network did not settle")


def ids(node, subject=None) -> list[tuple[str, int]]:
    sql = "SELECT origin, seq FROM events" + (" WHERE subject = ?" if subject else "")
    return sorted(node.db.conn.execute(sql, (subject,) if subject else ()).fetchall())


def parent_of(node, target) -> str:
    return node.db.conn.execute("SELECT parent_id FROM nodes WHERE node_id = ?",
                                (target,)).fetchone()[0]


def test_a_moved_village_keeps_its_history_and_nothing_arrives_twice(net, clock):
    cun, pian1, pian2, zhen = net["cun"], net["pian1"], net["pian2"], net["zhen"]
    with store.write(cun.db):
        held = cases.register(cun, LIAISON, case_fields(summary="已上报片区")).subject
        cases.act(cun, LIAISON, held, "escalate", {"to": "pian1", "reason": "需片区协调"})
        kept = cases.register(cun, LIAISON, case_fields(summary="村里自己办")).subject
        warning = warnings.raise_warning(cun, LIAISON, {"subject": "征地补偿", "place": "东山村",
                                                        "expected_size": 30}).subject
    settle(net)
    before = ids(cun)
    assert ids(pian1, held) == ids(cun, held) and ids(zhen, warning) == ids(cun, warning)

    enroll_under(pian2, cun)  # moved to the other area, same keys, new certificate
    assert cun.settings["PARENT_ID"] == "pian2"
    with store.write(cun.db):  # the village adds to the case pian1 holds, and raises another
        cases.act(cun, LIAISON, held, "note", {"text": "当事人补交了材料"})
        later = warnings.raise_warning(cun, LIAISON, {"subject": "低保评议", "place": "东山村",
                                                      "expected_size": 12}).subject
    settle(net)

    assert set(before) <= set(ids(cun))  # the village lost nothing
    for node in net.values():  # everyone knows where the village is now
        assert parent_of(node, "cun") == "pian2", node.id
    # new work goes the new way, and the town's record of the old warning is unchanged
    assert ids(pian2, later) == ids(zhen, later) == ids(cun, later)
    assert ids(zhen, warning) == ids(cun, warning)
    # the case pian1 held does not follow the village to pian2 or the town: they never
    # held it, and its detail goes only where it was handed (node.sync.policy)
    assert ids(pian2, held) == [] and ids(zhen, held) == []
    assert ids(pian1, held) == ids(cun, held)[:2]
    assert ids(zhen, kept) == [] and ids(pian2, kept) == []  # still the village's own
    for node in net.values():  # nothing twice, nothing waiting, nothing refused
        for table in ("inbox", "refusals"):
            assert node.db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    clock.advance(minutes=5)  # the old area has no say over the village any more
    with store.write(pian1.db):
        fresh = cases.register(pian1, HANDLER, case_fields(summary="片区新登记")).subject
    with pytest.raises(NotAllowed, match="child of this node"), store.write(pian1.db):
        cases.act(pian1, HANDLER, fresh, "refer", {"to": "cun", "instruction": "请村里办",
                                                   "deadline": "2099-12-31"})


def test_what_folds_read_of_the_trust_table_follows_every_change_and_no_rollback(net):
    """The tree and the former parents are kept in memory between bundles (trust.kept),
    and never outlive a change to the nodes or the joins, nor show one rolled back."""
    zhen = net["zhen"]
    settle(net)  # the town learns of the village
    mark = trust._version(zhen.db)
    with store.write(zhen.db):  # folding the membership again changes nothing: same mark
        log.rebuild(zhen, pause=0)
    assert trust._version(zhen.db) == mark
    first, former = trust.tree(zhen.db), membership.former_parents(zhen.db)
    assert trust.tree(zhen.db) is first and membership.former_parents(zhen.db) is former
    assert first.parents["cun"] == "pian1" and "cun" not in former
    with pytest.raises(RuntimeError), store.write(zhen.db):
        zhen.db.conn.execute("UPDATE nodes SET parent_id = 'pian2' WHERE node_id = 'cun'")
        assert trust.tree(zhen.db).parents["cun"] == "pian2"  # seen inside the change
        raise RuntimeError("rolled back")
    assert trust.tree(zhen.db).parents["cun"] == "pian1"
    enroll_under(net["pian2"], net["cun"])  # a real move: the join reaches the town
    settle(net)
    assert trust.tree(zhen.db).parents["cun"] == "pian2"
    assert set(membership.former_parents(zhen.db)["cun"]) == {"pian1"}


def test_a_read_of_the_trust_table_while_another_commits_is_not_kept(net):
    zhen = net["zhen"]
    path = zhen.db.conn.execute("PRAGMA database_list").fetchone()[2]
    other = sqlite3.connect(path, isolation_level=None)
    before = trust._version(zhen.db)

    def made_meanwhile(db):  # another process renames a node while this one reads
        other.execute("UPDATE nodes SET name = '新名' WHERE node_id = 'zhen'")
        return dict(db.conn.execute("SELECT node_id, name FROM nodes"))
    trust.kept(zhen.db, "names-test", made_meanwhile)
    other.close()
    assert trust._version(zhen.db) != before
    assert ("names-test", id(zhen.db.conn)) not in trust._KEPT  # not kept under either
    assert trust.names(zhen.db)["zhen"] == "新名"


def test_another_village_cannot_take_a_village_over(net, make_node):
    """A re-enrollment moves a node only to another unit of its parent's tier under the same
    parent. A village certifying another village under itself is refused everywhere, and
    the tree stays as it was."""
    cun2 = make_node("village", "cun2")
    enroll_under(net["pian2"], cun2)
    net["cun2"] = cun2
    settle(net)
    cun = net["cun"]
    cert = trust.issue_certificate(  # made by a village that misbehaves: not via its own log
        cun2.signer, "cun2", node="cun", name="东山村", tier="village", parent="cun2",
        sign_pub=cun.signer.public_key().public_bytes_raw(),
        enc_pub=cun2.enc_key.public_key().public_bytes_raw(),
        not_before=cun2.today(), not_after=cun2.today())
    seq = cun2.db.conn.execute("SELECT coalesce(max(seq), 0) FROM events WHERE origin = 'cun2'"
                               ).fetchone()[0] + 1
    forged = events.sign(cun2.signer, origin="cun2", seq=seq, ts=cun2.now(),
                         actor="system", role="admin", type="node.enrolled", subject="N-cun",
                         prev=(), body={"certificate": cert})
    for name in ("zhen", "pian2", "shi"):
        with pytest.raises(EventRefused, match="may not enroll under a village"), \
                store.write(net[name].db):
            log.receive(net[name], forged)
        assert parent_of(net[name], "cun") == "pian1", name


# -- the keyed digests of a moved node's cases (repeat.relayed, issue 19) ---------------------

@pytest.fixture
def towns(make_node):
    """shi <- zhen, zhen2; zhen <- pian1, pian2; pian1 <- cun, cunb; all with the network key."""
    n = {name: make_node(tier, name) for name, tier in (
        ("shi", "city"), ("zhen", "town"), ("zhen2", "town"), ("pian1", "area"),
        ("pian2", "area"), ("cun", "village"), ("cunb", "village"))}
    for parent, child in (("shi", "zhen"), ("shi", "zhen2"), ("zhen", "pian1"),
                          ("zhen", "pian2"), ("pian1", "cun"), ("pian1", "cunb")):
        enroll_under(n[parent], n[child])
    share_network_key(n["shi"], *(node for name, node in n.items() if name != "shi"))
    return n


def up(child, parent) -> None:
    session.run(child, Loopback(parent), reports_first=True)


def settle_up(n) -> None:
    for _ in range(3):
        for name in ("cun", "cunb", "pian1", "pian2", "zhen", "zhen2"):
            up(n[name], n[n[name].settings["PARENT_ID"]])


def held(node, case_id) -> int:
    return node.db.conn.execute("SELECT count(*) FROM person_digests WHERE case_id = ?",
                                (case_id,)).fetchone()[0]


def register_at(node, **fields) -> str:
    with store.write(node.db):
        return cases.register(node, LIAISON, case_fields(**fields)).subject


def test_the_old_area_relays_what_a_moved_village_registered_under_it(towns, clock):
    """A village moves while its old area still holds its digests: the old area's relay is
    judged by when each case was registered, so it is taken whether the town learned of the
    move before it or after (and again by a rebuild), and the sibling's cases in the same
    relay are never lost with it."""
    n = towns
    settle_up(n)
    moving = register_at(n["cun"])
    stay = register_at(n["cunb"], petitioners=[{"name": "李四", "phone": "13700000001"}])
    up(n["cun"], n["pian1"])
    up(n["cunb"], n["pian1"])
    clock.advance(minutes=1)
    enroll_under(n["pian2"], n["cun"])  # cun moves to pian2
    up(n["cun"], n["pian2"])
    up(n["pian2"], n["zhen"])  # the town learns of the move first
    up(n["pian1"], n["zhen"])  # then the old area's relay, made before it knew, arrives
    assert n["zhen"].db.conn.execute("SELECT count(*) FROM refusals").fetchone()[0] == 0
    settle_up(n)
    for node in (n["zhen"], n["shi"]):
        assert held(node, stay) and held(node, moving), node.id
    for (body,) in n["shi"].db.conn.execute("SELECT body FROM events WHERE type = ?",
                                            ("repeat.relayed",)):  # the moved village's
        for entry in json.loads(body)["seen"]:  # case came to the town twice: it goes once
            assert len({(d["i"], d["k"], d["v"]) for d in entry["digests"]}) == len(
                entry["digests"]), entry["case"]
    before = n["zhen"].db.conn.execute("SELECT * FROM person_digests ORDER BY 1, 2, 3, 4, 9"
                                       ).fetchall()
    with store.write(n["zhen"].db):  # folded again, knowing the move: the same rows
        log.rebuild(n["zhen"], pause=0)
    assert n["zhen"].db.conn.execute("SELECT * FROM person_digests ORDER BY 1, 2, 3, 4, 9"
                                     ).fetchall() == before
    clock.advance(minutes=1)  # what the village registers after its move is not pian1's
    later = register_at(n["cun"], petitioners=[{"name": "王五", "phone": "13700000002"}])
    up(n["cun"], n["pian2"])
    seen = log.get_event(n["pian2"].db, n["pian2"].db.conn.execute(
        "SELECT origin || ':' || seq FROM events WHERE subject = ?",
        (f"D-{later}",)).fetchone()[0])
    with pytest.raises(EventRefused, match="not registered below"), store.write(n["zhen"].db):
        log.receive(n["zhen"], events.sign(
            n["pian1"].signer, origin="pian1", seq=900, ts=n["pian1"].now(), actor="system",
            role="admin", type="repeat.relayed", subject="DR-pian1-900", prev=(),
            body={"seen": [{**seen.body, "at": seen.ts}]}))


def test_an_area_moved_to_another_town_relays_its_villages_digests_to_it(towns):
    n = towns
    settle_up(n)
    before = register_at(n["cun"])
    settle_up(n)
    assert held(n["zhen"], before) and held(n["shi"], before) and not held(n["zhen2"], before)
    enroll_under(n["zhen2"], n["pian1"])  # the area moves to the other town
    settle_up(n)
    assert held(n["zhen2"], before)
