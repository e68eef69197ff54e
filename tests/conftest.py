"""Shared fixtures: real nodes on real SQLite files under tmp_path, an injected clock.

``make_node(tier, node_id, parent=...)`` makes an initialised node with those
of a liaison (liu), a handler (wang) and a leader (zhao) that its tier has
(tiers.TIER_ROLES: a village has no handler), and when given a parent, pins
each into the other's trust table as enrollment will.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import pytest

from node import core, log, netkeys, store, trust, users
from node.clock import ManualClock
from node.tiers import TIER_ROLES

PASSWORD = "correct-horse-1"
STAFF = (("liu", "刘信息员", "liaison"), ("wang", "王办理", "handler"),
         ("zhao", "赵领导", "leader"))


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Hash each test password once: scrypt is slow on purpose, and nodes here are many."""
    original = users.generate_password_hash
    users.generate_password_hash = functools.cache(original)
    yield
    users.generate_password_hash = original


Clock = ManualClock  # tests move time by hand: it never comes from sleep


@pytest.fixture
def clock():
    # Monday 2026-11-23 10:00 in Beijing
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


def pin(a: core.Node, b: core.Node) -> None:
    """Record node b in a's trust table (what enrollment does)."""
    with store.write(a.db):
        trust.add_node(a.db, node_id=b.id, name=b.settings["NODE_NAME"], tier=b.tier,
                       parent_id=b.settings["PARENT_ID"] or None,
                       sign_pub=b.signer.public_key().public_bytes_raw(),
                       enc_pub=b.enc_key.public_key().public_bytes_raw(),
                       added_at=a.now())


class NodeFactory:
    """Makes initialised nodes under one directory; usable at any fixture scope."""

    def __init__(self, base, clock):
        self.base, self.clock, self.made = base, clock, []

    def __call__(self, tier="village", node_id=None, parent=None, **extra) -> core.Node:
        node_id = node_id or f"{tier}{len(self.made) + 1}"
        node = core.init_node(
            self.base / node_id, tier=tier, node_id=node_id, name=f"{node_id} 名称",
            parent_url="" if tier == "city" else "http://127.0.0.1:9",
            parent_id=parent.id if parent else "", admin_password=PASSWORD, clock=self.clock,
            extra=extra or None)
        with store.write(node.db):
            for username, display, role in STAFF:
                if role in TIER_ROLES[tier]:
                    users.add_user(node, username, display, role, PASSWORD)
        if parent is not None:
            pin(node, parent)
            pin(parent, node)
        self.made.append(node)
        return node

    def close(self):
        for node in self.made:
            node.close()


def build_chain(make, **settings: dict) -> tuple[core.Node, ...]:
    """city shi <- town zhen <- area pian <- village cun, all trusting all; ``settings``
    by tier (``village={"NEVER_ABOVE": ...}``) go into that node's config."""
    city = make("city", "shi", **settings.get("city", {}))
    town = make("town", "zhen", parent=city, **settings.get("town", {}))
    area = make("area", "pian", parent=town, **settings.get("area", {}))
    village = make("village", "cun", parent=area, **settings.get("village", {}))
    nodes = (city, town, area, village)
    for a in nodes:
        for b in nodes:
            if a is not b:
                pin(a, b)
    return nodes


def share_network_key(source: core.Node, *nodes: core.Node) -> None:
    """Give nodes the network key of ``source`` (the city), as enrollment hands it down.
    (Not done by default: a node without the key writes no digests, so the other tests'
    event numbers stay as they were.)"""
    for node in nodes:
        netkeys.store_keys(node, netkeys.held(source))


@pytest.fixture
def make_node(tmp_path, clock):
    factory = NodeFactory(tmp_path, clock)
    yield factory
    factory.close()


@pytest.fixture
def village(make_node):
    return make_node("village", "dongshan")


@pytest.fixture
def town(make_node):
    return make_node("town", "qingshui")


@pytest.fixture
def chain(make_node):
    """city <- town <- area <- village, each pinned to its neighbours and all trusting all."""
    return build_chain(make_node)


LIAISON = log.Actor("liu", "liaison")
HANDLER = log.Actor("wang", "handler")
LEADER = log.Actor("zhao", "leader")


def case_fields(**overrides) -> dict:
    fields = {"category": "dibao", "summary": "低保金三个月未发放",
              "petitioners": [{"name": "张三", "id_number": "11010519491231002X",
                               "phone": "13800138000"}]}
    fields.update(overrides)
    return fields


def deliver(src: core.Node, dst: core.Node) -> list[str]:
    """In-process transport: send every event src has and dst lacks, in src's order."""
    outcomes = []
    for row in src.db.conn.execute("SELECT origin, seq FROM events ORDER BY lsn").fetchall():
        event = log.get_event(src.db, f"{row[0]}:{row[1]}")
        with store.write(dst.db):
            outcomes.append(log.receive(dst, event))
    return outcomes
