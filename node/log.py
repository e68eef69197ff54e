"""The event log: append local events, receive remote ones, project, rebuild.

Appending an event and updating the tables it feeds happen in the caller's
transaction. Each subject's rows (a case, a warning) are recomputed by
folding all of its events in one deterministic causal order, so the result
does not depend on arrival order, and ``rebuild`` is the same code path as
a normal apply. An event whose ``prev`` is not here yet waits in the inbox
and is applied when what it needs arrives.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from node import disclosure, events, evidence, store, verifier
from node.causal import causal_order, heads  # noqa: F401 - heads: part of this module's API
from node.clock import iso
from node.errors import N_, EventRefused, NodeError, NotFound
from node.events import Event
from node.registry import domain_of, domains, urgent_types
from node.settings import Setting, at_least_one, declare


@dataclass(frozen=True)
class Actor:
    """Who acts: a username and their role at this node."""

    username: str
    role: str


# the actor of what the node writes by itself (an enrollment, a receipt, an alarm, figures)
SYSTEM = Actor("system", "admin")


# -- urgent events ---------------------------------------------------------------

# Written here or received from a neighbour, the urgent types of the domains go up the
# same day (Art. 25): a process that syncs (`siji serve`) listens, and starts a session at
# once.
_urgent_listeners: list[Callable[[], None]] = []


def on_urgent(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` (from the writing thread, so it must be quick) whenever an urgent
    event is stored in this process; returns a function that stops it. The listener
    may run before the writer's transaction commits: a session it starts waits for
    the write lock, and so sees the event."""
    _urgent_listeners.append(listener)
    return lambda: _urgent_listeners.remove(listener)


_stored_listeners: list[Callable[[], None]] = []


