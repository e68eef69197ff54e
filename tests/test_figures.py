"""Figures: counts without personal data go all the way up; the detail stays below."""

from __future__ import annotations

import json

import pytest
from conftest import LIAISON, case_fields
from test_routing import act, register, settle

from node import events, figures, log, store, warnings
from node.errors import EventRefused, ValidationError


def report(node):
    with store.write(node.db):
        return figures.report(node)


def test_a_village_case_reaches_the_city_as_a_count_only(chain):
    city, town, area, village = chain
    kept = register(village, category="dibao")
    register(village, category="dibao")
    escalated = register(village, category="funeral")
    act(village, escalated, "escalate", actor=LIAISON, to="pian", reason="需片区协调")
    with store.write(village.db):
        warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "东山村",
                                                  "expected_size": 30})
    report(village)
    assert report(village) is None  # unchanged counts are not reported twice
    settle(chain)
    totals = figures.totals(city)
    assert totals["units"] == ["cun"]
    assert totals["cases"] == {"dibao": {"registered": 2}, "funeral": {"registered": 1}}
    assert totals["warnings"] == {"general": 1}
    # the city has the counts and nothing of the cases themselves
    assert city.db.conn.execute("SELECT count(*) FROM events WHERE subject = ?",
                                (kept,)).fetchone()[0] == 0
    name = case_fields()["petitioners"][0]["id_number"]
    assert all(name not in body for (body,) in city.db.conn.execute("SELECT body FROM events"))


def test_each_level_adds_up_what_is_below_it_and_no_case_is_counted_twice(chain):
    city, town, area, village = chain
    case_id = register(village)
    act(village, case_id, "escalate", actor=LIAISON, to="pian", reason="需片区协调")
    register(area)  # registered at the area: counted by the area
    for node in (village, area, town):
        report(node)
    settle(chain)
    assert sum(sum(s.values()) for s in figures.totals(city)["cases"].values()) == 2
    assert figures.totals(city)["units"] == ["cun", "pian", "zhen"]
    assert figures.totals(city, under="pian")["units"] == ["cun", "pian"]
    assert figures.totals(area)["cases"] == {"dibao": {"registered": 2}}
    # the state a count shows is the one the registering node sees: escalated, it moves
    act(area, case_id, "escalate", to="zhen", reason="需镇协调")
    settle(chain)
    act(town, case_id, "accept")
    settle(chain)
    report(village)
    settle(chain)
    assert figures.totals(city)["cases"]["dibao"] == {"accepted": 1, "registered": 1}


def test_figures_never_go_down(chain):
    city, town, area, village = chain
    register(city)
    report(city)
    settle(chain)
    assert figures.latest(town) == {} and figures.latest(village) == {}


def test_a_node_may_report_only_its_own_figures(chain):
    city, town, area, village = chain
    forged = events.sign(village.signer, origin="cun", seq=99, ts="2026-11-23T02:00:00Z",
                         actor="system", role="admin", type=figures.REPORTED,
                         subject="F-pian-2026-11-23", prev=(), body=figures.current(village))
    with pytest.raises(EventRefused, match="only its own figures"), store.write(area.db):
        log.receive(area, forged)


@pytest.mark.parametrize("change", [
    {"cases": {"dibao": {"registered": -1}}}, {"cases": {"nonsense": {"registered": 1}}},
    {"cases": {"dibao": {"sleeping": 1}}}, {"overdue": 1.5}, {"warnings": {"huge": 1}},
    {"as_of": "yesterday"}, {"extra": 1}])
def test_malformed_reports_are_refused(village, change):
    body = {**figures.current(village), **change}
    with pytest.raises(ValidationError):
        figures.validate_body(figures.REPORTED, json.loads(json.dumps(body)))
