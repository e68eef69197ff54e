"""`siji round ...` and `siji register ...`: screening rounds (排查) and the register (登记造册)."""

from __future__ import annotations

from pathlib import Path

import click

from node import i18n, rounds, store
from node.cli.cases import _person
from node.cli.common import _actor, _emit, _fields, _lang, _open, cli, pass_ctx
from node.errors import N_
from node.web import access


@cli.group("round")
def round_():
    """Screening rounds (排查): schedule, list, show, report done.

    Example: siji round schedule --as wang -f title=年末排查 -f start=2026-12-01
    -f end=2026-12-15 -f deadline=2026-12-20
    """


@round_.command("schedule")
@click.option("--as", "username", required=True, help="A handler or leader of this office.")
@click.option("--scope", help="The units that must report, comma-separated (default: every "
              "village below).")
@click.option("-f", "pairs", multiple=True, help="title, start, end, deadline, focus, note.")
@pass_ctx
def round_schedule(obj, username, scope, pairs):
    """Schedule a screening round for the units below (each gets it as a task).

    Example: siji round schedule --as wang -f title=年末排查 -f start=2026-12-01
    -f end=2026-12-15 -f deadline=2026-12-20 --scope dongshan,nangang
    """
    fields = _fields(pairs, None)
    if scope:
        fields["scope"] = scope
    node = _open(obj)
    with store.write(node.db):
        event = rounds.schedule(node, _actor(node, username), fields)
    _emit(obj, {"id": event.subject, "scope": event.body["scope"]},
          lambda d: click.echo(i18n.translate(N_("Scheduled %(id)s for %(n)s units"),
                                              _lang(obj), id=d["id"], n=len(d["scope"]))))


@round_.command("list")
@pass_ctx
def round_list(obj):
    """Screening rounds here, newest first, with how many units have reported.

    Example: siji round list
    """
    node = _open(obj)
    rows = rounds.listing(node)
    lang = _lang(obj)

    def human(rows):
        for r in rows:
            click.echo("\t".join([r["id"], r["title"], f"{r['period_start']}~{r['period_end']}",
                                  r["deadline"], f"{r['reported']}/{r['units']}"]))
        click.echo(i18n.translate(N_("%(n)s screening rounds"), lang, n=len(rows)))
    _emit(obj, rows, human)


@round_.command("show")
@click.argument("round_id")
@pass_ctx
def round_show(obj, round_id):
    """A round with each unit's report, and who has not reported.

    Example: siji round show PC-qingshui-2026-0001
    """
    node = _open(obj)
    found = rounds.get(node, round_id)
    lang = _lang(obj)

    def human(d):
        click.echo(f"{d['id']} {d['title']} {d['period_start']}~{d['period_end']} "
                   f"({i18n.translate(N_('Deadline'), lang)} {d['deadline']})")
        for u in d["units"]:
            state = (i18n.translate(N_("reported %(date)s: %(checked)s checked, %(added)s new, "
                                       "%(high)s serious"), lang, date=u["reported_on"],
                                    checked=u["checked"], added=u["added"], high=u["high"])
                     if u["reported_on"] else i18n.translate(
                         N_("not reported, overdue") if u["overdue"] else N_("not reported"),
                         lang))
            click.echo(f"  {u['unit']}\t{state}")
    _emit(obj, found, human)


@round_.command("report")
@click.argument("round_id")
@click.option("--as", "username", required=True)
@click.option("-f", "pairs", multiple=True, help="note (the counts come from the register).")
@pass_ctx
def round_report(obj, round_id, username, pairs):
    """Report a round done for this unit, with the counts of its register in the round.

    Example: siji round report PC-qingshui-2026-0001 --as liu -f note=已逐户排查
    """
    node = _open(obj)
    with store.write(node.db):
        event = rounds.report(node, _actor(node, username), round_id, _fields(pairs, None))
    _emit(obj, {"id": round_id, **event.body},
          lambda d: click.echo(i18n.translate(N_("%(id)s reported: %(checked)s checked, "
                                                 "%(added)s new, %(high)s serious"),
                                              _lang(obj), **d)))


@cli.group("register")
def register_():
    """The register (登记造册): list, add, update, resolve, export and import .xlsx.

    Example: siji register export 台账.xlsx --as liu
    """


def _people(specs) -> list[dict]:
    return [_person(p) for p in specs]


@register_.command("add")
@click.option("--as", "username", required=True)
@click.option("--person", "people", multiple=True, help="NAME[,ID_NUMBER[,PHONE]] (repeatable).")
@click.option("-f", "pairs", multiple=True, help="kind (hotspot, person, matter), title, "
              "category, place, risk (general, major, serious), responsible, measures, note, "
              "round.")
@pass_ctx
def register_add(obj, username, people, pairs):
    """Record an entry in this unit's register.

    Example: siji register add --as liu -f kind=person -f title=低保争议 -f risk=major
    -f responsible=刘信息员 --person 张三,11010519491231002X,13800138000
    """
    fields = _fields(pairs, None)
    if people:
        fields["people"] = _people(people)
    node = _open(obj)
    with store.write(node.db):
        event = rounds.record(node, _actor(node, username), fields)
    _emit(obj, {"id": event.subject}, lambda d: click.echo(
        i18n.translate(N_("Recorded %(id)s"), _lang(obj), id=d["id"])))


@register_.command("update")
@click.argument("entry_id")
@click.option("--as", "username", required=True)
@click.option("-f", "pairs", multiple=True, help="round, risk, responsible, measures, title, "
              "place, note.")
