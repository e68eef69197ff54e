"""排查 pages: screening rounds (schedule, who has reported) and the register (登记造册):
entries, their history, and the register as .xlsx out and in."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from node import cases, i18n, rounds, store
from node.errors import N_, NodeError, NotFound
from node.web import access, forms, ops
from node.web.auth import needs, node
from node.web.liaison import say

bp = Blueprint("rounds", __name__)
WORKERS = cases.WORKERS
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def visible_round(n, round_id: str) -> dict:
    found = rounds.get(n, round_id)
    units = access.subtree(n)
    if found["origin_node"] not in units and n.id not in {u["unit"] for u in found["units"]} \
            and not ({u["unit"] for u in found["units"]} & units):
        raise NotFound(N_("no screening round %(id)s"), id=round_id)
    return found


def visible_entry(n, entry_id: str) -> dict:
    entry = rounds.get_entry(n, entry_id)
    if entry["origin_node"] not in access.subtree(n):
        raise NotFound(N_("no register entry %(id)s"), id=entry_id)
    return entry


def entry_people(n, user: dict, entry_id: str) -> list[dict]:
    """An entry's people as ``user`` may read them (an admin masked); a read is logged."""
    people = rounds.people_of(n, entry_id)
    if user["role"] == "admin":
        return [access.mask(p) for p in people]
    if people:
        with store.write(n.db):
            access.audit(n, user["username"], "read_identity", entry_id)
    return people


def schedule_round(n, user: dict, fields: dict) -> dict:
    with store.write(n.db):
        event = rounds.schedule(n, ops.actor(user), fields)
    return {"id": event.subject, "scope": event.body["scope"]}


def report_round(n, user: dict, round_id: str, fields: dict) -> dict:
    visible_round(n, round_id)
    with store.write(n.db):
        event = rounds.report(n, ops.actor(user), round_id, fields)
    return {"id": round_id, **event.body}


def entry_act(n, user: dict, entry_id: str, action: str, fields: dict) -> dict:
    visible_entry(n, entry_id)
    do = {"update": rounds.update, "resolve": rounds.resolve}.get(action)
    if do is None:
        raise NotFound(N_("no such page"))
    with store.write(n.db):
        event = do(n, ops.actor(user), entry_id, fields)
    return {"id": entry_id, "event": event.id, "status": rounds.get_entry(n, entry_id)["status"]}


def record_entry(n, user: dict, fields: dict) -> dict:
    with store.write(n.db):
        event = rounds.record(n, ops.actor(user), fields)
    return {"id": event.subject}


def register_rows(n, user: dict, below: bool, everything: bool = False) -> tuple[list, bool]:
    """The register as ``user`` may read it: (rows, masked). An admin reads it masked."""
    units = access.subtree(n) if below else {n.id}
    rows = rounds.register(n, units, None if everything else "open")
    masked = user["role"] == "admin"
    if masked:
        for r in rows:
            r["people"] = [access.mask(p) for p in r["people"]]
    elif any(r["people"] for r in rows):
        with store.write(n.db):
            access.audit(n, user["username"], "read_identity", "register")
    return rows, masked


def export_xlsx(n, user: dict, below: bool, lang: str) -> bytes:
    rows, masked = register_rows(n, user, below, everything=True)
    data = rounds.book.export(n, rows, lang, masked=masked)
    with store.write(n.db):
        access.audit(n, user["username"], "register_export", f"{len(rows)} entries")
    return data


def import_xlsx(n, user: dict, data: bytes, round_id: str | None) -> dict:
    with store.write(n.db):
        return rounds.book.import_rows(n, ops.actor(user), data, round_id or None)


SCHEDULE_FIELDS = ("title", "start", "end", "deadline", "focus", "note")
ENTRY_FIELDS = ("kind", "title", "category", "place", "risk", "responsible", "measures", "note",
                "round")


@bp.get("/rounds")
@needs()
def round_list():
    n = node()
    return render_template("rounds.html", rows=rounds.listing(n),
                           may_schedule=n.tier in rounds.SCHEDULING_TIERS
                           and g.user["role"] in cases.OFFICE,
                           below=[(u, ops.node_names(n).get(u, u)) for u in rounds.below(n)])


