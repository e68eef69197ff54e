"""附件 pages: a case's attachments (thumbnails of the photos, links to the scans), adding
one from the phone's camera or a file, and each file itself (its reading audited; an ID
photo shown only to those who see the case's identity)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from node import attachments, cases, i18n, store
from node.errors import N_, NodeError, NotFound, ValidationError
from node.web import access, ops
from node.web.auth import needs, node
from node.web.liaison import say

bp = Blueprint("attachments", __name__)


def listing(n, user: dict, case_id: str) -> list[dict]:
    case = access.get_case(n, case_id)
    hidden = access.masked(n, user, case)
    return [{**r, "hidden": hidden and r["kind"] == "id_photo"}
            for r in attachments.listing(n, case_id)]


def add(n, user: dict, case_id: str, data: bytes, kind: str, name: str | None) -> dict:
    access.get_case(n, case_id)
    with store.write(n.db):
        event = attachments.attach(n, ops.actor(user), case_id, data, kind, name)
    return {"case": case_id, **event.body}


def read(n, user: dict, case_id: str, sha: str) -> tuple[bytes, dict]:
    row = next((r for r in listing(n, user, case_id) if r["sha256"] == sha), None)
    if row is None or row["hidden"]:
        raise NotFound(N_("no attachment %(id)s"), id=sha[:12])
    data, row = attachments.read(n, case_id, sha)
    with store.write(n.db):
        access.audit(n, user["username"], "read_attachment", f"{case_id} {sha[:12]}")
    return data, row


def response(data: bytes, row: dict) -> Response:
    name = row["name"] or f"{row['sha256'][:12]}.{attachments.EXTENSIONS[row['type']]}"
    inline = row["type"].startswith("image/")
    return Response(data, mimetype=row["type"], headers={
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''"
                               + _quoted(name),
        "Cache-Control": "private, no-store"})


def _quoted(name: str) -> str:
    return quote(name, safe="")


def _page(case_id, error=None, status=200):
    n = node()
    case = access.get_case(n, case_id)
    return render_template("attachments.html", case=case, rows=listing(n, g.user, case_id),
                           kinds=cases.ATTACHMENT_KINDS, error=error,
                           may_add=g.user["role"] in cases.WORKERS,
                           limit=n.settings["ATTACHMENT_MAX_BYTES"]), status


@bp.get("/cases/<case_id>/attachments")
@needs()
def page(case_id):
    return _page(case_id)


@bp.post("/cases/<case_id>/attachments")
@needs(*cases.WORKERS)
def upload(case_id):
    files = [f for f in request.files.getlist("file") if f and f.filename]
    try:
        if not files:
            raise ValidationError(N_("%(field)s: choose a file"), field="file")
        for f in files:
            add(node(), g.user, case_id, f.read(), request.form.get("kind") or "other",
                f.filename)
    except NodeError as e:
        if isinstance(e, NotFound):
            raise
        return _page(case_id, error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Attached %(n)s files"), n=len(files))
    return redirect(url_for("attachments.page", case_id=case_id), 303)


@bp.get("/cases/<case_id>/attachments/<sha>")
@needs()
def file(case_id, sha):
    return response(*read(node(), g.user, case_id, sha))
