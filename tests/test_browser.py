"""The pages in a real browser (Debian's chromium through Playwright) against real nodes.

Three `siji serve` processes on loopback: a city, a town enrolled under it,
and a village enrolled under the town, each with its own accounts. A
liaison registers a case on a 360x740 phone screen in Chinese and syncs;
the town accepts, assigns and replies; the liaison syncs and records the
follow-up; a case the town escalates shows on the city page. One browser
serves the whole module. Set WEB_SCREENSHOTS=docs/screenshots to refresh
the screenshots linked from the README (otherwise they go to a temp dir).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import pytest
from playwright.sync_api import expect
from test_serve import free_port, run, start_server

from node.tiers import TIER_ROLES

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "browser-pass-1"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 860}
STAFF = (("liu", "liaison", "刘信息员"), ("wang", "handler", "王办理"),
         ("zhao", "leader", "赵领导"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium "
                       "(scripts/apt-packages.txt)"),
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("WEB_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def _code(text: str) -> str:
    return re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", text).group(0)


SPECS = (("shi", "city", "市民政局", None), ("qingshui", "town", "清水镇", "shi"),
         ("dongshan", "village", "东山村", "qingshui"))


@contextlib.contextmanager
def serve_network(base: Path, specs=SPECS, **settings):
    """Each (id, tier, name, parent) of ``specs`` initialised with STAFF, enrolled by code
    over HTTP and served by `siji serve`; yields {id: url} (the directories are base/id).
    ``settings`` become SIJI_* environment variables."""
    env = {**os.environ, "SIJI_ADMIN_PASSWORD": PASSWORD, "SIJI_PASSWORD": PASSWORD,
           # the tests press "sync now"; the scheduler would race them
           "SIJI_SYNC_INTERVAL": "3600", "SIJI_URGENT_CHECK": "3600",
           **{f"SIJI_{k}": str(v) for k, v in settings.items()}}
    ports = {spec[0]: free_port() for spec in specs}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    procs = []
    try:
        for name, tier, title, parent in specs:
            d = base / name
            args = ["--dir", str(d), "init", "--tier", tier, "--id", name, "--name", title]
            if parent:
                args += ["--parent", url[parent]]
            run(*args, env=env)
            for user, role, display in STAFF:
                if role in TIER_ROLES[tier]:  # a village has no handler
                    run("--dir", str(d), "user", "add", user, "--role", role, "--name",
                        display, env=env)
            if parent:
                code = _code(run("--dir", str(base / parent), "enroll-code", env=env).stdout)
                run("--dir", str(d), "enroll", "--code", code, env=env)
            procs.append(start_server(d, ports[name], env=env))
        yield url
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """city <- town <- village, enrolled by code over HTTP, each served by `siji serve`."""
    with serve_network(tmp_path_factory.mktemp("net")) as url:
        yield url


def login(browser, base: str, user: str, viewport=PHONE, lang="zh-CN"):
    page = browser.new_page(viewport=viewport, locale=lang)
    page.set_default_timeout(10_000)
    page.goto(base + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button.primary")
    page.wait_for_load_state()
    return page


def act(page, action_label: str, **fields):
    """Open an action's form on a case page (the usual next step's is open already), fill
    it and send it."""
    suggested = page.locator("section.next-step",
                             has=page.locator(f"h3:text-matches('[：:] ?{action_label}$')"))
    if suggested.count():
        form = suggested
    else:
        form = page.locator("details.action",
                            has=page.locator(f"summary:text-is('{action_label}')"))
        form.locator("summary").click()
    for name, value in fields.items():
        field = form.locator(f"[name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    form.locator("button.primary").click()
    page.wait_for_load_state()


def shot(page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_a_case_from_the_village_phone_to_the_town_and_back(browser, network, shots):
    village, town = network["dongshan"], network["qingshui"]
    phone = login(browser, village, "liu")
    assert phone.locator("h1").first.inner_text().startswith("我的信访件")
    shot(phone, shots, "village-mine-phone")
    phone.click("text=登记信访件")
    phone.click("label.chip:has-text('低保')")
    phone.fill("textarea[name=summary]", "低保金三个月未发放，家中老人看病急需用钱")
    phone.fill("input[name=p_name]", "张三")
    phone.fill("input[name=p_phone]", "13800138000")
    shot(phone, shots, "village-register-phone")
    phone.click("form button.primary")
    phone.wait_for_load_state()
    heading = phone.locator("h1").inner_text()
    case_id = re.search(r"C-dongshan-\d{4}-\d{4}", heading).group(0)
    assert "已登记" in heading
    summary = phone.locator("dl.facts dd.text").first.inner_text()
    assert summary == "低保金三个月未发放，家中老人看病急需用钱"
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360  # fits the phone
    act(phone, "上报", reason="涉及镇民政办，需镇协调")
    assert "上报" in phone.locator(".flash").first.inner_text()
    shot(phone, shots, "village-case-phone")
    phone.goto(village + "/mine")
    phone.click("text=立即同步")
    assert "同步完成" in phone.locator(".flash").first.inner_text()

    desk = login(browser, town, "wang", viewport=DESKTOP)
    assert case_id in desk.locator("main").inner_text()  # the inbox: escalated to us
    shot(desk, shots, "town-inbox-desktop")
    desk.click(f"text={case_id}")
    desk.wait_for_load_state()
    assert desk.locator(".sig.ok").count() >= 2  # registration and escalation verified
    act(desk, "受理")
    act(desk, "分办/包案", assignee="王办理", lead_leader="赵领导")
    act(desk, "答复", decision="support", reply="已核实，补发三个月低保金")
    assert "已答复" in desk.locator("h1").inner_text()
    shot(desk, shots, "town-case-desktop")
    town_phone = login(browser, town, "wang")
    town_phone.goto(f"{town}/cases/{case_id}")
    shot(town_phone, shots, "town-case-phone")

    phone.goto(village + "/mine")
    phone.click("text=立即同步")
    phone.goto(f"{village}/cases/{case_id}")
    assert "已答复" in phone.locator("h1").inner_text()
    act(phone, "回访", rating="satisfied", note="群众满意")
    assert "满意" in phone.locator("dl.facts").inner_text()
    phone.goto(village + "/mine")
    phone.click("text=立即同步")
    desk.goto(f"{town}/cases/{case_id}")
    desk.reload()
    assert "回访" in desk.locator("ol.timeline").inner_text()


def test_a_case_escalated_by_the_town_shows_at_the_city(browser, network, shots):
    town, city = network["qingshui"], network["shi"]
    desk = login(browser, town, "wang", viewport=DESKTOP)
    desk.goto(town + "/cases/new")
    desk.click("label.chip:has-text('养老服务')")
    desk.fill("textarea[name=summary]", "敬老院床位不足，多名老人无法入住")
    desk.fill("input[name=p_name]", "李四")
    desk.click("form button.primary")
    desk.wait_for_load_state()
    case_id = re.search(r"Z-qingshui-\d{4}-\d{4}", desk.locator("h1").inner_text()).group(0)
    act(desk, "上报", reason="需市级统筹床位")
    desk.goto(town + "/warnings/new")
    desk.fill("input[name=subject]", "敬老院入住纠纷")
    desk.fill("input[name=expected_size]", "60")
    desk.select_option("select[name=destination]", "beijing")
    desk.click("form button.primary")
    desk.wait_for_load_state()
    assert "重大" in desk.locator("dl.facts").inner_text()
    desk.goto(town + "/mine")
    desk.click("text=立即同步")
    assert "同步完成" in desk.locator(".flash").first.inner_text()

    leader = login(browser, city, "zhao", viewport=DESKTOP)
    assert "市级总览" in leader.locator("h1").inner_text()
    assert case_id in leader.locator("main").inner_text()
    leader.click(f"text={case_id}")
    people = leader.locator("ul.people").inner_text()
    assert "李四" in people  # the city holds it now: no masking at the holder
    act(leader, "受理")
    act(leader, "交办", to="qingshui", instruction="请镇里先行安置", deadline="2026-12-20")
    act(leader, "督办", instruction="请于月底前报送床位方案", deadline="2026-12-30")
    assert "已下发" in leader.locator("main").inner_text()
    leader.goto(city + "/city")
    assert "敬老院入住纠纷" in leader.locator("main").inner_text()
    shot(leader, shots, "city-desktop")


def test_a_script_typed_into_a_summary_is_shown_not_run(browser, network):
    village = network["dongshan"]
    page = login(browser, village, "liu")
    ran = []
    page.on("dialog", lambda d: (ran.append(d.message), d.dismiss()))
    page.goto(village + "/cases/new")
    page.click("label.chip:has-text('殡葬')")
    page.fill("textarea[name=summary]", "<script>alert(1)</script>公墓收费")
    page.fill("input[name=p_name]", "王五")
    page.click("form button.primary")
    page.wait_for_load_state()
    summary = page.locator("dl.facts dd.text").first.inner_text()
    assert summary == "<script>alert(1)</script>公墓收费" and ran == []


def test_a_form_without_its_csrf_token_is_refused(browser, network):
    village = network["dongshan"]
    page = login(browser, village, "liu")
    page.goto(village + "/cases/new")
    page.evaluate("document.querySelector('main form input[name=csrf_token]').remove()")
    page.click("label.chip:has-text('殡葬')")
    page.fill("textarea[name=summary]", "不应登记")
    page.fill("input[name=p_name]", "王五")
    page.click("form button.primary")
    page.wait_for_load_state()
    assert "表单已过期" in page.locator("main").inner_text()
    page.goto(village + "/cases")
    assert "不应登记" not in page.content()


def test_english_switch_and_other_units_cases(browser, network, shots):
    village, town = network["dongshan"], network["qingshui"]
    page = login(browser, village, "liu")
    page.click("text=English")
    assert page.locator("h1").first.inner_text().startswith("My cases")
    page.goto(village + "/cases/new")
    assert "Register a case" in page.locator("h1").inner_text()  # the choice is kept
    shot(page, shots, "village-register-phone-en")
    page.click("text=中文")
    assert "登记信访件" in page.locator("h1").inner_text()
    missing = page.goto(village + "/cases/Z-qingshui-2026-0001")
    assert missing.status == 404  # a town's case is not the village's to open
    by_api = page.request.get(village + "/api/cases/Z-qingshui-2026-0001")  # same session
    assert by_api.status == 404 and "error" in by_api.json()
    admin = login(browser, town, "admin", viewport=DESKTOP)
    assert "dongshan" in admin.locator("main").inner_text()
    admin.click("text=生成入网码")
    expect(admin.locator(".qr svg")).to_have_count(1)  # waits for the answer to be drawn
    shot(admin, shots, "town-network-desktop")


def test_the_figures_dashboard_reads_on_a_phone_with_charts_and_no_scripts(browser, network,
                                                                           shots):
    """Issue 18: the city's figures, reported up by the village's and the town's sessions,
    on a 360 px phone: the tables reflow into cards, the charts are server-drawn images."""
    village, town, city = network["dongshan"], network["qingshui"], network["shi"]
    phone = login(browser, village, "liu")
    phone.goto(village + "/cases/new")
    phone.click("label.chip:has-text('殡葬')")
    phone.fill("textarea[name=summary]", "公墓收费标准不清")
    phone.fill("input[name=p_name]", "王五")
    phone.click("form button.primary")
    phone.wait_for_load_state()
    phone.goto(village + "/mine")
    phone.click("text=立即同步")  # the village reports its figures first; each hop forwards
    leader = login(browser, city, "zhao")
    leader.goto(city + "/figures?period=year")
    for _ in range(50):  # the town forwards the village's report on receipt
        if leader.locator("img.chart").count():
            break
        leader.wait_for_timeout(200)
        leader.reload()
    table = leader.locator("table.figures-table").first
    assert "清水镇" in table.inner_text()
    # on a phone each row is a card; each number says what it is (its label drawn by CSS)
    assert table.locator("td[data-label='办结率']").count() == 2
    assert table.locator("thead").evaluate("t => getComputedStyle(t).display") == "none"
    assert leader.evaluate("document.scrollingElement.scrollWidth") <= 360  # reflowed
    charts = leader.locator("img.chart")
    assert charts.count() >= 3
    assert all(charts.nth(i).evaluate("i => i.naturalWidth > 0") for i in range(charts.count()))
    # the charts need no script: the page's only ones are live.js (what awaits the user)
    # and the offline drafts' (docs/web.md)
    scripts = leader.locator("script[src]").evaluate_all(
        "all => all.map(s => new URL(s.src).pathname)")
    assert sorted(scripts) == ["/static/drafts-store.js", "/static/live.js", "/static/offline.js"]
    shot(leader, shots, "city-figures-phone")
    desk = login(browser, town, "wang", viewport=DESKTOP)
    desk.goto(town + "/figures/report?period=year")
    assert "受理来信来访" in desk.locator("article.report").inner_text()
    shot(desk, shots, "town-report-desktop")


# -- the office's own work (issue 21) ----------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def fits(page) -> bool:
    return page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]


def test_a_photo_from_the_register_form_a_receipt_and_the_public_lookup(browser, network,
                                                                       shots, tmp_path):
    """Issue 21 on a phone: a liaison registers a petition with a photo of the letter, is told
    at once that the petitioner has an open case, prints the 登记回执 with its QR code, and
    the petitioner looks the matter up with the 查询码 and the last four digits of the phone,
    without logging in. The new pages fit a 360-pixel screen."""
    village = network["dongshan"]
    photo = tmp_path / "来信.png"
    photo.write_bytes(PNG)
    phone = login(browser, village, "liu")
    for summary in ("孙大爷来信反映低保金停发", "孙大爷又来反映低保金停发"):
        phone.goto(village + "/cases/new")
        phone.locator("label.chip", has_text="低保").click()
        phone.fill("textarea[name=summary]", summary)
        phone.fill("input[name=p_name]", "孙大爷")
        phone.fill("input[name=p_phone]", "13800136789")
        phone.locator("details summary").first.click()
        phone.set_input_files("input[name=files]", str(photo))
        phone.select_option("select[name=file_kind]", "letter")
        phone.click("form.stack > button.primary")
        phone.wait_for_load_state()
    assert "该信访人在东山村有在办信访件" in phone.locator(".flash").all_inner_texts()[-1]
    case_id = phone.locator("h1").first.inner_text().split()[0]
    shot(phone, shots, "village-case-with-office-work-phone")
    phone.click("text=附件")
    expect(phone.locator(".thumbs img")).to_have_count(1)
    assert fits(phone)
    phone.goto(village + f"/cases/{case_id}/receipt")
    code = phone.locator(".code").inner_text().strip()
    assert phone.locator(".qr svg").count() == 1 and fits(phone)
    shot(phone, shots, "village-receipt-phone")
    for path in ("/register", "/rounds", "/search?q=低保金", "/repeats"):
        phone.goto(village + path)
        assert phone.locator("h1").count() and fits(phone), path
    assert case_id in phone.goto(village + "/search?q=孙大爷").text()
    public = browser.new_page(viewport=PHONE, locale="zh-CN")
    public.goto(village + "/lookup")
    public.fill("input[name=code]", code)
    public.fill("input[name=phone]", "6789")
    public.click("button.primary")
    public.wait_for_load_state()
    answer = public.locator(".lookup-answer").inner_text()
    assert "已登记" in answer and case_id not in public.content() and "孙大爷" not in answer
    assert fits(public)
    public.close()
    phone.close()
