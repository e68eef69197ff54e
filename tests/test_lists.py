"""Lists found in SQL, a page at a time (issue 19): every filter agrees with the rule it
names, every page size walks every row once in order, a row added meanwhile neither
repeats nor hides one, counts agree, and what a unit may not see stays out.

Real nodes (conftest's make_node) with cases registered over weeks.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from conftest import HANDLER, LIAISON, case_fields, deliver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_web import Web

from node import cases, store, warnings
from node.errors import ValidationError
from node.web import access

CATEGORIES = ("dibao", "youfu", "funeral", "elderly")


@pytest.fixture
def town_with_history(make_node, clock):
    """A town and two villages: 40 cases over 40 days (some escalated to the town, some
    accepted there, one referred down), and warnings."""
    town = make_node("town", "zhen")
    east = make_node("village", "east", parent=town)
    west = make_node("village", "west", parent=town)
    for day in range(40):
        village = east if day % 3 else west
        with store.write(village.db):
            cid = cases.register(village, LIAISON, case_fields(
                category=CATEGORIES[day % 4], summary=f"第{day}天的信访事项")).subject
            if day % 2:
                cases.act(village, LIAISON, cid, "escalate", {"reason": "需镇协调"})
            if day % 5 == 0:
                warnings.raise_warning(village, LIAISON, {
                    "subject": f"预警{day}", "place": "村口", "expected_size": 5 + day})
        clock.advance(days=1)
    deliver(east, town)
    deliver(west, town)
    for c in cases.listing(town, holder="zhen")[:6]:
        with store.write(town.db):
            cases.act(town, HANDLER, c["id"], "accept", {})
    return town, east, west


def _walk(node, size: int, **filters) -> list[str]:
    seen, after = [], None
    while True:
        rows, after = access.case_page(node, after, size, **filters)
        assert len(rows) <= size
        seen += [r["id"] for r in rows]
        if after is None:
            return seen


def _expected(node, **filters) -> list[str]:
    """The same list the slow way: every row read and filtered in Python."""
    units = access.subtree(node)
    rows = [c for c in cases.listing(node) if access.case_visible(node, c, units)]
    today = node.today()
    if "state" in filters:
        rows = [c for c in rows if c["state"] == filters["state"]]
    if "category" in filters:
        rows = [c for c in rows if c["category"] == filters["category"]]
    if "origin" in filters:
        rows = [c for c in rows if c["origin_node"] == filters["origin"]]
    if filters.get("due") == "overdue":
        rows = [c for c in rows if c["days_overdue"] > 0]
    if filters.get("due") == "soon":
        soon = today + timedelta(days=node.settings["DUE_SOON_DAYS"])
        rows = [c for c in rows if c["due_on"] and today <= date.fromisoformat(
            c["due_on"]) <= soon]
    if "since" in filters:
        rows = [c for c in rows if c["registered_on"] >= filters["since"]]
    if "mine" in filters:
        rows = [c for c in rows if filters["mine"] in (c["origin_node"], c["holder"])]
    return [c["id"] for c in sorted(rows, key=lambda c: (c["registered_on"], c["id"]),
                                    reverse=True)]


FILTERS = st.fixed_dictionaries({}, optional={
    "state": st.sampled_from(["registered", "accepted"]),
    "category": st.sampled_from(CATEGORIES),
    "origin": st.sampled_from(["east", "west", "zhen"]),
    "due": st.sampled_from(["soon", "overdue"]),
    "since": st.sampled_from(["2026-11-01", "2026-11-20", "2026-12-20"]),
    "mine": st.sampled_from(["east", "zhen"]),  # an OR, paged as two merged halves
})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 45), filters=FILTERS)
def test_every_page_size_walks_every_matching_row_once_newest_first(town_with_history, size,
                                                                    filters):
    town = town_with_history[0]
    expected = _expected(town, **filters)
    assert _walk(town, size, **filters) == expected
    assert access.case_count(town, **filters) == len(expected)


def test_a_village_sees_only_its_own(town_with_history):
    _town, east, west = town_with_history
    for village in (east, west):
        walked = _walk(village, 7)
        assert walked == _expected(village)
        assert all(cases.get(village, c)["origin_node"] == village.id for c in walked)


def test_a_case_registered_while_paging_neither_repeats_nor_hides_a_row(town_with_history):
    _town, east, _west = town_with_history
    first, after = access.case_page(east, None, 5)
    with store.write(east.db):
        new = cases.register(east, LIAISON, case_fields(summary="翻页时新登记的")).subject
    rest = _walk_from(east, after, 5)
    before = [r["id"] for r in first]
    assert new not in before + rest  # newer than the first page: on the next first page
    assert before + rest == [c for c in _expected(east) if c != new]
    assert access.case_page(east, None, 5)[0][0]["id"] == new


def _walk_from(node, after, size):
    seen = []
    while after is not None:
        rows, after = access.case_page(node, after, size)
        seen += [r["id"] for r in rows]
    return seen


@pytest.mark.parametrize(("after", "limit"), [("not-a-cursor!", 5), (None, 0), (None, 501),
                                              (None, "many")])
def test_a_bad_cursor_or_size_is_a_clear_error(town_with_history, after, limit):
    with pytest.raises(ValidationError) as e:
        access.case_page(town_with_history[0], after, limit)
    assert e.value.params["field"] in ("after", "limit")


def test_warnings_page_too(town_with_history):
    town, east, _west = town_with_history
    deliver(east, town)
    seen, after = [], None
    while True:
        rows, after = access.warning_page(town, after, 2)
        seen += [w["id"] for w in rows]
        if after is None:
            break
    every = sorted(warnings.listing(town), key=lambda w: (w["raised_at"], w["id"]),
                   reverse=True)
    assert seen == [w["id"] for w in every] and len(seen) == access.warning_count(town)


def test_the_pages_and_the_api_give_a_page_and_the_next(town_with_history, clock):
    town = town_with_history[0]
    w = Web(town, clock)
    w.login("wang")
    page = w.get("/cases?limit=10").get_data(as_text=True)
    total = access.case_count(town)
    assert f'<small class="muted">{total}</small>' in page and "下一页" in page
    nxt = page.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    second = w.get(nxt).get_data(as_text=True)
    assert "第一页" in second
    w.api_login("wang")
    data = w.api("GET", "/api/cases?limit=10&category=dibao").get_json()
    assert data["total"] == access.case_count(town, category="dibao")
    ids = [c["id"] for c in data["cases"]]
    while data["next"]:
        data = w.api("GET", f"/api/cases?limit=10&category=dibao&after={data['next']}"
                     ).get_json()
        ids += [c["id"] for c in data["cases"]]
    assert ids == _expected(town, category="dibao")
    bad = w.api("GET", "/api/cases?after=%%%")
    assert bad.status_code == 400 and bad.get_json()["error"]["params"]["field"] == "after"


def test_the_inbox_shows_a_few_of_each_with_the_count_of_all(town_with_history, clock):
    town = town_with_history[0]
    w = Web(town, clock)
    w.login("wang")
    page = w.get("/inbox").get_data(as_text=True)
    overdue = access.case_count(town, due="overdue")
    assert overdue > 20  # the fixture's history: more than a section shows
    assert f"查看全部 {overdue}" in page
    assert page.count('href="/cases/') < 120  # sections of at most 20, not every case


def test_exports_send_every_row_a_part_at_a_time(town_with_history, clock, monkeypatch):
    """The case list as CSV (sent as it is made, CHUNK rows at a time) and as Excel (written
    row by row to a file) holds every row of the list; a refused filter is an error page,
    not a cut file."""
    import csv
    import io

    import openpyxl

    from node.web import export
    monkeypatch.setattr(export, "CHUNK", 7)
    town = town_with_history[0]
    w = Web(town, clock)
    w.login("wang")
    sent = w.client.get("/cases.csv?category=dibao")
    assert sent.is_streamed
    rows = list(csv.reader(io.StringIO(sent.get_data().decode("utf-8-sig"))))
    assert [r[0] for r in rows[5:]] == _expected(town, category="dibao")
    book = openpyxl.load_workbook(io.BytesIO(w.client.get("/cases.xlsx").get_data()))
    ids = [row[0] for row in book.active.iter_rows(min_row=6, values_only=True)]
    assert ids == _expected(town)
    refused = w.client.get("/cases.csv?state=nonsense")
    assert refused.status_code == 400 and "nonsense" in refused.get_data(as_text=True)
