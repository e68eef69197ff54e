"""The figures dashboard (统计): tables, charts, drill-down, exports and the monthly report.

Every tier has it; a village's shows its own figures, an area, a town or the
city its subtree's, by child unit. The numbers come from ``figures.facts``
(this node's own rows, counted now, and its children's newest reports) and
are reduced for a period (node/periods.py) beside the same period last
year; rates are node/metrics.py's formulas. A number links to the records
behind it that this node may see (``drill``); the supervision list names the
overdue cases below, from the reports, without anything of the petitioner.
The page, the API (``node.web.api``), the exports and the report all take
their numbers from ``view`` and ``drill``.
"""

from __future__ import annotations

import json
from datetime import date

from flask import Blueprint, g, redirect, render_template, request, url_for

from node import cases, figures, i18n, metrics, oversight, periods, trust, warnings
from node.errors import N_, ValidationError
from node.web import access, charts, export, ops
from node.web.auth import _safe_next, needs, node
from node.web.liaison import say

bp = Blueprint("figures", __name__)
READERS = ("liaison", "handler", "leader")
# the figures table's columns: counts, then rates
COUNTS = ("n", "people", "batches", "batch_people", "skip", "repeat", "overdue", "open",
          "warnings", "serious", "occurred", "to_province", "to_beijing")
TABLES = ("unit", "category", "channel", "trend", "supervision")
SHOWN = 100  # rows of a long list on a page (the most overdue first); exports have them all


def _label(kind: str, code: str) -> str:
    return i18n.label(kind, code, g.get("lang", "zh"))


def _vocab(vocabulary: dict, code: str) -> str:
    pair = vocabulary.get(code)
    return code if pair is None else pair[0 if g.get("lang", "zh") == "zh" else 1]


def _row(key: str, label: str, now: dict, last: dict, formulas: dict,
         made: str | None = None) -> dict:
    rates = metrics.rates(now, formulas)
    return {"key": key, "label": label, "m": now, "last": last, "rates": rates,
            "last_rates": metrics.rates(last, formulas),
            "meets": {r: metrics.meets(r, v, formulas) for r, v in rates.items()},
            "change": {m: metrics.change(now[m], last[m]) for m in ("n", "people", "batches",
                                                                    "batch_people")},
            "made": made}


def view(n, args, shown: int | None = None) -> dict:
    """Everything the dashboard shows for the period ``args`` asks for; of the supervision
    list the ``shown`` most overdue (None: all, for its export) and the count of all."""
    period = periods.parse(args, n.today())
    facts = figures.facts(n)
    formulas = metrics.formulas(n.settings)
    names = ops.node_names(n)
    zero = metrics.measures([], [])

    def table(by: str | None, keys: list[str], label) -> list[dict]:
        now, last = facts.sums(period, by), facts.sums(period.last_year(), by)
        keys = keys + sorted(k for k in set(now) | set(last) if k not in keys)
        rows = [_row(k, label(k), now.get(k, zero), last.get(k, zero), formulas,
                     facts.made.get(k) if by == "unit" else None) for k in keys]
        for row in rows:  # the query of the drill-down from each of its numbers
            row["drill"] = {**period.query(), **({by: row["key"]} if by else {})}
        return rows

    units = table("unit", [n.id, *sorted(k for k in facts.made if k != n.id)],
                  lambda k: names.get(k, k))
    present = facts.sums(period, "category") | facts.sums(period.last_year(), "category")
    by_category = table("category", [c for c in cases.CATEGORIES if c in present],
                        lambda k: _vocab(cases.CATEGORIES, k))
    present = facts.sums(period, "channel") | facts.sums(period.last_year(), "channel")
    by_channel = table("channel", [c for c in cases.CHANNELS if c in present],
                       lambda k: _vocab(cases.CHANNELS, k))
    total = table(None, [""], lambda k: names.get(n.id, n.id))[0]
    year = periods.around("year", period.end)
    months = [f"{year.start.year}-{m:02d}" for m in range(1, 13)]
    this_year = facts.sums(year, "month")
    last_year = facts.sums(year.last_year(), "month")
    overdue, overdue_total = supervision(n, limit=shown, rows=facts.overdue)  # (same count)
    trend = [_row(m, m, this_year.get(m, zero), last_year.get(f"{int(m[:4]) - 1}{m[4:]}",
                                                              zero), formulas)
             for m in months]
    return {"period": period, "last_period": period.last_year(), "total": total,
            "units": units, "categories": by_category, "channels": by_channel,
            "trend": trend, "formulas": formulas, "names": names,
            "made_at": facts.made_at, "supervision": overdue,
            "supervision_total": overdue_total}


