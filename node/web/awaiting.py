"""What awaits the logged-in user: the count in every page's title and menu, and the items
``/api/awaiting`` gives the live script (``static/live.js``), which shows new urgent ones
without a reload and can sound a tone.

An office (handler, leader of an area, town or city) is waited on by warnings from below
to acknowledge (签收), alarms of units below, cases escalated to it, referrals to sign for,
urges and supervision orders; a village's people by what came down from above. An admin
keeps the node and the accounts, not the files: nothing waits for them here.

Counts come from indexed queries (``cases.waiting_here``, ``warnings.waiting_here``), so
every page can afford them.
"""

from __future__ import annotations

from flask import url_for

from node import cases, i18n, warnings
from node.errors import N_

OFFICE_TIERS = ("area", "town", "city")
# kind: (words, urgent: shown and sounded the moment it arrives)
KINDS = {
    "alarms": (N_("Alarm: %(id)s was not acknowledged in time below"), True),
    "warnings": (N_("Warning %(id)s to acknowledge"), True),
    "escalated": (N_("Case %(id)s escalated to this unit"), True),
    "orders": (N_("Supervision order on case %(id)s"), True),
    "referrals": (N_("Case %(id)s referred here, to sign for"), False),
    "urges": (N_("Urge on case %(id)s"), False),
}
ABOVE = ("referrals", "urges", "orders")  # what came down: a village's "From above"


def kinds_for(node, user: dict) -> tuple[str, ...]:
    if user["role"] == "admin":
        return ()
    if node.tier in OFFICE_TIERS and user["role"] in ("handler", "leader"):
        return tuple(KINDS)
    return ABOVE


def awaiting(node, user: dict, lang: str) -> dict:
    """{"total": n, "counts": {kind: n}, "items": [{"key", "kind", "text", "url", "at",
    "urgent", "level"}]}: what waits for ``user``, newest and riskiest first."""
    kinds = kinds_for(node, user)
    if not kinds:
        return {"total": 0, "counts": {}, "items": []}
    found = cases.waiting_here(node)
    if "warnings" in kinds:
        found.update(warnings.waiting_here(node))
    counts = {k: found[k]["count"] for k in kinds}
    items = []
    for kind in kinds:
        words, urgent = KINDS[kind]
        for item in found[kind]["items"]:
            is_warning = kind in ("warnings", "alarms")
            shown = item["id"] if is_warning else item["case_id"]
            url = (url_for("office.warning_page", warning_id=item["id"]) if is_warning
                   else url_for("office.case_page", case_id=item["case_id"]))
            items.append({"key": f"{kind}:{item['id']}", "kind": kind, "urgent": urgent,
                          "text": i18n.translate(words, lang, id=shown), "url": url,
                          "at": item["at"], "level": item.get("level")})
    return {"total": sum(counts.values()), "counts": counts, "items": items}