def on_stored(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` (quick, from the writing thread, perhaps before the commit) whenever
    any event is stored in this process; returns a function that stops it. A parent's
    long-poll (node/sync/http.py) looks again at once at what it owes a child."""
    _stored_listeners.append(listener)
    return lambda: _stored_listeners.remove(listener)


def _stored(types: Iterable[str]) -> None:
    types = tuple(types)
    if types:
        for listener in list(_stored_listeners):
            listener()
    if _urgent_listeners and not urgent_types().isdisjoint(types):
        for listener in list(_urgent_listeners):
            listener()


# -- reading -------------------------------------------------------------------

_COLUMNS = "origin, seq, ts, actor, role, type, subject, prev, body, sig, disclosed"
# prev and body are bound as their canonical UTF-8 and stored as TEXT: SQLite's cast takes
# the bytes as they are, where a str would be decoded here only to be encoded again there
_INSERT = ("INSERT INTO events (origin, seq, ts, actor, role, type, subject, prev, body, sig, "
           "disclosed, digest, received_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, "
           "CAST(? AS TEXT), CAST(? AS TEXT), ?, ?, ?, ?, ?)")


def _row_to_event(row, db) -> Event:
    origin, seq, ts, actor, role, type_, subject, prev, body, sig, disclosed = row
    try:
        return Event(origin=origin, seq=seq, ts=ts, actor=actor, role=role, type=type_,
                     subject=subject, prev=tuple(json.loads(prev)), body=json.loads(body),
                     sig=bytes(sig), disclosed=json.loads(disclosed) if disclosed else {})
    except (ValueError, TypeError) as e:  # not what this node stored: damaged on disk
        raise store.damaged(db, f"event {origin}:{seq}", str(e)) from None


def _columns(event: Event) -> tuple:
    """The stored columns of an event, up to its digest."""
    return (event.origin, event.seq, event.ts, event.actor, event.role, event.type,
            event.subject, events.canonical(list(event.prev), check=False), event.body_bytes,
            event.sig, event.disclosed_json)


def subject_events(db, subject: str) -> list[Event]:
    rows = db.conn.execute(f"SELECT {_COLUMNS} FROM events WHERE subject = ? ORDER BY lsn",
                           (subject,)).fetchall()
    return [_row_to_event(r, db) for r in rows]


def get_event(db, event_id: str) -> Event | None:
    origin, _, seq = event_id.rpartition(":")
    row = db.conn.execute(f"SELECT {_COLUMNS} FROM events WHERE origin = ? AND seq = ?",
                          (origin, int(seq))).fetchone()
    return _row_to_event(row, db) if row else None


def has_event(db, event_id: str) -> bool:
    origin, _, seq = event_id.rpartition(":")
    return db.conn.execute("SELECT 1 FROM events WHERE origin = ? AND seq = ?",
                           (origin, int(seq))).fetchone() is not None


# -- writing -------------------------------------------------------------------

def _store(node, event: Event, source: str | None = None, digest: bytes | None = None) -> None:
    node.db.conn.execute(_INSERT, (*_columns(event), digest or event.digest(), node.now(),
                                   source))


def project(node, subject: str, event_type: str, candidate: Event | None = None):
    """Refold one subject from its events (plus a candidate) and rewrite its rows."""
    domain = domain_of(event_type)
    evs = subject_events(node.db, subject)
    if candidate is not None:
        evs.append(candidate)
    folded = domain.fold(causal_order(evs), domain.context(node))
    if candidate is not None and candidate.id in folded.rejected:
        raise folded.rejected[candidate.id]
    domain.write_many(node.db, [(subject, folded)])
    return folded


def append(node, actor: Actor, event_type: str, subject: str, body: dict,
           disclosed: dict | None = None, names=()) -> Event:
    """Create, sign, store and project one local event (caller holds a write transaction).

    ``disclosed``: the values of the body's committed fields (node/disclosure.py). The
    domain's free-text fields are screened for ID numbers, phone numbers and ``names``
    (the petitioners' recorded names), which are committed as NEVER_ABOVE limits them.
    """
    domain = domain_of(event_type)
    domain.validate_body(event_type, disclosure.reveal(body, disclosed or {}))
    body, in_text = disclosure.commit_text(body, domain.free_text,
                                           node.settings["NEVER_ABOVE"], node.tier, names)
    disclosed = {**(disclosed or {}), **in_text}
    prev = heads(subject_events(node.db, subject))
    seq = store.next_value(node.db, "seq")
    event = events.sign(node.signer, origin=node.id, seq=seq, ts=node.now(),
                        actor=actor.username, role=actor.role, type=event_type,
                        subject=subject, prev=prev, body=body, disclosed=disclosed or {})
    project(node, subject, event_type, candidate=event)  # raises if the fold refuses it
    _store(node, event)
    _stored((event_type,))
    return event


def receive(node, event: Event, source: str | None = None) -> str:
    """Verify and apply a remote event: 'applied', 'duplicate' or 'waiting'.

    Raises EventRefused (changing nothing) for a bad signature, an unknown or
    revoked origin, a body that fails validation, an action illegal in the
    event's own causal past, or a second, different event under the same
    origin and sequence number. The caller holds a write transaction.
    """
    outcome = receive_many(node, [event], source)[0]
    if isinstance(outcome, EventRefused):
        raise outcome
    return outcome


def receive_many(node, evs: list[Event], source: str | None = None) -> list:
    """Apply a batch of remote events as ``receive`` would, one by one, but faster.

    Returns one outcome per event: 'applied', 'duplicate', 'waiting', or the
    EventRefused that refused it (nothing of a refused event is stored). Each
    subject is folded once per run of events instead of twice per event.
    Membership events (node.*) change who may write, so the batch is applied
    in runs split at them. The caller holds a write transaction.
    """
    outcomes: dict[int, object] = {}
    run: list[tuple[int, Event]] = []
    for i, event in enumerate(evs):
        if event.type.startswith("node."):
            _apply_run(node, run, source, outcomes)
            run = []
            _apply_run(node, [(i, event)], source, outcomes)
        else:
            run.append((i, event))
    _apply_run(node, run, source, outcomes)
    return [outcomes[i] for i in range(len(evs))]


def _stored_digests(db, evs: list[Event]) -> dict[tuple[str, int], bytes]:
    """Digests of the events already stored under these (origin, seq): one query per origin."""
    by_origin: dict[str, list[int]] = {}
    for e in evs:
        by_origin.setdefault(e.origin, []).append(e.seq)
    found = {}
    for origin, seqs in by_origin.items():
        for seq, digest in db.conn.execute(
                "SELECT seq, digest FROM events WHERE origin = ? AND seq BETWEEN ? AND ?",
                (origin, min(seqs), max(seqs))):
            found[(origin, seq)] = bytes(digest)
    return found


def _events_of(db, subjects: Iterable[str]) -> dict[str, list[Event]]:
    """The stored events of many subjects, each in log order, in few queries."""
    out: dict[str, list[Event]] = {s: [] for s in subjects}
    names = list(out)
    for chunk, marks in store.chunks(names):
        for row in db.conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE subject IN ({marks}) ORDER BY lsn",
                chunk):
            out[row[6]].append(_row_to_event(row, db))
    return out


class Conflict(EventRefused):
    """A different event than the one stored under the same origin and number."""


def _conflict(event: Event) -> EventRefused:
    return Conflict(N_("event %(id)s conflicts with a different event of the same number "
                       "(the origin signed two)"), id=event.id)


def _wait(node, event: Event, waiting_for: str, source: str | None,
          room: dict | None = None) -> str | EventRefused:
    """Keep the event in the inbox until ``waiting_for`` arrives: 'waiting', or, when its
    link already has INBOX_MAX_EVENTS or INBOX_MAX_BYTES waiting, the refusal (a neighbour
    cannot make this node store without end what never becomes applicable). ``room``
    carries what is left for each link through one run."""
    room = {} if room is None else room
    if source not in room:
        n, size = node.db.conn.execute(
            "SELECT count(*), coalesce(sum(length(wire)), 0) FROM inbox WHERE source IS ?",
            (source,)).fetchone()
        room[source] = [node.settings["INBOX_MAX_EVENTS"] - n,
                        node.settings["INBOX_MAX_BYTES"] - size]
    wire = events.to_json(event)
    left = room[source]
    if left[0] < 1 or left[1] < len(wire):
        return EventRefused(N_("event %(id)s waits for %(missing)s, but the link already has "
                               "%(n)s events waiting: refused (INBOX_MAX_EVENTS, "
                               "INBOX_MAX_BYTES)"), id=event.id, missing=waiting_for,
                            n=node.settings["INBOX_MAX_EVENTS"] - max(0, left[0]))
    left[0] -= 1
    left[1] -= len(wire)
    node.db.conn.execute(
        "INSERT OR IGNORE INTO inbox (origin, seq, wire, waiting_for, received_at, source) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (event.origin, event.seq, wire, waiting_for, node.now(), source))
    return "waiting"


# What a held event waits for in the inbox instead of an event id: its time to come (dated
# too far ahead of this node's clock), or an admin's review (dated too far back).
FUTURE, PAST = "clock:future", "clock:past"


def _clock_window(node) -> tuple[str, str]:
    """(the latest, the earliest) time an arriving event may carry without being held."""
    now = node.clock()
    return (iso(now + timedelta(hours=node.settings["CLOCK_WINDOW_HOURS"])),
            iso(now - timedelta(days=node.settings["CLOCK_PAST_DAYS"])))


def _time_taken(db, event: Event) -> bool:
    """Whether an admin took this event's time as this node received it (release_held)."""
    return db.conn.execute("SELECT 1 FROM clock_overrides WHERE origin = ? AND seq = ?",
                           (event.origin, event.seq)).fetchone() is not None


def held(node) -> list[dict]:
    """Events held for their time: (id, type, subject, ts, why, received_at, source)."""
    rows = node.db.conn.execute(
        "SELECT origin, seq, wire, waiting_for, received_at, source FROM inbox "
        "WHERE waiting_for IN (?, ?) ORDER BY received_at, origin, seq", (FUTURE, PAST))
    out = []
    for origin, seq, wire, why, received_at, source in rows:
        event = events.from_json(wire)
        out.append({"id": events.event_id(origin, seq), "type": event.type,
                    "subject": event.subject, "ts": event.ts, "received_at": received_at,
                    "source": source, "why": "future" if why == FUTURE else "past"})
    return out


def release_held(node, event_id: str | None = None, drop: bool = False) -> list[str]:
    """Apply held events: every one whose time has come (``event_id`` None, as the
    housekeeping job does), or, by an admin, ``event_id`` whatever its time, its date taken
    as when this node received it (``drop``: refuse it instead). Returns what was applied
    or dropped. The caller holds a write transaction."""
    sql = "SELECT origin, seq, wire, waiting_for, received_at, source FROM inbox WHERE "
    if event_id is None:
        rows = node.db.conn.execute(sql + "waiting_for = ?", (FUTURE,)).fetchall()
    else:
        origin, _, seq = event_id.rpartition(":")
        rows = node.db.conn.execute(sql + "waiting_for IN (?, ?) AND origin = ? AND seq = ?",
                                    (FUTURE, PAST, origin, int(seq) if seq.isdigit() else -1)
                                    ).fetchall()
        if not rows:
            raise NotFound(N_("no held event %(id)s"), id=event_id)
    too_late, _ = _clock_window(node)
    done = []
    for origin, seq, wire, _why, received_at, source in rows:
        event = events.from_json(wire)
        if event_id is None and event.ts > too_late:
            continue  # not yet
        node.db.conn.execute("DELETE FROM inbox WHERE origin = ? AND seq = ?", (origin, seq))
        done.append(event.id)
        if drop:
            record_refusal(node, origin, seq, EventRefused(
                N_("event %(id)s, dated %(ts)s, was dropped by an administrator"),
                id=event.id, ts=event.ts))
            continue
        if event_id is not None:
            node.db.conn.execute("INSERT OR REPLACE INTO clock_overrides (origin, seq, ts) "
                                 "VALUES (?, ?, ?)", (origin, seq, received_at))
        try:
            with store.write(node.db):
                outcome = receive(node, event, source)
        except EventRefused as e:
            record_refusal(node, origin, seq, e)
            continue
        if outcome == "applied":
            _release_waiting(node, event.id)
    return done


def clock_overrides(db) -> dict[str, str]:
    """event id -> the time this node received it, for the events an admin released."""
    return {events.event_id(o, s): ts for o, s, ts in db.conn.execute(
        "SELECT origin, seq, ts FROM clock_overrides")}


def expire_waiting(node) -> int:
    """Drop what waited in the inbox longer than INBOX_EXPIRE_DAYS, each with a refusal
    saying what it waited for; returns how many. The caller holds a write transaction."""
    cutoff = iso(node.clock() - timedelta(days=node.settings["INBOX_EXPIRE_DAYS"]))
    rows = node.db.conn.execute("SELECT origin, seq, waiting_for FROM inbox WHERE "
                                "received_at < ? AND waiting_for NOT IN (?, ?)",
                                (cutoff, FUTURE, PAST)).fetchall()
    for origin, seq, missing in rows:
        node.db.conn.execute("DELETE FROM inbox WHERE origin = ? AND seq = ?", (origin, seq))
        record_refusal(node, origin, seq, EventRefused(
            N_("event %(id)s waited %(days)s days for %(missing)s, which never came: dropped"),
            id=events.event_id(origin, seq), days=node.settings["INBOX_EXPIRE_DAYS"],
            missing=missing))
    return len(rows)


def _apply_run(node, run: list[tuple[int, Event]], source, outcomes: dict) -> None:
    """Check and apply a run of events in which the trust table does not change.

    The checks are those of ``receive``, in its order: a duplicate or a
    conflicting number, an unknown or revoked origin, the origin signature, the
    body. Signatures are checked on every core while the bodies are validated;
    each subject is folded once; the new rows are stored in one statement.
    """
    if not run:
        return
    db = node.db
    signing, kept = {}, []
    for i, event in run:
        event = _for_this_tier(node, event)
        try:
            signing[i] = event.signing_bytes()
            event.disclosed_json  # noqa: B018 - encoded now, so that it fails here, not later
        except ValueError as e:  # parsed, but has no canonical form (a lone surrogate)
            outcomes[i] = EventRefused(N_("malformed event: %(problem)s"), problem=str(e))
            continue
        kept.append((i, event))
    run = kept
    if not run:
        return
    digests = {i: events.digest_of(b) for i, b in signing.items()}
    stored = _stored_digests(db, [e for _, e in run])
    keys = {origin: db.conn.execute("SELECT sign_pub, status, held FROM nodes WHERE node_id = ?",
                                    (origin,)).fetchone() for origin in {e.origin for _, e in run}}
    checked: list[tuple[int, Event]] = []
    for i, event in run:
        digest = stored.get((event.origin, event.seq))
        origin = keys[event.origin]
        if digest is not None:
            outcomes[i] = "duplicate" if digest == digests[i] else _conflict(event)
            if digest != digests[i] and origin is not None and events.verify(
                    event, bytes(origin[0]), signing[i]):  # (a forgery proves nothing)
                evidence.record(node, "event", event, digest, source)
        elif origin is None:
            outcomes[i] = EventRefused(N_("event %(id)s comes from unknown node %(origin)s"),
                                       id=event.id, origin=event.origin)
        elif origin[1] != "active":
            outcomes[i] = EventRefused(N_("event %(id)s comes from revoked node %(origin)s"),
                                       id=event.id, origin=event.origin)
        elif origin[2] is not None:
            outcomes[i] = EventRefused(N_("event %(id)s comes from %(origin)s, a node id two keys "
                                          "claim: held until the city settles it"),
                                       id=event.id, origin=event.origin)
        else:
            checked.append((i, event))
    public = {o: events.verifier(bytes(k[0])) for o, k in keys.items() if k}
    with verifier.verifying([(public[e.origin], e.sig, signing[i])
                             for i, e in checked]) as signatures:
        bad_bodies = {}
        for i, event in checked:
            try:
                disclosure.check_masked(event.body)
                domain_of(event.type).validate_body(event.type,
                                                    disclosure.without_marks(event.revealed))
            except (NodeError, ValueError) as e:
                problem = e.english() if isinstance(e, NodeError) else str(e)
                bad_bodies[i] = EventRefused(N_("event %(id)s: invalid body: %(problem)s"),
                                             id=event.id, problem=problem)
        # Fold and store as if every signature verified, while the other cores check
        # them; if one does not, the savepoint undoes it all and the run is applied again
        # without the forgeries (only a forger pays for the second pass).
        try:
            with store.write(db):
                rows, applied = _apply_checked(node, run, checked, None, bad_bodies, digests,
                                               source, outcomes, signatures)
        except _Forged as forged:
            with store.write(db):
                rows, applied = _apply_checked(node, run, checked, forged.results,
                                               bad_bodies, digests, source, outcomes, None)
    _stored(e.type for e in rows)
    if applied and db.conn.execute("SELECT 1 FROM inbox LIMIT 1").fetchone():
        for event_id in applied:
            _release_waiting(node, event_id)


class _Forged(Exception):
    """Some origin signatures of a run did not verify: undo the optimistic pass."""

    def __init__(self, results: list[bool]):
        super().__init__("forged")
        self.results = results


def _apply_checked(node, run, checked, results, bad_bodies, digests, source, outcomes,
                   signatures) -> tuple[list[Event], list[str]]:
    """Apply the checked events of a run; ``results`` are their signatures' verdicts, or
    None to go ahead as if all verify and ask ``signatures()`` before returning (raising
    _Forged, to undo, if any does not). Returns the stored events and the applied ids."""
    db = node.db
    accepted: dict[str, int] = {}       # id -> position of the event accepted in this run
    fresh: list[tuple[int, Event]] = []
    for (i, event), good in zip(checked, results or [True] * len(checked), strict=True):
        if not good:
            outcomes[i] = EventRefused(N_("event %(id)s: the origin signature does not verify"),
                                       id=event.id)
        elif i in bad_bodies:
            outcomes[i] = bad_bodies[i]
        elif event.id in accepted:
            same = digests[i] == digests[accepted[event.id]]
            outcomes[i] = "duplicate" if same else _conflict(event)
            if not same:  # both signatures verified: the origin signed two
                evidence.record(node, "event", event, digests[accepted[event.id]], source)
        else:
            accepted[event.id] = i
            fresh.append((i, event))
    fresh = _not_superseded(db, fresh, outcomes)
    existing = _events_of(db, {e.subject for _, e in fresh})
    room: dict = {}  # what each link may still have waiting (_wait)
    present = {e.id for evs in existing.values() for e in evs}
    ready: set[str] = set()
    by_subject: dict[str, list[int]] = {}
    too_late, too_early = _clock_window(node)
    for i, event in fresh:
        missing = [p for p in event.prev
                   if p not in ready and p not in present and not has_event(db, p)]
        if missing:
            outcomes[i] = _wait(node, event, missing[0], source, room)
            continue
        if not too_early <= event.ts <= too_late and not _time_taken(db, event):
            outcomes[i] = _wait(node, event, FUTURE if event.ts > too_late else PAST, source,
                                room)
            continue
        ready.add(event.id)
        by_subject.setdefault(event.subject, []).append(i)
    index = dict(run)
    applied, contexts, rows, writes = [], {}, [], {}
    digest_by_id = {e.id: digests[i] for i, e in run if e.id in accepted and accepted[e.id] == i}
    for subject, positions in by_subject.items():
        applied += _apply_subject(node, subject, existing[subject],
                                  [index[i] for i in positions], positions, source, outcomes,
                                  contexts, rows, writes)
    for domain, items in writes.items():  # no fold reads these rows: write them together
        domain.write_many(db, items)
    now = node.now()
    db.conn.executemany(_INSERT, [(*_columns(e), digest_by_id[e.id], now, source) for e in rows])
    if signatures is not None:
        verdicts = signatures()
        if not all(verdicts):
            raise _Forged(verdicts)
    return rows, applied


def _not_superseded(db, fresh: list[tuple[int, Event]], outcomes: dict) -> list:
    """``fresh`` without the events that a newer one stored here supersedes, as their
    domain says (``registry.Domain.superseded``): each is a duplicate of what is here
    already, and is not stored. A figures report superseded here may have been compacted
    away (node/figures.py), and its number is no longer in the log to find it by: so a
    replayed or late old report neither comes back nor counts."""
    asked: dict = {}
    for _, event in fresh:
        domain = domain_of(event.type)
        if domain.superseded is not None:
            asked.setdefault(domain, []).append(event)
    if not asked:
        return fresh
    gone = set().union(*(domain.superseded(db, evs) for domain, evs in asked.items()))
    for i, event in fresh:
        if event.id in gone:
            outcomes[i] = "duplicate"
    return [(i, e) for i, e in fresh if e.id not in gone]


def _for_this_tier(node, event: Event) -> Event:
    """The event without the disclosures this node's tier may not have, by the case's
    limit or by this node's own NEVER_ABOVE (a neighbour should not have sent the former;
    both are dropped before anything is stored)."""
    if not event.disclosed:
        return event
    kept = disclosure.for_tier(event.body, event.disclosed, node.tier,
                               node.settings["NEVER_ABOVE"])
    try:
        disclosure.check(event.body, kept)  # (from_wire checked them; an Event made in
    except ValueError:                      # this process may not have been)
        kept = {}
    return event if kept == event.disclosed else dataclasses.replace(event, disclosed=kept)


def _apply_subject(node, subject: str, existing: list[Event], cands: list[Event],
                   positions: list[int], source, outcomes: dict, contexts: dict,
                   rows: list[Event], writes: dict) -> list[str]:
    """Fold a subject once with its new events; refuse those illegal in their own past.

    The accepted events are added to ``rows`` (in causal order) and the subject's new
    rows to ``writes`` (by domain), for the caller to store.
    """
    domain = domain_of(cands[0].type)
    if domain not in contexts:  # the trust table does not change within a run
        contexts[domain] = domain.context(node)
    ctx = contexts[domain]
    where = dict(zip((c.id for c in cands), positions, strict=True))
    # ``prev`` names events of the same subject only: one built on another subject's event
    # can never be folded here, so it is refused (and what builds on it waits for it)
    ids = {e.id for e in existing} | {c.id for c in cands}
    lost = set()
    for c in cands:
        stray = next((p for p in c.prev if p not in ids), None)
        if stray is not None:
            lost.add(c.id)
            outcomes[where[c.id]] = EventRefused(
                N_("event %(id)s builds on %(prev)s, an event of another subject"),
                id=c.id, prev=stray)
    cands = _without(node, cands, lost, where, outcomes, source)
    while cands:
        ordered = causal_order(existing + cands)
        folded = domain.fold(ordered, ctx)
        bad = next((c for c in cands if c.id in folded.rejected
                    and _illegal_in_past(domain, ctx, existing + cands, c)), None)
        if bad is None:
            break
        err = folded.rejected[bad.id]
        outcomes[where[bad.id]] = EventRefused(N_("event %(id)s is not allowed: %(problem)s"),
                                               id=bad.id, problem=err.english())
        cands = _without(node, cands, {bad.id}, where, outcomes, source)
    if not cands:
        return []
    for event, _ in ordered:  # the new events in causal order, as they are stored
        if event.id in where:
            rows.append(event)
            outcomes[where[event.id]] = "applied"
    writes.setdefault(domain, []).append((subject, folded))
    return [c.id for c in cands]


def _without(node, cands: list[Event], refused: set[str], where: dict, outcomes: dict,
             source) -> list[Event]:
    """``cands`` without the refused and what builds on them, which waits for them in the
    inbox (as it would have, arriving alone)."""
    if not refused:
        return cands
    lost, grew = set(refused), True
    while grew:
        grew = False
        for c in cands:
            if c.id not in lost and lost.intersection(c.prev):
                lost.add(c.id)
                outcomes[where[c.id]] = _wait(node, c, sorted(lost.intersection(c.prev))[0],
                                              source)
                grew = True
    return [c for c in cands if c.id not in lost]


def _illegal_in_past(domain, ctx, evs: list[Event], event: Event) -> bool:
    """Whether the event is refused among only the events its writer had seen."""
    by_id = {e.id: e for e in evs}
    past, todo = {}, list(event.prev)
    while todo:
        eid = todo.pop()
        if eid not in past:
            past[eid] = by_id[eid]
            todo.extend(by_id[eid].prev)
    folded = domain.fold(causal_order([*past.values(), event]), ctx)
    return event.id in folded.rejected


def _release_waiting(node, event_id: str) -> None:
    """Apply inbox events that were waiting for ``event_id`` (and so on, transitively)."""
    todo = [event_id]
    while todo:
        arrived = todo.pop()
        rows = node.db.conn.execute("SELECT origin, seq, wire, source FROM inbox "
                                    "WHERE waiting_for = ?", (arrived,)).fetchall()
        for origin, seq, wire, source in rows:
            node.db.conn.execute("DELETE FROM inbox WHERE origin = ? AND seq = ?", (origin, seq))
            waiting = events.from_json(wire)
            try:
                with store.write(node.db):
                    outcome = receive(node, waiting, source)
            except EventRefused as e:
                record_refusal(node, waiting.origin, waiting.seq, e)
                continue
            if outcome == "applied":
                todo.append(waiting.id)


KEEP_REFUSALS = 10_000  # the newest refusals kept: the table never grows past about this
SAMPLE_FIRST, SAMPLE_EVERY = 10, 100  # of unverifiable requests, the rows kept: a sample


def record_refusal(node, origin: str | None, seq: int | None, error: NodeError) -> None:
    """Keep a refusal for the admin (the caller holds a write transaction); the oldest go
    once there are KEEP_REFUSALS."""
    cur = node.db.conn.execute(
        "INSERT INTO refusals (at, origin, seq, code, reason) VALUES (?, ?, ?, ?, ?)",
        (node.now(), origin, seq, error.code, error.english()))
    if cur.lastrowid % 1000 == 0:
        node.db.conn.execute("DELETE FROM refusals WHERE id <= ?",
                             (cur.lastrowid - KEEP_REFUSALS,))


def refusals(node, limit: int = 50) -> list[dict]:
    """The newest refusals, for the admin: when, which origin and number, code, reason."""
    rows = node.db.conn.execute("SELECT at, origin, seq, code, reason FROM refusals "
                                "ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(zip(("at", "origin", "seq", "code", "reason"), r, strict=True)) for r in rows]


def record_unverified(node, error: NodeError, claimed: str | None = None) -> int:
    """Count a refused request that proves nothing of its sender (no signature checked, or
    one that does not verify), by its reason; keep the first SAMPLE_FIRST of each reason
    and one in SAMPLE_EVERY after as refusals, under the name it ``claimed``. Returns the
    count. The caller holds a write transaction."""
    reason = getattr(error, "reason", error.code)
    n = store.next_value(node.db, f"unverified:{reason}")
    if n <= SAMPLE_FIRST or n % SAMPLE_EVERY == 0:
        record_refusal(node, claimed, None, error)
    return n


def check(node) -> list[str]:
    """What is damaged in the database: SQLite's own check, then every stored event
    against its digest and its origin's signature. An empty list: all is well."""
    problems = [r[0] for r in node.db.conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
    keys = {r[0]: bytes(r[1]) for r in node.db.conn.execute("SELECT node_id, sign_pub FROM nodes")}
    for row in node.db.conn.execute(f"SELECT {_COLUMNS}, digest FROM events ORDER BY lsn"):
        event_id = events.event_id(row[0], row[1])
        try:
            event = _row_to_event(row[:-1], node.db)
            signing = event.signing_bytes()
        except (NodeError, ValueError) as e:
            problems.append(f"{event_id}: " + (e.params.get("problem", e.english())
                                               if isinstance(e, NodeError) else str(e)))
            continue
        if events.digest_of(signing) != bytes(row[-1]):
            problems.append(f"{event_id}: its content is not what was stored (digest)")
        elif row[0] in keys and not events.verify(event, keys[row[0]], signing):
            problems.append(f"{event_id}: its origin's signature does not verify")
    return problems


def forget(node, subjects: Iterable[str]) -> tuple[list[str], int]:
    """Delete these subjects' events from the log, each subject whole or not at all: for a
    domain whose events a newer one makes redundant (node/figures.py compacts superseded
    reports; its ``superseded`` keeps them from coming back). Returns the subjects deleted
    and how many events went. The caller holds a write transaction, and has made sure that
    nothing its rows, or a rebuild of them, reads is among them.

    Whole subjects, because every stored event's ``prev`` is stored: the causal order, a
    rebuild and the history sent to a neighbour with a subject's first event rely on it. A
    subject stays if one of its events is still owed to a neighbour (in the outbox, not yet
    acknowledged: its link number is taken), or is the newest of the log (SQLite would give
    its lsn to the next event, which a link that scanned past it would never send)."""
    db = node.db
    newest = db.conn.execute("SELECT coalesce(max(lsn), 0) FROM events").fetchone()[0]
    names = sorted(set(subjects))
    gone, count = [], 0
    for chunk, marks in store.chunks(names):
        lsns: dict[str, list[int]] = {}
        for subject, lsn in db.conn.execute(
                f"SELECT subject, lsn FROM events WHERE subject IN ({marks})", chunk):
            lsns.setdefault(subject, []).append(lsn)
        every = [lsn for found in lsns.values() for lsn in found]
        owed = {r[0] for r in db.conn.execute(
            "SELECT lsn FROM outbox WHERE lsn BETWEEN ? AND ?", (min(every), max(every)))
            } if every else set()
        owed.add(newest)
        going = [s for s, found in lsns.items() if owed.isdisjoint(found)]
        if going:
            db.conn.execute(f"DELETE FROM events WHERE subject IN ({','.join('?' * len(going))})",
                            going)
            gone += going
            count += sum(len(lsns[s]) for s in going)
    return gone, count


# -- rebuild -------------------------------------------------------------------------

# A rebuild's write transaction ends once it has held the write lock this long (or
# projected this many subjects), at the end of a subject, so that a sync or a page's write
# waits at most about that long. Then it leaves the lock free for PAUSE_SECONDS: a writer
# that found the lock taken sleeps in SQLite's busy handler, up to 100 ms at a time, and
# would never see a lock taken again at once after each commit (bench/bench_rebuild.py).
BATCH_SECONDS = 0.2
BATCH_SUBJECTS = 2000
PAUSE_SECONDS = 0.1


def _subjects(db, domain) -> list[str]:
    return [r[0] for r in db.conn.execute(
        "SELECT DISTINCT subject FROM events WHERE type LIKE ? ORDER BY subject",
        (domain.kind + ".%",))]


# rebuilds done (a counter): a cache of what is derived from the rows (the search index)
# is made again after one, whatever the rows' own marks say
REBUILDS = "rebuilds"


def rebuild(node, progress: Callable[[int, int], None] | None = None, *,
            batch_seconds: float = BATCH_SECONDS, batch_subjects: int = BATCH_SUBJECTS,
            pause: float = PAUSE_SECONDS) -> dict[str, int]:
    """Recompute every derived table from the event log, while the node goes on working.

    Each subject is projected again from its events, as an arriving event does, in short
    write transactions (``batch_seconds``, ``batch_subjects``); then each domain prunes
    the rows of subjects without events. Without clearing first, every row is at all times
    its subject's projection from before or after, so the node's pages, syncs and writes go
    on between two transactions, and an interrupted rebuild leaves a node a second one
    completes. It ends with the rows a rebuild from scratch (``rebuild_from_scratch``)
    gives: docs/architecture.md, "Rebuild", says why, also with events arriving meanwhile.
    ``progress(done, total)`` is called with the subjects done before the first
    transaction and after each one commits; then the lock is left free for ``pause``
    seconds. Called inside the caller's write transaction it runs all in that one (each
    batch a savepoint). Returns the subjects projected of each domain, by its name.
    """
    plan = [(domain, _subjects(node.db, domain)) for domain in domains()]
    total, done = sum(len(subjects) for _, subjects in plan), 0
    if progress is not None:
        progress(done, total)
    for domain, subjects in plan:
        at = 0
        while at < len(subjects):
            with store.write(node.db):
                after = _project_batch(node, domain, subjects, at, batch_seconds,
                                       batch_subjects)
            done, at = done + after - at, after
            if progress is not None:
                progress(done, total)
            if pause and not node.db.conn.in_transaction:
                time.sleep(pause)
        # in the order of a rebuild from scratch: what a domain leaves (membership: the
        # trust table) is there before the next one folds
        with store.write(node.db):
            domain.prune(node.db)
    with store.write(node.db):
        store.add_to_counter(node.db, REBUILDS, 1)
    return {domain.name: len(subjects) for domain, subjects in plan}


def _project_batch(node, domain, subjects: list[str], at: int, seconds: float,
                   most: int) -> int:
    """Project ``subjects`` from ``at`` on until the time or the number is up, never
    splitting a group of the domain's (registry.Domain.group); returns where it stopped."""
    start, key = time.perf_counter(), None
    for i in range(at, len(subjects)):
        subject = subjects[i]
        group = domain.group(subject) if domain.group is not None else subject
        if i > at and group != key and (i - at >= most or time.perf_counter() - start >= seconds):
            return i
        if domain.reset is not None and group != key:
            domain.reset(node.db, [group])
        key = group
        project(node, subject, domain.kind + ".x")
    return len(subjects)


def rebuild_from_scratch(node) -> dict[str, int]:
    """Empty every derived table, then project every subject again, in the caller's one
    write transaction: the definition a rebuild's result is held to, and ``siji rebuild
    --offline`` (every other writer waits for the whole of it)."""
    counts = {}
    for domain in domains():
        domain.clear(node.db)
        subjects = _subjects(node.db, domain)
        for subject in subjects:
            project(node, subject, domain.kind + ".x")
        counts[domain.name] = len(subjects)
    store.add_to_counter(node.db, REBUILDS, 1)
    return counts


declare(
    Setting("INBOX_MAX_EVENTS", 10_000, "Events that may wait in the inbox, per neighbour, for "
            "an earlier event they build on; more are refused, with the reason, until some "
            "are applied or expire.", int, at_least_one("INBOX_MAX_EVENTS")),
    Setting("INBOX_MAX_BYTES", 16 * 1024 * 1024, "Bytes of events that may wait in the inbox, "
            "per neighbour (see INBOX_MAX_EVENTS).", int, at_least_one("INBOX_MAX_BYTES")),
    Setting("INBOX_EXPIRE_DAYS", 30, "Days an event may wait in the inbox for what it builds "
            "on; then it is dropped, with a refusal that says what it waited for.", int,
            at_least_one("INBOX_EXPIRE_DAYS")),
    Setting("CLOCK_WINDOW_HOURS", 12, "An arriving event dated more than this many hours "
            "after this node's clock is held until its time comes (its writer's clock is "
            "ahead); a neighbour whose clock is off by more is flagged for the admin.", int,
            at_least_one("CLOCK_WINDOW_HOURS")),
    Setting("CLOCK_PAST_DAYS", 90, "An arriving event dated more than this many days before "
            "this node's clock is held for an admin to review (`siji held`): released, its "
            "dates (a case's deadlines) count from when this node received it.", int,
            at_least_one("CLOCK_PAST_DAYS")),
)
