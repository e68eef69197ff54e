"""The JSON API of the office's own work (issue 21): rounds and the register, reception and
a leader's work, search, repeats, the receipt and the public lookup, attachments. The same
operations as the pages, through the same functions; ``PATHS`` goes into
/api/openapi.json."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from node import cases, rounds
from node.errors import N_, ValidationError
from node.web import attachments as files
from node.web import lists
from node.web import lookup as lookups
from node.web import reception as desk
from node.web import rounds as screening
from node.web import search as finding
from node.web.api import EXTRA_PATHS, _body, _op
from node.web.auth import needs, node

bp = Blueprint("api_office", __name__, url_prefix="/api")
ROW = ("id", "state", "category", "holder", "origin_node", "registered_on", "due_on",
       "due_kind", "days_overdue")


def _row(c: dict) -> dict:
    return {k: c.get(k) for k in ROW}


# -- rounds and the register ------------------------------------------------------------

@bp.get("/rounds")
@needs()
def round_list():
    return jsonify({"rounds": rounds.listing(node())})


@bp.post("/rounds")
@needs(*cases.OFFICE)
def round_new():
    return jsonify(screening.schedule_round(node(), g.user, _body())), 201


@bp.get("/rounds/<round_id>")
@needs()
def round_get(round_id):
    return jsonify(screening.visible_round(node(), round_id))


@bp.post("/rounds/<round_id>/report")
@needs(*cases.WORKERS)
def round_report(round_id):
    data = request.get_json(silent=True) or {}
    return jsonify(screening.report_round(node(), g.user, round_id, data))


@bp.get("/register")
@needs()
def register_list():
    rows, masked = screening.register_rows(node(), g.user, request.args.get("below") == "1",
                                           request.args.get("all") == "1")
    return jsonify({"entries": rows, "masked": masked})


@bp.post("/register")
@needs(*cases.WORKERS)
def register_add():
    return jsonify(screening.record_entry(node(), g.user, _body())), 201


@bp.get("/register/export.xlsx")
@needs()
def register_export():
    data = screening.export_xlsx(node(), g.user, request.args.get("below") == "1", g.lang)
    return Response(data, mimetype=screening.XLSX)


@bp.post("/register/import")
@needs(*cases.WORKERS)
def register_import():
    upload = request.files.get("file")
    data = upload.read() if upload else request.get_data()
    return jsonify(screening.import_xlsx(node(), g.user, data, request.args.get("round")))


@bp.get("/register/<entry_id>")
@needs()
def register_get(entry_id):
    n = node()
    entry = screening.visible_entry(n, entry_id)
    return jsonify({"entry": entry, "people": screening.entry_people(n, g.user, entry_id),
                    "history": rounds.history(n, entry_id)})


@bp.post("/register/<entry_id>/actions/<action>")
@needs(*cases.WORKERS)
def register_act(entry_id, action):
    return jsonify(screening.entry_act(node(), g.user, entry_id, action, _body()))


# -- reception and a leader's work ------------------------------------------------------

@bp.get("/reception")
@needs()
def reception_get():
    n = node()
    return jsonify({"days": desk.reception.days(n, int(request.args.get("months", 3))),
                    "log": [_row(c) | {"received_by": c["received_by"]}
                            for c in desk.reception.reception_log(n)]})


@bp.post("/reception/duty")
@needs("leader", "handler", "admin")
def reception_duty():
    return jsonify(desk.set_duty(node(), g.user, _body()))


@bp.get("/leader")
@needs("leader", "handler")
def leader():
    n = node()
    username = request.args.get("username") or g.user["username"]
    work = desk.reception.leader_work(n, username)
    return jsonify({**work, "lead_cases": [_row(c) for c in work["lead_cases"]]})


# -- search and repeats ------------------------------------------------------------------

@bp.get("/search")
@needs()
def search():
    found = finding.find(node(), g.user, request.args.get("q", ""))
    return jsonify({"cases": [_row(c) | {"sight": c["sight"]} for c in found]})


@bp.get("/repeats")
@needs("liaison", "handler", "leader")
def repeats_list():
    after, limit = lists.page_args()
    found, following = finding.pairs(node(), after, limit)
    return jsonify({"pairs": found, "next": following})


@bp.post("/repeats/link")
@needs("liaison", "handler", "leader")
def repeats_link():
    data = _body()
    return jsonify(finding.link(node(), g.user, str(data.get("case", "")),
                                str(data.get("of", "")), data.get("note")))


# -- the receipt and the public lookup ------------------------------------------------------

@bp.get("/cases/<case_id>/receipt")
@needs()
def receipt(case_id):
    return jsonify(lookups.receipt(node(), g.user, case_id))


@bp.post("/lookup")
def lookup():
    if not request.is_json:  # JSON only: a cross-site form cannot send it (CSRF exempt)
        raise ValidationError(N_("%(field)s: expected a JSON object"), field="body")
    data = _body()
    return jsonify(lookups.ask(node(), str(data.get("code", "")), str(data.get("phone", ""))))


# -- attachments -------------------------------------------------------------------------------

@bp.get("/cases/<case_id>/attachments")
@needs()
def attachment_list(case_id):
    return jsonify({"attachments": files.listing(node(), g.user, case_id)})


@bp.post("/cases/<case_id>/attachments")
@needs(*cases.WORKERS)
def attachment_add(case_id):
    upload = request.files.get("file")
    if upload is None:
        raise ValidationError(N_("%(field)s: choose a file"), field="file")
    return jsonify(files.add(node(), g.user, case_id, upload.read(),
                             request.form.get("kind") or "other", upload.filename)), 201


@bp.get("/cases/<case_id>/attachments/<sha>")
@needs()
def attachment_get(case_id, sha):
    return files.response(*files.read(node(), g.user, case_id, sha))


# -- the OpenAPI paths -------------------------------------------------------------------------

PATHS = {
    "/api/rounds": {"get": _op("Screening rounds (排查) here, with how many units reported"),
                    "post": _op("Schedule a round: title, start, end, deadline, scope, focus",
                                body=True, status="201")},
    "/api/rounds/{round_id}": {"get": _op("A round: each unit's report, who has not",
                                          params=("round_id",))},
    "/api/rounds/{round_id}/report": {"post": _op("Report the round done for this unit",
                                                  params=("round_id",))},
    "/api/register": {"get": _op("The register (登记造册): below=1 with the units below, "
                                 "all=1 with resolved entries"),
                      "post": _op("Record an entry: kind, title, category, risk, responsible, "
                                  "people, place, measures, note, round", body=True,
                                  status="201")},
    "/api/register/export.xlsx": {"get": _op("The register as an Excel workbook")},
    "/api/register/import": {"post": _op("Import an Excel register (file, or the body): all "
                                         "rows or none; ?round= marks them checked")},
    "/api/register/{entry_id}": {"get": _op("An entry, its people and history",
                                            params=("entry_id",))},
    "/api/register/{entry_id}/actions/{action}": {"post": _op(
        "update (round, risk, responsible, measures, note) or resolve (note)", body=True,
        params=("entry_id", "action"))},
    "/api/reception": {"get": _op("Reception days (领导接待日) with who is on duty, and the "
                                  "reception log")},
    "/api/reception/duty": {"post": _op("Put a leader on duty: date, leader, place",
                                        body=True)},
    "/api/leader": {"get": _op("A leader's reception days, appointments and 包案 cases with "
                               "figures (?username=)")},
    "/api/search": {"get": _op("Cases matching ?q= (name, ID number, phone, 查询码, number, "
                               "words) among those the user may see; logged")},
    "/api/repeats": {"get": _op("A page of the pairs of cases with a petitioner in common "
                                "(by digest), newest first (?after= the previous page's "
                                "next, ?limit=)")},
    "/api/repeats/link": {"post": _op("Link a case as a repeat of another: case, of, note",
                                      body=True)},
    "/api/cases/{case_id}/receipt": {"get": _op("The 登记回执: number, 查询码, lookup address",
                                                params=("case_id",))},
    "/api/lookup": {"post": _op("The public lookup: code, phone (last four digits) -> state "
                                "and next deadline; throttled", body=True, public=True)},
    "/api/cases/{case_id}/attachments": {
        "get": _op("A case's attachments", params=("case_id",)),
        "post": _op("Attach a file (multipart: file, kind)", params=("case_id",),
                    status="201")},
    "/api/cases/{case_id}/attachments/{sha}": {"get": _op("An attachment's bytes (logged)",
                                                          params=("case_id", "sha"))},
}
EXTRA_PATHS.update(PATHS)
