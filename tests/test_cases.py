"""信访件: every transition of cases.RULES, legal and refused, by role, tier, holder and state.

The ``clock`` fixture starts on Monday 2026-11-23 10:00 Beijing; due dates are counted by hand
from node/data/holidays-cn.toml (start day not counted, a rest day moves to the next working
day; 2027 has no official arrangement yet, so its statutory holidays rest, provisionally).
Every refusal runs inside
``store.write`` as the CLI does and is checked to have changed nothing (``refused``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import HANDLER, LEADER, LIAISON, case_fields, deliver
from hypothesis import given
from hypothesis import strategies as st

from node import cases, errors, events, log, registry, routing, store
from node.authority import NoAuthority
from node.errors import IllegalTransition, NotAllowed, NotFound, ValidationError

ADMIN = log.Actor("admin", "admin")
ACTORS = {"liaison": LIAISON, "handler": HANDLER, "leader": LEADER, "admin": ADMIN}


# -- helpers -----------------------------------------------------------------------------

def reg(node, actor=LIAISON, **fields) -> str:
    with store.write(node.db):
        return cases.register(node, actor, case_fields(**fields)).subject


def act(node, case_id, action, actor=HANDLER, **fields):
    with store.write(node.db):
        return cases.act(node, actor, case_id, action, fields)


def row(node, case_id) -> dict:
    return cases.get(node, case_id)


def last(node, case_id):
    """The case's newest event."""
    return log.subject_events(node.db, case_id)[-1]


def snapshot(node, case_id=None) -> dict:
    q = node.db.conn.execute
    return {"events": q("SELECT count(*) FROM events").fetchone()[0],
            "counters": dict(q("SELECT name, value FROM counters").fetchall()),
            "cases": q("SELECT count(*) FROM cases").fetchone()[0],
            "case": cases.get(node, case_id) if case_id else None,
            "orders": cases.orders(node, case_id) if case_id else None}


def refused(node, case_id, action, exc, actor=HANDLER, **fields):
    """Take an action that must be refused with ``exc``; assert it changed nothing."""
    before = snapshot(node, case_id)
    with pytest.raises(exc) as info:
        act(node, case_id, action, actor, **fields)
    assert snapshot(node, case_id) == before
    return info.value


def refused_register(node, exc, actor=LIAISON, **fields):
    before = snapshot(node)
    with pytest.raises(exc) as info:
        reg(node, actor, **fields)
    assert snapshot(node) == before
    return info.value


VALID = {  # fields that make each action acceptable apart from role, tier, holder and state
    "accept": {}, "not_accept": {"reason": "不属于民政部门职权"},
    "settle": {"reply": "已当场解释低保政策"}, "assign": {"assignee": "王办理"},
    "refer_out": {"department": "退役军人事务局", "reason": "属优抚事项"},
    "escalate": {"reason": "本级无法解决"},
    "refer": {"to": "pian", "instruction": "请核实并答复", "deadline": "2026-12-10"},
    "sign": {}, "return": {"reason": "不属本片管辖"}, "urge": {"message": "请尽快办理"},
    "urge_ack": {"urge": "zhen:1"},
    "supervise": {"instruction": "限期反馈", "deadline": "2026-12-20"},
    "supervision_ack": {"order_id": "DB-none"},
    "supervision_feedback": {"order_id": "DB-none", "feedback": "已办理"},
    "supervision_close": {"order_id": "DB-none"},
    "extend": {"days": 10, "approver": "赵领导", "reason": "需调查取证", "notice": "phone"},
    "reply": {"decision": "support", "reply": "已补发低保金"},
    "followup": {"rating": "satisfied"}, "reopen": {"reason": "答复不完整"},
    "review_request": {}, "review": {"decision": "explain", "answer": "维持原答复意见"},
    "recheck_request": {}, "close": {"report": "已办结", "signers": ["赵领导"]},
    "withdraw": {"reason": "信访人书面撤回"}, "merge": {"into": None}, "archive": {},
    "note": {"text": "已电话联系信访人"}, "correct": {"summary": "更正后的摘要", "reason": "笔误"},
    "report": {},
    "lead": {"leader": "zhao"}, "appoint": {"leader": "zhao", "at": "2026-12-01T09:30",
                                            "place": "镇信访办接待室"},
    "appointment": {"appointment": "YF-none", "outcome": "已当面答复"},
    "attach": {"sha256": "a" * 64, "size": 10, "type": "image/png", "kind": "site"},
}


def valid(action, spare=None) -> dict:
    fields = dict(VALID[action])
    if action == "merge":
        fields["into"] = spare
    return fields


# Paths that bring a case registered at a town to each state (town is the holder).
PATHS = {
    "registered": [], "accepted": ["accept"], "in_progress": ["accept", "assign"],
    "replied": ["accept", "reply"], "review_requested": ["accept", "reply", "review_request"],
    "reviewed": ["accept", "reply", "review_request", "review"],
    "recheck_requested": ["accept", "reply", "review_request", "review", "recheck_request"],
    "concluded": ["accept", "reply", "close"], "terminated": ["withdraw"],
    "not_accepted": ["not_accept"], "referred_out": ["refer_out"], "merged": ["merge"],
}


REVIEW_STATES = ("reviewed", "recheck_requested")


def drive(node, state) -> tuple[str, str]:
    """A case registered at ``node`` and brought to ``state``, plus an open spare case."""
    spare = reg(node, HANDLER, summary="另一件低保投诉")
    cid = reg(node, HANDLER)
    for action in PATHS[state]:
        act(node, cid, action, LEADER, **valid(action, spare))
    assert row(node, cid)["state"] == state
    return cid, spare


@pytest.fixture
def escalated(chain):
    """A village (cun) case escalated to the area (pian) and on to the town (zhen), which
    referred it back down to the area: the area holds it, and the town, which had it, is
    above the holder. The city never had it. Each node of the circle has its history."""
    city, town, area, village = chain
    cid = reg(village)
    act(village, cid, "escalate", LIAISON, reason="村内无法调解")
    deliver(village, area)
    act(area, cid, "escalate", HANDLER, reason="片区协调不成")
    deliver(area, town)
    act(town, cid, "refer", HANDLER, to="pian", instruction="请片区先行调解",
        deadline="2026-12-20")
    deliver(town, area)
    deliver(area, village)
    return city, town, area, village, cid


@pytest.fixture
def escalated_once(chain):
    """A village (cun) case escalated to the area (pian), which holds it now."""
    city, town, area, village = chain
    cid = reg(village)
    act(village, cid, "escalate", LIAISON, reason="村内无法调解")
    deliver(village, area)
    return city, town, area, village, cid


# -- the rule table, written out from DOMAIN.md ---------------------------------------------

W, OFF, LEAD = {"liaison", "handler", "leader"}, {"handler", "leader"}, {"leader"}
ALL_T, DEC_T = {"city", "town", "area", "village"}, {"town", "city"}
OPEN_S = {"registered", "accepted", "in_progress"}
ANS_S = {"replied", "review_requested", "reviewed", "recheck_requested"}
CLOSED_S = {"concluded", "terminated", "not_accepted", "referred_out", "merged"}
ANY_S = OPEN_S | ANS_S | CLOSED_S
WORKING = {"accepted", "in_progress"}
EXPECTED = {  # action: (decision, roles, tiers, states)
    "register": (False, W, ALL_T, set()),
    "accept": (True, OFF, DEC_T, {"registered"}),
    "not_accept": (True, OFF, DEC_T, {"registered"}),
    "settle": (True, W, ALL_T, {"registered"}),
    "assign": (True, OFF, ALL_T, WORKING),
    "refer_out": (True, OFF, ALL_T, OPEN_S),
    "escalate": (True, W, {"village", "area", "town"},
                 OPEN_S | {"review_requested", "recheck_requested"}),  # review goes up a level
    "refer": (True, OFF, {"city", "town", "area"}, OPEN_S),
    "sign": (True, W, ALL_T, OPEN_S),
    "return": (True, W, ALL_T, OPEN_S),
    "urge": (False, OFF, ALL_T, OPEN_S),
    "urge_ack": (False, W, ALL_T, OPEN_S),
    "supervise": (False, OFF, {"city", "town", "area"}, OPEN_S | ANS_S),
    "supervision_ack": (False, W, ALL_T, ANY_S),
    "supervision_feedback": (False, W, ALL_T, ANY_S),
    "supervision_close": (False, OFF, ALL_T, ANY_S),
    "extend": (True, LEAD, ALL_T, WORKING),
    "reply": (True, OFF, DEC_T, WORKING),
    "followup": (False, W, ALL_T, {"replied"}),
    "reopen": (True, OFF, ALL_T, {"replied"}),
    "review_request": (False, W, ALL_T, {"replied", "concluded"}),  # Art. 35: 30 days
    "review": (True, OFF, DEC_T, {"review_requested"}),
    "recheck_request": (False, W, ALL_T, {"reviewed", "concluded"}),
    "close": (True, LEAD, ALL_T, {"replied", "reviewed", "recheck_requested"}),
    "withdraw": (True, W, ALL_T, OPEN_S | ANS_S),
    "merge": (True, OFF, ALL_T, OPEN_S),
    "archive": (True, OFF | {"admin"}, ALL_T, CLOSED_S),
    "note": (False, W, ALL_T, ANY_S),
    "report": (False, W, {"village", "area", "town"}, ANY_S),  # Art. 25: collective, same day
    "correct": (True, W, ALL_T, OPEN_S),
    "lead": (False, OFF, ALL_T, OPEN_S | ANS_S),  # 包案 (issue 21)
    "appoint": (False, OFF, ALL_T, OPEN_S | ANS_S),  # 约访
    "appointment": (False, W, ALL_T, ANY_S),
    "attach": (False, W, ALL_T, ANY_S),
}


