"""Which records a user of this node may see, and how much of a petitioner.

Unit: a node shows a case only if it concerns its own unit: the case was
registered in this node's subtree, or is held in it, or this node referred
it down. Anything else that reached the database (a relay, a misrouted
bundle) is answered as "no such case", so a village account cannot even
learn that another village's case exists by typing its number.

Personal data (name, ID number, phone, address) is masked when this node's
tier is above the tier of the unit holding the case. Handlers and leaders
may unmask a case for their session; that is logged in ``audit_log``, and so
is every page or API answer that shows a petitioner's identity.
"""

from __future__ import annotations

from node import cases, paging, settings, trust, warnings
from node.errors import N_, NotAllowed, NotFound

RANK = settings.TIER_RANK
UNMASK_ROLES = ("handler", "leader")
MAX_UNMASKED = 20  # cases unmasked at once in one session


def subtree(node) -> set[str]:
    """This node and every node below it that it knows of."""
    below: dict[str, list[str]] = {}
    for child, parent in trust.tree(node.db).parents.items():
        below.setdefault(parent, []).append(child)
    seen, todo = {node.id}, [node.id]
    while todo:
        for child in below.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def case_visible(node, case: dict, units: set[str] | None = None) -> bool:
    units = subtree(node) if units is None else units
    return (case["origin_node"] in units or case["holder"] in units
            or case.get("referred_by") == node.id)


def case_filters(node, **filters) -> cases.query.Filters:
    """List filters (cases.query.Filters) limited to the cases this unit may see.

    Where every case here was registered in this unit's subtree (at a city, always) each
    is visible, and the check is left out: it is an OR of three columns no index serves,
    so with it every list and count read every case (issue 19)."""
    units = subtree(node)
    if units.issuperset(cases.query.origins(node)):
        return cases.query.Filters(**filters)
    return cases.query.Filters(units=tuple(sorted(units)), referred_by=node.id, **filters)


def case_page(node, after: str | None = None, limit: int = paging.PAGE,
              **filters) -> tuple[list[dict], str | None]:
    """A page of the cases this unit may see, filtered in SQL: (rows, next cursor)."""
    return cases.query.page(node, case_filters(node, **filters), after, limit)


def case_count(node, **filters) -> int:
    return cases.query.count(node, case_filters(node, **filters))


def visible_cases(node, **filters):
    """Every case this unit may see that matches, newest first, read a page at a time
    (exports; pages use case_page)."""
    return cases.query.every(node, case_filters(node, **filters))


def get_case(node, case_id: str) -> dict:
    case = cases.get(node, case_id)
    if not case_visible(node, case):
        raise NotFound(N_("no case %(id)s"), id=case_id)
    return case


def warning_visible(node, warning: dict, units: set[str] | None = None) -> bool:
    units = subtree(node) if units is None else units
    return warning["origin_node"] in units


def warning_page(node, after: str | None = None, limit: int = paging.PAGE,
                 **filters) -> tuple[list[dict], str | None]:
    """A page of the warnings raised in this unit's subtree, newest first."""
    return warnings.page(node, units=tuple(sorted(subtree(node))), after=after, limit=limit,
                         **filters)


def warning_count(node, **filters) -> int:
    return warnings.count(node, units=tuple(sorted(subtree(node))), **filters)


def visible_warnings(node, **filters):
    """Every warning raised in this unit's subtree that matches, newest first (exports)."""
    return warnings.every(node, units=tuple(sorted(subtree(node))), **filters)


def get_warning(node, warning_id: str) -> dict:
    warning = warnings.get(node, warning_id)
    if not warning_visible(node, warning):
        raise NotFound(N_("no warning %(id)s"), id=warning_id)
    return warning


def tier_of(node, node_id: str) -> str | None:
    row = node.db.conn.execute("SELECT tier FROM nodes WHERE node_id = ?",
                               (node_id,)).fetchone()
    return row[0] if row else None


def masked(node, user: dict, case: dict) -> bool:
    """Whether ``user`` sees the case's petitioners masked: above the holding tier, and
    always for an admin, who keeps the accounts and the node, not petitioners' files."""
    if user["role"] == "admin":
        return True
    holder_tier = tier_of(node, case["holder"])
    return holder_tier is None or RANK[node.tier] > RANK[holder_tier]


def sight(node, user: dict, case: dict, units: set[str] | None = None) -> str | None:
    """How ``user`` sees a case here: "full", "masked" (personal data hidden) or None (not at
    all: another unit's). Search (node/search.py) matches only what this allows."""
    if not case_visible(node, case, units):
        return None
    return "masked" if masked(node, user, case) else "full"


def may_unmask(user: dict) -> bool:
    return user["role"] in UNMASK_ROLES


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_digits(value: str | None, keep_start: int, keep_end: int) -> str | None:
    if not value:
        return value
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def mask(person: dict) -> dict:
    return {**person, "name": mask_name(person["name"]),
            "id_number": mask_digits(person.get("id_number"), 4, 2),
            "phone": mask_digits(person.get("phone"), 3, 2),
            "address": "***" if person.get("address") else person.get("address")}


def audit(node, username: str, action: str, target: str) -> None:
    """Record a read or unmasking of identity; the caller owns the transaction."""
    node.db.conn.execute("INSERT INTO audit_log (at, actor, action, target) VALUES "
                         "(?, ?, ?, ?)", (node.now(), username, action, target))


def check_unmask(user: dict) -> None:
    if not may_unmask(user):
        raise NotAllowed(N_("the role %(role)s may not see personal data above its tier"),
                         role=user["role"])
