"""Attachments' bytes between a child and its parent, in pieces, resumable.

An attachment's signed event travels in the bundles like any event; its bytes, up to
ATTACHMENT_MAX_BYTES, go beside them after each session (``exchange``), in pieces of
CHUNK bytes, so that a dropped link costs at most one piece: the receiver keeps what it
has (``attachments.have``) and the next session goes on from there.

- **Up** (push): the bytes of every attachment of a case the parent has been sent
  (``link_subjects``), that the parent's tier may have (an ID photo's ``up_to``), and
  that the parent does not have whole yet (``blobs_sent`` remembers those it does).
- **Down** (pull): the bytes of every attachment here that this node may have and lacks.

Every request is signed by the node making it (Ed25519 over the method, the hash, the
offset, a time and the piece's SHA-256), and the answering node serves only a neighbour,
only bytes whose case the routing policy gives that neighbour, within the tier limit;
it takes only bytes an event here names, and keeps them only if their hash is right.
The bytes travel as they are: run the link over HTTPS (docs/deploy.md).
"""

from __future__ import annotations

import base64
import hashlib
import logging

import requests
from cryptography.exceptions import InvalidSignature
from flask import Blueprint, current_app, jsonify, request

from node import attachments, store
from node.clock import parse
from node.errors import N_, NodeError
from node.sync import inbox, outbox, policy

logger = logging.getLogger("siji.blobs")
CHUNK = 256 * 1024
CONTEXT = b"siji/blob/v1\x00"
FRESH_SECONDS = 600
bp = Blueprint("blobs", __name__, url_prefix="/sync/blobs")


def _signed_text(method: str, sha: str, offset: int, at: str, body: bytes) -> bytes:
    return CONTEXT + f"{method} {sha} {offset} {at} {hashlib.sha256(body).hexdigest()}".encode()


def headers(node, method: str, sha: str, offset: int, body: bytes = b"") -> dict:
    at = node.now()
    sig = node.signer.sign(_signed_text(method, sha, offset, at, body))
    return {"X-Siji-Node": node.id, "X-Siji-At": at,
            "X-Siji-Sig": base64.b64encode(sig).decode("ascii")}


class Refused(NodeError):
    """A blob request that is not from a neighbour, not signed, or not allowed."""

    code = "blob_refused"
    http_status = 403


def _requester(node, method: str, sha: str, offset: int, body: bytes) -> str:
    """The neighbour that signed this request, or Refused."""
    who = request.headers.get("X-Siji-Node", "")
    at = request.headers.get("X-Siji-At", "")
    try:
        sig = base64.b64decode(request.headers.get("X-Siji-Sig", ""), validate=True)
        fresh = abs((parse(at) - node.clock()).total_seconds()) <= FRESH_SECONDS
    except (ValueError, TypeError):
        fresh, sig = False, b""
    key = inbox.neighbour_key(node)(who) if who else None
    if key is None or not fresh:
        raise Refused(N_("the request is not from a neighbour of this node"))
    try:
        key.verify(sig, _signed_text(method, sha, offset, at, body))
    except (InvalidSignature, ValueError):
        raise Refused(N_("the request is not from a neighbour of this node")) from None
    return who


def _node():
    return current_app.extensions["siji.node"]()


def _may_have(node, peer: str, sha: str) -> dict | None:
    """The attachment row of ``sha`` that ``peer`` may have from here, if any."""
    tier = node.db.conn.execute("SELECT tier FROM nodes WHERE node_id = ?", (peer,)).fetchone()
    router = policy.Router.for_peer(node, peer)
    for row in attachments.rows_of(node, sha):
        if tier and attachments.tier_allows(node, row, tier[0]) and router.allows(
                None, "case.attached", row["case_id"]):
            return row
    return None


def _offset() -> int:
    try:
        return max(0, int(request.args.get("offset", "0")))
    except ValueError:
        return 0


def _answer(error: NodeError):
    return jsonify(error.as_dict()), error.http_status


@bp.get("/<sha>")
def get_piece(sha):
    node, offset = _node(), _offset()
    try:
        peer = _requester(node, "GET", sha, offset, b"")
        if _may_have(node, peer, sha) is None or not attachments.has_blob(node, sha):
            return jsonify({"error": {"code": "not_found", "message": "not here",
                                      "params": {}}}), 404
    except NodeError as e:
        return _answer(e)
    with open(attachments.blob_path(node, sha), "rb") as f:
        f.seek(offset)
        piece = f.read(CHUNK)
    return piece, 200, {"Content-Type": "application/octet-stream"}


@bp.get("/<sha>/have")
def get_have(sha):
    node = _node()
    try:
        _requester(node, "HAVE", sha, 0, b"")
    except NodeError as e:
        return _answer(e)
    size = attachments.expected_size(node, sha)
    return jsonify({"have": attachments.have(node, sha) if size else 0, "size": size})


