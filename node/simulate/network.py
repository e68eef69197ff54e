"""The simulated city: its places, its nodes made as `siji init` makes them, each enrolled
with its parent by a one-time code (without HTTP: the same request and answer), all on one
simulated clock.

Ids say where a node sits: the city ``shi``, town ``z03``, area ``z03p2``, village
``z03p2c07``. Every node is opened once and kept open for the whole run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from node import core, enroll, store, users
from node.clock import ManualClock
from node.demo import sample
from node.demo.network import Place, one_hash

PASSWORD = "siji-simulate"  # noqa: S105 - every account's, in a throwaway directory
# the usernames are the roles, as in the demo network
STAFF = {"city": ("handler", "leader"), "town": ("handler", "leader"),
         "area": ("handler", "leader"), "village": ("liaison",)}
TIERS = ("city", "town", "area", "village")
_NAME_CHARS = "青山东河西岭南岗北坡柳树杨家石门花园新民红旗前进白沙龙双桥大王李湾"


SimClock = ManualClock  # the one clock every node reads: the simulation moves it


@dataclass(frozen=True)
class Shape:
    """How many of each tier: towns, areas per town, villages per area."""

    towns: int = 10
    areas_per_town: int = 4
    villages_per_area: int = 10

    @property
    def size(self) -> int:
        areas = self.towns * self.areas_per_town
        return 1 + self.towns + areas + areas * self.villages_per_area


def places(shape: Shape) -> list[Place]:
    """Every place of the city, parents before children."""
    rng = random.Random("siji-simulate/names")

    def name(suffix: str) -> str:
        return "".join(rng.sample(_NAME_CHARS, 2)) + suffix

    out = [Place("shi", "青山市", "city")]
    towns = [Place(f"z{t + 1:02d}", name("镇"), "town", "shi") for t in range(shape.towns)]
    areas = [Place(f"{town.id}p{a + 1}", town.name[:2] + f"{a + 1}片", "area", town.id)
             for town in towns for a in range(shape.areas_per_town)]
    villages = [Place(f"{area.id}c{v + 1:02d}", name("村"), "village", area.id)
                for area in areas for v in range(shape.villages_per_area)]
    return out + towns + areas + villages


@dataclass
class Network:
    root: Path
    clock: SimClock
    places: list[Place]
    nodes: dict = field(default_factory=dict)  # id -> open core.Node
    started: str = ""  # when the work started (UTC stamp): what is counted is after it

    @cached_property
    def by_id(self) -> dict[str, Place]:
        return {p.id: p for p in self.places}

    def children(self, node_id: str) -> list[Place]:
        return [p for p in self.places if p.parent == node_id]

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
        self.nodes.clear()


def make_node(root: Path, place: Place, clock: SimClock,
              settings: dict | None = None) -> core.Node:
    """A node as `siji init` makes one, with its staff; ``settings`` go into its config."""
    node = core.init_node(
        root / place.id, tier=place.tier, node_id=place.id, name=place.name,
        parent_url="" if place.parent is None else f"sim://{place.parent}",
        admin_password=PASSWORD, clock=clock, extra=settings or None)
    rng = random.Random(f"siji-simulate/{place.id}/staff")
    with store.write(node.db):
        for role in STAFF[place.tier]:
            users.add_user(node, role, sample.person_name(rng), role, PASSWORD)
    return node


def enroll_under(parent: core.Node, child: core.Node) -> None:
    """Enroll ``child`` with ``parent``: a one-time code there, the request here, the
    answer installed here: what `siji enroll --code` does, with the bytes handed over
    in process."""
    with store.write(parent.db):
        code = enroll.new_code(parent, 1)
        answer = enroll.accept_request(parent, enroll.make_request(child, code))
    with store.write(child.db):
        enroll.install(child, answer, code)


def build(root: Path, shape: Shape, clock: SimClock, settings: dict | None = None) -> Network:
    """Make and enroll every node of the city under ``root`` (parents first, so each
    child gets its parent's chain and network key at enrollment); ``settings`` go into
    every node's config."""
    net = Network(root, clock, places(shape))
    with one_hash():
        for place in net.places:
            net.nodes[place.id] = make_node(root, place, clock, settings)
            if place.parent is not None:
                enroll_under(net.nodes[place.parent], net.nodes[place.id])
    return net
