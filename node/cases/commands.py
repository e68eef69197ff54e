"""信访件 commands: what the CLI, the pages and the API call, and the reads they show.

Each command checks what it can before signing (the user's role, the case
exists, the fields) and appends one event; the fold checks the rule again,
so a command and a remote event are held to the same rule. The caller owns
the transaction.
"""

from __future__ import annotations

import json
from datetime import date

from node import authority, deadlines, disclosure, log, repeats, trust
from node.cases.fields import new_query_code  # noqa: F401 - part of this package's API
from node.cases.fold import APPOINTMENT_COLUMNS, CASE_COLUMNS, ORDER_COLUMNS
from node.cases.rules import RULES
from node.cases.vocab import CLOSED, OPEN, STATES, TIER_CODES, code_of
from node.errors import N_, IllegalTransition, NotAllowed, NotFound, ValidationError
from node.store import next_value
from node.tiers import TIER_ROLES


def new_case_id(node) -> str:
    year = node.today().year
    serial = next_value(node.db, f"case:{year}")
    return f"{TIER_CODES[node.tier]}-{node.id}-{year}-{serial:04d}"


def register(node, actor, fields: dict):
    """Register a petition (登记); returns the event. The caller owns the transaction."""
    rule = RULES["register"]
    if actor.role not in rule.roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=actor.role,
                         action="register")
    people = fields.get("petitioners")
    for i, person in enumerate(people if isinstance(people, list) else ()):
        for key in disclosure.FIELDS:  # a commitment is this node's to make, not the user's
            if isinstance(person, dict) and isinstance(person.get(key), dict):
                raise ValidationError(N_("%(field)s must be text"),
                                      field=f"petitioners[{i}].{key}")
    fields = dict(fields)
    if fields.get("first_time") in (None, True):  # derived: one can only say it is not
        fields["first_time"] = not fields.get("repeat_of") and not _known_petitioners(
            node, people) and not repeats.matches(node, people)
    if fields.get("received_by"):  # 领导接待: the receiving leader, an account here
        fields["received_by"] = leader_account(node, fields["received_by"])[1]
    body = rule.clean(fields)
    # fields that never go above a tier are signed as commitments (node/disclosure.py)
    body, disclosed = disclosure.commit(body, node.settings["NEVER_ABOVE"], node.tier)
    names = [p["name"] for p in fields["petitioners"] if isinstance(p.get("name"), str)]
    event = log.append(node, actor, "case.registered", new_case_id(node), body, disclosed,
                       names=names)
    # the petitioners' keyed digests go up beside it, so that repeats are found above
    repeats.record_seen(node, event.subject, fields["petitioners"], body["category"],
                        node.today().isoformat())
    if body["people_count"] >= node.settings["COLLECTIVE_MIN_PEOPLE"] and node.tier != "city":
        # Art. 25: a collective petition goes to every level above the same day (urgent)
        log.append(node, actor, RULES["report"].type, event.subject, {}, names=names)
    return event


def leader_account(node, who: str) -> tuple[str, str]:
    """(username, display name) of an active leader account of this node, named by either."""
    row = node.db.conn.execute(
        "SELECT username, display_name FROM users WHERE (username = ? OR display_name = ?) "
        "AND role = 'leader' AND disabled = 0 ORDER BY username LIMIT 1",
        (str(who).strip().lower(), str(who).strip())).fetchone()
    if row is None:
        raise ValidationError(N_("%(field)s: %(value)s is not a leader's account at this node"),
                              field="leader", value=who)
    return row[0], row[1]


def _known_petitioners(node, people) -> bool:
    """Whether a case of one of these people is already known at this node (by ID number,
    or by name and phone): then the petition is not a first one (初信初访)."""
    for p in people if isinstance(people, list) else ():
        if not isinstance(p, dict):
            continue
        if isinstance(p.get("id_number"), str) and node.db.conn.execute(
                "SELECT 1 FROM petitioners WHERE id_number = ?",
                (p["id_number"].strip().upper(),)).fetchone():
            return True
        if isinstance(p.get("name"), str) and isinstance(p.get("phone"), str) and (
                node.db.conn.execute("SELECT 1 FROM petitioners WHERE name = ? AND phone = ?",
                                     (p["name"].strip(), p["phone"].strip())).fetchone()):
            return True
    return False


