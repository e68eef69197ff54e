"""Personal data typed into free text: found on entry, offered to the liaison to move into
the petitioner's own fields, committed where NEVER_ABOVE limits it, masked for a masked
viewer. ID numbers and phones are found by their shape; names only where they are the
case's own petitioners' recorded names."""

from __future__ import annotations

import re

import pytest
from conftest import LIAISON, build_chain, case_fields, deliver
from hypothesis import given
from hypothesis import strategies as st
from test_web import text
from test_web import web as web  # noqa: F401 - a fixture, used by name

from node import cases, disclosure, screening, store

ID = "11010519491231002X"  # a valid check digit
PHONE = "13800138000"
NEVER = {"NEVER_ABOVE": {"id_number": "town", "phone": "town", "name": "town"}}


def test_numbers_are_found_by_shape_and_check_digit():
    found = screening.find(
        f"张三身份证{ID}，电话{PHONE}，座机010-62345678，发票号110105194912310021")
    assert [(f.kind, f.value) for f in found] == [
        ("id_number", ID), ("phone", PHONE), ("phone", "010-62345678")]


def test_names_are_found_only_as_given_and_longest_first():
    found = screening.find("张三和张三丰都来了", names=("张三", "张三丰"))
    assert [f.value for f in found] == ["张三", "张三丰"]
    assert screening.mask("张三和张三丰都来了", names=("张三", "张三丰")) == "张*和张**都来了"


@given(st.text(alphabet="0123456789Xx 低保金，电话身份证-", max_size=60))
def test_masking_leaves_no_found_number_whole(text_):
    masked = screening.mask(text_)
    for f in screening.find(text_):
        assert f.value not in masked


def test_the_liaison_may_move_numbers_into_the_petitioners_fields():
    fields = {"summary": f"信访人身份证{ID}，电话{PHONE}，反映低保问题"}
    moved, person = screening.move_into_person(fields, ("summary",), {"name": "张三"})
    assert person == {"name": "张三", "id_number": ID, "phone": PHONE}
    assert ID not in moved["summary"] and PHONE not in moved["summary"]
    assert "反映低保问题" in moved["summary"]


@pytest.fixture
def limited(make_node):
    """A chain whose every node limits ID numbers, phones and names to the town."""
    return build_chain(make_node, **{t: NEVER for t in ("city", "town", "area", "village")})


def test_a_number_in_the_summary_travels_no_higher_than_its_limit(limited):
    city, town, area, village = limited
    summary = f"张三反映低保金未发放，身份证{ID}，电话{PHONE}"
    with store.write(village.db):
        cid = cases.register(village, LIAISON, case_fields(summary=summary)).subject
        cases.act(village, LIAISON, cid, "escalate", {"to": "pian", "reason": f"张三来电{PHONE}"})
    for node in (area, town, city):
        deliver(village, node)
    for node in (village, area, town):  # at or below the limit: the text as written
        assert cases.get(node, cid)["summary"] == summary, node.id
    at_city = cases.get(city, cid)["summary"]
    assert ID not in at_city and PHONE not in at_city and "张三" not in at_city
    assert disclosure.shown(at_city).count(disclosure.WITHHELD) == 3
    city.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = (city.dir / "siji.db").read_bytes()
    assert ID.encode() not in stored and PHONE.encode() not in stored


def test_a_masked_viewer_sees_numbers_and_the_petitioners_name_masked(make_node, web):
    town = make_node("town", "qingshui")
    with store.write(town.db):
        cid = cases.register(town, LIAISON, case_fields(
            summary=f"张三反映低保金未发放，身份证{ID}")).subject
    admin = web(town)  # an admin always sees petitioners masked
    admin.login("admin")
    page = text(admin.get(f"/cases/{cid}"))
    assert ID not in page and "张三反映" not in page
    assert "1101************2X" in page and "张*反映" in page
    handler = web(town)
    handler.login("wang")
    assert ID in text(handler.get(f"/cases/{cid}"))


def test_the_register_form_offers_to_move_numbers_out_of_the_text(make_node, web):
    village = make_node("village", "dongshan")
    w = web(village)
    w.login("liu")
    form = {"category": "dibao", "summary": f"低保金未发放，电话{PHONE}", "p_name": "张三"}
    shown = w.post("/cases/new", form)
    assert shown.status_code == 200 and "移入" in text(shown)
    assert village.db.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 0
    done = w.post("/cases/new", {**form, "numbers": "move"})
    assert done.status_code == 303
    (summary,), = village.db.conn.execute("SELECT summary FROM cases").fetchall()
    (phone,), = village.db.conn.execute("SELECT phone FROM petitioners").fetchall()
    assert PHONE not in summary and phone == PHONE
    kept = w.post("/cases/new", {**form, "numbers": "keep"})
    assert kept.status_code == 303
    assert village.db.conn.execute("SELECT count(*) FROM cases WHERE summary LIKE ?",
                                   (f"%{PHONE}%",)).fetchone()[0] == 1


def test_marks_cannot_be_forged_into_a_disclosure():
    """A mark typed by hand opens nothing: only a commitment in the body does."""
    body = {"summary": "见⟦0⟧"}
    assert disclosure.reveal(body, {"masked/0": ["salt", "x"]}) == body
    assert re.search(disclosure.WITHHELD, disclosure.shown(body["summary"]))