def test_rule_table_is_the_documented_matrix():
    assert set(cases.RULES) == set(EXPECTED)
    for action, (decision, roles, tiers, states) in EXPECTED.items():
        rule = cases.RULES[action]
        assert (rule.decision, set(rule.roles), set(rule.tiers), set(rule.states)) == (
            decision, roles, tiers, states), action
        assert cases.BY_TYPE[rule.type] is rule


# -- registration: numbers, fields, markup ----------------------------------------------------

def test_register_at_village_makes_the_row(village):
    cid = reg(village, facts="2026年8月起停发", people_count=2, channel="来信")  # a label
    c = row(village, cid)
    assert cid == "C-dongshan-2026-0001"
    assert {k: c[k] for k in ("origin_node", "holder", "state", "handover", "category",
                              "channel", "nature", "people_count", "collective", "first_time",
                              "reopen_count", "urge_count", "archived", "needs_review")} == {
        "origin_node": "dongshan", "holder": "dongshan", "state": "registered",
        "handover": None, "category": "dibao", "channel": "letter", "nature": "request",
        "people_count": 2, "collective": 0, "first_time": 1, "reopen_count": 0,
        "urge_count": 0, "archived": 0, "needs_review": 0}
    assert c["facts"] == "2026年8月起停发" and c["registered_on"] == "2026-11-23"
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{8}", c["query_code"])
    # Art. 22: forward within 15 days: 11-23 + 15 = 12-08, a Tuesday and a working day.
    assert (c["due_on"], c["due_kind"]) == ("2026-12-08", "forward")
    assert cases.petitioners(village, cid) == [
        {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000",
         "address": None, "representative": 0, "withheld": {}}]


def test_case_numbers_carry_tier_code_node_and_serial(chain):
    ids = [reg(node, LEADER) for node in chain for _ in range(2)]
    assert ids == ["S-shi-2026-0001", "S-shi-2026-0002", "Z-zhen-2026-0001",
                   "Z-zhen-2026-0002", "P-pian-2026-0001", "P-pian-2026-0002",
                   "C-cun-2026-0001", "C-cun-2026-0002"]
    assert len(set(ids)) == len(ids)


def test_refused_registration_uses_no_serial(village):
    assert reg(village) == "C-dongshan-2026-0001"
    refused_register(village, ValidationError, category="水电")
    assert reg(village) == "C-dongshan-2026-0002"


def test_script_in_summary_is_stored_verbatim(village):
    text = "<script>alert('x')</script> 低保金未发"
    cid = reg(village, summary=text, request="<b>补发</b>")
    assert row(village, cid)["summary"] == text
    assert row(village, cid)["request"] == "<b>补发</b>"


def test_a_received_body_must_be_in_normal_form_to_the_type():
    """1 and 1.0 equal True in Python: a flag must still be a JSON boolean."""
    body = {"category": "dibao", "channel": "visit", "first_time": True,
            "nature": "request", "people_count": 1, "query_code": "ABCD2345",
            "skip_level": False, "summary": "低保",
            "petitioners": [{"name": "李四", "representative": True}]}
    cases.validate_body("case.registered", body)
    for loose in (1, 1.0):
        body["petitioners"][0]["representative"] = loose
        with pytest.raises(ValidationError):
            cases.validate_body("case.registered", body)


def people(n, reps):
    return [{"name": f"村民{i}", "representative": i < reps} for i in range(n)]


@pytest.mark.parametrize("overrides, field", [
    ({"petitioners": [{"name": "<script>alert(1)</script>"}]}, "petitioners[0].name"),
    ({"petitioners": [{"name": "李四", "id_number": "110105194912310021"}]},
     "petitioners[0].id_number"),  # the check digit of 11010519491231002 is X
    ({"petitioners": [{"name": "李四", "phone": "12345"}]}, "petitioners[0].phone"),
    ({"category": "水电"}, "category"),
    ({"channel": "fax"}, "channel"),
    ({"petitioners": people(8, 6)}, "petitioners"),  # Art. 20: at most 5 representatives
    ({"petitioners": []}, "petitioners"),
    ({"summary": "  "}, "summary"),
    ({"people_count": 0}, "people_count"),
    ({"first_time": "yes"}, "first_time"),
    ({"secret": "x"}, "secret"),
    ({"petitioners": [{"name": "李四", "representative": 1}]}, "petitioners[0].representative"),
    ({"petitioners": [{"name": "李四", "representative": 1.0}]},
     "petitioners[0].representative"),
])
def test_invalid_registration_is_refused_naming_the_field(village, overrides, field):
    err = refused_register(village, ValidationError, **overrides)
    assert err.params["field"] == field
    assert field in str(err)


def test_five_representatives_are_allowed_and_make_a_collective_petition(village):
    cid = reg(village, petitioners=people(8, 5))
    assert row(village, cid)["collective"] == 1 and row(village, cid)["people_count"] == 8
    assert sum(p["representative"] for p in cases.petitioners(village, cid)) == 5


def test_repeat_petition_may_cite_a_case_held_elsewhere(village):
    first = reg(village)
    repeat = reg(village, repeat_of=first)
    assert (row(village, repeat)["first_time"], row(village, repeat)["repeat_of"]) == (0, first)
    elsewhere = reg(village, repeat_of="C-cun1-2026-0003", petitioners=[{"name": "李四"}])
    assert (row(village, elsewhere)["repeat_of"], row(village, elsewhere)["first_time"]) == (
        "C-cun1-2026-0003", 0)
    err = refused_register(village, ValidationError, repeat_of="第三号案")
    assert err.params["field"] == "repeat_of"


def test_first_time_is_derived_from_what_this_node_knows(village):
    """初信初访: no earlier case of the same person (ID number, or name and phone) or matter
    (repeat_of) here; not a default the liaison leaves on."""
    first = reg(village)
    assert row(village, first)["first_time"] == 1
    again = reg(village, first_time=True)  # the same 张三, by ID number
    assert row(village, again)["first_time"] == 0
    by_phone = reg(village, petitioners=[{"name": "张三", "phone": "13800138000"}])
    assert row(village, by_phone)["first_time"] == 0
    other = reg(village, petitioners=[{"name": "王五", "phone": "13900139000"}])
    assert row(village, other)["first_time"] == 1
    told = reg(village, first_time=False, petitioners=[{"name": "赵六"}])
    assert row(village, told)["first_time"] == 0  # a liaison may know better than the node


def test_admin_may_not_register(village):
    err = refused_register(village, NotAllowed, actor=ADMIN)
    assert "admin" in str(err)


# -- the role matrix: every action refused to every role it does not list --------------------

ROLE_REFUSALS = [(a, r) for a, spec in EXPECTED.items() if a != "register"
                 for r in ACTORS if r not in spec[1]]


@pytest.mark.parametrize("action, role", ROLE_REFUSALS)
def test_wrong_role_is_refused(village, action, role):
    cid = reg(village)
    err = refused(village, cid, action, NotAllowed, ACTORS[role], **valid(action, cid))
    assert role in str(err) and action in str(err)


# -- the field matrix: required, invalid and unknown fields -----------------------------------
# Fields are cleaned before anything else is looked at, so one registered case serves all.

REQUIRED = [(a, f) for a, fs in {
    "not_accept": ["reason"], "settle": ["reply"], "refer_out": ["department", "reason"],
    "escalate": ["reason"], "refer": ["to", "instruction", "deadline"], "return": ["reason"],
    "urge": ["message"], "urge_ack": ["urge"], "supervise": ["instruction", "deadline"],
    "supervision_ack": ["order_id"], "supervision_feedback": ["order_id", "feedback"],
    "supervision_close": ["order_id"], "extend": ["days", "approver", "reason", "notice"],
    "reply": ["decision", "reply"], "followup": ["rating"], "reopen": ["reason"],
    "review": ["decision", "answer"], "close": ["report", "signers"], "withdraw": ["reason"],
    "merge": ["into"], "note": ["text"], "correct": ["reason"]}.items() for f in fs]
