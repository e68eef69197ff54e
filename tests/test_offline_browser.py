"""The liaison's phone without a link, in a real browser (Chromium through Playwright).

The three `siji serve` processes of test_browser (city <- town <- village) and its
login; the network is cut with Playwright's offline mode, which the service worker
sees too. A liaison registers two cases and a warning offline, a half-typed form
outlives its tab, and on reconnecting each draft reaches the village exactly once (the
first upload's answer is thrown away on the way, so the phone sends that draft again);
the warning goes on to the city once. A draft the village refuses stays, with why.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import test_browser
from test_browser import CHROMIUM, PHONE, login
from test_pages_phone import _problems

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium "
                       "(scripts/apt-packages.txt)"),
]
browser, network = test_browser.browser, test_browser.network  # its fixtures, one per module
CASES = (("dibao", "低保金连续三个月未到账", "王桂兰", "13912345678"),
         ("elderly", "独居老人申请居家养老服务补贴", "陈德福", ""))
WARNING = ("征地补偿款分配不公，村民酝酿集体上访", "45")


class Phone:
    """One phone: its tabs share a browser context (storage, service worker, offline), so
    one can be closed and another opened; test_browser's login opens the first."""

    def __init__(self, chromium):
        self.context = chromium.new_context(viewport=PHONE, locale="zh-CN")

    def new_page(self, **_screen):
        return self.context.new_page()


def offline_ready(page) -> None:
    """The service worker controls the page and keeps the forms: the phone may go offline."""
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function("() => caches.match('/warnings/new').then(Boolean)")


def register_case(page, base: str, category: str, summary: str, name: str, phone: str):
    page.goto(base + "/cases/new")
    page.check(f"input[name=category][value={category}]", force=True)  # a chip hides its radio
    page.fill("textarea[name=summary]", summary)
    page.fill("input[name=p_name]", name)
    if phone:
        page.fill("input[name=p_phone]", phone)
    page.click("main form button.primary")
    page.wait_for_url(re.compile(r"/drafts\?saved=1$"))


def count(page) -> str:
    """The 待上传 link in the menu, once the page script has counted the drafts."""
    link = page.locator("nav.menu #drafts-count")
    link.wait_for()
    return link.inner_text()


def api(page, url: str) -> dict:
    answer = page.request.get(url)
    assert answer.ok, answer.text()
    return answer.json()


def test_drafts_saved_offline_arrive_once_at_the_village_and_the_warning_at_the_city(
        browser, network):
    village, town, city = network["dongshan"], network["qingshui"], network["shi"]
    phone = login(Phone(browser), village, "liu")
    offline_ready(phone)
    context = phone.context
    context.set_offline(True)

    for case in CASES:
        register_case(phone, village, *case)
        assert "已保存在本机" in phone.locator("#drafts-note").inner_text()
    phone.goto(village + "/warnings/new")
    assert "当前没有网络" in phone.locator("#drafts-offline").inner_text()
    phone.fill("input[name=subject]", WARNING[0])
    phone.fill("input[name=expected_size]", WARNING[1])
    phone.select_option("select[name=destination]", "beijing")
    phone.click("main form button.primary")
    phone.wait_for_url(re.compile(r"/drafts\?saved=1$"))
    assert count(phone) == "待上传 3"
    assert phone.locator("#drafts-list li").count() == 3
    assert WARNING[0] in phone.locator("#drafts-list").inner_text()

    phone.goto(village + "/cases/new")  # half-typed, then the tab is closed
    phone.fill("textarea[name=summary]", "危房改造补助")
    phone.fill("input[name=p_name]", "李秀英")
    phone.close()
    tab = context.new_page()
    tab.goto(village + "/cases/new")
    assert tab.input_value("textarea[name=summary]") == "危房改造补助"
    assert tab.input_value("input[name=p_name]") == "李秀英"
    assert count(tab) == "待上传 3"

    lost = []

    def lose_the_first_answer(route):
        if lost:
            route.continue_()
            return
        lost.append(route.fetch())  # the village registers it; the phone never hears so
        route.abort()

    context.route("**/drafts/upload/**", lose_the_first_answer)
    tab.goto(village + "/drafts")
    with tab.expect_event("requestfailed"):
        context.set_offline(False)  # the page hears "online" and sends; one answer is lost
    tab.click("#drafts-send")  # the liaison sends again
    tab.wait_for_selector("#drafts-list li", state="detached")
    assert lost and lost[0].ok  # the first draft was written before its answer was lost
    tab.reload()
    assert tab.evaluate("() => SijiDrafts.all()") == []  # nothing is left to send twice
    assert tab.locator("#drafts-count").count() == 0

    rows = api(tab, village + "/api/cases")["cases"]
    summaries = [api(tab, f"{village}/api/cases/{c['id']}")["case"]["summary"] for c in rows]
    assert [summaries.count(c[1]) for c in CASES] == [1, 1]  # each draft exactly once
    warnings = [w for w in api(tab, village + "/api/warnings")["warnings"]
                if w["subject"] == WARNING[0]]
    assert len(warnings) == 1
    assert lost[0].json()["id"] in {c["id"] for c in rows} | {w["id"] for w in warnings}

    tab.goto(village + "/mine")
    tab.click("text=立即同步")
    assert "同步完成" in tab.locator(".flash").first.inner_text()
    desk = login(browser, town, "wang")
    desk.goto(town + "/mine")
    desk.click("text=立即同步")
    leader = login(browser, city, "zhao")
    at_city = [w["id"] for w in api(leader, city + "/api/warnings")["warnings"]
               if w["subject"] == WARNING[0]]
    assert at_city == [warnings[0]["id"]]


