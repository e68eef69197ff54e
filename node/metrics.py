"""Figures (统计指标): the measures counted, the rates made of them, tables for a period.

docs/metrics.md defines every figure in Chinese and English, with a worked
example; this module is those definitions as code, and nothing else defines
them. A *measure* is a count (件次, 人次, 办结 ...). A case is counted under
the day it was registered (its *cohort*: 登记日期), a warning under the day it
was raised; a state-dependent measure (办结, 超期, 满意 ...) counts the state
as it is when the figures are made (统计时点). A *rate* is a sum of measures
over a sum of measures, named with its target (考核指标) in the METRICS
setting; CEASE_DAYS is the 息访 window.

``case_cells``/``warning_cells`` count rows of this node's own database by
SQL; ``Facts`` holds cells by unit and reduces them for a period and a
grouping; ``rates`` and ``change`` make a table row. ``node.figures`` moves
the cells up the tree. Overdue (超期) has one definition, ``OVERDUE_SQL`` (the
same as ``cases.listing(due="overdue")``): a deadline of the current state
(``due_on``, kept by the fold) before today.
"""

from __future__ import annotations

import operator
import sys
from calendar import monthrange
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from node import i18n
from node.cases import ANSWERED, CATEGORIES, CHANNELS, CLOSED, OPEN
from node.cases.commands import OVERDUE_SQL
from node.cases.fold import DONE
from node.errors import N_, ConfigError, ValidationError
from node.settings import Setting, at_least_one, declare
from node.warnings import LEVELS
from node.warnings.rules import OPEN as WARNING_OPEN

# -- measures ------------------------------------------------------------------------
# (code, zh, en); the order is the wire order of a report's cells (node/figures.py): a new
# measure goes at the end.
_CASE = (  # (the ones that are mostly 0 last: a report drops a cell's trailing zeros)
    ("n", "件次", "Petitions"), ("people", "人次", "People"),
    ("first", "初信初访件次", "First-time petitions"),
    ("due", "应办结件次", "To be concluded"), ("done", "办结件次", "Concluded"),
    ("done_in_time", "按期办结件次", "Concluded in time"),
    ("to_decide", "应受理件次", "Due for a decision on acceptance"),
    ("decided_in_time", "及时受理件次", "Decided in time"),
    ("ceased", "息访件次", "Ceased petitioning"),
    ("first_resolved", "初信初访化解件次", "First-time petitions resolved"),
    ("open", "在办件次", "Open"), ("answered", "已答复件次", "Answered"),
    ("closed", "已结件次", "Closed"),
    ("rated", "参评件次", "Rated by the petitioner"),
    ("satisfied", "满意件次", "Satisfied or basically satisfied"),
    ("overdue", "超期件次", "Overdue"), ("repeat", "重复信访件次", "Repeat petitions"),
    ("batches", "集体访批次", "Collective petitions"),
    ("batch_people", "集体访人次", "People in collective petitions"),
    ("skip", "越级访件次", "Level-skipping petitions"),
    ("skip_people", "越级访人次", "People in level-skipping petitions"),
    # issue 21: cases a leader took charge of (包案), concluded, and ceased (息访)
    ("lead", "包案件次", "Cases in charge (lead leader)"),
    ("lead_done", "包案办结件次", "Cases in charge concluded"),
    ("lead_ceased", "包案息访件次", "Cases in charge ceased"),
)
_WARNING = (
    ("warnings", "预警数", "Warnings"), ("general", "一般预警", "General risk"),
    ("major", "较大预警", "Major risk"), ("serious", "重大预警", "Serious risk"),
    ("defused", "已化解预警", "Defused"), ("occurred", "已发生预警", "Occurred"),
    ("to_province", "赴省越级(已发生)", "Went to the province (occurred)"),
    ("to_beijing", "进京越级(已发生)", "Went to Beijing (occurred)"),
    ("same_day", "当天传递预警", "Passed up the same day"),
    ("warnings_open", "在处置预警", "Warnings open"),
)
CASE_MEASURES = tuple(m for m, _, _ in _CASE)
WARNING_MEASURES = tuple(m for m, _, _ in _WARNING)
MEASURES = CASE_MEASURES + WARNING_MEASURES
# measures that count people, not items: every other is at most the cell's item count
PEOPLE = frozenset({"people", "batch_people", "skip_people"})
i18n.add_labels("measure", {m: (zh, en) for m, zh, en in _CASE + _WARNING})
# (the dimensions of a table row, named in exports and reports)
i18n.add_labels("category", CATEGORIES)
i18n.add_labels("channel", CHANNELS)
i18n.add_labels("level", LEVELS)