INVALID = [
    ("reply", {"decision": "maybe"}, "decision"), ("reply", {"delivery": "pigeon"}, "delivery"),
    ("reply", {"delivered_on": "yesterday"}, "delivered_on"),
    ("followup", {"rating": "great"}, "rating"), ("extend", {"days": "ten"}, "days"),
    ("review", {"decision": "maybe"}, "decision"), ("close", {"signers": []}, "signers"),
    ("refer", {"to": "../etc"}, "to"), ("supervise", {"deadline": "12/20"}, "deadline"),
    ("refer_out", {"department": "<b>人社局</b>"}, "department"),
    ("assign", {"assignee": "王\n办理"}, "assignee"),
]


@pytest.mark.parametrize("action, missing", REQUIRED)
def test_required_fields(chain, action, missing):
    town = chain[1]
    cid, spare = drive(town, "registered")
    fields = {k: v for k, v in valid(action, spare).items() if k != missing}
    err = refused(town, cid, action, ValidationError, LEADER, **fields)
    assert err.params["field"] == missing


@pytest.mark.parametrize("action, bad, field", INVALID)
def test_invalid_fields(chain, action, bad, field):
    town = chain[1]
    cid, spare = drive(town, "registered")
    err = refused(town, cid, action, ValidationError, LEADER, **{**valid(action, spare), **bad})
    assert err.params["field"] == field


@pytest.mark.parametrize("action", [a for a in EXPECTED if a != "register"])
def test_unknown_fields_are_refused(chain, action):
    town = chain[1]
    cid, spare = drive(town, "registered")
    err = refused(town, cid, action, ValidationError, LEADER, **valid(action, spare), holder="x")
    assert err.params["field"] == "holder"


# -- the tier matrix ------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["accept", "not_accept"])
def test_acceptance_is_refused_at_village_and_area(escalated, action):
    city, town, area, village, cid = escalated
    other = reg(village)  # held by the village itself
    err = refused(village, other, action, NotAllowed, **valid(action))
    assert "village node may not" in str(err)
    err = refused(area, cid, action, NotAllowed, **valid(action))  # the area holds cid
    assert "area node may not" in str(err)


def test_reply_is_refused_at_an_area_holding_an_accepted_case(chain):
    city, town, area, village = chain
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    act(town, cid, "refer", **VALID["refer"])
    deliver(town, area)
    act(area, cid, "sign", LIAISON)
    assert row(area, cid)["holder"] == "pian" and row(area, cid)["state"] == "accepted"
    err = refused(area, cid, "reply", NotAllowed, **VALID["reply"])
    assert "area node may not reply" in str(err)
    act(area, cid, "assign", assignee="片长")  # assigning inside the area is fine
    assert row(area, cid)["state"] == "in_progress"


def test_refer_and_supervise_are_refused_at_a_village(escalated):
    city, town, area, village, cid = escalated
    own = reg(village)
    refused(village, own, "refer", NotAllowed, to="pian", instruction="x", deadline="2026-12-10")
    refused(village, cid, "supervise", NotAllowed, **VALID["supervise"])


def test_escalate_is_refused_at_the_city(chain):
    city = chain[0]
    cid = reg(city, HANDLER)
    assert "no parent" in str(refused(city, cid, "escalate", NotAllowed, reason="x"))
    err = refused(city, cid, "escalate", NotAllowed, to="zhen", reason="x")
    assert "city node may not escalate" in str(err)


# -- the holder matrix: once the area holds it, nobody else decides ---------------------------

@pytest.mark.parametrize("where, action, actor", [
    ("village", "settle", LIAISON), ("village", "escalate", LIAISON),
    ("village", "correct", LIAISON), ("village", "withdraw", LIAISON),
    ("village", "sign", LIAISON), ("village", "refer_out", LEADER),
    ("village", "merge", LEADER),
    ("town", "accept", HANDLER), ("town", "not_accept", HANDLER), ("town", "settle", HANDLER),
    ("town", "refer", HANDLER), ("town", "escalate", HANDLER), ("town", "merge", HANDLER),
])
def test_only_the_holder_decides(escalated, where, action, actor):
    city, town, area, village, cid = escalated
    node = {"village": village, "town": town}[where]
    spare = reg(node, LEADER)
    err = refused(node, cid, action, NotAllowed, actor, **valid(action, spare))
    assert "only the node holding the case (pian)" in str(err)


def test_the_holder_decides_and_path_actions_work_in_the_circle(escalated):
    city, town, area, village, cid = escalated
    act(village, cid, "note", LIAISON, text="村里继续做工作")
    act(town, cid, "urge", message="请片里尽快化解")
    act(area, cid, "settle", LIAISON, reply="片长调解成功")
    c = row(area, cid)
    assert (c["state"], c["holder"], c["decision"]) == ("replied", "pian", "explain")


def test_a_node_that_never_had_the_case_takes_no_path_action(escalated):
    """The city never had the area's case: it may not note, urge or supervise it."""
    city, town, area, village, cid = escalated
    deliver(area, city)  # even with the whole history in hand
    for action in ("note", "urge", "supervise"):
        err = refused(city, cid, action, NoAuthority, **valid(action))
        assert "shi has never had case" in str(err)


def test_after_referring_down_the_town_no_longer_decides(chain):
    town = chain[1]
    cid = referred(chain)
    for action, actor in (("assign", HANDLER), ("reply", HANDLER), ("extend", LEADER),
                          ("refer_out", HANDLER), ("correct", LIAISON)):
        err = refused(town, cid, action, NotAllowed, actor, **valid(action))
        assert "only the node holding the case (pian)" in str(err), action
    act(town, cid, "supervise", **VALID["supervise"])  # it supervises instead
    assert cases.orders(town, cid)[0]["target"] == "pian"


# -- the state matrix: every action outside its states is an illegal transition --------------

@pytest.mark.parametrize("state", list(PATHS))
def test_actions_outside_their_states_are_illegal(chain, state):
    # A review is answered a level above the unit that replied; the city, at the top,
    # records its own: so cases in the review states are driven at the city.
    node = chain[0] if state in REVIEW_STATES else chain[1]
    cid, spare = drive(node, state)
    # (an urge or an order comes from above the holder, never from the holder itself:
    # whatever the state, the holder lacks the authority for it)
    illegal = [a for a, spec in EXPECTED.items()
               if a != "register" and state not in spec[3] and node.tier in spec[2]
               and cases.RULES[a].writer != "above_holder"]
    assert illegal
    for action in illegal:
        err = refused(node, cid, action, IllegalTransition, LEADER, **valid(action, spare))
        assert state in str(err), action


# -- acceptance, settling on the spot, assigning, referring out -------------------------------

def test_accept_at_town_starts_the_60_day_limit(town, clock):
    cid = reg(town, HANDLER)
    # Art. 23: decide on acceptance within 15 days: 11-23 + 15 = 12-08 (Tuesday).
    assert (row(town, cid)["due_on"], row(town, cid)["due_kind"]) == ("2026-12-08", "accept")
    clock.advance(days=3)
    act(town, cid, "accept", note="属民政职责")
    c = row(town, cid)
    assert (c["state"], c["holder"], c["accepted_on"]) == ("accepted", "qingshui", "2026-11-26")
    # Art. 34: 60 days from acceptance: 11-26 + 60 = 2027-01-25, a Monday (2027: weekends only).
    assert (c["due_on"], c["due_kind"]) == ("2027-01-25", "settle")


def test_not_accept_needs_a_reason_and_closes(town):
    cid = reg(town, HANDLER)
    act(town, cid, "not_accept", reason="已通过行政复议途径解决")
    c = row(town, cid)
    assert (c["state"], c["outcome"], c["closed_on"]) == (
        "not_accepted", "已通过行政复议途径解决", "2026-11-23")
    assert (c["due_on"], c["due_kind"]) == (None, None)


def test_settle_on_the_spot_at_a_village(village):
    cid = reg(village)
    refused(village, cid, "settle", ValidationError, LIAISON, reply="x", decision="maybe")
    act(village, cid, "settle", LIAISON, reply="已当场讲解政策，信访人表示理解")
    c = row(village, cid)
    assert (c["state"], c["holder"], c["decision"], c["delivery"], c["replied_on"]) == (
        "replied", "dongshan", "explain", "in_person", "2026-11-23")
    assert c["accepted_on"] is None
    # Follow-up visit the next working day: Monday 11-23 -> Tuesday 11-24.
    assert (c["due_on"], c["due_kind"]) == ("2026-11-24", "followup")


