"""领导接待日 pages: the reception days and who is on duty, the reception log, and each
leader's own page (their reception days, appointments and 包案 cases with figures)."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from node import i18n, reception, store, users
from node.errors import N_, NodeError
from node.web import access
from node.web.auth import needs, node
from node.web.liaison import say

bp = Blueprint("reception", __name__)


def set_duty(n, user: dict, fields: dict) -> dict:
    with store.write(n.db):
        done = reception.set_duty(n, user["username"], fields.get("date"),
                                  fields.get("leader") or "", fields.get("place"),
                                  fields.get("note"))
        access.audit(n, user["username"], "reception_duty", done["date"])
    return done


def leaders(n) -> list[dict]:
    return [u for u in users.list_users(n) if u["role"] == "leader" and not u["disabled"]]


def _page(error=None, status=200):
    n = node()
    return render_template("reception.html", days=reception.days(n, 6),
                           log=reception.reception_log(n, limit=50), leaders=leaders(n),
                           may_plan=g.user["role"] in ("leader", "handler", "admin"),
                           error=error), status


@bp.get("/reception")
@needs()
def page():
    return _page()


@bp.post("/reception/duty")
@needs("leader", "handler", "admin")
def duty():
    fields = {k: (request.form.get(k) or "").strip() or None
              for k in ("date", "leader", "place", "note")}
    try:
        done = set_duty(node(), g.user, fields)
    except NodeError as e:
        return _page(error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("%(leader)s is on duty on %(date)s"), leader=done["leader"], date=done["date"])
    return redirect(url_for("reception.page"), 303)


@bp.get("/leader")
@bp.get("/leader/<username>")
@needs("leader", "handler")
def leader(username=None):
    n = node()
    username = username or g.user["username"]
    person = users.get_user(n, username)
    return render_template("leader.html", person=person,
                           work=reception.leader_work(n, username, months=6))
