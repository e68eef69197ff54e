"""A village moved to another area (re-parented) keeps its history, once, everywhere.

city shi <- town zhen <- areas pian1, pian2; the village cun starts under pian1
and is enrolled again under pian2, for real (one-time codes, certificates).
"""

from __future__ import annotations

import pytest
from conftest import HANDLER, LIAISON, case_fields
from test_revoke import enroll_under
from test_session import Loopback

from node import cases, store, warnings
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


def test_a_moved_village_keeps_its_history_and_nothing_arrives_twice(net):
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
    with store.write(cun.db):  # the village goes on working on the case pian1 holds
        cases.act(cun, LIAISON, held, "note", {"text": "当事人补交了材料"})
    settle(net)

    assert set(before) <= set(ids(cun))  # the village lost nothing
    for node in net.values():  # everyone knows where the village is now
        assert parent_of(node, "cun") == "pian2", node.id
    # the note reaches the area that holds the case, now through pian2 and the town
    assert ids(pian1, held) == ids(cun, held) and len(ids(cun, held)) == 3
    assert ids(zhen, warning) == ids(cun, warning)
    for node in net.values():  # nothing twice, nothing waiting, nothing refused
        for table in ("inbox", "refusals"):
            assert node.db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert ids(zhen, kept) == [] and ids(pian2, kept) == []  # still the village's own
    with store.write(pian1.db):  # and the holder's answer comes back down the new way
        cases.act(pian1, HANDLER, held, "note", {"text": "片区已联系民政办"})
    settle(net)
    assert len(ids(cun, held)) == 4
    assert cun.db.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