# -- rates and targets (考核指标) ----------------------------------------------------------
RATE_LABELS = {
    "done_rate": ("办结率", "Conclusion rate"),
    "on_time_rate": ("按期办结率", "Concluded in time"),
    "timely_rate": ("及时受理率", "Timely acceptance rate"),
    "ceased_rate": ("息访率", "Cessation rate"),
    "rated_rate": ("参评率", "Rating rate"),
    "satisfied_rate": ("满意率", "Satisfaction rate"),
    "repeat_rate": ("重复信访率", "Repeat petition rate"),
    "first_resolved_rate": ("初信初访化解率", "First-time resolution rate"),
    "defused_rate": ("预警化解率", "Warnings defused"),
    "same_day_rate": ("当天传递率", "Same-day passing rate"),
    "lead_done_rate": ("包案办结率", "Cases in charge concluded"),
    "lead_ceased_rate": ("包案息访率", "Cases in charge ceased"),
}
DEFAULT_METRICS = {
    "done_rate": {"num": ["done"], "den": ["due"], "target": 90},
    "on_time_rate": {"num": ["done_in_time"], "den": ["done"], "target": 90},
    "timely_rate": {"num": ["decided_in_time"], "den": ["to_decide"], "target": 95},
    "ceased_rate": {"num": ["ceased"], "den": ["done"], "target": 90},
    "rated_rate": {"num": ["rated"], "den": ["done"], "target": 80},
    "satisfied_rate": {"num": ["satisfied"], "den": ["rated"], "target": 90},
    "repeat_rate": {"num": ["repeat"], "den": ["n"], "target": 10, "better": "lower"},
    "first_resolved_rate": {"num": ["first_resolved"], "den": ["first"], "target": 85},
    "defused_rate": {"num": ["defused"], "den": ["warnings"], "target": 80},
    "same_day_rate": {"num": ["same_day"], "den": ["warnings"], "target": 100},
    "lead_done_rate": {"num": ["lead_done"], "den": ["lead"], "target": 90},
    "lead_ceased_rate": {"num": ["lead_ceased"], "den": ["lead_done"], "target": 90},
}
RATES = tuple(DEFAULT_METRICS)
i18n.add_labels("metric", RATE_LABELS)


def validate_metrics(value) -> dict:
    """Check the METRICS setting (changes to DEFAULT_METRICS); returns it as it is."""
    if not isinstance(value, dict):
        raise ConfigError(N_("setting %(name)s: expected a table"), name="METRICS")
    out = {k: dict(v) for k, v in DEFAULT_METRICS.items()}
    for rate, spec in value.items():
        if rate not in out:
            raise ConfigError(N_("setting METRICS: unknown rate %(key)s (known: %(known)s)"),
                              key=rate, known=", ".join(RATES))
        if not isinstance(spec, dict) or set(spec) - {"num", "den", "target", "better"}:
            raise ConfigError(N_("setting METRICS: %(key)s takes num, den, target and "
                                 "better"), key=rate)
        for part in ("num", "den"):
            names = spec.get(part, out[rate][part])
            if not isinstance(names, list) or not names or set(names) - set(MEASURES):
                raise ConfigError(N_("setting METRICS: %(key)s.%(part)s must list measures "
                                     "of %(known)s"), key=rate, part=part,
                                  known=", ".join(MEASURES))
        target = spec.get("target", out[rate].get("target"))
        if target is not None and (isinstance(target, bool) or not isinstance(
                target, int | float) or not 0 <= target <= 100):
            raise ConfigError(N_("setting METRICS: %(key)s.target must be a percentage"),
                              key=rate)
        if spec.get("better", "higher") not in ("higher", "lower"):
            raise ConfigError(N_("setting METRICS: %(key)s.better is higher or lower"),
                              key=rate)
        out[rate].update(spec)
    return value


def formulas(settings: dict) -> dict:
    """Each rate's formula and target: DEFAULT_METRICS as the METRICS setting changes them."""
    return {rate: {**spec, **settings["METRICS"].get(rate, {})}
            for rate, spec in DEFAULT_METRICS.items()}


