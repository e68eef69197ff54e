"""What each domain tells the log: its event types, how to check and fold them, where
their rows go. The log never names a domain.

A domain module (``cases``, ``warnings``, ``membership``, ``figures``, ...)
registers one :class:`Domain` when it is imported; ``node.core`` imports
them all before it opens a node. The kind of an event type is the part
before the dot (``case`` of ``case.escalated``): it finds the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from node.errors import N_, EventRefused


@dataclass(frozen=True, eq=False)  # hashed by identity: the log keys its contexts by domain
class Domain:
    kind: str                   # the part of its event types before the dot
    name: str                   # what a rebuild counts: "cases", "warnings", ...
    # raises ValidationError unless the body is exactly the normal form of its type
    validate_body: Callable[[str, dict], None]
    # what the fold needs to know of the node (its trust table, settings), read once a run
    context: Callable[[object], object]
    # the subject's events in causal order, each with its ancestors -> a Folded, whose
    # ``applied`` and ``rejected`` (event id -> NodeError) say which events took effect
    fold: Callable[[list, object], object]
    # replace the rows of many (subject, Folded) at once; ``clear`` empties them all
    write_many: Callable[[object, list], None]
    clear: Callable[[object], None]
    # delete the rows of subjects that have no event of this domain any more (or never had
    # one): after every subject with events was projected again, what ``clear`` would have
    # taken and no projection writes back (log.rebuild, which runs while the node works)
    prune: Callable[[object], None]
    # event types that go up the same day (Art. 25): a process that syncs starts at once
    urgent: frozenset[str] = frozenset()
    # who may write each event type (authority.Row), for docs/authority.md; the fold
    # enforces it
    authority: tuple = ()
    # the free-text fields of its bodies: an ID number, phone number or petitioner's name
    # typed into one is committed like a limited field (disclosure.commit_text)
    free_text: frozenset[str] = frozenset()
    # for a domain whose rows are not one subject's each (figures: the newest report of a
    # unit and month, from the subjects of many days): the key of the rows a subject feeds,
    # which a rebuild never splits between transactions, and ``reset``, which empties the
    # rows of some keys before a rebuild writes them again from all their subjects
    group: Callable[[str], str] | None = None
    reset: Callable[[object, list[str]], None] | None = None
    # (db, arriving events) -> the ids of those a newer event stored here supersedes: they
    # carry nothing the domain's rows need, and what they supersede may have been
    # compacted away, so the log answers them as duplicates and stores none of them
    # (figures reports, node/figures.py). None: every event counts.
    superseded: Callable[[object, list], set[str]] | None = None


_DOMAINS: dict[str, Domain] = {}


def register(domain: Domain) -> Domain:
    if _DOMAINS.get(domain.kind, domain) is not domain:
        raise ValueError(f"event kind {domain.kind} is registered twice")
    _DOMAINS[domain.kind] = domain
    return domain


def domain_of(event_type: str) -> Domain:
    """The domain of an event type; refuses a type no domain declares."""
    domain = _DOMAINS.get(event_type.partition(".")[0])
    if domain is None:
        raise EventRefused(N_("unknown event type %(type)s"), type=event_type)
    return domain


def domains() -> Iterable[Domain]:
    return tuple(_DOMAINS.values())


def urgent_types() -> frozenset[str]:
    return frozenset().union(*(d.urgent for d in _DOMAINS.values()))
