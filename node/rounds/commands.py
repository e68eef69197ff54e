"""排查 commands: schedule a round, report it done, keep the register; and the reads the
pages, the API and the CLI show. The caller owns the transaction."""

from __future__ import annotations

import json

from node import disclosure, log, store, trust
from node.errors import N_, IllegalTransition, NotAllowed, NotFound, ValidationError
from node.rounds.rules import (
    ENTRY_COLUMNS,
    ENTRY_KINDS,
    HISTORY_COLUMNS,
    RECORDED,
    REPORTED,
    RESOLVED,
    RISKS,
    ROUND_COLUMNS,
    SCHEDULED,
    SCHEDULING_TIERS,
    UNIT_COLUMNS,
    UPDATED,
    clean_record,
    clean_report,
    clean_resolve,
    clean_schedule,
    clean_update,
)

ORDER = {"serious": 0, "major": 1, "general": 2}


def below(node, tier: str | None = None) -> list[str]:
    """The units below this node it knows of (of ``tier``), in id order."""
    tree = trust.tree(node.db)
    return sorted(n for n in tree.parents if n != node.id and node.id in tree.ancestry(n)[1:]
                  and (tier is None or tree.tiers.get(n) == tier))


def schedule(node, actor, fields: dict):
    """Schedule a round (排查) for the units it names (default: every village below)."""
    if node.tier not in SCHEDULING_TIERS:
        raise NotAllowed(N_("a %(tier)s node may not %(action)s"), tier=node.tier,
                         action="schedule")
    fields = dict(fields)
    if not fields.get("scope"):
        fields["scope"] = below(node, "village") or below(node)
    body = clean_schedule(fields)
    unknown = [u for u in body["scope"] if u not in below(node)]
    if unknown:
        raise ValidationError(N_("%(field)s: %(value)s is not a unit below this node"),
                              field="scope", value=unknown[0])
    if body["deadline"] < node.today().isoformat():
        raise ValidationError(N_("%(field)s: the date %(value)s is in the past"),
                              field="deadline", value=body["deadline"])
    year = node.today().year
    round_id = f"PC-{node.id}-{year}-{store.next_value(node.db, f'round:{year}'):04d}"
    return log.append(node, actor, SCHEDULED, round_id, body)


def report(node, actor, round_id: str, fields: dict | None = None):
    """This unit reports the round done, with the counts of its register in the round."""
    found = get(node, round_id)
    if node.id not in {u["unit"] for u in found["units"]}:
        raise NotAllowed(N_("%(node)s is not a unit of screening round %(id)s"), node=node.id,
                         id=round_id)
    counts = node.db.conn.execute(
        "SELECT count(*), coalesce(sum(first_round = ?), 0), coalesce(sum(risk = 'serious'), 0) "
        "FROM register_entries WHERE origin_node = ? AND last_round = ?",
        (round_id, node.id, round_id)).fetchone()
    body = clean_report({"checked": counts[0], "added": counts[1], "high": counts[2],
                         **(fields or {})})
    return log.append(node, actor, REPORTED, round_id, body)


def get(node, round_id: str) -> dict:
    row = node.db.conn.execute(f"SELECT {', '.join(ROUND_COLUMNS)} FROM rounds WHERE id = ?",
                               (round_id,)).fetchone()
    if row is None:
        raise NotFound(N_("no screening round %(id)s"), id=round_id)
    found = dict(zip(ROUND_COLUMNS, row, strict=True))
    units = node.db.conn.execute(f"SELECT {', '.join(UNIT_COLUMNS)} FROM round_units WHERE "
                                 "round_id = ? ORDER BY unit", (round_id,)).fetchall()
    today = node.today().isoformat()
    found["units"] = [{**dict(zip(UNIT_COLUMNS, u, strict=True)),
                       "overdue": u[1] is None and found["deadline"] < today} for u in units]
    found["missing"] = [u["unit"] for u in found["units"] if u["reported_on"] is None]
    return found


def listing(node) -> list[dict]:
    """Rounds this node scheduled or is a unit of (or relays), newest first, each with how
    many of its units have reported."""
    rows = node.db.conn.execute(
        f"SELECT {', '.join('r.' + c for c in ROUND_COLUMNS)}, count(u.unit), "
        "count(u.reported_on), max(u.unit = ? AND u.reported_on IS NULL) FROM rounds r "
        "LEFT JOIN round_units u ON u.round_id = r.id GROUP BY r.id "
        "ORDER BY r.scheduled_on DESC, r.id DESC", (node.id,)).fetchall()
    today = node.today().isoformat()
    out = []
    for r in rows:
        found = dict(zip(ROUND_COLUMNS, r[:len(ROUND_COLUMNS)], strict=True))
        found.update(units=r[-3], reported=r[-2], mine_due=bool(r[-1]),
                     overdue=bool(r[-1]) and found["deadline"] < today)
        out.append(found)
    return out


