"""The admin's network page: children and fingerprints, enrollment codes, sync, revoke.

An enrollment code is shown once, with a QR code (SVG made here by segno,
no script and no outside service) holding the code and this node's
address, for the child's admin to scan or type.
"""

from __future__ import annotations

import segno
from flask import Blueprint, g, redirect, render_template, request, url_for
from markupsafe import Markup

from node import enroll, i18n, log, notices, trust
from node.errors import N_, NodeError
from node.sync import status as sync_status
from node.web import ops
from node.web.auth import needs, node
from node.web.liaison import say

bp = Blueprint("network", __name__)


def enroll_text(code: str, parent_url: str, parent_id: str) -> str:
    """What the QR code holds: enough for `siji enroll` on the child."""
    return f"siji-enroll:{code}?parent={parent_url.rstrip('/')}&id={parent_id}"


def qr_svg(text: str) -> Markup:
    svg = segno.make(text, error="m").svg_inline(scale=4, omitsize=True, title="QR", dark="#000")
    return Markup(svg)  # noqa: S704 - segno's own SVG; the text inside it is escaped by segno


def overview(n) -> dict:
    sync = sync_status.summary(n)
    links = {link["peer"]: link for link in sync["links"]}
    return {"children": ops.children(n), "links": links, "codes": ops.enroll_codes(n),
            "sync": sync, "may_enroll": bool(enroll.CHILD_TIERS[n.tier]),
            "names": ops.node_names(n), "refusals": log.refusals(n, 20),
            "channels": notices.channels(n), "notices": notices.recent(n, 15),
            "notice_kinds": notices.KINDS, "notice_roles": notices.ROLES,
            "fingerprint": trust.fingerprint(n.signer.public_key().public_bytes_raw())}


@bp.get("/network")
@needs("admin")
def page(new_code=None, error=None, status=200):
    qr = None
    if new_code:
        qr = qr_svg(enroll_text(new_code, request.host_url, node().id))
    return render_template("network.html", **overview(node()), new_code=new_code, qr=qr,
                           error=error, host_url=request.host_url), status


@bp.post("/network/codes")
@needs("admin")
def make_code():
    try:
        code = ops.new_enroll_code(node(), request.form.get("hours"))
    except NodeError as e:
        return page(error=i18n.message(e, g.lang), status=e.http_status)
    return page(new_code=code)


@bp.post("/network/channels")
@needs("admin")
def add_channel():
    fields = {"name": request.form.get("name", "").strip(), "url": request.form.get(
        "url", "").strip(), "roles": request.form.getlist("roles"),
        "kinds": request.form.getlist("kinds")}
    try:
        ops.add_channel(node(), g.user, fields)
    except NodeError as e:
        return page(error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Added the channel %(name)s."), name=fields["name"])
    return redirect(url_for("network.page") + "#notices", 303)


@bp.post("/network/channels/<name>/remove")
@needs("admin")
def remove_channel(name):
    try:
        ops.remove_channel(node(), g.user, name)
    except NodeError as e:
        return page(error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Removed the channel %(name)s."), name=name)
    return redirect(url_for("network.page") + "#notices", 303)


@bp.post("/network/channels/<name>/test")
@needs("admin")
def test_channel(name):
    try:
        error = ops.test_channel(node(), g.user, name)
    except NodeError as e:
        return page(error=i18n.message(e, g.lang), status=e.http_status)
    if error:
        say(N_("The test through %(name)s failed: %(error)s"), "error", name=name, error=error)
    else:
        say(N_("The test went through %(name)s: check that it arrived."), name=name)
    return redirect(url_for("network.page") + "#notices", 303)


@bp.post("/network/<node_id>/revoke")
@needs("admin")
def revoke(node_id):
    try:
        ops.revoke(node(), g.user, node_id, request.form.get("reason", ""))
    except NodeError as e:
        return page(error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Revoked %(node)s; the revocation goes out with the next sync."), node=node_id)
    return redirect(url_for("network.page"), 303)