def test_a_draft_the_village_refuses_stays_with_the_reason(browser, network):
    village = network["dongshan"]
    phone = login(browser, village, "liu")
    offline_ready(phone)
    phone.context.set_offline(True)
    phone.goto(village + "/cases/new")
    phone.check("input[name=category][value=funeral]", force=True)
    phone.fill("textarea[name=summary]", "惠民殡葬补贴未发放")
    phone.fill("input[name=p_name]", "赵建国")
    phone.click("main form details summary")
    phone.fill("input[name=p_id_number]", "110105194912310021")  # the check digit is wrong
    phone.click("main form button.primary")
    phone.wait_for_url(re.compile(r"/drafts\?saved=1$"))
    phone.context.set_offline(False)
    refusal = phone.locator("#drafts-list li p.error")
    refusal.wait_for()
    assert "被拒收" in refusal.inner_text() and "校验码" in refusal.inner_text()
    phone.reload()  # kept, not sent again
    assert count(phone) == "待上传 1"
    assert _problems(phone) == []  # the list fits 360 px and passes axe's critical rules
    phone.click("#drafts-list li button:text-is('修改')")  # back into the form, fixed, sent
    phone.wait_for_url(re.compile(r"/cases/new$"))
    assert phone.input_value("input[name=p_id_number]") == "110105194912310021"
    phone.fill("input[name=p_id_number]", "11010519491231002X")
    phone.click("main form button.primary")
    assert "已登记" in phone.locator("h1").inner_text()
    assert phone.locator("#drafts-count").count() == 0


def test_a_form_the_node_does_not_answer_is_kept_though_the_phone_is_online(browser, network):
    village = network["dongshan"]
    phone = login(Phone(browser), village, "liu")
    offline_ready(phone)

    def unreachable(route):  # the phone has a network; the village node does not answer
        if route.request.method == "POST" or "/drafts/" in route.request.url:
            route.abort()
        else:
            route.continue_()

    phone.context.route("**/*", unreachable)
    register_case(phone, village, "tekun", "临时救助申请递交两个月无答复", "孙玉梅", "")
    assert phone.evaluate("navigator.onLine")
    assert count(phone) == "待上传 1"
    phone.context.unroute("**/*")
    phone.click("#drafts-send")
    phone.wait_for_selector("#drafts-list li", state="detached")
    assert "C-dongshan" in phone.locator("#drafts-done").inner_text()


def test_logging_out_drops_the_pages_kept_on_the_phone(browser, network):
    village = network["dongshan"]
    phone = login(Phone(browser), village, "liu")
    offline_ready(phone)
    assert "刘信息员" in phone.evaluate(
        "() => caches.match('/cases/new').then(page => page.text())")  # a name, a token
    phone.click("header button:text-is('退出')")
    phone.wait_for_url(re.compile(r"/login"))
    phone.wait_for_function("() => caches.match('/cases/new').then(page => !page)")
    assert phone.evaluate("() => caches.match('/drafts').then(Boolean)") is False