def test_assign_names_an_assignee_or_a_lead_leader(town):
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    err = refused(town, cid, "assign", ValidationError, note="请办理")  # nobody named
    assert err.params["field"] == "assignee"
    act(town, cid, "assign", LEADER, assignee="王办理", lead_leader="赵领导")
    c = row(town, cid)
    assert (c["state"], c["assignee"], c["lead_leader"]) == ("in_progress", "王办理", "赵领导")
    act(town, cid, "assign", lead_leader="钱副镇长")  # reassigning keeps it in progress
    assert (row(town, cid)["lead_leader"], row(town, cid)["assignee"]) == ("钱副镇长", "王办理")


def test_refer_out_closes_with_the_department(town):
    cid = reg(town, HANDLER, category="youfu")
    act(town, cid, "accept")
    act(town, cid, "refer_out", **VALID["refer_out"])
    c = row(town, cid)
    assert (c["state"], c["outcome"], c["closed_on"]) == (
        "referred_out", "退役军人事务局", "2026-11-23")


# -- routing: escalate up, refer down, sign for, return ----------------------------------------

def test_escalate_moves_the_case_one_level_up(escalated_once):
    city, town, area, village, cid = escalated_once
    for node in (village, area):
        c = row(node, cid)
        assert (c["holder"], c["state"], c["handover"]) == ("pian", "registered", None)
        assert (c["due_on"], c["due_kind"]) == ("2026-12-08", "forward")  # area: not deciding
    act(area, cid, "escalate", reason="需镇里协调")
    deliver(area, town)
    c = row(town, cid)
    assert (c["holder"], c["state"]) == ("zhen", "registered")
    # Now a deciding tier holds it: the acceptance limit, 11-23 + 15 = 12-08.
    assert (c["due_on"], c["due_kind"]) == ("2026-12-08", "accept")


def test_escalate_skipping_a_level_is_refused(chain):
    village = chain[3]
    cid = reg(village)
    err = refused(village, cid, "escalate", NotAllowed, LIAISON, to="zhen", reason="越级")
    assert "parent" in str(err)


def referred(chain, **fields):
    """The town accepts a case and refers it down to the area (delivered there)."""
    city, town, area, village = chain
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    act(town, cid, "refer", **{**VALID["refer"], **fields})
    deliver(town, area)
    return cid


def test_refer_down_sets_a_pending_handover_and_its_deadline(chain):
    city, town, area, village = chain
    cid = referred(chain)
    for node in (town, area):
        c = row(node, cid)
        assert (c["holder"], c["handover"], c["referred_by"], c["referred_on"],
                c["referral_due"], c["state"]) == (
            "pian", "pending", "zhen", "2026-11-23", "2026-12-10", "accepted")
        # The referral deadline 12-10 comes before the settle limit 2027-01-22.
        assert (c["due_on"], c["due_kind"]) == ("2026-12-10", "referral")


@pytest.mark.parametrize("fields, exc, field", [
    ({"deadline": "2026-11-22"}, ValidationError, "deadline"),  # yesterday
    ({"deadline": "2026-11-23"}, ValidationError, "deadline"),  # today is not ahead either
    ({"deadline": "2026-13-01"}, ValidationError, "deadline"),
    ({"to": "cun"}, NotAllowed, None),  # a grandchild, not a child
    ({"to": "shi"}, NotAllowed, None),  # up is escalate, not refer
])
def test_bad_referrals_are_refused(chain, fields, exc, field):
    town = chain[1]
    cid = reg(town, HANDLER)
    err = refused(town, cid, "refer", exc, **{**VALID["refer"], **fields})
    if field:
        assert err.params["field"] == field
    else:
        assert "child" in str(err)


def test_sign_for_a_referral(chain, clock):
    city, town, area, village = chain
    cid = referred(chain)
    refused(town, cid, "sign", NotAllowed, LIAISON)  # the referrer no longer holds it
    clock.advance(days=10)  # signing has no 5-day limit, only returning does
    act(area, cid, "sign", LIAISON, note="片长签收")
    c = row(area, cid)
    assert (c["handover"], c["holder"], c["referral_due"]) == ("signed", "pian", "2026-12-10")
    refused(area, cid, "sign", IllegalTransition, LIAISON)  # signed once
    refused(area, cid, "return", IllegalTransition, LIAISON, reason="x")  # signed: too late


def test_sign_without_a_referral_is_illegal(escalated_once):
    city, town, area, village, cid = escalated_once
    err = refused(area, cid, "sign", IllegalTransition, LIAISON)
    assert "no referral" in str(err)


# Art. 23: 5 working days after Monday 11-23 are 11-24, 25, 26, 27 and Monday 11-30.
@pytest.mark.parametrize("days, ok", [(7, True), (8, False), (10, False)])
def test_return_within_five_working_days(chain, clock, days, ok):
    city, town, area, village = chain
    cid = referred(chain)
    refused(town, cid, "return", NotAllowed, reason="x")  # only the holder returns
    clock.advance(days=days)
    if not ok:
        err = refused(area, cid, "return", IllegalTransition, reason="不属本片")
        assert "2026-11-30" in str(err)
        return
    act(area, cid, "return", reason="不属本片管辖")
    deliver(area, town)
    c = row(town, cid)
    assert (c["holder"], c["handover"], c["referral_due"], c["state"]) == (
        "zhen", "returned", None, "accepted")
    assert (c["due_on"], c["due_kind"]) == ("2027-01-22", "settle")  # 11-23 + 60
    act(town, cid, "reply", **VALID["reply"])  # the town decides again


# -- path actions: urge, note, supervision orders --------------------------------------------

def test_urge_counts_at_a_non_holder(escalated):
    city, town, area, village, cid = escalated
    act(town, cid, "urge", message="请尽快化解")
    act(town, cid, "urge", LEADER, message="再次催办")
    deliver(town, area)
    assert row(area, cid)["urge_count"] == row(town, cid)["urge_count"] == 2
    assert row(area, cid)["holder"] == "pian"


def test_supervision_order_lifecycle_and_who_may_do_each_step(escalated):
    city, town, area, village, cid = escalated
    refused(area, cid, "supervise", NotAllowed, **VALID["supervise"])  # not to oneself
    refused(town, cid, "supervise", ValidationError, instruction="x", deadline="2026-11-23")
    act(town, cid, "supervise", **VALID["supervise"])
    order_id = "DB-zhen-2026-0001"
    deliver(town, area)
    (o,) = cases.orders(area, cid)
    assert {k: o[k] for k in ("id", "issuer", "target", "status", "deadline", "issued_on")} == {
        "id": order_id, "issuer": "zhen", "target": "pian", "status": "issued",
        "deadline": "2026-12-20", "issued_on": "2026-11-23"}
    refused(town, cid, "supervise", IllegalTransition, order_id=order_id,
            **VALID["supervise"])  # the number is taken
    oid = {"order_id": order_id}
    refused(area, cid, "supervision_ack", NotFound, LIAISON, order_id="DB-zhen-2026-0099")
    refused(town, cid, "supervision_ack", NotAllowed, LIAISON, **oid)  # the issuer
    refused(town, cid, "supervision_close", IllegalTransition, **oid)  # no feedback yet
    act(area, cid, "supervision_ack", LIAISON, **oid)
    refused(area, cid, "supervision_ack", IllegalTransition, LIAISON, **oid)
    refused(town, cid, "supervision_feedback", NotAllowed, feedback="x", **oid)
    act(area, cid, "supervision_feedback", feedback="已入户核查，补发到位", **oid)
    deliver(area, town)
    refused(area, cid, "supervision_close", NotAllowed, **oid)  # the target may not close
    refused(town, cid, "supervision_close", NotAllowed, LIAISON, **oid)  # role
    act(town, cid, "supervision_close", **oid)
    deliver(town, area)
    for node in (town, area):
        (o,) = cases.orders(node, cid)
        assert (o["status"], o["acknowledged_on"], o["feedback"], o["feedback_on"],
                o["closed_on"]) == ("closed", "2026-11-23", "已入户核查，补发到位",
                                    "2026-11-23", "2026-11-23")
    refused(town, cid, "supervision_close", IllegalTransition, **oid)  # closed once


def test_an_order_number_reused_on_another_case_never_breaks_the_store(escalated):
    """The fold checks order numbers per case: a reuse elsewhere is refused or stored."""
    city, town, area, village, cid = escalated
    other = reg(village)
    act(village, other, "escalate", LIAISON, reason="x")
    deliver(village, town)
    act(town, cid, "supervise", order_id="DB-zhen-1", **VALID["supervise"])
    before = snapshot(town, other)
    try:
        act(town, other, "supervise", order_id="DB-zhen-1", **VALID["supervise"])
    except errors.NodeError:
        assert snapshot(town, other) == before
    else:
        assert [o["id"] for o in cases.orders(town, other)] == ["DB-zhen-1"]
        assert [o["id"] for o in cases.orders(town, cid)] == ["DB-zhen-1"]