def supervision(n, unit: str | None = None, category: str | None = None,
                limit: int | None = None, keep=None, rows=None) -> tuple[list[dict], int]:
    """The overdue cases below (figures.supervision, or ``rows`` of it) of ``unit`` and
    ``category`` (and ``keep(row)``), the ``limit`` most overdue (None: all), marked with
    whether this node has the case (then its page links it), its days overdue and this
    node's supervision request; and how many there are. A city's list runs to 100,000
    cases: only those shown are made into dicts and marked (it cost 0.28 s a page)."""
    listed = figures.supervision(n) if rows is None else rows
    if unit or category or keep:
        listed = [r for r in listed if not ((unit and r.unit != unit) or (
            category and r.category != category) or (keep and not keep(r)))]
    asked = {}  # the newest request of this node about each case
    for r in reversed(oversight.listing(n, requester=n.id)):
        asked[r["case_id"]] = r
    today = n.today()
    # (one from this node's rows is of its subtree: visible here, access.case_visible)
    return [{**row._asdict(), "request": asked.get(row.id),
             "days_overdue": (today - _date(row.due_on)).days}
            for row in (listed if limit is None else listed[:limit])], len(listed)


def _date(text: str) -> date:
    return date.fromisoformat(text)


def charts_of(v: dict) -> dict[str, str | None]:
    lang = g.get("lang", "zh")
    t = lambda msgid: i18n.translate(msgid, lang)  # noqa: E731
    year = v["trend"][0]["key"][:4]
    units = [r for r in v["units"] if r["m"]["n"] or r["m"]["overdue"] or r["m"]["warnings"]]
    return {
        "trend": charts.trend(t(N_("Petitions by month, this year and last")),
                              [r["key"][5:] for r in v["trend"]],
                              (year, [r["m"]["n"] for r in v["trend"]]),
                              (str(int(year) - 1), [r["last"]["n"] for r in v["trend"]])),
        "categories": charts.mix(t(N_("Petitions by category")),
                                 [(r["label"], r["m"]["n"]) for r in v["categories"]]),
        "units": charts.bars(t(N_("Petitions by unit")), [r["label"] for r in units],
                             [(t(N_("This period")), [r["m"]["n"] for r in units]),
                              (t(N_("Same period last year")),
                               [r["last"]["n"] for r in units])]),
        "overdue": charts.bars(t(N_("Overdue by unit")), [r["label"] for r in units],
                               [(_label("measure", "overdue"),
                                 [r["m"]["overdue"] for r in units])]),
        "warnings": charts.bars(t(N_("Warnings by risk")),
                                [_vocab(warnings.LEVELS, lv) for lv in
                                 ("general", "major", "serious")],
                                [(_label("measure", "warnings"),
                                  [v["total"]["m"][lv] for lv in
                                   ("general", "major", "serious")])]),
    }


# -- drill-down: from a number to the records behind it ---------------------------------

