"""The network key (网络密钥) of the repeat digests: made by the city, sealed to each node.

The city makes version 1 when it is made (``siji init --tier city``) and a new version
when its admin rotates it (``siji netkey rotate``). A node gets every version its parent
holds when it enrolls, each sealed to its own X25519 key inside the enrollment answer,
and keeps them in ``network.json`` in its key directory (mode 0600), never in the
database: a copy of the database alone cannot test a guess against a digest. A rotated
version reaches the nodes already enrolled as ``netkey.issued`` events, which the city
signs and every node relays down: each holds one copy of the key sealed to every node
the city knows (in parts of at most PART nodes, so that no event grows too large), and a
node opens its own when it needs the keys. A revoked node gets no copy. Old versions are
kept: a digest made under one is compared under it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from node import digests, log, registry, trust
from node.authority import NoAuthority, Row
from node.errors import N_, NodeError, NotAllowed, ValidationError

KEY_FILE = "network.json"
ISSUED = "netkey.issued"
PART = 200  # sealed copies in one event: about 130 bytes each, well inside an event


def _path(node_or_dir) -> Path:
    if isinstance(node_or_dir, Path):
        return node_or_dir / KEY_FILE
    return node_or_dir.dir / node_or_dir.settings["KEY_DIR"] / KEY_FILE


def stored(node_or_dir) -> dict[int, bytes]:
    """The versions in this node's key file (none if it has none)."""
    try:
        data = json.loads(_path(node_or_dir).read_text("utf-8"))
        return {int(v): trust.b64decode(k) for v, k in data["versions"].items()}
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise NodeError(N_("the network key file %(path)s is damaged: restore it from the "
                           "backup of the key directory"), path=_path(node_or_dir)) from None


def store_keys(node_or_dir, keys: dict[int, bytes]) -> None:
    """Add versions to the key file (created with mode 0600; a version never changes)."""
    path = _path(node_or_dir)
    merged = {**{v: k for v, k in keys.items() if len(k) == digests.KEY_BYTES},
              **stored(node_or_dir)}
    text = json.dumps({"versions": {str(v): trust.b64(k) for v, k in sorted(merged.items())}})
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def make_first(key_dir: Path) -> None:
    """The city's version 1, made with its other keys."""
    store_keys(Path(key_dir), {1: secrets.token_bytes(digests.KEY_BYTES)})


def held(node) -> dict[int, bytes]:
    """Every version this node holds: its key file, and its copies in ``netkey.issued``
    events that arrived since it enrolled."""
    keys = stored(node)
    for body in (json.loads(r[0]) for r in node.db.conn.execute(
            # (by the subject index: NK-<version>-<part>; every event's type would be read
            # otherwise, on every registration)
            "SELECT body FROM events WHERE subject >= 'NK-' AND subject < 'NK.' AND type = ?",
            (ISSUED,))):
        version = body["version"]
        sealed = body["sealed"].get(node.id)
        if sealed is None or version in keys:
            continue
        try:
            keys[version] = digests.unseal(sealed, version, node.id, node.enc_key)
        except ValueError:
            continue  # not openable with this key: sealed to a key this node no longer has
    return keys


def current(node) -> tuple[int, bytes] | None:
    keys = held(node)
    if not keys:
        return None
    version = max(keys)
    return version, keys[version]


def sealed_for(node, node_id: str, enc_pub: bytes) -> dict[str, str]:
    """Every version this node holds, sealed to a child it enrolls (the enrollment answer)."""
    return {str(v): digests.seal(k, v, node_id, enc_pub) for v, k in held(node).items()}


def install(node, sealed) -> int:
    """Keep the versions of an enrollment answer; returns how many opened."""
    if not isinstance(sealed, dict):
        return 0
    keys = {}
    for version, copy in sealed.items():
        try:
            keys[int(version)] = digests.unseal(str(copy), int(version), node.id, node.enc_key)
        except ValueError:
            continue
    if keys:
        store_keys(node, keys)
    return len(keys)


def rotate(node, actor) -> int:
    """The city makes the next version and seals it to every active node it knows; returns
    the version. The caller owns the transaction."""
    if node.tier != "city":
        raise NotAllowed(N_("only the city rotates the network key"))
    keys = held(node)
    version = max(keys, default=0) + 1
    key = secrets.token_bytes(digests.KEY_BYTES)
    rows = node.db.conn.execute(
        "SELECT node_id, enc_pub FROM nodes WHERE status = 'active' AND held IS NULL "
        "AND enc_pub IS NOT NULL AND node_id != ? ORDER BY node_id", (node.id,)).fetchall()
    copies = {r[0]: digests.seal(key, version, r[0], bytes(r[1])) for r in rows}
    names = sorted(copies)
    for part, start in enumerate(range(0, max(len(names), 1), PART), start=1):
        chunk = {n: copies[n] for n in names[start:start + PART]}
        log.append(node, actor, ISSUED, f"NK-{version}-{part}",
                   {"version": version, "sealed": chunk})
    store_keys(node, {version: key})
    return version


# -- the events -------------------------------------------------------------------

_SUBJECT = re.compile(r"NK-([0-9]{1,6})-([0-9]{1,4})")
_B64 = re.compile(r"[A-Za-z0-9+/]{20,400}={0,2}")


def validate_body(event_type: str, body: dict) -> None:
    if event_type != ISSUED:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type, field="type")
    sealed = body.get("sealed")
    if set(body) != {"version", "sealed"} or not isinstance(body["version"], int) or isinstance(
            body["version"], bool) or not 1 <= body["version"] <= 999999 or not isinstance(
            sealed, dict) or len(sealed) > PART or not all(
            isinstance(k, str) and isinstance(v, str) and _B64.fullmatch(v)
            for k, v in sealed.items()):
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")


@dataclass(frozen=True)
class FoldContext:
    tiers: dict

    @classmethod
    def of(cls, node) -> FoldContext:
        return cls(trust.tree(node.db).tiers)


@dataclass
class Folded:
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


def fold(ordered, ctx: FoldContext) -> Folded:
    folded = Folded()
    for ev, _ancestors in ordered:
        m = _SUBJECT.fullmatch(ev.subject)
        if ctx.tiers.get(ev.origin) != "city":
            folded.rejected[ev.id] = NoAuthority(N_("only the city issues the network key"))
        elif ev.role != "admin":
            folded.rejected[ev.id] = NotAllowed(N_("the role %(role)s may not %(action)s"),
                                                role=ev.role, action=ev.type)
        elif m is None or int(m.group(1)) != ev.body["version"]:
            folded.rejected[ev.id] = ValidationError(N_("%(field)s: not in normal form"),
                                                     field="subject")
        else:
            folded.applied.append(ev.id)
    return folded


def write_many(db, items) -> None:
    """Nothing is derived: ``held`` reads the copies from the log."""


def clear(db) -> None:
    """Nothing is derived."""


def prune(db) -> None:
    """Nothing is derived."""


registry.register(registry.Domain(
    kind="netkey", name="network keys", validate_body=validate_body, context=FoldContext.of,
    fold=fold, write_many=write_many, clear=clear, prune=prune,
    authority=(Row(ISSUED, "city", ("admin",)),)))