def test_orders_with_one_number_from_two_issuers_can_both_be_received(escalated):
    """Two issuers' DB-1 orders on two cases are each legal: the area takes both (or refuses
    one with EventRefused), never fails inside the database."""
    city, town, area, village, cid = escalated
    other = reg(village)  # up to the city, which refers it down to the town
    act(village, other, "escalate", LIAISON, reason="x")
    deliver(village, area)
    act(area, other, "escalate", reason="x")
    deliver(area, town)
    act(town, other, "escalate", reason="x")
    deliver(town, city)
    act(city, other, "refer", to="zhen", instruction="请镇里办理", deadline="2026-12-20")
    deliver(city, town)
    act(town, cid, "supervise", order_id="DB-zhen-1", **VALID["supervise"])
    act(city, other, "supervise", order_id="DB-shi-1", **VALID["supervise"])
    refused(city, other, "supervise", NotAllowed, order_id="DB-zhen-2",
            **VALID["supervise"])  # a number in another issuer's series
    deliver(town, area)
    try:
        deliver(city, area)
    except errors.EventRefused:
        assert cases.orders(area, other) == []
    else:
        assert [o["issuer"] for o in cases.orders(area, other)] == ["shi"]
    assert [o["issuer"] for o in cases.orders(area, cid)] == ["zhen"]


# -- extension (Art. 34) -----------------------------------------------------------------------

def test_extend_once_by_a_leader_moves_the_settle_date(town):
    cid = reg(town, HANDLER)
    refused(town, cid, "extend", IllegalTransition, LEADER, **VALID["extend"])  # not accepted
    act(town, cid, "accept")
    assert row(town, cid)["due_on"] == "2027-01-22"  # 11-23 + 60, a Friday
    refused(town, cid, "extend", NotAllowed, HANDLER, **VALID["extend"])
    for days in (0, 31):
        err = refused(town, cid, "extend", ValidationError, LEADER,
                      **{**VALID["extend"], "days": days})
        assert err.params["field"] == "days"
    err = refused(town, cid, "extend", ValidationError, LEADER,
                  **{**VALID["extend"], "notice": None})  # Art. 34: the petitioner is told
    assert err.params["field"] == "notice"
    act(town, cid, "extend", LEADER, days=30, approver="赵镇长", reason="需调查取证",
        notice="邮寄")
    c = row(town, cid)
    # 11-23 + 90 = 2027-02-21, a Sunday -> Monday 2027-02-22.
    assert (c["extended_days"], c["due_on"], c["due_kind"]) == (30, "2027-02-22", "settle")
    assert last(town, cid).body["notice"] == "post"
    err = refused(town, cid, "extend", IllegalTransition, LEADER, **VALID["extend"])
    assert "only once" in str(err)


def test_an_extension_comes_before_the_limit_ends(town, clock):
    """Art. 34: extending a limit that has already passed is refused; on its last day it is
    still in time."""
    late, in_time = reg(town, HANDLER), reg(town, HANDLER)
    for cid in (late, in_time):
        act(town, cid, "accept")
    assert row(town, late)["due_on"] == "2027-01-22"
    at(clock, "2027-01-25")  # the Monday after
    assert "extend" not in cases.allowed_actions(town, LEADER, row(town, late))
    err = refused(town, late, "extend", IllegalTransition, LEADER, **VALID["extend"])
    assert "2027-01-22" in str(err) and "Art. 34" in str(err)
    at(clock, "2027-01-22")
    assert "extend" in cases.allowed_actions(town, LEADER, row(town, in_time))
    act(town, in_time, "extend", LEADER, **VALID["extend"])
    assert row(town, in_time)["extended_days"] == 10


def test_extend_respects_a_stricter_local_limit(make_node):
    town = make_node("town", "yanjiang", LIMITS={"extend_max": 15})
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    refused(town, cid, "extend", ValidationError, LEADER, **{**VALID["extend"], "days": 20})
    act(town, cid, "extend", LEADER, **VALID["extend"])  # 10 days
    assert row(town, cid)["due_on"] == "2027-02-01"  # 11-23 + 70, a Monday


# -- reply, follow-up, reopen, review, recheck, close ------------------------------------------

def test_full_lifecycle_to_concluded(town, clock):
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    act(town, cid, "assign", LEADER, assignee="王办理", lead_leader="赵领导")
    clock.advance(days=4)  # Friday 11-27
    act(town, cid, "reply", decision="support", reply="已补发三个月低保金", delivery="post")
    c = row(town, cid)
    assert (c["state"], c["decision"], c["delivery"], c["replied_on"]) == (
        "replied", "support", "post", "2026-11-27")
    # Follow-up the next working day after Friday 11-27: Monday 11-30.
    assert (c["due_on"], c["due_kind"]) == ("2026-11-30", "followup")
    act(town, cid, "followup", LIAISON, rating="satisfied")
    c = row(town, cid)
    assert (c["state"], c["rating"], c["due_on"]) == ("replied", "satisfied", None)
    act(town, cid, "close", LEADER, report="已办结，信访人满意", signers="赵领导，王办理")
    c = row(town, cid)
    assert (c["state"], c["outcome"], c["closed_on"], c["due_on"]) == (
        "concluded", "closed", "2026-11-27", None)
    assert c["event_count"] == 6 and c["needs_review"] == 0


def test_a_dissatisfied_petitioner_is_told_of_review_and_the_case_stays_answered(chain):
    """Art. 35: dissatisfaction leads to a review (复查), the petitioner's to ask for; the
    follow-up records the rating and that they were told, and nothing reopens by itself."""
    city, town, area, village = chain
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    act(town, cid, "reply", **VALID["reply"])
    err = refused(town, cid, "followup", ValidationError, LIAISON, rating="不满意")
    assert err.params["field"] == "told"
    act(town, cid, "followup", LIAISON, rating="不满意", told=True, note="信访人认为补发金额不对")
    c = row(town, cid)
    assert (c["state"], c["rating"], c["reopen_count"]) == ("replied", "dissatisfied", 0)
    assert (c["request_until"], c["request_kind"]) == ("2026-12-23", "review_request")
    assert last(town, cid).body["told"] is True
    act(town, cid, "review_request", LIAISON, note="信访人申请复查")
    assert row(town, cid)["state"] == "review_requested"


def test_satisfied_needs_no_telling_and_reopening_is_the_office_s_decision(town):
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    act(town, cid, "reply", **VALID["reply"])
    err = refused(town, cid, "followup", ValidationError, LIAISON, rating="满意", told="yes")
    assert err.params["field"] == "told"
    act(town, cid, "followup", LIAISON, rating="满意")
    assert "told" not in last(town, cid).body
    act(town, cid, "reopen", reason="答复未附计算依据")  # 发回重办, decided by the office
    assert (row(town, cid)["state"], row(town, cid)["reopen_count"]) == ("in_progress", 1)
    refused(town, cid, "reopen", IllegalTransition, reason="x")


def test_review_then_recheck_then_terminated(chain, clock):
    """Art. 35/36: the town replied, so the city (the level above) answers the review."""
    city, town, area, village = chain
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    act(town, cid, "reply", decision="reject", reply="不符合低保条件")
    clock.advance(days=2)  # Wednesday 11-25
    act(town, cid, "review_request", LIAISON, note="信访人申请复查")
    c = row(town, cid)
    # Art. 35: answer the review within 30 days: 11-25 + 30 = 12-25, a Friday.
    assert (c["state"], c["due_on"], c["due_kind"]) == ("review_requested", "2026-12-25",
                                                        "review")
    err = refused(town, cid, "review", NotAllowed, **VALID["review"])  # not its own reply
    assert "Art. 35" in str(err)
    act(town, cid, "escalate", LIAISON, reason="申请复查，报上级")
    deliver(town, city)
    act(city, cid, "review", decision="explain", answer="维持原答复")
    assert (row(city, cid)["state"], row(city, cid)["decision"]) == ("reviewed", "explain")
    clock.advance(days=5)  # Monday 11-30
    act(city, cid, "recheck_request", LIAISON)
    c = row(city, cid)
    # Art. 36: 11-30 + 30 = 12-30, a Wednesday.
    assert (c["state"], c["due_on"], c["due_kind"]) == ("recheck_requested", "2026-12-30",
                                                        "recheck")
    err = refused(city, cid, "close", ValidationError, LEADER, **VALID["close"])
    assert err.params["field"] == "answer"
    # The province answers a re-review of the city's review; the city records it.
    act(city, cid, "close", LEADER, answer="复核维持", **VALID["close"])
    c = row(city, cid)
    assert (c["state"], c["closed_on"], c["due_on"]) == ("terminated", "2026-11-30", None)


