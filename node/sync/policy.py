"""The routing policy: which events a neighbour may receive (DESIGN.md, "Routing").

Checked in one place, where events leave a node (``outbox.queue``), and
refusing when unsure: an event the rules below do not clearly allow is not
sent.

* **Cases** (小事不出村、大事不出镇). A case's full detail, personal data
  included, goes only to the nodes of its *circle*: the tree paths joining
  the node that registered it and every node that has held it (escalated
  up to, or referred down to). A case settled in the village never leaves
  it; escalated to the town, it reaches the area and the town with its
  whole history; referred down by the city, it reaches the target village
  through the town and the area, and what the village does comes back the
  same way. A node that joins a circle first receives the case's history.
* **Warnings** (预警) go up from the node that raised them to the first town
  above it, and on to the city when their risk level is at or above
  ``WARNING_TO_CITY`` or someone escalated them; receipts, acknowledgements
  and measures go the same way, and down again to the nodes below on that
  path, so that each level sees the same-day chain. A node that did not
  acknowledge in time raises an alarm (``warning.alarmed``): that takes the
  warning on to the alarming node's parent, the next level up, even where
  its risk alone would have stopped it at the town.
* **Figures** (figures.*: counts without personal data, node/figures.py): a
  node's rollup of its subtree goes to its parent and no further (the parent
  adds it into its own rollup), never down.
* **Supervision requests** (oversight.*, node/oversight.py) go down the tree path
  from the node that asks to the unit it asks, and the answer back up it.
* **Membership** (node.*) goes up so that the city knows every node, and
  down so that every node knows whom to trust and whom not to.

A node's view of the tree is its trust table: ancestors from the
certificate chain it got at enrollment, descendants from the membership
events that came up. A path through a node it does not know cannot be
computed, and then nothing is sent that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node import repeats, routing, store, trust
from node.routing import HOLDING, Tree

# the two body fields routing reads, by SQLite, and only from the events that carry them.
# A body is stored as canonical JSON, keys sorted, so a registration's accused unit, when
# there is one, is its first key (no other field sorts before it): only those bodies are
# parsed, not every registration's 1-2 KB.
_READ_BODY = ("CASE WHEN type = 'case.registered' AND substr(body, 1, 16) = '{\"accused_unit\":' "
              "THEN json_extract(body, '$.accused_unit') END, "
              f"CASE WHEN type IN ({', '.join(repr(t) for t in HOLDING)}) THEN "
              "json_extract(body, '$.to') END")

# the kinds whose events go to a circle of nodes worked out from the subject's history
CIRCLE_KINDS = ("case", "warning", "round", "entry")


@dataclass
class Router:
    """Decides, for one neighbour, which stored events it gets, during one scan.

    It reads what it needs for many subjects at once (``read_ahead``) and keeps it for
    the scan, which runs in one transaction: no event arrives in the meantime.
    """

    node: object
    peer: str
    tree: Tree
    circles: dict[str, set[str]] = field(default_factory=dict)
    # subject -> (lsn, source, origin, type, accused unit, to) of its events, in log order
    history: dict[str, list[tuple]] = field(default_factory=dict)
    sharing: set[str] = field(default_factory=set)  # subjects the peer already gets

    @classmethod
    def for_peer(cls, node, peer: str) -> Router:
        return cls(node, peer, trust.tree(node.db))

    def allows(self, source: str | None, type_: str, subject: str) -> bool:
        if source == self.peer:
            return False  # it came from there
        kind = type_.split(".", 1)[0]
        if kind == "node":
            return True
        if kind == "figures":  # a node's rollup of its subtree: to its parent, no further
            return source is None and self.peer == self.node.settings["PARENT_ID"]
        if kind == "oversight":  # down the tree path from the requester to the unit it asks
            if subject not in self.circles:
                self.circles[subject] = self._oversight_path(subject)
            return self.peer in self.circles[subject]
        if kind == "repeat":  # digests up every level; a link also down to the registrant
            if self.peer == self.node.settings["PARENT_ID"]:
                if source is not None and type_ != repeats.LINKED:
                    return False  # a child's digests go up in this node's relay
                return repeats.reaches(self.node, self.tree.tiers.get(self.peer))
            owner = repeats.registrant(subject.removeprefix("D-"))
            return type_ == repeats.LINKED and owner is not None and (
                self.peer in self.tree.ancestry(owner))
        if kind == "netkey":  # the city's sealed keys: down to every node
            return bool(self.peer) and self.peer != self.node.settings["PARENT_ID"]
        if kind in CIRCLE_KINDS:
            if self.shared(subject):  # a circle only grows: once shared, always shared
                return True
            return self.peer in self.circle(type_, subject)
        return False  # refuse when unsure

    def read_ahead(self, subjects: set[str]) -> None:
        """Read the history and sharing of these subjects in a few queries, rather than a
        few queries for each event."""
        for chunk, marks in store.chunks(_read_history(self.node.db, self.history, subjects)):
            self.sharing.update(r[0] for r in self.node.db.conn.execute(
                f"SELECT subject FROM link_subjects WHERE peer = ? AND subject IN ({marks})",
                (self.peer, *chunk)))

    def shared(self, subject: str) -> bool:
        self._events(subject)  # (reads its sharing with its history, if not read yet)
        return subject in self.sharing

    @staticmethod
    def brings_history(type_: str) -> bool:
        """Whether the first event of a subject that the peer may have brings the subject's
        earlier events along, the subject then recorded as shared with the peer: not a
        figures report, which is whole by itself and goes as it is made (a node's own, to
        its parent); its subjects are compacted away once superseded (node/figures.py), and
        a row for each of them would pile up in ``link_subjects``. Nor a relay of digests,
        a subject of one event (node/repeats.py)."""
        return not type_.startswith("figures.") and type_ != repeats.RELAYED

    def share(self, subject: str) -> None:
        """The peer gets this subject from now on (the caller records it)."""
        self.sharing.add(subject)

    def earlier(self, subject: str, lsn: int) -> list[int]:
        """The subject's events before ``lsn`` that did not come from the peer."""
        return [at for at, source, *_ in self._events(subject)
                if at < lsn and source != self.peer]

    def between(self, subject: str, after: int, before: int) -> list[int]:
        """The subject's events after lsn ``after`` and before ``before`` the peer may have."""
        return [at for at, source, _, type_, *_ in self._events(subject)
                if after < at < before and self.allows(source, type_, subject)]

    def circle(self, type_: str, subject: str) -> set[str]:
        """The nodes that may have a subject of the CIRCLE_KINDS (whoever the peer)."""
        if subject not in self.circles:
            self.circles[subject] = self._circle(type_.split(".", 1)[0], subject)
        return self.circles[subject]

    def _events(self, subject: str) -> list[tuple]:
        if subject not in self.history:
            self.read_ahead({subject})
        return self.history[subject]

    def _subject_events(self, subject: str) -> list[tuple[str, str, str | None, str | None]]:
        """(origin, type, accused unit, to) of the subject's events, in log order; the two
        body fields read by SQLite, not by parsing every body here."""
        return [row[2:] for row in self._events(subject)]

    def _circle(self, kind: str, subject: str) -> set[str]:
        if kind == "case":
            return self._case_circle(subject)
        if kind == "warning":
            return self._warning_circle(subject)
        table = "rounds" if kind == "round" else "register_entries"
        row = self.node.db.conn.execute(f"SELECT origin_node FROM {table} WHERE id = ?",
                                        (subject,)).fetchone()
        if row is None:
            return set()  # refuse when unsure
        if kind == "entry":
            return routing.entry_circle(row[0], self.tree)
        scope = [r[0] for r in self.node.db.conn.execute(
            "SELECT unit FROM round_units WHERE round_id = ?", (subject,))]
        return routing.round_circle(row[0], scope, self.tree)

    def _case_circle(self, subject: str) -> set[str]:
        row = self.node.db.conn.execute("SELECT collective FROM cases WHERE id = ?",
                                        (subject,)).fetchone()
        return routing.case_circle(self._subject_events(subject), self.tree,
                                   bool(row and row[0]))

    def _oversight_path(self, subject: str) -> set[str]:
        """A supervision request and its answer go along the tree path between the node that
        asked and the unit it asked (node/oversight.py)."""
        row = self.node.db.conn.execute(
            "SELECT origin, json_extract(body, '$.to') FROM events WHERE subject = ? AND "
            "type = 'oversight.requested'", (subject,)).fetchone()
        return self.tree.path(row[0], row[1]) if row and isinstance(row[1], str) else set()

    def _warning_circle(self, subject: str) -> set[str]:
        row = self.node.db.conn.execute("SELECT risk_level FROM warnings WHERE id = ?",
                                        (subject,)).fetchone()
        return routing.warning_circle(((o, t) for o, t, _, _ in self._subject_events(subject)),
                                      self.tree, row[0] if row else None,
                                      self.node.settings["WARNING_TO_CITY"])


