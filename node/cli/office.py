"""The office's own work at the command line: reception days and a leader's work
(`siji reception`), search (`siji search`), the receipt and the public lookup
(`siji case receipt`, `siji lookup`), attachments (`siji attach`), repeats and the network
key (`siji repeats`, `siji netkey`)."""

from __future__ import annotations

from pathlib import Path

import click
import segno

from node import (
    attachments,
    cases,
    i18n,
    netkeys,
    paging,
    receipts,
    reception,
    repeats,
    search,
    store,
    trust,
    users,
)
from node.cli.cases import _due, case
from node.cli.common import _actor, _emit, _lang, _open, cli, pass_ctx
from node.errors import N_
from node.web import access


@cli.group("reception")
def reception_():
    """领导接待日: reception days and who is on duty, the reception log, a leader's work.

    Example: siji reception days --months 3
    """


@reception_.command("days")
@click.option("--months", type=click.IntRange(1, 24), default=3, show_default=True)
@pass_ctx
def reception_days(obj, months):
    """The coming reception days (RECEPTION_DAY, moved to a working day) and who is on duty.

    Example: siji reception days --months 6
    """
    node = _open(obj)
    rows = reception.days(node, months)
    lang = _lang(obj)

    def human(rows):
        for d in rows:
            moved = (" (" + i18n.translate(N_("moved from %(date)s"), lang, date=d["moved_from"])
                     + ")") if d["moved_from"] else ""
            click.echo(f"{d['date']}{moved}\t{d['leader_name'] or '-'}\t{d['place'] or ''}")
    _emit(obj, rows, human)


@reception_.command("duty")
@click.argument("on_date")
@click.option("--leader", required=True, help="A leader of this office (username or name).")
@click.option("--place", help="Where, if not RECEPTION_PLACE.")
@click.option("--as", "username", required=True, help="Who plans it.")
@pass_ctx
def reception_duty(obj, on_date, leader, place, username):
    """Put a leader on duty on a reception day (or any other day).

    Example: siji reception duty 2026-12-25 --leader zhao --as admin
    """
    node = _open(obj)
    actor = _actor(node, username)
    with store.write(node.db):
        done = reception.set_duty(node, actor.username, on_date, leader, place)
    _emit(obj, done, lambda d: click.echo(i18n.translate(
        N_("%(leader)s is on duty on %(date)s"), _lang(obj), leader=d["leader"],
        date=d["date"])))


@reception_.command("log")
@click.option("--since", help="From this day (YYYY-MM-DD).")
@pass_ctx
def reception_log(obj, since):
    """Petitions received on reception days (channel 领导接待日), with the receiving leader.

    Example: siji reception log --since 2026-11-01
    """
    node = _open(obj)
    rows = reception.reception_log(node, since)
    _emit(obj, [{k: c[k] for k in ("id", "registered_on", "received_by", "category", "state")}
                for c in rows],
          lambda rows: [click.echo(f"{c['registered_on']}\t{c['id']}\t{c['received_by'] or '-'}"
                                   f"\t{i18n.label('state', c['state'], _lang(obj))}")
                        for c in rows])


@reception_.command("leader")
@click.argument("username")
@pass_ctx
def reception_leader(obj, username):
    """A leader's work: reception days on duty, appointments (约访), 包案 cases and figures.

    Example: siji reception leader zhao
    """
    node = _open(obj)
    users.get_user(node, username)
    work = reception.leader_work(node, username)
    lang = _lang(obj)

    def human(w):
        for d in w["days"]:
            click.echo(i18n.translate(N_("Reception day %(date)s"), lang, date=d["date"]))
        for a in w["appointments"]:
            click.echo(f"{a['at']}\t{a['case_id']}\t{a['place']}\t"
                       f"{i18n.label('appointment_state', a['status'], lang)}")
        for c in w["lead_cases"]:
            click.echo(f"{c['id']}\t{i18n.label('state', c['state'], lang)}\t{_due(c, lang)}")
        click.echo(i18n.translate(N_("In charge (包案) of %(lead)s, concluded %(concluded)s, "
                                     "no new petition %(quiet)s"), lang, **w["figures"]))
    keys = ("id", "state", "due_on", "due_kind", "due_provisional", "days_overdue")
    _emit(obj, {**work, "lead_cases": [{k: c[k] for k in keys} for c in work["lead_cases"]]},
          human)


@cli.command("search")
@click.argument("query")
@click.option("--as", "username", required=True, help="Who searches (searches are logged; "
              "only what this user may see is searched).")
