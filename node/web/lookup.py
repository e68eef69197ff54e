"""登记回执 and the public lookup page: the receipt a petitioner takes home (查询码 as text
and QR code), and the page where, with the code and the last four digits of their phone,
they see their matter's state and next deadline, and nothing else (throttled)."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, g, render_template, request

from node import enroll, i18n, pacing, receipts, store
from node.errors import N_, NodeError
from node.web import access, ops
from node.web.auth import needs, node
from node.web.network import qr_svg

bp = Blueprint("lookup", __name__)


def base_url(n) -> str:
    return n.settings["PUBLIC_URL"] or request.host_url


def receipt(n, user: dict, case_id: str) -> dict:
    case = access.get_case(n, case_id)
    data = receipts.receipt(n, case["id"])
    data["lookup"] = receipts.lookup_text(base_url(n), data["query_code"])
    data["summary"] = ops.readable(data["summary"], access.masked(n, user, case))
    return data


class Throttled(receipts.LookupThrottled):
    """Too many lookups from this address in a minute."""


def ask(n, code: str, last4: str) -> dict:
    """The public lookup, throttled per address (a minute's requests, and wrong answers)."""
    limiter = current_app.extensions.get("siji.lookup_limiter")
    if limiter is None:
        limiter = current_app.extensions["siji.lookup_limiter"] = pacing.RateLimiter(
            n.settings["LOGIN_REQUESTS_PER_MINUTE"])
    address = enroll.client_key(request.remote_addr)
    if limiter.wait(address, time.monotonic()):
        raise Throttled(N_("too many lookups from this address; try again in a minute"))
    with store.write(n.db):  # a wrong answer is counted even though it is refused
        found = receipts.lookup(n, code, last4, address)
    if found is None:
        raise receipts.not_found()
    return found


@bp.get("/cases/<case_id>/receipt")
@needs()
def receipt_page(case_id):
    n = node()
    data = receipt(n, g.user, case_id)
    return render_template("receipt.html", r=data, qr=qr_svg(data["lookup"]))


@bp.route("/lookup", methods=["GET", "POST"])
def page():
    n = node()
    answer, error, status = None, None, 200
    if request.method == "POST":
        try:
            answer = ask(n, request.form.get("code", ""), request.form.get("phone", ""))
        except NodeError as e:
            error, status = i18n.message(e, g.lang), e.http_status
    return render_template("lookup.html", answer=answer, error=error,
                           code=request.values.get("code", "")), status
