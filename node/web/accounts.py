"""The admin's accounts page: list, add, disable and enable the people who log in here.

The same ``users`` functions as `siji user add`, through ``ops``. Disabling
an account ends its sessions at once: the user's row is read on every
request (``auth.load_user``). An admin cannot disable their own account,
nor the last enabled admin.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from node import i18n, users
from node.errors import N_, NodeError
from node.web import ops
from node.web.auth import needs, node
from node.web.liaison import say

bp = Blueprint("accounts", __name__)
FIELDS = ("username", "display_name", "role", "password", "password_again")


@bp.get("/users")
@needs("admin")
def page(error=None, form=None, status=200):
    form = {k: v for k, v in (form or {}).items() if not k.startswith("password")}
    n = node()
    listed = [{**u, "sessions": users.live_sessions(n, u["username"])}
              for u in users.list_users(n)]
    return render_template("users.html", users=listed, roles=users.ROLES,
                           min_password=users.MIN_PASSWORD, error=error, form=form), status


@bp.post("/users")
@needs("admin")
def add():
    fields = {k: request.form.get(k, "") for k in FIELDS}
    try:
        user = ops.add_user(node(), g.user, fields)
    except NodeError as e:
        return page(error=i18n.message(e, g.lang), form=fields, status=e.http_status)
    say(N_("Added %(role)s %(name)s"), role=user["role"],
        name=user["username"])
    return redirect(url_for("accounts.page"), 303)


def _switch(username: str, disabled: bool):
    try:
        ops.set_user_disabled(node(), g.user, username, disabled)
    except NodeError as e:
        return page(error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Disabled %(name)s; their sessions have ended.") if disabled
        else N_("Enabled %(name)s."), name=username)
    return redirect(url_for("accounts.page"), 303)


@bp.post("/users/<username>/sessions/end")
@needs("admin")
def end_sessions(username):
    try:
        n = ops.end_sessions(node(), g.user, username)
    except NodeError as e:
        return page(error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Signed %(name)s out of %(n)s sessions."), name=username, n=n)
    return redirect(url_for("accounts.page"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
@needs()
def password():
    error, status = None, 200
    if request.method == "POST":
        try:
            ops.change_password(node(), g.user, {k: request.form.get(k) for k in (
                "old_password", "password", "password_again")}, keep=session.get("sid"))
        except NodeError as e:
            error, status = i18n.message(e, g.lang), e.http_status
        else:
            say(N_("Your password is changed; your other sessions have ended."))
            return redirect(url_for("auth.home"), 303)
    return render_template("password.html", error=error,
                           min_password=users.MIN_PASSWORD), status


@bp.post("/users/<username>/disable")
@needs("admin")
def disable(username):
    return _switch(username, True)


@bp.post("/users/<username>/enable")
@needs("admin")
def enable(username):
    return _switch(username, False)
