"""Notices: people are told at once, through a local HTTP receiver and a local SMTP server
standing in for the robots, mail and SMS gateways of real offices (never the internet)."""

from __future__ import annotations

import json
import time

import pytest
from aiosmtpd.controller import Controller
from conftest import LIAISON, case_fields
from test_session import Loopback
from test_web import text
from test_web import web as web  # noqa: F401 - a fixture, used by name

from node import cases, notices, store, warnings
from node.errors import ConfigError, ValidationError
from node.sync import delivery, session

ID = "11010519491231002X"


@pytest.fixture
def pair(make_node):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    return town, village


def add(node, name, url, roles=("handler", "leader"), kinds=None):
    fields = {"name": name, "url": url, "roles": list(roles)}
    if kinds:
        fields["kinds"] = kinds
    with store.write(node.db):
        return notices.add_channel(node, fields)


def queued(node):
    return node.db.conn.execute("SELECT channel, kind, subject, body FROM notices ORDER BY id"
                                ).fetchall()


@pytest.mark.parametrize("channel, field", [
    ({"name": "x", "url": "not an address", "roles": ["handler"]}, "url"),
    ({"name": "x", "url": "json://h/p", "roles": ["mayor"]}, "roles"),
    ({"name": "x", "url": "json://h/p", "roles": ["handler"], "kinds": ["gossip"]}, "kinds"),
    ({"name": "", "url": "json://h/p", "roles": ["handler"]}, "name"),
])
def test_a_bad_channel_is_refused_with_a_clear_error(pair, channel, field):
    town, _ = pair
    with pytest.raises(ValidationError) as info, store.write(town.db):
        notices.add_channel(town, channel)
    assert field in info.value.english() or "name" in info.value.english()
    assert notices.channels(town) == []
    with pytest.raises(ConfigError):
        notices.check_channel(channel)


def test_an_address_is_shown_without_its_key():
    assert notices.masked_url("wecombot://secretkey123") == "wecombot://…"
    assert notices.masked_url("dingtalk://s3cr3t@tok3n/") == "dingtalk://…"
    assert notices.masked_url("mailtos://me:pw@smtp.example.cn?to=a@b.cn") == \
        "mailtos://smtp.example.cn…"


def test_news_arriving_from_below_is_queued_for_the_roles_it_concerns(pair):
    town, village = pair
    add(town, "office", "json://127.0.0.1:9/x", roles=("handler",))
    add(town, "leader-sms", "json://127.0.0.1:9/y", roles=("leader",), kinds=["alarm"])
    with store.write(village.db):
        cid = cases.register(village, LIAISON, case_fields(
            summary=f"张三反映低保问题，身份证{ID}")).subject
        cases.act(village, LIAISON, cid, "escalate", {"to": "zhen", "reason": "需镇协调"})
        warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "东山村",
                                                  "expected_size": 30, "destination": "city"})
    session.run(village, Loopback(town))
    rows = queued(town)
    assert sorted((r[0], r[1]) for r in rows) == [("office", "escalation"),
                                                  ("office", "warning")]
    for _, _, _, body in rows:  # no personal data leaves in a notice
        assert "张三" not in body and ID not in body and body.startswith("【")
    session.run(village, Loopback(town))  # the same news is never queued twice
    assert len(queued(town)) == 2


def test_delivery_to_an_http_receiver_is_retried_until_it_goes(pair, httpserver, clock):
    town, village = pair
    add(town, "gateway", f"json://127.0.0.1:{httpserver.port}/sms")
    with store.write(town.db):
        notices.queue(town, "escalation", "k1", "C-cun-2026-0001", "低保 · 东山村")
    httpserver.expect_oneshot_request("/sms", method="POST").respond_with_data(
        "no", status=500)
    assert delivery.deliver(town) == {"sent": 0, "failed": 1}
    (error, attempts), = town.db.conn.execute("SELECT error, attempts FROM notices").fetchall()
    assert attempts == 1 and error
    assert delivery.deliver(town) == {"sent": 0, "failed": 0}  # not before its next try
    clock.advance(minutes=10)
    httpserver.expect_oneshot_request("/sms", method="POST").respond_with_data("ok")
    assert delivery.deliver(town) == {"sent": 1, "failed": 0}
    sent = json.loads(httpserver.log[-1][0].get_data())
    assert "C-cun-2026-0001" in sent["message"]
    (channel,) = notices.channels(town)
    assert channel["failures"] == 0 and channel["last_ok"]


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


def test_mail_goes_through_a_local_smtp_server(pair):
    town, _ = pair
    from test_serve import free_port
    box, port = Inbox(), free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        add(town, "mail", f"mailto://127.0.0.1:{port}?to=office@example.cn&"
                          "from=siji@example.cn&mode=insecure")
        assert delivery.send_test(town, "mail") is None
        for _ in range(50):
            if box.messages:
                break
            time.sleep(0.1)
        assert box.messages and "office@example.cn" in box.messages[0]
    finally:
        smtp.stop()


def test_deadlines_near_and_past_are_told_once_a_day(pair, clock):
    town, _ = pair
    add(town, "office", "json://127.0.0.1:9/x")
    with store.write(town.db):
        cid = cases.register(town, LIAISON, case_fields()).subject
    clock.advance(days=14)  # the acceptance limit (12-08) is two working days away
    with store.write(town.db):
        assert notices.for_deadlines(town) == 1
        assert notices.for_deadlines(town) == 0  # once a day
    clock.advance(days=3)
    with store.write(town.db):
        assert notices.for_deadlines(town) == 1
    assert [r[1] for r in queued(town)] == ["due_soon", "overdue"] and queued(town)[0][2] == cid


def test_the_admin_adds_a_channel_and_sends_a_test_from_the_network_page(pair, web, httpserver):
    town, _ = pair
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    w = web(town)
    w.login("admin")
    added = w.post("/network/channels", {"name": "镇信访办群", "roles": "handler",
                                         "url": f"json://127.0.0.1:{httpserver.port}/hook"})
    assert added.status_code == 303
    page = text(w.get("/network"))
    assert "镇信访办群" in page and f"json://127.0.0.1:{httpserver.port}…" in page
    assert "/hook" not in page  # the address is shown without its path
    tested = w.post("/network/channels/镇信访办群/test", follow_redirects=True)
    assert tested.status_code == 200 and len(httpserver.log) == 1
    assert notices.channels(town)[0]["last_ok"]
