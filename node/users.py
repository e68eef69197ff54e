"""People who log in to this node, with a role: liaison, handler, leader, admin."""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

from node import i18n, validate
from node.errors import N_, AlreadyExists, NotAllowed, NotFound, ValidationError
from node.settings import Setting, declare, non_negative
from node.tiers import TIER_ROLES

ROLES = {"liaison": ("信息员", "Liaison"), "handler": ("办理人", "Handler"),
         "leader": ("领导", "Leader"), "admin": ("管理员", "Administrator")}
MIN_PASSWORD = 8
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
