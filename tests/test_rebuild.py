"""A rebuild in short transactions (issue 19, item 7) ends with exactly the rows of a rebuild
from scratch, also when events arrive between its transactions or it stops half-way.

The node is the town of conftest's chain with some of everything: cases escalated, answered
and supervised, warnings acknowledged, figures reported up, a screening round and a register
entry, repeat digests, a supervision request answered, a node revoked. Every table of the
database is compared, not only the derived ones: a rebuild must change nothing else.
"""

from __future__ import annotations

import io
import os
import sqlite3
import sys

import pytest
from conftest import (
    HANDLER,
    LEADER,
    LIAISON,
    PASSWORD,
    build_chain,
    case_fields,
    pin,
    share_network_key,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import Siji, make, query, refused
from test_cli import register as register_by_cli
from test_figures import report_up
from test_revoke import enroll_under
from test_routing import act, register, settle

from node import cases, figures, log, membership, oversight, rounds, store, trust, warnings

ADMIN = log.Actor("admin", "admin")


def dump(node) -> dict[str, list]:
    """Every table's rows, sorted (a membership flag's time of first raising aside: a rebuild
    from scratch raises it again now, one in batches leaves it as it was; the count of
    rebuilds, which each of them adds one to; and the trust table's mark, which a rebuild's
    rewrite of the nodes' status renews)."""
    conn = node.db.conn
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    out = {}
    for name in names:
        sql = ("SELECT node_id, kind, detail FROM node_flags" if name == "node_flags"
               else "SELECT * FROM counters WHERE name NOT IN (?, ?)" if name == "counters"
               else f"SELECT * FROM {name}")
        args = (log.REBUILDS, trust.VERSION) if name == "counters" else ()
        out[name] = sorted((tuple(r) for r in conn.execute(sql, args)), key=repr)
    return out


def from_scratch(node) -> dict[str, list]:
    """The rows a rebuild from scratch gives, leaving the node as it was."""
    node.db.conn.execute("BEGIN IMMEDIATE")
    try:
        log.rebuild_from_scratch(node)
        return dump(node)
    finally:
        node.db.conn.execute("ROLLBACK")


@pytest.fixture
def town(make_node, clock):
    city, town, area, village = chain = build_chain(make_node)
    other = make_node("village", "cun2", parent=area)
    for node in (city, town, village):
        pin(node, other)
    enroll_under(town, make_node("village", "cun3"))  # a node.enrolled event at the town
    share_network_key(city, town, area, village)
    kept = register(village)
    up = register(village, category="grassroots", people_count=12, channel="visit")
    act(village, up, "escalate", actor=LIAISON, to="pian", reason="集体访，需片区协调")
    settle(chain)
    act(area, up, "escalate", reason="需镇里协调")
    settle(chain)
    act(town, up, "accept")
    act(town, up, "refer", to="pian", instruction="请片区核实", deadline="2027-01-10")
    act(town, up, "supervise", instruction="限期办结", deadline="2027-01-10")
    own = register(town, actor=HANDLER, category="youfu")
    act(town, own, "accept")
    act(town, own, "assign", actor=LEADER, assignee="王办理", lead_leader="赵领导")
    clock.advance(days=3)
    act(town, own, "reply", decision="support", reply="已按政策补发")
    act(village, kept, "note", actor=LIAISON, text="村里调解")
    with store.write(village.db):
        w = warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "东山村",
                                                      "expected_size": 30,
                                                      "destination": "city"})
    with store.write(town.db):
        rid = rounds.schedule(town, HANDLER, {"title": "年末排查", "start": "2026-11-24",
                                              "end": "2026-12-10", "deadline": "2026-12-15"}
                              ).subject
    settle(chain)
    with store.write(village.db):
        rounds.record(village, LIAISON, {"kind": "person", "title": "低保争议", "risk": "major",
                                         "responsible": "刘信息员", "round": rid,
                                         "people": [{"name": "张三"}]})
        rounds.report(village, LIAISON, rid, {"note": "已逐户排查"})
    report_up(chain)
    with store.write(town.db):
        warnings.act(town, HANDLER, w.subject, "acknowledge", {})
        oversight.request(town, HANDLER, {"case": kept, "holder": "cun", "action": "urge",
                                          "message": "请督促尽快办理"})
        membership.revoke(town, ADMIN, "cun2", "设备丢失")
    clock.advance(days=20)
    report_up(chain)
    kinds = {r[0] for r in town.db.conn.execute(
        "SELECT substr(type, 1, instr(type, '.') - 1) FROM events")}
    assert {"case", "warning", "figures", "round", "entry", "repeat", "oversight",
            "node"} <= kinds, kinds
    return town