@bp.put("/<sha>")
def put_piece(sha):
    node, offset = _node(), _offset()
    if (request.content_length or 0) > CHUNK:
        return jsonify({"error": {"code": "too_large", "message": "piece too large",
                                  "params": {}}}), 413
    body = request.get_data(cache=False)
    try:
        _requester(node, "PUT", sha, offset, body)
        with store.write(node.db):  # one writer at a time for the partial file
            now = attachments.receive_chunk(node, sha, offset, body)
    except NodeError as e:
        return _answer(e)
    return jsonify({"have": now})


# -- the child's side ------------------------------------------------------------------

def _candidates_up(node, parent: str) -> list[dict]:
    tier = node.db.conn.execute("SELECT tier FROM nodes WHERE node_id = ?",
                                (parent,)).fetchone()
    if tier is None:
        return []
    rows = node.db.conn.execute(
        "SELECT DISTINCT a.sha256 FROM attachments a JOIN link_subjects l ON l.subject = "
        "a.case_id AND l.peer = ? WHERE a.sha256 NOT IN (SELECT sha256 FROM blobs_sent "
        "WHERE peer = ?)", (parent, parent)).fetchall()
    out = []
    for (sha,) in rows:
        mine = [r for r in attachments.rows_of(node, sha)
                if attachments.tier_allows(node, r, tier[0])]
        if mine and attachments.has_blob(node, sha):
            out.append(mine[0])
    return out


def _candidates_down(node) -> list[dict]:
    rows = node.db.conn.execute("SELECT DISTINCT sha256 FROM attachments").fetchall()
    out = []
    for (sha,) in rows:
        if not attachments.has_blob(node, sha):
            mine = [r for r in attachments.rows_of(node, sha) if attachments.allowed_here(node, r)]
            if mine:
                out.append(mine[0])
    return out


def push(node, parent: str, base: str, http: requests.Session, timeout=(5, 60)) -> int:
    """Send the parent the bytes it lacks; returns how many attachments it now has whole."""
    done = 0
    for row in _candidates_up(node, parent):
        sha = row["sha256"]
        answer = http.get(f"{base}/sync/blobs/{sha}/have", timeout=timeout,
                          headers=headers(node, "HAVE", sha, 0))
        if answer.status_code != 200:
            continue
        info = answer.json()
        if not info.get("size"):
            continue  # the parent does not (yet) expect it: the case's event goes first
        offset = int(info.get("have", 0))
        data = attachments.blob_path(node, sha).read_bytes()
        while offset < len(data):
            piece = data[offset:offset + CHUNK]
            reply = http.put(f"{base}/sync/blobs/{sha}?offset={offset}", data=piece,
                             timeout=timeout, headers={
                                 **headers(node, "PUT", sha, offset, piece),
                                 "Content-Type": "application/octet-stream"})
            if reply.status_code != 200:
                logger.warning("attachment %s…: the parent answered %s", sha[:12],
                               reply.status_code)
                break
            offset = int(reply.json()["have"])
        if offset >= len(data):
            with store.write(node.db):
                node.db.conn.execute("INSERT OR IGNORE INTO blobs_sent (peer, sha256, at) "
                                     "VALUES (?, ?, ?)", (parent, sha, node.now()))
            done += 1
    return done


def pull(node, base: str, http: requests.Session, timeout=(5, 60)) -> int:
    """Fetch from the parent the bytes this node may have and lacks; returns how many
    attachments became whole here."""
    done = 0
    for row in _candidates_down(node):
        sha = row["sha256"]
        while not attachments.has_blob(node, sha):
            offset = attachments.have(node, sha)
            reply = http.get(f"{base}/sync/blobs/{sha}?offset={offset}", timeout=timeout,
                             headers=headers(node, "GET", sha, offset))
            if reply.status_code != 200 or not reply.content:
                break  # the parent has it not (yet), or may not give it
            try:
                with store.write(node.db):
                    attachments.receive_chunk(node, sha, offset, reply.content)
            except attachments.ChunkRefused as e:
                logger.warning("attachment %s…: %s", sha[:12], e.english())
                break
        if attachments.has_blob(node, sha):
            done += 1
    return done


def exchange(node, parent: str, transport) -> dict:
    """After a session's events: the attachments' bytes both ways, over the transport's
    HTTP link if it has one (files carried by hand hold events only). A failure stops
    here and the next session resumes where this one stopped."""
    base = getattr(transport, "base", None)
    http = getattr(transport, "http", None)
    if not base or http is None:
        return {}
    try:
        return {"blobs_up": push(node, parent, base, http), "blobs_down": pull(node, base, http)}
    except (OSError, ValueError, KeyError) as e:  # a dropped link, a garbled answer
        with store.write(node.db):
            outbox.record_contact(node, parent, f"attachments: {type(e).__name__}")
        return {}