# -- the register (登记造册) ----------------------------------------------------------

def _names(people) -> list[str]:
    return [p["name"] for p in people or () if isinstance(p, dict) and isinstance(
        p.get("name"), str)]


def _commit(node, body: dict) -> tuple[dict, dict]:
    """A key person's fields limited by NEVER_ABOVE become commitments (node/disclosure.py)."""
    return disclosure.commit(body, node.settings["NEVER_ABOVE"], node.tier)


def record(node, actor, fields: dict):
    """Record an entry in this unit's register."""
    body = clean_record(dict(fields))
    if body.get("round"):
        get(node, body["round"])
    body, disclosed = _commit(node, body)
    year = node.today().year
    entry_id = f"DJ-{node.id}-{year}-{store.next_value(node.db, f'entry:{year}'):04d}"
    return log.append(node, actor, RECORDED, entry_id, body, disclosed,
                      names=_names(fields.get("people")))


def update(node, actor, entry_id: str, fields: dict):
    """Check an entry again (in a round), change its risk, who is responsible, measures."""
    entry = get_entry(node, entry_id)
    _own(node, entry)
    body = clean_update(dict(fields))
    if body.get("round"):
        get(node, body["round"])
    return log.append(node, actor, UPDATED, entry_id, body,
                      names=[p["name"] for p in people_of(node, entry_id) if p["name"]])


def resolve(node, actor, entry_id: str, fields: dict):
    """Close an entry as resolved (已化解)."""
    entry = get_entry(node, entry_id)
    _own(node, entry)
    if entry["status"] != "open":
        raise IllegalTransition(N_("register entry %(id)s is resolved"), id=entry_id)
    return log.append(node, actor, RESOLVED, entry_id, clean_resolve(dict(fields)),
                      names=[p["name"] for p in people_of(node, entry_id) if p["name"]])


def _own(node, entry: dict) -> None:
    if entry["origin_node"] != node.id:
        raise NotAllowed(N_("only the unit whose register holds %(id)s may change it"),
                         id=entry["id"])


def get_entry(node, entry_id: str) -> dict:
    row = node.db.conn.execute(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM register_entries "
                               "WHERE id = ?", (entry_id,)).fetchone()
    if row is None:
        raise NotFound(N_("no register entry %(id)s"), id=entry_id)
    return dict(zip(ENTRY_COLUMNS, row, strict=True))


def people_of(node, entry_id: str) -> list[dict]:
    rows = node.db.conn.execute("SELECT name, id_number, phone, withheld FROM register_people "
                                "WHERE entry_id = ? ORDER BY idx", (entry_id,))
    return [{"name": r[0], "id_number": r[1], "phone": r[2],
             "withheld": json.loads(r[3]) if r[3] else {}} for r in rows]


def history(node, entry_id: str) -> list[dict]:
    rows = node.db.conn.execute(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM register_history "
                                "WHERE entry_id = ? ORDER BY n", (entry_id,))
    return [{**dict(zip(HISTORY_COLUMNS, r, strict=True)), "what": json.loads(r[6])}
            for r in rows]


def register(node, units: set[str] | None = None, status: str | None = "open",
             kind: str | None = None) -> list[dict]:
    """The register: entries of these units (default: this node's), riskiest first."""
    units = units or {node.id}
    sql = (f"SELECT {', '.join(ENTRY_COLUMNS)} FROM register_entries WHERE origin_node IN "
           f"({', '.join('?' * len(units))})")
    params: list = sorted(units)
    if status:
        sql += " AND status = ?"
        params.append(status)
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    rows = [dict(zip(ENTRY_COLUMNS, r, strict=True)) for r in node.db.conn.execute(sql, params)]
    rows.sort(key=lambda r: (r["origin_node"], ORDER.get(r["risk"], 9), r["id"]))
    for r in rows:
        r["people"] = people_of(node, r["id"])
    return rows


__all__ = ["ENTRY_KINDS", "RISKS", "below", "get", "get_entry", "history", "listing",
           "people_of", "record", "register", "report", "resolve", "schedule", "update"]
