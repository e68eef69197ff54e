"""Counting honestly, after the run: what had to reach each node, what did, what arrived
twice, how fast the high-risk warnings reached the city, and each tier's load.

What must reach whom is worked out here from the whole network's events, each taken
from its origin, and the routing rules as pure functions of the tree
(node.routing.case_circle, warning_circle): the simulation knows the real tree, so it
does not need any node's view of it. Then every node's events table is compared with
that:

* *lost*: an event that must be at a node and is not (or still waits in its inbox);
* *duplicated*: an event stored twice at a node, under its number or its digest, or a
  case or warning registered twice in the network;
* *unexpected*: an event at a node the rules do not send it to.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

from node import repeats, routing
from node.clock import parse

CHECKED = ("case", "warning", "figures", "repeat")  # kinds checked event by event
EVERYWHERE = ()  # kinds every node must hold, checked by count (membership is not flooded
# down in the simulation: engine.bootstrap)


def _tree(net) -> routing.Tree:
    return routing.Tree({p.id: p.parent for p in net.places},
                        {p.id: p.tier for p in net.places})


def expected(net) -> tuple[dict, dict, Counter]:
    """(event id -> the nodes that must hold it, kind -> events everywhere, kinds left
    unchecked), from every origin's own events."""
    tree = _tree(net)
    histories: dict[str, list] = defaultdict(list)
    kinds: dict[str, str] = {}
    everywhere: Counter = Counter()
    unchecked: Counter = Counter()
    collective, risk, to_city = {}, {}, {}
    for place in net.places:
        node = net.nodes[place.id]
        to_city[place.id] = node.settings["WARNING_TO_CITY"]
        for origin, seq, type_, subject, to, accused in node.db.conn.execute(
                "SELECT origin, seq, type, subject, json_extract(body, '$.to'), CASE WHEN "
                "type = 'case.registered' THEN json_extract(body, '$.accused_unit') END "
                "FROM events WHERE origin = ? ORDER BY seq", (node.id,)):
            kind = type_.split(".", 1)[0]
            if kind in EVERYWHERE:
                everywhere[kind] += 1
            elif kind in CHECKED and type_ != "repeat.linked":
                histories[subject].append((origin, seq, type_, accused, to))
                kinds[subject] = kind
            else:
                unchecked[kind] += 1
        collective.update(node.db.conn.execute(
            "SELECT id, collective FROM cases WHERE origin_node = ?", (node.id,)))
        risk.update(node.db.conn.execute(
            "SELECT id, risk_level FROM warnings WHERE origin_node = ?", (node.id,)))
    must: dict[tuple[str, int], set[str]] = {}
    for subject, history in histories.items():
        history.sort(key=lambda h: (h[2] != "case.registered" and h[2] != "warning.raised",))
        kind = kinds[subject]
        if kind == "case":
            circle = routing.case_circle([(o, t, a, to) for o, _, t, a, to in history], tree,
                                         bool(collective.get(subject)))
        elif kind == "warning":
            origin = next((o for o, _, t, _, _ in history if t == "warning.raised"), None)
            circle = routing.warning_circle([(o, t) for o, _, t, _, _ in history], tree,
                                            risk.get(subject), to_city.get(origin, "major"))
        elif kind == "repeat":  # a case's keyed digests, or a relay of them: to the parent
            circle = set(_digests_up(net, tree, history[0][0])[:1])  # (digests_reached)
        else:  # figures: the origin's parent, no further
            circle = set()
        for origin, seq, *_ in history:
            holders = set(circle) | {origin}
            if kind == "figures" and tree.parents.get(origin):
                holders.add(tree.parents[origin])
            must[(origin, seq)] = holders
    return must, dict(everywhere), unchecked


def _digests_up(net, tree: routing.Tree, origin: str) -> list[str]:
    """The nodes above ``origin`` its digests must reach, nearest first: up to the highest
    tier each one's REPEAT_UP_TO lets them through."""
    out, at = [], origin
    while (parent := tree.parents.get(at)) and repeats.reaches(net.nodes[at],
                                                               tree.tiers[parent]):
        out.append(parent)
        at = parent
    return out


def digests_reached(net) -> dict:
    """Whether every case's keyed digests reached each node above its registrant that they
    must (node/repeats.py: the registrant's ``seen`` to its parent, relays above it), by
    the rows the nodes hold: {cases, missing, examples}."""
    tree, missing, cases, examples = _tree(net), 0, 0, []
    for place in net.places:
        up = _digests_up(net, tree, place.id)
        mine = [r[0] for r in net.nodes[place.id].db.conn.execute(
            "SELECT json_extract(body, '$.case') FROM events WHERE origin = ? AND type = "
            "'repeat.seen'", (place.id,))]
        cases += len(mine)
        for holder in up:
            held = {r[0] for r in net.nodes[holder].db.conn.execute(
                "SELECT DISTINCT case_id FROM person_digests WHERE origin = ?", (place.id,))}
            lacking = [c for c in mine if c not in held]
            missing += len(lacking)
            examples += [f"{c} at {holder}" for c in lacking[:2]]
    return {"cases": cases, "missing": missing, "examples": examples[:5]}


