"""附件: photos and scans of a case (JPEG, PNG, PDF), stored by their content.

A file's bytes are checked (their type by their first bytes, whatever a browser claims;
their size against ATTACHMENT_MAX_BYTES) and kept once under ``attachments/`` in the node
directory, named by their SHA-256 (mode 0600: they hold personal data); the case gets a
signed ``case.attached`` event naming the hash, size, type and kind. The event travels
with the case like any other; the bytes follow it where the case goes
(node/sync/blobs.py), resumably, in pieces. An ID photo (kind ``id_photo``) carries the
tier its bytes may reach (``up_to``: NEVER_ABOVE's limit for the ID number, raised to the
attaching node's own tier, as a petitioner's fields are); above it the event arrives but
the bytes never do, and the receiver's own NEVER_ABOVE is applied too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from node import cases
from node.errors import N_, NodeError, NotFound, ValidationError
from node.settings import Setting, at_least_one, declare
from node.tiers import TIER_RANK

DIR = "attachments"
PARTIAL = ".partial"
TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png",
         b"%PDF-": "application/pdf"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
KINDS = cases.ATTACHMENT_KINDS

declare(Setting("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, "The largest attachment (a photo or "
                "scan: JPEG, PNG or PDF) accepted, in bytes; a larger one is refused with the "
                "limit.", int, at_least_one("ATTACHMENT_MAX_BYTES")))


class TooLarge(ValidationError):
    """An attachment larger than ATTACHMENT_MAX_BYTES."""

    code = "too_large"
    http_status = 413


def sniff(data: bytes) -> str | None:
    """The type of a file by its first bytes: JPEG, PNG or PDF, else None."""
    return next((t for magic, t in TYPES.items() if data.startswith(magic)), None)


def _root(node) -> Path:
    return node.dir / DIR


def blob_path(node, sha: str) -> Path:
    return _root(node) / sha[:2] / sha


def partial_path(node, sha: str) -> Path:
    return _root(node) / PARTIAL / sha


def has_blob(node, sha: str) -> bool:
    return blob_path(node, sha).is_file()


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check(node, data: bytes) -> dict:
    """``{sha256, size, type}`` of acceptable bytes; raises a one-line refusal otherwise."""
    limit = node.settings["ATTACHMENT_MAX_BYTES"]
    if len(data) > limit:
        raise TooLarge(N_("%(field)s: the file is %(size)s bytes, more than the limit of "
                          "%(max)s (ATTACHMENT_MAX_BYTES)"), field="file", size=len(data),
                       max=limit)
    if not data:
        raise ValidationError(N_("%(field)s: the file is empty"), field="file")
    kind = sniff(data)
    if kind is None:
        raise ValidationError(N_("%(field)s: only JPEG, PNG and PDF files can be attached"),
                              field="file")
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "type": kind}


def store(node, data: bytes) -> dict:
    """Keep acceptable bytes (once: the same bytes are one file); returns ``check``'s dict."""
    info = check(node, data)
    path = blob_path(node, info["sha256"])
    if not path.exists():
        _write_private(path, data)
    return info


def limit_for(node, kind: str) -> str | None:
    """The highest tier an attachment's bytes may reach: an ID photo's is NEVER_ABOVE's
    for the ID number (raised to this node's own tier: it keeps what it attaches)."""
    if kind != "id_photo":
        return None
    rule = node.settings["NEVER_ABOVE"].get("id_number")
    if rule is None:
        return None
    return max(rule, node.tier, key=TIER_RANK.__getitem__)


def attach(node, actor, case_id: str, data: bytes, kind: str = "other",
           name: str | None = None):
    """Keep the bytes and attach them to the case (the caller owns the transaction)."""
    info = store(node, data)
    return attach_stored(node, actor, case_id, info, kind, name)


