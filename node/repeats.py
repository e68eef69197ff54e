"""Repeat petitions (重信重访) found across the network without moving personal data.

When a node registers a case, it writes a ``repeat.seen`` event beside it (subject
``D-<case number>``): the keyed digests (node/digests.py, under the newest network key
it holds) of each petitioner's ID number and phone, the day and the category, and
nothing else. The digests go up to every level above (REPEAT_UP_TO), whatever happens
to the case itself, so a town holds the digests of every case registered below it, and a
village those of its own. Registering, a node compares the new petitioners' digests
(under every key version it holds) with those it holds: a match with a case that is open
here or was registered within REPEAT_DAYS is told to the person registering at once
("该信访人在 X 有在办信访件 Y"), and the new case is not a first-time petition (初信初访).
An office above sees the pairs it holds (``pairs``) and may link them (``repeat.linked``,
which goes up and down to the registrant) or, when it holds both, merge them.

How the digests travel: a ``seen`` goes only to the registrant's parent as it is. Each node
relays what its children sent up (their own ``seen`` and their relays) to its own parent in
events of its own, ``repeat.relayed`` (subject ``DR-<node>-<n>``), written at the start of
each session (``relay``): so the city receives a few events a session from each town, not
one for every petition registered below it (issue 19). Each case in a relay carries the
time its registrant wrote its ``seen`` (``at``), and a node may relay only cases registered
below it at that time (authority.is_above, as the folds of cases and warnings judge a moved
node's history): the old area of a village that moved may still relay what it registered
before, and a relay is judged the same whenever the move becomes known; a case it may not
relay is left out of the fold, not the relay's other cases with it. A node relays only what
it took (its digest rows), so a case left out never goes further. A digest row names the
subject that brought it (``via``) and when its registrant wrote the ``seen`` (``at``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta

from node import (
    digests,
    events,
    log,
    membership,
    netkeys,
    paging,
    registry,
    store,
    trust,
    validate,
)
from node.authority import NoAuthority, Row, check_role, is_above
from node.errors import N_, ConfigError, IllegalTransition, NodeError, NotFound, ValidationError
from node.settings import Setting, at_least_one, declare
from node.tiers import TIER_RANK

SEEN, LINKED, RELAYED = "repeat.seen", "repeat.linked", "repeat.relayed"
_CASE = re.compile(r"[SZPC]-([A-Za-z0-9][A-Za-z0-9_-]{1,31})-\d{4}-\d{4,6}")
_RELAY = re.compile(r"DR-([A-Za-z0-9][A-Za-z0-9_-]{1,31})-[1-9]\d{0,11}")
RELAY_MARK = "repeat_relayed_lsn:"  # + the parent: its children's digests relayed up to here
RELAYS = "repeat_relays"           # counter: the relays this node wrote (their subjects' n)
RELAY_CASES = 200                  # cases in one relay at most
RELAY_BYTES = 40 * 1024            # and about this much JSON (events.MAX_EVENT_BYTES: 64 KB)
_DIGEST = re.compile(r"[A-Za-z0-9_-]{43}")
OPEN = ("registered", "accepted", "in_progress")

def _tier(value):
    if value not in TIER_RANK:
        raise ConfigError(N_("setting %(name)s: %(value)r is not one of %(allowed)s"),
                          name="REPEAT_UP_TO", value=value, allowed="village, area, town, city")
    return value


declare(Setting("REPEAT_UP_TO", "city", "The highest tier the keyed digests of petitioners "
                "(repeat.seen: a case's number, category, day and digests, nothing else) travel "
                "to from this node and through it, for repeats to be found there; lower it to "
                "keep even that closer (docs/office-work.md).", str, _tier))
declare(Setting("REPEAT_DAYS", 180, "A new registration whose petitioner (by the digest of the "
                "ID number or phone) has a case open here, or registered within this many "
                "days, is a repeat: the person registering is told, and it is not a first-"
                "time petition (docs/office-work.md).", int, at_least_one("REPEAT_DAYS")))


def registrant(case_id: str) -> str | None:
    """The node a case number names (C-dongshan-2026-0007 -> dongshan)."""
    m = _CASE.fullmatch(case_id or "")
    return m.group(1) if m else None


def subject_of(case_id: str) -> str:
    return f"D-{case_id}"


def relay_subject(node_id: str, n: int) -> str:
    return f"DR-{node_id}-{n}"


# -- writing ---------------------------------------------------------------------

def seen_body(node, case_id: str, people, category: str, registered_on: str) -> dict | None:
    """The body of a case's ``seen``: the digests of its petitioners under the newest key
    this node holds; None when there is no key or nothing to digest."""
    key = netkeys.current(node)
    if key is None:
        return None
    version, secret = key
    found = []
    for i, person in enumerate(people if isinstance(people, list) else ()):
        if isinstance(person, dict):
            for kind, d in sorted(digests.of_person(secret, person).items()):
                found.append({"d": d, "i": i, "k": kind, "v": version})
    if not found:
        return None
    return {"case": case_id, "category": category, "digests": found,
            "registered_on": registered_on}


def record_seen(node, case_id: str, people, category: str, registered_on: str):
    """Write the case's ``seen`` (the caller owns the transaction); None if nothing to say."""
    body = seen_body(node, case_id, people, category, registered_on)
    if body is None:
        return None
    return log.append(node, log.SYSTEM, SEEN, subject_of(case_id), body)


