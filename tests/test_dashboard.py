"""The figures dashboard, its drill-down, exports, report, supervision requests and API.

Real nodes (conftest's chain) and Flask's test client with real logins and
CSRF (test_web.Web); figures move up as sync sessions carry them
(test_figures.report_up).
"""

from __future__ import annotations

import csv
import io
import re

import openpyxl
import pytest
from conftest import HANDLER, LIAISON, case_fields
from test_figures import report_up
from test_routing import act, register
from test_web import Web

from node import oversight, store, warnings


@pytest.fixture
def served(chain, clock):
    """The chain with a little history: an overdue village case, a collective one escalated,
    a town case answered, a warning; each node's figures reported up."""
    city, town, area, village = chain
    late = register(village, category="dibao")
    group = register(village, category="grassroots", people_count=12, channel="visit")
    act(village, group, "escalate", actor=LIAISON, to="pian", reason="集体访，需片区协调")
    answered = register(town, actor=HANDLER, category="youfu")
    act(town, answered, "accept")
    act(town, answered, "reply", decision="support", reply="已按政策补发")
    with store.write(village.db):
        warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "东山村",
                                                  "expected_size": 30})
    clock.advance(days=20)
    report_up(chain)
    return {"chain": chain, "late": late, "group": group, "answered": answered,
            "web": lambda node, user="wang": _login(node, clock, user)}


def _login(node, clock, user):
    w = Web(node, clock)
    w.login(user)
    return w


def text(r) -> str:
    return r.get_data(as_text=True)


def test_the_city_dashboard_shows_rates_units_charts_and_no_personal_data(served):
    city = served["chain"][0]
    page = text(served["web"](city).get("/figures?period=year"))
    assert "办结率" in page and "目标 90%" in page and "zhen 名称" in page
    assert page.count('<img class="chart" src="data:image/svg+xml;base64,') >= 4
    # the charts are images: they show with scripts off (the only scripts are live.js, which
    # counts what awaits the user, and the offline drafts' with their JSON texts)
    assert sorted(re.findall(r'<script src="/static/([\w.-]+)\?', page)) == [
        "drafts-store.js", "live.js", "offline.js"]
    assert len(re.findall(r"<script[^>]*>", page)) == 4
    assert '<script type="application/json" id="siji-offline">' in page
    person = case_fields()["petitioners"][0]
    assert person["name"] not in page and person["id_number"] not in page
    # the supervision list names the overdue village case, its unit and holder, no person
    supervision = page.split('id="supervision"')[1]
    assert served["late"] in supervision and "cun 名称" in supervision


def test_a_number_drills_down_to_what_this_node_may_see(served):
    city, town, area, village = served["chain"]
    w = served["web"](town)
    page = text(w.get("/figures?period=year"))
    link = re.search(r'href="(/figures/cases\?measure=n&amp;[^"]*unit=zhen[^"]*)"', page)
    cases_page = text(w.get(link.group(1).replace("&amp;", "&")))
    assert served["answered"] in cases_page
    below = text(w.get("/figures/cases?measure=n&period=year&unit=pian"))
    # the village's own case never reached the town: counts only; the 集体访 reached every
    # level the same day (Art. 25), so the town sees it
    assert served["late"] not in below and served["group"] in below
    assert "另有 1 件由下级单位统计" in below
    overdue = text(served["web"](city).get("/figures/cases?measure=overdue&period=year"))
    assert served["late"] in overdue  # from the supervision list, held below


@pytest.mark.parametrize("url", [
    "/figures?period=decade", "/figures?from=2026-01-01", "/figures?at=tomorrow",
    "/figures?from=2026-05-01&to=2026-01-01", "/figures/unit.pdf", "/figures/everything.csv",
    "/figures/cases?measure=happiness", "/figures/cases?unit=elsewhere",
    "/figures/cases?category=weather", "/api/figures?period=decade"])
def test_bad_queries_get_a_clear_error_and_change_nothing(served, url):
    town = served["chain"][1]
    before = town.db.conn.execute("SELECT count(*) FROM events").fetchone()
    r = served["web"](town).client.get(url)
    assert r.status_code == 400 and "Traceback" not in text(r)
    assert town.db.conn.execute("SELECT count(*) FROM events").fetchone() == before


def test_every_table_exports_as_csv_and_excel_with_chinese_headers(served):
    city = served["chain"][0]
    w = served["web"](city)
    for table in ("unit", "category", "channel", "trend", "supervision"):
        r = w.client.get(f"/figures/{table}.csv?period=year")
        assert r.status_code == 200 and r.mimetype == "text/csv"
        rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
        assert rows[1][0] == "单位" and rows[1][1] == "shi 名称"
        assert rows[2][0] == "统计期间" and rows[2][1].startswith("2026-01-01")
        assert rows[3][0] == "制表时间"
        x = w.client.get(f"/figures/{table}.xlsx?period=year")
        sheet = openpyxl.load_workbook(io.BytesIO(x.get_data())).active
        assert sheet["A2"].value == "单位" and sheet["B2"].value == "shi 名称"
        assert [c.value for c in sheet[6]] == rows[5]  # the same Chinese headers
    units = list(csv.reader(io.StringIO(w.client.get("/figures/unit.csv?period=year")
                                        .get_data().decode("utf-8-sig"))))
    assert units[5][:2] == ["单位", "件次"] and units[7][0] == "zhen 名称"
    assert units[7][1] == "3"  # cun's two and zhen's own one
    listed = w.client.get("/figures/cases.xlsx?measure=overdue&period=year")
    sheet = openpyxl.load_workbook(io.BytesIO(listed.get_data())).active
    assert sheet["A1"].value == "超期件次"


