"""What this node owes each neighbour: events numbered per link, and the checkpoint.

Link numbers are assigned lazily, when a session asks what is pending, by
scanning only events that arrived since the last scan: a session costs time
in proportion to what is new, not to the stored history. The checkpoint
(``acked``) moves only when the neighbour's signed acknowledgement says it
applied every event up to a number; rows at or below it are pruned.

Which events a neighbour gets is decided by the routing policy
(:mod:`node.sync.policy`), checked here where events leave the node.

Routed once (``route``): as events arrive, the policy is asked once per event which
neighbours may be owed it, for every link at once, and the answer kept in ``link_due``.
A scan for one neighbour then reads the rows due to it, so that a pull costs what is owed
to that child, not every event that arrived for its hundred siblings. The scan still asks
the policy of each event it numbers (refusing when unsure), and it numbers the same events
in the same order as a scan of every event would: an event of a subject that was not yet
due to the neighbour when it arrived (its circle grew later) comes with the later event
that brought the neighbour into the circle, as the subject's history.

Urgent first: the urgent events (registry.urgent_types: warnings, escalations,
alarms, supervision) that arrived since the last scan are numbered before the
routine ones, so a warning goes in the next bundle even behind thousands of
routine events. What such an event builds on goes just before it: the earlier
events of its subject not yet numbered (the subject's whole history, the
first time the neighbour gets it) and new membership events (a node's key
before what it signed). ``link_ahead`` remembers what went ahead, so the
routine scan that reaches it later does not number it twice; and a bundle
that starts with such events holds only them, so the receiver applies (and
forwards) them without first applying a batch of routine ones.
"""

from __future__ import annotations

import itertools
import json

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from node import disclosure, events, registry, store, trust
from node.clock import parse
from node.envelope import EnvelopeError
from node.errors import N_, NodeError, NotFound
from node.sync import policy

# Events in a bundle, at most (a link halves its own when the parent answers 413). Each
# bundle costs a round trip in which neither side applies anything: about 7 ms on this
# machine against 40 for applying 200 events. Bundles of 400 (about 80 KB on the wire)
# made a push session 19-23% faster than bundles of 200, measured alternately.
BATCH = 400
# The canonical JSON of a bundle's events, at most: half of what a receiver expands a
# bundle to before it refuses it (envelope.MAX_PLAINTEXT), so that a run of unusually
# large events (free text runs to 10,000 characters a field) makes smaller bundles
# rather than one that every attempt is refused.
BUNDLE_BYTES = 8 * 1024 * 1024


ROUTED = "routed_lsn"  # the counter of how far ``route`` got
# Events one call of ``queue`` with a limit (a session's) looks at, at most: each call is
# one write transaction, and a new link's first scan of a city's million events took
# 7 s in one, no other sync or page written meanwhile. The session calls again (behind).
SCAN_BUDGET = 20_000


def behind(db, lsn: int) -> bool:
    """Whether an event was stored after ``lsn`` (a link's scan: ``queue`` stopped at its
    limit or its budget, SCAN_BUDGET)."""
    return db.conn.execute("SELECT 1 FROM events WHERE lsn > ? LIMIT 1",
                           (lsn,)).fetchone() is not None


def ensure_link(db, peer: str) -> dict:
    # (a new link is routed from here on; what is before, its first scans look at one by one)
    db.conn.execute("INSERT OR IGNORE INTO links (peer, batch, routed_from) VALUES (?, ?, "
                    "(SELECT coalesce(max(value), 0) FROM counters WHERE name = ?))",
                    (peer, BATCH, ROUTED))
    return link(db, peer)


def route(node) -> policy.Routes | None:
    """Decide, once for every link, which of the events stored since the last call each
    neighbour may be owed (``link_due``; the module's docstring). Returns the routing it
    used, with what it read (a scan that follows asks it again), or None if nothing was
    new. The caller holds a write transaction."""
    db = node.db
    routed = store.counter(db, ROUTED)
    if not behind(db, routed):
        return None
    peers = [r[0] for r in db.conn.execute("SELECT peer FROM links ORDER BY peer")]
    routes, last = policy.Routes(node, peers), routed
    for rows in _new_events(db, routed, None):
        routes.read_ahead({subject for _, source, _, subject in rows if routes.others(source)})
        db.conn.executemany("INSERT OR IGNORE INTO link_due (peer, lsn) VALUES (?, ?)", [
            (peer, lsn) for lsn, source, type_, subject in rows
            for peer in routes.audience(source, type_, subject)])
        last = rows[-1][0]
    store.raise_counter(db, ROUTED, last)
    return routes