def reaches(node, tier: str | None) -> bool:
    """Whether this node's digests go up to a parent of ``tier`` (REPEAT_UP_TO)."""
    return tier in TIER_RANK and TIER_RANK[tier] <= TIER_RANK[node.settings["REPEAT_UP_TO"]]


def goes_up(node) -> bool:
    """Whether this node has a parent its digests go to."""
    return reaches(node, trust.tree(node.db).tiers.get(node.settings["PARENT_ID"]))


def relay_mark(node) -> str:
    """The counter of how far the children's digests went up to the parent, in relays: one
    for each parent, so that a node moved to another parent relays them all to it."""
    return RELAY_MARK + node.settings["PARENT_ID"]


def _relay_mark(node) -> int:
    """How far the children's digests are relayed to the parent; at first, where the
    parent's outbox scan stood (what it had scanned went up as it was, before relays
    existed; a new parent's link has scanned nothing), written down at once (``keep_mark``:
    a session keeps it even if its relay fails, before its push scans on)."""
    row = node.db.conn.execute("SELECT value FROM counters WHERE name = ?",
                               (relay_mark(node),)).fetchone()
    if row is not None:
        return row[0]
    row = node.db.conn.execute("SELECT scanned_lsn FROM links WHERE peer = ?",
                               (node.settings["PARENT_ID"],)).fetchone()
    store.set_counter(node.db, relay_mark(node), row[0] if row else 0)
    return row[0] if row else 0


def keep_mark(node) -> None:
    """Write the relay's mark down if it is not yet (the caller owns the transaction)."""
    if node.settings["PARENT_ID"]:
        _relay_mark(node)


