"""`siji case ...`: register, list, show and act on petitions (信访件)."""

from __future__ import annotations

import click

from node import cases, deadlines, disclosure, documents, i18n, log, screening, store, trust
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

    names = trust.names(node.db)

    def human(rows):
        for r in rows:
            click.echo("\t".join([r["id"], i18n.label("state", r["state"], lang),
                                  i18n.label("category", r["category"], lang),
                                  names.get(r["holder"], r["holder"]), _due(r, lang)]))
        click.echo(i18n.translate(N_("%(n)s cases"), lang, n=len(rows)))
    _emit(obj, [{k: r[k] for k in ("id", "state", "category", "holder", "due_on", "due_kind",
                                  "due_provisional", "days_overdue", "needs_review")}
                for r in rows], human)


def _due(case: dict, lang: str, on: str = "due_on", provisional: str = "due_provisional") -> str:
    """A due date as people read it: overdue days, and 暂按法定节假日计算 when it rests on the
    statutory holidays (a year without an official arrangement)."""
    if not case[on]:
        return "-"
    text = case[on]
    if case[provisional]:
        text += " (" + i18n.translate(deadlines.PROVISIONAL, lang) + ")"
    if on == "due_on" and case.get("days_overdue"):
        text += " " + i18n.translate(N_("overdue %(n)s days"), lang, n=case["days_overdue"])
    return text


# what `case show` prints, in order: field -> its label
SHOWN = (("id", N_("Case number")), ("state", N_("State")), ("holder", N_("Holding unit")),
         ("category", N_("Category")), ("summary", N_("Summary")))


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
    data["deadline_changes"] = cases.deadline_changes(node, case_id)
    lang = _lang(obj)
    names = trust.names(node.db)

    def line(label: str, value) -> None:
        click.echo(f"{i18n.translate(label, lang)}: {value}")

    def human(d):
        for key, label in SHOWN:
            value = d[key]
            if key in ("state", "category"):
                value = i18n.label(key, value, lang)
            elif key == "holder":
                value = names.get(value, value)
            line(label, value)
        if d["due_on"]:
            line(N_("Due"), f"{_due(d, lang)} · {i18n.label('due_kind', d['due_kind'], lang)}")
        if d["request_until"]:
            line(i18n.label("due_kind", d["request_kind"], lang),
                 _due(d, lang, "request_until", "request_provisional"))
        for p in d["petitioners"]:
            kept = " ".join("[" + i18n.translate(N_("%(field)s stays at the %(tier)s level"),
                                                 lang, field=k,
                                                 tier=tier) + "]"
                            for k, tier in p["withheld"].items())
            line(N_("Petitioner"), f"{p['name']} {p['phone'] or ''} {kept}".strip())
        for h in d["history"]:
            action = cases.BY_TYPE[h["type"]].action if h["type"] in cases.BY_TYPE else h["type"]
            click.echo(f"  {h['ts']} {i18n.label('action', action, lang)} "
                       f"{h['actor']}@{h['id']}")
        for c in d["deadline_changes"]:
            click.echo("  " + c["at"] + " " + cases.describe_change(c, lang))
        line(N_("You may"), ", ".join(i18n.label("action", a, lang)
                                      for a in d["allowed_actions"]) or "-")
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


@case.command("document")
@click.argument("case_id")
@click.argument("kind", type=click.Choice(sorted(documents.KINDS)), required=False)
@click.option("-n", "n", type=click.IntRange(1), default=1, show_default=True,
              help="Which one, when the case has several of that kind.")
@pass_ctx
def case_document(obj, case_id, kind, n):
    """List a case's formal documents, or print one (受理告知书, 处理意见书...).

    Example: siji case document Z-qingshui-2026-0001 decision
    """
    node = _open(obj)
    lang = _lang(obj)
    cases.get(node, case_id)
    if kind is None:
        found = documents.available(node, case_id)
        _emit(obj, found, lambda rows: [click.echo(
            f"{r['number']}\t{r['kind']} {r['n']}\t{i18n.label('document', r['kind'], lang)}")
            for r in rows])
        return
    doc = documents.document(node, case_id, kind, n, lang)

    def human(d):
        click.echo(d["office"])
        click.echo(d["title"])
        click.echo(i18n.translate(N_("No. %(number)s"), lang, number=d["number"]))
        click.echo(i18n.translate(N_("To the petitioner(s) %(names)s:"), lang,
                                  names="、".join(d["petitioners"])))
        for p in d["paragraphs"]:
            click.echo("    " + p)
        click.echo(f"{d['office']}  {d['date']}")
        click.echo(i18n.translate(N_("Made from the signed event %(event)s, written by "
                                     "%(actor)s at %(office)s"), lang, event=d["event"],
                                  actor=d["actor"], office=d["office"]))
    _emit(obj, doc, human)
