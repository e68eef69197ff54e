"""The city page (市): escalated cases, supervision orders and their status, warnings by risk.

Its figures table is the dashboard's (node/web/dashboard.py) for this month,
by unit: counts without personal data, with the rates and when each unit's
figures were made; the dashboard itself has the rest.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from node import cases, metrics, warnings
from node.web import access, dashboard, ops
from node.web.auth import needs, node

bp = Blueprint("city", __name__)


def overview(n, limit: int = ops.SHORT) -> dict:
    """What needs the city's attention now: open escalations, supervision orders still
    open, overdue cases, open warnings by risk; the newest ``limit`` of each, found in
    SQL, with counts of all and links to the paged lists (issue 19)."""
    Filters = cases.query.Filters
    escalated_here = Filters(holder=n.id, not_origin=n.id, open_only=True)
    escalated, _ = cases.query.page(n, escalated_here, limit=limit)
    orders = cases.orders_by(n, issuer=n.id, statuses=cases.ORDERS_OPEN, limit=limit)
    overdue, _ = access.case_page(n, None, limit, due="overdue")
    by_level, level_counts = {}, {}
    for level in ("serious", "major", "general"):
        rows, _ = access.warning_page(n, None, limit, level=level, open_only=True)
        by_level[level] = [{**w, "acks": warnings.acks(n, w["id"]),
                            "alarmed": warnings.alarms(n, w["id"])} for w in rows]
        level_counts[level] = access.warning_count(n, level=level, open_only=True)
    return {"escalated": escalated, "orders": orders, "warnings": by_level,
            "figures": dashboard.view(n, {}, shown=0), "rates": metrics.RATES,
            "counts": dashboard.COUNTS, "alarms": ops.alarms(n), "overdue": overdue,
            "totals": {"escalated": cases.query.count(n, escalated_here),
                       "orders": len(cases.orders_by(n, issuer=n.id,
                                                     statuses=cases.ORDERS_OPEN)),
                       "overdue": access.case_count(n, due="overdue"), **level_counts}}


@bp.get("/city")
@needs("handler", "leader", tiers=("city",))
def page():
    return render_template("city.html", **overview(node()), names=ops.node_names(node()),
                           levels=warnings.LEVELS)
