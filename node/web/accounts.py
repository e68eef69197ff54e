"""The admin's accounts page: list, add, disable and enable the people who log in here.

The same ``users`` functions as `siji user add`, through ``ops``. Disabling
an account ends its sessions at once: the user's row is read on every
request (``auth.load_user``). An admin cannot disable their own account,
nor the last enabled admin.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

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
    return render_template("users.html", users=users.list_users(node()), roles=users.ROLES,
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


@bp.post("/users/<username>/disable")
@needs("admin")
def disable(username):
    return _switch(username, True)


@bp.post("/users/<username>/enable")
@needs("admin")
def enable(username):
    return _switch(username, False)