def drill(n, args) -> dict:
    """The records behind one number: this node's cases (warnings) of the subtree that the
    measure counts, in the period, of a unit, category and channel; how many more are
    counted below and held there; and, for overdue, those from the supervision list."""
    period = periods.parse(args, n.today())
    measure = args.get("measure") or "n"
    if measure not in metrics.MEASURES:
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="measure",
                              value=measure[:40])
    tree = trust.tree(n.db)
    unit = args.get("unit") or None
    if unit is not None and unit != n.id and unit not in figures.children(tree, n.id):
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="unit",
                              value=unit[:40])
    category = args.get("category") or None
    if category is not None:
        cases.code_of(cases.CATEGORIES, "category", category)
    channel = args.get("channel") or None
    if channel is not None:
        cases.code_of(cases.CHANNELS, "channel", channel)
    units = {n.id} if unit == n.id else figures.below(tree, unit or n.id)
    params = {"units": json.dumps(sorted(units)), "start": period.start.isoformat(),
              "end": period.end.isoformat(), "category": category, "channel": channel}
    visible = access.subtree(n)
    if measure in metrics.CASE_MEASURES:
        where = ("c.origin_node IN (SELECT value FROM json_each(:units)) AND c.registered_on "
                 "BETWEEN :start AND :end AND (:category IS NULL OR c.category = :category) "
                 "AND (:channel IS NULL OR c.channel = :channel)")
        found = [cases.get(n, i) for i in metrics.counted_by(n, measure, where, params)]
        records = [c for c in found if access.case_visible(n, c, visible)]
        kind = "cases"
    elif channel:  # a warning has no channel
        records, kind = [], "warnings"
    else:
        where = ("w.origin_node IN (SELECT value FROM json_each(:units)) AND "
                 "substr(w.raised_at, 1, 10) BETWEEN :start AND :end AND "
                 "(:category IS NULL OR w.category = :category)")
        records = [warnings.get(n, i) for i in metrics.counted_by(n, measure, where, params)]
        records = [w for w in records if access.warning_visible(n, w, visible)]
        kind = "warnings"
    total = figures.facts(n).sums(period, None, unit=unit, category=category,
                                  channel=channel).get("", {}).get(measure, 0)
    listed = supervision(n, unit=unit, category=category,  # (by cohort, too)
                         keep=lambda r: not r.here and r.month in period.months
                         )[0] if measure == "overdue" else []
    for c in records:
        if kind == "cases":
            c["days_overdue"] = max(0, (n.today() - _date(c["due_on"])).days) if c[
                "due_on"] else 0
    return {"period": period, "measure": measure, "unit": unit, "category": category,
            "channel": channel, "kind": kind, "records": records, "total": total,
            "below": max(0, total - len(records)), "supervision": listed,
            "names": ops.node_names(n)}


# -- pages ------------------------------------------------------------------------------

@bp.get("/figures")
@needs(*READERS)
def page():
    n = node()
    v = view(n, request.args, SHOWN)
    return render_template("figures.html", v=v, charts=charts_of(v), rates=metrics.RATES,
                           counts=COUNTS, args=request.args, kinds=periods.KINDS[:-1], shown=SHOWN,
                           levels=warnings.LEVELS)


@bp.get("/figures/cases")
@needs(*READERS)
def cases_page():
    d = drill(node(), request.args)
    return render_template("figures_cases.html", d=d, args=request.args, shown=SHOWN)


@bp.get("/figures/report")
@needs(*READERS)
def report():
    n = node()
    args = request.args if request.args.get("period") or request.args.get("from") else {
        **request.args, "period": "month"}
    v = view(n, args, shown=0)
    return render_template("figures_report.html", v=v, lines=report_lines(v),
                           charts=charts_of(v), rates=metrics.RATES)