def test_the_report_prints_the_year_on_year_lines(served):
    city = served["chain"][0]
    page = text(served["web"](city).get("/figures/report?period=year"))
    assert "信访工作统计报告" in page
    assert "受理来信来访 3 件次、14 人次，上年同期为零。" in page
    assert "集体访 1 批 12 人次" in page and "其中" in page
    english = text(served["web"](city).get("/figures/report?period=year&lang=en"))
    assert "Petitions received: 3" in english


def test_the_api_gives_the_same_figures_and_the_drill_down(served):
    city = served["chain"][0]
    w = Web(city, served["chain"][0].clock)
    w.api_login("wang")
    data = w.api("GET", "/api/figures?period=year").get_json()
    assert data["total"]["measures"]["n"] == 3 and data["total"]["rates"]["done_rate"] == 33.3
    assert [u["key"] for u in data["units"]] == ["shi", "zhen"]
    assert data["units"][1]["made"]  # when the town's figures were made
    # the supervision list, the most overdue first, a page of it (the whole is an export)
    assert data["supervision_total"] == len(data["supervision"]) == 3
    first = w.api("GET", "/api/figures?period=year&limit=1").get_json()
    assert first["supervision"] == data["supervision"][:1] and first["supervision_total"] == 3
    assert w.api("GET", "/api/figures?limit=0").status_code == 400
    drill = w.api("GET", "/api/figures/cases?measure=overdue&period=year").get_json()
    # overdue, one definition: to forward (the village's, the area's) and to follow up (the
    # town's answer); the 集体访 is the city's to see (Art. 25), the other two are on its
    # supervision list
    assert [r["id"] for r in drill["records"]] == [served["group"]]
    assert drill["held_below"] == 2
    assert {r["id"] for r in drill["supervision"]} == {served["late"], served["answered"]}


def test_the_city_asks_for_supervision_of_a_case_it_never_held(served):
    city, town, area, village = served["chain"]
    w = served["web"](city)
    page = text(w.get("/figures?period=year"))
    assert "请承办单位的上一级督办" in page  # the form on the supervision list
    r = w.post("/figures/supervision/request", {
        "case": served["late"], "action": "supervise", "message": "请督促尽快上报",
        "deadline": "2027-01-10"})
    assert r.status_code == 303
    report_up(served["chain"])
    asked = oversight.listing(area, to_unit="pian")  # the unit above the holder (cun)
    assert [(r["case_id"], r["action"], r["status"]) for r in asked] == [
        (served["late"], "supervise", "open")]
    assert oversight.listing(town) == asked  # it passed through the town on the way
    wa = served["web"](area)
    assert "请督促尽快上报" in text(wa.get("/inbox"))
    r = wa.post(f"/oversight/{asked[0]['id']}/answer", {"outcome": "noted",
                                                        "note": "已电话督促东山村"})
    assert r.status_code == 303
    report_up(served["chain"])
    assert oversight.get(city, asked[0]["id"])["outcome"] == "noted"
    # a request about a case not on the list is refused, and the village is never asked
    bad = w.post("/figures/supervision/request", {"case": "C-cun-2026-9999", "action": "urge",
                                                   "message": "x"})
    assert bad.status_code == 404
    assert oversight.listing(village) == []


def test_the_village_has_a_small_dashboard_of_its_own(served):
    village = served["chain"][3]
    page = text(served["web"](village, "liu").get("/figures?period=year"))
    assert "cun 名称" in page and "办结率" in page and served["late"] in page
    assert "请承办单位的上一级督办" not in page  # a village asks no one below it


def test_the_case_and_warning_lists_export_too(served):
    town = served["chain"][1]
    w = served["web"](town)
    listed = w.client.get("/cases.csv?due=overdue")
    rows = list(csv.reader(io.StringIO(listed.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["信访件"] and rows[4][:3] == ["信访件编号", "登记日期", "信访类别"]
    # overdue to follow up (the town's answer) and to forward (the 集体访, Art. 25)
    assert [r[0] for r in rows[5:]] == [served["answered"], served["group"]]
    assert rows[5][2] == "优抚" and rows[5][4] == "已答复"
    person = case_fields()["petitioners"][0]
    assert person["name"] not in listed.get_data().decode("utf-8-sig")
    sheet = openpyxl.load_workbook(io.BytesIO(w.client.get("/warnings.xlsx").get_data())).active
    assert sheet["A1"].value == "预警"
    assert w.client.get("/cases.pdf").status_code == 400