def link(db, peer: str) -> dict:
    cur = db.conn.execute("SELECT * FROM links WHERE peer = ?", (peer,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(N_("no link with node %(node)s"), node=peer)
    return dict(zip([c[0] for c in cur.description], row, strict=True))


def record_contact(node, peer: str, error: str | None = None, ack_at: str | None = None) -> None:
    """Note on the link that we heard from ``peer``: a success, or the error (one place);
    ``ack_at``, the time of the acknowledgement it sent, if any (see note_clock)."""
    ensure_link(node.db, peer)
    if ack_at is not None:
        node.db.conn.execute("UPDATE links SET last_ack_at = ? WHERE peer = ?", (ack_at, peer))
        note_clock(node, peer, ack_at)
    if error is None:
        node.db.conn.execute("UPDATE links SET last_contact = ?, last_success = ?, "
                             "last_error = NULL WHERE peer = ?", (node.now(), node.now(), peer))
    else:
        node.db.conn.execute("UPDATE links SET last_contact = ?, last_error = ?, "
                             "errors = errors + 1 WHERE peer = ?", (node.now(), error, peer))


def note_clock(node, peer: str, at: str) -> None:
    """Flag ``peer`` for the admin while the time it signed into an acknowledgement (``at``)
    is more than CLOCK_WINDOW_HOURS off this node's clock; clear the flag once it is not.
    (An acknowledgement's time travels no further than the link, so this is the clock of
    the neighbour as of now, give or take the request's time in flight.)"""
    skew = (parse(at) - node.clock()).total_seconds() / 3600
    window = node.settings["CLOCK_WINDOW_HOURS"]
    trust.set_flag(node.db, peer, "clock", None if abs(skew) <= window else (
        f"its clock is {abs(skew):.1f} hours {'ahead of' if skew > 0 else 'behind'} this "
        f"node's (more than CLOCK_WINDOW_HOURS = {window})"))


def encryption_key(node, peer: str):
    """The X25519 key bundles for ``peer`` are sealed to."""
    row = node.db.conn.execute("SELECT enc_pub FROM nodes WHERE node_id = ?", (peer,)).fetchone()
    if row is None or row[0] is None:
        raise NotFound(N_("no encryption key for node %(node)s: enroll first"), node=peer)
    return X25519PublicKey.from_public_bytes(bytes(row[0]))


def queue(node, peer: str, limit: int | None = None) -> int:
    """Number the events for ``peer`` that arrived since the last scan; returns how many.

    What a neighbour may have is decided by the routing policy (node.sync.policy).
    The first event of a subject it may have brings the subject's earlier
    events along, in log order, once (a case escalated to the parent arrives
    with its whole history). With ``limit``, the scan stops once that many are
    numbered (a session numbers a bundle's worth at a time, and starts sending
    before it has looked at everything new).
    """
    routes = route(node)
    row = ensure_link(node.db, peer)
    next_out, scanned = row["next_out"], row["scanned_lsn"]
    router = (routes and routes.routers.get(peer)) or policy.Router.for_peer(node, peer)
    ahead = _ahead(node.db, peer)
    numbered, shared = [], []

    def number(subject: str, first: bool, batch: list[int]) -> None:
        nonlocal next_out
        if first:  # from now on the subject's events go to the peer without its history
            shared.append((peer, subject))
        numbered.extend((peer, next_out + k, item) for k, item in enumerate(batch))
        next_out += len(batch)

    went_ahead = []
    for subject, first, batch in _urgent_first(node, router, scanned, ahead, limit):
        number(subject, first, batch)
        went_ahead += batch
        if limit is not None and len(went_ahead) >= limit:
            break  # (the rest of what is urgent goes ahead in the next call)
    # (with nothing left of ``limit``, the scan still passes over what went ahead and what
    # the peer may not have, up to the next event to number: what went ahead is then
    # behind the scan, and ``link_ahead`` stays small)
    rest = None if limit is None else max(0, limit - len(went_ahead))
    for lsn, subject, first, batch in _plan(node, peer, scanned, rest, router, ahead,
                                            None if limit is None else SCAN_BUDGET):
        scanned = lsn
        number(subject, first, batch)
    node.db.conn.executemany("INSERT OR IGNORE INTO link_subjects (peer, subject) VALUES (?, ?)",
                             shared)
    node.db.conn.executemany("INSERT INTO outbox (peer, lseq, lsn) VALUES (?, ?, ?)", numbered)
    node.db.conn.executemany("INSERT OR IGNORE INTO link_ahead (peer, lsn) VALUES (?, ?)",
                             [(peer, lsn) for lsn in went_ahead if lsn > scanned])
    node.db.conn.execute("DELETE FROM link_ahead WHERE peer = ? AND lsn <= ?", (peer, scanned))
    node.db.conn.execute("DELETE FROM link_due WHERE peer = ? AND lsn <= ?", (peer, scanned))
    node.db.conn.execute("UPDATE links SET scanned_lsn = ?, next_out = ? WHERE peer = ?",
                         (scanned, next_out, peer))
    return len(numbered)


def _ahead(db, peer: str) -> set[int]:
    """The lsns numbered for ``peer`` ahead of the routine scan (urgent first)."""
    return {r[0] for r in db.conn.execute("SELECT lsn FROM link_ahead WHERE peer = ?", (peer,))}


def _urgent_first(node, router: policy.Router, scanned: int, ahead: set[int],
                  limit: int | None = None):
    """(subject, whether the peer gets it from now on, lsns to number) for each urgent event
    after ``scanned`` the peer may have, preceded by what it builds on (the module's
    docstring); adds what it numbers to ``ahead``. Nothing when the routine scan numbers
    everything new in this call anyway (at most ``limit`` events), in log order."""
    db, peer = node.db, router.peer
    if limit is not None and not _more_than(db, peer, scanned, limit):
        return
    urgent = sorted(registry.urgent_types())
    found = _first(_candidates(
        db, peer, scanned, limit or 500,
        f"e.type IN ({', '.join('?' * len(urgent))}) AND NOT EXISTS (SELECT 1 FROM link_ahead "
        f"a WHERE a.peer = ? AND a.lsn = e.lsn)", (*urgent, peer)), limit)
    found = [r for r in found if r[0] not in ahead]
    members, left = None, limit  # (events still to number before the caller stops)
    for at, (lsn, source, type_, subject) in enumerate(found):
        if lsn in ahead:
            continue
        if source != peer and subject not in router.history:
            # read ahead for the next few only, not for all found: each takes one event at
            # least, often its subject's history too, and what this call does not take,
            # the next one reads again (halving: a few queries, and about what is taken)
            few = 500 if left is None else max(1, (left + 1) // 2)
            router.read_ahead({s for _, src, _, s in found[at:at + few] if src != peer})
        if not router.allows(source, type_, subject):
            continue
        if members is None:  # (once: the membership events before the last one found)
            members = _first(_candidates(db, peer, scanned, 500,
                                         "e.type LIKE 'node.%' AND e.lsn < ?",
                                         (found[-1][0],)))
        for m_lsn, m_source, m_type, m_subject in members:
            if m_lsn < lsn and m_lsn not in ahead and router.allows(m_source, m_type,
                                                                    m_subject):
                taken = _taking(router, m_subject, m_type, m_lsn, scanned, ahead)
                left = None if left is None else left - len(taken[2])
                yield taken
        taken = _taking(router, subject, type_, lsn, scanned, ahead)
        left = None if left is None else left - len(taken[2])
        yield taken


def _taking(router: policy.Router, subject: str, type_: str, lsn: int, scanned: int,
            ahead: set[int]) -> tuple[str, bool, list[int]]:
    """Number ``lsn`` now, with the events of its subject it follows that the peer has not
    been given: its whole history if the peer does not have the subject yet (and the
    type brings it: router.brings_history), else those after ``scanned`` the routing
    lets it have."""
    first = router.brings_history(type_) and not router.shared(subject)
    if first:
        router.share(subject)
        before = router.earlier(subject, lsn)
    else:
        before = router.between(subject, scanned, lsn)
    batch = [x for x in before if x not in ahead] + [lsn]
    ahead.update(batch)
    return subject, first, batch


def owes(node, peer: str, upto: int, after: int = 0) -> tuple[bool, int]:
    """(whether ``peer``, which says it applied this link up to ``upto``, is owed anything,
    the last lsn looked at): numbered events past ``upto``, or a new event the routing
    policy lets it have. Read only; ``after``, the lsn a previous call got to, so that a
    caller asking again looks only at what arrived since (a long-poll: node/sync/http.py).
    """
    row = node.db.conn.execute("SELECT next_out, scanned_lsn FROM links WHERE peer = ?",
                               (peer,)).fetchone()
    if row is None:
        return True, after  # never synced: a session sets the link up
    next_out, scanned = row
    if next_out - 1 > upto:
        return True, after
    position, looked = max(scanned, after), 0
    for lsn, _, _, batch in _plan(node, peer, position, None, budget=SCAN_BUDGET):
        if batch:
            return True, position
        position, looked = lsn, looked + 1
    # (a budget looked at and more after it, a new link's history: let the child come, and
    # its session look at the rest a budget per transaction, rather than a long-poll
    # reading the whole log at once)
    return looked >= SCAN_BUDGET and behind(node.db, position), position


def unqueued(node, peer: str) -> tuple[int, int, bool]:
    """(events, bytes) that ``queue`` would number for ``peer`` now, among the next
    SCAN_BUDGET events it would look at, and whether that was all (a new link's first look
    at a long log stops there: the backlog is at least that); read only, for status."""
    row = node.db.conn.execute("SELECT scanned_lsn FROM links WHERE peer = ?",
                               (peer,)).fetchone()
    lsns, looked, position = [], 0, row[0] if row else 0
    for lsn, _, _, batch in _plan(node, peer, position, None, budget=SCAN_BUDGET):
        looked, position = looked + 1, lsn
        lsns += batch
    size = 0
    for chunk, marks in store.chunks(lsns):
        size += node.db.conn.execute(
            f"SELECT coalesce(sum(length(body) + 200), 0) FROM events WHERE lsn IN ({marks})",
            chunk).fetchone()[0]
    return len(lsns), size, looked < SCAN_BUDGET or not behind(node.db, position)


def _plan(node, peer: str, scanned: int, limit: int | None, router=None,
          ahead: set[int] | None = None, budget: int | None = None):
    """What ``queue`` numbers, without writing: (lsn scanned, its subject, whether the
    subject is shared with the peer from this event on, the lsns to number for it in
    order), for each new event, until ``limit`` are numbered or ``budget`` events were
    looked at; what went ``ahead`` (urgent first) is not numbered again."""
    router = router or policy.Router.for_peer(node, peer)
    queued: set[int] = set(_ahead(node.db, peer) if ahead is None else ahead)
    added = looked = 0
    # (with a limit, a chunk holds what went ahead, the limit's worth and one more: enough
    # unless the peer may not have some)
    chunk = 500 if limit is None else min(500, limit + len(queued) + 1)
    for rows in _candidates(node.db, peer, scanned, chunk, marker=True):
        for at, (lsn, source, type_, subject) in enumerate(rows):
            if budget is not None and looked >= budget:
                return
            looked += 1
            if lsn in queued or type_ is None:
                yield lsn, subject, False, []  # (passed over even once ``limit`` is reached)
                continue
            if source != peer and subject not in router.history:
                # read ahead for this row and the next ones, as many as may be numbered
                # still (what came from the peer never goes back to it: nothing to read)
                router.read_ahead(set(itertools.islice(
                    (s for n, src, _, s in itertools.islice(rows, at, None)
                     if n not in queued and src != peer and s is not None),
                    None if limit is None else max(1, limit - added))))
            if not router.allows(source, type_, subject):
                yield lsn, subject, False, []  # (passed over even once ``limit`` is reached)
                continue
            if limit is not None and added >= limit:
                return
            batch = [lsn]
            first = router.brings_history(type_) and not router.shared(subject)
            if first:  # the subject's earlier events come along, once
                router.share(subject)
                batch = [x for x in router.earlier(subject, lsn) if x not in queued] + batch
            queued.update(batch)
            added += len(batch)
            yield lsn, subject, first, batch


def _candidates(db, peer: str, after: int, chunk: int, where: str = "", params: tuple = (),
                marker: bool = False):
    """Lists of (lsn, source, type, subject), in log order, of the events after ``after``
    that ``peer`` may be owed (and that meet ``where``, on events ``e``), in lists of at
    most ``chunk``: every event up to its link's ``routed_from``, then the events routed
    to it (``link_due``) up to where the routing got, then every event not routed yet (a
    read-only caller's; ``queue`` routes first). With ``marker``, a row (lsn routed up to,
    None, None, None) after the routed ones: everything up to there was looked at."""
    where = f" AND {where}" if where else ""
    for routed, start, end in _ranges(db, peer, after):
        sql = (f"SELECT e.lsn, e.source, e.type, e.subject {_DUE if routed else _EVERY}"
               f"{where} ORDER BY {'d' if routed else 'e'}.lsn LIMIT ?")
        head, at = ((peer,) if routed else ()), start
        while at < end:
            rows = db.conn.execute(sql, (*head, at, end, *params, chunk)).fetchall()
            if rows:
                yield rows
            if len(rows) < chunk:
                break
            at = rows[-1][0]
        if marker and routed and start < end:
            yield [(end, None, None, None)]


# _candidates' two kinds of range: every event in it, or those routed to the peer
_EVERY = "FROM events e WHERE e.lsn > ? AND e.lsn <= ?"
_DUE = ("FROM link_due d JOIN events e ON e.lsn = d.lsn WHERE d.peer = ? AND d.lsn > ? AND "
        "d.lsn <= ?")


def _ranges(db, peer: str, after: int) -> tuple[tuple[bool, int, int], ...]:
    """_candidates' three ranges after ``after``, (routed, from, to): every event up to
    the link's ``routed_from``, the events routed to the peer up to where the routing got,
    every event after that (no link: nothing was routed to it)."""
    routed = store.counter(db, ROUTED)
    row = db.conn.execute("SELECT routed_from FROM links WHERE peer = ?", (peer,)).fetchone()
    routed_from = min(row[0], routed) if row else routed
    return ((False, after, routed_from), (True, max(after, routed_from), routed),
            (False, max(after, routed), 2 ** 62))


def _more_than(db, peer: str, after: int, n: int) -> bool:
    """Whether ``_candidates(db, peer, after, ...)`` has more than ``n`` rows: counted by
    SQLite, not read. (A routed event may be gone since: log.forget.)"""
    for routed, start, end in _ranges(db, peer, after):
        if start < end:
            n -= db.conn.execute(
                f"SELECT count(*) FROM (SELECT 1 {_DUE if routed else _EVERY} LIMIT ?)",
                ((peer,) if routed else ()) + (start, end, n + 1)).fetchone()[0]
            if n < 0:
                return True
    return False


def _first(chunks, limit: int | None = None) -> list:
    """The rows of ``chunks`` (lists of rows), the first ``limit`` of them (None: all)."""
    return list(itertools.islice(itertools.chain.from_iterable(chunks), limit))


def _new_events(db, after: int, limit: int | None):
    """Lists of (lsn, source, type, subject) of the events after ``after``, in log order;
    in chunks, so that the caller can read ahead for a chunk and stop early with a limit
    (most events may be refused)."""
    chunk = limit or 500
    while True:
        rows = db.conn.execute("SELECT lsn, source, type, subject FROM events WHERE lsn > ? "
                               "ORDER BY lsn LIMIT ?", (after, chunk)).fetchall()
        if rows:
            yield rows
        if len(rows) < chunk:
            return
        after = rows[-1][0]


def pending(node, peer: str, limit: int, after: int | None = None) -> tuple[int, list[bytes]]:
    """(first link number, wire events as canonical JSON) of the next run after ``after``
    (default: the checkpoint), at most ``limit`` events and BUNDLE_BYTES (but at least one
    event)."""
    acked = link(node.db, peer)["acked"] if after is None else after
    rows = node.db.conn.execute(
        "SELECT o.lseq, e.origin, e.seq, e.ts, e.actor, e.role, e.type, e.subject, e.prev, "
        # the body's UTF-8 as it is stored: it goes into the bundle without being decoded
        "CAST(e.body AS BLOB), e.sig, e.disclosed, o.lsn FROM outbox o JOIN events e "
        "ON e.lsn = o.lsn WHERE o.peer = ? AND o.lseq > ? ORDER BY o.lseq LIMIT ?",
        (peer, acked, limit)).fetchall()
    if not rows:
        return acked + 1, []
    if node.db.conn.execute("SELECT 1 FROM link_ahead WHERE peer = ? AND lsn = ?",
                            (peer, rows[0][12])).fetchone():
        # urgent first: a bundle of its own, not held up by a batch of routine events
        ahead = {r[0] for r in node.db.conn.execute(
            "SELECT lsn FROM link_ahead WHERE peer = ?", (peer,))}
        rows = list(itertools.takewhile(lambda r: r[12] in ahead, rows))
    tier = None
    if any(r[11] for r in rows):
        found = node.db.conn.execute("SELECT tier FROM nodes WHERE node_id = ?",
                                     (peer,)).fetchone()
        tier = found[0] if found else None
    wires, size = [], 0
    for r in rows:
        wire = events.wire_bytes(*r[1:8], json.loads(r[8]), r[9], bytes(r[10]),
                                 _disclosures_for(node, tier, r[9], r[11]))
        size += len(wire) + 1
        if wires and size > BUNDLE_BYTES:
            break
        wires.append(wire)
    return rows[0][0], wires


def _disclosures_for(node, tier: str | None, body_json: bytes, disclosed: str | None) -> dict:
    """The disclosures of an event that a neighbour of ``tier`` may have: the routing
    policy's "never above tier X", applied where the event leaves (node/disclosure.py)."""
    if not disclosed or tier not in disclosure.TIER_RANK:
        return {}  # refuse when unsure: a neighbour of unknown tier gets no values
    return disclosure.for_tier(json.loads(body_json), json.loads(disclosed), tier,
                               node.settings["NEVER_ABOVE"])


class ParentBehind(NodeError):
    """The parent acknowledges less than it acknowledged before: it lost what it had
    applied (restored from a backup, say). Resending cannot mend that: the child
    pruned what was acknowledged, so the session stops instead of sending in a loop."""

    code = "parent_behind"


def resume(node, peer: str, applied: int) -> bool:
    """After enrolling (again) with ``peer``, which says it applied this link up to
    ``applied``: if that is past what this node ever numbered for it (a node restored from
    an old backup), go on above it, and consider the whole log again for the link (what
    the parent has already, it takes as duplicates). Returns whether anything changed.
    The caller holds a write transaction."""
    row = ensure_link(node.db, peer)
    if applied < row["next_out"]:
        return False
    node.db.conn.execute("DELETE FROM outbox WHERE peer = ?", (peer,))
    node.db.conn.execute("DELETE FROM link_subjects WHERE peer = ?", (peer,))
    node.db.conn.execute("DELETE FROM link_ahead WHERE peer = ?", (peer,))
    node.db.conn.execute("DELETE FROM link_due WHERE peer = ?", (peer,))
    node.db.conn.execute("UPDATE links SET next_out = ?, acked = ?, scanned_lsn = 0, "
                         "routed_from = ? WHERE peer = ?",
                         (applied + 1, applied, store.counter(node.db, ROUTED), peer))
    return True


def acknowledge(node, peer: str, upto: int, fresh: bool = False) -> int:
    """Move the checkpoint to ``upto``; never back, so a stale acknowledgement (a replay,
    an old file) changes nothing.

    Refused, changing nothing, when the neighbour's state and this node's cannot both be
    right, which happens when one of them was restored from a backup:
    - ``upto`` past what this node ever numbered for ``peer`` (EnvelopeError ``ahead``):
      what it numbers next, the neighbour has applied under those numbers already and
      would drop as duplicates;
    - ``fresh`` (the parent's answer to this node's push just now) and ``upto`` below
      the checkpoint (ParentBehind): the parent lost what it had applied, and what was
      acknowledged is pruned here, so resending cannot mend it.
    """
    row = link(node.db, peer)
    sent = row["next_out"] - 1
    if upto > sent:
        raise EnvelopeError(
            "ahead", N_("node %(node)s acknowledges up to %(upto)s, more than this node "
                        "ever sent it (%(sent)s): was this node restored from a backup? "
                        "Nothing more is sent to it until an administrator checks both "
                        "nodes"), node=peer, upto=upto, sent=sent)
    if fresh and upto < row["acked"]:
        raise ParentBehind(
            N_("the parent has applied only up to %(upto)s of what it acknowledged before "
               "(%(acked)s): was it restored from a backup? Sync with it stops until an "
               "administrator checks both nodes"), upto=upto, acked=row["acked"])
    acked = max(row["acked"], upto)
    node.db.conn.execute("UPDATE links SET acked = ? WHERE peer = ?", (acked, peer))
    node.db.conn.execute("DELETE FROM outbox WHERE peer = ? AND lseq <= ?", (peer, acked))
    return acked


def backlog(node, peer: str) -> tuple[int, int]:
    """(events, bytes of their bodies) queued for ``peer`` and not yet acknowledged."""
    row = node.db.conn.execute(
        "SELECT count(*), coalesce(sum(length(e.body) + 200), 0) FROM outbox o "
        "JOIN events e ON e.lsn = o.lsn WHERE o.peer = ?", (peer,)).fetchone()
    return row[0], row[1]
