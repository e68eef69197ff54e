"""What the pages tell people (issue 20): every field error at once and at its field, in
Chinese words; messages that say where a case went; deadlines labelled with what they
are for; only the actions this user can take, the usual next step first, and who else
could; cards that show what matters; names, not identifiers.

Real nodes (conftest's make_node) and Flask's test client with real CSRF (test_web.Web).
"""

from __future__ import annotations

import re

from conftest import HANDLER, LEADER, LIAISON, case_fields, deliver
from test_web import Web, text

from node import cases, log, store, warnings


def _web(node, clock, user):
    w = Web(node, clock)
    w.login(user)
    return w


def _flashes(page: str) -> list[str]:
    return re.findall(r'<p class="flash ok"[^>]*>([^<]*)</p>', page)


def test_every_field_error_at_once_at_its_field_in_chinese(village, clock):
    w = _web(village, clock, "liu")
    r = w.post("/cases/new", {"category": "dibao", "summary": "", "p_name": "张三",
                              "p_id_number": "110105194912310021", "p_phone": "12345"})
    page = text(r)
    assert r.status_code == 400 and cases.listing(village) == []
    errors = dict(re.findall(r'<span class="field-error" id="err-([a-z_]+)">([^<]*)</span>',
                             page))
    assert set(errors) == {"summary", "p_id_number", "p_phone"}
    assert "第1位信访人的身份证号码" in errors["p_id_number"] and "校验码" in errors["p_id_number"]
    assert "第1位信访人的电话" in errors["p_phone"]
    assert "诉求摘要" in errors["summary"]
    assert "petitioners[" not in page and "id_number：" not in page
    for name in errors:  # each input says which message describes it
        assert re.search(rf'id="in-{name}" aria-invalid="true" aria-describedby="err-{name}"',
                         page), name
    assert "请修改标出的 3 处" in page and page.count('href="#in-') == 3
    assert 'value="张三"' in page  # what was typed is kept


def test_errors_in_english_name_the_field_in_words(village, clock):
    w = _web(village, clock, "liu")
    r = w.post("/cases/new?lang=en", {"category": "dibao", "summary": "x", "p_name": "张三",
                                      "p_phone": "12345"})
    assert "Phone of petitioner 1" in text(r)


def test_a_warning_form_shows_all_its_errors(village, clock):
    w = _web(village, clock, "liu")
    r = w.post("/warnings/new", {"subject": "", "place": "", "expected_size": "0"})
    assert r.status_code == 400
    marked = set(re.findall(r'id="err-([a-z_]+)"', text(r)))
    assert marked == {"subject", "place", "expected_size"}
    assert warnings.listing(village) == []


def test_an_escalation_says_where_the_case_went_and_its_next_deadline(make_node, clock):
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    with store.write(village.db):
        case_id = cases.register(village, LIAISON, case_fields()).subject
    w = _web(village, clock, "liu")
    r = w.post(f"/cases/{case_id}/act/escalate", {"reason": "需镇协调"})
    assert r.status_code == 303
    said = _flashes(text(w.get(r.location)))
    holder = cases.get(village, case_id)
    assert any("已完成「上报」" in s and town.settings["NODE_NAME"] in s for s in said), said
    if holder["due_on"]:
        assert any(f"下一期限：{cases.DUE_KINDS[holder['due_kind']][0]}" in s for s in said)


def _escalated_to_town(make_node):
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    with store.write(village.db):
        case_id = cases.register(village, LIAISON, case_fields()).subject
        cases.act(village, LIAISON, case_id, "escalate", {"reason": "需镇协调"})
    deliver(village, town)
    return town, village, case_id


def test_the_usual_next_step_comes_first_and_other_roles_are_named(make_node, clock):
    town, _village, case_id = _escalated_to_town(make_node)
    w = _web(town, clock, "wang")
    page = text(w.get(f"/cases/{case_id}"))
    assert "建议下一步：受理" in page
    first_form = re.search(r'/act/([a-z_]+)"', page.split("建议下一步")[1]).group(1)
    assert first_form == "accept"
    with store.write(town.db):
        cases.act(town, HANDLER, case_id, "accept", {})
        cases.act(town, HANDLER, case_id, "reply", {"decision": "support", "reply": "已补发"})
    page = text(w.get(f"/cases/{case_id}"))
    assert "/act/close" not in page  # a handler cannot close...
    others = re.search(r'<p class="muted others">(.*?)</p>', page, re.S).group(1)
    assert "结案（领导）" in others  # ...and is told who can
    leader = _web(town, clock, "zhao")
    assert f"/cases/{case_id}/act/close" in text(leader.get(f"/cases/{case_id}"))


def test_actions_are_the_ones_allowed_in_the_usual_order(make_node):
    town, _village, case_id = _escalated_to_town(make_node)
    case = cases.get(town, case_id)
    acts = cases.allowed_actions(town, HANDLER, case)
    assert acts[0] == "accept" and acts.index("note") > acts.index("not_accept")
    assert set(acts) | set(cases.others_may(town, HANDLER, case)) == set(
        cases.fitting_actions(town, case))
    assert not set(acts) & set(cases.others_may(town, HANDLER, case))
    assert cases.suggested(case, acts) == "accept"


def test_a_deadline_is_labelled_with_what_it_is_for(make_node, clock):
    town, _village, case_id = _escalated_to_town(make_node)
    with store.write(town.db):
        cases.act(town, HANDLER, case_id, "accept", {})
    w = _web(town, clock, "wang")
    case = cases.get(town, case_id)
    label = cases.DUE_KINDS[case["due_kind"]][0]
    assert f"<dt>{label}</dt>" in text(w.get(f"/cases/{case_id}"))
    assert f"{label}: " in text(w.get("/cases"))  # on the cards too


