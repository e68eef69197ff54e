"""登记回执 and the public lookup: what a petitioner takes home, and what they may ask.

The receipt (``receipt``) names the office, the case number, the day, the category and
the 查询码 (also as a QR code on the printed page) with where to look it up. The lookup
(``lookup``) answers someone who gives a 查询码 and the last four digits of a phone
number recorded for one of the case's petitioners, with the case's state and its next
deadline, and nothing else. Guessing is throttled where it is answered: after
LOOKUP_MAX_FAILURES wrong answers for one code, or four times that from one address,
within LOOKUP_LOCK_MINUTES, that code or that address is refused for LOOKUP_LOCK_MINUTES
without being checked; the counts are kept in the database, so a restart does not reset
them. A wrong code and a wrong phone get the same answer.
"""

from __future__ import annotations

import re
from datetime import timedelta

from node import cases, trust
from node.clock import iso
from node.errors import N_, NodeError, NotFound, ValidationError
from node.settings import Setting, at_least_one, declare

declare(
    Setting("PUBLIC_URL", "", "The address at which petitioners reach this node's lookup page "
            "(/lookup), printed on the 登记回执 and in its QR code, e.g. "
            "https://xinfang.example.gov.cn; empty: the address the page was opened at.", str),
    Setting("LOOKUP_MAX_FAILURES", 5, "Wrong answers (查询码 and phone digits) for one "
            "query code within LOOKUP_LOCK_MINUTES before the public lookup refuses that code "
            "for LOOKUP_LOCK_MINUTES; one address may have four times as many.", int,
            at_least_one("LOOKUP_MAX_FAILURES")),
    Setting("LOOKUP_LOCK_MINUTES", 15, "Minutes for which wrong lookups count, and for which a "
            "code or address past LOOKUP_MAX_FAILURES is refused.", int,
            at_least_one("LOOKUP_LOCK_MINUTES")),
)
ADDRESS_FACTOR = 4
_CODE = re.compile(r"[2-9A-HJKMNP-Z]{8}")


class LookupThrottled(NodeError):
    """Too many wrong lookups for a code or from an address: refused for a while."""

    code = "throttled"
    http_status = 429


def receipt(node, case_id: str) -> dict:
    """What a 登记回执 prints."""
    case = cases.get(node, case_id)
    names = trust.names(node.db)
    return {"id": case["id"], "query_code": case["query_code"],
            "office": names.get(case["origin_node"], case["origin_node"]),
            "registered_on": case["registered_on"], "category": case["category"],
            "channel": case["channel"], "summary": case["summary"],
            "holder": names.get(case["holder"], case["holder"]), "due_on": case["due_on"],
            "due_kind": case["due_kind"], "due_provisional": case["due_provisional"]}


def lookup_text(base_url: str, code: str) -> str:
    """What the receipt's QR code holds: the lookup page with the code filled in."""
    return f"{base_url.rstrip('/')}/lookup?code={code}"


def _keys(node, code: str, address: str) -> list[tuple[str, int]]:
    limit = node.settings["LOOKUP_MAX_FAILURES"]
    return [(f"lookup-code:{code}", limit), (f"lookup-{address}", limit * ADDRESS_FACTOR)]


def _locked(node, keys) -> bool:
    now = node.now()
    return any(row[0] and row[0] > now for key, _ in keys for row in node.db.conn.execute(
        "SELECT locked_until FROM login_failures WHERE key = ?", (key,)))


def _fail(node, keys) -> None:
    lock = timedelta(minutes=node.settings["LOOKUP_LOCK_MINUTES"])
    now = node.clock()
    for key, limit in keys:
        row = node.db.conn.execute("SELECT failures, first_at FROM login_failures WHERE key = ?",
                                   (key,)).fetchone()
        failures, first = (row[0], row[1]) if row and row[1] >= iso(now - lock) else (0, iso(now))
        failures += 1
        node.db.conn.execute(
            "INSERT INTO login_failures (key, failures, first_at, locked_until) VALUES "
            "(?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, "
            "first_at = excluded.first_at, locked_until = excluded.locked_until",
            (key, failures, first, iso(now + lock) if failures >= limit else None))


def not_found() -> NotFound:
    """The one answer to a wrong code and to a wrong phone alike."""
    return NotFound(N_("no matter with this query code and phone number; check both and "
                       "try again, or ask the office that registered it"))


def lookup(node, code: str, last4: str, address: str) -> dict | None:
    """The state and next deadline of the case with this 查询码, if one of its petitioners'
    phones ends in ``last4``; None (the wrong answer counted) if not. ``address``: who asks
    (enroll.client_key), for throttling. The caller owns the transaction, commits it, and
    then answers None with ``not_found()``."""
    code = re.sub(r"[\s-]", "", str(code or "")).upper()[:16]
    last4 = str(last4 or "").strip()
    if not re.fullmatch(r"[0-9]{4}", last4):
        raise ValidationError(N_("%(field)s: the last four digits of the phone number"),
                              field="phone")
    keys = _keys(node, code, address)
    if _locked(node, keys):
        raise LookupThrottled(N_("too many wrong lookups; try again in %(n)s minutes"),
                              n=node.settings["LOOKUP_LOCK_MINUTES"])
    row = node.db.conn.execute("SELECT id FROM cases WHERE query_code = ?", (code,)).fetchone(
        ) if _CODE.fullmatch(code) else None
    phones = [r[0] for r in node.db.conn.execute(
        "SELECT phone FROM petitioners WHERE case_id = ? AND phone IS NOT NULL",
        (row[0],))] if row else []
    if not any(re.sub(r"\D", "", p).endswith(last4) for p in phones):
        _fail(node, keys)
        return None
    case = cases.get(node, row[0])
    return {"state": case["state"], "due_on": case["due_on"], "due_kind": case["due_kind"],
            "due_provisional": bool(case["due_provisional"])}
