"""The web pages and API with Flask's test client: login, throttling, CSRF, units, masking.

Nodes are real (conftest's make_node) and so is CSRF: every form post
carries the token read from a page, as a browser's would.
"""

from __future__ import annotations

import os
import re
import stat

import pytest
from conftest import LIAISON, PASSWORD, case_fields, deliver, pin

from node import cases, create_app, log, store, trust

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Web:
    """A browser-like client of one node: logs in through the form, posts with the token."""

    def __init__(self, node, clock):
        self.node = node
        self.app = create_app(node.dir, clock=clock)
        self.client = self.app.test_client()
        self.token = None

    def get(self, url, **kw):
        r = self.client.get(url, **kw)
        found = TOKEN.search(r.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return r

    def post(self, url, data=None, token=True, **kw):
        data = dict(data or {})
        if token:
            if self.token is None:
                self.get("/login")
            data["csrf_token"] = self.token
        return self.client.post(url, data=data, **kw)

    def login(self, username, password=PASSWORD):
        self.get("/login")
        r = self.post("/login", {"username": username, "password": password})
        if r.status_code == 302:  # a new session has a new CSRF token: read it, as a page would
            self.get("/", follow_redirects=True)
        return r

    def api_login(self, username, password=PASSWORD):
        r = self.client.post("/api/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.get_json()
        self.token = r.get_json()["csrf_token"]
        return r

    def api(self, method, url, json=None):
        return self.client.open(url, method=method, json=json,
                                headers={"X-CSRFToken": self.token or ""})


@pytest.fixture
def web(clock):
    return lambda node: Web(node, clock)


def register(node, **fields):
    with store.write(node.db):
        return cases.register(node, LIAISON, case_fields(**fields)).subject


def text(response) -> str:
    return response.get_data(as_text=True)


def inline_scripts(html: str) -> list[str]:
    """Script elements a page would run from itself: only files and JSON data are allowed."""
    return [tag for tag in re.findall(r"<script\b[^>]*>", html)
            if " src=" not in tag and 'type="application/json"' not in tag]


# -- accounts and sessions ----------------------------------------------------------

def test_pages_and_api_need_a_login(town, web):
    w = web(town)
    page = w.get("/cases")
    assert page.status_code == 302 and "/login" in page.location
    api = w.get("/api/cases")
    assert api.status_code == 401
    assert api.get_json()["error"]["code"] == "not_logged_in"
    assert w.get("/healthz").status_code == 200
    assert w.get("/api/openapi.json").status_code == 200


def test_login_and_logout(town, web):
    w = web(town)
    r = w.login("wang")
    assert r.status_code == 302
    home = w.get("/", follow_redirects=True)
    assert "王办理" in text(home) and "待办" in text(home)
    w.post("/logout")
    assert w.get("/inbox").status_code == 302


def test_wrong_password_gives_one_translated_line(town, web):
    w = web(town)
    bad = w.login("wang", "nope-nope-nope")
    assert bad.status_code == 401 and "用户名或密码错误" in text(bad)
    unknown = w.login("nobody", "nope-nope-nope")
    assert "用户名或密码错误" in text(unknown)  # same answer: no username probing


def test_login_is_throttled_per_user_and_survives_a_restart(town, web, clock):
    w = web(town)
    for _ in range(town.settings["LOGIN_MAX_FAILURES"]):
        assert w.login("wang", "wrong-password").status_code == 401
    locked = w.login("wang")  # even the right password, while locked
    assert locked.status_code == 429 and "分钟后再试" in text(locked)
    restarted = web(town)
    assert restarted.login("wang").status_code == 429
    assert restarted.login("zhao").status_code == 302  # another user from the same address
    clock.advance(minutes=town.settings["LOGIN_LOCK_MINUTES"] + 1)
    assert web(town).login("wang").status_code == 302


def test_login_is_throttled_per_address(town, web):
    w = web(town)
    limit = town.settings["LOGIN_MAX_FAILURES"] * 4
    for i in range(limit):
        w.login(f"guess{i}", "wrong-password")
    assert w.login("wang").status_code == 429


def test_sessions_expire(town, web, clock):
    w = web(town)
    w.login("wang")
    assert w.get("/inbox").status_code == 200
    clock.advance(minutes=town.settings["SESSION_MINUTES"] + 1)
    assert w.get("/inbox").status_code == 302


def test_the_session_key_is_a_private_file(town):
    path = town.dir / "keys" / trust.SESSION_KEY
    assert path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_disabled_account_is_logged_out_at_once(town, web):
    w = web(town)
    w.login("wang")
    with store.write(town.db):
        town.db.conn.execute("UPDATE users SET disabled = 1 WHERE username = 'wang'")
    assert w.get("/inbox").status_code == 302


# -- CSRF and escaping -----------------------------------------------------------------

def test_a_form_without_its_csrf_token_is_refused(village, web):
    w = web(village)
    w.login("liu")
    r = w.post("/cases/new", {"category": "dibao", "summary": "x", "p_name": "张三"},
               token=False)
    assert r.status_code == 400 and "表单已过期" in text(r)
    assert cases.listing(village) == []
    api = w.client.post("/api/cases", json=case_fields())
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "csrf_refused"
    assert cases.listing(village) == []


def test_a_script_in_a_summary_shows_as_text(village, web):
    w = web(village)
    w.login("liu")
    r = w.post("/cases/new", {"category": "dibao", "summary": "<script>alert(1)</script>低保",
                              "p_name": "张三", "channel": "visit"})
    assert r.status_code == 303
    page = w.get(r.location)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;低保" in text(page)
    assert "<script>" not in text(page)
    # only this node's own script files run, and JSON data: nothing inline, nothing from elsewhere
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe" not in policy
    assert inline_scripts(text(page)) == []


# -- the liaison ---------------------------------------------------------------------

def test_liaison_registers_a_case_with_few_fields(village, web):
    w = web(village)
    w.login("liu")
    form = w.get("/cases/new")
    assert form.status_code == 200 and "低保" in text(form)
    r = w.post("/cases/new", {"category": "dibao", "summary": "低保金三个月未发放",
                              "p_name": "张三", "p_phone": "13800138000"})
    assert r.status_code == 303
    (case,) = cases.listing(village)
    assert case["channel"] == "visit" and case["nature"] == "request"
    assert case["first_time"] == 1  # derived: nobody here named 张三 with that phone before
    w.post("/cases/new", {"category": "dibao", "summary": "低保金仍未发放", "p_name": "张三",
                          "p_phone": "13800138000"})
    w.post("/cases/new", {"category": "dibao", "summary": "另一事项", "p_name": "李四",
                          "not_first_time": "1"})
    assert [c["first_time"] for c in cases.listing(village)] == [0, 0, 1]
    assert cases.petitioners(village, case["id"])[0]["phone"] == "13800138000"
    mine = w.get("/mine")
    assert case["id"] in text(mine) and "已登记" in text(mine) and case["due_on"] in text(mine)


def test_bad_input_is_one_clear_error_and_changes_nothing(village, web):
    w = web(village)
    w.login("liu")
    r = w.post("/cases/new", {"category": "dibao", "summary": "低保", "p_name": "张三",
                              "p_id_number": "110105194912310021"})
    assert r.status_code == 400
    assert "身份证" in text(r) and "Traceback" not in text(r)
    assert 'value="张三"' in text(r)  # what was typed is kept
    assert cases.listing(village) == []


def test_liaison_raises_a_warning(village, web):
    w = web(village)
    w.login("liu")
    r = w.post("/warnings/new", {"subject": "征地补偿", "place": "东山村", "expected_size": "30",
                                 "destination": "city", "beijing_risk": "1"})
    assert r.status_code == 303
    page = w.get(r.location)
    assert "征地补偿" in text(page) and ("较大" in text(page) or "重大" in text(page))


def test_what_came_down_is_signed_for(make_node, web):
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    case_id = register(town)
    with store.write(town.db):
        cases.act(town, town_handler(), case_id, "accept", {})
        cases.act(town, town_handler(), case_id, "refer",
                  {"to": "dongshan", "instruction": "请核实", "deadline": "2026-12-10"})
        cases.act(town, town_handler(), case_id, "urge", {"message": "请尽快办理"})
        cases.act(town, town_handler(), case_id, "supervise",
                  {"instruction": "限期办结", "deadline": "2026-12-20"})
    deliver(town, village)
    w = web(village)
    w.login("liu")
    above = w.get("/from-above")
    assert case_id in text(above) and "请尽快办理" in text(above) and "限期办结" in text(above)
    mine = w.get("/mine")
    assert "2 件待签收" in text(mine)
    r = w.post(f"/cases/{case_id}/act/sign", {"next": "/from-above"})
    assert r.status_code == 303 and r.location.endswith("/from-above")
    assert cases.get(village, case_id)["handover"] == "signed"
    order = cases.orders(village, case_id)[0]["id"]
    w.post(f"/cases/{case_id}/act/supervision_ack", {"order_id": order})
    assert cases.orders(village, case_id)[0]["status"] == "acknowledged"
    urge = [e.id for e in log.subject_events(village.db, case_id) if e.type == "case.urged"]
    assert "/act/urge_ack" in text(w.get("/from-above"))
    r = w.post(f"/cases/{case_id}/act/urge_ack", {"urge": urge[0], "next": "/from-above"})
    assert r.status_code == 303
    page = text(w.get("/from-above"))
    assert "/act/urge_ack" not in page and "已签收" in page


def town_handler():
    from conftest import HANDLER
    return HANDLER


def test_sync_now_errors_are_one_translated_line(village, make_node, web):
    w = web(village)
    w.login("liu")
    r = w.post("/sync-now", follow_redirects=True)
    assert r.status_code == 200 and "本节点尚无上级" in text(r)
    town = make_node("town", "qingshui")
    child = make_node("village", "xishan", parent=town)  # its parent URL does not answer
    w = web(child)
    w.login("liu")
    page = text(w.post("/sync-now", follow_redirects=True))
    (line,) = re.findall(r'<p class="flash error"[^>]*>([^<]*)</p>', page)
    assert line.startswith("上级节点暂时连不上") and "Traceback" not in page
    assert "http://" not in page and "技术细节" not in page  # the address is for an admin
    admin = web(child)
    admin.login("admin")
    page = text(admin.post("/sync-now", {"next": "/network"}, follow_redirects=True))
    assert "上级节点暂时连不上" in page and "网络" in page
    detail = re.search(r'<details class="flash detail"><summary>技术细节</summary>'
                       r'<code>([^<]*)</code>', page).group(1)
    assert child.settings["PARENT_URL"] in detail and "Unreachable" in detail


# -- units and roles -----------------------------------------------------------------

@pytest.fixture
def two_villages(make_node):
    town = make_node("town", "qingshui")
    a = make_node("village", "dongshan", parent=town)
    b = make_node("village", "xishan", parent=town)
    pin(a, b)
    pin(b, a)
    return town, a, b


def test_a_village_cannot_open_another_villages_case(two_villages, web):
    town, a, b = two_villages
    theirs = register(b, summary="西山村的事")
    ours = register(a, summary="东山村的事")
    deliver(b, a)  # even if it reached the database (a relay, a routing mistake)
    assert {c["id"] for c in cases.listing(a)} == {theirs, ours}
    w = web(a)
    w.login("liu")
    assert w.get(f"/cases/{theirs}").status_code == 404
    assert w.get(f"/cases/{ours}").status_code == 200
    assert theirs not in text(w.get("/mine")) and theirs not in text(w.get("/cases"))
    r = w.post(f"/cases/{theirs}/act/note", {"text": "看看"})
    assert r.status_code == 404
    w.api_login("liu")
    assert w.api("GET", f"/api/cases/{theirs}").status_code == 404
    assert w.api("GET", f"/api/cases/{theirs}").get_json()["error"]["code"] == "not_found"
    assert w.api("POST", f"/api/cases/{theirs}/actions/note", {"text": "x"}).status_code == 404
    listed = [c["id"] for c in w.api("GET", "/api/cases").get_json()["cases"]]
    assert listed == [ours]


def test_roles_open_only_their_pages(town, web):
    w = web(town)
    w.login("liu")
    assert w.get("/network").status_code == 403
    assert w.get("/inbox").status_code == 403
    assert "无权打开" in text(w.get("/network"))
    admin = web(town)
    admin.login("admin")
    assert admin.get("/network").status_code == 200
    assert admin.get("/cases/new").status_code == 403
    assert admin.get("/city").status_code == 403


# -- masking -------------------------------------------------------------------------

def test_personal_data_is_masked_above_the_holding_tier(make_node, web):
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    case_id = register(village)
    deliver(village, town)
    liaison = web(town)
    liaison.login("liu")
    page = text(liaison.get(f"/cases/{case_id}"))
    assert "张*" in page and "138******00" in page and "1101************2X" in page
    assert "张三" not in page and "13800138000" not in page
    assert "查看个人信息" not in page  # a liaison may not unmask
    assert liaison.post(f"/cases/{case_id}/unmask").status_code == 403
    reads = town.db.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert reads == 0

    handler = web(town)
    handler.login("wang")
    assert "查看个人信息" in text(handler.get(f"/cases/{case_id}"))
    r = handler.post(f"/cases/{case_id}/unmask")
    assert r.status_code == 303
    assert "13800138000" in text(handler.get(f"/cases/{case_id}"))
    log = town.db.conn.execute("SELECT actor, action, target FROM audit_log ORDER BY id").fetchall()
    assert ("wang", "unmask", case_id) in log and ("wang", "read_identity", case_id) in log
    api = web(town)
    api.api_login("wang")
    masked = api.api("GET", f"/api/cases/{case_id}").get_json()
    assert masked["masked"] and masked["petitioners"][0]["name"] == "张*"
    shown = api.api("POST", f"/api/cases/{case_id}/unmask").get_json()
    assert shown["petitioners"][0]["name"] == "张三"


def test_the_holding_tier_sees_identity_and_the_read_is_logged(village, web):
    case_id = register(village)
    w = web(village)
    w.login("liu")
    assert "13800138000" in text(w.get(f"/cases/{case_id}"))
    log = village.db.conn.execute("SELECT actor, action FROM audit_log").fetchall()
    assert log == [("liu", "read_identity")]
    admin = web(village)
    admin.login("admin")
    page = text(admin.get(f"/cases/{case_id}"))
    assert "张*" in page and "13800138000" not in page  # an admin keeps the node, not files


# -- the office ------------------------------------------------------------------------

def test_town_accepts_assigns_replies_and_closes_through_forms(make_node, web):
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    case_id = register(village)
    with store.write(village.db):
        cases.act(village, LIAISON, case_id, "escalate", {"reason": "需镇协调"})
    deliver(village, town)
    w = web(town)
    w.login("wang")
    inbox = text(w.get("/inbox"))
    assert case_id in inbox
    page = text(w.get(f"/cases/{case_id}"))
    assert f"/cases/{case_id}/act/accept" in page  # only what allowed_actions gives
    assert f"/cases/{case_id}/act/reply" not in page
    assert "签名已验证" in page and "上报" in page
    assert w.post(f"/cases/{case_id}/act/accept", {}).status_code == 303
    bad = w.post(f"/cases/{case_id}/act/reply", {"decision": "support"})
    assert bad.status_code == 400 and "reply" in text(bad) and "Traceback" not in text(bad)
    assert cases.get(town, case_id)["state"] == "accepted"
    w.post(f"/cases/{case_id}/act/assign", {"assignee": "王办理", "lead_leader": "赵领导"})
    w.post(f"/cases/{case_id}/act/reply", {"decision": "support", "reply": "已补发低保金"})
    assert cases.get(town, case_id)["state"] == "replied"
    w.post(f"/cases/{case_id}/act/followup", {"rating": "satisfied"})
    w.post(f"/cases/{case_id}/act/supervise", {"instruction": "x", "deadline": "2026-12-30"})
    leader = web(town)
    leader.login("zhao")
    r = leader.post(f"/cases/{case_id}/act/close", {"report": "已办结", "signers": "赵领导,王办理"})
    assert r.status_code == 303
    assert cases.get(town, case_id)["state"] == "concluded"
    report = leader.get(f"/cases/{case_id}/report")
    assert report.status_code == 200 and "结案报告" in text(report) and "赵领导、王办理" in text(
        report)
    assert "@media print" in text(leader.get(leader_static(text(report))))


def leader_static(html: str) -> str:
    return re.search(r'href="(/static/siji.css\?v=\w+)"', html).group(1)


def test_printable_supervision_order(make_node, web):
    city = make_node("city", "shi")
    town = make_node("town", "qingshui", parent=city)
    case_id = register(town)  # up to the city, which refers it back and supervises it
    with store.write(town.db):
        cases.act(town, town_handler(), case_id, "escalate", {"to": "shi", "reason": "需市协调"})
    deliver(town, city)
    with store.write(city.db):
        cases.act(city, town_handler(), case_id, "refer",
                  {"to": "qingshui", "instruction": "请镇里办理", "deadline": "2026-12-28"})
        cases.act(city, town_handler(), case_id, "supervise",
                  {"instruction": "请于月底前办结", "deadline": "2026-12-30"})
    w = web(city)
    w.login("wang")
    overview = text(w.get("/city"))
    assert "DB-shi-2026-0001" in overview
    order = w.get(f"/cases/{case_id}/orders/DB-shi-2026-0001")
    assert order.status_code == 200 and "督办单" in text(order) and "请于月底前办结" in text(order)
    assert w.get(f"/cases/{case_id}/orders/DB-nope").status_code == 404


def test_city_page_shows_escalated_cases_and_warnings_by_risk(make_node, web):
    city = make_node("city", "shi")
    town = make_node("town", "qingshui", parent=city)
    case_id = register(town)
    with store.write(town.db):
        cases.act(town, LIAISON, case_id, "escalate", {"reason": "需市协调"})
        from node import warnings
        warnings.raise_warning(town, LIAISON, {"subject": "征地补偿", "place": "清水镇",
                                               "expected_size": 60, "destination": "beijing"})
    deliver(town, city)
    w = web(city)
    w.login("zhao")
    page = text(w.get("/city"))
    assert case_id in page and "征地补偿" in page and "重大" in page
    assert w.get("/inbox").status_code == 200


def test_city_page_shows_the_figures_without_personal_data(make_node, web):
    from node import figures
    city = make_node("city", "shi")
    town = make_node("town", "qingshui", parent=city)
    register(town)
    register(town, category="youfu")
    with store.write(town.db):
        figures.report(town)
    deliver(town, city)
    w = web(city)
    w.login("zhao")
    page = text(w.get("/city"))
    section = page.split('class="figures"')[1].split("</section>")[0]
    assert "统计数" in section and "qingshui 名称" in section and "办结率" in section
    assert re.search(r'measure=n&amp;[^"]*unit=qingshui[^"]*">2</a>', section)  # 件次 2, drillable
    assert "张三" not in section and "1101" not in section
    assert figures.facts(city).sums(None, "unit")["qingshui"]["n"] == 2


# -- admin ---------------------------------------------------------------------------

def test_network_page_codes_fingerprints_and_revoke(make_node, web):
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    w = web(town)
    w.login("admin")
    page = text(w.get("/network"))
    fp = trust.fingerprint(village.signer.public_key().public_bytes_raw())
    assert "dongshan" in page and fp in page
    made = w.post("/network/codes", {"hours": "24"})
    assert made.status_code == 200
    code = re.search(r'class="code">([A-Z0-9-]+)<', text(made)).group(1)
    assert "<svg" in text(made) and len(code) == 14
    bad = w.post("/network/codes", {"hours": "9999"})
    assert bad.status_code == 400
    r = w.post("/network/dongshan/revoke", {"reason": "设备丢失"})
    assert r.status_code == 303
    status = town.db.conn.execute("SELECT status FROM nodes WHERE node_id = 'dongshan'")
    assert status.fetchone()[0] == "revoked"


# -- accounts (admin) -------------------------------------------------------------------

def users_of(node) -> dict:
    rows = node.db.conn.execute("SELECT username, display_name, role, disabled FROM users")
    return {r[0]: r[1:] for r in rows}


def test_only_an_admin_manages_accounts(town, web):
    w = web(town)
    w.login("wang")
    before = users_of(town)
    assert w.get("/users").status_code == 403
    refused = w.post("/users", {"username": "sun", "display_name": "孙", "role": "admin",
                                "password": PASSWORD, "password_again": PASSWORD})
    assert refused.status_code == 403
    assert w.post("/users/liu/disable").status_code == 403
    assert w.api("GET", "/api/users").status_code == 403
    assert users_of(town) == before
    assert "/users" not in text(w.get("/inbox"))


def test_admin_adds_an_account_that_can_log_in(town, web):
    w = web(town)
    w.login("admin")
    page = text(w.get("/users"))
    assert "王办理" in page and "账号" in page
    r = w.post("/users", {"username": "Sun", "display_name": "孙办理", "role": "handler",
                          "password": "long-enough-1", "password_again": "long-enough-1"})
    assert r.status_code == 303
    assert users_of(town)["sun"] == ("孙办理", "handler", 0)
    assert "已添加" in text(w.get("/users"))
    log = town.db.conn.execute("SELECT actor, action, target FROM audit_log").fetchall()
    assert log == [("admin", "user_add", "sun")]
    assert web(town).login("sun", "long-enough-1").status_code == 302


@pytest.mark.parametrize(("form", "status", "words"), [
    ({"username": "sun", "display_name": "孙", "role": "handler", "password": "short",
      "password_again": "short"}, 400, "至少"),
    ({"username": "sun", "display_name": "孙", "role": "handler", "password": "long-enough-1",
      "password_again": "long-enough-2"}, 400, "两次"),
    ({"username": "sun", "display_name": "孙", "role": "boss", "password": "long-enough-1",
      "password_again": "long-enough-1"}, 400, "boss"),
    ({"username": "1x", "display_name": "孙", "role": "handler", "password": "long-enough-1",
      "password_again": "long-enough-1"}, 400, "username"),
    ({"username": "sun", "display_name": "<script>x</script>", "role": "handler",
      "password": "long-enough-1", "password_again": "long-enough-1"}, 400, "script"),
    ({"username": "wang", "display_name": "又一个王", "role": "admin",
      "password": "long-enough-1", "password_again": "long-enough-1"}, 409, "wang"),
])
def test_bad_account_input_changes_nothing(town, web, form, status, words):
    w = web(town)
    w.login("admin")
    before = users_of(town)
    r = w.post("/users", form)
    assert r.status_code == status and words in text(r)
    assert 'role="alert"' in text(r) and "long-enough" not in text(r)  # no password echoed
    assert users_of(town) == before
    assert town.db.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0


def test_a_disabled_account_cannot_log_in_and_its_session_ends(town, web):
    wang = web(town)
    wang.login("wang")
    assert wang.get("/inbox").status_code == 200
    admin = web(town)
    admin.login("admin")
    assert admin.post("/users/wang/disable").status_code == 303
    assert users_of(town)["wang"][2] == 1
    assert wang.get("/inbox").status_code == 302  # logged out at once
    again = web(town).login("wang")
    assert again.status_code == 401 and "用户名或密码错误" in text(again)
    assert admin.post("/users/wang/enable").status_code == 303
    assert web(town).login("wang").status_code == 302
    actions = town.db.conn.execute("SELECT action, target FROM audit_log ORDER BY id")
    assert actions.fetchall() == [("user_disable", "wang"), ("user_enable", "wang")]


def test_an_admin_cannot_disable_themselves_or_an_unknown_account(town, web):
    w = web(town)
    w.login("admin")
    me = w.post("/users/admin/disable")
    assert me.status_code == 403 and users_of(town)["admin"][2] == 0
    assert w.post("/users/nobody/disable").status_code == 404
    assert w.post("/users/liu/disable", token=False).status_code == 400  # CSRF
    assert users_of(town)["liu"][2] == 0


def test_the_last_admin_cannot_be_disabled(town):
    from node import users
    from node.errors import NotAllowed
    with pytest.raises(NotAllowed), store.write(town.db):
        users.set_disabled(town, "admin", True)
    with store.write(town.db):
        users.add_user(town, "root2", "第二管理员", "admin", PASSWORD)
        users.set_disabled(town, "admin", True)
    assert users_of(town)["admin"][2] == 1


def test_accounts_through_the_api(town, web):
    w = web(town)
    w.api_login("admin")
    listed = w.api("GET", "/api/users").get_json()["users"]
    assert {u["username"] for u in listed} >= {"admin", "wang", "liu"}
    assert all("password_hash" not in u for u in listed)
    made = w.api("POST", "/api/users", {"username": "sun", "display_name": "孙",
                                        "role": "leader", "password": "long-enough-1"})
    assert made.status_code == 201 and made.get_json()["user"]["role"] == "leader"
    bad = w.api("POST", "/api/users", {"username": "qian", "display_name": "钱",
                                       "role": "leader", "password": "short"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "validation_error"
    assert "qian" not in users_of(town)
    off = w.api("POST", "/api/users/sun/disable")
    assert off.status_code == 200 and off.get_json()["user"]["disabled"] == 1
    refused = w.client.post("/api/login", json={"username": "sun",
                                                "password": "long-enough-1"})
    assert refused.status_code == 401
    assert w.api("POST", "/api/users/sun/enable").get_json()["user"]["disabled"] == 0


# -- languages, API, weight ------------------------------------------------------------

def test_english_is_one_click_away(village, web):
    w = web(village)
    w.login("liu")
    en = w.get("/mine?lang=en")
    assert "My cases" in text(en) and "我的信访件" not in text(en)
    assert "lang=en" in en.headers.get("Set-Cookie", "")
    assert "Register a case" in text(w.get("/mine"))  # the cookie keeps it
    assert "我的信访件" in text(w.get("/mine?lang=zh"))


def test_api_register_act_and_error_shape(town, web):
    w = web(town)
    w.api_login("wang")
    made = w.api("POST", "/api/cases", case_fields())
    assert made.status_code == 201
    case_id = made.get_json()["id"]
    acted = w.api("POST", f"/api/cases/{case_id}/actions/accept", {})
    assert acted.get_json()["state"] == "accepted"
    refused = w.api("POST", f"/api/cases/{case_id}/actions/accept", {})
    assert refused.status_code == 409
    assert set(refused.get_json()["error"]) == {"code", "message", "params"}
    assert refused.get_json()["error"]["code"] == "illegal_transition"
    bad = w.api("POST", "/api/cases", {"category": "nope"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "validation_error"
    detail = w.api("GET", f"/api/cases/{case_id}").get_json()
    assert detail["timeline"][0]["verified"] is True
    assert "assign" in detail["allowed_actions"]


def test_an_api_registration_sent_again_with_its_key_is_written_once(town, web):
    """The answer to a POST can be lost after the node wrote it; a script sends again
    with the same Idempotency-Key and gets the first case, not a second one."""
    w = web(town)
    w.api_login("wang")

    def send(path, body, key):
        return w.client.post(path, json=body, headers={"X-CSRFToken": w.token,
                                                       "Idempotency-Key": key})
    fields = case_fields()
    first = send("/api/cases", fields, "retry-0001-abcdefgh")
    again = send("/api/cases", fields, "retry-0001-abcdefgh")
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert town.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 1
    other = send("/api/cases", case_fields(summary="另一件事"), "retry-0001-abcdefgh")
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "draft_conflict"
    short = send("/api/cases", fields, "short")
    assert short.status_code == 400
    assert short.get_json()["error"]["params"]["field"] == "Idempotency-Key"
    assert town.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 1
    warning = {"subject": "征地补偿", "place": "东山村", "expected_size": 30}
    ids = {send("/api/warnings", warning, "warn-0001-abcdefgh").get_json()["id"]
           for _ in range(2)}
    assert len(ids) == 1
    assert town.db.conn.execute("SELECT count(*) FROM warnings").fetchone()[0] == 1
    # without a key, two sends are two cases (as before)
    assert w.api("POST", "/api/cases", fields).get_json()["id"] != first.get_json()["id"]


def test_every_api_route_is_in_the_openapi_document(town, web):
    w = web(town)
    doc = w.get("/api/openapi.json").get_json()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    routes = set()
    for rule in w.app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    assert routes == documented


def test_pages_are_light_and_assets_cached(make_node, web):
    town = make_node("town", "qingshui")
    case_id = register(town)
    w = web(town)
    w.login("wang")
    page = w.get(f"/cases/{case_id}")
    css = w.get(leader_static(text(page)))
    assert len(page.data) + len(css.data) < 100_000
    assert "max-age=31536000" in css.headers["Cache-Control"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "http" not in re.sub(r'href="/[^"]*"', "", text(page)).split("<body")[0]


def test_town_acknowledges_a_village_warning_from_its_inbox(make_node, web):
    from node import warnings
    town = make_node("town", "qingshui")
    village = make_node("village", "dongshan", parent=town)
    with store.write(village.db):
        warning_id = warnings.raise_warning(village, LIAISON, {
            "subject": "征地补偿", "place": "东山村", "expected_size": 30}).subject
    deliver(village, town)
    w = web(town)
    w.login("wang")
    assert warning_id in text(w.get("/inbox"))
    r = w.post(f"/warnings/{warning_id}/act/acknowledge", {"note": "已知悉"})
    assert r.status_code == 303
    assert [a["node_id"] for a in warnings.acks(town, warning_id)] == ["qingshui"]
    page = text(w.get(r.location))  # shows the flash message once
    assert "已签收" in page
    assert warning_id not in text(w.get("/inbox"))
    assert "当天传递链" in page and "qingshui 名称" in page
    assert w.post(f"/warnings/{warning_id}/act/acknowledge", {}).status_code == 409


def test_a_bundle_under_a_name_no_node_has_leaves_no_link_behind(town, clock):
    """The bundle header is not authenticated when a wrong recipient is refused: the
    refusal is recorded, but no link is made for whatever sender name it carries."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from node import envelope
    bundle = envelope.seal([b'{"x":1}'], sender="evil0", recipient="elsewhere", first=1,
                           sender_key=Ed25519PrivateKey.generate(),
                           recipient_key=X25519PrivateKey.generate().public_key())
    client = create_app(town.dir, clock=clock).test_client()
    answer = client.post("/sync/push", data=bundle)
    assert answer.status_code == 422 and answer.get_json()["error"]["reason"] == \
        "wrong_recipient"
    assert town.db.conn.execute("SELECT count(*) FROM links").fetchone()[0] == 0
    assert town.db.conn.execute("SELECT origin FROM refusals").fetchall() == [("evil0",)]


# -- issue 17: provisional deadlines, the admin's banner, the formal documents -------------

def test_provisional_deadlines_are_marked_and_documents_print(town, web, clock):
    from datetime import UTC, datetime
    clock.now = datetime(2026, 12, 7, 2, tzinfo=UTC)
    case_id = register(town)
    handler = web(town)
    handler.login("wang")
    r = handler.post(f"/cases/{case_id}/act/accept", {})
    assert r.status_code == 303
    page = text(handler.get(f"/cases/{case_id}"))
    assert "2027-02-11" in page and "暂按法定节假日计算" in page and "办结期限" in page
    assert "受理告知书" in page
    listed = handler.api_login("wang") and handler.api("GET", f"/api/cases/{case_id}")
    body = listed.get_json()
    assert body["case"]["due_provisional"] == 1 and body["documents"][0]["kind"] == "acceptance"
    doc = handler.api("GET", f"/api/cases/{case_id}/documents/acceptance/1").get_json()
    assert doc["number"] == f"{case_id}-SL1" and doc["verified"]
    assert "2027年2月11日" in doc["paragraphs"][0] and "暂按法定节假日计算" in doc["paragraphs"][0]
    sheet = text(handler.get(f"/cases/{case_id}/documents/acceptance/1"))
    assert "受理告知书" in sheet and "（印章）" in sheet and town.settings["NODE_NAME"] in sheet
    assert f"事件 {doc['event']} 生成" in sheet and "签名已验证" in sheet
    assert handler.get(f"/cases/{case_id}/documents/decision/1").status_code == 404
    assert handler.get(f"/cases/{case_id}/documents/nonsense/1").status_code == 404
    en = text(handler.get(f"/cases/{case_id}/documents/acceptance/1?lang=en"))
    assert "Notice of acceptance" in en and "provisional" in en
    admin = web(town)
    admin.login("admin")
    banner = text(admin.get("/cases"))
    assert "2027年尚无国务院办公厅的节假日安排" in banner
    assert "尚无国务院办公厅的节假日安排" not in text(handler.get("/cases"))  # admins only


def test_a_dissatisfied_follow_up_form_tells_of_review(town, web):
    case_id = register(town)
    with store.write(town.db):
        cases.act(town, log.Actor("wang", "handler"), case_id, "accept", {})
        cases.act(town, log.Actor("wang", "handler"), case_id, "reply",
                  {"decision": "reject", "reply": "不符合条件"})
    w = web(town)
    w.login("liu")
    r = w.post(f"/cases/{case_id}/act/followup", {"rating": "dissatisfied"})
    assert r.status_code == 400 and "申请复查的权利" in text(r)
    r = w.post(f"/cases/{case_id}/act/followup", {"rating": "dissatisfied", "told": "on"})
    assert r.status_code == 303
    page = text(w.get(f"/cases/{case_id}"))
    assert "信访人可在2026-12-23前申请复查" in page
    assert cases.get(town, case_id)["state"] == "replied"