def test_a_village_settled_case_is_reviewed_by_the_town(chain):
    city, town, area, village = chain
    cid = reg(village)
    act(village, cid, "settle", LIAISON, reply="已当场解释")
    act(village, cid, "review_request", LIAISON)
    refused(village, cid, "review", NotAllowed, HANDLER, **VALID["review"])  # tier
    act(village, cid, "escalate", LIAISON, reason="申请复查")
    deliver(village, area)
    refused(area, cid, "review", NotAllowed, HANDLER, **VALID["review"])  # an area decides none
    act(area, cid, "escalate", HANDLER, reason="报镇复查")
    deliver(area, town)
    act(town, cid, "review", HANDLER, **VALID["review"])
    act(town, cid, "recheck_request", LIAISON)
    err = refused(town, cid, "close", NotAllowed, LEADER, answer="x", **VALID["close"])
    assert "Art. 36" in str(err)  # the town may not re-review its own review
    act(town, cid, "escalate", HANDLER, reason="报市复核")
    deliver(town, city)
    act(city, cid, "close", LEADER, answer="复核维持", **VALID["close"])
    assert row(city, cid)["state"] == "terminated"


def test_review_must_be_requested_within_30_days_of_delivery(make_node, clock):
    """Art. 35: a review (复查) is requested within 30 days of receiving the reply; Art. 36:
    a recheck (复核) within 30 days of receiving the review answer."""
    city = make_node("city", "shi")
    cid = reg(city, HANDLER)
    act(city, cid, "accept")
    act(city, cid, "reply", decision="reject", reply="不符合低保条件")
    late, _ = drive(city, "replied")
    clock.advance(days=31)  # 11-23 + 30 = 12-23 was the last day; today is 12-24
    refused(city, late, "review_request", (IllegalTransition, ValidationError), LIAISON)
    clock.now = clock.now.replace(day=23)  # 12-23, the last day: still in time
    act(city, cid, "review_request", LIAISON)
    act(city, cid, "review", decision="explain", answer="维持")
    clock.advance(days=31)  # 12-23 + 30 = 2027-01-22 was the last day
    refused(city, cid, "recheck_request", (IllegalTransition, ValidationError), LIAISON)


def test_close_after_review_concludes(make_node):
    city = make_node("city", "shi")
    cid, _ = drive(city, "reviewed")
    refused(city, cid, "close", NotAllowed, HANDLER, **VALID["close"])  # leaders sign
    act(city, cid, "close", LEADER, **VALID["close"])
    assert row(city, cid)["state"] == "concluded"


# -- withdraw, merge, archive, correct, note ---------------------------------------------------

@pytest.mark.parametrize("state", ["registered", "in_progress", "replied", "reviewed"])
def test_withdraw_terminates(make_node, state):
    node = make_node("city" if state in REVIEW_STATES else "town")
    cid, _ = drive(node, state)
    act(node, cid, "withdraw", LIAISON, reason="信访人书面撤回")
    c = row(node, cid)
    assert (c["state"], c["outcome"], c["closed_on"]) == ("terminated", "withdrawn", "2026-11-23")


def test_only_the_holder_that_signed_or_the_referrer_terminates(chain):
    """A unit a case was referred down to may not terminate it before it signs for it; the
    unit that referred it may, taking it back; no one else may."""
    city, town, area, village = chain
    cid = referred(chain)  # the town accepted it and referred it to the area: pending
    deliver(area, village)
    assert "withdraw" not in cases.allowed_actions(area, LIAISON, row(area, cid))
    err = refused(area, cid, "withdraw", NoAuthority, LIAISON, **VALID["withdraw"])
    assert "has not signed for the referral" in str(err)
    err = refused(village, cid, "withdraw", NoAuthority, LIAISON, **VALID["withdraw"])
    assert "or the one that referred it down" in str(err)
    assert "withdraw" in cases.allowed_actions(town, HANDLER, row(town, cid))
    act(town, cid, "withdraw", HANDLER, reason="信访人书面撤回")
    c = row(town, cid)
    assert (c["state"], c["holder"], c["handover"], c["outcome"]) == (
        "terminated", "zhen", None, "withdrawn")
    deliver(town, area)
    assert row(area, cid) == c


def test_the_holder_terminates_once_it_has_signed_for_the_referral(chain):
    city, town, area, village = chain
    cid = referred(chain)
    act(area, cid, "sign", LIAISON)
    act(area, cid, "withdraw", LIAISON, reason="信访人书面撤回")
    assert (row(area, cid)["state"], row(area, cid)["holder"]) == ("terminated", "pian")


def test_merge_a_repeat_petition_into_an_open_case(town):
    first = reg(town, HANDLER)
    repeat = reg(town, HANDLER, repeat_of=first)
    closed, _ = drive(town, "concluded")
    err = refused(town, repeat, "merge", IllegalTransition, into=closed)
    assert closed in str(err)
    assert refused(town, repeat, "merge", ValidationError, into=repeat).params["field"] == "into"
    refused(town, repeat, "merge", NotFound, into="Z-qingshui-2026-0099")
    act(town, repeat, "merge", into=first, reason="重复信访")
    c = row(town, repeat)
    assert (c["state"], c["merged_into"], c["closed_on"]) == ("merged", first, "2026-11-23")
    assert row(town, first)["state"] == "registered"
    refused(town, first, "merge", IllegalTransition, into=repeat)  # into a merged case


def test_archive_only_closed_and_only_once(town):
    open_case = reg(town, HANDLER)
    refused(town, open_case, "archive", IllegalTransition)
    cid, _ = drive(town, "not_accepted")
    act(town, cid, "archive", ADMIN, note="归档")
    c = row(town, cid)
    assert (c["archived"], c["state"]) == (1, "not_accepted")
    err = refused(town, cid, "archive", IllegalTransition)
    assert "already archived" in str(err)


def test_correct_changes_fields_and_needs_a_reason(village):
    cid = reg(village)
    err = refused(village, cid, "correct", ValidationError, LIAISON, summary="新摘要")
    assert err.params["field"] == "reason"
    refused(village, cid, "correct", ValidationError, LIAISON, reason="无")  # nothing to fix
    err = refused(village, cid, "correct", ValidationError, LIAISON, category="水电", reason="x")
    assert err.params["field"] == "category"
    act(village, cid, "correct", LIAISON, summary="低保金五个月未发放",
        category="特困供养与临时救助", reason="登记时听错")
    c = row(village, cid)
    assert (c["summary"], c["category"], c["state"]) == ("低保金五个月未发放", "tekun",
                                                         "registered")
    assert c["event_count"] == 2


def test_note_is_allowed_on_a_closed_case(town):
    cid, _ = drive(town, "concluded")
    act(town, cid, "note", LIAISON, text="回访时信访人表示感谢")
    assert row(town, cid)["event_count"] == 5 and row(town, cid)["state"] == "concluded"


# -- allowed_actions agrees with act -----------------------------------------------------------

def test_allowed_actions_by_tier_and_holder(escalated):
    city, town, area, village, cid = escalated
    own = reg(village)
    village_acts = cases.allowed_actions(village, LIAISON, row(village, own))
    assert {"settle", "escalate", "correct", "withdraw", "note"} <= set(village_acts)
    assert not {"accept", "reply", "refer", "urge", "close"} & set(village_acts)
    town_acts = cases.allowed_actions(town, LEADER, row(town, cid))  # held by the area
    assert {"urge", "supervise", "note"} <= set(town_acts)
    # the one decision the town keeps: it referred the case down, so it may take it back
    assert [a for a in town_acts if cases.RULES[a].decision] == ["withdraw"]
    city_own = reg(city, HANDLER)
    assert "escalate" not in cases.allowed_actions(city, LEADER, row(city, city_own))


def test_sign_and_return_are_offered_only_while_a_referral_waits(chain):
    city, town, area, village = chain
    cid = referred(chain)
    assert {"sign", "return"} <= set(cases.allowed_actions(area, LIAISON, row(area, cid)))
    own = reg(village)
    offered = cases.allowed_actions(village, LIAISON, row(village, own))
    assert not {"sign", "return"} & set(offered), offered


# -- deadlines and the overdue / due-soon listings ---------------------------------------------

@pytest.mark.parametrize("registered, due", [
    (datetime(2026, 11, 27, 2, tzinfo=UTC), "2026-12-14"),  # Fri; +15 = Sat 12-12 -> Mon 12-14
    (datetime(2026, 9, 16, 2, tzinfo=UTC), "2026-10-08"),  # +15 = 10-01, 国庆 10-01..07 off
    (datetime(2026, 9, 10, 2, tzinfo=UTC), "2026-09-28"),  # +15 = 09-25, 中秋 09-25..27 off
    (datetime(2026, 9, 5, 2, tzinfo=UTC), "2026-09-20"),  # +15 = Sun 09-20, a 调休 working day
])
def test_forward_limit_moves_past_rest_days(village, clock, registered, due):
    clock.now = registered
    cid = reg(village)
    assert (row(village, cid)["due_on"], row(village, cid)["due_kind"]) == (due, "forward")