def act(node, actor, case_id: str, action: str, fields: dict):
    """Take one action on a case; refuses with a reason if it is not allowed now."""
    rule = RULES.get(action)
    if rule is None or action == "register":
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="action",
                              value=action)
    if actor.role not in rule.roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=actor.role,
                         action=action)
    case = get(node, case_id)
    fields = dict(fields)
    if action == "escalate":
        fields.setdefault("to", _escalate_to(node, case))
        if not fields["to"]:
            raise NotAllowed(N_("this node has no parent yet: enroll it with its parent first "
                                "(or set PARENT_ID)"))

    if action in ("lead", "appoint"):  # 包案, 约访: a leader's account at this node
        who = fields.get("leader") or (actor.username if actor.role == "leader" else None)
        if not who:
            raise ValidationError(N_("%(field)s is required"), field="leader")
        fields["leader"], fields["leader_name"] = leader_account(node, who)
    if action == "appoint" and not fields.get("appointment"):
        year = node.today().year
        fields["appointment"] = (f"YF-{node.id}-{year}-"
                                 f"{next_value(node.db, f'appointment:{year}'):04d}")
    if action == "supervise" and not fields.get("order_id"):
        year = node.today().year
        fields["order_id"] = f"DB-{node.id}-{year}-{next_value(node.db, f'order:{year}'):04d}"
    body = rule.clean(fields)
    today = node.today().isoformat()
    for key in ("deadline",):
        if key in body and body[key] <= today:
            raise ValidationError(N_("%(field)s: the date %(value)s is in the past"),
                                  field=key, value=body[key])
    if action == "merge":
        target = get(node, body["into"])
        if target["state"] in CLOSED:
            raise IllegalTransition(N_("a repeat petition joins an open case; %(id)s is closed"),
                                    id=body["into"])
    names = [p["name"] for p in petitioners(node, case["id"]) if p["name"]]
    return log.append(node, actor, rule.type, case["id"], body, names=names)


def _escalate_to(node, case: dict) -> str | None:
    """This node's parent, or past it when the case accuses it (Art. 30)."""
    parent = node.settings["PARENT_ID"] or None
    if parent and case["accused_unit"] == parent:
        above = node.db.conn.execute("SELECT parent_id FROM nodes WHERE node_id = ?",
                                     (parent,)).fetchone()
        return above[0] if above and above[0] else parent
    return parent