def damage(node, which: set[str]) -> None:
    """Spoil derived rows in ways a rebuild must undo (the log is the truth)."""
    sql = {
        "changed": ["UPDATE cases SET state = 'concluded', summary = 'x'",
                    "UPDATE warnings SET status = 'defused'"],
        "deleted": ["DELETE FROM warnings", "DELETE FROM figures_latest WHERE origin = "
                    "(SELECT min(origin) FROM figures_latest)",
                    "DELETE FROM rounds", "DELETE FROM person_digests"],
        "orphans": ["INSERT INTO cases SELECT 'C-zhen-2026-9999', origin_node, holder, state, "
                    "handover, referred_by, archived, needs_review, conflicts, query_code, "
                    + ", ".join(c for c in cases.CASE_COLUMNS[10:]) + " FROM cases LIMIT 1",
                    "INSERT INTO figures_latest SELECT 'gone', month, seq, ts, body "
                    "FROM figures_latest LIMIT 1",
                    "INSERT INTO oversight_requests SELECT 'DQ-zhen-2026-9999', requester, "
                    "to_unit, case_id, holder, action, message, deadline, requested_at, "
                    "status, outcome, note, answered_at, answered_by FROM oversight_requests"],
        # a figures row above the newest report of its unit and month: written by no event
        "stale": ["UPDATE figures_latest SET seq = seq + 100000 WHERE origin = "
                  "(SELECT max(origin) FROM figures_latest)"],
        # a report of a unit and month the fold refuses (not the node's own: made by a
        # person), newer than the newest, and the row taken from it
        "refused": ["INSERT INTO events (origin, seq, ts, actor, role, type, subject, prev, "
                    "body, sig, disclosed, digest, received_at, source) SELECT origin, "
                    "seq + 100000, ts, 'liu', 'liaison', type, subject, prev, body, sig, "
                    "disclosed, digest, received_at, source FROM events WHERE origin = 'zhen' "
                    "AND type = 'figures.rolled_up' ORDER BY seq DESC LIMIT 1",
                    "UPDATE figures_latest SET seq = seq + 100000 WHERE (origin, seq) IN "
                    "(SELECT origin, max(seq) FROM figures_latest WHERE origin = 'zhen')"],
        "membership": ["UPDATE nodes SET status = 'active' WHERE node_id = 'cun2'",
                       "UPDATE nodes SET status = 'revoked' WHERE node_id = 'cun3'",
                       "UPDATE nodes SET status = 'revoked', held = 'x' WHERE node_id = 'shi'",
                       "INSERT OR REPLACE INTO node_flags (node_id, kind, detail, since) "
                       "VALUES ('pian', 'membership', 'x', '2026-01-01T00:00:00Z')"],
    }
    with store.write(node.db):
        for name in sorted(which):
            for statement in sql[name]:
                node.db.conn.execute(statement)


DAMAGE = ("changed", "deleted", "orphans", "stale", "refused", "membership")


def test_the_fixture_damage_is_seen(town):
    """(The comparisons below compare something: each damage changes the rows.)"""
    assert dump(town) == from_scratch(town)
    for name in DAMAGE:
        damage(town, {name})
        assert dump(town) != from_scratch(town), name
        with store.write(town.db):
            log.rebuild_from_scratch(town)


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 40), which=st.sets(st.sampled_from(DAMAGE)))
def test_a_batched_rebuild_gives_the_rows_of_one_from_scratch(town, batch, which):
    saved = sqlite3.connect(":memory:")
    town.db.conn.backup(saved)
    try:
        damage(town, which)
        right = from_scratch(town)
        calls = []
        counts = log.rebuild(town, lambda done, total: calls.append((done, total)),
                             batch_subjects=batch, batch_seconds=60, pause=0)
        assert dump(town) == right
        total = sum(counts.values())
        assert calls[0] == (0, total) and calls[-1] == (total, total)
        assert len(calls) > 2 or batch >= total  # several transactions
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    finally:
        saved.backup(town.db.conn)  # the next example starts from the same node


def test_each_batch_is_its_own_transaction(town):
    """Between two batches the lock is free: another connection writes."""
    other = sqlite3.connect(store.path_of(town.db), timeout=0)
    wrote = []

    def between(done, total):
        assert not town.db.conn.in_transaction
        other.execute("BEGIN IMMEDIATE")  # refused at once if the rebuild held the lock
        other.execute("UPDATE counters SET value = value WHERE name = 'seq'")
        other.execute("COMMIT")
        wrote.append(done)

    log.rebuild(town, between, batch_subjects=3, pause=0)
    assert len(wrote) > 5
    other.close()


