"""The same-day chain (当日链) of a warning: who received it, who acknowledged it, who was late.

Every node above the origin that a warning reaches records, as an automatic
event it signs, that it received it (``warning.received``, actor ``system``);
a person there acknowledges it (``warning.acknowledged``); a node that has not
acknowledged it within WARNING_ACK_HOURS of receiving it raises the alarm
(``warning.alarmed``), which the routing policy carries to its parent, the
next level up. All three are events, so every node on the path folds the same
chain and a rebuild gives it back. ``chain`` reads it for the pages and the API.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from node import log, store, trust
from node.clock import iso, parse
from node.errors import NodeError
from node.settings import Setting, at_least_one, declare
from node.warnings.commands import acks, get
from node.warnings.rules import ALARMED, OPEN, RECEIVED


def receipts(node, warning_id: str) -> list[dict]:
    rows = node.db.conn.execute("SELECT node_id, at, ts FROM warning_receipts WHERE "
                                "warning_id = ? ORDER BY ts, node_id", (warning_id,))
    return [dict(zip(("node_id", "at", "ts"), r, strict=True)) for r in rows]


def alarms(node, warning_id: str) -> list[dict]:
    rows = node.db.conn.execute("SELECT node_id, hours, at FROM warning_alarms WHERE "
                                "warning_id = ? ORDER BY at, node_id", (warning_id,))
    return [dict(zip(("node_id", "hours", "at"), r, strict=True)) for r in rows]


def chain(node, warning_id: str) -> list[dict]:
    """The same-day chain: one row per level, from the origin up, as this node knows it.

    Each row has the unit (``node_id``, ``tier``), when it raised the warning
    (the origin) or received it, who acknowledged it and when, the alarm it
    raised for not acknowledging in time, and, while it has not acknowledged,
    ``ack_due`` (the time the alarm falls due) and ``late`` (whether that time has
    passed, counted now, so a page shows a lapse before the alarm's job has run).
    Times are in this node's time zone.
    """
    w = get(node, warning_id)
    hours = node.settings["WARNING_ACK_HOURS"]
    now = node.clock()
    tree = trust.tree(node.db)
    acked = {a["node_id"]: a for a in acks(node, warning_id)}
    received = {r["node_id"]: r for r in receipts(node, warning_id)}
    alarmed = {a["node_id"]: a for a in alarms(node, warning_id)}
    path = tree.ancestry(w["origin_node"])
    others = sorted((set(acked) | set(received) | set(alarmed)) - set(path))
    out = []
    for unit in path + others:
        if unit != w["origin_node"] and unit not in received and unit not in acked \
                and unit not in alarmed:
            continue  # a level the warning has not reached (or not yet told us about)
        row = {"node_id": unit, "tier": tree.tiers.get(unit), "origin": unit == w["origin_node"],
               "raised_at": w["raised_at"] if unit == w["origin_node"] else None,
               "received_at": None, "acknowledged_at": None, "acknowledged_by": None,
               "alarmed_at": None, "alarm_hours": None, "ack_due": None, "late": False}
        if unit in received:
            row["received_at"] = received[unit]["at"]
        if unit in acked:
            row["acknowledged_at"] = acked[unit]["at"]
            row["acknowledged_by"] = acked[unit]["actor"]
        if unit in alarmed:
            row["alarmed_at"] = alarmed[unit]["at"]
            row["alarm_hours"] = alarmed[unit]["hours"]
        if unit in received and unit not in acked and w["status"] in OPEN:
            due = parse(received[unit]["ts"]) + timedelta(hours=hours)
            row["ack_due"] = due.astimezone(node.tz).strftime("%Y-%m-%d %H:%M")
            row["late"] = now >= due
        out.append(row)
    return out


def _system_event(node, event_type: str, warning_id: str, body: dict) -> bool:
    """Append an automatic event in a savepoint; False (nothing written) if the fold refuses."""
    try:
        with store.write(node.db):
            log.append(node, log.SYSTEM, event_type, warning_id, body)
    except NodeError as e:
        logging.getLogger("siji.warnings").warning("%s %s not recorded: %s", event_type,
                                                   warning_id, e.english())
        return False
    return True


def record_receipts(node, subjects=None) -> list[str]:
    """Record ``warning.received`` for each warning this node holds from a node below it and
    has no receipt of yet (only those in ``subjects`` if given); returns their ids.

    Idempotent: one receipt per node per warning. Called where a bundle from a
    neighbour is applied, in its transaction, and by the periodic warning job for
    anything that arrived otherwise. The caller holds a write transaction.
    """
    sql = ("SELECT id, origin_node FROM warnings w WHERE origin_node != ? AND NOT EXISTS "
           "(SELECT 1 FROM warning_receipts r WHERE r.warning_id = w.id AND r.node_id = ?)")
    params: list = [node.id, node.id]
    if subjects is not None:
        # a bundle's warnings (more than 500 at once is not real; the job would get the rest)
        params += sorted({s for s in subjects if s.startswith("YJ-")})[:500]
        if len(params) == 2:
            return []
        sql += f" AND id IN ({','.join('?' * (len(params) - 2))})"
    rows = node.db.conn.execute(sql + " ORDER BY id", params).fetchall()
    tree, done = trust.tree(node.db), []
    for warning_id, origin in rows:
        if node.id not in tree.ancestry(origin)[1:]:
            continue  # only a level above the origin receives a warning
        if _system_event(node, RECEIVED, warning_id, {}):
            done.append(warning_id)
    return done


def raise_alarms(node) -> list[str]:
    """Raise ``warning.alarmed`` for each open warning this node received more than
    WARNING_ACK_HOURS ago and has not acknowledged; returns their ids.

    One alarm per node per warning; the routing policy takes it to this node's
    parent, the next level up. The top of the network (no parent) has no level
    to alarm and raises none. The caller holds a write transaction.
    """
    if not node.settings["PARENT_ID"]:
        return []
    hours = node.settings["WARNING_ACK_HOURS"]
    cutoff = iso(node.clock() - timedelta(hours=hours))
    marks = ",".join("?" * len(OPEN))
    rows = node.db.conn.execute(
        "SELECT r.warning_id FROM warning_receipts r JOIN warnings w ON w.id = r.warning_id "
        f"WHERE r.node_id = ? AND r.ts <= ? AND w.status IN ({marks}) "
        "AND NOT EXISTS (SELECT 1 FROM warning_acks a WHERE a.warning_id = r.warning_id "
        "AND a.node_id = r.node_id) "
        "AND NOT EXISTS (SELECT 1 FROM warning_alarms x WHERE x.warning_id = r.warning_id "
        "AND x.node_id = r.node_id) ORDER BY r.warning_id",
        (node.id, cutoff, *OPEN)).fetchall()
    return [warning_id for (warning_id,) in rows
            if _system_event(node, ALARMED, warning_id, {"node": node.id, "hours": hours})]


def alarms_below(node) -> list[dict]:
    """Open warnings a node directly below this one did not acknowledge in time and still
    has not: its alarm came up here. One row per warning and late node, newest first."""
    marks = ",".join("?" * len(OPEN))
    rows = node.db.conn.execute(
        "SELECT x.warning_id, x.node_id, x.hours, x.at FROM warning_alarms x "
        "JOIN warnings w ON w.id = x.warning_id JOIN nodes n ON n.node_id = x.node_id "
        f"WHERE n.parent_id = ? AND x.node_id != ? AND w.status IN ({marks}) "
        "AND NOT EXISTS (SELECT 1 FROM warning_acks a WHERE a.warning_id = x.warning_id "
        "AND a.node_id = x.node_id) ORDER BY x.at DESC, x.warning_id",
        (node.id, node.id, *OPEN)).fetchall()
    return [{**get(node, warning_id), "late_node": late, "alarm_hours": hours, "alarmed_at": at}
            for warning_id, late, hours, at in rows]


def waiting_here(node, limit: int = 5) -> dict[str, dict]:
    """Warnings waiting for this unit: from below and not yet acknowledged here, and alarms
    of units directly below (alarms_below); kind -> {"count", "items": [{"id", "level",
    "at"}]}, the riskiest and newest first."""
    marks = ",".join("?" * len(OPEN))
    where = (f"FROM warnings w WHERE w.origin_node != ? AND w.status IN ({marks}) AND NOT "
             "EXISTS (SELECT 1 FROM warning_acks a WHERE a.warning_id = w.id AND "
             "a.node_id = ?)")
    params = (node.id, *OPEN, node.id)
    count = node.db.conn.execute(f"SELECT count(*) {where}", params).fetchone()[0]
    rows = node.db.conn.execute(f"SELECT id, risk_level, raised_at {where} ORDER BY "
                                "risk_score DESC, raised_at DESC LIMIT ?",
                                (*params, limit)).fetchall() if count else []
    late = alarms_below(node)
    return {"warnings": {"count": count, "items": [
                {"id": r[0], "level": r[1], "at": r[2]} for r in rows]},
            "alarms": {"count": len(late), "items": [
                {"id": w["id"], "level": w["risk_level"], "at": w["alarmed_at"]}
                for w in late[:limit]]}}


declare(
    Setting("WARNING_ACK_HOURS", 2, "Hours a node above a warning's origin has to acknowledge "
            "(签收) it after receiving it; then it raises the alarm, which goes to its parent, "
            "the next level up, whatever the warning's risk (`siji serve` checks each minute).",
            int, at_least_one("WARNING_ACK_HOURS")),
)
