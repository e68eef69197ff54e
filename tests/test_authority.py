"""Authority, both ways: for every event type, the rightful writer's event is accepted, and
the same event signed by every other position of a four-tier tree is refused wherever it
arrives, changing nothing. Real keys, real signatures; the forger knows the subject's heads.

    shi (city) ─┬─ zhen (town) ─┬─ pian (area) ─┬─ cun (village)    registrant / raiser
                │               │               ├─ cun2 (village)   its sibling
                │               │               └─ cun4 (village)   revoked by pian
                │               └─ pian2 (area) ── cun3 (village)   cousins
                └─ zhen2 (town) ── pian3 (area)                     an unrelated town
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import LEADER, LIAISON, Clock, NodeFactory, case_fields, deliver, pin
from test_cases import VALID
from test_log import dump

from node import cases, events, figures, log, membership, repeats, store, warnings
from node.errors import EventRefused
from node.tiers import TIER_ROLES

HANDLER = log.Actor("wang", "handler")
TREE = (("shi", "city", None), ("zhen", "town", "shi"), ("pian", "area", "zhen"),
        ("cun", "village", "pian"), ("cun2", "village", "pian"), ("cun4", "village", "pian"),
        ("pian2", "area", "zhen"), ("cun3", "village", "pian2"), ("zhen2", "town", "shi"),
        ("pian3", "area", "zhen2"))
NAMES = [name for name, _, _ in TREE]
_seq = itertools.count(10_000)  # forged sequence numbers: never one a node used itself


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    factory = NodeFactory(tmp_path_factory.mktemp("authority"),
                          Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC)))
    nodes: dict = {}
    for name, tier, parent in TREE:
        nodes[name] = factory(tier, name, parent=nodes.get(parent))
    for a, b in itertools.permutations(nodes.values(), 2):
        pin(a, b)
    with store.write(nodes["pian"].db):
        membership.revoke(nodes["pian"], log.Actor("admin", "admin"), "cun4", "设备丢失")
    for name in NAMES:
        if name != "pian":
            deliver(nodes["pian"], nodes[name])
    yield nodes
    factory.close()


def act(node, cid, action, actor=HANDLER, **fields):
    with store.write(node.db):
        return cases.act(node, actor, cid, action, fields)


def spread(tree, src, *names):
    for name in names:
        deliver(tree[src], tree[name])


def role_for(tier: str, roles) -> str:
    """The forger claims the best role its tier has: one the rule allows, if any."""
    usable = [r for r in roles if r in TIER_ROLES[tier]]
    return usable[0] if usable else TIER_ROLES[tier][0]


def forge(node, type_, subject, body, prev, roles, actor="x") -> events.Event:
    return events.sign(node.signer, origin=node.id, seq=next(_seq), ts=node.now(),
                       actor=actor, role=role_for(node.tier, roles), type=type_,
                       subject=subject, prev=prev, body=body)


def refused_at(receivers, event) -> None:
    for node in receivers:
        before = dump(node)
        with pytest.raises(EventRefused), store.write(node.db):
            log.receive(node, event)
        assert dump(node) == before, (node.id, event.id)


def heads(node, subject):
    return log.heads(log.subject_events(node.db, subject))


# -- cases ------------------------------------------------------------------------------

def stage(tree, upto: str) -> str:
    """A case registered at cun and taken ``upto``: village (cun holds it), area (pian),
    town (zhen), referred (zhen referred it back to pian, pending), each step delivered to
    every node of its circle."""
    cun, pian, zhen = tree["cun"], tree["pian"], tree["zhen"]
    with store.write(cun.db):
        cid = cases.register(cun, LIAISON, case_fields()).subject
    if upto == "village":
        return cid
    act(cun, cid, "escalate", LIAISON, reason="村内无法调解")
    spread(tree, "cun", "pian")
    if upto == "area":
        return cid
    act(pian, cid, "escalate", reason="片区协调不成")
    spread(tree, "pian", "zhen", "cun")
    if upto == "town":
        return cid
    act(zhen, cid, "refer", to="pian", instruction="请片区先行调解", deadline="2026-12-20")
    spread(tree, "zhen", "pian", "cun")
    return cid


# action: (stage, steps before it [(node, action, actor, fields)], rightful writers, actor
# of the rightful writer, fields (a dict, or a function of the case id and the writer))
CASES = {
    "accept": ("town", [], {"zhen"}, HANDLER, {}),
    "not_accept": ("town", [], {"zhen"}, HANDLER, VALID["not_accept"]),
    "settle": ("village", [], {"cun"}, LIAISON, VALID["settle"]),
    "assign": ("town", [("zhen", "accept", HANDLER, {})], {"zhen"}, HANDLER, VALID["assign"]),
    "refer_out": ("town", [], {"zhen"}, HANDLER, VALID["refer_out"]),
    "escalate": ("village", [], {"cun"}, LIAISON, {"to": "pian", "reason": "需片区协调"}),
    "refer": ("town", [("zhen", "accept", HANDLER, {})], {"zhen"}, HANDLER,
              {"to": "pian", "instruction": "请核实", "deadline": "2026-12-10"}),
    "sign": ("referred", [], {"pian"}, HANDLER, {}),
    "return": ("referred", [], {"pian"}, HANDLER, VALID["return"]),
    "urge": ("referred", [], {"zhen"}, HANDLER, VALID["urge"]),
    "urge_ack": ("referred", [("zhen", "urge", HANDLER, VALID["urge"])], {"pian"}, HANDLER,
                 lambda tree, cid, who: {"urge": next(
                     e.id for e in log.subject_events(tree["pian"].db, cid)
                     if e.type == "case.urged")}),
    "supervise": ("referred", [], {"zhen"}, HANDLER,
                  lambda tree, cid, who: {"order_id": f"DB-{who}-2026-0001",
                                          **VALID["supervise"]}),
    "supervision_ack": ("referred", [("zhen", "supervise", HANDLER, {
        "order_id": "DB-zhen-2026-0001", **VALID["supervise"]})], {"pian"}, HANDLER,
        {"order_id": "DB-zhen-2026-0001"}),
    "supervision_feedback": ("referred", [("zhen", "supervise", HANDLER, {
        "order_id": "DB-zhen-2026-0001", **VALID["supervise"]})], {"pian"}, HANDLER,
        {"order_id": "DB-zhen-2026-0001", "feedback": "已办理"}),
    "supervision_close": ("referred", [
        ("zhen", "supervise", HANDLER, {"order_id": "DB-zhen-2026-0001", **VALID["supervise"]}),
        ("pian", "supervision_feedback", HANDLER, {"order_id": "DB-zhen-2026-0001",
                                                   "feedback": "已办理"})],
        {"zhen"}, HANDLER, {"order_id": "DB-zhen-2026-0001"}),
    "extend": ("town", [("zhen", "accept", HANDLER, {})], {"zhen"}, LEADER, VALID["extend"]),
    "reply": ("town", [("zhen", "accept", HANDLER, {})], {"zhen"}, HANDLER, VALID["reply"]),
    "followup": ("town", [("zhen", "accept", HANDLER, {}), ("zhen", "reply", HANDLER,
                                                            VALID["reply"])],
                 {"cun", "pian", "zhen"}, LIAISON, VALID["followup"]),
    "reopen": ("town", [("zhen", "accept", HANDLER, {}), ("zhen", "reply", HANDLER,
                                                          VALID["reply"])],
               {"zhen"}, HANDLER, VALID["reopen"]),
    "review_request": ("town", [("zhen", "accept", HANDLER, {}),
                                ("zhen", "reply", HANDLER, VALID["reply"])],
                       {"cun", "pian", "zhen"}, LIAISON, {}),
    "close": ("town", [("zhen", "accept", HANDLER, {}), ("zhen", "reply", HANDLER,
                                                         VALID["reply"])],
              {"zhen"}, LEADER, VALID["close"]),
    "withdraw": ("village", [], {"cun"}, LIAISON, VALID["withdraw"]),
    "archive": ("town", [("zhen", "not_accept", HANDLER, VALID["not_accept"])], {"zhen"},
                HANDLER, {}),
    "note": ("area", [], {"cun", "pian"}, LIAISON, VALID["note"]),
    "correct": ("village", [], {"cun"}, LIAISON, VALID["correct"]),
}


def holder_of(tree, cid) -> str:
    return cases.get(tree["cun"], cid)["holder"]


@pytest.mark.parametrize("action", sorted(CASES))
def test_a_case_action_from_any_other_position_is_refused(tree, action):
    upto, steps, rightful, actor, fields = CASES[action]
    cid = stage(tree, upto)
    for name, step, who, body in steps:
        act(tree[name], cid, step, who, **body)
        spread(tree, name, *({"cun", "pian", "zhen"} - {name}))
    circle = {"cun"} | ({"pian"} if upto != "village" else set()) | (
        {"zhen"} if upto in ("town", "referred") else set())
    receivers = [tree[n] for n in sorted(circle)]
    rule = cases.RULES[action]
    prev = heads(tree["cun"], cid)
    for name in NAMES:
        if name in rightful:
            continue
        body = fields(tree, cid, name) if callable(fields) else dict(fields)
        body = rule.clean(body)
        refused_at(receivers, forge(tree[name], rule.type, cid, body, prev, rule.roles))
    writer = sorted(rightful)[0]
    body = fields(tree, cid, writer) if callable(fields) else dict(fields)
    event = act(tree[writer], cid, action, actor, **body)
    for node in receivers:
        if node.id != writer:
            with store.write(node.db):
                assert log.receive(node, log.get_event(tree[writer].db, event.id)) in (
                    "applied", "duplicate"), node.id


def test_the_review_is_answered_only_by_the_level_above_that_holds_it(tree):
    cid = stage(tree, "town")
    zhen, shi = tree["zhen"], tree["shi"]
    act(zhen, cid, "accept")
    act(zhen, cid, "reply", **VALID["reply"])
    act(zhen, cid, "review_request", LIAISON)
    act(zhen, cid, "escalate", reason="申请复查，报市")
    spread(tree, "zhen", "shi", "pian", "cun")
    rule, prev = cases.RULES["review"], heads(shi, cid)
    body = rule.clean(dict(VALID["review"]))
    for name in NAMES:
        if name != "shi":
            refused_at([shi, zhen], forge(tree[name], rule.type, cid, body, prev, rule.roles))
    act(shi, cid, "review", **VALID["review"])
    # now the petitioner may ask for a re-review through any node of the circle, no other
    rule, prev = cases.RULES["recheck_request"], heads(shi, cid)
    spread(tree, "shi", "zhen")
    for name in set(NAMES) - {"cun", "pian", "zhen", "shi"}:
        refused_at([shi, zhen], forge(tree[name], rule.type, cid, {}, prev, rule.roles))


def test_no_node_registers_a_case_in_another_nodes_series(tree):
    body = cases.RULES["register"].clean(case_fields(query_code="ABCDEFGH"))
    for name in NAMES:
        if name != "cun":
            refused_at([tree["cun"], tree["pian"]], forge(
                tree[name], "case.registered", "C-cun-2026-0999", body, (),
                cases.RULES["register"].roles))


def test_a_revoked_node_writes_nothing_even_as_the_holder(tree):
    """cun4 registered a case before pian revoked it; after the revocation its decisions
    on that case are refused where the revocation has arrived."""
    cun4, pian = tree["cun4"], tree["pian"]
    body = cases.RULES["settle"].clean({"reply": "已解释"})
    with store.write(cun4.db):
        cid = cases.register(cun4, LIAISON, case_fields()).subject
    refused_at([pian], forge(cun4, "case.settled", cid, body, heads(cun4, cid), ("liaison",)))


# -- warnings ---------------------------------------------------------------------------

def raised(tree) -> str:
    """A serious warning raised at cun: it reaches pian, zhen and the city."""
    cun = tree["cun"]
    with store.write(cun.db):
        wid = warnings.raise_warning(cun, LIAISON, {
            "subject": "征地补偿", "place": "东山村", "expected_size": 60,
            "destination": "beijing", "beijing_risk": True}).subject
    spread(tree, "cun", "pian", "zhen", "shi")
    return wid


ABOVE = {"pian", "zhen", "shi"}
WARNINGS = {  # action: (rightful writers, the actor of the rightful one, fields)
    "acknowledge": (ABOVE, HANDLER, {}),
    "handle": ({"cun"} | ABOVE, LIAISON, {"measures": "包案领导上门"}),
    "defuse": ({"cun"} | ABOVE, HANDLER, {"note": "已化解"}),
    "escalate": ({"cun"} | ABOVE, HANDLER, {"note": "报上级"}),
    "occurred": ({"cun"} | ABOVE, HANDLER, {"note": "已发生"}),
    "note": ({"cun"} | ABOVE, LIAISON, {"note": "继续关注"}),
}


@pytest.mark.parametrize("action", sorted(WARNINGS))
def test_a_warning_action_from_any_other_position_is_refused(tree, action):
    rightful, actor, fields = WARNINGS[action]
    wid = raised(tree)
    rule = warnings.RULES[action]
    receivers = [tree[n] for n in ("cun", "pian", "zhen")]
    prev = heads(tree["cun"], wid)
    body = rule.clean(dict(fields))
    for name in set(NAMES) - rightful:
        refused_at(receivers, forge(tree[name], rule.type, wid, body, prev, rule.roles))
    writer = "pian" if "pian" in rightful else sorted(rightful)[0]
    with store.write(tree[writer].db):
        event = warnings.act(tree[writer], actor, wid, action, dict(fields))
    for node in receivers:
        if node.id != writer:
            with store.write(node.db):
                assert log.receive(node, log.get_event(tree[writer].db, event.id)) == "applied"


@pytest.mark.parametrize("kind", ["receive", "alarm"])
def test_a_receipt_or_an_alarm_comes_only_from_above_the_raiser(tree, kind):
    wid = raised(tree)
    rule = warnings.AUTO[kind]
    prev = heads(tree["cun"], wid)
    for name in set(NAMES) - ABOVE:
        body = {} if kind == "receive" else {"node": name, "hours": 2}
        refused_at([tree["cun"], tree["pian"]], forge(tree[name], rule.type, wid, body, prev,
                                                      rule.roles, actor="system"))


def test_no_node_raises_a_warning_in_another_nodes_series(tree):
    body = warnings.RULES["raise"].clean({"subject": "x", "place": "y", "expected_size": 3})
    for name in NAMES:
        if name != "cun":
            refused_at([tree["cun"], tree["pian"]], forge(
                tree[name], "warning.raised", "YJ-cun-2026-0999", body, (), ("liaison",)))


# -- membership and figures ----------------------------------------------------------------

def test_membership_events_from_the_wrong_position_are_refused(tree):
    cun, pian, zhen = tree["cun"], tree["pian"], tree["zhen"]
    receivers = [cun, pian, zhen, tree["shi"]]
    for name in set(NAMES) - {"cun"}:  # only cun says which parent it joined
        refused_at(receivers, forge(tree[name], "node.joined", "N-cun", {"parent": name}, (),
                                    ("admin",), actor="system"))
    for name in set(NAMES) - {"shi"}:  # only the city confirms
        refused_at(receivers, forge(tree[name], "node.confirmed", "N-cun",
                                    {"enrollment": "pian:1"}, (), ("admin",), actor="system"))
    for name in set(NAMES) - {"pian", "zhen", "shi"}:  # only a node above revokes
        refused_at(receivers, forge(tree[name], "node.revoked", "N-cun", {"reason": "x"}, (),
                                    ("admin",), actor="admin"))


def test_a_sibling_cannot_take_another_units_child(tree):
    """pian2 certifies cun, with cun's real keys, as its own child: the enrollment is
    stored, but cun never joined pian2, so cun stays where it is, everywhere."""
    from node import trust
    cun, pian2 = tree["cun"], tree["pian2"]
    cert = trust.issue_certificate(
        pian2.signer, "pian2", node="cun", name="东山村", tier="village", parent="pian2",
        sign_pub=cun.signer.public_key().public_bytes_raw(),
        enc_pub=cun.enc_key.public_key().public_bytes_raw(),
        not_before=pian2.today(), not_after=pian2.today())
    event = events.sign(pian2.signer, origin="pian2", seq=next(_seq), ts="2099-01-01T00:00:00Z",
                        actor="system", role="admin", type="node.enrolled", subject="N-cun",
                        prev=(), body={"certificate": cert})
    for name in ("zhen", "pian", "shi", "cun3"):
        with store.write(tree[name].db):
            log.receive(tree[name], event)
        parent = tree[name].db.conn.execute(
            "SELECT parent_id FROM nodes WHERE node_id = 'cun'").fetchone()[0]
        assert parent == "pian", name


def test_figures_are_reported_by_each_node_for_itself_only(tree):
    body = {"month": "2026-11", "cases": [[23, "dibao", "visit", 1, 1]], "warnings": [],
            "overdue": []}
    subject = figures.subject_of("cun", "2026-11", tree["cun"].now())
    for name in set(NAMES) - {"cun"}:
        refused_at([tree["pian"], tree["zhen"]], forge(
            tree[name], figures.ROLLED_UP, subject, body, (), ("admin",), actor="system"))
    # the rightful writer is accepted, and only as the node itself (actor "system")
    refused_at([tree["pian"]], forge(tree["cun"], figures.ROLLED_UP, subject, body, (),
                                     ("admin",), actor="liu"))
    with store.write(tree["pian"].db):
        assert log.receive(tree["pian"], forge(tree["cun"], figures.ROLLED_UP, subject, body,
                                               (), ("admin",), actor="system")) == "applied"


def test_a_relay_of_digests_comes_only_from_above_their_registrant_in_its_own_name(tree):
    """Issue 19: a node relays its children's digests in its own events (repeat.relayed);
    it may relay only cases registered below it, under a subject naming itself."""
    entry = {"case": "C-cun-2026-0099", "category": "dibao", "registered_on": "2026-11-20",
             "digests": [{"d": "A" * 43, "i": 0, "k": "id", "v": 1}],
             "at": "2026-11-20T01:00:00Z"}
    above = {"pian", "zhen", "shi"}  # cun's area, its town, the city
    for name in set(NAMES) - above:  # the registrant itself, its siblings and cousins...
        refused_at([tree["shi"]], forge(tree[name], repeats.RELAYED, repeats.relay_subject(
            name, 1), {"seen": [entry]}, (), ("admin",), actor="system"))
    refused_at([tree["shi"]], forge(tree["pian"], repeats.RELAYED, repeats.relay_subject(
        "zhen", 1), {"seen": [entry]}, (), ("admin",), actor="system"))  # in another's name
    refused_at([tree["shi"]], forge(tree["pian"], repeats.RELAYED, repeats.relay_subject(
        "pian", 1), {"seen": [entry]}, (), ("admin",), actor="liu"))  # not as the node
    stray = {**entry, "case": "C-cun3-2026-0001"}  # a case from another area is left out,
    with store.write(tree["shi"].db):  # not the rightful one with it
        assert log.receive(tree["shi"], forge(
            tree["pian"], repeats.RELAYED, repeats.relay_subject("pian", 1),
            {"seen": [stray, entry]}, (), ("admin",), actor="system")) == "applied"
    assert tree["shi"].db.conn.execute("SELECT DISTINCT case_id FROM person_digests WHERE via "
                                       "= 'DR-pian-1'").fetchall() == [("C-cun-2026-0099",)]
    cousin = {**stray, "at": "2026-11-19T00:00:00Z"}  # (a relay of no case of its own: refused)
    refused_at([tree["shi"]], forge(tree["pian"], repeats.RELAYED, repeats.relay_subject(
        "pian", 2), {"seen": [cousin]}, (), ("admin",), actor="system"))
    for name in ("pian", "zhen"):
        with store.write(tree["shi"].db):
            assert log.receive(tree["shi"], forge(
                tree[name], repeats.RELAYED, repeats.relay_subject(name, 7), {"seen": [entry]},
                (), ("admin",), actor="system")) == "applied"
    held = tree["shi"].db.conn.execute("SELECT origin, via FROM person_digests WHERE case_id "
                                       "= 'C-cun-2026-0099' ORDER BY via").fetchall()
    assert held == [("cun", "DR-pian-1"), ("cun", "DR-pian-7"), ("cun", "DR-zhen-7")]


# -- the table in docs/authority.md ------------------------------------------------------------

def test_docs_authority_md_is_the_table_the_rules_make():
    root = Path(__file__).resolve().parents[1]
    made = subprocess.run([sys.executable, str(root / "scripts" / "authority-doc")],
                          capture_output=True, text=True, check=True).stdout
    assert (root / "docs" / "authority.md").read_text("utf-8").strip() == made.strip(), (
        "docs/authority.md is out of date: run scripts/authority-doc > docs/authority.md")


def test_every_event_type_has_a_row():
    from node import registry
    rows = {row.type for d in registry.domains() for row in d.authority}
    assert {r.type for r in cases.RULES.values()} <= rows
    assert {r.type for r in (*warnings.RULES.values(), *warnings.AUTO.values())} <= rows
    assert {membership.ENROLLED, membership.JOINED, membership.CONFIRMED,
            membership.REVOKED, figures.REPORTED, figures.ROLLED_UP} <= rows


def test_only_the_holder_that_signed_or_the_referrer_terminates(tree):
    """Issue 17: a village liaison terminated a case the town had referred down to it
    without signing for it. While the referral waits, only the referrer (zhen) may
    withdraw the case, taking it back; every other position is refused."""
    cid = stage(tree, "referred")
    receivers = [tree[n] for n in ("cun", "pian", "zhen")]
    rule = cases.RULES["withdraw"]
    prev = heads(tree["cun"], cid)
    for name in NAMES:
        if name != "zhen":
            refused_at(receivers, forge(tree[name], rule.type, cid,
                                        rule.clean(VALID["withdraw"]), prev, rule.roles))
    event = act(tree["zhen"], cid, "withdraw", HANDLER, **VALID["withdraw"])
    for node in receivers[:2]:
        with store.write(node.db):
            assert log.receive(node, log.get_event(tree["zhen"].db, event.id)) == "applied"
    assert cases.get(tree["pian"], cid)["holder"] == "zhen"


def test_a_collective_petition_is_reported_up_by_its_registrant_only(tree):
    """Art. 25: the same-day report of a 集体访 is its registrant's; every level above has
    the case (so may note and urge it), but none writes the report for it."""
    cun = tree["cun"]
    with store.write(cun.db):
        cid = cases.register(cun, LIAISON, case_fields(people_count=30)).subject
    registration, report = log.subject_events(cun.db, cid)
    assert report.type == "case.reported" and report.origin == "cun"
    receivers = [tree[n] for n in ("pian", "zhen", "shi")]
    for node in receivers:
        with store.write(node.db):
            assert log.receive(node, registration) == "applied"
    rule = cases.RULES["report"]
    for name in NAMES:
        if name != "cun":
            refused_at(receivers, forge(tree[name], rule.type, cid, {}, (registration.id,),
                                        rule.roles))
    for node in receivers:
        with store.write(node.db):
            assert log.receive(node, report) == "applied"


# -- the office's own work (issue 21) ----------------------------------------------------------

def test_a_register_entry_and_a_rounds_report_come_only_from_their_unit(tree):
    from node import rounds
    cun, pian, zhen = tree["cun"], tree["pian"], tree["zhen"]
    with store.write(cun.db):
        eid = rounds.record(cun, LIAISON, {"title": "征地补偿", "responsible": "刘"}).subject
    spread(tree, "cun", "pian", "zhen")
    body = rounds.clean_update({"note": "情绪稳定"})
    for name in set(NAMES) - {"cun"}:
        refused_at([pian, zhen], forge(tree[name], "entry.updated", eid, body,
                                       heads(cun, eid), ("liaison", "handler", "leader")))
    with store.write(zhen.db):
        rid = rounds.schedule(zhen, HANDLER, {"title": "年末排查", "start": "2026-11-24",
                                              "end": "2026-12-10", "deadline": "2026-12-15",
                                              "scope": ["cun"]}).subject
    spread(tree, "zhen", "pian", "cun")
    counts = {"added": 0, "checked": 0, "high": 0}
    for name in set(NAMES) - {"cun"}:
        refused_at([zhen, pian], forge(tree[name], "round.reported", rid, counts,
                                       heads(zhen, rid), ("liaison", "handler", "leader")))
    with store.write(cun.db):
        event = rounds.report(cun, LIAISON, rid)
    for node in (pian, zhen):
        with store.write(node.db):
            assert log.receive(node, event) == "applied"


def test_an_appointments_outcome_comes_only_from_the_unit_that_made_it(tree):
    cid = stage(tree, "town")
    zhen = tree["zhen"]
    act(zhen, cid, "accept")
    act(zhen, cid, "appoint", LEADER, leader="zhao", at="2026-12-01T09:30", place="镇信访办")
    spread(tree, "zhen", "pian", "cun")
    rule = cases.RULES["appointment"]
    body = rule.clean({"appointment": "YF-zhen-2026-0001", "outcome": "已当面解释"})
    for name in set(NAMES) - {"zhen"}:
        refused_at([zhen, tree["pian"]], forge(tree[name], rule.type, cid, body,
                                               heads(zhen, cid), rule.roles))