def test_cards_show_summary_unit_and_masked_petitioner(make_node, clock):
    town, _village, case_id = _escalated_to_town(make_node)
    w = _web(town, clock, "wang")
    page = text(w.get("/inbox"))
    card = page[page.index(case_id):].split("</li>")[0]
    assert "低保金三个月未发放" in card and "dongshan 名称" in card
    assert "张*" in card and "张三" not in card
    assert "13800138000" not in page and "11010519491231002X" not in page


def test_a_liaison_is_not_offered_to_acknowledge_their_own_warning(make_node, clock):
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    w = _web(village, clock, "liu")
    r = w.post("/warnings/new", {"subject": "征地补偿", "place": "东山村",
                                 "expected_size": "30", "destination": "city",
                                 "beijing_risk": "1"})
    warning_id = r.location.rsplit("/", 1)[1]
    page = text(w.get(r.location))
    assert "/act/acknowledge" not in page and "/act/note" in page
    deliver(village, town)
    with store.write(town.db):  # as the sync inbox does when a bundle brings it
        warnings.record_receipts(town)
    office = _web(town, clock, "wang")
    inbox = text(office.get("/inbox"))
    card = inbox[inbox.index(warning_id):].split("</li>")[0]
    assert "30 人" in card and "应于" in card  # expected size, and when to acknowledge
    r = office.post(f"/warnings/{warning_id}/act/acknowledge", {"note": "已安排镇干部上门"})
    assert r.status_code == 303
    page = text(office.get(r.location))
    assert "已安排镇干部上门" in page  # the note is in the timeline
    assert "王办理" in page  # the town's own account by name
    assert "已完成「签收」" in page


def test_timelines_and_reports_name_people_not_accounts(make_node, clock):
    town, _village, case_id = _escalated_to_town(make_node)
    with store.write(town.db):
        cases.act(town, HANDLER, case_id, "accept", {})
        cases.act(town, HANDLER, case_id, "reply", {"decision": "support", "reply": "已补发"})
        cases.act(town, LEADER, case_id, "close", {"report": "已办结", "signers": "赵领导"})
    w = _web(town, clock, "zhao")
    page = text(w.get(f"/cases/{case_id}"))
    timeline = page[page.index('class="timeline"'):]
    assert "王办理" in timeline and "赵领导" in timeline
    assert "(信息员)" not in timeline and "· liu" not in timeline
    assert ">信息员<" in timeline  # the village's liaison: by role, the unit beside it
    report = text(w.get(f"/cases/{case_id}/report"))
    closed = next(e for e in log.subject_events(town.db, case_id) if e.type == "case.closed")
    assert "赵领导 · " in report and f"({closed.id})" not in report


# -- what awaits the user -----------------------------------------------------------------

def test_what_awaits_an_office_is_counted_in_the_title_the_menu_and_the_api(make_node, clock):
    town, village, case_id = _escalated_to_town(make_node)
    with store.write(village.db):
        warning_id = warnings.raise_warning(village, LIAISON, {
            "subject": "征地补偿", "place": "东山村", "expected_size": 30}).subject
    deliver(village, town)
    w = _web(town, clock, "wang")
    page = text(w.get("/cases"))
    assert re.search(r"<title>\(2\) ", page)
    assert re.search(r'<a href="/inbox">待办 <span class="count" data-count>2</span>', page)
    assert "<noscript><a href=" in page  # a plain refresh without JavaScript
    data = w.get("/api/awaiting").get_json()
    assert data["total"] == 2 and data["counts"]["warnings"] == 1
    assert data["counts"]["escalated"] == 1
    keys = {i["key"]: i for i in data["items"]}
    assert keys[f"warnings:{warning_id}"]["urgent"] and keys[f"escalated:{case_id}"]["urgent"]
    assert keys[f"warnings:{warning_id}"]["url"] == f"/warnings/{warning_id}"
    assert warning_id in keys[f"warnings:{warning_id}"]["text"]
    # what the page shows is what the live script will not announce again
    assert f"warnings:{warning_id}" in page.split('data-seen="')[1].split('"')[0]
    w.post(f"/warnings/{warning_id}/act/acknowledge", {"note": "已知悉"})
    w.post(f"/cases/{case_id}/act/accept", {})
    assert w.get("/api/awaiting").get_json()["total"] == 0
    assert "<title>(" not in text(w.get("/cases"))


def test_what_came_down_awaits_the_village(make_node, clock):
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    with store.write(town.db):
        case_id = cases.register(town, HANDLER, case_fields()).subject
        cases.act(town, HANDLER, case_id, "accept", {})
        cases.act(town, HANDLER, case_id, "refer", {"to": "dongshan", "instruction": "请核实",
                                                    "deadline": "2026-12-20"})
        cases.act(town, HANDLER, case_id, "urge", {"message": "请尽快办理"})
    deliver(town, village)
    w = _web(village, clock, "liu")
    data = w.get("/api/awaiting").get_json()
    assert data["counts"] == {"referrals": 1, "urges": 1, "orders": 0}
    page = text(w.get("/mine"))
    assert re.search(r'<a href="/from-above">[^<]+ <span class="count" data-count>2</span>', page)
    w.post(f"/cases/{case_id}/act/sign", {})
    urge = next(e.id for e in log.subject_events(village.db, case_id) if e.type == "case.urged")
    w.post(f"/cases/{case_id}/act/urge_ack", {"urge": urge})
    assert w.get("/api/awaiting").get_json()["total"] == 0


def test_nothing_awaits_an_admin(town, clock):
    w = _web(town, clock, "admin")
    assert w.get("/api/awaiting").get_json() == {"total": 0, "counts": {}, "items": []}
    assert 'id="live"' not in text(w.get("/network"))
