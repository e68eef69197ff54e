"""The demo's sample data: a plan of stories per place, played through the domain commands.

Sample data is made at the node it belongs to, with the domain commands
(``cases.register``/``act``, ``warnings.raise_warning``/``act``) under the
node's own users, backdated over the last weeks so that deadlines fall due,
due soon and overdue. Nothing is written into another node's database:
what crosses tiers (an escalation up, a referral down, a warning) travels
by sync under whatever routing policy the nodes apply, so the demo needs no
change when routing does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from node import attachments, cases, core, i18n, log, rounds, store, warnings
from node.demo import sample
from node.demo.network import Place, children
from node.errors import NodeError

SETTLE_REPLIES = (
    "信息员当场查询了发放记录，向当事人解释了政策规定和办理流程，当事人表示理解。",
    "经村两委当场协调，相关款项已于当日补发到位，当事人表示满意。",
    "当场一次性告知了所需材料，村代办员将协助当事人补齐材料后上报。",
)
REPLIES = (  # (decision, reply)
    ("support", "经核查，您反映的情况基本属实。镇民政办已按政策补发相关款项，并将加强审核和公示。"),
    ("reject", "经调查核实，您家庭人均收入高于当地保障标准，暂不符合条件。如家庭情况发生变化，"
               "可重新提出申请。"),
    ("explain", "您反映的问题已会同相关部门研究，现将有关政策规定说明如下，如有疑问可来电咨询。"),
)
ESCALATIONS = ("涉及镇级审批事项，村里无权处理，需上级协调。",
               "当事人多次反映未解决，情绪较大，请上级协调处理。",
               "涉及多户群众，需统一政策口径。")
INSTRUCTIONS = ("请入户核实情况，依规办理，并在期限内反馈结果。",
                "请包片干部牵头，约见当事人当面答复，做好解释疏导工作。",
                "请核实该户家庭收入和申请材料，提出处理意见报回。")
NOT_ACCEPTED = ("所反映事项已进入法院诉讼程序，依法不予受理，已书面告知当事人。",
                "所反映事项已办结并经复核，无新的事实和理由，不再受理。")


class _Clock:
    """The clock a node is seeded under: each step sets the moment it happened."""

    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class _Story:
    kind: str  # "case" or "warning"
    subject: str | None = None
    refused: bool = False


@dataclass(order=True)
class _Step:
    at: datetime
    n: int
    story: _Story = field(compare=False)
    role: str = field(compare=False)
    action: str = field(compare=False)
    fields: Callable[[date], dict] = field(compare=False)


class _Plan:
    """A node's sample stories as steps in time: a story is one case or warning."""

    def __init__(self, rng: random.Random, now: datetime, tz: ZoneInfo):
        self.rng, self.now, self.tz = rng, now, tz
        self.today = now.astimezone(tz).date()
        self.steps: list[_Step] = []

    def _moment(self, days_ago: int, minute: int) -> datetime:
        day = self.today - timedelta(days=max(days_ago, 0))
        while day.weekday() >= 5:  # offices work Monday to Friday
            day -= timedelta(days=1)
        local = datetime(day.year, day.month, day.day, 8, 30, tzinfo=self.tz) + timedelta(
            minutes=minute)
        moment = local.astimezone(UTC)
        if moment >= self.now:  # today, before that hour: just now instead
            moment = self.now - timedelta(minutes=30) + timedelta(minutes=minute / 100)
        return moment

    def story(self, kind: str, days_ago: int, *steps) -> None:
        """Steps are (days after the first, role, action, fields or fields(day))."""
        story, base = _Story(kind), self.rng.randrange(0, 240)
        for i, (after, role, action, fields) in enumerate(steps):
            make = fields if callable(fields) else (lambda _day, f=fields: dict(f))
            self.steps.append(_Step(self._moment(days_ago - after, base + 40 * i),
                                    len(self.steps), story, role, action, make))


