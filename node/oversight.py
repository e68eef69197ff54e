"""Supervision requests (督办请求): how a level reaches an overdue case it never held.

An urge (催办) or a supervision order (督办单) on a case is written by a node of
the case's circle above its holder (docs/authority.md). The city sees a case
overdue below it only on its supervision list (node/figures.py): it is not
in the circle, so it cannot urge it itself. It asks instead: a request,
signed by the city, addressed to the unit above the holder (the holder's
parent; the holder itself when that parent is the requester), naming the
case, urge or order, a message and, for an order, a deadline. The request
travels down the tree path to that unit. There a handler urges the case or
issues the 督办单 through the normal path if the unit has the case (it is in
its circle), or acts offline if not, and answers: urged, ordered, or noted,
with a note. The answer travels back up the same path, so the requester's
list shows it.

Events: ``oversight.requested`` (subject ``DQ-<node>-<year>-<serial>``, in
the requester's own number series, written by a node above the unit it
addresses) and ``oversight.answered`` (written by the addressed unit, once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node import i18n, log, registry, trust, validate
from node.authority import NoAuthority, Row, check_role, is_above
from node.cases.vocab import OFFICE
from node.errors import N_, IllegalTransition, NodeError, NotAllowed, NotFound, ValidationError
from node.store import next_value

REQUESTED, ANSWERED = "oversight.requested", "oversight.answered"
ACTIONS = {"urge": ("催办", "urge"), "supervise": ("督办单", "supervision order")}
OUTCOMES = {"urged": ("已催办", "urged"), "ordered": ("已下发督办单", "order issued"),
            "noted": ("已处理", "dealt with")}
i18n.add_labels("oversight_action", ACTIONS)
i18n.add_labels("outcome", OUTCOMES)
COLUMNS = ("id", "requester", "to_unit", "case_id", "holder", "action", "message",
           "deadline", "requested_at", "status", "outcome", "note", "answered_at", "answered_by")


def _choice(name: str, value, vocabulary: dict) -> str:
    if value not in vocabulary:
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field=name,
                              value=str(value)[:40])
    return value


def clean_request(body: dict) -> dict:
    if not isinstance(body, dict) or set(body) - {"case", "holder", "to", "action", "message",
                                                  "deadline"}:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")
    out = {"case": validate.line("case", body.get("case"), max_len=80),
           "holder": validate.node_id("holder", body.get("holder")),
           "to": validate.node_id("to", body.get("to")),
           "action": _choice("action", body.get("action"), ACTIONS),
           "message": validate.text("message", body.get("message"))}
    deadline = validate.a_date("deadline", body.get("deadline"),
                               required=out["action"] == "supervise")
    if deadline:
        out["deadline"] = deadline.isoformat()
    return out


def clean_answer(body: dict) -> dict:
    if not isinstance(body, dict) or set(body) - {"outcome", "note"}:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")
    return {"outcome": _choice("outcome", body.get("outcome"), OUTCOMES),
            "note": validate.text("note", body.get("note"))}


def validate_body(event_type: str, body: dict) -> None:
    validate.normal_form({REQUESTED: clean_request, ANSWERED: clean_answer}, event_type, body)


# -- the fold -----------------------------------------------------------------------

@dataclass(frozen=True)
class FoldContext:
    tiers: dict
    parents: dict
    former: dict

    @classmethod
    def of(cls, node) -> FoldContext:
        tree = trust.tree(node.db)
        return cls(tree.tiers, tree.parents, {})


@dataclass
class Folded:
    row: dict | None = None
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


def fold(ordered, ctx: FoldContext) -> Folded:
    folded = Folded()
    for ev, _ancestors in ordered:
        try:
            check_role(ev.role, ctx.tiers.get(ev.origin), OFFICE, "supervise")
            if ev.type == REQUESTED:
                _requested(folded, ev, ctx)
            else:
                _answered(folded, ev)
        except NodeError as err:
            folded.rejected[ev.id] = err
            continue
        folded.applied.append(ev.id)
    return folded


def _requested(folded: Folded, ev, ctx: FoldContext) -> None:
    b = ev.body
    if folded.row is not None:
        raise IllegalTransition(N_("supervision request %(id)s already exists"), id=ev.subject)
    if not ev.subject.startswith(f"DQ-{ev.origin}-"):
        raise NoAuthority(N_("supervision request number %(id)s does not belong to node "
                             "%(node)s"), id=ev.subject, node=ev.origin)
    if ev.origin == b["to"] or not is_above(ctx.parents, ctx.former, ev.origin, b["to"], ev.ts):
        raise NoAuthority(N_("a supervision request goes to a unit below the one asking"))
    folded.row = {"id": ev.subject, "requester": ev.origin, "to_unit": b["to"],
                  "case_id": b["case"], "holder": b["holder"], "action": b["action"],
                  "message": b["message"], "deadline": b.get("deadline"),
                  "requested_at": ev.ts, "status": "open", "outcome": None, "note": None,
                  "answered_at": None, "answered_by": None}


def _answered(folded: Folded, ev) -> None:
    row = folded.row
    if row is None:
        raise IllegalTransition(N_("no supervision request %(id)s"), id=ev.subject)
    if ev.origin != row["to_unit"]:
        raise NoAuthority(N_("only the unit a supervision request is addressed to answers it"))
    if row["status"] != "open":
        raise IllegalTransition(N_("the supervision request is already answered"))
    row.update(status="answered", outcome=ev.body["outcome"], note=ev.body["note"],
               answered_at=ev.ts, answered_by=ev.actor)


def write_many(db, items: list[tuple[str, Folded]]) -> None:
    db.conn.executemany("DELETE FROM oversight_requests WHERE id = ?", [(s,) for s, _ in items])
    db.conn.executemany(
        f"INSERT INTO oversight_requests ({', '.join(COLUMNS)}) VALUES "
        f"({', '.join('?' * len(COLUMNS))})",
        [[f.row[c] for c in COLUMNS] for _, f in items if f.row is not None])


def clear(db) -> None:
    db.conn.execute("DELETE FROM oversight_requests")


def prune(db) -> None:
    db.conn.execute("DELETE FROM oversight_requests WHERE NOT EXISTS (SELECT 1 FROM events "
                    "WHERE subject = oversight_requests.id AND type LIKE 'oversight.%')")


# -- commands and reads ----------------------------------------------------------------

def addressee(parents: dict, requester: str, holder: str) -> str:
    """The unit a request about a case held at ``holder`` goes to: the unit above the holder,
    or the holder itself when the unit above it is the requester."""
    above = parents.get(holder)
    return holder if above in (None, requester) else above


def request(node, actor: log.Actor, fields: dict):
    """Ask the unit above an overdue case's holder to urge it or issue a 督办单 (caller owns
    the transaction); returns the event."""
    if actor.role not in OFFICE:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=actor.role,
                         action="supervise")
    parents = trust.tree(node.db).parents
    holder = validate.node_id("holder", fields.get("holder"))
    body = clean_request({**fields, "to": addressee(parents, node.id, holder)})
    if body.get("deadline") and body["deadline"] <= node.today().isoformat():
        raise ValidationError(N_("%(field)s: the date %(value)s is in the past"),
                              field="deadline", value=body["deadline"])
    year = node.today().year
    subject = f"DQ-{node.id}-{year}-{next_value(node.db, f'oversight:{year}'):04d}"
    return log.append(node, actor, REQUESTED, subject, body)


def answer(node, actor: log.Actor, request_id: str, fields: dict):
    get(node, request_id)
    return log.append(node, actor, ANSWERED, request_id, clean_answer(dict(fields)))


def get(node, request_id: str) -> dict:
    row = node.db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM oversight_requests WHERE "
                               "id = ?", (request_id,)).fetchone()
    if row is None:
        raise NotFound(N_("no supervision request %(id)s"), id=request_id)
    return dict(zip(COLUMNS, row, strict=True))


def listing(node, *, to_unit: str | None = None, requester: str | None = None) -> list[dict]:
    sql = f"SELECT {', '.join(COLUMNS)} FROM oversight_requests WHERE 1 = 1"
    params = []
    for column, value in (("to_unit", to_unit), ("requester", requester)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    return [dict(zip(COLUMNS, r, strict=True)) for r in node.db.conn.execute(
        sql + " ORDER BY requested_at DESC, id DESC", params)]


registry.register(registry.Domain(
    kind="oversight", name="supervision requests", validate_body=validate_body,
    context=FoldContext.of, fold=fold, write_many=write_many, clear=clear, prune=prune,
    urgent=frozenset({REQUESTED, ANSWERED}),
    authority=(Row(REQUESTED, "above_addressed", OFFICE, ("city", "town", "area")),
               Row(ANSWERED, "addressed", OFFICE, ("town", "area", "village")))))
