"""Logging in to this node: sessions, throttled failures, and who may open what.

A session lives on the server (``users.start_session``): Flask's signed
cookie (one cookie name per node, keyed with the node's ``session.key``
file) carries only its random id and the node id, and the user's row is read
again on every request, so logging out, a password change, an admin ending
it, a disabled account or a changed role takes effect at once, and a copied
cookie ends with the session. A login ends after SESSION_MINUTES without a
request, and after users.MAX_SESSION_HOURS in any case.

Failed logins are counted in SQLite per username and per client address
(``login_failures``), so a restart does not reset them. Past
LOGIN_MAX_FAILURES for a username (four times that for an address) within
LOGIN_LOCK_MINUTES, logins are refused for LOGIN_LOCK_MINUTES without even
checking the password. The answer to a wrong username and to a wrong
password is the same.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from node import core, enroll, i18n, log, pacing, store, trust, users
from node.errors import N_, NodeError, NotAllowed

bp = Blueprint("auth", __name__)
ADDRESS_FACTOR = 4
PUBLIC = {"auth.login", "static", "health", "api.login", "api.openapi", "lookup.page",
          "api_office.lookup", "drafts.manifest", "drafts.service_worker",
          "drafts.session", "drafts.upload"}  # the last two answer JSON 401 themselves


class NotLoggedIn(NodeError):
    """The request needs a logged-in user of this node."""

    code = "not_logged_in"
    http_status = 401


class Throttled(NodeError):
    """Too many failed logins: refused for a while."""

    code = "throttled"
    http_status = 429


def session_key(key_dir) -> str:
    return trust.session_key(key_dir)


def node():
    return current_app.extensions["siji.node"]()


def actor() -> log.Actor:
    user = g.get("user")
    if user is None:
        raise NotLoggedIn(N_("please log in"))
    return log.Actor(user["username"], user["role"])


# -- throttling ------------------------------------------------------------------

def _keys(username: str, address: str | None) -> list[tuple[str, int]]:
    limit = node().settings["LOGIN_MAX_FAILURES"]
    return [(f"user:{username}", limit), (f"addr:{address or '-'}", limit * ADDRESS_FACTOR)]


def _locked(n, keys) -> bool:
    now = n.now()
    marks = [k for k, _ in keys]
    rows = n.db.conn.execute(
        f"SELECT locked_until FROM login_failures WHERE key IN ({', '.join('?' * len(marks))})",
        marks).fetchall()
    return any(r[0] and r[0] > now for r in rows)


def _record_failure(n, keys) -> None:
    lock = timedelta(minutes=n.settings["LOGIN_LOCK_MINUTES"])
    now = n.clock()
    window_start = core.iso(now - lock)
    with store.write(n.db):
        n.db.conn.execute("DELETE FROM login_failures WHERE first_at < ? AND "
                          "(locked_until IS NULL OR locked_until < ?)",
                          (core.iso(now - timedelta(days=1)), core.iso(now)))
        for key, limit in keys:
            row = n.db.conn.execute("SELECT failures, first_at FROM login_failures "
                                    "WHERE key = ?", (key,)).fetchone()
            failures, first = (row[0], row[1]) if row and row[1] >= window_start else (
                0, core.iso(now))
            failures += 1
            locked = core.iso(now + lock) if limit and failures >= limit else None
            n.db.conn.execute(
                "INSERT INTO login_failures (key, failures, first_at, locked_until) VALUES "
                "(?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, "
                "first_at = excluded.first_at, locked_until = excluded.locked_until",
                (key, failures, first, locked))


def _clear_user(n, username: str) -> None:
    # the address count stays: one known password must not reset guessing at others
    with store.write(n.db):
        n.db.conn.execute("DELETE FROM login_failures WHERE key = ?", (f"user:{username}",))


def authenticate(username: str, password: str) -> dict:
    """Check a login; raises Throttled or NotLoggedIn. Sets up the session on success."""
    n = node()
    limiter = current_app.extensions.get("siji.login_limiter")
    if limiter is None:
        limiter = current_app.extensions["siji.login_limiter"] = pacing.RateLimiter(
            n.settings["LOGIN_REQUESTS_PER_MINUTE"])
    wait = limiter.wait(enroll.client_key(request.remote_addr), time.monotonic())
    if wait:
        raise Throttled(N_("too many login attempts from this address; try again in "
                           "%(seconds)s seconds"), seconds=math.ceil(wait))
    username = (username or "").strip().lower()[:64]
    keys = _keys(username, request.remote_addr)
    if _locked(n, keys):
        raise Throttled(N_("too many failed logins; try again in %(n)s minutes"),
                        n=n.settings["LOGIN_LOCK_MINUTES"])
    user = users.authenticate(n, username, password or "") if username else None
    if user is None:
        _record_failure(n, keys)
        raise NotLoggedIn(N_("wrong username or password"))
    _clear_user(n, username)
    with store.write(n.db):
        token = users.start_session(n, user["username"])
    session.clear()
    session.permanent = True
    session.update(sid=token, node=n.id)
    return user


def end_session() -> None:
    """Log out: the session ends on the server, and the cookie is cleared."""
    n = node()
    if session.get("node") == n.id:
        with store.write(n.db):
            users.end_session(n, session.get("sid"), "logout")
    session.clear()


def load_user() -> None:
    """Before every request: the logged-in user, or a refusal for a page that needs one."""
    g.user = None
    if request.path.startswith("/sync/"):
        return None  # nodes, authenticated by their signatures: no cookie is read
    n = node()
    if session.get("sid") and session.get("node") == n.id:
        with store.write(n.db):
            g.user = users.session_user(n, session["sid"])
        if g.user is None:
            session.clear()
    if g.user is None and request.endpoint not in PUBLIC and request.endpoint is not None:
        if request.path.startswith("/api/"):
            raise NotLoggedIn(N_("please log in"))
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def needs(*roles: str, tiers: tuple[str, ...] | None = None):
    """A view for these roles (and tiers) only; everyone else gets a translated refusal."""
    def wrap(view):
        @wraps(view)
        def checked(*args, **kwargs):
            user = g.get("user")
            if user is None:
                raise NotLoggedIn(N_("please log in"))
            if roles and user["role"] not in roles:
                raise NotAllowed(N_("the role %(role)s may not open this page"),
                                 role=user["role"])
            if tiers and node().tier not in tiers:
                raise NotAllowed(N_("a %(tier)s node has no such page"), tier=node().tier)
            return view(*args, **kwargs)
        return checked
    return wrap


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


# -- pages -----------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        try:
            authenticate(request.form.get("username", ""), request.form.get("password", ""))
        except NodeError as e:
            error, status = i18n.message(e, g.lang), e.http_status
        else:
            return redirect(_safe_next(request.args.get("next")) or url_for("auth.home"))
    return render_template("login.html", error=error,
                           username=request.form.get("username", "")), status


@bp.post("/logout")
def logout():
    end_session()
    return redirect(url_for("auth.login"))


@bp.get("/")
def home():
    """Each role starts where its work is."""
    role, tier = g.user["role"], node().tier
    if role == "admin":
        return redirect(url_for("network.page"))
    if role == "liaison" or tier == "village":
        return redirect(url_for("liaison.mine"))
    if tier == "city":
        return redirect(url_for("city.page"))
    return redirect(url_for("office.inbox"))