@pass_ctx
def register_update(obj, entry_id, username, pairs):
    """Check an entry again (in a round) or change it; its history keeps each change.

    Example: siji register update DJ-dongshan-2026-0001 --as liu -f round=PC-qingshui-2026-0001
    -f risk=general -f note=情绪稳定
    """
    node = _open(obj)
    with store.write(node.db):
        event = rounds.update(node, _actor(node, username), entry_id, _fields(pairs, None))
    _emit(obj, {"id": entry_id, "event": event.id}, lambda d: click.echo(
        i18n.translate(N_("Updated %(id)s"), _lang(obj), id=d["id"])))


@register_.command("resolve")
@click.argument("entry_id")
@click.option("--as", "username", required=True)
@click.option("-f", "pairs", multiple=True, help="note (required), round.")
@pass_ctx
def register_resolve(obj, entry_id, username, pairs):
    """Close an entry as resolved (已化解).

    Example: siji register resolve DJ-dongshan-2026-0001 --as liu -f note=已补发,当事人满意
    """
    node = _open(obj)
    with store.write(node.db):
        event = rounds.resolve(node, _actor(node, username), entry_id, _fields(pairs, None))
    _emit(obj, {"id": entry_id, "event": event.id}, lambda d: click.echo(
        i18n.translate(N_("Resolved %(id)s"), _lang(obj), id=d["id"])))




@register_.command("list")
@click.option("--all", "everything", is_flag=True, help="Resolved entries too.")
@click.option("--below", is_flag=True, help="The registers of the units below, too.")
@pass_ctx
def register_list(obj, everything, below):
    """This unit's register (and those below it), riskiest first.

    Example: siji register list --below
    """
    node = _open(obj)
    units = access.subtree(node) if below else {node.id}
    rows = rounds.register(node, units, None if everything else "open")
    lang = _lang(obj)

    def human(rows):
        for r in rows:
            click.echo("\t".join([r["id"], i18n.label("entry_kind", r["kind"], lang),
                                  r["title"], i18n.label("risk", r["risk"], lang),
                                  r["responsible"], i18n.label("entry_state", r["status"],
                                                               lang)]))
        click.echo(i18n.translate(N_("%(n)s entries"), lang, n=len(rows)))
    _emit(obj, [{k: v for k, v in r.items() if k != "people"} for r in rows], human)


@register_.command("show")
@click.argument("entry_id")
@click.option("--as", "username", required=True, help="Who is reading (identity reads are logged).")
@pass_ctx
def register_show(obj, entry_id, username):
    """An entry with its people and its history, round by round.

    Example: siji register show DJ-dongshan-2026-0001 --as liu
    """
    node = _open(obj)
    actor = _actor(node, username)
    entry = rounds.get_entry(node, entry_id)
    with store.write(node.db):
        entry["people"] = rounds.people_of(node, entry_id)
        access.audit(node, actor.username, "read_identity", entry_id)
    entry["history"] = rounds.history(node, entry_id)
    lang = _lang(obj)

    def human(d):
        click.echo(f"{d['id']} {i18n.label('entry_kind', d['kind'], lang)} {d['title']} "
                   f"{i18n.label('risk', d['risk'], lang)} {d['responsible']}")
        for p in d["people"]:
            click.echo(f"  {p['name']} {p['id_number'] or ''} {p['phone'] or ''}".rstrip())
        for h in d["history"]:
            click.echo(f"  {h['on_day']} {h['action']} {h['round'] or ''} {h['actor']}@"
                       f"{h['origin']}")
    _emit(obj, entry, human)


@register_.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "username", required=True, help="Who exports (an admin's copy is masked).")
@click.option("--below", is_flag=True, help="The registers of the units below, too.")
@click.option("--all", "everything", is_flag=True, help="Resolved entries too.")
@pass_ctx
def register_export(obj, path, username, below, everything):
    """Write the register as an Excel workbook (.xlsx), in the layout offices keep.

    Example: siji register export 东山村排查登记表.xlsx --as liu
    """
    node = _open(obj)
    actor = _actor(node, username)
    units = access.subtree(node) if below else {node.id}
    rows = rounds.register(node, units, None if everything else "open")
    data = rounds.book.export(node, rows, _lang(obj), masked=actor.role == "admin")
    path.write_bytes(data)
    with store.write(node.db):
        access.audit(node, actor.username, "register_export", f"{len(rows)} entries")
    _emit(obj, {"path": str(path), "entries": len(rows)}, lambda d: click.echo(
        i18n.translate(N_("Wrote %(n)s entries to %(path)s"), _lang(obj), n=d["entries"],
                       path=d["path"])))


@register_.command("import")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--as", "username", required=True)
@click.option("--round", "round_id", help="Mark every row as checked in this round.")
@pass_ctx
def register_import(obj, path, username, round_id):
    """Import an Excel register (.xlsx): all rows or, if any is wrong, none.

    Example: siji register import 东山村排查登记表.xlsx --as liu --round PC-qingshui-2026-0001
    """
    node = _open(obj)
    with store.write(node.db):
        done = rounds.book.import_rows(node, _actor(node, username), path.read_bytes(),
                                       round_id)
    _emit(obj, done, lambda d: click.echo(i18n.translate(
        N_("Imported: %(recorded)s new, %(updated)s updated, %(unchanged)s unchanged"),
        _lang(obj), **d)))