def test_dates_and_numbers_follow_beijing_time(village, clock):
    clock.now = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # 23:30 on 12-31 in Beijing
    last = reg(village)
    clock.advance(hours=1)  # 00:30 on 2027-01-01 in Beijing, still 12-31 in UTC
    first = reg(village)
    assert (last, row(village, last)["registered_on"]) == ("C-dongshan-2026-0001", "2026-12-31")
    assert (first, row(village, first)["registered_on"]) == ("C-dongshan-2027-0001", "2027-01-01")


def test_acceptance_limit_runs_from_when_the_town_receives_the_case(chain, clock):
    """Art. 23: the unit a petition is forwarded to decides on acceptance within 15 days of
    receiving it (自收到之日起), not of the village's registration."""
    city, town, area, village = chain
    cid = reg(village)  # Monday 11-23
    clock.advance(days=10)  # Thursday 12-03: forwarded within the village's 15 days
    act(village, cid, "escalate", LIAISON, reason="村内无法调解")
    deliver(village, area)
    act(area, cid, "escalate", reason="需镇里受理")
    deliver(area, town)
    c = row(town, cid)
    # 12-03 + 15 = 12-18, a Friday; counted from the registration it would be 12-08.
    assert (c["holder"], c["due_on"], c["due_kind"]) == ("zhen", "2026-12-18", "accept")


def test_overdue_and_due_soon_listings(village, clock):
    late = reg(village)  # forward limit 12-08
    assert cases.listing(village, due="overdue") == []
    assert cases.listing(village, due="soon") == []  # 15 days away
    clock.advance(days=13)  # Sunday 12-06: two days left
    assert [r["id"] for r in cases.listing(village, due="soon")] == [late]
    clock.advance(days=7)  # Sunday 12-13: five days over
    fresh = reg(village)
    rows = cases.listing(village, due="overdue")
    assert [(r["id"], r["days_overdue"]) for r in rows] == [(late, 5)]
    assert {r["id"]: r["days_overdue"] for r in cases.listing(village)} == {late: 5, fresh: 0}
    act(village, late, "settle", LIAISON, reply="已化解")  # replied: a follow-up is due instead
    assert cases.listing(village, due="overdue") == []
    with pytest.raises(ValidationError):
        cases.listing(village, due="later")


# -- concurrent decisions ----------------------------------------------------------------------
#
# Through the public API a node always builds on every head it has (log.append takes all of
# them as prev) and only the holder may decide, so honest nodes in one process cannot make two
# decisions on a case that did not see each other: the holder changes only by the holder's own
# decision. In the field it happens when one node's log forks (a database restored from a
# backup, or the same keys running twice). We make that fork directly: an event signed with
# the village's key whose prev is only the registration, delivered with log.receive.

def forked(village, cid, type_, body, seq=3):
    return events.sign(village.signer, origin="cun", seq=seq, ts=village.now(), actor="liu",
                       role="liaison", type=type_, subject=cid, prev=(f"cun:{seq - 2}",),
                       body=body)


def receive(node, *evs):
    with store.write(node.db):
        return [log.receive(node, e) for e in evs]


def test_two_concurrent_decisions_are_flagged_for_review(chain):
    city, town, area, village = chain
    cid = reg(village)
    act(village, cid, "correct", LIAISON, summary="低保金停发", reason="补充")  # cun:2
    fork = forked(village, cid, "case.settled", {"reply": "已当场解释"})  # cun:3, parallel
    first, second = (log.get_event(village.db, f"cun:{i}") for i in (1, 2))
    assert receive(area, first, second, fork) == ["applied"] * 3
    assert receive(town, first, fork, second) == ["applied"] * 3  # another arrival order
    c = row(area, cid)
    assert (c["state"], c["summary"], c["needs_review"]) == ("replied", "低保金停发", 1)
    assert json.loads(c["conflicts"]) == ["cun:3"]
    assert json.loads(c["heads"]) == ["cun:2", "cun:3"]
    assert row(town, cid) == c


def test_a_concurrent_decision_that_no_longer_fits_loses(chain):
    city, town, area, village = chain
    cid = reg(village)
    act(village, cid, "escalate", LIAISON, reason="村内无法调解")  # cun:2: area holds it
    fork = forked(village, cid, "case.settled", {"reply": "已当场解释"})
    deliver(village, area)
    assert receive(area, fork) == ["applied"]  # legal in its own past, so stored
    c = row(area, cid)
    assert (c["state"], c["holder"], c["reply"], c["needs_review"]) == (
        "registered", "pian", None, 1)
    assert json.loads(c["conflicts"]) == ["cun:3"]
    act(area, cid, "escalate", reason="需镇里协调")  # the flagged case still moves on
    assert row(area, cid)["holder"] == "zhen"


@given(stamps=st.lists(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
                       min_size=1, max_size=30),
       zone=st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/St_Johns",
                             "Asia/Kathmandu", "Australia/Lord_Howe"]))
def test_local_dates_of_one_context_match_converting_each_stamp(stamps, zone):
    """The context remembers a date per UTC minute: in any order, across daylight-saving
    changes and zones off by half or quarter hours, it gives what converting gives."""
    tz = ZoneInfo(zone)
    ctx = cases.FoldContext(tiers={}, parents={}, calendar=None, limits={}, tz=tz)
    for stamp in stamps + stamps[::-1]:
        ts = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert ctx.local_date(ts) == stamp.replace(tzinfo=UTC).astimezone(tz).date()


# -- 2027: the statutory holidays, provisionally; a new calendar counts again ----------------

def at(clock, day: str) -> None:
    clock.now = datetime.fromisoformat(day + "T02:00:00+00:00")  # 10:00 in Beijing


@pytest.mark.parametrize("accepted, due", [
    ("2026-12-07", "2027-02-11"),  # + 60 = 02-05 除夕; 春节 to 初三 and two days made up
    ("2026-12-08", "2027-02-11"),  # + 60 = 02-06 初一
])
def test_settle_limits_across_the_2027_spring_festival(town, clock, accepted, due):
    at(clock, accepted)
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    c = row(town, cid)
    assert (c["due_on"], c["due_kind"], c["due_provisional"]) == (due, "settle", 1)


def test_a_limit_ending_on_new_year_2027_moves_to_monday(village, town, clock):
    at(clock, "2026-12-17")
    for node, kind in ((village, "forward"), (town, "accept")):
        cid = reg(node, LEADER)
        c = row(node, cid)
        assert (c["due_on"], c["due_kind"], c["due_provisional"]) == ("2027-01-04", kind, 1)
    at(clock, "2026-12-01")
    cid = reg(town, HANDLER)
    assert (row(town, cid)["due_on"], row(town, cid)["due_provisional"]) == ("2026-12-16", 0)


def test_a_review_asked_on_the_first_working_day_of_2027_is_in_time(make_node, clock):
    """Art. 35: a reply delivered 2026-12-02; 30 days end on 01-01, 元旦, so a request on
    Monday 01-04 is in time, and one on 01-05 is late."""
    city = make_node("city", "shi")
    at(clock, "2026-12-02")
    ids = []
    for _ in range(2):
        cid = reg(city, HANDLER)
        act(city, cid, "accept")
        act(city, cid, "reply", decision="reject", reply="不符合低保条件")
        ids.append(cid)
    assert (row(city, ids[0])["request_until"], row(city, ids[0])["request_kind"],
            row(city, ids[0])["request_provisional"]) == ("2027-01-04", "review_request", 1)
    at(clock, "2027-01-04")
    act(city, ids[0], "review_request", LIAISON)
    at(clock, "2027-01-05")
    err = refused(city, ids[1], "review_request", IllegalTransition, LIAISON)
    assert "2027-01-04" in str(err)


ARRANGEMENT_2027 = """
[2027]
source = "test: an arrangement of 2027"
off = [["2027-01-01", "2027-01-03"], ["2027-02-05", "2027-02-13"]]
work = ["2027-02-14"]
"""


