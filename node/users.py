"""People who log in to this node, with a role (liaison, handler, leader, admin), and
their web sessions.

A session lives on the server: the cookie carries a random id, and the table
``sessions`` only its SHA-256, so a copied cookie ends where the session does:
at logout, at a password change (every other session of the user), when an
admin ends them or disables the account, after SESSION_MINUTES idle or
MAX_SESSION_HOURS in all.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from werkzeug.security import check_password_hash, generate_password_hash

from node import i18n, validate
from node.clock import iso, parse
from node.errors import N_, AlreadyExists, NotAllowed, NotFound, ValidationError
from node.settings import Setting, declare, non_negative
from node.tiers import TIER_ROLES

ROLES = {"liaison": ("信息员", "Liaison"), "handler": ("办理人", "Handler"),
         "leader": ("领导", "Leader"), "admin": ("管理员", "Administrator")}
MIN_PASSWORD = 8
MAX_SESSION_HOURS = 12  # a login ends after this long, however busy
SEEN_EVERY = 60  # seconds: a session's last-seen time is written at most this often
i18n.add_labels("role", ROLES)


def check_password(password) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationError(N_("%(field)s: at least %(n)s characters"), field="password",
                              n=MIN_PASSWORD)
    return password


def add_user(node, username: str, display_name: str, role: str, password: str) -> dict:
    """Add an account; returns it as ``get_user`` does. The caller owns the transaction."""
    username = validate.username("username", username)
    display_name = validate.line("display_name", display_name, max_len=50)
    role = validate.choice("role", role, ROLES)
    if role not in TIER_ROLES[node.tier]:
        raise ValidationError(N_("%(field)s: a %(tier)s node has no %(role)s; its roles are "
                                 "%(roles)s"), field="role", tier=node.tier, role=role,
                              roles=", ".join(TIER_ROLES[node.tier]))
    check_password(password)
    if node.db.conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
        raise AlreadyExists(N_("user %(name)s already exists"), name=username)
    node.db.conn.execute(
        "INSERT INTO users (username, display_name, role, password_hash, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (username, display_name, role, generate_password_hash(password), node.now()))
    return get_user(node, username)


def get_user(node, username: str) -> dict:
    row = node.db.conn.execute("SELECT username, display_name, role, disabled FROM users "
                               "WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise NotFound(N_("no user %(name)s"), name=username)
    return dict(zip(("username", "display_name", "role", "disabled"), row, strict=True))


def authenticate(node, username: str, password: str) -> dict | None:
    row = node.db.conn.execute("SELECT password_hash, disabled FROM users WHERE username = ?",
                               (username,)).fetchone()
    if row is None or row[1] or not check_password_hash(row[0], password):
        return None
    return get_user(node, username)


def list_users(node) -> list[dict]:
    rows = node.db.conn.execute("SELECT username, display_name, role, disabled, created_at "
                                "FROM users ORDER BY username")
    return [dict(zip(("username", "display_name", "role", "disabled", "created_at"), r,
                     strict=True)) for r in rows]


def set_disabled(node, username: str, disabled: bool) -> dict:
    """Disable or enable an account; the caller owns the transaction.

    A disabled account cannot log in, and its open sessions end at their next
    request (the web reads the user's row on every request). The last enabled
    admin cannot be disabled: nobody could manage the node any more.
    """
    user = get_user(node, username)
    if disabled and user["role"] == "admin" and not user["disabled"]:
        others = node.db.conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND "
                                      "disabled = 0 AND username != ?", (username,)).fetchone()
        if not others[0]:
            raise NotAllowed(N_("%(name)s is the last enabled administrator"), name=username)
    node.db.conn.execute("UPDATE users SET disabled = ? WHERE username = ?",
                         (1 if disabled else 0, user["username"]))
    if disabled:
        end_sessions(node, user["username"], "admin")
    return {**user, "disabled": 1 if disabled else 0}


declare(
    Setting("SESSION_MINUTES", 120, "A web login ends after this many minutes without a "
            "request; log in again then.", int, non_negative("SESSION_MINUTES")),
    Setting("LOGIN_MAX_FAILURES", 5, "Failed logins for one username before it is locked for "
            "LOGIN_LOCK_MINUTES (one client address gets four times as many).", int,
            non_negative("LOGIN_MAX_FAILURES")),
    Setting("LOGIN_LOCK_MINUTES", 15, "How long logins are refused after too many failures.",
            int, non_negative("LOGIN_LOCK_MINUTES")),
)


def change_password(node, username: str, old: str, new: str, keep: str | None = None) -> None:
    """A user changes their own password: the old one must be right; every other session
    of theirs ends (``keep``: the token of the one they changed it from). The caller owns
    the transaction."""
    if authenticate(node, username, old or "") is None:
        raise NotAllowed(N_("%(field)s: the current password is wrong"), field="old_password")
    set_password(node, username, new, keep=keep)


def set_password(node, username: str, new: str, keep: str | None = None) -> None:
    """Set a password (an admin or the operator, or change_password); every session of the
    user but ``keep`` ends. The caller owns the transaction."""
    user = get_user(node, username)
    check_password(new)
    node.db.conn.execute("UPDATE users SET password_hash = ? WHERE username = ?",
                         (generate_password_hash(new), user["username"]))
    end_sessions(node, user["username"], "password", keep=keep)


# -- sessions ---------------------------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(node, username: str) -> str:
    """A new session for ``username``; returns its token, for the cookie only. The caller
    owns the transaction."""
    token = secrets.token_urlsafe(32)
    node.db.conn.execute("INSERT INTO sessions (id_hash, username, created_at, seen_at) "
                         "VALUES (?, ?, ?, ?)", (_hash(token), username, node.now(), node.now()))
    return token


def session_user(node, token) -> dict | None:
    """The enabled user of a live session, or None; a session past its time is ended.
    Writes (the last-seen time, an end): the caller owns the transaction."""
    if not isinstance(token, str) or not token:
        return None
    row = node.db.conn.execute("SELECT username, created_at, seen_at, ended_at FROM sessions "
                               "WHERE id_hash = ?", (_hash(token),)).fetchone()
    if row is None or row[3] is not None:
        return None
    username, created, seen = row[0], parse(row[1]), parse(row[2])
    now = node.clock()
    if (now - seen > timedelta(minutes=node.settings["SESSION_MINUTES"])
            or now - created > timedelta(hours=MAX_SESSION_HOURS)):
        end_session(node, token, "expired")
        return None
    user = get_user(node, username)
    if user["disabled"]:
        return None
    if (now - seen).total_seconds() >= SEEN_EVERY:
        node.db.conn.execute("UPDATE sessions SET seen_at = ? WHERE id_hash = ?",
                             (iso(now), _hash(token)))
    return user


def end_session(node, token, why: str) -> None:
    if isinstance(token, str) and token:
        node.db.conn.execute("UPDATE sessions SET ended_at = ?, ended_why = ? WHERE id_hash = ? "
                             "AND ended_at IS NULL", (node.now(), why, _hash(token)))


def end_sessions(node, username: str, why: str, keep: str | None = None) -> int:
    """End every live session of ``username`` but ``keep``; returns how many."""
    cur = node.db.conn.execute(
        "UPDATE sessions SET ended_at = ?, ended_why = ? WHERE username = ? AND ended_at IS "
        "NULL AND id_hash != ?", (node.now(), why, username, _hash(keep) if keep else ""))
    return cur.rowcount


def live_sessions(node, username: str) -> int:
    return node.db.conn.execute("SELECT count(*) FROM sessions WHERE username = ? AND "
                                "ended_at IS NULL", (username,)).fetchone()[0]
