"""预警 commands: raise a warning, act on it, and read warnings for the pages and the CLI."""

from __future__ import annotations

from node import log, store
from node.cases.vocab import code_of
from node.errors import N_, NotAllowed, NotFound, ValidationError
from node.tiers import TIER_ROLES
from node.warnings.risk import STATUSES
from node.warnings.rules import COLUMNS, RULES


def raise_warning(node, actor, fields: dict):
    """Raise an early warning (上报预警); returns the event."""
    rule = RULES["raise"]
    if actor.role not in rule.roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=actor.role,
                         action="raise")
    body = rule.clean(fields)
    year = node.today().year
    warning_id = f"YJ-{node.id}-{year}-{store.next_value(node.db, f'warning:{year}'):04d}"
    return log.append(node, actor, rule.type, warning_id, body)


def act(node, actor, warning_id: str, action: str, fields: dict):
    rule = RULES.get(action)
    if rule is None or action == "raise":
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="action",
                              value=action)
    get(node, warning_id)
    body = rule.clean(fields)
    if action == "handle" and not body.get("measures"):
        raise ValidationError(N_("%(field)s is required"), field="measures")
    return log.append(node, actor, rule.type, warning_id, body)


def allowed_actions(node, actor, warning: dict) -> list[str]:
    """What this user may do to the warning now, in the rule's order (签收 first): never
    签收 at the node that raised it (the rule's writer is above_raiser), never twice."""
    acked = any(a["node_id"] == node.id for a in acks(node, warning["id"]))
    own = warning["origin_node"] == node.id
    return [a for a, rule in RULES.items()
            if a != "raise" and actor.role in rule.roles and actor.role in TIER_ROLES[node.tier]
            and warning["status"] in rule.states
            and not (rule.writer == "above_raiser" and own)
            and not (a == "acknowledge" and acked)]


def get(node, warning_id: str) -> dict:
    row = node.db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM warnings WHERE id = ?",
                               (warning_id,)).fetchone()
    if row is None:
        raise NotFound(N_("no warning %(id)s"), id=warning_id)
    return dict(zip(COLUMNS, row, strict=True))


def acks(node, warning_id: str) -> list[dict]:
    rows = node.db.conn.execute("SELECT node_id, actor, at FROM warning_acks WHERE warning_id "
                                "= ? ORDER BY at, node_id", (warning_id,))
    return [dict(zip(("node_id", "actor", "at"), r, strict=True)) for r in rows]


def listing(node, status: str | None = None) -> list[dict]:
    sql = f"SELECT {', '.join(COLUMNS)} FROM warnings"
    params = []
    if status:
        sql += " WHERE status = ?"
        params.append(code_of(STATUSES, "status", status))
    rows = node.db.conn.execute(sql + " ORDER BY risk_score DESC, raised_at DESC", params)
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]