def get(node, case_id: str) -> dict:
    cur = node.db.conn.execute(f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE id = ?",
                               (case_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(N_("no case %(id)s"), id=case_id)
    return dict(zip(CASE_COLUMNS, row, strict=True))


def petitioners(node, case_id: str) -> list[dict]:
    """The case's petitioners; ``withheld`` names the fields kept below this tier and the
    tier each stays at (node/disclosure.py)."""
    rows = node.db.conn.execute("SELECT name, id_number, phone, address, representative, "
                                "withheld FROM petitioners WHERE case_id = ? ORDER BY idx",
                                (case_id,))
    return [{**dict(zip(("name", "id_number", "phone", "address", "representative"), r[:5],
                        strict=True)), "withheld": json.loads(r[5]) if r[5] else {}}
            for r in rows]


def orders(node, case_id: str) -> list[dict]:
    rows = node.db.conn.execute(f"SELECT {', '.join(ORDER_COLUMNS)} FROM supervision_orders "
                                "WHERE case_id = ? ORDER BY issued_on, id", (case_id,))
    return [dict(zip(ORDER_COLUMNS, r, strict=True)) for r in rows]


# Overdue (超期), the one definition every page, command and figure uses: the current
# state has a deadline (``due_on``, the earliest the fold keeps) and it is before today.
# ISO dates compare as text, so this is days_overdue(due_on, today) > 0.
OVERDUE_SQL = "due_on IS NOT NULL AND due_on < ?"


def order_overdue(order: dict, today: str) -> bool:
    """A supervision order (督办单) is overdue when it has had no feedback by its deadline."""
    return order["status"] in ("issued", "acknowledged") and order["deadline"] < today


def appointments(node, case_id: str | None = None, leader: str | None = None,
                 unit: str | None = None) -> list[dict]:
    """约访 of a case, or of a leader (an account at ``unit``), in time order."""
    sql = f"SELECT {', '.join(APPOINTMENT_COLUMNS)} FROM appointments WHERE 1 = 1"
    params: list = []
    for column, value in (("case_id", case_id), ("leader", leader), ("unit", unit)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    rows = node.db.conn.execute(sql + " ORDER BY at, id", params)
    return [dict(zip(APPOINTMENT_COLUMNS, r, strict=True)) for r in rows]


def listing(node, *, state: str | None = None, due: str | None = None,
            holder: str | None = None) -> list[dict]:
    """Cases, newest first; ``due`` is 'soon' or 'overdue' (relative to today)."""
    sql = f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE 1 = 1"
    params: list = []
    if state:
        sql += " AND state = ?"
        params.append(code_of(STATES, "state", state))
    if holder:
        sql += " AND holder = ?"
        params.append(holder)
    if due:
        if due not in ("soon", "overdue"):
            raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="due",
                                  value=due)
        sql += " AND due_on IS NOT NULL"
    rows = [dict(zip(CASE_COLUMNS, r, strict=True))
            for r in node.db.conn.execute(sql + " ORDER BY registered_on DESC, id DESC", params)]
    today = node.today()
    for row in rows:
        row["days_overdue"] = (deadlines.days_overdue(date.fromisoformat(row["due_on"]), today)
                               if row["due_on"] else 0)
    if due == "overdue":  # OVERDUE_SQL, as days
        rows = [r for r in rows if r["days_overdue"] > 0]
    elif due == "soon":
        rows = [r for r in rows if deadlines.is_due_soon(
            date.fromisoformat(r["due_on"]), today, node.settings["DUE_SOON_DAYS"])]
    return rows


def fitting_actions(node, case: dict) -> list[str]:
    """The actions the case allows now at this node, whoever takes them, the usual next
    step first."""
    tier = node.tier
    tiers = trust.tree(node.db).tiers
    case_orders = orders(node, case["id"])
    targets = {o["status"] for o in case_orders if o["target"] == node.id}
    issued = {o["status"] for o in case_orders if o["issuer"] == node.id}
    fits = {
        "sign": case["handover"] == "pending", "return": case["handover"] == "pending",
        # the petitioner's right to ask, while its 30 days run (fold: request_until)
        "review_request": case["request_kind"] == "review_request"
        and case["request_until"] >= node.today().isoformat(),
        "recheck_request": case["request_kind"] == "recheck_request"
        and case["request_until"] >= node.today().isoformat(),
        "extend": not case["extended_days"] and not (  # only before the limit ends
            case["due_kind"] == "settle" and case["due_on"] < node.today().isoformat()),
        "archive": not case["archived"],
        "escalate": bool(node.settings["PARENT_ID"]),
        "refer": bool(node.db.conn.execute("SELECT 1 FROM nodes WHERE parent_id = ?",
                                           (node.id,)).fetchone()),
        "urge": authority.above(tiers, node.id, case["holder"]),
        "supervise": authority.above(tiers, node.id, case["holder"]),
        "supervision_ack": "issued" in targets,
        "supervision_feedback": bool(targets & {"issued", "acknowledged"}),
        "supervision_close": "feedback" in issued,
        "report": bool(case["collective"]) and not node.db.conn.execute(
            "SELECT 1 FROM events WHERE subject = ? AND type = 'case.reported'",
            (case["id"],)).fetchone(),
        "urge_ack": case["holder"] == node.id and case["urge_count"] > node.db.conn.execute(
            "SELECT count(*) FROM events WHERE subject = ? AND type = 'case.urge_acknowledged'",
            (case["id"],)).fetchone()[0],
    }
    fitting = [a for a, rule in RULES.items() if a != "register" and tier in rule.tiers
               and case["state"] in rule.states
               and _may_decide(node, rule, case) and fits.get(a, True)]
    return _in_usual_order(case, fitting)


# What people usually do next, first: what someone above waits for (a supervision order,
# an urge, a referral to sign for), then the state's next step in the regulation's order,
# then the rest; notes, corrections, merges and withdrawals last.
PRESSING = ("sign", "supervision_ack", "urge_ack", "supervision_feedback", "supervision_close",
            "report")
USUAL = {
    "registered": ("accept", "escalate", "settle", "not_accept", "refer_out", "refer"),
    "accepted": ("assign", "reply", "extend", "escalate", "refer", "refer_out"),
    "in_progress": ("reply", "extend", "assign", "escalate", "refer", "refer_out"),
    "replied": ("followup", "close", "reopen", "review_request"),
    "review_requested": ("review", "escalate"),
    "reviewed": ("close", "recheck_request"),
    "recheck_requested": ("close", "escalate"),
    "concluded": ("review_request", "recheck_request", "archive"),
}
LAST = ("return", "urge", "supervise", "note", "correct", "merge", "withdraw", "archive")


def _in_usual_order(case: dict, actions: list[str]) -> list[str]:
    usual = USUAL.get(case["state"], ())
    rank = {a: i for i, a in enumerate((*PRESSING, *usual))}
    last = {a: i for i, a in enumerate(LAST)}
    return sorted(actions, key=lambda a: (a in last, last.get(a, rank.get(a, len(rank)))))


def suggested(case: dict, actions: list[str]) -> str | None:
    """The usual next step among ``actions`` (allowed_actions' first), if it is one."""
    if actions and actions[0] in (*PRESSING, *USUAL.get(case["state"], ())):
        return actions[0]
    return None


def allowed_actions(node, actor, case: dict) -> list[str]:
    """The actions this user may take on this case now, the usual next step first (for
    pages and `case show`)."""
    return [a for a in fitting_actions(node, case) if _role_may(node, actor.role, a)]


def others_may(node, actor, case: dict) -> dict[str, list[str]]:
    """Actions that fit the case now but need another role here: action -> those roles
    (a handler is told that 结案 needs a leader, rather than not seeing it at all)."""
    out = {}
    for a in fitting_actions(node, case):
        if not _role_may(node, actor.role, a):
            roles = [r for r in RULES[a].roles if r in TIER_ROLES[node.tier] and r != "admin"]
            if roles:
                out[a] = roles
    return out


def _role_may(node, role: str, action: str) -> bool:
    return role in RULES[action].roles and role in TIER_ROLES[node.tier]


def _may_decide(node, rule, case: dict) -> bool:
    if not rule.decision:
        return True
    if rule.decision_writer == "holder_or_referrer":  # (fold._check says it in full)
        return (case["holder"] == node.id and case["handover"] != "pending") or (
            case["referred_by"] == node.id)
    return case["holder"] == node.id


def waiting_here(node, limit: int = 5) -> dict[str, list[dict]]:
    """What waits for this unit to act, newest first (at most ``limit`` of each, with the
    count of all): cases escalated here not yet decided, referrals to sign for, urges and
    supervision orders not yet signed for. Read from indexes, cheap enough for every page.

    Returns kind -> {"count": n, "items": [{"id", "case_id", "at"}]}."""
    open_marks = ",".join("?" * len(OPEN))
    queries = {
        "escalated": ("FROM cases WHERE holder = ? AND origin_node != ? AND state = "
                      "'registered' AND handover IS NULL", (node.id, node.id),
                      "id, id, updated_at", "updated_at"),
        "referrals": ("FROM cases WHERE holder = ? AND handover = 'pending'", (node.id,),
                      "id, id, updated_at", "updated_at"),
        "orders": ("FROM supervision_orders WHERE target = ? AND status = 'issued'",
                   (node.id,), "id, case_id, issued_on", "issued_on"),
        "urges": ("FROM cases c JOIN events u ON u.subject = c.id WHERE c.holder = ? AND "
                  f"c.urge_count > 0 AND c.state IN ({open_marks}) AND u.type = 'case.urged' "
                  "AND NOT EXISTS (SELECT 1 FROM events a WHERE a.subject = u.subject AND "
                  "a.type = 'case.urge_acknowledged' AND json_extract(a.body, '$.urge') = "
                  "u.origin || ':' || u.seq)",
                  (node.id, *OPEN), "u.origin || ':' || u.seq, u.subject, u.ts", "u.ts"),
    }
    out = {}
    for kind, (where, params, columns, order) in queries.items():
        count = node.db.conn.execute(f"SELECT count(*) {where}", params).fetchone()[0]
        rows = node.db.conn.execute(f"SELECT {columns} {where} ORDER BY {order} DESC "
                                    "LIMIT ?", (*params, limit)).fetchall() if count else []
        out[kind] = {"count": count, "items": [
            {"id": r[0], "case_id": r[1], "at": r[2]} for r in rows]}
    return out


ORDERS_OPEN = ("issued", "acknowledged", "feedback")  # a 督办单 not yet closed


def orders_by(node, *, issuer: str | None = None, target: str | None = None,
              statuses: tuple[str, ...] | None = None, limit: int | None = None) -> list[dict]:
    """Supervision orders across cases, issued by or addressed to a unit, newest first
    (only those in ``statuses``, at most ``limit``)."""
    sql = f"SELECT {', '.join(ORDER_COLUMNS)} FROM supervision_orders WHERE 1 = 1"
    params: list = []
    for column, value in (("issuer", issuer), ("target", target)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    if statuses:
        sql += f" AND status IN ({','.join('?' * len(statuses))})"
        params.extend(statuses)
    sql += " ORDER BY issued_on DESC, id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return [dict(zip(ORDER_COLUMNS, r, strict=True)) for r in node.db.conn.execute(sql, params)]
