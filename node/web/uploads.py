"""The register form's photos and its receiving leader (issue 21): files taken with the
phone's camera are kept by their content before the case exists, and attached to it once it
does."""

from __future__ import annotations

from node import attachments, store
from node.web import ops


def kept_from(n, request) -> list[dict]:
    """Files sent with the register form, kept by their content before the case exists, and
    those a first round of the form kept already (hidden ``kept`` fields: sha256:kind), so
    that a second round, about numbers in the text, need not send them again."""
    kind = request.form.get("file_kind") or "other"
    kept = [{**attachments.store(n, f.read()), "kind": kind, "name": f.filename}
            for f in request.files.getlist("files") if f and f.filename]
    for value in request.form.getlist("kept"):
        sha, _, kind = value.partition(":")
        if attachments.has_blob(n, sha):
            data = attachments.blob_path(n, sha).read_bytes()
            kept.append({**attachments.check(n, data), "kind": kind or "other", "name": None})
    return kept


def leaders(n) -> list[dict]:
    """The leaders of this office, for the receiving leader of a 领导接待 petition."""
    return [dict(zip(("username", "display_name"), r, strict=True)) for r in n.db.conn.execute(
        "SELECT username, display_name FROM users WHERE role = 'leader' AND disabled = 0 "
        "ORDER BY username")]


def attach_kept(n, user: dict, case_id: str, kept: list[dict]) -> None:
    if not kept:
        return
    with store.write(n.db):
        for info in kept:
            attachments.attach_stored(n, ops.actor(user), case_id, {
                k: info[k] for k in ("sha256", "size", "type")}, info["kind"], info["name"])