def _case(rng: random.Random, category: str | None = None, **extra) -> Callable[[date], dict]:
    return lambda _day: {**sample.case_fields(rng, category), **extra}


def _warning(rng: random.Random, place: Place, today: date) -> Callable[[date], dict]:
    where = place.name if place.tier == "village" else rng.choice(sample.VILLAGES)
    return lambda _day: sample.warning_fields(rng, place=where + rng.choice(sample.GROUPS),
                                              today=today)


def _deadline(days: int) -> Callable[[date], dict]:
    return lambda day: {"deadline": (day + timedelta(days=days)).isoformat()}


def _plan(place: Place, names: dict[str, str], rng: random.Random, now: datetime,
          tz: ZoneInfo) -> _Plan:
    """What happened at ``place`` over the last weeks, by tier."""
    p = _Plan(rng, now, tz)
    kids = children(place)
    categories = list(sample.FACTS)
    rng.shuffle(categories)
    cat = iter(categories * 3).__next__

    def reply(_day):
        return dict(zip(("decision", "reply"), rng.choice(REPLIES), strict=True))

    if place.tier == "village":
        L = "liaison"  # noqa: N806
        p.story("case", rng.randrange(0, 4), (0, L, "register", _case(rng, cat())))
        p.story("case", rng.randrange(9, 13), (0, L, "register", _case(rng, cat())))
        if rng.random() < 0.6:  # left too long: overdue to forward
            p.story("case", rng.randrange(18, 30), (0, L, "register", _case(rng, cat())))
        p.story("case", rng.randrange(5, 40), (0, L, "register", _case(rng, cat())),
                (0, L, "settle", lambda _day: {"reply": rng.choice(SETTLE_REPLIES),
                                               "decision": rng.choice(("explain", "support"))}),
                (1, L, "followup", lambda _day: {"rating": rng.choice(("satisfied", "basic"))}))
        p.story("case", rng.randrange(1, 15), (0, L, "register", _case(rng, cat())),
                (0, L, "attach", {"kind": "letter", "name": "来信.pdf",
                                  "data": sample.letter_pdf()}),
                (0, L, "attach", {"kind": "id_photo", "name": "身份证.png",
                                  "data": sample.photo_png(rng)}),
                (rng.randrange(0, 2), L, "escalate", {"reason": rng.choice(ESCALATIONS)}))
        # the register (登记造册): a key person and a hot spot, checked in earlier rounds
        p.story("entry", rng.randrange(20, 40), (0, L, "record", lambda _day: sample.entry(
            rng, "person")), (14, L, "update", {"risk": "general", "note": "经走访，情绪稳定"}))
        p.story("entry", rng.randrange(5, 20), (0, L, "record", lambda _day: sample.entry(
            rng, "hotspot")))
        if rng.random() < 0.5:  # a collective petition, escalated the same day
            p.story("case", rng.randrange(0, 6),
                    (0, L, "register", _case(rng, "grassroots", people_count=rng.randrange(
                        8, 30), channel="visit")),
                    (0, L, "escalate", {"reason": "集体访，涉及人数较多，需镇里统筹处理。"}))
        if rng.random() < 0.4:
            p.story("case", rng.randrange(5, 20), (0, L, "register", _case(rng, cat())),
                    (3, L, "withdraw", {"reason": "当事人表示问题已经邻里调解解决，主动撤回。"}))
        handled = rng.random() < 0.5
        p.story("warning", rng.randrange(0, 3), (0, L, "raise", _warning(rng, place, p.today)),
                *([(0, L, "handle", lambda _day: {"measures": sample.warning_measures(rng)})]
                  if handled else []))
        return p
    H, D = "handler", "leader"  # noqa: N806
    if place.tier == "area":
        p.story("case", rng.randrange(0, 5),
                (0, H, "register", _case(rng, cat(), channel="field_visit")))
        p.story("case", rng.randrange(10, 30), (0, H, "register", _case(rng, cat())),
                (0, H, "settle", lambda _day: {"reply": rng.choice(SETTLE_REPLIES)}),
                (1, H, "followup", {"rating": "satisfied"}))
        p.story("case", rng.randrange(3, 10), (0, H, "register", _case(rng, cat())),
                (1, H, "refer", lambda day: {"to": rng.choice(kids).id,
                                             "instruction": rng.choice(INSTRUCTIONS),
                                             **_deadline(10)(day)}))
        p.story("case", rng.randrange(2, 8), (0, H, "register", _case(rng, cat())),
                (0, H, "escalate", {"reason": "涉及片内多个村，需镇里统筹协调。"}))
        p.story("warning", rng.randrange(0, 3), (0, H, "raise", _warning(rng, place, p.today)),
                (0, H, "handle", lambda _day: {"measures": sample.warning_measures(rng),
                                               "lead_leader": names[D]}))
        return p
    assign = {"assignee": f"{'镇民政办' if place.tier == 'town' else '市民政局信访科'} "
                          f"{names[H]}", "lead_leader": names[D]}
    close = {"report": "事项已按期答复，回访当事人表示满意，无遗留问题，同意结案。",
             "signers": [names[D], names[H]]}
    p.story("case", rng.randrange(0, 3), (0, H, "register", _case(rng, cat())))
    p.story("case", rng.randrange(6, 12), (0, H, "register", _case(rng, cat())),
            (rng.randrange(1, 3), H, "accept", {}))
    p.story("case", rng.randrange(20, 35), (0, H, "register", _case(rng, cat())),
            (1, H, "accept", {}), (2, H, "assign", assign))
    ago = rng.randrange(30, 40)
    p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
            (2, H, "assign", assign), (ago - rng.randrange(2, 9), H, "reply", reply))
    ago = rng.randrange(50, 70)
    p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
            (2, H, "assign", assign), (25, H, "reply", reply),
            (26, H, "followup", {"rating": "satisfied"}), (27, D, "close", close))
    p.story("case", rng.randrange(10, 20), (0, H, "register", _case(rng, "other")),
            (2, H, "not_accept", {"reason": rng.choice(NOT_ACCEPTED)}))
    for kid in kids:  # 交办: one case down to each child, with an instruction and a deadline
        p.story("case", rng.randrange(4, 10), (0, H, "register", _case(rng, cat())),
                (1, H, "accept", {}),
                (2, H, "refer", lambda day, kid=kid: {"to": kid.id,
                                                      "instruction": rng.choice(INSTRUCTIONS),
                                                      **_deadline(15)(day)}))
    if place.tier == "town":
        ago = rng.randrange(75, 85)  # past the 60 days to settle
        p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
                (2, H, "assign", assign))
        ago = rng.randrange(62, 70)
        p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
                (2, H, "assign", assign),
                (55, D, "extend", {"days": 30, "approver": names[D], "notice": "phone",
                                   "reason": "需等待县里核定补助标准，经领导批准延期办理。"}))
        p.story("case", rng.randrange(4, 10), (0, H, "register", _case(rng, "youfu")),
                (1, H, "refer_out", {"department": "县退役军人事务局", "reason":
                                     "优抚事项由退役军人事务部门办理，已转出并告知当事人。"}))
        p.story("case", rng.randrange(10, 15), (0, H, "register", _case(rng, cat())),
                (1, H, "accept", {}),
                (3, H, "escalate", {"reason": "涉及跨镇政策协调，需市局统筹处理。"}))
        ago = rng.randrange(60, 70)  # the review of a town's reply is the city's (Art. 35)
        p.story("case", ago, (0, H, "register", _case(rng, cat())), (1, H, "accept", {}),
                (2, H, "assign", assign), (20, H, "reply", reply),
                (30, H, "review_request", {"note": "当事人对答复意见不服，申请复查。"}),
                (31, H, "escalate", {"reason": "当事人申请复查，按规定由上一级复查。"}))
        ago = rng.randrange(15, 25)
        p.story("warning", ago, (0, H, "raise", _warning(rng, place, p.today)),
                (1, H, "handle", lambda _day: {"measures": sample.warning_measures(rng),
                                               "lead_leader": names[D]}),
                (6, H, "defuse", {"note": "经做工作，群众表示通过正常渠道反映，不再集体上访。"}))
    p.story("warning", rng.randrange(0, 2), (0, H, "raise", _warning(rng, place, p.today)))
    return p


