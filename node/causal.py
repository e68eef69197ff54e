"""The causal order of a subject's events: each names in ``prev`` the heads its writer saw.

Pure: functions of events only. Every node computes the same order for the
same set of events, whatever order they arrived in (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from node.events import Event


def heads(evs: Iterable[Event]) -> tuple[str, ...]:
    """Ids of the events no other event of the subject builds on."""
    evs = list(evs)
    referenced = {p for e in evs for p in e.prev}
    return tuple(sorted(e.id for e in evs if e.id not in referenced))


def causal_order(evs: Iterable[Event]) -> list[tuple[Event, frozenset[str]]]:
    """Events in one deterministic order that respects ``prev``, each with its ancestors.

    Order is by causal depth, then origin, then seq: the same for every
    arrival order and every node. Events whose ``prev`` is missing are left
    out (they cannot be here: they wait in the inbox).
    """
    by_id = {e.id: e for e in evs}
    depth: dict[str, int] = {}
    ancestors: dict[str, frozenset[str]] = {}

    def visit(eid: str) -> int:
        if eid in depth:
            return depth[eid]
        e = by_id[eid]
        depth[eid] = -1  # guards against a cycle, which signatures make impossible anyway
        missing = [p for p in e.prev if p not in by_id]
        if missing:
            depth[eid] = -2
            return -2
        d, anc = 0, set()
        for p in e.prev:
            pd = visit(p)
            if pd < 0:
                depth[eid] = -2
                return -2
            d = max(d, pd + 1)
            anc |= ancestors[p] | {p}
        depth[eid], ancestors[eid] = d, frozenset(anc)
        return d

    for eid in by_id:
        visit(eid)
    ordered = sorted((e for e in by_id.values() if depth[e.id] >= 0),
                     key=lambda e: (depth[e.id], e.origin, e.seq))
    return [(e, ancestors[e.id]) for e in ordered]
