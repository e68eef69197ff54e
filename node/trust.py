"""Keys, certificates and the nodes this node trusts.

Each node has an Ed25519 signing key and an X25519 encryption key, each a
PEM file with mode 0600 in its key directory. The city also holds the root
key that every certificate chains to. A certificate is canonical JSON
signed with the ``siji/cert/v1`` context (docs/protocol.md).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
import threading
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlite_utils import Database

from node.canonical import canonical
from node.errors import N_, KeyFileError, NotFound
from node.routing import Tree

CERT_CONTEXT = b"siji/cert/v1\x00"
SIGN_KEY, ENC_KEY, ROOT_KEY = "sign.key", "enc.key", "root.key"
NODE_CERT, ROOT_CERT = "node.cert", "root.cert"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text)


def raw_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def write_private_key(path: Path, key) -> None:
    """Write a private key as PEM, created with mode 0600 (never widened, never replaced)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def read_private_key(path: Path, kind):
    """Read a key file, refusing one that is missing, loose or of the wrong kind."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise KeyFileError(N_("key file %(path)s is missing: restore it from backup "
                              "(a node cannot sign without it)"), path=path) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(N_("key file %(path)s has mode %(mode)s, readable by others: "
                              "run chmod 600 %(path)s"), path=path, mode=oct(mode & 0o777))
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError, OSError):
        raise KeyFileError(N_("key file %(path)s is not a readable private key"),
                           path=path) from None
    if not isinstance(key, kind):
        raise KeyFileError(N_("key file %(path)s holds the wrong kind of key"), path=path)
    return key


def make_keys(key_dir: Path, root: bool = False) -> dict:
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = {"sign": Ed25519PrivateKey.generate(), "enc": X25519PrivateKey.generate()}
    write_private_key(key_dir / SIGN_KEY, keys["sign"])
    write_private_key(key_dir / ENC_KEY, keys["enc"])
    if root:
        keys["root"] = Ed25519PrivateKey.generate()
        write_private_key(key_dir / ROOT_KEY, keys["root"])
    return keys


def load_signing_key(key_dir: Path) -> Ed25519PrivateKey:
    return read_private_key(key_dir / SIGN_KEY, Ed25519PrivateKey)


def load_encryption_key(key_dir: Path) -> X25519PrivateKey:
    return read_private_key(key_dir / ENC_KEY, X25519PrivateKey)


def fingerprint(public: bytes) -> str:
    """A short fingerprint people can read to each other over the phone."""
    digest = hashlib.sha256(public).hexdigest()[:20].upper()
    return "-".join(digest[i:i + 4] for i in range(0, 20, 4))


def issue_certificate(issuer_key: Ed25519PrivateKey, issuer: str, *, node: str, name: str,
                      tier: str, parent: str | None, sign_pub: bytes, enc_pub: bytes | None,
                      not_before: date, not_after: date) -> dict:
    cert = {"v": 1, "node": node, "name": name, "tier": tier, "parent": parent,
            "sign_pub": b64(sign_pub), "enc_pub": b64(enc_pub) if enc_pub else None,
            "not_before": not_before.isoformat(), "not_after": not_after.isoformat(),
            "issuer": issuer}
    cert["sig"] = b64(issuer_key.sign(CERT_CONTEXT + canonical(cert)))
    return cert


def certificate_valid(cert: dict, issuer_public: bytes, today: date) -> bool:
    unsigned = {k: v for k, v in cert.items() if k != "sig"}
    try:
        Ed25519PublicKey.from_public_bytes(issuer_public).verify(
            base64.b64decode(cert["sig"]), CERT_CONTEXT + canonical(unsigned))
    except Exception:  # noqa: BLE001 - any malformed part means "not valid"
        return False
    return cert["not_before"] <= today.isoformat() <= cert["not_after"]


def add_node(db: Database, *, node_id: str, name: str, tier: str, parent_id: str | None,
             sign_pub: bytes, enc_pub: bytes | None, added_at: str,
             cert: str | None = None) -> None:
    """Record a node this node trusts (itself, its parent, a child). Caller owns the transaction."""
    db.conn.execute(
        "INSERT INTO nodes (node_id, name, tier, parent_id, sign_pub, enc_pub, cert, added_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET name = excluded.name,"
        " tier = excluded.tier, parent_id = excluded.parent_id, sign_pub = excluded.sign_pub, "
        "enc_pub = excluded.enc_pub, cert = excluded.cert",
        (node_id, name, tier, parent_id, sign_pub, enc_pub, cert, added_at))


def get_node(db: Database, node_id: str) -> dict:
    row = db.conn.execute(
        "SELECT node_id, name, tier, parent_id, sign_pub, enc_pub, status FROM nodes "
        "WHERE node_id = ?", (node_id,)).fetchone()
    if row is None:
        raise NotFound(N_("unknown node %(node)s"), node=node_id)
    keys = ("node_id", "name", "tier", "parent_id", "sign_pub", "enc_pub", "status")
    return dict(zip(keys, row, strict=True))


def set_flag(db: Database, node_id: str, kind: str, detail: str | None) -> None:
    """Raise (``detail``) or clear (None) a flag an admin must look at; its time is when it
    was first raised. The caller owns the transaction."""
    if detail is None:
        db.conn.execute("DELETE FROM node_flags WHERE node_id = ? AND kind = ?", (node_id, kind))
        return
    db.conn.execute(
        "INSERT INTO node_flags (node_id, kind, detail, since) VALUES (?, ?, ?, "
        "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) ON CONFLICT(node_id, kind) DO UPDATE SET "
        "detail = excluded.detail", (node_id, kind, detail))


def names(db: Database) -> dict[str, str]:
    """node id -> the unit's name, of every node this one knows (kept: ``kept``)."""
    return kept(db, "names", lambda d: dict(d.conn.execute(
        "SELECT node_id, name FROM nodes").fetchall()))