class Routes:
    """The routing for every neighbour at once, to decide once per event which neighbours
    may be owed it (``audience``; node/sync/outbox.py, ``route``). One Router for each
    neighbour, sharing what does not depend on the neighbour (a subject's history and
    circle), so that each subject is read and worked out once, not once per neighbour.
    Its answer is exactly the Routers' ``allows`` at this moment."""

    def __init__(self, node, peers: list[str]):
        tree = trust.tree(node.db)
        self.node, self.peers = node, set(peers)
        self.history: dict[str, list[tuple]] = {}
        circles: dict[str, set[str]] = {}
        self.routers = {p: Router(node, p, tree, circles, self.history) for p in peers}
        self.sharers: dict[str, set[str]] = {}  # subject -> the neighbours that get it

    def read_ahead(self, subjects: set[str]) -> None:
        """Read the history of these subjects, and which neighbours get them already."""
        for chunk, marks in store.chunks(_read_history(self.node.db, self.history, subjects)):
            for peer, subject in self.node.db.conn.execute(
                    f"SELECT peer, subject FROM link_subjects WHERE subject IN ({marks})",
                    chunk):
                if peer in self.routers:
                    self.routers[peer].sharing.add(subject)
                    self.sharers.setdefault(subject, set()).add(peer)

    def others(self, source: str | None) -> set[str]:
        """The neighbours an event from ``source`` might go to: not back where it came from."""
        return self.peers - {source}

    def audience(self, source: str | None, type_: str, subject: str) -> set[str]:
        """The neighbours that may have this event (read_ahead its subject first, if any
        ``others`` may have it)."""
        others = self.others(source)
        if not others:
            return others  # (nothing to read or work out)
        if type_.split(".", 1)[0] in CIRCLE_KINDS:
            # (Router.allows for these kinds, for every neighbour at once)
            circle = self.routers[next(iter(others))].circle(type_, subject)
            return (circle | self.sharers.get(subject, set())) & others
        return {p for p in others if self.routers[p].allows(source, type_, subject)}


def _read_history(db, history: dict[str, list[tuple]], subjects: set[str]) -> list[str]:
    """Read into ``history`` the events of the ``subjects`` it lacks (the fields routing
    needs, in log order); returns the subjects read."""
    todo = [s for s in subjects if s not in history]
    for chunk, marks in store.chunks(todo):
        for subject in chunk:
            history[subject] = []
        for row in db.conn.execute(
                f"SELECT subject, lsn, source, origin, type, {_READ_BODY} FROM events "
                f"WHERE subject IN ({marks}) ORDER BY lsn", chunk):
            history[row[0]].append(row[1:])
    return todo