def report_lines(v: dict) -> list[str]:
    """The year-on-year sentences of a bureau's report (月报/年报), in the user's language."""
    lang = g.get("lang", "zh")
    t = v["total"]
    m, c = t["m"], t["change"]["n"]

    def pct(value) -> str:
        return "—" if value is None else f"{value:g}%"

    if c["last"] and c["delta"] >= 0:
        first = i18n.translate(
            N_("Petitions received: %(n)s (件次), %(people)s people (人次); %(delta)s more than "
               "in the same period last year (%(last)s), up %(percent)s."), lang,
            n=m["n"], people=m["people"], delta=c["delta"], last=c["last"],
            percent=pct(c["percent"]))
    elif c["last"]:
        first = i18n.translate(
            N_("Petitions received: %(n)s (件次), %(people)s people (人次); %(delta)s fewer "
               "than in the same period last year (%(last)s), down %(percent)s."), lang,
            n=m["n"], people=m["people"], delta=-c["delta"], last=c["last"],
            percent=pct(-c["percent"]))
    else:
        first = i18n.translate(N_("Petitions received: %(n)s (件次), %(people)s people (人次); "
                                  "none in the same period last year."), lang,
                               n=m["n"], people=m["people"])
    lines = [first]
    top = max(v["categories"], key=lambda r: r["m"]["n"], default=None)
    if top and m["n"]:
        lines.append(i18n.translate(N_("The largest category is %(category)s: %(n)s, "
                                       "%(share)s of all."), lang, category=top["label"],
                                    n=top["m"]["n"],
                                    share=pct(round(100 * top["m"]["n"] / m["n"], 1))))
    r = t["rates"]
    lines.append(i18n.translate(
        N_("Conclusion rate %(done)s, in time %(on_time)s; timely acceptance %(timely)s; "
           "cessation rate %(ceased)s; satisfaction %(satisfied)s of %(rated)s rated."), lang,
        done=pct(r["done_rate"]), on_time=pct(r["on_time_rate"]),
        timely=pct(r["timely_rate"]), ceased=pct(r["ceased_rate"]),
        satisfied=pct(r["satisfied_rate"]), rated=pct(r["rated_rate"])))
    b = t["change"]["batches"]
    lines.append(i18n.translate(
        N_("Collective petitions: %(batches)s (批次), %(people)s people (人次), against "
           "%(last)s last year; level-skipping petitions %(skip)s; repeat petitions "
           "%(repeat)s (%(repeat_rate)s)."), lang, batches=m["batches"],
        people=m["batch_people"], last=b["last"], skip=m["skip"], repeat=m["repeat"],
        repeat_rate=pct(r["repeat_rate"])))
    lines.append(i18n.translate(
        N_("Early warnings: %(n)s, of which serious %(serious)s and major %(major)s; defused "
           "%(defused)s; passed up the same day %(same_day)s; occurred %(occurred)s."), lang,
        n=m["warnings"], serious=m["serious"], major=m["major"],
        defused=pct(r["defused_rate"]), same_day=pct(r["same_day_rate"]),
        occurred=m["occurred"]))
    lines.append(i18n.translate(N_("Overdue now: %(n)s."), lang, n=m["overdue"]))
    return lines


@bp.post("/figures/supervision/request")
@needs("handler", "leader")
def request_supervision():
    done = ops.request_oversight(node(), g.user, request.form)
    say(N_("Supervision request %(id)s sent to %(unit)s"), id=done["id"],
        unit=ops.node_names(node()).get(done["to"], done["to"]))
    return redirect(url_for("figures.page", **{k: v for k, v in request.form.items()
                                               if k in ("period", "at", "from", "to")})
                    + "#supervision", 303)


@bp.post("/oversight/<request_id>/answer")
@needs("handler", "leader")
def answer_request(request_id):
    ops.answer_oversight(node(), g.user, request_id, request.form)
    say(N_("Supervision request %(id)s answered"), id=request_id)
    back = _safe_next(request.form.get("next"))
    return redirect(back or url_for("office.inbox"), 303)


# -- exports ----------------------------------------------------------------------------

def _meta(n, v_period, made_at: str | None = None) -> list[tuple[str, str]]:
    lang = g.get("lang", "zh")
    return [(i18n.translate(N_("Unit"), lang), n.settings["NODE_NAME"]),
            (i18n.translate(N_("Period"), lang),
             f"{v_period.start.isoformat()} – {v_period.end.isoformat()}"),
            (i18n.translate(N_("Made at"), lang), made_at or n.now())]


