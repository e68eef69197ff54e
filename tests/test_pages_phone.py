"""Every page of every role on a 360-pixel phone, in Chinese and English, in a real
browser against real `siji serve` processes (issue 20):

- a liaison registers a case with the required fields in at most 6 taps;
- no page of any role scrolls sideways at 360 px, and none breaks axe-core's critical
  accessibility rules;
- a warning raised in the village appears on the town office's open page without a
  reload, with the count in the title and the menu.

The network is city <- town <- village (test_browser.serve_network) with a little of
everything: a case escalated and accepted, one referred down with an urge and a
supervision order, a warning, a case closed with its report. Pages are found by walking
each role's links from its home page, one page of each kind.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from test_browser import CHROMIUM, PASSWORD, PHONE, login, serve_network
from test_serve import run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium "
                       "(scripts/apt-packages.txt)"),
]
ROLES = (("dongshan", "liu"), ("dongshan", "admin"), ("qingshui", "wang"),
         ("qingshui", "zhao"), ("qingshui", "admin"), ("shi", "zhao"), ("shi", "admin"))
NOT_PAGES = re.compile(r"/logout|/api/|/static/|\.(csv|xlsx)(\?|$)|[?&]lang=")
CASE_ID = re.compile(r"[A-Z]+-[a-z0-9]+-\d{4}-\d{4}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def _new_id(out: str) -> str:
    return CASE_ID.search(out).group(0)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    base = tmp_path_factory.mktemp("phone")
    with serve_network(base, LIVE_POLL=1) as url:
        cun, zhen, shi = base / "dongshan", base / "qingshui", base / "shi"

        def siji(d, *args):
            return run("--dir", str(d), *args).stdout

        up = _new_id(siji(cun, "case", "add", "--as", "liu", "--category", "低保",
                          "--summary", "低保金三个月未发放，家中老人看病急需用钱",
                          "--petitioner", "张三,11010519491231002X,13800138000"))
        siji(cun, "case", "act", up, "escalate", "--as", "liu", "-f", "reason=需镇协调")
        siji(cun, "case", "add", "--as", "liu", "--category", "殡葬", "--summary",
             "公墓收费标准不清", "--petitioner", "王五")
        siji(cun, "warning", "add", "--as", "liu", "-f", "subject=征地补偿款分配",
             "-f", "place=东山村", "-f", "expected_size=40", "-f", "destination=city")
        siji(cun, "sync")
        siji(zhen, "case", "act", up, "accept", "--as", "wang")
        down = _new_id(siji(zhen, "case", "add", "--as", "wang", "--category", "养老服务",
                            "--summary", "敬老院床位不足", "--petitioner", "李四"))
        siji(zhen, "case", "act", down, "accept", "--as", "wang")
        siji(zhen, "case", "act", down, "refer", "--as", "wang", "-f", "to=dongshan",
             "-f", "instruction=请村里先行核实", "-f", "deadline=2027-01-20")
        siji(zhen, "case", "act", down, "urge", "--as", "wang", "-f", "message=请尽快核实")
        siji(zhen, "case", "act", down, "supervise", "--as", "wang",
             "-f", "instruction=请于月底前反馈", "-f", "deadline=2027-01-25")
        closed = _new_id(siji(zhen, "case", "add", "--as", "wang", "--category", "低保",
                              "--summary", "低保复核", "--petitioner", "赵六"))
        for action, fields in (("accept", ()), ("reply", ("decision=support", "reply=已补发")),
                               ("followup", ("rating=satisfied",))):
            siji(zhen, "case", "act", closed, action, "--as", "wang",
                 *[x for f in fields for x in ("-f", f)])
        siji(zhen, "case", "act", closed, "close", "--as", "zhao", "-f", "report=已办结",
             "-f", "signers=赵领导,王办理")
        city_case = _new_id(siji(zhen, "case", "add", "--as", "wang", "--category", "其他",
                                 "--summary", "跨镇道路修缮纠纷", "--petitioner", "钱七"))
        siji(zhen, "case", "act", city_case, "escalate", "--as", "wang",
             "-f", "reason=涉及两镇")
        siji(zhen, "sync")
        siji(cun, "sync")
        siji(shi, "case", "act", city_case, "accept", "--as", "wang")
        yield {"url": url, "dir": {"dongshan": cun, "qingshui": zhen, "shi": shi},
               "siji": siji}


def _pages(page, base: str, limit: int = 40) -> list[str]:
    """This role's pages: its links from home, then theirs, one page of each kind."""
    seen, todo, kinds = [], ["/"], set()
    while todo and len(seen) < limit:
        path = todo.pop(0)
        kind = CASE_ID.sub("ID", path.split("?")[0])
        kind = re.sub(r"/(YJ|DB|DQ)-[^/]+", "/ID", kind)
        if kind in kinds:
            continue
        kinds.add(kind)
        page.goto(base + path)
        seen.append(page.url[len(base):])
        for href in page.eval_on_selector_all(
                "a[href^='/']", "els => els.map(e => e.getAttribute('href'))"):
            if not NOT_PAGES.search(href) and href not in todo:
                todo.append(href)
    return seen