def relay(node) -> list:
    """Relay to the parent, in events of this node's own (``repeat.relayed``), the digests
    its children sent up since its last relay: each case once, registered below this node;
    the caller owns the transaction. Returns the events (none when there is nothing new or
    the parent is above REPEAT_UP_TO)."""
    if not goes_up(node):
        return []
    mark, parent = _relay_mark(node), node.settings["PARENT_ID"]
    top = node.db.conn.execute("SELECT coalesce(max(lsn), 0) FROM events").fetchone()[0]
    if top <= mark:
        return []
    rows = node.db.conn.execute(  # what this node took of them: forged cases never go on
        "SELECT p.via, p.case_id, p.idx, p.kind, p.version, p.digest, p.registered_on, "
        "p.category, p.at FROM events e JOIN person_digests p ON p.via = e.subject WHERE "
        "e.lsn > ? AND e.lsn <= ? AND e.type IN (?, ?) AND e.source IS NOT NULL AND "
        "e.source != ? ORDER BY e.lsn, p.case_id, p.idx, p.kind, p.version",
        (mark, top, SEEN, RELAYED, parent)).fetchall()
    store.set_counter(node.db, relay_mark(node), top)  # (the next looks only past here)
    entries: dict[str, tuple[str, dict]] = {}  # case -> (the first subject it came in, it)
    for via, case_id, idx, kind, version, digest, registered_on, category, at in rows:
        came, entry = entries.setdefault(case_id, (via, {
            "case": case_id, "category": category, "digests": [],
            "registered_on": registered_on, "at": at}))
        if came == via:  # (a case that came twice, after a move, goes once)
            entry["digests"].append({"d": digest, "i": idx, "k": kind, "v": version})
    ctx = FoldContext.of(node) if rows else None
    entries = {c: e for c, (_, e) in entries.items()  # (what the parent's fold will ask)
               if _relayable(ctx, node.id, e)}
    made, chunk, size = [], [], 0
    for entry in entries.values():
        more = len(json.dumps(entry))
        if chunk and (len(chunk) == RELAY_CASES or size + more > RELAY_BYTES):
            made.append(_write_relay(node, chunk))
            chunk, size = [], 0
        chunk.append(entry)
        size += more
    if chunk:
        made.append(_write_relay(node, chunk))
    return made


def _relayable(ctx: FoldContext, writer: str, entry: dict) -> bool:
    """Whether ``writer`` may relay the case: its registrant was below it when it wrote the
    case's ``seen`` (entry ``at``)."""
    owner = registrant(entry["case"])
    return owner is not None and is_above(ctx.parents, ctx.former_parents, writer, owner,
                                          entry["at"])


def _write_relay(node, chunk: list[dict]):
    n = store.next_value(node.db, RELAYS)
    return log.append(node, log.SYSTEM, RELAYED, relay_subject(node.id, n), {"seen": chunk})


def link(node, actor, case_id: str, of_case: str, note: str | None = None):
    """Mark ``case_id`` as a repeat of ``of_case`` (an office's finding); the caller owns the
    transaction. Both must be known here by their digests or as cases."""
    for cid in (case_id, of_case):
        if registrant(cid) is None:
            raise ValidationError(N_("%(field)s: %(value)s is not a case number (like "
                                     "C-dongshan-2026-0007)"), field="case", value=cid)
    if case_id == of_case:
        raise ValidationError(N_("%(field)s: a case cannot be merged into itself"), field="of")
    if not node.db.conn.execute("SELECT 1 FROM person_digests WHERE case_id = ?",
                                (case_id,)).fetchone():
        raise NotFound(N_("no case %(id)s"), id=case_id)
    body = {"of": of_case}
    if note:
        body["note"] = validate.text("note", note)
    return log.append(node, actor, LINKED, subject_of(case_id), body)


# -- reading ---------------------------------------------------------------------

def _recent(node) -> str:
    return (node.today() - timedelta(days=node.settings["REPEAT_DAYS"])).isoformat()


def matches(node, people, exclude: str | None = None) -> list[dict]:
    """Cases held here (or known by their digests) whose petitioner is one of ``people``,
    open here or registered within REPEAT_DAYS, newest first: case, origin, state (None
    if only the digest is here), registered_on, how it matched (id | phone)."""
    keys = netkeys.held(node)
    wanted: dict[str, str] = {}
    for person in people if isinstance(people, list) else ():
        if isinstance(person, dict):
            for secret in keys.values():
                for kind, d in digests.of_person(secret, person).items():
                    wanted[d] = kind
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    rows = node.db.conn.execute(
        "SELECT p.case_id, p.origin, p.kind, p.registered_on, c.state FROM person_digests p "
        f"LEFT JOIN cases c ON c.id = p.case_id WHERE p.digest IN ({marks}) "
        "ORDER BY p.registered_on DESC, p.case_id DESC", list(wanted)).fetchall()
    recent, out, seen = _recent(node), [], set()
    for case_id, origin, kind, registered_on, state in rows:
        if case_id == exclude or case_id in seen:
            continue
        if (state in OPEN) or registered_on >= recent:
            seen.add(case_id)
            out.append({"case": case_id, "origin": origin, "state": state,
                        "registered_on": registered_on, "by": kind})
    return out


