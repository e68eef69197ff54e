"""The exception tree: raised inside, translated at the edges.

Every error has a stable ``code`` (for the JSON API and scripts) and a
message id in English with ``%(name)s`` placeholders. The message id is
also the key into the translation catalogue, so the edge (CLI, web) shows
it in the user's language with :func:`node.i18n.translate`.
"""

from __future__ import annotations


def N_(msgid: str) -> str:
    """Mark a string for extraction into the catalogue without translating it."""
    return msgid


class NodeError(Exception):
    """Something the user or operator can fix."""

    code = "node_error"
    http_status = 400

    def __init__(self, msgid: str, **params):
        self.msgid = msgid
        self.params = params
        super().__init__(self.english())

    def english(self) -> str:
        return self.msgid % self.params if self.params else self.msgid

    def as_dict(self, message: str | None = None) -> dict:
        """The one error shape of the API: code, message and parameters."""
        return {
            "error": {
                "code": self.code,
                "message": message or self.english(),
                "params": {k: str(v) for k, v in self.params.items()},
            }
        }


class ConfigError(NodeError):
    """A setting is unknown, mistyped or out of range."""

    code = "config_error"


class KeyFileError(NodeError):
    """A key file is missing, unreadable or too widely readable."""

    code = "key_file_error"


class StoreError(NodeError):
    """The database file is missing, corrupt, foreign or too new."""

    code = "store_error"
    http_status = 500


class StoreBusy(StoreError):
    """Another writer held the database longer than a writer waits for it."""

    code = "busy"
    http_status = 503


class ValidationError(NodeError):
    """A field value is malformed or out of range.

    ``all`` holds every field's error when a form or body was checked whole
    (``validate.Fields``), this one first, so a form can show each one next to its
    field at once; a single check leaves it ``[self]``.
    """

    code = "validation_error"

    def __init__(self, msgid: str, **params):
        super().__init__(msgid, **params)
        self.all: list[ValidationError] = [self]

    @classmethod
    def of(cls, errors: list[ValidationError]) -> ValidationError:
        first = errors[0]
        first.all = list(errors)
        return first


class NotFound(NodeError):
    """The case, warning, user or node does not exist here."""

    code = "not_found"
    http_status = 404


class NotAllowed(NodeError):
    """This user, role, tier or node may not do this."""

    code = "not_allowed"
    http_status = 403


class IllegalTransition(NodeError):
    """The action is not allowed in the record's current state."""

    code = "illegal_transition"
    http_status = 409


class AlreadyExists(NodeError):
    """Something with that name or number already exists."""

    code = "already_exists"
    http_status = 409


class EventRefused(NodeError):
    """An incoming event failed verification and was not stored."""

    code = "event_refused"
    http_status = 422
