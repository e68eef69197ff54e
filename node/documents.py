"""Formal documents (文书) of a case, each made from the signed event it records.

The regulation has an office tell the petitioner in writing of its decisions:
受理告知书 and 不予受理告知书 (不再受理告知书) (Art. 23), 处理意见书 (答复意见书,
Art. 32-33), 复查意见书 (Art. 35), 复核意见书 (Art. 36). Each document here is
read from the one event that records the decision, with the office that
signed it, the day, the text its body holds, and the case's summary as the
events before it left it: so a printed document always matches the record,
and shows the event and whether its signature holds. The number is the
case's number with the document's code and the decision's place in the
case's history (Z-qingshui-2026-0001-CL1: the first 处理意见书 of that case);
every node that has the events prints the same document. Pages print them
on A4 with the office's name and a seal area (``document_print.html``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from node import deadlines, disclosure, events, i18n, log, trust
from node.cases import BY_TYPE, FoldContext
from node.errors import N_, NotFound


@dataclass(frozen=True)
class Kind:
    code: str          # in the document's number
    event: str         # the event type it records
    title: tuple[str, str]  # (zh, en)


KINDS = {
    "acceptance": Kind("SL", "case.accepted", ("受理告知书", "Notice of acceptance")),
    "not_accepted": Kind("BSL", "case.not_accepted",
                         ("不予受理告知书", "Notice of non-acceptance")),
    "decision": Kind("CL", "case.replied", ("处理意见书", "Decision on the petition")),
    "review": Kind("FC", "case.reviewed", ("复查意见书", "Review decision")),
    "recheck": Kind("FH", "case.closed", ("复核意见书", "Re-review decision")),
}
NO_LONGER_TITLE = ("不再受理告知书", "Notice that the matter is no longer accepted")
i18n.add_labels("document", {k: v.title for k, v in KINDS.items()})


def _recorded(ev) -> bool:
    """Whether the event is the decision its kind records (a closing report records a
    re-review only when it carries the re-review's answer)."""
    return ev.type != "case.closed" or bool(ev.body.get("answer"))


def available(node, case_id: str) -> list[dict]:
    """The documents of a case: kind, title and number, in the order they were made."""
    out, counts = [], {}
    for ev in log.subject_events(node.db, case_id):
        for kind, spec in KINDS.items():
            if ev.type == spec.event and _recorded(ev):
                counts[kind] = counts.get(kind, 0) + 1
                out.append({"kind": kind, "n": counts[kind], "event": ev.id,
                            "number": f"{case_id}-{spec.code}{counts[kind]}"})
    return out


def document(node, case_id: str, kind: str, n: int, lang: str, text=disclosure.shown) -> dict:
    """The ``n``-th document of ``kind`` of a case, in ``lang``: its title, number, office,
    date, addressees, paragraphs, and the event it is made from. ``text`` shows a free text
    as the reader may see it (masked or not)."""
    found = next((d for d in available(node, case_id) if d["kind"] == kind and d["n"] == n),
                 None)
    if found is None:
        raise NotFound(N_("case %(id)s has no such document"), id=case_id)
    evs = log.subject_events(node.db, case_id)
    ev = next(e for e in evs if e.id == found["event"])
    before = evs[:evs.index(ev)]
    registered = before[0].revealed
    summary = registered["summary"]
    for e in before:  # a correction before the decision changes what it was about
        if e.type == "case.corrected" and "summary" in e.revealed:
            summary = e.revealed["summary"]
    body = ev.revealed
    ctx = FoldContext.of(node)
    on = ctx.local_date(ctx.received.get(ev.id, ev.ts))
    names = trust.names(node.db)
    row = node.db.conn.execute("SELECT sign_pub FROM nodes WHERE node_id = ?",
                               (ev.origin,)).fetchone()
    verified = bool(row) and events.verify(ev, bytes(row[0]))
    title = KINDS[kind].title
    if kind == "not_accepted" and body.get("ground") == "no_longer":
        title = NO_LONGER_TITLE
    facts = {"date": i18n_date(_registered_on(ctx, before[0]), lang), "summary": text(summary)}

    def say(msgid: str, **params) -> str:
        return i18n.translate(msgid, lang, **params)

    def until(key: str, start: date) -> str:
        due = deadlines.count(ctx.calendar, ctx.limits, key, start)
        shown = i18n_date(due.on, lang)
        return shown + (f"（{say(deadlines.PROVISIONAL)}）" if due.provisional else "")

    if kind == "acceptance":
        paragraphs = [say(N_("Your petition of %(date)s (%(summary)s) is accepted under "
                             "Art. 23 of the Regulation on Petition Work. It will be settled "
                             "within %(days)s days of acceptance, by %(due)s; if the limit has "
                             "to be extended, you will be told why."), **facts,
                          days=ctx.limits["settle"], due=until("settle", on))]
    elif kind == "not_accepted":
        paragraphs = [say(N_("Your petition of %(date)s (%(summary)s) is not accepted under "
                             "Art. 23 of the Regulation on Petition Work, for this reason: "
                             "%(reason)s"), **facts, reason=text(body["reason"]))]
        if body.get("ground") == "no_longer":
            paragraphs.append(say(N_("The matter was concluded by a re-review: a petition on "
                                     "the same facts and grounds is no longer accepted "
                                     "(Art. 36).")))
    elif kind == "decision":
        delivered = date.fromisoformat(body.get("delivered_on") or on.isoformat())
        paragraphs = [
            say(N_("Having looked into your petition of %(date)s (%(summary)s), this office "
                   "decides: %(decision)s."), **facts, decision=body["decision"]),
            text(body["reply"]),
            say(N_("If you do not accept this decision, you may ask the organ above this "
                   "office for a review (复查) within 30 days of receiving it, by %(until)s "
                   "(Art. 35)."), until=until("review_request", delivered))]
    elif kind == "review":
        paragraphs = [
            say(N_("On your request for a review of the decision on your petition of "
                   "%(date)s (%(summary)s), this office decides: %(decision)s."), **facts,
                decision=body["decision"]),
            text(body["answer"]),
            say(N_("If you do not accept this review, you may ask the organ above this office "
                   "for a re-review (复核) within 30 days of receiving it, by %(until)s "
                   "(Art. 36)."), until=until("recheck_request", on))]
    else:  # recheck
        paragraphs = [
            say(N_("On your request for a re-review of your petition of %(date)s "
                   "(%(summary)s), this office's re-review answer is:"), **facts),
            text(body["answer"]),
            say(N_("The re-review concludes the matter: a petition on the same facts and "
                   "grounds will not be accepted again (Art. 36)."))]
    return {"kind": kind, "title": title[0 if lang == "zh" else 1], "number": found["number"],
            "office": names.get(ev.origin, ev.origin), "office_id": ev.origin,
            "date": i18n_date(on, lang), "paragraphs": paragraphs,
            "petitioners": [p["name"] for p in registered["petitioners"]
                            if isinstance(p.get("name"), str)],
            "event": ev.id, "actor": ev.actor, "ts": ev.ts, "verified": verified,
            "action": BY_TYPE[ev.type].action}


def _registered_on(ctx, registration) -> date:
    return ctx.local_date(ctx.received.get(registration.id, registration.ts))


def i18n_date(d: date, lang: str) -> str:
    """A date as a document writes it: 2026年12月7日, or 2026-12-07."""
    return f"{d.year}年{d.month}月{d.day}日" if lang == "zh" else d.isoformat()