declare(
    Setting("METRICS", {}, "Formulas and targets (考核指标) of the rates, over the built-in "
            "ones (docs/metrics.md): rate = {num = [measures], den = [measures], target = "
            "percent, better = \"higher\" or \"lower\"}.", dict, validate_metrics,
            built_in={k: f"{'+'.join(v['num'])} / {'+'.join(v['den'])}"
                      for k, v in DEFAULT_METRICS.items()}),
    Setting("CEASE_DAYS", 180, "息访: an answered petition has ceased when no repeat "
            "petition on it is registered within this many days of the answer (practice).",
            int, at_least_one("CEASE_DAYS")),
)

# -- counting this node's rows ----------------------------------------------------------


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_DONE = f"c.state IN {_in(DONE)}"
# 息访: answered, no review asked for, and no repeat petition on it within CEASE_DAYS
_CEASED = (f"({_DONE} AND c.reviewed = 0 AND NOT EXISTS (SELECT 1 FROM cases r WHERE "
           "r.repeat_of = c.id AND r.registered_on <= date(coalesce(c.replied_on, "
           "c.closed_on, c.registered_on), '+' || :cease || ' days')))")
# 包案: a leader took charge of the case (an account, or the name of an assignment)
_LEAD = "(c.lead_account IS NOT NULL OR c.lead_leader IS NOT NULL)"
# one expression per measure, over a case row ``c`` (a warning row ``w``): a cell sums it
_CASE_SQL = {
    "n": "1", "people": "c.people_count", "batches": "c.collective",
    "batch_people": "c.collective * c.people_count", "skip": "c.skip_level",
    "skip_people": "c.skip_level * c.people_count", "repeat": "c.first_time = 0",
    "first": "c.first_time",
    "due": f"c.state NOT IN {_in(('not_accepted', 'referred_out', 'merged'))}",
    "done": _DONE, "done_in_time": f"{_DONE} AND coalesce(c.done_in_time, 0)",
    "to_decide": "c.decided_in_time IS NOT NULL OR (c.state = 'registered' AND "
                 "c.due_on < :today)",
    "decided_in_time": "coalesce(c.decided_in_time, 0)",
    "rated": f"{_DONE} AND c.rating IS NOT NULL",
    "satisfied": f"{_DONE} AND c.rating IN ('satisfied', 'basic')",
    "ceased": _CEASED, "first_resolved": f"c.first_time AND {_CEASED}",
    "overdue": OVERDUE_SQL.replace("due_on", "c.due_on").replace("?", ":today"),
    "open": f"c.state IN {_in(OPEN)}", "answered": f"c.state IN {_in(ANSWERED)}",
    "closed": f"c.state IN {_in(CLOSED)}",
    "lead": _LEAD, "lead_done": f"{_LEAD} AND {_DONE}", "lead_ceased": f"{_LEAD} AND {_CEASED}",
}
_WARNING_SQL = {
    "warnings": "1", "general": "w.risk_level = 'general'",
    "major": "w.risk_level = 'major'", "serious": "w.risk_level = 'serious'",
    "defused": "w.status = 'defused'", "occurred": "w.status = 'occurred'",
    "to_province": "w.status = 'occurred' AND w.destination = 'province'",
    "to_beijing": "w.status = 'occurred' AND w.destination = 'beijing'",
    # 当天传递: a node above received it on the day it was raised (both local dates)
    "same_day": "EXISTS (SELECT 1 FROM warning_receipts r WHERE r.warning_id = w.id AND "
                "r.node_id != w.origin_node AND substr(r.at, 1, 10) = substr(w.raised_at, 1, "
                "10))",
    "warnings_open": f"w.status IN {_in(WARNING_OPEN)}",
}
_CASE_SQL = {m: _CASE_SQL[m] for m in CASE_MEASURES}  # (in the measures' order)
assert set(_CASE_SQL) == set(CASE_MEASURES) and tuple(_WARNING_SQL) == WARNING_MEASURES


def _sums(exprs: dict[str, str]) -> str:
    return ", ".join(f"coalesce(sum({e}), 0)" for e in exprs.values())


def _today(node, params: dict) -> dict:
    return {"today": node.today().isoformat(), "cease": node.settings["CEASE_DAYS"], **params}


