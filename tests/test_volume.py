"""Issue 4's volume test: two real node processes on 127.0.0.1 exchange 10,000 events each way.

The town runs `siji serve`; the village enrolls with a one-time code and syncs with
`siji sync`, each its own process. The events are written through the library in
batched transactions (as bench/bench_sync.py does), which is not what is under test.

Up: the village registers 5,000 petitions and escalates them all (10,000 events; a case
the village keeps never leaves it, node.sync.policy).
Down: 10,000 events the routing policy sends the village: the town accepts and answers
2,000 of the escalated cases (the village registered them, so it follows them), and
registers 3,000 petitions of its own and refers them down to the village (a referral
brings the case's history with it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter
from datetime import timedelta

import pytest
from conftest import HANDLER, LIAISON, PASSWORD, case_fields
from test_serve import SIJI, free_port, run, start_server

from node import cases, core, store, users
from node.sync import outbox

ESCALATED, ANSWERED, REFERRED = 5_000, 2_000, 3_000
DOWN = 2 * ANSWERED + 2 * REFERRED
BATCH = 500                       # events written per transaction
ENV = {"SIJI_ADMIN_PASSWORD": "admin-pass-1"}


def batched(node, items, write) -> list:
    """Call ``write(node, item)`` for each item, BATCH to a transaction; return the results."""
    items, results = list(items), []
    for start in range(0, len(items), BATCH):
        with store.write(node.db):
            results.extend(write(node, item) for item in items[start:start + BATCH])
    return results


def siji_sync(node_dir) -> tuple[int, int]:
    """`siji sync` as its own process; returns (sent, received)."""
    result = subprocess.run([SIJI, "--dir", str(node_dir), "--lang", "en", "sync",
                             "--attempts", "1"], capture_output=True, text=True, timeout=600,
                            env={**os.environ})
    assert result.returncode == 0, result.stderr
    found = re.search(r"sent (\d+), received (\d+) events", result.stdout)
    assert found, result.stdout
    return int(found[1]), int(found[2])


def event_set(node, origin=None) -> set[tuple]:
    """Events shared by a link: all but figures, which go up only (siji serve reports the
    town's own)."""
    sql, args = "SELECT origin, seq, digest FROM events WHERE type != 'figures.reported'", ()
    if origin:
        sql, args = sql + " AND origin = ?", (origin,)
    return {(o, s, bytes(d)) for o, s, d in node.db.conn.execute(sql, args)}


def case_rows(node) -> list[tuple]:
    return node.db.conn.execute("SELECT * FROM cases ORDER BY id").fetchall()


def clean(node) -> None:
    """Nothing refused, nothing waiting, nothing stuck in an outbox."""
    for table in ("refusals", "inbox", "outbox"):
        assert node.db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


@pytest.fixture
def pair(tmp_path):
    """A served town and an enrolled village (real processes); yields both open nodes."""
    port = free_port()
    town_dir, village_dir = tmp_path / "zhen", tmp_path / "cun"
    run("--dir", str(town_dir), "init", "--tier", "town", "--id", "zhen", "--name", "青水镇",
        "--parent", "http://127.0.0.1:9", env=ENV)  # no parent id: no scheduled sync up
    run("--dir", str(village_dir), "init", "--tier", "village", "--id", "cun", "--name",
        "东山村", "--parent", f"http://127.0.0.1:{port}", env=ENV)
    code = run("--dir", str(town_dir), "--lang", "en", "enroll-code").stdout.split()[2]
    proc = start_server(town_dir, port)
    town = village = None
    try:
        run("--dir", str(village_dir), "enroll", "--code", code.rstrip(","))
        # first contact: up goes the village's own join (node.joined), down node.enrolled
        assert siji_sync(village_dir)[0] == 1
        town, village = core.open_node(town_dir), core.open_node(village_dir)
        with store.write(village.db):
            users.add_user(village, "liu", "刘信息员", "liaison", PASSWORD)
        with store.write(town.db):
            users.add_user(town, "wang", "王办理", "handler", PASSWORD)
        yield town, village
    finally:
        for node in (town, village):
            if node is not None:
                node.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_ten_thousand_events_each_way_arrive_exactly_once(pair):
    town, village = pair
    assert 2 * ESCALATED == DOWN == 10_000
    from_town = len(event_set(village, "zhen"))
    up_base = outbox.link(village.db, "zhen")["acked"]
    down_base = outbox.link(town.db, "cun")["acked"]

    # -- up ---------------------------------------------------------------------------------
    escalated = [e.subject for e in batched(village, range(ESCALATED), lambda n, i: cases.register(
        n, LIAISON, case_fields(summary=f"第{i}件：低保金未发放")))]
    batched(village, escalated, lambda n, cid: cases.act(n, LIAISON, cid, "escalate",
                                                         {"reason": "需镇协调"}))
    assert siji_sync(village.dir) == (10_000, 0)
    assert event_set(town, "cun") == event_set(village, "cun")
    assert len(event_set(village, "cun")) == 10_000 + 1  # and its join
    up = outbox.link(village.db, "zhen")
    assert up["acked"] == up["next_out"] - 1 == up_base + 10_000
    assert outbox.link(town.db, "cun")["applied"] == up_base + 10_000
    assert cases.get(town, escalated[0])["holder"] == "zhen"

    # -- down -------------------------------------------------------------------------------
    deadline = (town.today() + timedelta(days=15)).isoformat()

    def answer(node, cid):
        cases.act(node, HANDLER, cid, "accept", {})
        cases.act(node, HANDLER, cid, "reply", {"decision": "support", "reply": "已协调补发"})

    def refer(node, i):
        cid = cases.register(node, HANDLER, case_fields(summary=f"镇登记第{i}件")).subject
        cases.act(node, HANDLER, cid, "refer", {"to": "cun", "instruction": "请村里核实",
                                                    "deadline": deadline})
        return cid

    batched(town, escalated[:ANSWERED], answer)
    referred = batched(town, range(REFERRED), refer)
    assert siji_sync(village.dir) == (0, DOWN)
    down = outbox.link(town.db, "cun")
    assert down["acked"] == down["next_out"] - 1 == down_base + DOWN
    assert outbox.link(village.db, "zhen")["applied"] == down_base + DOWN

    # -- converged: the same events and the same folded records on both sides ---------------
    assert event_set(town) == event_set(village)
    assert len(event_set(village, "zhen")) == from_town + DOWN
    assert case_rows(town) == case_rows(village)
    shape = Counter((c["holder"], c["state"], c["handover"], c["urge_count"])
                    for c in cases.listing(village))
    assert shape == {("zhen", "replied", None, 0): ANSWERED,
                     ("zhen", "registered", None, 0): ESCALATED - ANSWERED,
                     ("cun", "registered", "pending", 0): REFERRED}
    assert {c["id"] for c in cases.listing(village, holder="cun")} >= set(referred)
    for node in (town, village):
        clean(node)
    assert siji_sync(village.dir) == (0, 0)  # nothing echoes back, nothing is sent twice
