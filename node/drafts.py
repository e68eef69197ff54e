"""Draft keys: a registration or a warning sent twice is written once.

A liaison's phone keeps what was saved without a link to the node as a draft
with a random key of its own, and sends it when the node can be reached; the
online forms carry a key too. The answer can be lost after the node wrote the
case (the link drops mid-answer, the phone sleeps), so the phone sends again:
the node answers with the first result and writes nothing. The key is
written in the same transaction as the event it led to, so it exists
exactly when the event does; a command that fails leaves no key.

The same key with other contents, for another kind of record, or from
another account is refused: a key reused for two drafts is a bug of the
sender, and answering it with the first result would lose the second draft
(or show another person's case). Keys are this node's own, not derived from
events: ``siji rebuild`` leaves them and they never travel. A key is kept
KEEP_DAYS (a year; ``expire``, from the housekeeping job): a phone clears a
draft once it is answered, so only a phone kept off for longer than that and
then sending again could make a second record.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

from node.errors import N_, NodeError, ValidationError

KINDS = ("case", "warning")
KEEP_DAYS = 365
KEY = re.compile(r"[A-Za-z0-9-]{16,64}")


class DraftConflict(NodeError):
    """A draft key was sent before with other contents, kind or account."""

    code = "draft_conflict"
    http_status = 409


def expire(node, before: str) -> int:
    """Forget the keys written before ``before`` (an ISO stamp); returns how many. The
    caller owns the transaction."""
    return node.db.conn.execute("DELETE FROM draft_keys WHERE at < ?", (before,)).rowcount


def digest(fields: dict) -> str:
    """What identifies a draft's contents: SHA-256 of its fields as sorted JSON."""
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_key(key, field: str = "draft_key") -> str:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValidationError(N_("%(field)s must be 16 to 64 letters, digits or hyphens"),
                              field=field)
    return key


def once(node, username: str, kind: str, key: str | None, fields: dict,
         write: Callable[[], str]) -> tuple[str, bool]:
    """Run ``write`` (which appends the event and returns its subject) once per key.

    Returns the subject and whether it was written by an earlier send. Without a
    key (the API, the CLI) ``write`` simply runs. The caller owns the transaction:
    one ``store.write()`` around this call, so the key and the event commit together.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown draft kind {kind}")
    if key is None or key == "":
        return write(), False
    key, sent = check_key(key), digest(fields)
    row = node.db.conn.execute("SELECT username, kind, digest, result_id FROM draft_keys "
                               "WHERE key = ?", (key,)).fetchone()
    if row is not None:
        if (row[0], row[1]) != (username, kind):
            raise DraftConflict(N_("this draft's key was already used by another account or "
                                   "for another kind of record; save the draft again"))
        if row[2] != sent:
            raise DraftConflict(N_("this draft was already sent as %(id)s with other "
                                   "contents; open a new form for another record"),
                                id=row[3])
        return row[3], True
    result = write()
    node.db.conn.execute("INSERT INTO draft_keys (key, username, kind, digest, result_id, at) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (key, username, kind, sent, result, node.now()))
    return result, False
