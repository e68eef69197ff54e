"""The liaison's pages (信息员), made for a 360-pixel phone and no JavaScript.

Register a case or an early warning, see this unit's cases with their
deadlines, see what came down from above and sign for it, and sync now.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from node import cases, i18n, warnings
from node.errors import N_, NodeError
from node.sync import status as sync_status
from node.web import access, forms, ops
from node.web import uploads as files
from node.web.auth import _safe_next, needs, node

bp = Blueprint("liaison", __name__)
WORKERS = cases.WORKERS


def say(msgid: str, category: str = "ok", **params) -> None:
    flash(i18n.translate(msgid, g.lang, **params), category)


@bp.route("/cases/new", methods=["GET", "POST"])
@needs(*WORKERS)
def register():
    refused, form, numbers, kept = None, request.form, [], []
    if request.method == "POST":
        fields = forms.register_values(request.form)
        try:  # photos from the phone's camera, kept by their content until the case exists
            kept = files.kept_from(node(), request)
        except NodeError as e:
            refused = forms.refusal(e, g.lang, forms.REGISTER_INPUTS)
        choice = request.form.get("numbers")
        numbers = [] if choice in ("move", "keep") else forms.numbers_in_text(fields)
        if choice == "move":
            fields = forms.move_numbers(fields)
        if not numbers and not refused:
            try:
                done = ops.register_case(node(), g.user, fields, request.form.get("draft_key"))
                files.attach_kept(node(), g.user, done["id"], kept)
            except NodeError as e:
                refused = forms.refusal(e, g.lang, forms.REGISTER_INPUTS)
            else:
                say(N_("Registered %(id)s (query code %(code)s)"), id=done["id"],
                    code=done["query_code"])
                for m in done["repeats"]:  # the person registering is told at once
                    say(N_("This petitioner has case %(id)s at %(unit)s (%(date)s)"), "warn",
                        id=m["case"], unit=m["origin_name"], date=m["registered_on"])
                return redirect(url_for("office.case_page", case_id=done["id"]), 303)
    return render_template("register.html", refusal=refused, form=form, forms=forms,
                           numbers=numbers, categories=cases.CATEGORIES, kept=kept,
                           leaders=files.leaders(node()), kinds=cases.ATTACHMENT_KINDS,
                           channels=cases.CHANNELS, natures=cases.NATURES), (
        400 if refused else 200)


@bp.route("/warnings/new", methods=["GET", "POST"])
@needs(*WORKERS)
def new_warning():
    refused, form = None, request.form
    if request.method == "POST":
        try:
            done = ops.raise_warning(node(), g.user, forms.warning_values(request.form),
                                     request.form.get("draft_key"))
        except NodeError as e:
            refused = forms.refusal(e, g.lang, forms.WARNING_INPUTS)
        else:
            say(N_("Raised %(id)s, risk %(level)s (score %(score)s)"), id=done["id"],
                level=warnings.LEVELS[done["risk_level"]][0 if g.lang == "zh" else 1],
                score=done["risk_score"])
            return redirect(url_for("office.warning_page", warning_id=done["id"]), 303)
    return render_template("warning_new.html", refusal=refused, form=form, forms=forms,
                           categories=cases.CATEGORIES, sources=warnings.SOURCES,
                           destinations=warnings.DESTINATIONS), 400 if refused else 200


@bp.get("/mine")
@needs()
def mine():
    n = node()
    rows, _ = access.case_page(n, None, ops.SHORT, mine=n.id)
    warns, _ = access.warning_page(n, None, ops.SHORT, origin=n.id)
    return render_template("mine.html", rows=rows, total=access.case_count(n, mine=n.id),
                           warnings=warns, warning_total=access.warning_count(n, origin=n.id),
                           sync=sync_status.summary(n, every_link=False), above=ops.from_above(n))


@bp.get("/from-above")
@needs()
def from_above():
    return render_template("from_above.html", above=ops.from_above(node()),
                           may_sign="sign" in cases.RULES and g.user["role"] in WORKERS,
                           names=ops.node_names(node()))


@bp.post("/sync-now")
@needs()
def sync_now():
    try:
        done = ops.sync_now(node())
    except NodeError as e:
        flash(i18n.message(e, g.lang), "error")
        detail = getattr(e, "detail", "")
        if detail and g.user["role"] == "admin":  # the address and error: an admin's matter
            flash(detail, "detail")
    else:
        say(N_("Synced: sent %(sent)s, received %(received)s events"), **done)
    return redirect(_safe_next(request.form.get("next")) or url_for("liaison.mine"), 303)