def _act(node, step: _Step, day: date) -> None:
    actor = log.Actor(step.role, step.role)
    fields = step.fields(day)
    story = step.story
    if step.action == "register":
        story.subject = cases.register(node, actor, fields).subject
    elif step.action == "attach":  # a photo or a scan, as taken with the register form
        attachments.attach(node, actor, story.subject, fields["data"], fields["kind"],
                           fields["name"])
    elif step.action == "record":
        story.subject = rounds.record(node, actor, fields).subject
    elif story.kind == "entry":
        rounds.update(node, actor, story.subject, fields)
    elif step.action == "raise":
        story.subject = warnings.raise_warning(node, actor, fields).subject
    elif story.kind == "case":
        cases.act(node, actor, story.subject, step.action, fields)
    else:
        warnings.act(node, actor, story.subject, step.action, fields)


def seed_round(root: Path, place: Place, now: datetime | None = None) -> str | None:
    """A town's screening round (排查) for every village below it, once, when its trust table
    knows them all (their enrollments come up by sync); returns the round, or None if it is
    there already or the villages are not all known yet."""
    if place.tier != "town":
        return None
    node = core.open_node(root / place.id)
    try:
        if node.db.conn.execute("SELECT 1 FROM rounds WHERE origin_node = ?",
                                (node.id,)).fetchone():
            return None
        villages = [p.id for p in children_all(place) if p.tier == "village"]
        if not set(villages) <= set(rounds.below(node, "village")):
            return None
        today = (now or datetime.now(UTC)).astimezone(node.tz).date()
        with store.write(node.db):
            return rounds.schedule(node, log.Actor("handler", "handler"), {
                "title": f"{today.year}年{today.month}月矛盾纠纷排查", "scope": villages,
                "start": today.isoformat(), "end": (today + timedelta(days=10)).isoformat(),
                "deadline": (today + timedelta(days=14)).isoformat(),
                "focus": "不稳定因素、矛盾纠纷热点、重点人员、重点村"}).subject
    finally:
        node.close()


