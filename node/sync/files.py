"""Sync by carrying files (a USB stick): the same bytes and checks as HTTP.

``export_bundles`` writes what a neighbour is owed as bundle files;
``import_dir`` applies every bundle in a directory that is addressed to
this node, takes in every acknowledgement addressed to it, and writes its
own acknowledgements back into the directory to be carried home. Files for
other nodes are left alone, so one stick can serve several villages.

File names are plain ASCII, safe on any stick's file system:
``siji-<sender>-to-<recipient>-<first>-<last>.bundle`` and
``siji-<sender>-to-<recipient>.ack`` (the latest acknowledgement of a link).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from node import envelope, log, store
from node.envelope import EnvelopeError
from node.errors import N_, NodeError
from node.sync import inbox, outbox

BATCH = 200
_BUNDLE = re.compile(r"siji-([A-Za-z0-9_-]+)-to-([A-Za-z0-9_-]+)-(\d+)-(\d+)\.bundle")
_ACK = re.compile(r"siji-([A-Za-z0-9_-]+)-to-([A-Za-z0-9_-]+)\.ack")


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all: a stick pulled out mid-write leaves no half file."""
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _neighbours(node) -> list[str]:
    """The parent and the children, and the nodes two levels up and down: a report against
    a unit (Art. 30) goes past it to the unit above, carried by hand, never through it."""
    parent = node.settings["PARENT_ID"]
    rows = node.db.conn.execute(
        "SELECT node_id FROM nodes WHERE status = 'active' AND (node_id = ? OR parent_id = ? "
        "OR node_id = (SELECT parent_id FROM nodes WHERE node_id = ?) OR parent_id IN "
        "(SELECT node_id FROM nodes WHERE parent_id = ? AND node_id != ?))",
        (parent, node.id, parent, node.id, node.id)).fetchall()
    return [r[0] for r in rows if r[0] != node.id]


def export_bundles(node, peer: str, out_dir: Path) -> list[Path]:
    """Write every event ``peer`` is owed and has not acknowledged, as bundle files."""
    if peer not in _neighbours(node):
        raise NodeError(N_("%(node)s is not a neighbour of this node (its parent or a child, "
                           "or one level past them)"), node=peer)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with store.write(node.db):
        outbox.queue(node, peer)
    written, acked = [], outbox.link(node.db, peer)["acked"]
    recipient_key = outbox.encryption_key(node, peer)
    while True:
        first, evs = outbox.pending(node, peer, BATCH, after=acked)
        if not evs:
            break
        last = first + len(evs) - 1
        data = envelope.seal(evs, sender=node.id, recipient=peer, first=first,
                             sender_key=node.signer, recipient_key=recipient_key)
        path = out_dir / f"siji-{node.id}-to-{peer}-{first:010d}-{last:010d}.bundle"
        _write(path, data)
        written.append(path)
        acked = last
    return written


def import_dir(node, in_dir: Path) -> dict:
    """Apply bundles and acknowledgements addressed to this node; write acks back."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise NodeError(N_("%(dir)s is not a directory"), dir=in_dir)
    report = {"bundles": 0, "events": 0, "acks": 0, "refused": [], "acks_written": []}
    latest_ack: dict[str, bytes] = {}
    bundles = sorted((int(m.group(3)), p, m.group(1)) for p in in_dir.iterdir()
                     if (m := _BUNDLE.fullmatch(p.name)) and m.group(2) == node.id)
    for _, path, sender in bundles:
        try:
            ack, counts = inbox.apply_bundle(node, path.read_bytes(), skip=True)
        except (EnvelopeError, OSError) as e:
            report["refused"].append((path.name, _reason(node, e)))
            continue
        latest_ack[sender] = ack
        report["bundles"] += 1
        report["events"] += counts["applied"] + counts["waiting"]
    for path in sorted(in_dir.iterdir()):
        m = _ACK.fullmatch(path.name)
        if not m or m.group(2) != node.id:
            continue
        try:
            ack = envelope.open_ack(path.read_bytes(), me=node.id,
                                    sender_key=inbox.neighbour_key(node, skip=True))
            with store.write(node.db):
                outbox.ensure_link(node.db, ack.sender)
                outbox.acknowledge(node, ack.sender, ack.upto)
                outbox.record_contact(node, ack.sender)
        except (EnvelopeError, OSError) as e:
            report["refused"].append((path.name, _reason(node, e)))
            continue
        report["acks"] += 1
    for sender, ack in latest_ack.items():
        path = in_dir / f"siji-{node.id}-to-{sender}.ack"
        _write(path, ack)
        report["acks_written"].append(path.name)
    return report


def _reason(node, error: Exception) -> str:
    if isinstance(error, NodeError):
        with store.write(node.db):
            log.record_refusal(node, None, None, error)
        return f"{error.code}: {error.english()}"
    return f"unreadable: {error}"
