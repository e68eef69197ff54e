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


def overview(n) -> dict:
    units = access.subtree(n)
    rows = [c for c in cases.listing(n) if access.case_visible(n, c, units)]
    escalated = [c for c in rows if c["holder"] == n.id and c["origin_node"] != n.id]
    orders = [{**o, "case": next((c for c in rows if c["id"] == o["case_id"]), None)}
              for o in cases.orders_by(n, issuer=n.id)]
    by_level = {level: [] for level in ("serious", "major", "general")}
    for w in access.visible_warnings(n):
        by_level.setdefault(w["risk_level"], []).append(
            {**w, "acks": warnings.acks(n, w["id"]), "alarmed": warnings.alarms(n, w["id"])})
    return {"escalated": escalated, "orders": orders, "warnings": by_level,
            "figures": dashboard.view(n, {}), "rates": metrics.RATES,
            "counts": dashboard.COUNTS,
            "alarms": ops.alarms(n),
            "overdue": [c for c in rows if c["days_overdue"] > 0]}


@bp.get("/city")
@needs("handler", "leader", tiers=("city",))
def page():
    return render_template("city.html", **overview(node()), names=ops.node_names(node()),
                           levels=warnings.LEVELS)