def attach_stored(node, actor, case_id: str, info: dict, kind: str = "other",
                  name: str | None = None):
    """Attach bytes already kept here (``info``: sha256, size, type)."""
    if not has_blob(node, info["sha256"]):
        raise NotFound(N_("no attachment %(id)s"), id=info["sha256"][:12])
    kind = cases.code_of(KINDS, "kind", kind or "other")
    fields = {**info, "kind": kind}
    if name:
        fields["name"] = os.path.basename(str(name))[:100]
    up_to = limit_for(node, kind)
    if up_to:
        fields["up_to"] = up_to
    return cases.act(node, actor, case_id, "attach", fields)


def tier_allows(node, row: dict, tier: str) -> bool:
    """Whether a node of ``tier`` may have the bytes: the attachment's own limit, and for
    an ID photo this node's NEVER_ABOVE for the ID number, whichever is lower."""
    limits = [row["up_to"]] if row.get("up_to") else []
    if row["kind"] == "id_photo" and node.settings["NEVER_ABOVE"].get("id_number"):
        limits.append(node.settings["NEVER_ABOVE"]["id_number"])
    return all(TIER_RANK[tier] <= TIER_RANK[limit] for limit in limits if limit in TIER_RANK)


def allowed_here(node, row: dict) -> bool:
    return tier_allows(node, row, node.tier) or row["origin"] == node.id


COLUMNS = ("case_id", "sha256", "size", "type", "kind", "name", "up_to", "origin", "added_on",
           "event")


def listing(node, case_id: str) -> list[dict]:
    rows = node.db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM attachments WHERE case_id = ? "
                                "ORDER BY added_on, event", (case_id,))
    out = []
    for r in rows:
        row = dict(zip(COLUMNS, r, strict=True))
        row["allowed"] = allowed_here(node, row)
        row["present"] = row["allowed"] and has_blob(node, row["sha256"])
        out.append(row)
    return out


def rows_of(node, sha: str) -> list[dict]:
    rows = node.db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM attachments WHERE sha256 = ?",
                                (sha,))
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def read(node, case_id: str, sha: str) -> tuple[bytes, dict]:
    """The bytes of an attachment of the case, and its row; NotFound if absent here."""
    row = next((r for r in listing(node, case_id) if r["sha256"] == sha), None)
    if row is None or not row["present"]:
        raise NotFound(N_("no attachment %(id)s"), id=sha[:12])
    return blob_path(node, sha).read_bytes(), row


# -- receiving the bytes in pieces (node/sync/blobs.py) ---------------------------------

class ChunkRefused(NodeError):
    """A piece of an attachment that cannot be taken here (wrong place, wrong hash)."""

    code = "chunk_refused"
    http_status = 409


def expected_size(node, sha: str) -> int | None:
    """The size of the bytes of ``sha`` if this node may have them, else None."""
    rows = [r for r in rows_of(node, sha) if allowed_here(node, r)]
    return rows[0]["size"] if rows else None


def have(node, sha: str) -> int:
    """How many bytes of ``sha`` are here: all of them, or a partial download's."""
    path = blob_path(node, sha)
    if path.is_file():
        return path.stat().st_size
    partial = partial_path(node, sha)
    return partial.stat().st_size if partial.is_file() else 0


def receive_chunk(node, sha: str, offset: int, data: bytes) -> int:
    """Add a piece at ``offset`` to a partial file; when whole and its hash right, it takes
    its place. Returns how many bytes are here now."""
    size = expected_size(node, sha)
    if size is None:
        raise ChunkRefused(N_("no attachment %(id)s is expected here"), id=sha[:12])
    if has_blob(node, sha):
        return size
    partial = partial_path(node, sha)
    now = partial.stat().st_size if partial.is_file() else 0
    if offset != now or now + len(data) > size:
        raise ChunkRefused(N_("attachment %(id)s: a piece at %(offset)s, but %(have)s bytes "
                              "are here"), id=sha[:12], offset=offset, have=now)
    partial.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as f:
        f.write(data)
    now += len(data)
    if now == size:
        whole = partial.read_bytes()
        partial.unlink()
        if hashlib.sha256(whole).hexdigest() != sha:
            raise ChunkRefused(N_("attachment %(id)s: the bytes do not match their hash; they "
                                  "are fetched again"), id=sha[:12])
        _write_private(blob_path(node, sha), whole)
    return now