@pass_ctx
def search_cmd(obj, query, username):
    """Find cases by name, ID number, phone, 查询码, case number or words of their text.

    Example: siji search 低保金 --as liu
    """
    node = _open(obj)
    actor = _actor(node, username)
    user = users.get_user(node, actor.username)
    units = access.subtree(node)
    with store.write(node.db):
        found = search.search(node, query, lambda c: access.sight(node, user, c, units),
                              actor.username)
    lang = _lang(obj)
    _emit(obj, [{k: c[k] for k in ("id", "state", "category", "registered_on", "sight")}
                for c in found],
          lambda rows: (
              [click.echo(f"{c['id']}\t{i18n.label('state', c['state'], lang)}\t"
                          f"{i18n.label('category', c['category'], lang)}\t{c['registered_on']}")
               for c in rows],
              click.echo(i18n.translate(N_("%(n)s cases"), lang, n=len(rows)))))


@case.command("receipt")
@click.argument("case_id")
@click.option("--qr", "qr_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the QR code of the lookup address here (.svg or .png).")
@click.option("--url", help="The lookup page's address (default PUBLIC_URL).")
@pass_ctx
def case_receipt(obj, case_id, qr_path, url):
    """The 登记回执 of a case: its number, 查询码 and where the petitioner looks it up.

    Example: siji case receipt C-dongshan-2026-0001 --qr 回执.svg
    """
    node = _open(obj)
    data = receipts.receipt(node, case_id)
    base = url or node.settings["PUBLIC_URL"] or f"http://127.0.0.1:{node.settings['PORT']}"
    data["lookup"] = receipts.lookup_text(base, data["query_code"])
    if qr_path:
        segno.make(data["lookup"], error="m").save(str(qr_path), scale=6)
    lang = _lang(obj)

    def human(d):
        click.echo(i18n.translate(N_("Registration receipt (登记回执) of %(office)s"), lang,
                                  office=d["office"]))
        click.echo(i18n.translate(N_("Case number %(id)s, registered %(date)s"), lang,
                                  id=d["id"], date=d["registered_on"]))
        click.echo(i18n.translate(N_("Query code %(code)s: look it up at %(url)s with the last "
                                     "four digits of your phone"), lang,
                                  code=d["query_code"], url=d["lookup"]))
    _emit(obj, data, human)


@cli.command("lookup")
@click.argument("code")
@click.argument("last4")
@pass_ctx
def lookup_cmd(obj, code, last4):
    """What the public lookup answers: a matter's state and next deadline.

    Example: siji lookup 7KQM4HXA 8000
    """
    node = _open(obj)
    with store.write(node.db):  # a wrong answer counts, here too
        found = receipts.lookup(node, code, last4, "addr:cli")
    if found is None:
        raise receipts.not_found()
    lang = _lang(obj)
    _emit(obj, found, lambda d: click.echo(
        i18n.label("state", d["state"], lang) + (
            f"\t{d['due_on']} {i18n.label('due_kind', d['due_kind'], lang)}" if d["due_on"]
            else "")))


@cli.group("attach")
def attach_():
    """Attachments (附件): photos and scans of a case (JPEG, PNG, PDF).

    Example: siji attach add C-dongshan-2026-0001 来信.jpg --as liu --kind letter
    """


@attach_.command("add")
@click.argument("case_id")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--as", "username", required=True)
@click.option("--kind", type=click.Choice(sorted(cases.ATTACHMENT_KINDS)), default="other",
              show_default=True)
@pass_ctx
def attach_add(obj, case_id, path, username, kind):
    """Attach a file to a case; its bytes follow the case where it goes (an ID photo no
    higher than NEVER_ABOVE allows).

    Example: siji attach add C-dongshan-2026-0001 身份证.jpg --as liu --kind id_photo
    """
    node = _open(obj)
    with store.write(node.db):
        event = attachments.attach(node, _actor(node, username), case_id, path.read_bytes(),
                                   kind, path.name)
    _emit(obj, {"case": case_id, **event.body}, lambda d: click.echo(i18n.translate(
        N_("Attached %(name)s (%(size)s bytes) to %(id)s"), _lang(obj), name=path.name,
        size=d["size"], id=case_id)))


@attach_.command("list")
@click.argument("case_id")
@pass_ctx
def attach_list(obj, case_id):
    """A case's attachments, and whether their bytes are here.

    Example: siji attach list C-dongshan-2026-0001
    """
    node = _open(obj)
    cases.get(node, case_id)
    rows = attachments.listing(node, case_id)
    lang = _lang(obj)
    _emit(obj, rows, lambda rows: [click.echo("\t".join([
        r["sha256"][:12], i18n.label("attachment_kind", r["kind"], lang), r["type"],
        str(r["size"]), r["name"] or "",
        i18n.translate(N_("here") if r["present"] else N_("not here"), lang)])) for r in rows])