@bp.post("/rounds")
@needs(*cases.OFFICE)
def round_new():
    n = node()
    fields = forms.posted(request.form, SCHEDULE_FIELDS)
    fields["scope"] = request.form.getlist("scope")
    try:
        done = schedule_round(n, g.user, fields)
    except NodeError as e:
        return render_template("rounds.html", rows=rounds.listing(n), may_schedule=True,
                               below=[(u, ops.node_names(n).get(u, u)) for u in rounds.below(n)],
                               error=i18n.message(e, g.lang), form=request.form), e.http_status
    say(N_("Scheduled %(id)s for %(n)s units"), id=done["id"], n=len(done["scope"]))
    return redirect(url_for("rounds.round_page", round_id=done["id"]), 303)


@bp.get("/rounds/<round_id>")
@needs()
def round_page(round_id, error=None, status=200):
    n = node()
    found = visible_round(n, round_id)
    mine = next((u for u in found["units"] if u["unit"] == n.id), None)
    return render_template("round.html", r=found, mine=mine, names=ops.node_names(n),
                           error=error), status


@bp.post("/rounds/<round_id>/report")
@needs(*WORKERS)
def round_report(round_id):
    try:
        report_round(node(), g.user, round_id, forms.posted(request.form, ("note",)))
    except NodeError as e:
        if isinstance(e, NotFound):
            raise
        return round_page(round_id, error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Reported %(id)s done"), id=round_id)
    return redirect(url_for("rounds.round_page", round_id=round_id), 303)


def _book(error=None, form=None, status=200):
    n = node()
    below = request.args.get("below") == "1"
    rows, masked = register_rows(n, g.user, below)
    open_rounds = [r for r in rounds.listing(n) if r["mine_due"]]
    return render_template("register_book.html", rows=rows, masked=masked, below=below,
                           names=ops.node_names(n), error=error, form=form or {},
                           open_rounds=open_rounds, kinds=rounds.ENTRY_KINDS,
                           risks=rounds.RISKS), status


@bp.get("/register")
@needs()
def book():
    return _book()


@bp.post("/register")
@needs(*WORKERS)
def entry_new():
    fields = forms.posted(request.form, ENTRY_FIELDS)
    person = forms.posted(request.form, ("p_name", "p_id_number", "p_phone"))
    if person:
        fields["people"] = [{k[2:]: v for k, v in person.items()}]
    try:
        done = record_entry(node(), g.user, fields)
    except NodeError as e:
        return _book(error=i18n.message(e, g.lang), form=request.form, status=e.http_status)
    say(N_("Recorded %(id)s"), id=done["id"])
    return redirect(url_for("rounds.entry_page", entry_id=done["id"]), 303)


@bp.get("/register/export.xlsx")
@needs()
def export():
    data = export_xlsx(node(), g.user, request.args.get("below") == "1", g.lang)
    return Response(data, mimetype=XLSX, headers={
        "Content-Disposition": f"attachment; filename=register-{node().id}.xlsx"})


@bp.post("/register/import")
@needs(*WORKERS)
def import_book():
    upload = request.files.get("file")
    try:
        done = import_xlsx(node(), g.user, upload.read() if upload else b"",
                           request.form.get("round"))
    except NodeError as e:
        return _book(error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Imported: %(recorded)s new, %(updated)s updated, %(unchanged)s unchanged"), **done)
    return redirect(url_for("rounds.book"), 303)


@bp.get("/register/<entry_id>")
@needs()
def entry_page(entry_id, error=None, status=200):
    n = node()
    entry = visible_entry(n, entry_id)
    return render_template("entry.html", e=entry, people=entry_people(n, g.user, entry_id),
                           history=rounds.history(n, entry_id), names=ops.node_names(n),
                           may_act=entry["origin_node"] == n.id and entry["status"] == "open"
                           and g.user["role"] in WORKERS,
                           open_rounds=[r for r in rounds.listing(n) if r["mine_due"]],
                           risks=rounds.RISKS, error=error), status


@bp.post("/register/<entry_id>/<action>")
@needs(*WORKERS)
def entry_action(entry_id, action):
    names = ("round", "risk", "responsible", "measures", "note")
    try:
        entry_act(node(), g.user, entry_id, action, forms.posted(request.form, names))
    except NodeError as e:
        if isinstance(e, NotFound):
            raise
        return entry_page(entry_id, error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Updated %(id)s"), id=entry_id)
    return redirect(url_for("rounds.entry_page", entry_id=entry_id), 303)