def children_all(place: Place) -> list[Place]:
    below = children(place)
    return [*below, *(p for c in below for p in children_all(c))]


def seeded(node) -> bool:
    return node.db.conn.execute(
        "SELECT 1 FROM events WHERE origin = ? AND type IN ('case.registered', "
        "'warning.raised') LIMIT 1", (node.id,)).fetchone() is not None


def seed(root: Path, place: Place, lang: str, now: datetime | None = None) -> list[str]:
    """Make ``place``'s sample cases and warnings, once, in one transaction.

    Returns a line for each story the rules refused (it is skipped from that step on).
    """
    now = now or datetime.now(UTC)
    clock = _Clock(now)
    node = core.open_node(root / place.id, clock=clock)
    refused = []
    try:
        if seeded(node):
            return []
        names = dict(node.db.conn.execute("SELECT username, display_name FROM users"))
        plan = _plan(place, names, random.Random(f"siji-demo/{place.id}"), now, node.tz)
        with store.write(node.db):
            for step in sorted(plan.steps):
                if step.story.refused:
                    continue
                clock.moment = step.at
                try:
                    with store.write(node.db):  # a savepoint: a refused step changes nothing
                        _act(node, step, node.today())
                except NodeError as e:
                    step.story.refused = True
                    refused.append(f"{place.name} {step.action}: {i18n.message(e, lang)}")
    finally:
        node.close()
    return refused