def _problems(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe
    out = []
    width = page.evaluate("document.scrollingElement.scrollWidth")
    if width > PHONE["width"]:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 3).map(e => e.tagName + '.' + e.className)""")
        out.append(f"{width}px wide: {wide}")
    violations = Axe().run(page).response["violations"]
    out += [f"axe {v['id']}: {v['help']}" for v in violations if v["impact"] == "critical"]
    return out


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_page_of_every_role_fits_a_phone_and_passes_axe(browser, network, lang):
    problems, visited = {}, 0
    for node, user in ROLES:
        base = network["url"][node]
        page = login(browser, base, user, viewport=PHONE, lang=lang)
        if lang == "en":
            page.goto(base + "/?lang=en")
        for path in _pages(page, base):
            page.goto(base + path)
            visited += 1
            found = _problems(page)
            if found:
                problems[f"{node} {user} {path}"] = found
        page.close()
    assert visited >= 40  # every role, several pages each
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_a_liaison_registers_a_case_in_six_taps(browser, network):
    base = network["url"]["dongshan"]
    page = browser.new_page(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    page.goto(base + "/login")
    page.fill("input[name=username]", "liu")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.tap("form button.primary")
    taps, typing = 0, 0.0

    def tap(selector, navigates=False):
        nonlocal taps
        taps += 1
        if navigates:
            with page.expect_navigation():
                page.tap(selector)
        else:
            page.tap(selector)

    def type_in(selector, text):
        nonlocal typing
        tap(selector)
        started = time.monotonic()
        page.keyboard.type(text, delay=60)  # a person's pace on a phone keyboard
        typing += time.monotonic() - started

    assert page.url.endswith("/mine")  # the liaison's home
    tap("main a.button.primary", navigates=True)  # 登记信访件
    tap("label.chip:has-text('低保')")
    type_in("textarea[name=summary]", "低保金未按时发放")
    type_in("input[name=p_name]", "孙八")
    tap("main form button.primary", navigates=True)
    assert "已登记" in page.locator("h1").inner_text()
    assert taps <= 6, taps
    print(f"\nregister on a 360px phone: {taps} taps, {typing:.1f} s of typing")


def test_a_new_warning_appears_on_the_open_office_page_without_a_reload(browser, network):
    town = network["url"]["qingshui"]
    page = login(browser, town, "wang", viewport=PHONE)
    page.goto(town + "/inbox")
    before = page.title()
    first = re.match(r"\((\d+)\) ", before)
    count = int(first.group(1)) if first else 0
    out = network["siji"](network["dir"]["dongshan"], "warning", "add", "--as", "liu",
                          "-f", "subject=拖欠工程款", "-f", "place=东山村",
                          "-f", "expected_size=25", "-f", "destination=city",
                          "-f", "beijing_risk=true")
    warning_id = re.search(r"YJ-dongshan-\d{4}-\d{4}", out).group(0)
    network["siji"](network["dir"]["dongshan"], "sync")
    item = page.locator("#live li", has_text=warning_id)
    item.wait_for(timeout=15_000)  # polled each second here (LIVE_POLL=1)
    assert page.title().startswith(f"({count + 1}) ")
    assert page.locator("nav [data-count]").first.inner_text() == str(count + 1)
    assert item.locator("a").get_attribute("href") == f"/warnings/{warning_id}"
    assert page.url.endswith("/inbox")  # the same page: nothing reloaded