def table_rows(rows: list[dict], formulas: dict, first: str) -> tuple[list[str], list[list]]:
    """Headers and rows of a figures table, as the exports write them."""
    lang = g.get("lang", "zh")
    headers = [first, *(_label("measure", m) for m in COUNTS),
               i18n.translate(N_("Same period last year"), lang),
               i18n.translate(N_("Change"), lang), i18n.translate(N_("Change %"), lang),
               *(_label("metric", r) for r in formulas),
               i18n.translate(N_("Figures made at"), lang)]
    out = []
    for row in rows:
        c = row["change"]["n"]
        out.append([row["label"], *(row["m"][m] for m in COUNTS), c["last"], c["delta"],
                    c["percent"], *(row["rates"][r] for r in formulas), row.get("made")])
    return headers, out


@bp.get("/figures/<table>.<fmt>")
@needs(*READERS)
def export_table(table, fmt):
    n = node()
    export.check_format(fmt)
    if table not in TABLES:
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="table",
                              value=table[:40])
    v = view(n, request.args)
    lang = g.get("lang", "zh")
    title = i18n.translate(N_("Figures"), lang)
    if table == "supervision":
        headers = [i18n.translate(x, lang) for x in (
            N_("Case number"), N_("Unit"), N_("Holding unit"), N_("Category"), N_("State"),
            N_("Deadline"), N_("Days overdue"))]
        rows = [[r["id"], v["names"].get(r["unit"], r["unit"]),
                 v["names"].get(r["holder"], r["holder"]), _vocab(cases.CATEGORIES,
                                                                   r["category"]),
                 _label("state", r["state"]), r["due_on"], r["days_overdue"]]
                for r in v["supervision"]]
        title = i18n.translate(N_("Supervision list: overdue below"), lang)
    else:
        key = {"unit": "units", "category": "categories", "channel": "channels",
               "trend": "trend"}[table]
        first = i18n.translate({"unit": N_("Unit"), "category": N_("Category"),
                                "channel": N_("Channel"), "trend": N_("Month")}[table], lang)
        headers, rows = table_rows(v[key], v["formulas"], first)
    return export.response(fmt, f"{n.id}-{table}-{v['period'].label}", title,
                           _meta(n, v["period"], v["made_at"]), headers, rows)


@bp.get("/figures/cases.<fmt>")
@needs(*READERS)
def export_cases(fmt):
    n = node()
    export.check_format(fmt)
    d = drill(n, request.args)
    lang = g.get("lang", "zh")
    if d["kind"] == "cases":
        headers = [i18n.translate(x, lang) for x in (
            N_("Case number"), N_("Registered"), N_("Category"), N_("Channel"), N_("State"),
            N_("Holding unit"), N_("Deadline"), N_("Days overdue"))]
        rows = [[c["id"], c["registered_on"], _vocab(cases.CATEGORIES, c["category"]),
                 _vocab(cases.CHANNELS, c["channel"]), _label("state", c["state"]),
                 d["names"].get(c["holder"], c["holder"]), c["due_on"], c["days_overdue"]]
                for c in d["records"]]
    else:
        headers = [i18n.translate(x, lang) for x in (
            N_("Warning"), N_("Raised"), N_("Category"), N_("Risk level"), N_("Status"),
            N_("Unit"))]
        rows = [[w["id"], w["raised_at"], _vocab(cases.CATEGORIES, w["category"]),
                 _vocab(warnings.LEVELS, w["risk_level"]), _label("state", w["status"]),
                 d["names"].get(w["origin_node"], w["origin_node"])] for w in d["records"]]
    meta = [*_meta(n, d["period"]), (i18n.translate(N_("Figure"), lang),
                                     _label("measure", d["measure"]))]
    return export.response(fmt, f"{n.id}-{d['measure']}-{d['period'].label}",
                           _label("measure", d["measure"]), meta, headers, rows)