def links_of(node, case_id: str) -> list[dict]:
    rows = node.db.conn.execute("SELECT case_id, of_case, by_node, actor, at, note FROM "
                                "repeat_links WHERE case_id = ? OR of_case = ? ORDER BY at",
                                (case_id, case_id))
    keys = ("case", "of", "by", "actor", "at", "note")
    return [dict(zip(keys, r, strict=True)) for r in rows]


_PAIRS = (
    "SELECT a.case_id, a.origin, a.registered_on, b.case_id, b.origin, b.registered_on, "
    "min(a.kind) FROM person_digests a JOIN person_digests b ON a.digest = b.digest AND "
    "a.kind = b.kind AND a.version = b.version AND (a.registered_on, a.case_id) > "
    "(b.registered_on, b.case_id) WHERE a.registered_on >= ? AND NOT EXISTS (SELECT 1 FROM "
    "repeat_links l WHERE l.case_id = a.case_id AND l.of_case = b.case_id){more} "
    "GROUP BY a.registered_on, a.case_id, b.registered_on, b.case_id "
    "ORDER BY a.registered_on DESC, a.case_id DESC, b.registered_on DESC, b.case_id DESC "
    "LIMIT ?")


def pairs(node, units: set[str] | None = None, after: str | None = None,
          limit: int = paging.PAGE) -> tuple[list[dict], str | None]:
    """A page of the pairs of cases with a petitioner in common (a digest), known here, of
    which the newer is open or recent and not yet linked, one of them registered in
    ``units`` (None: any): ({newer, older, by, origin and day of each}, the next page's
    cursor or None). Newest first, found and paged in SQL (issue 19)."""
    limit = paging.limit(limit)
    more, params = "", [_recent(node)]
    if units is not None:
        more += (" AND (a.origin IN (SELECT value FROM json_each(?)) OR b.origin IN "
                 "(SELECT value FROM json_each(?)))")
        params += [json.dumps(sorted(units))] * 2
    if after:  # (by the newer case's day and number, then the older's)
        more += " AND (a.registered_on, a.case_id, b.registered_on, b.case_id) < (?, ?, ?, ?)"
        params += paging.after(after, 4)
    rows = node.db.conn.execute(_PAIRS.format(more=more), [*params, limit + 1]).fetchall()
    keys = ("newer", "newer_origin", "newer_on", "older", "older_origin", "older_on", "by")
    out = [dict(zip(keys, r, strict=True)) for r in rows[:limit]]
    last = out[-1] if len(rows) > limit else None
    return out, last and paging.cursor(last["newer_on"], last["newer"], last["older_on"],
                                       last["older"])


def linked_cases(node) -> set[str]:
    return {r[0] for r in node.db.conn.execute("SELECT case_id FROM repeat_links")}


# -- the events -------------------------------------------------------------------

def _clean_seen(body: dict) -> dict:
    if set(body) != {"case", "category", "digests", "registered_on"}:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")
    found = body["digests"]
    if not isinstance(found, list) or not 1 <= len(found) <= 400:
        raise ValidationError(N_("%(field)s: not in normal form"), field="digests")
    for d in found:
        if not (isinstance(d, dict) and set(d) == {"d", "i", "k", "v"} and isinstance(
                d["d"], str) and _DIGEST.fullmatch(d["d"]) and d["k"] in digests.KINDS
                and isinstance(d["i"], int) and not isinstance(d["i"], bool)
                and 0 <= d["i"] < 200 and isinstance(d["v"], int) and not isinstance(
                    d["v"], bool) and 1 <= d["v"] <= 999999):
            raise ValidationError(N_("%(field)s: not in normal form"), field="digests")
    if registrant(body["case"]) is None:
        raise ValidationError(N_("%(field)s: not in normal form"), field="case")
    return {"case": body["case"], "category": validate.line("category", body["category"],
                                                            max_len=40),
            "digests": found,
            "registered_on": validate.a_date("registered_on", body["registered_on"]).isoformat()}