def case_cells(node, where: str, params: dict) -> Iterable[tuple[tuple, tuple]]:
    """Counts of this node's case rows matching ``where`` (over the alias ``c``), by
    (registration day, category, channel, origin): each a vector of CASE_MEASURES."""
    sql = (f"SELECT c.registered_on, c.category, c.channel, c.origin_node, "
           f"{_sums(_CASE_SQL)} FROM cases c WHERE {where} "
           "GROUP BY c.registered_on, c.category, c.channel, c.origin_node")
    # (as read: a city's are 150,000, kept by the caller as it needs them)
    return ((r[:4], r[4:]) for r in node.db.conn.execute(sql, _today(node, params)))


def warning_cells(node, where: str, params: dict) -> Iterable[tuple[tuple, tuple]]:
    """Counts of this node's warning rows matching ``where`` (alias ``w``), by (day raised,
    category, origin): each a vector of WARNING_MEASURES."""
    sql = (f"SELECT substr(w.raised_at, 1, 10) AS day, w.category, w.origin_node, "
           f"{_sums(_WARNING_SQL)} FROM warnings w WHERE {where} "
           "GROUP BY day, w.category, w.origin_node")
    return ((r[:3], r[3:]) for r in node.db.conn.execute(sql, params))


def overdue_rows(node, where: str, params: dict):
    """The supervision list (督办清单) of the overdue cases matching ``where``: number,
    holder, category, state, deadline and its kind, registration day and origin; nothing
    about the petitioner. Rows as they are read (a city's are 100,000)."""
    sql = ("SELECT c.id, c.holder, c.category, c.state, c.due_on, c.due_kind, "
           f"c.registered_on, c.origin_node FROM cases c WHERE ({where}) AND "
           f"{_CASE_SQL['overdue']} ORDER BY c.id")
    return node.db.conn.execute(sql, _today(node, params))


def counted_by(node, measure: str, where: str, params: dict) -> list[str]:
    """The ids of this node's cases (warnings) matching ``where`` that a measure counts:
    the drill-down from a number to the records behind it."""
    if measure in _CASE_SQL:
        sql = f"SELECT c.id FROM cases c WHERE ({where}) AND ({_CASE_SQL[measure]}) != 0"
    elif measure in _WARNING_SQL:
        sql = f"SELECT w.id FROM warnings w WHERE ({where}) AND ({_WARNING_SQL[measure]}) != 0"
    else:
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="measure",
                              value=str(measure)[:40])
    return [r[0] for r in node.db.conn.execute(sql, _today(node, params))]


# -- facts: cells by unit, reduced for a period ------------------------------------------

def add(into: list[int], vector: list[int]) -> list[int]:
    """``into`` plus ``vector``, element by element (the shorter padded with zeros)."""
    if len(vector) > len(into):
        into.extend([0] * (len(vector) - len(into)))
    into[:len(vector)] = map(operator.add, into, vector)
    return into


@dataclass
class Part:
    """One unit's cells of one month: ``cases[(day, category, channel)]`` and
    ``warnings[(day, category)]`` (day YYYY-MM-DD), vectors of CASE_MEASURES and
    WARNING_MEASURES, and the same summed over the month's days (keyed without the day),
    which a period of whole months reads instead."""

    unit: str
    month: str
    cases: dict[tuple, list[int]] = field(default_factory=dict)
    warnings: dict[tuple, list[int]] = field(default_factory=dict)
    whole: tuple[dict, dict] = field(default=None, repr=False, compare=False)

    def add(self, kind: int, key: tuple, vector) -> None:
        # a key's day, category and channel are each one string however many cells name
        # them (a city's facts hold 150,000 cells: 23 MB of copies otherwise), and a
        # vector is a tuple of numbers, which the garbage collector leaves alone (as
        # lists, a full collection looked at each: 250 ms, a page or a sync stalled)
        key = tuple(sys.intern(k) if isinstance(k, str) else k for k in key)
        cells = (self.cases, self.warnings)[kind]
        old = cells.get(key)
        cells[key] = tuple(vector) if old is None else tuple(add(list(old), vector))
        self.whole = None

    def month_sums(self) -> tuple[dict, dict]:
        if self.whole is None:
            sums: tuple[dict, dict] = ({}, {})
            for kind, cells in enumerate((self.cases, self.warnings)):
                for key, vector in cells.items():
                    add(sums[kind].setdefault(key[1:], []), vector)
            self.whole = tuple({k: tuple(v) for k, v in d.items()} for d in sums)
        return self.whole