def deliveries(net, must: dict, everywhere: dict) -> dict:
    """Compare every node's events with what must be there."""
    by_node: dict[str, set] = defaultdict(set)
    for event, holders in must.items():
        for holder in holders:
            by_node[holder].add(event)
    lost = duplicated = unexpected = waiting = delivered = refusals = 0
    lost_examples = []
    checked_kinds = tuple(f"{k}.%" for k in CHECKED)
    for place in net.places:
        node = net.nodes[place.id]
        db = node.db.conn
        have = set(db.execute(
            "SELECT origin, seq FROM events WHERE type != 'repeat.linked' AND (" + " OR ".join(
                "type LIKE ?" for _ in checked_kinds) + ")", checked_kinds).fetchall())
        want = by_node.get(place.id, set())
        missing = want - have
        lost += len(missing)
        lost_examples += [f"{o}:{s} at {place.id}" for o, s in sorted(missing)[:3]]
        unexpected += len(have - want)
        for kind, n in everywhere.items():
            held = db.execute("SELECT count(*) FROM events WHERE type LIKE ?",
                              (f"{kind}.%",)).fetchone()[0]
            lost += max(0, n - held)
        duplicated += db.execute("SELECT count(*) - count(DISTINCT origin || ':' || seq) "
                                 "FROM events").fetchone()[0]
        duplicated += db.execute("SELECT count(*) - count(DISTINCT digest) FROM events"
                                 ).fetchone()[0]
        waiting += db.execute("SELECT count(*) FROM inbox").fetchone()[0]
        delivered += db.execute("SELECT count(*) FROM events WHERE source IS NOT NULL "
                                "AND received_at >= ?", (net.started,)).fetchone()[0]
        refusals += db.execute("SELECT count(*) FROM refusals WHERE seq IS NOT NULL"
                               ).fetchone()[0]
    # the same matter registered twice anywhere in the network (a command run twice)
    registered = Counter()
    for place in net.places:
        registered.update(r[0] for r in net.nodes[place.id].db.conn.execute(
            "SELECT subject FROM events WHERE origin = ? AND type IN ('case.registered', "
            "'warning.raised')", (place.id,)))
    duplicated += sum(n - 1 for n in registered.values() if n > 1)
    return {"delivered": delivered, "lost": lost + waiting, "waiting": waiting,
            "duplicated": duplicated, "unexpected": unexpected, "refused_events": refusals,
            "lost_examples": lost_examples[:5]}


def same_day(net, high_risk: dict) -> dict:
    """Of the high-risk warnings (较大, 重大), the share the city stored the day they were
    raised (local time, by 23:59: Art. 25); ``high_risk``: id -> (origin, day raised,
    whether the origin and every node above it had a network link that day), so that
    those raised with none are also counted apart."""
    city = net.nodes["shi"]
    tz = ZoneInfo(city.settings["TIMEZONE"])
    total = same = reachable = reachable_same = 0
    late = []
    for wid, (_origin, day, linked) in sorted(high_risk.items()):
        row = city.db.conn.execute("SELECT received_at FROM events WHERE subject = ? AND "
                                   "type = 'warning.raised'", (wid,)).fetchone()
        on_time = row is not None and (parse(row[0]).astimezone(tz).date().isoformat() == day)
        total += 1
        same += on_time
        if linked:
            reachable += 1
            reachable_same += on_time
            if not on_time:
                late.append(wid)
    return {"high_risk": total, "same_day": same,
            "share": same / total if total else 1.0,
            "high_risk_linked": reachable, "same_day_linked": reachable_same,
            "share_linked": reachable_same / reachable if reachable else 1.0,
            "late_linked": late[:5]}


def load(net, meter, days: int) -> dict:
    """Each tier's work per simulated day: requests its nodes served (as parents), bytes
    they served, events they stored from neighbours; mean and most per node."""
    out = {}
    for tier in ("city", "town", "area", "village"):
        nodes = [p.id for p in net.places if p.tier == tier]
        stored = {n: net.nodes[n].db.conn.execute(
            "SELECT count(*) FROM events WHERE source IS NOT NULL AND received_at >= ?",
            (net.started,)).fetchone()[0] for n in nodes}
        written = {n: net.nodes[n].db.conn.execute(
            "SELECT count(*) FROM events WHERE origin = ? AND received_at >= ?",
            (n, net.started)).fetchone()[0] for n in nodes}
        served = {n: meter.served.get(n, 0) for n in nodes}
        moved = {n: meter.served_bytes.get(n, 0) for n in nodes}
        seconds = {n: meter.served_seconds.get(n, 0.0) for n in nodes}

        def per_day(values: dict, digits: int = 1) -> dict:
            vals = list(values.values()) or [0]
            return {"mean": round(sum(vals) / len(vals) / days, digits or None),
                    "max": round(max(vals) / days, digits or None)}
        kinds = Counter()
        for n in nodes:
            kinds.update(dict(net.nodes[n].db.conn.execute(
                "SELECT type, count(*) FROM events WHERE source IS NOT NULL AND "
                "received_at >= ? GROUP BY type", (net.started,)).fetchall()))
        out[tier] = {"nodes": len(nodes), "events_received": per_day(stored),
                     "received_by_type": {t: round(c / len(nodes) / days, 1)
                                          for t, c in kinds.most_common()},
                     "events_written": per_day(written), "requests_served": per_day(served),
                     "bytes_served": per_day(moved, 0), "seconds_serving": per_day(seconds, 3)}
    return out

