"""`siji case ...`: register, list, show and act on petitions (信访件)."""

from __future__ import annotations

import click

from node import cases, disclosure, i18n, log, screening, store
from node.cli.common import _actor, _emit, _fields, _lang, _open, cli, pass_ctx
from node.errors import N_


@cli.group()
def case():
    """Petitions (信访件): add, list, show, act.

    Example: siji case list --due soon
    """


@case.command("add")
@click.option("--as", "username", required=True, help="The user registering it.")
@click.option("--category", help="Category code or label, e.g. dibao or 低保.")
@click.option("--summary", help="What the petition is about.")
@click.option("--petitioner", "people", multiple=True,
              help="NAME[,ID_NUMBER[,PHONE]]; repeat for several people.")
@click.option("-f", "pairs", multiple=True, help="Any other field as key=value.")
@click.option("--json", "json_file", type=click.File("r", encoding="utf-8"),
              help="All fields as a JSON object (petitioners as a list of objects).")
@pass_ctx
def case_add(obj, username, category, summary, people, pairs, json_file):
    """Register a petition (登记).

    Example: siji case add --as liu --category 低保 --summary "低保金未按时发放"
    --petitioner 张三,11010519491231002X,13800138000
    """
    fields = _fields(pairs, json_file)
    if category:
        fields["category"] = category
    if summary:
        fields["summary"] = summary
    if people:
        fields["petitioners"] = [_person(p) for p in people]
    node = _open(obj)
    with store.write(node.db):
        event = cases.register(node, _actor(node, username), fields)
    found = [f for name in ("summary", "request", "facts")
             for f in screening.find(fields.get(name) or "") if f.kind != "name"]
    for f in found:  # on stderr: the result on stdout stays one line (or the JSON)
        click.echo(i18n.translate(N_("Note: the text holds %(what)s %(value)s; it belongs in "
                                     "the petitioner's own field (--petitioner). It is "
                                     "masked for those who may not see it."), _lang(obj),
                                  what=f.kind, value=screening.masked(f)), err=True)
    _emit(obj, {"id": event.subject, "query_code": event.body["query_code"],
                "numbers_in_text": len(found)},
          lambda d: click.echo(i18n.translate(N_("Registered %(id)s (query code %(code)s)"),
                                              _lang(obj), id=d["id"], code=d["query_code"])))


def _person(spec: str) -> dict:
    parts = [p.strip() for p in spec.replace("，", ",").split(",")]
    person = {"name": parts[0]}
    for key, value in zip(("id_number", "phone"), parts[1:3], strict=False):
        if value:
            person[key] = value
    return person


@case.command("list")
@click.option("--state", help="Only cases in this state (code or label).")
@click.option("--due", type=click.Choice(["soon", "overdue"]), help="Due soon or overdue.")
@pass_ctx
def case_list(obj, state, due):
    """List cases with state and deadline.

    Example: siji case list --due overdue
    """
    node = _open(obj)
    rows = cases.listing(node, state=state, due=due)
    lang = _lang(obj)

    def human(rows):
        for r in rows:
            due_text = r["due_on"] or "-"
            if r["days_overdue"]:
                due_text += " " + i18n.translate(N_("overdue %(n)s days"), lang,
                                                 n=r["days_overdue"])
            click.echo("\t".join([r["id"], i18n.label("state", r["state"], lang),
                                  cases.CATEGORIES[r["category"]][0 if lang == "zh" else 1],
                                  r["holder"], due_text]))
        click.echo(i18n.translate(N_("%(n)s cases"), lang, n=len(rows)))
    _emit(obj, [{k: r[k] for k in ("id", "state", "category", "holder", "due_on", "due_kind",
                                  "days_overdue", "needs_review")} for r in rows], human)


@case.command("show")
@click.argument("case_id")
@click.option("--as", "username", required=True, help="Who is reading (identity reads are logged).")
@pass_ctx
def case_show(obj, case_id, username):
    """Show a case, its petitioners, orders, history and what you may do.

    Example: siji case show C-dongshan-2026-0001 --as liu
    """
    node = _open(obj)
    actor = _actor(node, username)
    with store.write(node.db):
        data = cases.get(node, case_id)
        for key in ("summary", "request", "facts", "reply", "outcome"):
            data[key] = disclosure.shown(data[key])
        data["petitioners"] = cases.petitioners(node, case_id)
        node.db.conn.execute("INSERT INTO audit_log (at, actor, action, target) VALUES "
                             "(?, ?, 'read_identity', ?)", (node.now(), actor.username, case_id))
    data["supervision_orders"] = cases.orders(node, case_id)
    data["history"] = [{"id": e.id, "type": e.type, "actor": e.actor, "ts": e.ts}
                       for e in log.subject_events(node.db, case_id)]
    data["allowed_actions"] = cases.allowed_actions(node, actor, data)
    lang = _lang(obj)

    def human(d):
        for key in ("id", "state", "holder", "category", "summary", "due_on", "due_kind"):
            value = i18n.label("state", d[key], lang) if key == "state" else d[key]
            click.echo(f"{key}: {value}")
        for p in d["petitioners"]:
            kept = " ".join(f"[{k}: {tier}]" for k, tier in p["withheld"].items())
            click.echo(f"petitioner: {p['name']} {p['phone'] or ''} {kept}".rstrip())
        for h in d["history"]:
            click.echo(f"  {h['ts']} {h['type']} {h['actor']}@{h['id']}")
        click.echo("may: " + ", ".join(i18n.label("action", a, lang)
                                       for a in d["allowed_actions"]))
    _emit(obj, data, human)


@case.command("act")
@click.argument("case_id")
@click.argument("action", metavar="ACTION",
                type=click.Choice(sorted(set(cases.RULES) - {"register"})))
@click.option("--as", "username", required=True, help="The user acting.")
@click.option("-f", "pairs", multiple=True, help="A field as key=value (repeatable).")
@click.option("--json", "json_file", type=click.File("r", encoding="utf-8"),
              help="The fields as a JSON object.")
@pass_ctx
def case_act(obj, case_id, action, username, pairs, json_file):
    """Take an action on a case (accept, escalate, refer, reply, close...).

    Example: siji case act C-dongshan-2026-0001 escalate --as liu -f reason=需镇协调
    """
    node = _open(obj)
    with store.write(node.db):
        event = cases.act(node, _actor(node, username), case_id, action,
                          _fields(pairs, json_file))
        state = cases.get(node, case_id)["state"]
    _emit(obj, {"id": case_id, "event": event.id, "state": state},
          lambda d: click.echo(i18n.translate(N_("%(id)s: %(action)s done, now %(state)s"),
                                              _lang(obj), id=case_id, action=action,
                                              state=state)))