@dataclass
class Facts:
    """What a node knows of its subtree: ``parts``, one per unit and month (its own rows'
    and each child's newest report's); ``made[unit]``, when that unit's figures were made
    (None: counted here, now); ``overdue``, the supervision list (node.figures)."""

    parts: list[Part] = field(default_factory=list)
    made: dict[str, str | None] = field(default_factory=dict)
    overdue: Sequence = ()
    made_at: str | None = None  # when they were counted
    # sums already made, by their question: the facts are kept while nothing changes
    # (figures.facts), and a city's year is 70,000 cells added up 14 times a dashboard
    summed: dict = field(default_factory=dict, repr=False, compare=False)

    def sums(self, period, by: str | None = None, **only) -> dict:
        """key -> {measure: count} for the cells in ``period`` (None: all), grouped ``by``
        unit, category, channel, month or day (None: one total, key ""), among cells
        whose dimensions equal ``only`` (e.g. unit="cun"). A copy: the caller may change
        it."""
        question = ((period.start, period.end) if period else None, by,
                    tuple(sorted(only.items())))
        found = self.summed.get(question)
        if found is None:
            if len(self.summed) >= 512:  # (many periods asked of the same facts)
                self.summed.clear()
            found = self.summed[question] = self._sums(period, by, only)
        return {g: dict(m) for g, m in found.items()}

    def _sums(self, period, by: str | None, only: dict) -> dict:
        out: tuple[dict, dict] = ({}, {})
        unit = only.get("unit")
        # positions in a cell's key (day, category, channel); a warning has no channel: it
        # is in no channel's group or filter
        position = {"day": 0, "month": 0, "category": 1, "channel": 2}
        checks = [(position[k], v) for k, v in only.items() if v is not None and k != "unit"]
        months = set(period.months) if period else None
        for part in self.parts:
            if (months is not None and part.month not in months) or (unit and part.unit != unit):
                continue
            days = monthrange(int(part.month[:4]), int(part.month[5:]))[1]
            first, last = f"{part.month}-01", f"{part.month}-{days:02d}"
            start, end = (period.start.isoformat(), period.end.isoformat()) if period else (
                first, last)
            whole = by != "day" and start <= first and last <= end
            cells = part.month_sums() if whole else (part.cases, part.warnings)
            shift = 1 if whole else 0  # (month sums have no day in their keys)
            for kind in (0, 1):
                for key, vector in cells[kind].items():
                    if not whole and not start <= key[0] <= end:
                        continue
                    if not all(0 <= i - shift < len(key) and key[i - shift] == v
                               for i, v in checks):
                        continue
                    if by is None:
                        group = ""
                    elif by == "unit":
                        group = part.unit
                    elif by in ("month", "day"):
                        group = part.month if by == "month" else key[0]
                    elif position[by] - shift >= len(key):
                        continue
                    else:
                        group = key[position[by] - shift]
                    add(out[kind].setdefault(group, []), vector)
        return {g: measures(out[0].get(g, []), out[1].get(g, []))
                for g in set(out[0]) | set(out[1])}


def measures(case_vector: list[int], warning_vector: list[int]) -> dict[str, int]:
    padded = list(case_vector) + [0] * (len(CASE_MEASURES) - len(case_vector))
    wpadded = list(warning_vector) + [0] * (len(WARNING_MEASURES) - len(warning_vector))
    return dict(zip(MEASURES, padded + wpadded, strict=True))


def rates(m: dict[str, int], formulas: dict) -> dict[str, float | None]:
    """Each rate in percent (one decimal), or None when its denominator is 0."""
    out = {}
    for rate, spec in formulas.items():
        den = sum(m.get(x, 0) for x in spec["den"])
        num = sum(m.get(x, 0) for x in spec["num"])
        out[rate] = round(100 * num / den, 1) if den else None
    return out


def meets(rate: str, value: float | None, formulas: dict) -> bool | None:
    """Whether a rate meets its target (None: no target or no value)."""
    spec = formulas[rate]
    if value is None or spec.get("target") is None:
        return None
    return value <= spec["target"] if spec.get("better") == "lower" else (
        value >= spec["target"])


def change(now: int, last: int) -> dict:
    """比上年同期: the change in count, and in percent of last year's (None from 0)."""
    return {"now": now, "last": last, "delta": now - last,
            "percent": round(100 * (now - last) / last, 1) if last else None}
