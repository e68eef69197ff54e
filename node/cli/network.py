"""`siji sync`, `status`, `export`, `import`, enrollment and revocation: the links between nodes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from node import enroll as enrollment
from node import i18n, log, membership, store, trust
from node.cli.common import (
    _actor,
    _emit,
    _enrolled,
    _lang,
    _open,
    _say,
    cli,
    pass_ctx,
)
from node.errors import N_, NodeError, ValidationError
from node.sync import files, outbox, session
from node.sync import status as sync_status


@cli.command()
@click.option("--attempts", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Tries in a row that move nothing (the parent busy or unreachable) "
                   "before giving up; a try cut short after moving something goes on at "
                   "once and does not count.")
@pass_ctx
def sync(obj, attempts):
    """Run one sync session with the parent now: push up, pull down.

    Example: siji sync
    """
    from node.sync.http import HttpTransport  # here: Flask and requests load slowly
    node = _open(obj)
    if not node.settings["PARENT_URL"]:
        raise NodeError(N_("this node has no parent URL (the city syncs with nobody above)"))
    try:  # (a session goes on by itself after every cut that moved something)
        summary = session.run(node, HttpTransport(node.settings["PARENT_URL"]),
                              retries=attempts - 1, reports_first=True)
    except OSError:
        raise NodeError(N_("cannot reach the parent at %(url)s; the events wait and go with "
                           "the next sync"), url=node.settings["PARENT_URL"]) from None
    _say(obj, {"sent": summary.sent, "received": summary.received},
         N_("Synced: sent %(sent)s, received %(received)s events"))


@cli.command("enroll-code")
@click.option("--hours", type=click.IntRange(1, 24 * 30), default=72, show_default=True,
              help="How long the code may be used.")
@pass_ctx
def enroll_code(obj, hours):
    """Make a one-time code for a child node's admin to enroll with (parent's admin).

    Example: siji enroll-code --hours 24
    """
    node = _open(obj)
    with store.write(node.db):
        code = enrollment.new_code(node, hours)
    _say(obj, {"code": code, "hours": hours},
         N_("Enrollment code %(code)s, valid for %(hours)s hours. Give it to the child's admin "
            "with this node's address."))


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
    from node.sync import http  # here: Flask and requests load slowly
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
        _say(obj, {"file": str(request_file)},
             N_("Wrote the request to %(file)s: carry it to the parent's admin, then run this "
                "again with --certificate-file."))
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
            outbox.resume(node, result["parent"], result["resume_link"])
    else:
        result = http.join(node, parent_url or node.settings["PARENT_URL"], code,
                                 expected_parent)
    if parent_url and parent_url != node.settings["PARENT_URL"]:
        enrollment.set_setting(node, "PARENT_URL", parent_url)  # where sessions go from now on
    _enrolled(obj, {"parent": result["parent"]}, N_("Enrolled under %(parent)s."),
              result["fingerprint"])


@cli.command("enroll-accept")
@click.argument("request_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--certificate-file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Where to write the answer to carry back to the child.")
@pass_ctx
def enroll_accept(obj, request_file, certificate_file):
    """Accept a child's enrollment request brought as a file (parent's admin, no link).

    Example: siji enroll-accept /media/usb/request.json --certificate-file /media/usb/answer.json
    """
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
    _enrolled(obj, {"node": child["node"], "file": str(certificate_file)},
              N_("Enrolled %(node)s; the answer is in %(file)s."), fp)


@cli.command()
@click.argument("target")
@click.option("--as", "username", required=True, help="An admin of this node.")
@click.option("--reason", required=True, help="Why, for the record.")
@pass_ctx
def revoke(obj, target, username, reason):
    """Revoke a node below this one: its events and bundles are refused from now on.

    Example: siji revoke dongshan --as admin --reason "设备丢失"
    """
    node = _open(obj)
    with store.write(node.db):
        membership.revoke(node, _actor(node, username), target, reason)
    _say(obj, {"node": target, "revoked": True},
         N_("Revoked %(node)s; the revocation goes out with the next sync."), node=target)


@cli.command("export")
@click.option("--to", "peer", required=True, help="The neighbour the files are for.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@pass_ctx
def export_cmd(obj, peer, directory):
    """Write what a neighbour is owed as bundle files, to carry on a USB stick.

    Example: siji export --to qingshui /media/usb
    """
    node = _open(obj)
    written = files.export_bundles(node, peer, directory)
    _say(obj, {"files": [str(p) for p in written], "node": peer, "dir": str(directory)},
         N_("Wrote %(n)s bundle files for %(node)s to %(dir)s"), n=len(written), node=peer,
         dir=directory)


@cli.command("import")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@pass_ctx
def import_cmd(obj, directory):
    """Apply bundle and acknowledgement files addressed to this node; write acks back.

    Example: siji import /media/usb
    """
    node = _open(obj)
    report = files.import_dir(node, directory)
    lang = _lang(obj)
    _emit(obj, report, lambda r: (
        click.echo(i18n.translate(
            N_("Applied %(bundles)s bundles (%(events)s events) and %(acks)s "
               "acknowledgements; wrote %(written)s acknowledgements to carry back"), lang,
            bundles=r["bundles"], events=r["events"], acks=r["acks"],
            written=len(r["acks_written"]))),
        [click.echo(f"refused {name}: {why}", err=True) for name, why in r["refused"]],
        [click.echo(i18n.translate(N_("left alone %(file)s: an incomplete copy (the stick was "
                                      "pulled out while it was written?); export again"),
                                   lang, file=name), err=True) for name in r["incomplete"]]))
    if report["refused"]:
        raise NodeError(N_("%(n)s files were refused; see above"), n=len(report["refused"]))


@cli.command()
@pass_ctx
def status(obj):
    """Show sync state: last contact and success, backlog, bytes owed and sent, errors.

    Example: siji --json status
    """
    node = _open(obj)
    data = sync_status.summary(node)
    lang = _lang(obj)

    def human(d):
        click.echo(i18n.translate(N_("Last synced: %(when)s; %(n)s events waiting"), lang,
                                  when=d["last_synced"] or "-", n=d["waiting"]))
        going = d["progress"]
        if going:
            click.echo(i18n.translate(
                N_("Sent %(sent)s KiB of %(total)s KiB owed; about %(minutes)s min to go at "
                   "the rate measured") if going["minutes"] else
                N_("Sent %(sent)s KiB of %(total)s KiB owed"), lang,
                sent=going["sent_kib"], total=going["total_kib"], minutes=going["minutes"]))
        for link in d["links"]:
            shown = {**link, "backlog_events": f"{link['backlog_events']}"
                     f"{'+' if link['backlog_at_least'] else ''}"}
            click.echo("\t".join(str(shown[k] if shown[k] is not None else "-") for k in (
                "peer", "role", "last_contact", "last_success", "backlog_events",
                "backlog_bytes", "owed_bytes", "rate", "errors", "last_error")))
        if d["refusals"]:
            click.echo(i18n.translate(N_("%(n)s refused items (see the refusals table)"), lang,
                                      n=d["refusals"]))
        click.echo(i18n.translate(N_("Figures reports kept: %(kept)s (%(compacted)s superseded "
                                     "ones compacted)"), lang, kept=d["figures"]["reports"],
                                  compacted=d["figures"]["compacted"]))
        for flag in d["flags"]:
            click.echo(i18n.translate(N_("Look at %(node)s (%(kind)s, since %(since)s): "
                                         "%(detail)s"), lang, **flag))
    _emit(obj, data, human)


@cli.command()
@click.option("--release", "release", metavar="EVENT", help="Apply this held event, its dates "
              "counted from when this node received it.")
@click.option("--drop", "drop", metavar="EVENT", help="Refuse this held event for good.")
@pass_ctx
def held(obj, release, drop):
    """Events held for their time: dated too far ahead (applied when the time comes) or
    too far back (an administrator releases or drops them).

    Example: siji held --release cun:42
    """
    node = _open(obj)
    lang = _lang(obj)
    if release and drop:
        raise ValidationError(N_("%(field)s: give --release or --drop, not both"),
                              field="--release")
    if release or drop:
        with store.write(node.db):
            log.release_held(node, release or drop, drop=bool(drop))
        _say(obj, {"id": release or drop, "released": bool(release)},
             N_("Released %(id)s") if release else N_("Dropped %(id)s"), id=release or drop)
        return
    rows = log.held(node)

    def human(items):
        for h in items:
            click.echo("\t".join((h["id"], h["type"], h["subject"], h["ts"], h["why"],
                                  h["received_at"], h["source"] or "-")))
        click.echo(i18n.translate(N_("%(n)s events held for their time"), lang, n=len(items)))
    _emit(obj, rows, human)
