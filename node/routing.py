"""The routing policy as pure functions: who may have which event, given the tree.

``node.sync.policy`` reads a subject's history from the store and asks
these functions; here there is no I/O, so every rule can be tested on plain
values. The rules themselves, and why they are shaped as they are, are in
the docstring of ``node.sync.policy`` and in docs/routing.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from node.tiers import TIER_RANK  # noqa: F401 - part of this module's API

LEVEL_ORDER = ("general", "major", "serious")  # the risk levels of warnings, lowest first
HOLDING = ("case.escalated", "case.referred")  # events that hand a case to body["to"]


@dataclass
class Tree:
    """Parent links of the nodes this node knows (its trust table)."""

    parents: dict[str, str | None]
    tiers: dict[str, str]

    def ancestry(self, node: str) -> list[str]:
        """``node`` and its known ancestors, nearest first."""
        chain, seen = [node], {node}
        while (parent := self.parents.get(chain[-1])) and parent not in seen:
            chain.append(parent)
            seen.add(parent)
        return chain

    def path(self, a: str, b: str) -> set[str]:
        """The nodes on the tree path between ``a`` and ``b``; empty if it is not known."""
        up_a, up_b = self.ancestry(a), self.ancestry(b)
        meet = next((n for n in up_a if n in set(up_b)), None)
        if meet is None:
            return set()
        return set(up_a[:up_a.index(meet) + 1]) | set(up_b[:up_b.index(meet) + 1])

    def first_above(self, node: str, tier: str) -> str | None:
        return next((n for n in self.ancestry(node) if self.tiers.get(n) == tier), None)


def case_circle(history: Iterable[tuple[str, str, str | None, str | None]],
                tree: Tree | None = None, collective: bool = False) -> set[str]:
    """The nodes that may have a case: (origin, type, accused unit, to) of its events, in
    log order -> the registrant, every node it was handed to and every node that handed
    it on, less the unit it accuses (Art. 30). With the ``tree``: a report against the
    registrant itself goes to its parent at once (the fold makes that the holder), and a
    ``collective`` petition (集体访) to every level above the registrant the same day
    (Art. 25), as far as the unit it accuses.

    The hand-overs that happened, each one level (the fold allows no other): on a tree
    that never changed, the paths joining the registrant and every holder. Built from
    the hops and not from today's tree, so that a village moved to another area does
    not take its old cases to the new one.
    """
    history = list(history)
    origin, accused = next(((o, a) for o, t, a, _ in history if t == "case.registered"),
                           (None, None))
    if origin is None:
        return set()
    circle = {origin}
    if tree is not None and accused == origin and tree.parents.get(origin):
        circle.add(tree.parents[origin])
    if tree is not None and collective:
        for node in tree.ancestry(origin)[1:]:
            if node == accused:
                break
            circle.add(node)
    for sender, type_, _, to in history:
        if type_ in HOLDING and isinstance(to, str):
            circle |= {sender, to}
    # Art. 30: a report against an official never reaches the official's own unit, not
    # even as a relay (the fold refuses to hand such a case to it, too)
    return circle - {accused}


def warning_circle(history: Iterable[tuple[str, str]], tree: Tree, risk_level: str | None,
                   to_city_from: str) -> set[str]:
    """The nodes that may have a warning: (origin, type) of its events, in log order; its
    risk level as folded here (None if not folded); the level from which warnings go on to
    the city (WARNING_TO_CITY).

    Up from the origin to the first town, or to the city when the risk is at or above
    ``to_city_from`` or someone escalated it; and to the parent of every node that
    raised the alarm for not acknowledging it in time.
    """
    history = list(history)
    origin = next((o for o, t in history if t == "warning.raised"), None)
    if origin is None:
        return set()
    to_city = any(t == "warning.escalated" for _, t in history) or (
        risk_level in LEVEL_ORDER
        and LEVEL_ORDER.index(risk_level) >= LEVEL_ORDER.index(to_city_from))
    top = tree.first_above(origin, "city" if to_city else "town")
    if top is None:  # the origin is itself above a town, or the tree is not known
        top = tree.ancestry(origin)[-1] if to_city else origin
    circle = tree.path(origin, top) or {origin}
    for alarming, type_ in history:  # an alarm goes to the next level up from its node
        parent = tree.parents.get(alarming) if type_ == "warning.alarmed" else None
        if parent:
            circle |= tree.path(origin, parent)
    return circle


def round_circle(scheduler: str, scope: Iterable[str], tree: Tree) -> set[str]:
    """The nodes that may have a screening round (排查): the scheduler, every unit it names
    and the nodes on the tree paths between them (each unit's report goes up that way)."""
    circle = {scheduler}
    for unit in scope:
        circle |= tree.path(scheduler, unit)
    return circle


def entry_circle(origin: str, tree: Tree) -> set[str]:
    """The nodes that may have an entry of a unit's register (登记造册): the path from the
    unit up to the first town above it (the town keeps its villages' registers)."""
    top = tree.first_above(origin, "town") or origin
    return tree.path(origin, top) or {origin}
