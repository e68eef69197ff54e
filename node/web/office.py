"""The area and town office: the inbox, case and warning pages, actions, printable forms.

A case page shows the case, its petitioners (masked above the holding
tier), supervision orders, the timeline of every event with its signature
checked, and one small form for each action ``cases.allowed_actions``
gives this user now: nothing else is offered, and the domain checks again.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from node import cases, documents, i18n, warnings
from node.errors import N_, NodeError, NotFound
from node.web import access, export, forms, lists, ops
from node.web.auth import _safe_next, needs, node
from node.web.liaison import say

bp = Blueprint("office", __name__)
OFFICE = ("handler", "leader")


@bp.get("/inbox")
@needs(*OFFICE, tiers=("area", "town", "city"))
def inbox():
    return render_template("inbox.html", box=ops.inbox(node()), names=ops.node_names(node()))


@bp.get("/cases")
@needs()
def case_list():
    n = node()
    chosen = lists.filters(lists.CASE_FILTERS)
    after, limit = lists.page_args()
    rows, following = access.case_page(n, after, limit, **chosen)
    return render_template("cases.html", rows=rows, total=access.case_count(n, **chosen),
                           chosen=chosen, **lists.links(following, after),
                           states=cases.STATES, units=ops.node_names(n))


def _unmasked(case_id: str) -> bool:
    return case_id in session.get("unmasked", [])


def _case_page(case_id: str, refusal=None, failed=None, form=None, status=200):
    n = node()
    detail = ops.case_detail(n, g.user, case_id, unmasked=_unmasked(case_id))
    children = [c for c in ops.children(n) if c["status"] == "active"]
    detail["actions"] = [a for a in detail["actions"] if a != "attach"]  # its own page
    fields = {a: forms.action_fields(a) for a in detail["actions"]}
    return render_template("case.html", **detail, fields=fields, children=children,
                           refusal=refusal, failed=failed, form=form or {}, forms=forms,
                           suggested=cases.suggested(detail["case"], detail["actions"]),
                           parent_id=n.settings["PARENT_ID"]), status


@bp.get("/cases.<fmt>")
@needs()
def case_list_export(fmt):
    """The case list (with its filters) as CSV or Excel: numbers, dates, states, no person."""
    n = node()
    export.check_format(fmt)
    rows = access.visible_cases(n, **lists.filters(lists.CASE_FILTERS))
    names = ops.node_names(n)
    t = lambda msgid: i18n.translate(msgid, g.lang)  # noqa: E731
    headers = [t(x) for x in (N_("Case number"), N_("Registered"), N_("Category"),
                              N_("Channel"), N_("State"), N_("Holding unit"), N_("Deadline"),
                              N_("Days overdue"))]
    table = ([c["id"], c["registered_on"], i18n.label("category", c["category"], g.lang),
              i18n.label("channel", c["channel"], g.lang), i18n.label("state", c["state"], g.lang),
              names.get(c["holder"], c["holder"]), c["due_on"], c["days_overdue"]]
             for c in rows)  # read and sent a page at a time (web/export.py)
    return export.response(fmt, f"{n.id}-cases", t(N_("Cases")), [
        (t(N_("Unit")), n.settings["NODE_NAME"]), (t(N_("Made at")), n.now())], headers, table)


@bp.get("/warnings.<fmt>")
@needs()
def warning_list_export(fmt):
    n = node()
    export.check_format(fmt)
    names = ops.node_names(n)
    t = lambda msgid: i18n.translate(msgid, g.lang)  # noqa: E731
    headers = [t(x) for x in (N_("Warning"), N_("Raised"), N_("Category"), N_("Risk level"),
                              N_("Status"), N_("Unit"))]
    table = ([w["id"], w["raised_at"], i18n.label("category", w["category"], g.lang),
              i18n.label("level", w["risk_level"], g.lang),
              i18n.label("state", w["status"], g.lang), names.get(w["origin_node"],
                                                                  w["origin_node"])]
             for w in access.visible_warnings(n, **lists.filters(lists.WARNING_FILTERS)))
    return export.response(fmt, f"{n.id}-warnings", t(N_("Warnings")), [
        (t(N_("Unit")), n.settings["NODE_NAME"]), (t(N_("Made at")), n.now())], headers, table)


@bp.get("/cases/<case_id>")
@needs()
def case_page(case_id):
    return _case_page(case_id)


@bp.post("/cases/<case_id>/act/<action>")
@needs()
def case_act(case_id, action):
    if action not in cases.RULES or action == "register":
        raise NotFound(N_("no such page"))
    try:
        done = ops.act_case(node(), g.user, case_id, action,
                            forms.action_values(action, request.form))
    except NodeError as e:
        if isinstance(e, NotFound):
            raise
        names = [f["name"] for f in forms.action_fields(action)]
        return _case_page(case_id, refusal=forms.refusal(e, g.lang, names, action + "-"),
                          failed=action, form=request.form, status=e.http_status)
    _say_where(done, action)
    back = _safe_next(request.form.get("next"))
    return redirect(back or url_for("office.case_page", case_id=case_id), 303)


def _say_where(done: dict, action: str) -> None:
    """What happened and where the case is now: who holds it, in what state, and the next
    deadline with what it is for ("已上报 … 现由青水镇办理（已登记）")."""
    holder = ops.node_names(node()).get(done["holder"], done["holder"])
    if done["handover"] == "pending":
        say(N_("%(action)s: done. %(id)s now waits for %(unit)s to sign for it (%(state)s)."),
            action=action, id=done["id"], unit=holder, state=done["state"])
    else:
        say(N_("%(action)s: done. %(id)s is now held by %(unit)s (%(state)s)."),
            action=action, id=done["id"], unit=holder, state=done["state"])
    if done["due_on"]:
        say(N_("Next deadline: %(due_kind)s, %(date)s."), due_kind=done["due_kind"],
            date=done["due_on"])


@bp.post("/cases/<case_id>/unmask")
@needs()
def unmask(case_id):
    ops.unmask(node(), g.user, case_id)
    shown = [c for c in session.get("unmasked", []) if c != case_id][-access.MAX_UNMASKED + 1:]
    session["unmasked"] = [*shown, case_id]
    return redirect(url_for("office.case_page", case_id=case_id), 303)


@bp.get("/cases/<case_id>/orders/<order_id>")
@needs()
def order_print(case_id, order_id):
    n = node()
    case = ops.readable_case(n, g.user, access.get_case(n, case_id))
    order = next((o for o in cases.orders(n, case_id) if o["id"] == order_id), None)
    if order is None:
        raise NotFound(N_("no supervision order %(id)s on this case"), id=order_id)
    return render_template("order_print.html", case=case, order=order,
                           names=ops.node_names(n))


@bp.get("/cases/<case_id>/report")
@needs()
def report_print(case_id):
    n = node()
    case = ops.readable_case(n, g.user, access.get_case(n, case_id))
    report = ops.closing_report(n, case_id)
    if report is None:
        raise NotFound(N_("case %(id)s has no closing report yet"), id=case_id)
    return render_template("report_print.html", case=case, report=report,
                           names=ops.node_names(n))


@bp.get("/cases/<case_id>/documents/<kind>/<int:n>")
@needs()
def document_print(case_id, kind, n):
    """A formal document (受理告知书, 处理意见书...) on A4, made from its signed event."""
    n_ = node()
    if kind not in documents.KINDS:
        raise NotFound(N_("no such page"))
    case = ops.readable_case(n_, g.user, access.get_case(n_, case_id))
    return render_template("document_print.html", case=case,
                           doc=ops.case_document(n_, g.user, case_id, kind, n, g.lang))


@bp.get("/warnings")
@needs()
def warning_list():
    n = node()
    chosen = lists.filters(lists.WARNING_FILTERS)
    after, limit = lists.page_args()
    rows, following = access.warning_page(n, after, limit, **chosen)
    return render_template("warnings.html", rows=rows, total=access.warning_count(n, **chosen),
                           chosen=chosen, **lists.links(following, after),
                           levels=warnings.LEVELS, statuses=warnings.STATUSES)


def _warning_page(warning_id, refusal=None, failed=None, form=None, status=200):
    detail = ops.warning_detail(node(), g.user, warning_id)
    fields = {a: forms.warning_action_fields(a) for a in detail["actions"]}
    return render_template("warning.html", **detail, fields=fields, refusal=refusal,
                           failed=failed, form=form or {}, levels=warnings.LEVELS,
                           sources=warnings.SOURCES,
                           destinations=warnings.DESTINATIONS), status


@bp.get("/warnings/<warning_id>")
@needs()
def warning_page(warning_id):
    return _warning_page(warning_id)


@bp.post("/warnings/<warning_id>/act/<action>")
@needs()
def warning_act(warning_id, action):
    if action not in warnings.RULES or action == "raise":
        raise NotFound(N_("no such page"))
    names = [f["name"] for f in forms.warning_action_fields(action)]
    try:
        done = ops.act_warning(node(), g.user, warning_id, action,
                               forms.posted(request.form, names))
    except NodeError as e:
        if isinstance(e, NotFound):
            raise
        return _warning_page(warning_id, refusal=forms.refusal(e, g.lang, names, action + "-"),
                             failed=action, form=request.form, status=e.http_status)
    say(N_("%(action)s: done. Warning %(id)s is now %(state)s."), action=action, id=warning_id,
        state=done["status"])
    back = _safe_next(request.form.get("next"))
    return redirect(back or url_for("office.warning_page", warning_id=warning_id), 303)
