"""One node, assembled: ``open_node`` is the one way a node directory is opened,
``init_node`` the one way it is made.

This module sits above every domain and imports each of them, so that their
event types, settings and labels are registered before any node is opened
(the log and the settings know no domain by name; docs/architecture.md).
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

# every module that declares settings or registers a domain, so that a node opened here
# knows them all: each declares and registers when it is imported
from node import (  # noqa: F401
    cases,
    deadlines,
    disclosure,
    enroll,
    figures,
    membership,
    metrics,
    notices,
    oversight,
    pacing,
    settings,
    store,
    trust,
    users,
    warnings,
)
from node.canonical import canonical
from node.clock import Clock, iso, system_clock  # noqa: F401 - part of this module's API
from node.context import Node
from node.errors import N_, AlreadyExists, NodeError


def open_node(node_dir: Path | str, overrides: dict | None = None,
              clock: Clock = system_clock) -> Node:
    node_dir = Path(node_dir)
    values = settings.load(node_dir, overrides)
    key_dir = node_dir / values["KEY_DIR"]
    signer = trust.load_signing_key(key_dir)
    trust.load_encryption_key(key_dir)  # refuse start-up early if it is missing or loose
    db = store.open_db(node_dir / values["DATABASE"])
    node = Node(node_dir, values, db, signer, clock)
    node.calendar  # noqa: B018 - a bad holiday file stops start-up, not the first deadline
    recount_deadlines(node)
    return node


def recount_deadlines(node: Node) -> None:
    """Count the stored deadlines again if the holiday calendar changed since they were
    (cases.recount): a year's arrangement added needs no manual rebuild."""
    if cases.calendar_changed(node):
        with store.write(node.db):
            cases.recount(node)


def init_node(node_dir: Path | str, *, tier: str, node_id: str, name: str,
              parent_url: str = "", parent_id: str = "", admin: str = "admin",
              admin_password: str, clock: Clock = system_clock,
              extra: dict | None = None) -> Node:
    """Make a node: config, keys, database, its own trust entry and the first admin.

    Refuses a directory that already holds a node. On any failure, whatever
    this call created is removed again, so a retry starts clean.
    """
    node_dir = Path(node_dir)
    config_path = node_dir / settings.CONFIG_NAME
    if config_path.exists() or (node_dir / "siji.db").exists() or (node_dir / "keys").exists():
        raise AlreadyExists(N_("%(dir)s already holds a siji node; choose another directory "
                               "(nothing was changed)"), dir=node_dir)
    values = {s.name: s.default for s in settings.SETTINGS}
    values.update(NODE_ID=node_id, NODE_NAME=name, TIER=tier, PARENT_URL=parent_url,
                  PARENT_ID=parent_id, **(extra or {}))
    settings.validate(dict(values))
    if tier != "city" and not parent_url:
        raise NodeError(N_("a %(tier)s node needs --parent URL (only the city has none)"),
                        tier=tier)
    users.check_password(admin_password)
    created_dir = not node_dir.exists()
    node_dir.mkdir(parents=True, exist_ok=True)
    made = [config_path, node_dir / values["DATABASE"], node_dir / values["KEY_DIR"]]
    try:
        keys = trust.make_keys(node_dir / values["KEY_DIR"], root=(tier == "city"))
        trust.session_key(node_dir / values["KEY_DIR"])
        fd_path = config_path
        with open(fd_path, "x", encoding="utf-8") as f:
            f.write(settings.render_config(values))
        config_path.chmod(0o600)
        db = store.create(node_dir / values["DATABASE"])
        node = Node(node_dir, settings.validate(values), db, keys["sign"], clock)
        with store.write(db):
            sign_pub, enc_pub = trust.raw_public(keys["sign"]), trust.raw_public(keys["enc"])
            cert = None
            if tier == "city":
                cert = _make_root(node, keys, sign_pub, enc_pub)
            trust.add_node(db, node_id=node_id, name=name, tier=tier,
                           parent_id=parent_id or None, sign_pub=sign_pub, enc_pub=enc_pub,
                           added_at=node.now(), cert=cert)
            users.add_user(node, admin, "管理员", "admin", admin_password)
            cases.recount(node)  # remember the calendar it counts with
        return node
    except BaseException:
        for path in made:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
                for suffix in ("-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
        if created_dir:
            shutil.rmtree(node_dir, ignore_errors=True)
        raise


def _make_root(node: Node, keys: dict, sign_pub: bytes, enc_pub: bytes) -> str:
    """The city's root of trust: a self-signed root certificate and the city's own."""
    today = node.today()
    key_dir = node.dir / node.settings["KEY_DIR"]
    root_pub = trust.raw_public(keys["root"])
    root_cert = trust.issue_certificate(
        keys["root"], "root", node="root", name=node.settings["NODE_NAME"] + " 根证书",
        tier="city", parent=None, sign_pub=root_pub, enc_pub=None,
        not_before=today, not_after=today + timedelta(days=3650))
    city_cert = trust.issue_certificate(
        keys["root"], "root", node=node.id, name=node.settings["NODE_NAME"], tier="city",
        parent=None, sign_pub=sign_pub, enc_pub=enc_pub,
        not_before=today, not_after=today + timedelta(days=1825))
    (key_dir / trust.ROOT_CERT).write_bytes(canonical(root_cert))
    (key_dir / trust.NODE_CERT).write_bytes(canonical(city_cert))
    return canonical(city_cert).decode("utf-8")