def flags(db: Database) -> list[dict]:
    rows = db.conn.execute("SELECT node_id, kind, detail, since FROM node_flags "
                           "ORDER BY since DESC, node_id")
    return [dict(zip(("node_id", "kind", "detail", "since"), r, strict=True)) for r in rows]


VERSION = "trust_version"  # counters: a new random value at every change (migration 0025)
_KEPT: dict[tuple[str, int], tuple[int, object]] = {}  # (what, connection) -> (version, it)
_KEEP_AT_MOST = 4096  # entries (a node's process needs a few; the simulator a few a node)
_KEEPING = threading.Lock()  # (the server's threads: one changes _KEPT at a time)


def _version(db: Database) -> int:
    row = db.conn.execute("SELECT value FROM counters WHERE name = ?", (VERSION,)).fetchone()
    return row[0] if row else 0


def kept(db: Database, what: str, make):
    """``make(db)``, kept in memory while the trust table is unchanged: the nodes, and the
    joins the former parents come from (a trigger gives the counter VERSION a new random
    value at each change, so two states never share one). What every bundle's fold reads
    of the trust table costs a look-up, not a read of every node of the network (issue
    19: 4 ms a bundle at the city of 451 nodes). One value of each kind is kept for each
    connection, the newest; a value is kept only if the table did not change while it was
    made (another connection's commit in between). Callers must not change what it gives.
    """
    version = _version(db)
    if not version:
        return make(db)
    key = (what, id(db.conn))
    found = _KEPT.get(key)
    if found is not None and found[0] == version:
        return found[1]
    value = make(db)
    if _version(db) == version:
        with _KEEPING:
            while len(_KEPT) >= _KEEP_AT_MOST:  # (the oldest goes)
                del _KEPT[next(iter(_KEPT))]
            _KEPT.pop(key, None)
            _KEPT[key] = (version, value)
    return value


def tree(db: Database) -> Tree:
    """The tree of the nodes this node knows (routing.Tree of its trust table)."""
    return kept(db, "tree", _read_tree)


def _read_tree(db: Database) -> Tree:
    rows = db.conn.execute("SELECT node_id, parent_id, tier FROM nodes").fetchall()
    return Tree({r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows})


def children(db: Database, node_id: str) -> list[dict]:
    rows = db.conn.execute("SELECT node_id, name, tier FROM nodes WHERE parent_id = ? "
                           "AND status = 'active' ORDER BY node_id", (node_id,)).fetchall()
    return [{"node_id": r[0], "name": r[1], "tier": r[2]} for r in rows]


SESSION_KEY = "session.key"


def session_key(key_dir: Path) -> str:
    """The secret that signs this node's web sessions: a 0600 file, made on first use.

    Kept apart from siji.toml so the config can be shown or copied without it;
    deleting the file (and restarting) ends every login.
    """
    path = Path(key_dir) / SESSION_KEY
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(32))
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(N_("key file %(path)s has mode %(mode)s, readable by others: "
                              "run chmod 600 %(path)s"), path=path, mode=oct(mode & 0o777))
    value = path.read_text("ascii").strip()
    if len(value) < 32:
        raise KeyFileError(N_("key file %(path)s is not a readable private key"), path=path)
    return value