def test_events_that_arrive_between_batches_are_projected_as_usual(town, clock):
    subjects = [r[0] for r in town.db.conn.execute(
        "SELECT id FROM cases ORDER BY id")]
    first, last = subjects[0], subjects[-1]
    wid = town.db.conn.execute("SELECT id FROM warnings").fetchone()[0]
    made = []

    def arrive(done, total):
        """Each time, something new: a case done already, one not yet, a new one, a
        warning's step, figures reported (their rows are not one subject's each)."""
        clock.advance(hours=1)
        step = len(made)
        with store.write(town.db):
            if step == 1:
                cases.act(town, HANDLER, first, "note", {"text": "重建中补记"})
                cases.act(town, HANDLER, last, "note", {"text": "重建中补记"})
            elif step == 2:
                made.append(cases.register(town, HANDLER, case_fields(summary="新来件")))
            elif step == 3:
                warnings.act(town, HANDLER, wid, "handle", {"measures": "已上门劝导"})
            elif step == 4:
                figures.report(town)
        made.append(step)

    damage(town, {"changed"})
    log.rebuild(town, arrive, batch_subjects=2, pause=0)
    assert len(made) > 5
    rows = dump(town)
    assert rows == from_scratch(town)
    notes = cases.get(town, first)["event_count"], cases.get(town, last)["event_count"]
    assert all(n >= 2 for n in notes)


def test_a_rebuild_that_stops_half_way_leaves_a_node_a_second_one_completes(town):
    damage(town, set(DAMAGE))
    right, spoiled = from_scratch(town), dump(town)

    class Stop(Exception):
        pass

    def crash(done, total):
        if done >= 6:
            raise Stop

    with pytest.raises(Stop):
        log.rebuild(town, crash, batch_subjects=3, pause=0)
    assert not town.db.conn.in_transaction
    assert town.db.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert town.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    halfway = dump(town)
    assert halfway not in (spoiled, right)  # some batches were kept, not all
    # every case row is its subject's projection, from before or after, never a mix
    fixed = {r[0] for r in right["cases"]}
    for row in halfway["cases"]:
        assert row in right["cases"] or row in spoiled["cases"] or row[0] not in fixed
    log.rebuild(town, pause=0)
    assert dump(town) == right


def test_a_rebuild_inside_the_callers_transaction_is_one_transaction(town):
    damage(town, set(DAMAGE))
    right = from_scratch(town)
    with store.write(town.db):
        log.rebuild(town, lambda done, total: None, batch_subjects=1)
        assert town.db.conn.in_transaction
    assert dump(town) == right


# -- `siji rebuild` ------------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def node_dir(tmp_path, monkeypatch, capsys):
    for key in [k for k in os.environ if k.startswith("SIJI_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SIJI_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("SIJI_PASSWORD", PASSWORD)
    d = make(Siji(capsys), tmp_path / "zhen", "town", "zhen")
    for _ in range(3):
        register_by_cli(Siji(capsys), d)
    return d


def test_siji_rebuild_shows_its_progress_on_a_terminal_and_counts_with_json(
        node_dir, capsys, monkeypatch):
    siji = Siji(capsys)
    counts = siji.json("--dir", node_dir, "--json", "rebuild")
    assert counts["cases"] == 3 and counts["warnings"] == 0 and "figures" in counts
    r = siji.ok("--dir", node_dir, "--lang", "en", "rebuild")  # not a terminal: no bar
    assert (r.out, r.err) == ("Rebuilt 3 cases and 0 warnings\n", "")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    r = siji.ok("--dir", node_dir, "--lang", "en", "rebuild")
    assert r.out == "Rebuilt 3 cases and 0 warnings\n"
    shown = terminal.getvalue()
    assert "Rebuilding" in shown and "100%" in shown and f"{sum(counts.values())}/" in shown
    terminal.truncate(0)
    assert siji.json("--dir", node_dir, "--json", "rebuild") == counts
    assert terminal.getvalue().strip("\x00") == ""  # --json: no bar, even on a terminal
    r = siji.ok("--dir", node_dir, "--lang", "en", "rebuild", "--offline")
    assert r.out == "Rebuilt 3 cases and 0 warnings\n" and terminal.getvalue().strip("\x00") == ""


def test_siji_rebuild_says_in_one_line_when_the_database_stays_busy(node_dir, capsys,
                                                                     monkeypatch):
    siji = Siji(capsys)
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 50)
    before = query(node_dir, "SELECT * FROM cases ORDER BY id")
    other = sqlite3.connect(node_dir / "siji.db")
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        line = refused(siji("--dir", node_dir, "--lang", "en", "rebuild"), "busy for 0.05 s",
                       "run the command again")
        assert "--offline" not in line
        refused(siji("--dir", node_dir, "--lang", "en", "rebuild", "--offline"),
                "stop `siji serve`")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert query(node_dir, "SELECT * FROM cases ORDER BY id") == before
    siji.ok("--dir", node_dir, "rebuild")