def _clean_linked(body: dict) -> dict:
    if not set(body) <= {"of", "note"} or registrant(body.get("of")) is None:
        raise ValidationError(N_("%(field)s: not in normal form"), field="of")
    out = {"of": body["of"]}
    if "note" in body:
        out["note"] = validate.text("note", body["note"])
    return out


def _clean_relayed(body: dict) -> dict:
    found = body.get("seen") if set(body) == {"seen"} else None
    if not isinstance(found, list) or not 1 <= len(found) <= RELAY_CASES or not all(
            isinstance(entry, dict) for entry in found):
        raise ValidationError(N_("%(field)s: not in normal form"), field="seen")
    clean = []
    for entry in found:
        if not events.is_timestamp(entry.get("at")):
            raise ValidationError(N_("%(field)s: not in normal form"), field="at")
        clean.append({**_clean_seen({k: v for k, v in entry.items() if k != "at"}),
                      "at": entry["at"]})
    if len({entry["case"] for entry in clean}) != len(clean):
        raise ValidationError(N_("%(field)s: not in normal form"), field="seen")
    return {"seen": clean}


def validate_body(event_type: str, body: dict) -> None:
    validate.normal_form({SEEN: _clean_seen, LINKED: _clean_linked, RELAYED: _clean_relayed},
                         event_type, body)


@dataclass(frozen=True)
class FoldContext:
    tiers: dict
    parents: dict
    former_parents: dict

    @classmethod
    def of(cls, node) -> FoldContext:
        tree = trust.tree(node.db)
        return cls(tree.tiers, tree.parents, membership.former_parents(node.db))


@dataclass
class Folded:
    digests: list[dict] = field(default_factory=list)  # each with its case and origin
    links: list[dict] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


def _rows(body: dict, origin: str, at: str) -> list[dict]:
    """The digest rows of one ``seen`` body, registered at ``origin`` (its ``seen`` written
    at ``at``)."""
    return [{**d, "case": body["case"], "origin": origin, "registered_on": body["registered_on"],
             "category": body["category"], "at": at} for d in body["digests"]]


def _only_the_node(ev) -> None:
    if ev.role != log.SYSTEM.role or ev.actor != log.SYSTEM.username:
        raise NoAuthority(N_("only the node itself records %(action)s"), action=ev.type)


def fold(ordered, ctx: FoldContext) -> Folded:
    folded = Folded()
    steps = {SEEN: _fold_seen, RELAYED: _fold_relayed, LINKED: _fold_linked}
    for ev, _ancestors in ordered:
        try:
            steps[ev.type](folded, ev, ctx)
        except NodeError as err:
            folded.rejected[ev.id] = err
            continue
        folded.applied.append(ev.id)
    return folded


def _fold_seen(folded: Folded, ev, ctx: FoldContext) -> None:
    """The registrant's own digests of its case, recorded once."""
    case_id = ev.subject.removeprefix("D-")
    if folded.digests:
        raise IllegalTransition(N_("%(id)s is already recorded"), id=ev.subject)
    if ev.body["case"] != case_id or registrant(case_id) != ev.origin:
        raise NoAuthority(N_("case number %(id)s does not belong to node %(node)s"),
                          id=case_id, node=ev.origin)
    _only_the_node(ev)
    folded.digests = _rows(ev.body, ev.origin, ev.ts)