@attach_.command("get")
@click.argument("case_id")
@click.argument("sha")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "username", required=True, help="Who reads it (logged).")
@pass_ctx
def attach_get(obj, case_id, sha, path, username):
    """Write an attachment's bytes to a file (a hash's first 12 characters will do).

    Example: siji attach get C-dongshan-2026-0001 3f2a9c1b7e4d 来信.jpg --as liu
    """
    node = _open(obj)
    actor = _actor(node, username)
    full = next((r["sha256"] for r in attachments.listing(node, case_id)
                 if r["sha256"].startswith(sha.lower())), sha)
    data, row = attachments.read(node, case_id, full)
    path.write_bytes(data)
    with store.write(node.db):
        access.audit(node, actor.username, "read_attachment", f"{case_id} {full[:12]}")
    _emit(obj, {"path": str(path), "size": len(data), "type": row["type"]},
          lambda d: click.echo(i18n.translate(N_("Wrote %(size)s bytes to %(path)s"),
                                              _lang(obj), **d)))


@cli.group("repeats")
def repeats_():
    """Repeat petitions (重复信访) found by the keyed digests of ID numbers and phones.

    Example: siji repeats list
    """


@repeats_.command("list")
@click.option("--limit", default=paging.PAGE, show_default=True,
              help=f"At most this many pairs, newest first (at most {paging.MAX_PAGE}).")
@click.option("--after", help="The page after this cursor (printed under a full page).")
@pass_ctx
def repeats_list(obj, limit, after):
    """Pairs of cases with a petitioner in common, not yet linked, a page at a time.

    Example: siji repeats list
    """
    node = _open(obj)
    found, following = repeats.pairs(node, access.subtree(node), after, limit)
    names = trust.names(node.db)
    lang = _lang(obj)
    if following:  # on stderr: --json's stdout stays one document
        click.echo(i18n.translate(N_("more: --after %(cursor)s"), lang, cursor=following),
                   err=True)
    _emit(obj, found, lambda rows: (
        [click.echo(f"{p['newer']} ({names.get(p['newer_origin'], p['newer_origin'])})\t"
                    f"{p['older']} ({names.get(p['older_origin'], p['older_origin'])})\t"
                    f"{p['by']}") for p in rows],
        click.echo(i18n.translate(N_("%(n)s pairs"), lang, n=len(rows)))))


@repeats_.command("link")
@click.argument("case_id")
@click.argument("of_case")
@click.option("--as", "username", required=True)
@click.option("--note", help="Why, for the record.")
@pass_ctx
def repeats_link(obj, case_id, of_case, username, note):
    """Record that a case repeats an earlier one (it reaches the unit that registered it).

    Example: siji repeats link C-nangang-2026-0003 C-dongshan-2026-0001 --as wang
    """
    node = _open(obj)
    with store.write(node.db):
        event = repeats.link(node, _actor(node, username), case_id, of_case, note)
    _emit(obj, {"case": case_id, "of": of_case, "event": event.id}, lambda d: click.echo(
        i18n.translate(N_("Linked %(case)s as a repeat of %(of)s"), _lang(obj), **d)))


@cli.group("netkey")
def netkey():
    """The network key of the repeat digests: which versions this node holds; rotate it.

    Example: siji netkey show
    """


@netkey.command("show")
@pass_ctx
def netkey_show(obj):
    """The versions of the network key this node holds (never the keys).

    Example: siji netkey show
    """
    node = _open(obj)
    versions = sorted(netkeys.held(node))
    _emit(obj, {"versions": versions}, lambda d: click.echo(i18n.translate(
        N_("Network key versions held: %(versions)s"), _lang(obj),
        versions=", ".join(map(str, d["versions"])) or "-")))


@netkey.command("rotate")
@click.option("--as", "username", required=True, help="An admin of the city.")
@pass_ctx
def netkey_rotate(obj, username):
    """Make the next version of the network key (the city) and send it, sealed, to every node.

    Example: siji netkey rotate --as admin
    """
    node = _open(obj)
    actor = _actor(node, username)
    with store.write(node.db):
        version = netkeys.rotate(node, actor)
    _emit(obj, {"version": version}, lambda d: click.echo(i18n.translate(
        N_("Network key version %(version)s made; it goes to every node with the next syncs"),
        _lang(obj), **d)))
