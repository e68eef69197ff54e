"""Sync by carrying files (a USB stick): the same bytes and checks as HTTP.

``export_bundles`` writes what a neighbour is owed as bundle files;
``import_dir`` applies every bundle in a directory that is addressed to
this node, takes in every acknowledgement addressed to it, and writes its
own acknowledgements back into the directory to be carried home. Files for
other nodes are left alone, so one stick can serve several villages.

File names are plain ASCII, safe on any stick's file system:
``siji-<sender>-to-<recipient>-<first>-<last>.<bytes>.bundle`` and
``siji-<sender>-to-<recipient>.ack`` (the latest acknowledgement of a link).
A bundle's name says how long it is, so a copy that stopped halfway (a stick
pulled out, a file manager interrupted) is refused as truncated, not as a
signature that does not verify; what export leaves half written is named
``.part`` and import reports it and leaves it alone. (Names without the
length, from before, are still read.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from node import envelope, log, repeats, store
from node.envelope import EnvelopeError
from node.errors import N_, NodeError
from node.sync import inbox, outbox

BATCH = 200
_BUNDLE = re.compile(r"siji-([A-Za-z0-9_-]+)-to-([A-Za-z0-9_-]+)-(\d+)-(\d+)(?:\.(\d+))?\.bundle")
_ACK = re.compile(r"siji-([A-Za-z0-9_-]+)-to-([A-Za-z0-9_-]+)\.ack")
_PART = ".part"  # what _write leaves of a file it did not finish


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all: a stick pulled out mid-write leaves no half file."""
    tmp = path.with_name(path.name + _PART)
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
        if peer == node.settings["PARENT_ID"]:
            repeats.relay(node)  # the children's digests go up on the stick too
        outbox.queue(node, peer)
    for stale in out_dir.glob(f"siji-{node.id}-to-{peer}-*{_PART}"):  # a stick pulled before
        stale.unlink()
    written, acked = [], outbox.link(node.db, peer)["acked"]
    recipient_key = outbox.encryption_key(node, peer)
    while True:
        first, evs = outbox.pending(node, peer, BATCH, after=acked)
        if not evs:
            break
        last = first + len(evs) - 1
        data = envelope.seal(evs, sender=node.id, recipient=peer, first=first,
                             sender_key=node.signer, recipient_key=recipient_key)
        path = out_dir / f"siji-{node.id}-to-{peer}-{first:010d}-{last:010d}.{len(data)}.bundle"
        _write(path, data)
        written.append(path)
        acked = last
    return written


def import_dir(node, in_dir: Path) -> dict:
    """Apply bundles and acknowledgements addressed to this node; write acks back."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise NodeError(N_("%(dir)s is not a directory"), dir=in_dir)
    report = {"bundles": 0, "events": 0, "acks": 0, "refused": [], "acks_written": [],
              "incomplete": []}
    latest_ack: dict[str, bytes] = {}
    bundles, names = [], sorted(p.name for p in in_dir.iterdir())
    for name in names:
        m = _BUNDLE.fullmatch(name.removesuffix(_PART))
        if m and m.group(2) == node.id:
            if name.endswith(_PART):
                report["incomplete"].append(name)
            else:
                bundles.append((int(m.group(3)), in_dir / name, m.group(1), m.group(5)))
    for _, path, sender, size in sorted(bundles):
        try:
            data = path.read_bytes()
            if size is not None and len(data) != int(size):
                report["refused"].append((path.name, _cut_short(len(data), int(size))))
                continue
            ack, counts = inbox.apply_bundle(node, data, skip=True)
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


def _cut_short(n: int, size: int) -> str:
    """Why a bundle file whose length is not the one its name says is left alone (not
    recorded as a refusal: it says nothing of its sender, only of the copy)."""
    error = NodeError(N_("only %(n)s of its %(size)s bytes are here: the copy was "
                         "interrupted; copy it again") if n < size else
                      N_("%(n)s bytes, not the %(size)s its name says; copy it again"),
                      n=n, size=size)
    error.code = "truncated" if n < size else "damaged"
    return f"{error.code}: {error.english()}"


def _reason(node, error: Exception) -> str:
    if isinstance(error, NodeError):
        with store.write(node.db):
            log.record_refusal(node, None, None, error)
        return f"{error.code}: {error.english()}"
    return f"unreadable: {error}"