def _fold_linked(folded: Folded, ev, ctx: FoldContext) -> None:
    """A link: the case may be known here by a relay only, or not at all."""
    case_id = ev.subject.removeprefix("D-")
    owner = registrant(case_id)
    if owner is None:
        raise NotFound(N_("no case %(id)s"), id=case_id)
    check_role(ev.role, ctx.tiers.get(ev.origin), ("liaison", "handler", "leader"), "link")
    if ev.origin != owner and not is_above(ctx.parents, ctx.former_parents, ev.origin, owner,
                                           ev.ts):
        raise NoAuthority(N_("only the unit that registered case %(id)s, or one above it, may "
                             "link it"), id=case_id)
    folded.links.append({"of": ev.body["of"], "by": ev.origin, "actor": ev.actor, "at": ev.ts,
                         "note": ev.body.get("note")})


def _fold_relayed(folded: Folded, ev, ctx: FoldContext) -> None:
    """A relay: by the node its subject names, of cases registered below it (when their
    registrant wrote their ``seen``: ``_relayable``); any other case in it is left out, and
    a relay of none is refused."""
    m = _RELAY.fullmatch(ev.subject)
    if m is None or m.group(1) != ev.origin:
        raise NoAuthority(N_("%(id)s is not a relay of node %(node)s"), id=ev.subject,
                          node=ev.origin)
    if folded.digests:
        raise IllegalTransition(N_("%(id)s is already recorded"), id=ev.subject)
    _only_the_node(ev)
    taken = [entry for entry in ev.body["seen"] if _relayable(ctx, ev.origin, entry)]
    if not taken:  # (one case registered elsewhere is left out, not the others with it:
        raise NoAuthority(N_("case %(id)s was not registered below node %(node)s"),
                          id=ev.body["seen"][0]["case"], node=ev.origin)  # a move may be
    folded.digests = [row for entry in taken  # known here before the writer knew it)
                      for row in _rows(entry, registrant(entry["case"]), entry["at"])]


def write_many(db, items: list[tuple[str, Folded]]) -> None:
    for subject, folded in items:
        db.conn.execute("DELETE FROM person_digests WHERE via = ?", (subject,))
        db.conn.executemany(
            "INSERT OR IGNORE INTO person_digests (case_id, origin, idx, kind, version, digest, "
            "registered_on, category, at, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(d["case"], d["origin"], d["i"], d["k"], d["v"], d["d"], d["registered_on"],
              d["category"], d["at"], subject) for d in folded.digests])
        if subject.startswith("DR-"):
            continue  # (a relay links nothing)
        case_id = subject.removeprefix("D-")
        db.conn.execute("DELETE FROM repeat_links WHERE case_id = ?", (case_id,))
        db.conn.executemany(
            "INSERT OR REPLACE INTO repeat_links (case_id, of_case, by_node, actor, at, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(case_id, x["of"], x["by"], x["actor"], x["at"], x["note"]) for x in folded.links])


def clear(db) -> None:
    db.conn.execute("DELETE FROM person_digests")
    db.conn.execute("DELETE FROM repeat_links")


def prune(db) -> None:
    db.conn.execute("DELETE FROM person_digests WHERE NOT EXISTS (SELECT 1 FROM events WHERE "
                    "subject = person_digests.via AND type LIKE 'repeat.%')")
    db.conn.execute("DELETE FROM repeat_links WHERE NOT EXISTS (SELECT 1 FROM events WHERE "
                    "subject = 'D-' || repeat_links.case_id AND type LIKE 'repeat.%')")


registry.register(registry.Domain(
    kind="repeat", name="repeats", validate_body=validate_body, context=FoldContext.of,
    fold=fold, write_many=write_many, clear=clear, prune=prune, free_text=frozenset({"note"}),
    authority=(Row(SEEN, "registrant_number", ("admin",)),
               Row(LINKED, "registrant_or_above", ("liaison", "handler", "leader")),
               Row(RELAYED, "relayer", ("admin",)))))
