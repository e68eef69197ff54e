"""`siji`: the command line, thin over the library.

Every command prints one line saying how to fix what went wrong, never a
traceback (set SIJI_DEBUG=1 to see one). Commands that change the node run
in one write transaction: they change everything or nothing.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import threading
from pathlib import Path

import click

from node import cases, core, i18n, log, store, trust, users, warnings
from node.errors import N_, NodeError, ValidationError

pass_ctx = click.make_pass_decorator(dict, ensure=True)


def _lang(ctx_obj) -> str:
    return ctx_obj.get("lang") or os.environ.get("SIJI_LANG") or "zh"


def _open(obj) -> core.Node:
    """Open the node for this command; it is closed when the command ends, however it ends."""
    node = core.open_node(obj["dir"])
    click.get_current_context().call_on_close(node.close)
    return node


def _actor(node, username: str) -> log.Actor:
    user = users.get_user(node, username)
    if user["disabled"]:
        raise ValidationError(N_("user %(name)s is disabled"), name=username, field="as")
    return log.Actor(user["username"], user["role"])


def _fields(pairs: tuple[str, ...], json_file) -> dict:
    """-f key=value pairs (and/or a JSON object file) as a dict of fields."""
    out = {}
    if json_file is not None:
        try:
            out = json.load(json_file)
        except ValueError as e:
            raise ValidationError(N_("%(field)s: not valid JSON (%(problem)s)"), field="--json",
                                  problem=str(e)) from None
        if not isinstance(out, dict):
            raise ValidationError(N_("%(field)s: expected a JSON object"), field="--json")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(N_("%(field)s: expected key=value, got %(value)s"),
                                  field="-f", value=pair)
        if value in ("true", "false"):
            value = value == "true"
        out[key] = value
    return out


def _emit(obj, data, human) -> None:
    if obj.get("json"):
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


@click.group()
@click.option("--dir", "-d", "node_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="SIJI_DIR", default=".", show_default=True,
              help="The node directory (or set SIJI_DIR).")
@click.option("--lang", type=click.Choice(["zh", "en"]), envvar="SIJI_LANG",
              help="Language of messages (default zh).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.version_option(package_name="siji")
@click.pass_context
def cli(ctx, node_dir, lang, as_json):
    """siji 四级网: one node of the petition reporting network.

    Example: siji --dir ./dongshan case list --due overdue
    """
    ctx.ensure_object(dict)
    ctx.obj.update(dir=node_dir, lang=lang, json=as_json)


@cli.command()
@click.option("--tier", type=click.Choice(["city", "town", "area", "village"]), required=True)
@click.option("--id", "node_id", required=True, help="Node id, unique in the network.")
@click.option("--name", required=True, help="Name people read, e.g. 东山村.")
@click.option("--parent", "parent_url", default="", help="Parent node URL (not for the city).")
@click.option("--parent-id", default="", help="Parent node id, if known before enrollment.")
@click.option("--admin", default="admin", show_default=True, help="First admin's username.")
@click.option("--password", envvar="SIJI_ADMIN_PASSWORD", prompt="Admin password",
              hide_input=True, confirmation_prompt=True,
              help="First admin's password (or set SIJI_ADMIN_PASSWORD).")
@pass_ctx
def init(obj, tier, node_id, name, parent_url, parent_id, admin, password):
    """Make a node here: config, keys (0600), database and first admin.

    Example: siji --dir ./dongshan init --tier village --id dongshan --name 东山村
    --parent http://127.0.0.1:8001
    """
    node = core.init_node(obj["dir"], tier=tier, node_id=node_id, name=name,
                          parent_url=parent_url, parent_id=parent_id, admin=admin,
                          admin_password=password)
    fp = trust.fingerprint(node.signer.public_key().public_bytes_raw())
    click.echo(i18n.translate(N_("Made %(tier)s node %(id)s in %(dir)s (fingerprint %(fp)s)"),
                              _lang(obj), tier=tier, id=node_id, dir=obj["dir"], fp=fp))
    node.close()


# -- cases -----------------------------------------------------------------------

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
    _emit(obj, {"id": event.subject, "query_code": event.body["query_code"]},
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


# -- warnings --------------------------------------------------------------------

@cli.group()
def warning():
    """Early warnings (预警): add, list, act.

    Example: siji warning list --status raised
    """


@warning.command("add")
@click.option("--as", "username", required=True)
@click.option("-f", "pairs", multiple=True, help="A field as key=value (repeatable).")
@click.option("--json", "json_file", type=click.File("r", encoding="utf-8"))
@pass_ctx
def warning_add(obj, username, pairs, json_file):
    """Raise an early warning of a group petition.

    Example: siji warning add --as liu -f subject=征地补偿 -f place=东山村
    -f expected_size=30 -f destination=city -f expected_date=2026-12-01
    """
    node = _open(obj)
    with store.write(node.db):
        event = warnings.raise_warning(node, _actor(node, username), _fields(pairs, json_file))
        w = warnings.get(node, event.subject)
    _emit(obj, {"id": w["id"], "risk_level": w["risk_level"], "risk_score": w["risk_score"]},
          lambda d: click.echo(i18n.translate(
              N_("Raised %(id)s, risk %(level)s (score %(score)s)"), _lang(obj), id=d["id"],
              level=warnings.LEVELS[d["risk_level"]][0 if _lang(obj) == "zh" else 1],
              score=d["risk_score"])))


@warning.command("list")
@click.option("--status", help="Only warnings in this status.")
@pass_ctx
def warning_list(obj, status):
    """List warnings, highest risk first.

    Example: siji warning list --status raised
    """
    node = _open(obj)
    rows = warnings.listing(node, status)
    lang = _lang(obj)

    def human(rows):
        for w in rows:
            click.echo("\t".join([w["id"], i18n.label("state", w["status"], lang),
                                  warnings.LEVELS[w["risk_level"]][0 if lang == "zh" else 1],
                                  w["subject"], str(w["expected_size"])]))
        click.echo(i18n.translate(N_("%(n)s warnings"), lang, n=len(rows)))
    _emit(obj, rows, human)


@warning.command("act")
@click.argument("warning_id")
@click.argument("action", metavar="ACTION",
                type=click.Choice(sorted(set(warnings.RULES) - {"raise"})))
@click.option("--as", "username", required=True)
@click.option("-f", "pairs", multiple=True, help="A field as key=value (repeatable).")
@pass_ctx
def warning_act(obj, warning_id, action, username, pairs):
    """Acknowledge, handle, defuse, escalate or close a warning.

    Example: siji warning act YJ-dongshan-2026-0001 acknowledge --as wang
    """
    node = _open(obj)
    with store.write(node.db):
        warnings.act(node, _actor(node, username), warning_id, action, _fields(pairs, None))
        status = warnings.get(node, warning_id)["status"]
    _emit(obj, {"id": warning_id, "status": status},
          lambda d: click.echo(i18n.translate(N_("%(id)s: %(action)s done, now %(state)s"),
                                              _lang(obj), id=warning_id, action=action,
                                              state=status)))


# -- users -----------------------------------------------------------------------

@cli.group()
def user():
    """Accounts on this node: add, list, disable, enable.

    Example: siji user add wang --role handler --name 王办理
    """


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(sorted(users.ROLES)), required=True)
@click.option("--name", "display_name", required=True, help="Name shown to people.")
@click.option("--password", envvar="SIJI_PASSWORD", prompt=True, hide_input=True,
              confirmation_prompt=True, help="Password (or set SIJI_PASSWORD).")
@pass_ctx
def user_add(obj, username, role, display_name, password):
    """Add an account.

    Example: siji user add liu --role liaison --name 刘信息员
    """
    node = _open(obj)
    with store.write(node.db):
        added = users.add_user(node, username, display_name, role, password)
    click.echo(i18n.translate(N_("Added %(role)s %(name)s"), _lang(obj), role=added["role"],
                              name=added["username"]))


@user.command("list")
@pass_ctx
def user_list(obj):
    """List accounts.

    Example: siji user list
    """
    node = _open(obj)
    rows = users.list_users(node)
    _emit(obj, rows, lambda rows: [click.echo(
        f"{u['username']}\t{i18n.label('role', u['role'], _lang(obj))}\t{u['display_name']}"
        + ("\t(disabled)" if u["disabled"] else "")) for u in rows])


@user.command("disable")
@click.argument("username")
@pass_ctx
def user_disable(obj, username):
    """Disable an account: it cannot log in, and its web sessions end at once.

    Example: siji user disable liu
    """
    node = _open(obj)
    with store.write(node.db):
        users.set_disabled(node, username, True)
    click.echo(i18n.translate(N_("Disabled %(name)s; their sessions have ended."), _lang(obj),
                              name=username))


@user.command("enable")
@click.argument("username")
@pass_ctx
def user_enable(obj, username):
    """Enable a disabled account again.

    Example: siji user enable liu
    """
    node = _open(obj)
    with store.write(node.db):
        users.set_disabled(node, username, False)
    click.echo(i18n.translate(N_("Enabled %(name)s."), _lang(obj), name=username))


# -- operations ------------------------------------------------------------------

@cli.command()
@pass_ctx
def rebuild(obj):
    """Recompute every case and warning row from the event log.

    Example: siji rebuild
    """
    node = _open(obj)
    with store.write(node.db):
        counts = log.rebuild(node)
    click.echo(i18n.translate(N_("Rebuilt %(cases)s cases and %(warnings)s warnings"),
                              _lang(obj), **counts))


@cli.command()
@click.option("--attempts", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Tries before giving up when the parent is busy or unreachable.")
@pass_ctx
def sync(obj, attempts):
    """Run one sync session with the parent now: push up, pull down.

    Example: siji sync
    """
    import random
    import time

    from node.sync import protocol, session
    from node.sync.http import Busy, HttpTransport
    node = _open(obj)
    if not node.settings["PARENT_URL"]:
        raise NodeError(N_("this node has no parent URL (the city syncs with nobody above)"))
    transport = HttpTransport(node.settings["PARENT_URL"])
    for attempt in range(attempts):
        try:
            summary = session.run(node, transport)
            break
        except Busy as e:
            delay = protocol.busy_delay(e.retry_after, random.random())
            if attempt + 1 == attempts:
                raise
        except OSError:
            if attempt + 1 == attempts:
                raise NodeError(N_("cannot reach the parent at %(url)s; the events wait and "
                                   "go with the next sync"),
                                url=node.settings["PARENT_URL"]) from None
            delay = protocol.backoff(attempt, random.random())
        time.sleep(delay)
    click.echo(i18n.translate(N_("Synced: sent %(sent)s, received %(received)s events"),
                              _lang(obj), sent=summary.sent, received=summary.received))


@cli.command("enroll-code")
@click.option("--hours", type=click.IntRange(1, 24 * 30), default=72, show_default=True,
              help="How long the code may be used.")
@pass_ctx
def enroll_code(obj, hours):
    """Make a one-time code for a child node's admin to enroll with (parent's admin).

    Example: siji enroll-code --hours 24
    """
    from node import enroll
    node = _open(obj)
    with store.write(node.db):
        code = enroll.new_code(node, hours)
    click.echo(i18n.translate(N_("Enrollment code %(code)s, valid for %(hours)s hours. Give it "
                                 "to the child's admin with this node's address."), _lang(obj),
                              code=code, hours=hours))


def _fingerprint_line(obj, fp: str) -> None:
    click.echo(i18n.translate(N_("Pair fingerprint %(fp)s: read it to the other admin by "
                                 "phone; it must be the same on both sides."), _lang(obj), fp=fp))


@cli.command()
@click.option("--code", required=True,
              help="The one-time code from the parent's admin, or the whole text its QR code "
                   "holds, which also gives the parent URL (see the example).")
@click.option("--parent", "parent_url", help="Parent URL (default: from the QR text, else the "
                                             "PARENT_URL setting).")
@click.option("--request-file", type=click.Path(dir_okay=False, path_type=Path),
              help="No link: write the request to this file for the parent instead.")
@click.option("--certificate-file", type=click.Path(dir_okay=False, exists=True,
                                                    path_type=Path),
              help="No link: install the parent's answer from this file.")
@pass_ctx
def enroll(obj, code, parent_url, request_file, certificate_file):
    """Join the network under the parent, with the code its admin gave you.

    Example: siji enroll --code 7KQM-4HXA-P2ZD --parent http://zhen.example:8000

    \b
    Or the text of the QR code on the parent's network page (quoted for the shell):
    siji enroll --code 'siji-enroll:7KQM-4HXA-P2ZD?parent=http://zhen:8000&id=zhen'
    """
    from node import enroll as enrollment
    expected_parent = None
    if code.strip().startswith(enrollment.QR_PREFIX):
        qr = enrollment.parse_qr(code)
        if parent_url and parent_url.rstrip("/") != qr["parent_url"]:
            raise ValidationError(N_("%(field)s: the QR text names the parent %(url)s, not "
                                     "%(other)s"), field="--parent", url=qr["parent_url"],
                                  other=parent_url)
        code, parent_url, expected_parent = qr["code"], qr["parent_url"], qr["parent_id"]
    node = _open(obj)
    if request_file and not certificate_file:
        request_file.write_text(json.dumps(enrollment.make_request(node, code)), "utf-8")
        click.echo(i18n.translate(N_("Wrote the request to %(file)s: carry it to the parent's "
                                     "admin, then run this again with --certificate-file."),
                                  _lang(obj), file=request_file))
        return
    if certificate_file:
        try:
            answer = json.loads(certificate_file.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ValidationError(N_("%(field)s: not valid JSON (%(problem)s)"),
                                  field="--certificate-file", problem="unreadable") from None
        enrollment.check_parent(expected_parent, enrollment.issuer_of(answer),
                                str(certificate_file))
        with store.write(node.db):
            result = enrollment.install(node, answer, code)
    else:
        result = enrollment.join(node, parent_url or node.settings["PARENT_URL"], code,
                                 expected_parent)
    if parent_url and parent_url != node.settings["PARENT_URL"]:
        enrollment.set_setting(node, "PARENT_URL", parent_url)  # where sessions go from now on
    click.echo(i18n.translate(N_("Enrolled under %(parent)s."), _lang(obj),
                              parent=result["parent"]))
    _fingerprint_line(obj, result["fingerprint"])


@cli.command("enroll-accept")
@click.argument("request_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--certificate-file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Where to write the answer to carry back to the child.")
@pass_ctx
def enroll_accept(obj, request_file, certificate_file):
    """Accept a child's enrollment request brought as a file (parent's admin, no link).

    Example: siji enroll-accept /media/usb/request.json --certificate-file /media/usb/answer.json
    """
    from node import enroll as enrollment
    node = _open(obj)
    try:
        payload = json.loads(request_file.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError):
        payload = None
    with store.write(node.db):
        answer = enrollment.accept_request(node, payload)
    certificate_file.write_text(json.dumps(answer), "utf-8")
    child = answer["certificate"]
    fp = enrollment.pair_fingerprint(node.signer.public_key().public_bytes_raw(),
                                     trust.b64decode(child["sign_pub"]))
    click.echo(i18n.translate(N_("Enrolled %(node)s; the answer is in %(file)s."), _lang(obj),
                              node=child["node"], file=certificate_file))
    _fingerprint_line(obj, fp)


@cli.command()
@click.argument("target")
@click.option("--as", "username", required=True, help="An admin of this node.")
@click.option("--reason", required=True, help="Why, for the record.")
@pass_ctx
def revoke(obj, target, username, reason):
    """Revoke a node below this one: its events and bundles are refused from now on.

    Example: siji revoke dongshan --as admin --reason "设备丢失"
    """
    from node import membership
    node = _open(obj)
    with store.write(node.db):
        membership.revoke(node, _actor(node, username), target, reason)
    click.echo(i18n.translate(N_("Revoked %(node)s; the revocation goes out with the next "
                                 "sync."), _lang(obj), node=target))


@cli.command("export")
@click.option("--to", "peer", required=True, help="The neighbour the files are for.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@pass_ctx
def export_cmd(obj, peer, directory):
    """Write what a neighbour is owed as bundle files, to carry on a USB stick.

    Example: siji export --to qingshui /media/usb
    """
    from node.sync import files
    node = _open(obj)
    written = files.export_bundles(node, peer, directory)
    click.echo(i18n.translate(N_("Wrote %(n)s bundle files for %(node)s to %(dir)s"),
                              _lang(obj), n=len(written), node=peer, dir=directory))


@cli.command("import")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@pass_ctx
def import_cmd(obj, directory):
    """Apply bundle and acknowledgement files addressed to this node; write acks back.

    Example: siji import /media/usb
    """
    from node.sync import files
    node = _open(obj)
    report = files.import_dir(node, directory)
    lang = _lang(obj)
    _emit(obj, report, lambda r: (
        click.echo(i18n.translate(
            N_("Applied %(bundles)s bundles (%(events)s events) and %(acks)s "
               "acknowledgements; wrote %(written)s acknowledgements to carry back"), lang,
            bundles=r["bundles"], events=r["events"], acks=r["acks"],
            written=len(r["acks_written"]))),
        [click.echo(f"refused {name}: {why}", err=True) for name, why in r["refused"]]))
    if report["refused"]:
        raise NodeError(N_("%(n)s files were refused; see above"), n=len(report["refused"]))


@cli.command()
@pass_ctx
def status(obj):
    """Show sync state: last contact and success, backlog and errors per neighbour.

    Example: siji --json status
    """
    from node.sync import status as sync_status
    node = _open(obj)
    data = sync_status.summary(node)
    lang = _lang(obj)

    def human(d):
        click.echo(i18n.translate(N_("Last synced: %(when)s; %(n)s events waiting"), lang,
                                  when=d["last_synced"] or "-", n=d["waiting"]))
        for link in d["links"]:
            click.echo("\t".join(str(link[k] if link[k] is not None else "-") for k in (
                "peer", "role", "last_contact", "last_success", "backlog_events",
                "backlog_bytes", "errors", "last_error")))
        if d["refusals"]:
            click.echo(i18n.translate(N_("%(n)s refused items (see the refusals table)"), lang,
                                      n=d["refusals"]))
    _emit(obj, data, human)


@cli.command()
@click.option("--report", is_flag=True,
              help="First record this node's own counts, if they changed (they go up with the "
                   "next sync).")
@click.option("--under", metavar="NODE", help="Totals for this node and those below it "
              "(default: this node).")
@pass_ctx
def figures(obj, report, under):
    """Counts of cases and warnings, without personal data, for this node and all below it.

    Example: siji figures --report
    """
    from node import cases as case_domain
    from node import figures as figure_domain
    from node import warnings as warning_domain
    node = _open(obj)
    if report:
        with store.write(node.db):
            figure_domain.report(node)
    data = figure_domain.totals(node, under)
    lang = _lang(obj)

    def name(vocabulary: dict, code: str) -> str:
        pair = vocabulary.get(code)
        return code if pair is None else pair[0] if lang == "zh" else pair[1]

    def human(d):
        click.echo(i18n.translate(N_("Figures from %(n)s units: %(units)s"), lang,
                                  n=len(d["units"]), units=", ".join(d["units"]) or "-"))
        for category, by_state in sorted(d["cases"].items()):
            states = ", ".join(f"{name(case_domain.STATES, s)} {n}"
                               for s, n in sorted(by_state.items()))
            click.echo(f"{name(case_domain.CATEGORIES, category)}\t"
                       f"{sum(by_state.values())}\t{states}")
        click.echo(i18n.translate(N_("Overdue %(overdue)s; collective %(collective)s; "
                                     "warnings %(warnings)s"), lang, overdue=d["overdue"],
                                  collective=d["collective"], warnings=", ".join(
                                      f"{name(warning_domain.LEVELS, k)} {n}"
                                      for k, n in sorted(d["warnings"].items())) or "0"))
    _emit(obj, data, human)


@cli.command()
@click.option("--host", help="Address to listen on (default: HOST setting).")
@click.option("--port", type=int, help="Port (default: PORT setting).")
@pass_ctx
def serve(obj, host, port):
    """Serve this node's pages and API with waitress.

    Example: siji serve --port 8001
    """
    import waitress

    from node import create_app, store
    app = create_app(obj["dir"])
    settings = app.config
    store.checkpoint_in_background(settings["NODE_DIR"] / settings["DATABASE"])
    host, port = host or settings["HOST"], port or settings["PORT"]
    click.echo(i18n.translate(N_("Serving %(name)s on http://%(host)s:%(port)s/"), _lang(obj),
                              name=settings["NODE_NAME"], host=host, port=port))
    from node import verifier
    from node.sync import jobs
    logging.getLogger("siji").setLevel(logging.INFO)
    scheduler = jobs.start(obj["dir"], settings)
    # the helpers that check a bundle's signatures, ready before the first bundle arrives
    threading.Thread(target=verifier.start, name="siji-verifier-start", daemon=True).start()
    # What startup made lives as long as the process: keep it out of the collector's
    # oldest generation, which it would otherwise scan again and again while bundles are
    # applied (measured: GC took 5% of applying a stream of bundles, 2% after this).
    gc.collect()
    gc.freeze()
    try:
        waitress.serve(app, host=host, port=port, threads=8, ident="siji")
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


@cli.command()
@click.option("--dir", "demo_dir", type=click.Path(file_okay=False, path_type=Path),
              default="demo", show_default=True,
              help="Where the demo network lives, one directory per node (not the global "
                   "--dir, which names one node).")
@click.option("--base-port", type=click.IntRange(1024, 65535 - 14),
              help="The city's port; the other 14 nodes take the ports after it (default "
                   "8000, or the ports this demo used last time).")
@click.option("--fresh", is_flag=True,
              help="Delete the demo network in --dir and start over.")
@pass_ctx
def demo(obj, demo_dir, base_port, fresh):
    """Run a whole demo network on 127.0.0.1 until Ctrl-C: 1 city, 2 towns, 4 areas, 8 villages.

    Each node is its own `siji serve` process on its own port, enrolled with its
    parent and syncing every few seconds, with made-up cases and warnings. Run it
    again to resume the same network.

    Example: siji demo --dir ./demo --base-port 8000
    """
    from node import demo as network
    network.run(demo_dir, base_port=base_port, fresh=fresh, lang=_lang(obj),
                as_json=obj.get("json", False))


def _error_language(argv: list[str]) -> str:
    """The language for a message about an error that may stop click parsing --lang."""
    lang = os.environ.get("SIJI_LANG", "zh")
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            lang = argv[i + 1]
        elif arg.startswith("--lang="):
            lang = arg.partition("=")[2]
    return lang if lang in ("zh", "en") else "zh"


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="siji: %(levelname)s: %(message)s")
    # urllib3 logs a malformed answer from a flaky link with a traceback; we say it in one line
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    if argv is None:
        argv = sys.argv[1:]
    lang = _error_language(argv)
    try:
        cli.main(args=argv, prog_name="siji", standalone_mode=False)
    except NodeError as e:
        click.echo("siji: " + i18n.message(e, lang), err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("siji: aborted", err=True)
        return 1
    except click.UsageError as e:
        command = e.ctx.command_path if e.ctx else "siji"
        click.echo(f"siji: {e.format_message()} (see `{command} --help`)", err=True)
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"siji: {e.format_message()}", err=True)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the edge: one line, never a traceback
        if os.environ.get("SIJI_DEBUG"):
            raise
        click.echo(f"siji: unexpected error ({type(e).__name__}); run again with SIJI_DEBUG=1 "
                   "and report it", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
