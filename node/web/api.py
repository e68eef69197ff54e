"""The JSON API: the same operations as the pages, through the same ``ops`` functions.

Log in with ``POST /api/login`` (JSON); the answer carries a CSRF token to
send as ``X-CSRFToken`` with every later POST, beside the session cookie.
Every error has one shape: ``{"error": {"code", "message", "params"}}``.
``/api/openapi.json`` describes every route (a test checks it is complete).
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request, session, url_for
from flask_wtf.csrf import generate_csrf

from node import (
    __version__,
    cases,
    drafts,
    log,
    metrics,
    notices,
    oversight,
    paging,
    periods,
    trust,
    users,
    warnings,
)
from node.errors import N_, ValidationError
from node.sync import status as sync_status
from node.web import access, auth, awaiting, dashboard, lists, ops
from node.web.auth import needs, node

bp = Blueprint("api", __name__, url_prefix="/api")
LIST_KEYS = ("id", "state", "category", "holder", "origin_node", "registered_on", "due_on",
             "due_kind", "due_provisional", "days_overdue", "handover", "needs_review")


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError(N_("%(field)s: expected a JSON object"), field="body")
    return data


def _case_row(c: dict) -> dict:
    return {k: c.get(k) for k in LIST_KEYS}


@bp.post("/login")
def login():
    if not request.is_json:  # a cross-site HTML form cannot send JSON without asking first
        raise ValidationError(N_("%(field)s: expected a JSON object"), field="body")
    data = _body()
    user = auth.authenticate(str(data.get("username", "")), str(data.get("password", "")))
    return jsonify({"user": _user(user), "csrf_token": generate_csrf()})


@bp.post("/logout")
def logout():
    auth.end_session()
    return jsonify({"ok": True})


def _user(user: dict) -> dict:
    return {"username": user["username"], "display_name": user["display_name"],
            "role": user["role"]}


def _once() -> str | None:
    """The request's ``Idempotency-Key`` header: a registration or a warning sent again
    with the same key (its answer was lost on the way) is written once and answered with
    the first result; the same key with other contents is refused (drafts.once)."""
    key = request.headers.get("Idempotency-Key") or None
    return None if key is None else drafts.check_key(key, "Idempotency-Key")


@bp.get("/me")
@needs()
def me():
    n = node()
    return jsonify({"user": _user(g.user), "node": n.id, "tier": n.tier,
                    "name": n.settings["NODE_NAME"], "csrf_token": generate_csrf()})


@bp.get("/cases")
@needs()
def case_list():
    chosen = lists.filters(lists.CASE_FILTERS)
    after, limit = lists.page_args()
    rows, following = access.case_page(node(), after, limit, **chosen)
    return jsonify({"cases": [_case_row(c) for c in rows], "next": following,
                    "total": access.case_count(node(), **chosen)})


@bp.post("/cases")
@needs(*cases.WORKERS)
def case_register():
    return jsonify(ops.register_case(node(), g.user, _body(), _once())), 201


@bp.get("/cases/<case_id>")
@needs()
def case_get(case_id):
    detail = ops.case_detail(node(), g.user, case_id)
    return jsonify(_detail_json(detail))


def _detail_json(detail: dict) -> dict:
    case = {k: v for k, v in detail["case"].items() if k not in ("heads",)}
    return {"case": case, "petitioners": detail["petitioners"], "masked": detail["masked"],
            "supervision_orders": detail["orders"], "allowed_actions": detail["actions"],
            "documents": detail["documents"], "deadline_changes": detail["deadline_changes"],
            "attachments": detail["office"]["attachments"],
            "appointments": detail["office"]["appointments"],
            "repeat_links": detail["office"]["repeats"],
            "timeline": [{**t, "details": dict(t["details"])} for t in detail["timeline"]]}


@bp.get("/cases/<case_id>/documents/<kind>/<int:n>")
@needs()
def case_document(case_id, kind, n):
    return jsonify(ops.case_document(node(), g.user, case_id, kind, n, g.lang))


@bp.post("/cases/<case_id>/unmask")
@needs()
def case_unmask(case_id):
    n = node()
    ops.unmask(n, g.user, case_id)
    return jsonify(_detail_json(ops.case_detail(n, g.user, case_id, unmasked=True)))


@bp.post("/cases/<case_id>/actions/<action>")
@needs()
def case_act(case_id, action):
    return jsonify(ops.act_case(node(), g.user, case_id, action, _body()))


@bp.get("/warnings")
@needs()
def warning_list():
    chosen = lists.filters(lists.WARNING_FILTERS)
    after, limit = lists.page_args()
    rows, following = access.warning_page(node(), after, limit, **chosen)
    return jsonify({"warnings": rows, "next": following,
                    "total": access.warning_count(node(), **chosen)})


@bp.post("/warnings")
@needs(*cases.WORKERS)
def warning_raise():
    return jsonify(ops.raise_warning(node(), g.user, _body(), _once())), 201


@bp.get("/warnings/<warning_id>")
@needs()
def warning_get(warning_id):
    d = ops.warning_detail(node(), g.user, warning_id)
    return jsonify({"warning": d["warning"], "acks": d["acks"], "chain": d["chain"],
                    "allowed_actions": d["actions"],
                    "timeline": [{**t, "details": dict(t["details"])} for t in d["timeline"]]})


@bp.post("/warnings/<warning_id>/actions/<action>")
@needs()
def warning_act(warning_id, action):
    return jsonify(ops.act_warning(node(), g.user, warning_id, action, _body()))


@bp.get("/inbox")
@needs("handler", "leader")
def inbox():
    box = ops.inbox(node())
    out = {k: [_case_row(c) for c in box[k]] for k in ("escalated", "referrals", "due_soon",
                                                        "overdue")}
    out["warnings"] = box["warnings"]
    out["alarms"] = box["alarms"]
    out["orders"] = box["orders"]
    out["urges"] = [{"case": u["case"]["id"], "event": u["id"], "origin": u["origin"],
                     "ts": u["ts"], "details": dict(u["details"])} for u in box["urges"]]
    return jsonify(out)


@bp.get("/from-above")
@needs()
def from_above():
    above = ops.from_above(node())
    return jsonify({"referrals": [_case_row(c) for c in above["referrals"]],
                    "orders": above["orders"],
                    "urges": [{"case": u["case"]["id"], "event": u["id"], "origin": u["origin"],
                               "ts": u["ts"], "details": dict(u["details"])}
                              for u in above["urges"]]})


@bp.get("/awaiting")
@needs()
def awaiting_get():
    return jsonify(awaiting.awaiting(node(), g.user, g.lang))


@bp.get("/sync")
@needs()
def sync_get():
    admin = g.user["role"] == "admin"
    s = sync_status.summary(node(), every_link=admin)
    if not admin:
        s = {k: s[k] for k in ("node", "parent", "last_synced", "waiting", "progress")}
    return jsonify(s)


@bp.post("/sync")
@needs()
def sync_post():
    return jsonify(ops.sync_now(node()))


@bp.get("/network")
@needs("admin")
def network():
    n = node()
    return jsonify({"children": ops.children(n), "links": sync_status.links(n),
                    "enroll_codes": ops.enroll_codes(n), "flags": trust.flags(n.db),
                    "refusals": log.refusals(n, 50)})


@bp.get("/notices")
@needs("admin")
def notice_list():
    n = node()
    shown = [{k: c[k] for k in ("name", "shown", "roles", "kinds", "source", "last_ok",
                                "last_error", "failures")} for c in notices.channels(n)]
    return jsonify({"channels": shown, "recent": notices.recent(n, 50)})


@bp.post("/notices/channels")
@needs("admin")
def notice_channel_add():
    data = _body()
    channel = ops.add_channel(node(), g.user, {k: data.get(k) for k in (
        "name", "url", "roles", "kinds") if k in data})
    return jsonify({"channel": channel["name"]}), 201


@bp.post("/notices/channels/<name>/test")
@needs("admin")
def notice_channel_test(name):
    error = ops.test_channel(node(), g.user, name)
    return jsonify({"channel": name, "sent": error is None, "error": error})


@bp.post("/notices/channels/<name>/remove")
@needs("admin")
def notice_channel_remove(name):
    ops.remove_channel(node(), g.user, name)
    return jsonify({"channel": name, "removed": True})


@bp.post("/network/codes")
@needs("admin")
def network_code():
    data = request.get_json(silent=True) or {}
    code = ops.new_enroll_code(node(), data.get("hours") if isinstance(data, dict) else None)
    return jsonify({"code": code}), 201


@bp.post("/network/<node_id>/revoke")
@needs("admin")
def network_revoke(node_id):
    ops.revoke(node(), g.user, node_id, str(_body().get("reason", "")))
    return jsonify({"node": node_id, "revoked": True})


@bp.get("/users")
@needs("admin")
def user_list():
    return jsonify({"users": users.list_users(node())})


@bp.post("/users")
@needs("admin")
def user_add():
    data = _body()
    fields = {k: data.get(k) for k in ("username", "display_name", "role", "password")}
    return jsonify({"user": ops.add_user(node(), g.user, fields)}), 201


@bp.post("/users/<username>/disable")
@needs("admin")
def user_disable(username):
    return jsonify({"user": ops.set_user_disabled(node(), g.user, username, True)})


@bp.post("/users/<username>/enable")
@needs("admin")
def user_enable(username):
    return jsonify({"user": ops.set_user_disabled(node(), g.user, username, False)})


@bp.post("/password")
@needs()
def password():
    data = _body()
    ops.change_password(node(), g.user, {k: data.get(k) for k in ("old_password", "password")},
                        keep=session.get("sid"))
    return jsonify({"ok": True})


@bp.post("/users/<username>/sessions/end")
@needs("admin")
def user_sessions_end(username):
    return jsonify({"user": username, "ended": ops.end_sessions(node(), g.user, username)})


def _figures_row(row: dict) -> dict:
    return {"key": row["key"], "label": row["label"], "measures": row["m"],
            "last_year": row["last"], "rates": row["rates"], "last_year_rates": row["last_rates"],
            "meets_target": row["meets"], "change": row["change"], "made": row["made"]}


@bp.get("/figures")
@needs(*dashboard.READERS)
def figures():
    # the supervision list's most overdue first, ``limit`` of them (a city's runs to 100,000
    # cases, 27 MB): the whole list is /figures/supervision.csv
    shown = paging.limit(request.args.get("limit", paging.PAGE))
    v = dashboard.view(node(), request.args, shown)
    p = v["period"]
    return jsonify({
        "node": node().id, "made_at": v["made_at"],
        "period": {"kind": p.kind, "start": p.start.isoformat(), "end": p.end.isoformat()},
        "last_year": {"start": v["last_period"].start.isoformat(),
                      "end": v["last_period"].end.isoformat()},
        "formulas": v["formulas"], "total": _figures_row(v["total"]),
        **{k: [_figures_row(r) for r in v[k]] for k in ("units", "categories", "channels",
                                                        "trend")},
        "supervision": v["supervision"], "supervision_total": v["supervision_total"]})


@bp.get("/figures/cases")
@needs(*dashboard.READERS)
def figures_cases():
    d = dashboard.drill(node(), request.args)
    p = d["period"]
    records = ([_case_row(c) for c in d["records"]] if d["kind"] == "cases"
               else [{k: w[k] for k in ("id", "origin_node", "status", "category",
                                        "risk_level", "raised_at")} for w in d["records"]])
    return jsonify({"measure": d["measure"], "kind": d["kind"], "total": d["total"],
                    "held_below": d["below"], "records": records,
                    "supervision": d["supervision"],
                    "period": {"kind": p.kind, "start": p.start.isoformat(),
                               "end": p.end.isoformat()},
                    "unit": d["unit"], "category": d["category"], "channel": d["channel"]})


@bp.get("/oversight")
@needs()
def oversight_list():
    n = node()
    return jsonify({"asked_here": ops.from_above(n)["requests"],
                    "asked_by_us": oversight.listing(n, requester=n.id)})


@bp.post("/oversight")
@needs("handler", "leader")
def oversight_request():
    return jsonify(ops.request_oversight(node(), g.user, _body())), 201


@bp.post("/oversight/<request_id>/answer")
@needs("handler", "leader")
def oversight_answer(request_id):
    return jsonify(ops.answer_oversight(node(), g.user, request_id, _body()))


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(url_for("api.openapi", _external=True)))


# -- the OpenAPI document ---------------------------------------------------------

ERROR = {"$ref": "#/components/responses/Error"}
# the routes of other API blueprints (node/web/api_office.py), which add them when imported
EXTRA_PATHS: dict[str, dict] = {}
JSON_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}


_PERIOD = ("period", "at", "from", "to")


def _op(summary: str, *, body: bool = False, params=(), status="200", public=False,
        query=(), headers=()) -> dict:
    op = {"summary": summary, "responses": {status: {"description": "OK", "content": {
        "application/json": {"schema": {"type": "object"}}}}, "default": ERROR}}
    if body:
        op["requestBody"] = JSON_BODY
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True,
                             "schema": {"type": "string"}} for p in params]
    if query:
        op.setdefault("parameters", []).extend(
            {"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
            for q in query)
    if headers:
        op.setdefault("parameters", []).extend(
            {"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
            for h in headers)
    if public:
        op["security"] = []
    return op


def openapi_document(url: str) -> dict:
    case, action, warning, peer = ("case_id",), ("case_id", "action"), ("warning_id",), (
        "node_id",)
    paths = {
        "/api/login": {"post": _op("Log in; answers the CSRF token for later POSTs",
                                   body=True, public=True)},
        "/api/logout": {"post": _op("Log out")},
        "/api/me": {"get": _op("The logged-in user and this node")},
        "/api/cases": {"get": _op("Cases of this unit, newest first, a page at a time "
                                  "(filters: state, due=soon|overdue, category, origin, since, "
                                  "until; limit (50, at most 500) and after=the answer's "
                                  "next); with the total"),
                       "post": _op("Register a case (登记); sent again with the same "
                                   "Idempotency-Key header (16 to 64 letters, digits or "
                                   "hyphens), written once", body=True, status="201",
                                   headers=("Idempotency-Key",))},
        "/api/cases/{case_id}": {"get": _op("A case: masked petitioners, orders, timeline, "
                                            "allowed actions", params=case)},
        "/api/cases/{case_id}/unmask": {"post": _op("Show the petitioners unmasked (logged)",
                                                    params=case)},
        "/api/cases/{case_id}/documents/{kind}/{n}": {"get": _op(
            "A formal document (受理告知书, 处理意见书...) made from its signed event; kind: "
            "acceptance, not_accepted, decision, review, recheck; n: 1 for the first",
            params=("case_id", "kind", "n"))},
        "/api/cases/{case_id}/actions/{action}": {"post": _op(
            "Take an action on a case; fields as in `siji case act`", body=True,
            params=action)},
        "/api/warnings": {"get": _op("Early warnings of this unit, newest first, a page at a "
                                     "time (filters: status, level, origin; limit, after); "
                                     "with the total"),
                          "post": _op("Raise an early warning (上报预警); sent again "
                                      "with the same Idempotency-Key header, written once",
                                      body=True, status="201",
                                      headers=("Idempotency-Key",))},
        "/api/warnings/{warning_id}": {"get": _op("A warning with its same-day chain",
                                                  params=warning)},
        "/api/warnings/{warning_id}/actions/{action}": {"post": _op(
            "Acknowledge, handle, defuse, escalate a warning", body=True,
            params=("warning_id", "action"))},
        "/api/inbox": {"get": _op("What needs action at an office")},
        "/api/awaiting": {"get": _op("What awaits the user: counts by kind and the newest "
                                     "items, for the title, the menu and live updates")},
        "/api/from-above": {"get": _op("Referrals, urges and supervision orders from above")},
        "/api/sync": {"get": _op("Last synced, events waiting, bytes sent of bytes owed"),
                      "post": _op("Sync with the parent now")},
        "/api/network": {"get": _op("Children, fingerprints, links, enrollment codes, flags and "
                                     "the newest refusals (admin)")},
        "/api/notices": {"get": _op("Notice channels (addresses masked) and recent notices "
                                    "(admin)")},
        "/api/notices/channels": {"post": _op("Add a channel: name, url, roles, kinds (admin)",
                                              body=True, status="201")},
        "/api/notices/channels/{name}/test": {"post": _op("Send a test through a channel now "
                                                          "(admin)", params=("name",))},
        "/api/notices/channels/{name}/remove": {"post": _op("Remove a channel added here "
                                                            "(admin)", params=("name",))},
        "/api/network/codes": {"post": _op("Make a one-time enrollment code (admin)",
                                           status="201")},
        "/api/network/{node_id}/revoke": {"post": _op("Revoke a child node (admin)", body=True,
                                                      params=peer)},
        "/api/users": {"get": _op("Accounts on this node (admin)"),
                       "post": _op("Add an account: username, display_name, role, password "
                                   "(admin)", body=True, status="201")},
        "/api/users/{username}/disable": {"post": _op(
            "Disable an account; its sessions end at once (admin)", params=("username",))},
        "/api/users/{username}/enable": {"post": _op("Enable an account again (admin)",
                                                     params=("username",))},
        "/api/users/{username}/sessions/end": {"post": _op(
            "End every session of an account (admin)", params=("username",))},
        "/api/password": {"post": _op("Change one's own password: old_password, password; "
                                      "one's other sessions end", body=True)},
        "/api/figures": {"get": _op(
            "Figures of this node's subtree for a period (period=day|week|month|quarter|year "
            "and at=YYYY-MM-DD, or from and to): total, by unit, category, channel and month, "
            "each with the same period last year, the change and the rates (docs/metrics.md);"
            " the supervision list of overdue cases below, the most overdue first: limit of "
            "them (default 50, at most 500) and supervision_total; the whole list is "
            "/figures/supervision.csv", query=(*_PERIOD, "limit"))},
        "/api/figures/cases": {"get": _op(
            "Drill-down: the records behind one number that this node may see (measure, unit, "
            "category, channel, and the period as for /api/figures), how many more are held "
            "below, and for overdue the supervision list", query=(*_PERIOD, "measure", "unit",
                                                                "category", "channel"))},
        "/api/oversight": {
            "get": _op("Supervision requests (督办请求) addressed here and made here"),
            "post": _op("Ask the unit above an overdue case's holder (from the supervision "
                        "list) to urge it or issue a 督办单: case, action=urge|supervise, "
                        "message, deadline", body=True, status="201")},
        "/api/oversight/{request_id}/answer": {"post": _op(
            "Answer a supervision request addressed here: outcome=urged|ordered|noted, note",
            body=True, params=("request_id",))},
        "/api/openapi.json": {"get": _op("This document", public=True)},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "siji 四级网 node API", "version": __version__,
                 "description": "Every request but login needs the session cookie; every "
                                "POST also the X-CSRFToken header."},
        "servers": [{"url": url.rsplit("/api/", 1)[0]}],
        "paths": {**paths, **EXTRA_PATHS},
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "siji-<node id>"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "object", "required": ["code", "message", "params"],
                          "properties": {"code": {"type": "string"},
                                         "message": {"type": "string"},
                                         "params": {"type": "object"}}}}}},
            "responses": {"Error": {"description": "Any refusal, in one shape", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
        "security": [{"session": [], "csrf": []}],
        "x-vocabularies": {"case_actions": sorted(set(cases.RULES) - {"register"}),
                           "measures": list(metrics.MEASURES), "rates": list(metrics.RATES),
                           "periods": list(periods.KINDS),
                           "warning_actions": sorted(set(warnings.RULES) - {"raise"})},
    }