def test_a_new_calendar_counts_every_open_deadline_again(town, clock, tmp_path):
    at(clock, "2026-12-07")
    cid = reg(town, HANDLER)
    act(town, cid, "accept")
    done = reg(town, HANDLER)
    act(town, done, "not_accept", reason="不属于民政部门职权")
    assert (row(town, cid)["due_on"], row(town, cid)["due_provisional"]) == ("2027-02-11", 1)
    assert cases.recount(town) == []  # the same calendar: nothing to do
    (town.dir / "h2027.toml").write_text(ARRANGEMENT_2027, encoding="utf-8")
    town.settings["HOLIDAY_FILES"] = ["h2027.toml"]
    del town.calendar  # (a node opened again reads its files again)
    assert cases.calendar_changed(town)
    before = snapshot(town)
    with store.write(town.db):
        changes = cases.recount(town)
    assert [(c["case_id"], c["kind"], c["old_on"], c["new_on"], c["old_provisional"],
             c["new_provisional"], c["years"]) for c in changes] == [
        (cid, "settle", "2027-02-11", "2027-02-14", 1, 0, "2027")]
    assert (row(town, cid)["due_on"], row(town, cid)["due_provisional"]) == ("2027-02-14", 0)
    assert snapshot(town)["events"] == before["events"]  # no event: the calendar is local
    assert cases.deadline_changes(town, cid) == [{k: v for k, v in changes[0].items()
                                                  if k != "case_id"}]
    assert not cases.calendar_changed(town)
    rows = town.db.conn.execute("SELECT * FROM cases ORDER BY id").fetchall()
    with store.write(town.db):
        log.rebuild(town)
    assert town.db.conn.execute("SELECT * FROM cases ORDER BY id").fetchall() == rows
    assert cases.deadline_changes(town, cid)  # a rebuild keeps the record


def test_the_admins_banner_names_every_year_a_provisional_deadline_falls_in(town, clock):
    at(clock, "2026-06-01")
    ids = [reg(town, HANDLER) for _ in range(6)]
    # (set on the rows: what matters here is finding their years, not how they came to be)
    for cid, marks in zip(ids, [("2029-03-01", 1, None, 0), ("2029-12-31", 1, "2031-01-01", 1),
                                ("2033-01-01", 0, "2030-05-05", 0), ("2040-07-07", 1, None, 0),
                                ("2025-02-02", 1, "2025-03-03", 1),
                                ("9999-12-31", 1, None, 0)], strict=True):  # (the last year)
        with store.write(town.db):
            town.db.conn.execute("UPDATE cases SET due_on = ?, due_provisional = ?, "
                                 "request_until = ?, request_provisional = ? WHERE id = ?",
                                 (*marks, cid))
    every = {2026, 2027} | {int(r[0]) for r in town.db.conn.execute(  # read the slow way
        "SELECT substr(due_on, 1, 4) FROM cases WHERE due_provisional = 1 UNION "
        "SELECT substr(request_until, 1, 4) FROM cases WHERE request_provisional = 1")}
    assert {2029, 2031, 2040, 2025} <= every and 2033 not in every and 2030 not in every
    assert cases.calendar_gaps(town) == sorted(y for y in every
                                               if not town.calendar.covers(y))
    assert {2029, 9999} <= set(cases.calendar_gaps(town)) and 2025 not in cases.calendar_gaps(town)


# -- the regulation's rules (issue 17) ----------------------------------------------------

def test_closing_the_day_of_the_reply_leaves_the_review_open(chain, clock):
    """Art. 35: the 30 days from delivery run whether or not the case was closed."""
    city, town, area, village = chain
    cid, late = reg(town, HANDLER), reg(town, HANDLER)
    for c in (cid, late):
        act(town, c, "accept")
        act(town, c, "reply", decision="reject", reply="不符合低保条件")
        act(town, c, "close", LEADER, **VALID["close"])
    closed = row(town, cid)
    assert (closed["state"], closed["request_until"], closed["request_kind"]) == (
        "concluded", "2026-12-23", "review_request")
    assert "review_request" in cases.allowed_actions(town, LIAISON, closed)
    act(town, cid, "review_request", LIAISON, note="信访人申请复查")
    c = row(town, cid)
    assert (c["state"], c["closed_on"], c["due_kind"], c["request_until"]) == (
        "review_requested", None, "review", None)
    act(town, cid, "escalate", LIAISON, reason="申请复查，报上级")
    deliver(town, city)
    act(city, cid, "review", decision="explain", answer="维持原答复")
    act(city, cid, "close", LEADER, **VALID["close"])
    # closed again after the review: now the re-review is open, and the review is spent
    c = row(city, cid)
    assert (c["state"], c["request_kind"]) == ("concluded", "recheck_request")
    act(city, cid, "recheck_request", LIAISON)
    assert row(city, cid)["state"] == "recheck_requested"
    at(clock, "2026-12-24")  # the day after the last day: the closed case stays closed
    assert "review_request" not in cases.allowed_actions(town, LIAISON, row(town, late))
    err = refused(town, late, "review_request", IllegalTransition, LIAISON)
    assert "2026-12-23" in str(err)


def test_a_case_closed_without_a_reply_has_no_review(town):
    cid, _ = drive(town, "not_accepted")
    assert row(town, cid)["request_until"] is None
    refused(town, cid, "review_request", IllegalTransition, LIAISON)


def test_a_report_against_the_registering_unit_goes_to_the_unit_above(chain):
    """Art. 30: a report against a village is not held by that village."""
    city, town, area, village = chain
    cid = reg(village, accused_unit="cun", nature="accusation")
    c = row(village, cid)
    assert (c["holder"], c["accused_unit"], c["due_kind"]) == ("pian", "cun", "forward")
    refused(village, cid, "settle", NotAllowed, LIAISON, reply="x")  # not the holder
    deliver(village, area)
    act(area, cid, "escalate", reason="报镇处理")
    assert row(area, cid)["holder"] == "zhen"
    plain = reg(village)
    assert row(village, plain)["holder"] == "cun"


def test_a_report_against_the_parent_skips_it(chain):
    """Art. 30: a report against the area, registered in its village, goes to the town;
    one against the town, held by the area, goes to the city: never through the unit."""
    city, town, area, village = chain
    cid = reg(village, accused_unit="pian", nature="accusation")
    assert cases.commands._escalate_to(village, row(village, cid)) == "zhen"
    act(village, cid, "escalate", LIAISON, reason="反映片区干部问题")
    assert row(village, cid)["holder"] == "zhen"
    err = refused(village, reg(village, accused_unit="pian"), "escalate", NotAllowed, LIAISON,
                  to="shi", reason="x")
    assert "unit above it" in str(err)
    err = refused(village, reg(village, accused_unit="pian"), "escalate", NotAllowed, LIAISON,
                  to="pian", reason="x")
    assert "Art. 30" in str(err)
    against_town = reg(area, HANDLER, accused_unit="zhen", nature="accusation")
    act(area, against_town, "escalate", reason="反映镇干部问题")
    assert row(area, against_town)["holder"] == "shi"
    plain = reg(area, HANDLER)  # without an accused parent, no level is skipped
    refused(area, plain, "escalate", NotAllowed, to="shi", reason="越级")


def test_routing_keeps_the_accused_out_of_the_circle():
    tree = routing.Tree(parents={"cun": "pian", "pian": "zhen", "zhen": "shi", "shi": None},
                        tiers={"cun": "village", "pian": "area", "zhen": "town",
                               "shi": "city"})
    own = [("cun", "case.registered", "cun", None)]
    assert routing.case_circle(own, tree) == {"pian"}
    skip = [("pian", "case.registered", "zhen", None), ("pian", "case.escalated", None, "shi")]
    assert routing.case_circle(skip, tree) == {"pian", "shi"}
    reg_ = [("cun", "case.registered", None, None)]
    assert routing.case_circle(reg_, tree) == {"cun"}
    assert routing.case_circle(reg_, tree, collective=True) == {"cun", "pian", "zhen", "shi"}
    accused = [("cun", "case.registered", "zhen", None)]
    assert routing.case_circle(accused, tree, collective=True) == {"cun", "pian"}
    itself = [("cun", "case.registered", "cun", None)]
    assert routing.case_circle(itself, tree, collective=True) == {"pian", "zhen", "shi"}


def test_a_collective_petition_goes_up_the_same_day_as_an_urgent_event(chain, make_node):
    """Art. 25: registering 集体访 writes an urgent same-day report; every level above has
    the case and may urge it, though the village still holds it."""
    city, town, area, village = chain
    heard = []
    stop = log.on_urgent(lambda: heard.append(1))
    try:
        cid = reg(village, people_count=30)
    finally:
        stop()
    assert heard
    assert [e.type for e in log.subject_events(village.db, cid)] == [
        "case.registered", "case.reported"]
    assert "case.reported" in registry.urgent_types()
    for src, dst in ((village, area), (area, town), (town, city)):
        deliver(src, dst)
    assert row(city, cid)["holder"] == "cun" and row(city, cid)["collective"] == 1
    act(city, cid, "urge", message="请当日稳控并报告")
    refused(village, cid, "report", IllegalTransition, LIAISON)  # once
    few = reg(village, people_count=4)
    assert [e.type for e in log.subject_events(village.db, few)] == ["case.registered"]
    err = refused(village, few, "report", IllegalTransition, LIAISON)
    assert "collective" in str(err)
    small = make_node("village", "xiaocun", COLLECTIVE_MIN_PEOPLE=3)
    assert len(log.subject_events(small.db, reg(small, people_count=3))) == 2  # configurable
