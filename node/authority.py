"""Who may write an event: the position its origin must hold, and the roles its tier has.

A signature says which node wrote an event; authority says whether that node
had the right to. Every event type's rule names a *writer*, a position
relative to the subject as the event's own causal past knows it (the
holder of a case, a node of its circle, the node that raised a warning, a
node above it, the parent that enrolls a child...), and the roles that may
act. The domain's fold checks both, so the same rule runs for a local
command before it is signed and for a remote event at every node it
reaches; an event whose origin lacked the authority is refused there with
the code ``no_authority`` and nothing of it is folded. docs/authority.md
lists every event type's writer (``scripts/authority-doc``; a test keeps it
in step). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import N_, NotAllowed
from node.tiers import TIER_RANK, TIER_ROLES

# The writers an event type's rule may name, and how docs/authority.md words them.
WRITERS = {
    "own_number": "any node, for a subject in its own number series",
    "holder": "the node holding the case (承办单位)",
    "holder_or_referrer": "the node holding the case, once it has signed for a referral, or "
                          "the node that referred it down, which takes it back",
    "circle": "a node of the case's circle: the registrant and every node it was handed to",
    "registrant": "the node that registered the case",
    "above_holder": "a node of the case's circle above the holder",
    "order_target": "the unit the supervision order is addressed to (the holder when issued)",
    "order_issuer": "the unit that issued the supervision order",
    "raiser_or_above": "the node that raised the warning, or a node above it",
    "above_raiser": "a node above the one that raised the warning (never the raiser)",
    "parent_named": "the parent named in the certificate, for a child of a tier it may "
                    "have; the placement counts once the child itself joined it",
    "itself": "the node itself, about itself",
    "above_target": "a node above the one revoked",
    "city": "the city (the root of the network)",
    "own_subject": "the node itself, for its own subject",
    "above_addressed": "a node above the unit the request is addressed to (the unit above "
                       "the case's holder, or the holder), in its own number series",
    "addressed": "the unit the request is addressed to",
    "appointer": "the unit that made the appointment (约访)",
    "registrant_number": "the node that registered the case, for that case's digests only",
    "registrant_or_above": "the node that registered the case, or a node above it",
    "relayer": "the node itself, in its own series, relaying the digests of cases registered "
               "below it (at the time of each; any other case is left out, a relay of none "
               "refused)",
    "round_unit": "a unit the screening round (排查) names, for itself",
    "own_entry": "the unit whose register (台账) the entry is in",
}


@dataclass(frozen=True)
class Row:
    """One line of the authority table (docs/authority.md): an event type, the writer its
    rule names (a key of WRITERS), the roles that may act, and the tiers that may."""

    type: str
    writer: str
    roles: tuple[str, ...]
    tiers: tuple[str, ...] = ("city", "town", "area", "village")


class NoAuthority(NotAllowed):
    """The event's origin does not hold the position its type requires."""

    code = "no_authority"


def check_role(role: str, tier: str | None, roles: tuple[str, ...], action: str) -> None:
    """Refuse a role the rule does not allow, or one that does not exist at the origin's
    tier (a village has no handler: it cannot claim one)."""
    if role not in roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=role, action=action)
    if tier not in TIER_ROLES or role not in TIER_ROLES[tier]:
        raise NoAuthority(N_("a %(tier)s node has no %(role)s: it may not %(action)s"),
                          tier=tier or "?", role=role, action=action)


def above(tiers: dict[str, str], upper: str, lower: str) -> bool:
    """Whether ``upper``'s tier ranks above ``lower``'s (unknown nodes rank nowhere)."""
    a, b = tiers.get(upper), tiers.get(lower)
    return a in TIER_RANK and b in TIER_RANK and TIER_RANK[a] > TIER_RANK[b]


def is_above(parents: dict[str, str | None], former: dict[str, dict[str, str]], upper: str,
             lower: str, ts: str) -> bool:
    """Whether ``upper`` is above ``lower`` in the tree (``parents``), or was at the time
    ``ts`` of an event: ``former`` maps a node to the parents it had before it moved, each
    with the time it moved on (a village moved to another area keeps the history it made
    under the old one, and only that)."""
    seen, node = set(), lower
    while node is not None and node not in seen:
        seen.add(node)
        until = former.get(node, {}).get(upper)
        if until is not None and ts < until:
            return True
        node = parents.get(node)
        if node == upper:
            return True
    return False
